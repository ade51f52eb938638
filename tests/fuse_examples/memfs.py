"""An in-memory pyfuse3 file system (a small tmpfs).

Files, directories, symlinks, hard links, device and fifo nodes, extended
attributes; lookup counts are kept, so an unlinked inode lives on until the
kernel (or umview) forgets it and no handle is open on it.  An ordinary
pyfuse3 file system: `python3 memfs.py MOUNTPOINT` mounts it through FUSE.
"""
import errno
import itertools
import stat
import sys
import time

import pyfuse3
import trio
from pyfuse3 import FUSEError

CAPACITY = 1 << 30


class Node:
    def __init__(self, ino, mode, ctx, rdev=0, target=b""):
        now = time.time_ns()
        self.ino = ino
        self.mode = mode
        self.uid, self.gid = (ctx.uid, ctx.gid) if ctx is not None else (0, 0)
        self.rdev = rdev
        self.target = target
        self.data = bytearray()
        self.atime = self.mtime = self.ctime = now
        self.nlink = 2 if stat.S_ISDIR(mode) else 1
        self.entries = {}            # directories: name -> (inode, cookie), in cookie order
        self.cookies = itertools.count(1)
        self.parent = ino
        self.lookups = 0
        self.opens = 0
        self.xattrs = {}

    @property
    def size(self):
        return len(self.target) if stat.S_ISLNK(self.mode) else len(self.data)


class MemFS(pyfuse3.Operations):
    def __init__(self):
        super().__init__()
        self.nodes = {pyfuse3.ROOT_INODE: Node(pyfuse3.ROOT_INODE, stat.S_IFDIR | 0o755, None)}
        self.inos = itertools.count(pyfuse3.ROOT_INODE + 1)

    # -- helpers --------------------------------------------------------------
    def node(self, ino):
        try:
            return self.nodes[ino]
        except KeyError:
            raise FUSEError(errno.ENOENT) from None

    def attr(self, n):
        a = pyfuse3.EntryAttributes()
        a.st_ino = n.ino
        a.st_mode = n.mode
        a.st_nlink = n.nlink
        a.st_uid = n.uid
        a.st_gid = n.gid
        a.st_rdev = n.rdev
        a.st_size = n.size
        a.st_blksize = 4096
        a.st_blocks = (n.size + 511) // 512
        a.st_atime_ns = n.atime
        a.st_mtime_ns = n.mtime
        a.st_ctime_ns = n.ctime
        return a

    def child(self, dir_ino, name):
        d = self.node(dir_ino)
        if not stat.S_ISDIR(d.mode):
            raise FUSEError(errno.ENOTDIR)
        try:
            return self.nodes[d.entries[name][0]]
        except KeyError:
            raise FUSEError(errno.ENOENT) from None

    def add_entry(self, d, name, n):
        d.entries[name] = (n.ino, next(d.cookies))   # a new cookie puts it last
        d.mtime = d.ctime = time.time_ns()

    def remove_entry(self, d, name):
        n = self.nodes[d.entries.pop(name)[0]]
        d.mtime = d.ctime = time.time_ns()
        n.nlink -= 2 if stat.S_ISDIR(n.mode) else 1
        if stat.S_ISDIR(n.mode):
            d.nlink -= 1
        n.ctime = d.mtime
        self.maybe_free(n)

    def maybe_free(self, n):
        if n.nlink <= 0 and n.lookups == 0 and n.opens == 0:
            del self.nodes[n.ino]

    def make(self, parent_inode, name, mode, ctx, rdev=0, target=b""):
        d = self.node(parent_inode)
        if name in d.entries:
            raise FUSEError(errno.EEXIST)
        n = Node(next(self.inos), mode, ctx, rdev, target)
        self.nodes[n.ino] = n
        if stat.S_ISDIR(mode):
            n.parent = d.ino
            d.nlink += 1
        self.add_entry(d, name, n)
        n.lookups += 1
        return n

    # -- requests -------------------------------------------------------------
    async def lookup(self, parent_inode, name, ctx=None):
        if name == b".":
            n = self.node(parent_inode)
        elif name == b"..":
            n = self.node(self.node(parent_inode).parent)
        else:
            n = self.child(parent_inode, name)
        n.lookups += 1
        return self.attr(n)

    async def forget(self, inode_list):
        for ino, nlookup in inode_list:
            n = self.nodes.get(ino)
            if n is not None:
                n.lookups -= nlookup
                self.maybe_free(n)

    async def getattr(self, inode, ctx=None):
        return self.attr(self.node(inode))

    async def setattr(self, inode, attr, fields, fh, ctx):
        n = self.node(inode)
        if fields.update_size:
            if attr.st_size < len(n.data):
                del n.data[attr.st_size:]
            else:
                n.data.extend(bytes(attr.st_size - len(n.data)))
            n.mtime = time.time_ns()
        if fields.update_mode:
            n.mode = stat.S_IFMT(n.mode) | stat.S_IMODE(attr.st_mode)
        if fields.update_uid:
            n.uid = attr.st_uid
        if fields.update_gid:
            n.gid = attr.st_gid
        if fields.update_atime:
            n.atime = attr.st_atime_ns
        if fields.update_mtime:
            n.mtime = attr.st_mtime_ns
        n.ctime = attr.st_ctime_ns if fields.update_ctime else time.time_ns()
        return self.attr(n)

    async def readlink(self, inode, ctx):
        n = self.node(inode)
        if not stat.S_ISLNK(n.mode):
            raise FUSEError(errno.EINVAL)
        return n.target

    async def mknod(self, parent_inode, name, mode, rdev, ctx):
        return self.attr(self.make(parent_inode, name, mode, ctx, rdev=rdev))

    async def mkdir(self, parent_inode, name, mode, ctx):
        return self.attr(self.make(parent_inode, name, stat.S_IFDIR | stat.S_IMODE(mode), ctx))

    async def symlink(self, parent_inode, name, target, ctx):
        return self.attr(self.make(parent_inode, name, stat.S_IFLNK | 0o777, ctx, target=target))

    async def create(self, parent_inode, name, mode, flags, ctx):
        n = self.make(parent_inode, name, stat.S_IFREG | stat.S_IMODE(mode), ctx)
        n.opens += 1
        return pyfuse3.FileInfo(fh=n.ino), self.attr(n)

    async def unlink(self, parent_inode, name, ctx):
        if stat.S_ISDIR(self.child(parent_inode, name).mode):
            raise FUSEError(errno.EISDIR)
        self.remove_entry(self.nodes[parent_inode], name)

    async def rmdir(self, parent_inode, name, ctx):
        n = self.child(parent_inode, name)
        if not stat.S_ISDIR(n.mode):
            raise FUSEError(errno.ENOTDIR)
        if n.entries:
            raise FUSEError(errno.ENOTEMPTY)
        self.remove_entry(self.nodes[parent_inode], name)

    async def rename(self, parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx):
        old_dir, new_dir = self.node(parent_inode_old), self.node(parent_inode_new)
        n = self.child(parent_inode_old, name_old)
        target = new_dir.entries.get(name_new)
        if flags & pyfuse3.RENAME_NOREPLACE and target is not None:
            raise FUSEError(errno.EEXIST)
        if flags & pyfuse3.RENAME_EXCHANGE:
            if target is None:
                raise FUSEError(errno.ENOENT)
            other = self.nodes[target[0]]
            old_dir.entries[name_old] = (other.ino, old_dir.entries[name_old][1])
            new_dir.entries[name_new] = (n.ino, target[1])
            for moved, d in ((n, new_dir), (other, old_dir)):
                if stat.S_ISDIR(moved.mode) and moved.parent != d.ino:
                    self.nodes[moved.parent].nlink -= 1
                    d.nlink += 1
                    moved.parent = d.ino
            old_dir.mtime = new_dir.mtime = time.time_ns()
            return
        if target is not None:
            t = self.nodes[target[0]]
            if t is n:
                return
            if stat.S_ISDIR(t.mode):
                if not stat.S_ISDIR(n.mode):
                    raise FUSEError(errno.EISDIR)
                if t.entries:
                    raise FUSEError(errno.ENOTEMPTY)
            elif stat.S_ISDIR(n.mode):
                raise FUSEError(errno.ENOTDIR)
            self.remove_entry(new_dir, name_new)
        del old_dir.entries[name_old]
        old_dir.mtime = old_dir.ctime = time.time_ns()
        if stat.S_ISDIR(n.mode) and old_dir is not new_dir:
            old_dir.nlink -= 1
            new_dir.nlink += 1
            n.parent = new_dir.ino
        self.add_entry(new_dir, name_new, n)
        n.ctime = new_dir.mtime

    async def link(self, inode, new_parent_inode, new_name, ctx):
        n = self.node(inode)
        if stat.S_ISDIR(n.mode):
            raise FUSEError(errno.EPERM)
        d = self.node(new_parent_inode)
        if new_name in d.entries:
            raise FUSEError(errno.EEXIST)
        self.add_entry(d, new_name, n)
        n.nlink += 1
        n.lookups += 1
        n.ctime = d.mtime
        return self.attr(n)

    async def open(self, inode, flags, ctx):
        n = self.node(inode)
        if stat.S_ISDIR(n.mode):
            raise FUSEError(errno.EISDIR)
        n.opens += 1
        return pyfuse3.FileInfo(fh=inode)

    async def read(self, fh, off, size):
        n = self.nodes[fh]
        n.atime = time.time_ns()
        return bytes(n.data[off:off + size])

    async def write(self, fh, off, buf):
        n = self.nodes[fh]
        if off > len(n.data):
            n.data.extend(bytes(off - len(n.data)))
        n.data[off:off + len(buf)] = buf
        n.mtime = n.ctime = time.time_ns()
        return len(buf)

    async def release(self, fh):
        n = self.nodes[fh]
        n.opens -= 1
        self.maybe_free(n)

    async def opendir(self, inode, ctx):
        if not stat.S_ISDIR(self.node(inode).mode):
            raise FUSEError(errno.ENOTDIR)
        return inode

    async def readdir(self, fh, start_id, token):
        d = self.nodes[fh]
        for name, (ino, cookie) in list(d.entries.items()):
            if cookie <= start_id:
                continue
            n = self.nodes[ino]
            if not pyfuse3.readdir_reply(token, name, self.attr(n), cookie):
                break
            n.lookups += 1

    async def releasedir(self, fh):
        pass

    async def statfs(self, ctx):
        s = pyfuse3.StatvfsData()
        s.f_bsize = s.f_frsize = 4096
        used = sum((n.size + 4095) // 4096 for n in self.nodes.values())
        s.f_blocks = CAPACITY // 4096
        s.f_bfree = s.f_bavail = s.f_blocks - used
        s.f_files = 1 << 20
        s.f_ffree = s.f_favail = s.f_files - len(self.nodes)
        s.f_namemax = 255
        return s

    async def setxattr(self, inode, name, value, ctx):
        self.node(inode).xattrs[name] = value

    async def getxattr(self, inode, name, ctx):
        try:
            return self.node(inode).xattrs[name]
        except KeyError:
            raise FUSEError(pyfuse3.ENOATTR) from None

    async def listxattr(self, inode, ctx):
        return list(self.node(inode).xattrs)

    async def removexattr(self, inode, name, ctx):
        try:
            del self.node(inode).xattrs[name]
        except KeyError:
            raise FUSEError(pyfuse3.ENOATTR) from None


def main():
    pyfuse3.init(MemFS(), sys.argv[1], set(pyfuse3.default_options) | {"fsname=memfs"})
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close()


if __name__ == "__main__":
    main()
