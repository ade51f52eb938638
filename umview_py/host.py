"""Host file-system helpers for modules, made cheap by the C core.

Part of the public module API: a module may call these from its handlers
(plain or async); they take host paths and fds, never a tracee's.
"""
from __future__ import annotations

from ._core.bridge import ffi as _ffi, lib as _lib

__all__ = ["stat_beneath"]


def stat_beneath(dirfd: int, path: str):
    """lstat of `path` below the directory `dirfd`, reached with no
    symlink, no '..' above dirfd and no magic link on the way (one
    openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) and fstat, in C):
    (st_mode, st_ino, st_dev, st_nlink), or -errno (ELOOP or EXDEV: the
    walk met something it refuses, so ask again the long way)."""
    out = _ffi.new("uint64_t[4]")
    r = _lib.umv_stat_beneath(dirfd, path.encode("utf-8", "surrogateescape"), out)
    if r < 0:
        return r
    return out[0], out[1], out[2], out[3]
