"""Mirror back ends: file systems the view shows through a host directory.

Some mount types have no host directory of their own: an archive, a Python
file system written for pyfuse3.  The vfs module gives each such mount a
*mirror*: a private directory on a memory file system (/dev/shm when there
is one) that the back end fills on demand.  Path calls under the mount are
rewritten to the mirror, so the kernel itself serves every call on the
resulting fds (read, write, mmap, poll, epoll, dup, fork, exec, fd passing)
at native speed; only path calls reach Python.

The vfs module calls a back end, always from one thread, like this:
- `flush()` at the start of every path call under the mount;
- `refresh(rel)` for each path component it walks, parent first, before the
  kernel sees the mirror entry;
- `list_dir(rel)` before a directory is opened (for getdents);
- `fill(rel)` before a regular file is opened (unless O_TRUNC), executed, or
  truncated to a non-zero size;
- for writable back ends, the mutation methods below instead of letting the
  kernel change the mirror; each changes the file system first, then the
  mirror, and raises SyscallError(errno) on failure;
- `close()` at unmount.

`rel` is the path inside the mount: '' for its root, else 'a/b/c' (no
leading slash, no '.', no '..', every parent a directory that was refreshed).
"""
from __future__ import annotations

import errno
import os

from umview_py.errors import ModuleError
from umview_py.module import SyscallError


class MountError(ModuleError):
    """A mount that cannot be made (missing source, corrupt archive, bad
    option): the message is shown to the user as is, nothing is mounted."""


class MirrorBackend:
    #: the view refuses every change under the mount with EROFS
    readonly = True
    #: name of the mount type (umview-mount -t NAME)
    type = ""

    def __init__(self, source: str, options: dict[str, str], mirror: str):
        self.source = source
        self.options = options
        self.mirror = mirror

    def mirror_path(self, rel: str) -> str:
        return os.path.join(self.mirror, rel) if rel else self.mirror

    # -- reading ------------------------------------------------------------
    def refresh(self, rel: str) -> None:
        """Make the mirror entry for rel match the file system: create it
        (directory, symlink, or a sparse regular file of the right size until
        `fill`), update its mode and times, or remove it when the file system
        has no such entry."""

    def list_dir(self, rel: str) -> None:
        """Make mirror directory rel hold exactly the file system's entries."""

    def fill(self, rel: str) -> None:
        """Give mirror file rel its real contents (once; again after it changed)."""

    def flush(self) -> None:
        """Write back what programs wrote into mirror files since last time."""

    def statfs(self) -> dict | None:
        """Fields of a struct statfs to show (f_bsize, f_blocks, f_bfree,
        f_bavail, f_files, f_ffree, f_namemax), or None for the mirror's."""
        return None

    def close(self) -> None:
        self.flush()

    # -- changing (writable back ends) ----------------------------------------
    def _ro(self, *args, **kw):
        raise SyscallError(errno.EROFS)

    create = mkdir = mknod = unlink = rmdir = rename = symlink = link = _ro
    setattr = setxattr = removexattr = _ro
    # signatures:
    #   create(rel, mode) -> None        (an empty regular file; the kernel then opens it)
    #   mkdir(rel, mode); mknod(rel, mode, rdev); unlink(rel); rmdir(rel)
    #   rename(old_rel, new_rel, flags)   flags: RENAME_NOREPLACE=1, RENAME_EXCHANGE=2
    #   symlink(target: str, rel); link(old_rel, new_rel)
    #   setattr(rel, *, mode=None, uid=None, gid=None, size=None,
    #           atime_ns=None, mtime_ns=None)
    #   setxattr(rel, name: bytes, value: bytes, flags); removexattr(rel, name: bytes)
