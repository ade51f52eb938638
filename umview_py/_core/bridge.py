"""The cffi bridge to native/umvcore.c and the tracee memory accessors."""
from __future__ import annotations

import errno
import os

from ..errors import SyscallError

try:
    from .._native import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "umview_py's C core is not built: run `pip install -e .` (or `pip install .`) "
        "in the source tree"
    ) from exc

EV_SYSEXIT = lib.UMV_EV_SYSEXIT
EV_EXIT = lib.UMV_EV_EXIT
EV_ALLGONE = lib.UMV_EV_ALLGONE
EV_GROUPSTOP = lib.UMV_EV_GROUPSTOP
EV_FORK = lib.UMV_EV_FORK
EV_LOG = lib.UMV_EV_LOG
EV_SIGNAL = lib.UMV_EV_SIGNAL

ACT_CONT = lib.UMV_ACT_CONT
ACT_SKIP = lib.UMV_ACT_SKIP
ACT_RUN_EXIT = lib.UMV_ACT_RUN_EXIT
ACT_SET_RESULT = lib.UMV_ACT_SET_RESULT
ACT_DEFER = lib.UMV_ACT_DEFER
ACT_REWRITE = lib.UMV_ACT_REWRITE


def check(rc: int, what: str) -> int:
    if rc < 0:
        raise OSError(-rc, f"{what}: {os.strerror(-rc)}")
    return rc


class TraceeMemory:
    """Reads and writes tracee memory with process_vm_readv/writev.  A bad
    pointer from the tracee becomes SyscallError(EFAULT), which the program
    sees exactly as the kernel would have answered it."""

    def read(self, tid: int, addr: int, size: int) -> bytes:
        if size == 0:
            return b""
        buf = ffi.new("char[]", size)
        n = lib.umv_peek(tid, addr & 0xFFFFFFFFFFFFFFFF, buf, size)
        if n != size:
            raise SyscallError(errno.EFAULT)
        return ffi.buffer(buf, size)[:]

    def write(self, tid: int, addr: int, data: bytes) -> None:
        if not data:
            return
        n = lib.umv_poke(tid, addr & 0xFFFFFFFFFFFFFFFF, data, len(data))
        if n != len(data):
            raise SyscallError(errno.EFAULT)

    def serve_here(self, tid, nr, args, path_i, host, dirfd_i, str_i, buf_i, size, size_i) -> int:
        """See umv_serve_here: run a reading call here for tid."""
        return lib.umv_serve_here(tid, nr, [a & 0xFFFFFFFFFFFFFFFF for a in args], path_i, host,
                                  dirfd_i, str_i, buf_i, size, size_i)

    def read_string(self, tid: int, addr: int, limit: int = 4096) -> bytes:
        buf = ffi.new("char[]", limit + 1)
        n = lib.umv_peek_string(tid, addr & 0xFFFFFFFFFFFFFFFF, buf, limit + 1)
        if n < 0:
            raise SyscallError(-n)
        return ffi.buffer(buf, n)[:]


def stats() -> dict:
    s = ffi.new("umv_stats *")
    lib.umv_get_stats(s)
    return {k: getattr(s, k) for k in dir(s)}
