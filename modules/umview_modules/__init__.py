"""First-party umview_py modules.  They use only the public module API."""
