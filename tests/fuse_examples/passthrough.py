"""A pyfuse3 file system that shows a host directory (its constructor
argument, the mount's source).

Inodes are numbered by the file system itself, per (st_dev, st_ino) of the
host file, and remember the host paths they were found at; they are
dropped when the kernel (or umview) forgets them.  Directory listings are
a snapshot taken at opendir, so offsets stay valid while the directory
changes.  An ordinary pyfuse3 file system:
`python3 passthrough.py SOURCE MOUNTPOINT` mounts it through FUSE.
"""
import errno
import functools
import itertools
import os
import stat
import sys

import pyfuse3
import trio
from pyfuse3 import FUSEError


def _fuse_errors(fn):
    @functools.wraps(fn)
    async def wrapper(*args, **kw):
        try:
            return await fn(*args, **kw)
        except OSError as exc:
            raise FUSEError(exc.errno) from None
    return wrapper


class Passthrough(pyfuse3.Operations):
    def __init__(self, source):
        super().__init__()
        if not os.path.isdir(source):
            raise ValueError(f"{source!r} is not a directory")
        st = os.lstat(source)
        self.source = os.path.abspath(source)
        self.by_key = {(st.st_dev, st.st_ino): pyfuse3.ROOT_INODE}
        self.paths = {pyfuse3.ROOT_INODE: {self.source}}
        self.lookups = {}
        self.inos = itertools.count(pyfuse3.ROOT_INODE + 1)
        self.listings = {}
        self.dir_handles = itertools.count(1)

    # -- inodes ---------------------------------------------------------------
    def path(self, inode):
        for path in self.paths.get(inode, ()):
            return path                            # any of its hard links
        raise FUSEError(errno.ENOENT)

    def attr(self, path, inode=None):
        st = os.lstat(path)
        key = (st.st_dev, st.st_ino)
        if inode is None:
            inode = self.by_key.get(key)
            if inode is None:
                inode = self.by_key[key] = next(self.inos)
        a = pyfuse3.EntryAttributes()
        for name in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_rdev", "st_size",
                     "st_blksize", "st_blocks", "st_atime_ns", "st_mtime_ns", "st_ctime_ns"):
            setattr(a, name, getattr(st, name))
        a.st_ino = inode
        a.entry_timeout = a.attr_timeout = 0      # the host may change under us
        return a

    def remember(self, path):
        """A lookup of path: its attributes, counted."""
        a = self.attr(path)
        self.paths.setdefault(a.st_ino, set()).add(path)
        self.lookups[a.st_ino] = self.lookups.get(a.st_ino, 0) + 1
        return a

    def moved(self, old, new):
        for names in self.paths.values():
            for p in list(names):
                if p == old or p.startswith(old + "/"):
                    names.discard(p)
                    names.add(new + p[len(old):])

    def gone(self, path):
        for names in self.paths.values():
            names.discard(path)

    def child(self, parent_inode, name):
        return os.path.join(self.path(parent_inode), os.fsdecode(name))

    # -- requests -------------------------------------------------------------
    @_fuse_errors
    async def lookup(self, parent_inode, name, ctx=None):
        if name in (b".", b".."):
            path = os.path.normpath(self.child(parent_inode, name))
            if not path.startswith(self.source):
                path = self.source
            return self.remember(path)
        return self.remember(self.child(parent_inode, name))

    async def forget(self, inode_list):
        for inode, nlookup in inode_list:
            left = self.lookups.get(inode, 0) - nlookup
            if left > 0 or inode == pyfuse3.ROOT_INODE:
                self.lookups[inode] = left
                continue
            self.lookups.pop(inode, None)
            for key in [k for k, v in self.by_key.items() if v == inode]:
                del self.by_key[key]
            self.paths.pop(inode, None)

    @_fuse_errors
    async def getattr(self, inode, ctx=None):
        return self.attr(self.path(inode), inode)

    @_fuse_errors
    async def setattr(self, inode, attr, fields, fh, ctx):
        target = fh if fh is not None else self.path(inode)
        if fields.update_size:
            os.truncate(target, attr.st_size)
        if fields.update_mode:
            os.chmod(target, stat.S_IMODE(attr.st_mode))
        if fields.update_uid or fields.update_gid:
            os.chown(target, attr.st_uid if fields.update_uid else -1,
                     attr.st_gid if fields.update_gid else -1)
        if fields.update_atime or fields.update_mtime:
            st = os.stat(target) if fh is not None else os.lstat(target)
            times = (attr.st_atime_ns if fields.update_atime else st.st_atime_ns,
                     attr.st_mtime_ns if fields.update_mtime else st.st_mtime_ns)
            if fh is not None:
                os.utime(target, ns=times)
            else:
                os.utime(target, ns=times, follow_symlinks=False)
        return self.attr(self.path(inode), inode)

    @_fuse_errors
    async def readlink(self, inode, ctx):
        return os.readlink(os.fsencode(self.path(inode)))

    @_fuse_errors
    async def mknod(self, parent_inode, name, mode, rdev, ctx):
        path = self.child(parent_inode, name)
        os.mknod(path, mode & ~ctx.umask, rdev)
        return self.remember(path)

    @_fuse_errors
    async def mkdir(self, parent_inode, name, mode, ctx):
        path = self.child(parent_inode, name)
        os.mkdir(path, stat.S_IMODE(mode) & ~ctx.umask)
        return self.remember(path)

    @_fuse_errors
    async def symlink(self, parent_inode, name, target, ctx):
        path = self.child(parent_inode, name)
        os.symlink(target, os.fsencode(path))
        return self.remember(path)

    @_fuse_errors
    async def create(self, parent_inode, name, mode, flags, ctx):
        path = self.child(parent_inode, name)
        fd = os.open(path, flags | os.O_CREAT, stat.S_IMODE(mode) & ~ctx.umask)
        return pyfuse3.FileInfo(fh=fd), self.remember(path)

    @_fuse_errors
    async def unlink(self, parent_inode, name, ctx):
        path = self.child(parent_inode, name)
        os.unlink(path)
        self.gone(path)

    @_fuse_errors
    async def rmdir(self, parent_inode, name, ctx):
        path = self.child(parent_inode, name)
        os.rmdir(path)
        self.gone(path)

    @_fuse_errors
    async def rename(self, parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx):
        old = self.child(parent_inode_old, name_old)
        new = self.child(parent_inode_new, name_new)
        if flags & pyfuse3.RENAME_EXCHANGE:
            raise FUSEError(errno.EINVAL)         # os.rename cannot do it
        if flags & pyfuse3.RENAME_NOREPLACE and os.path.lexists(new):
            raise FUSEError(errno.EEXIST)
        os.rename(old, new)
        self.gone(new)
        self.moved(old, new)

    @_fuse_errors
    async def link(self, inode, new_parent_inode, new_name, ctx):
        path = self.child(new_parent_inode, new_name)
        os.link(self.path(inode), path, follow_symlinks=False)
        return self.remember(path)

    @_fuse_errors
    async def open(self, inode, flags, ctx):
        return pyfuse3.FileInfo(fh=os.open(self.path(inode), flags & ~os.O_CREAT))

    @_fuse_errors
    async def read(self, fh, off, size):
        return os.pread(fh, size, off)

    @_fuse_errors
    async def write(self, fh, off, buf):
        return os.pwrite(fh, buf, off)

    @_fuse_errors
    async def fsync(self, fh, datasync):
        (os.fdatasync if datasync else os.fsync)(fh)

    @_fuse_errors
    async def release(self, fh):
        os.close(fh)

    @_fuse_errors
    async def opendir(self, inode, ctx):
        path = self.path(inode)
        fh = next(self.dir_handles)
        self.listings[fh] = (path, sorted(os.listdir(path)))
        return fh

    async def readdir(self, fh, start_id, token):
        path, names = self.listings[fh]
        for i in range(start_id, len(names)):
            child = os.path.join(path, names[i])
            try:
                a = self.attr(child)
            except OSError:
                continue                          # gone since opendir
            if not pyfuse3.readdir_reply(token, os.fsencode(names[i]), a, i + 1):
                break
            self.paths.setdefault(a.st_ino, set()).add(child)
            self.lookups[a.st_ino] = self.lookups.get(a.st_ino, 0) + 1

    async def releasedir(self, fh):
        del self.listings[fh]

    @_fuse_errors
    async def statfs(self, ctx):
        st = os.statvfs(self.source)
        s = pyfuse3.StatvfsData()
        for name in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
                     "f_ffree", "f_favail", "f_namemax"):
            setattr(s, name, getattr(st, name))
        return s

    @_fuse_errors
    async def setxattr(self, inode, name, value, ctx):
        os.setxattr(self.path(inode), name, value, follow_symlinks=False)

    @_fuse_errors
    async def getxattr(self, inode, name, ctx):
        return os.getxattr(self.path(inode), name, follow_symlinks=False)

    @_fuse_errors
    async def listxattr(self, inode, ctx):
        return [os.fsencode(n) for n in os.listxattr(self.path(inode), follow_symlinks=False)]

    @_fuse_errors
    async def removexattr(self, inode, name, ctx):
        os.removexattr(self.path(inode), name, follow_symlinks=False)


def main():
    pyfuse3.init(Passthrough(sys.argv[1]), sys.argv[2],
                 set(pyfuse3.default_options) | {"fsname=passthrough"})
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close()


if __name__ == "__main__":
    main()
