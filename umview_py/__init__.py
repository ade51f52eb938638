"""umview_py: a partial virtual machine for Linux, extensible in Python.

Public API: `Module`, `Option`, `Claims`, `Call`, `SyscallError` (writing
modules); `umview_py.testing` (testing them without ptrace)."""
__version__ = "0.1.0"

from .errors import ModuleError, SyscallError, UmviewError  # noqa: E402
from .module import Call, Claims, Later, Module, Option, StatOwner, boolean  # noqa: E402


def __getattr__(name):
    # The scripting API needs trio; loading it lazily keeps the in-view
    # commands (umview-insmod...) quick to start.
    if name in ("View", "Result", "run"):
        from . import view

        return getattr(view, name)
    raise AttributeError(f"module 'umview_py' has no attribute {name!r}")

__all__ = ["Module", "Option", "Claims", "StatOwner", "Call", "Later", "SyscallError", "UmviewError", "ModuleError",
           "boolean", "View", "Result", "run", "__version__"]
