"""The private core: the bridge to the C tracer, views, dispatch.  Imports no module."""
