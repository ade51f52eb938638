"""A read-only pyfuse3 file system with one file, "hello".

An ordinary pyfuse3 file system: `python3 hello.py MOUNTPOINT` mounts it
through the kernel's FUSE; umview mounts it in a view with
`-t pyfuse3 -o class=tests/fuse_examples/hello.py:Hello`.
"""
import errno
import os
import stat
import sys

import pyfuse3
import trio

STAMP = 1_600_000_000_123_456_789


class Hello(pyfuse3.Operations):
    def __init__(self):
        super().__init__()
        self.name = b"hello"
        self.inode = pyfuse3.ROOT_INODE + 1
        self.data = b"hello world\n"

    async def getattr(self, inode, ctx=None):
        attr = pyfuse3.EntryAttributes()
        if inode == pyfuse3.ROOT_INODE:
            attr.st_mode = stat.S_IFDIR | 0o755
            attr.st_nlink = 2
        elif inode == self.inode:
            attr.st_mode = stat.S_IFREG | 0o444
            attr.st_size = len(self.data)
        else:
            raise pyfuse3.FUSEError(errno.ENOENT)
        attr.st_ino = inode
        attr.st_uid = os.getuid()
        attr.st_gid = os.getgid()
        attr.st_atime_ns = attr.st_mtime_ns = attr.st_ctime_ns = STAMP
        return attr

    async def lookup(self, parent_inode, name, ctx=None):
        if parent_inode != pyfuse3.ROOT_INODE or name != self.name:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return await self.getattr(self.inode)

    async def opendir(self, inode, ctx):
        if inode != pyfuse3.ROOT_INODE:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        return inode

    async def readdir(self, fh, start_id, token):
        if start_id == 0:
            pyfuse3.readdir_reply(token, self.name, await self.getattr(self.inode), 1)

    async def open(self, inode, flags, ctx):
        if inode != self.inode:
            raise pyfuse3.FUSEError(errno.EISDIR)
        if flags & os.O_ACCMODE != os.O_RDONLY:
            raise pyfuse3.FUSEError(errno.EACCES)
        return pyfuse3.FileInfo(fh=inode)

    async def read(self, fh, off, size):
        return self.data[off:off + size]


def main():
    pyfuse3.init(Hello(), sys.argv[1], set(pyfuse3.default_options) | {"fsname=hello"})
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close()


if __name__ == "__main__":
    main()
