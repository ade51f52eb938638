"""Exceptions of umview_py."""
import errno as _errno
import os


class SyscallError(Exception):
    """Raised by a module handler to fail the intercepted call with `errno`."""

    def __init__(self, errno: int, message: str | None = None):
        if not isinstance(errno, int) or not 0 < errno < 4096:
            raise ValueError(f"SyscallError needs an errno between 1 and 4095, not {errno!r}")
        self.errno = errno
        super().__init__(message or f"[{_errno.errorcode.get(errno, errno)}] {os.strerror(errno)}")


class UmviewError(Exception):
    """A user-facing error: bad option, unknown module, not inside a view...

    The command-line tools print it as one line and exit with `status`."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


class ModuleError(UmviewError):
    """A module cannot be found, loaded or configured."""
