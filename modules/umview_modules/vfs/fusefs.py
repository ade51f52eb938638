"""The pyfuse3 mount type: a view's mount served by an unmodified
`pyfuse3.Operations` subclass, without /dev/fuse, the FUSE kernel module
or root.  We call the file system's methods ourselves, as libfuse and
pyfuse3 would on the kernel's requests, and keep the mount's *mirror* (see
backend.py) consistent with their answers.

Option `class=MODULE:CLASS`: MODULE is a dotted module name or the path of a
.py file (loaded under a module name of its own); CLASS is instantiated as
`CLASS(source)` when its constructor takes a positional argument, else as
`CLASS()`; then its `init()` runs and the root must answer getattr.

Standing in for the kernel and pyfuse3:
- Coroutines are driven to completion on the calling thread with
  `send(None)`: 0.6-1.3 us per call, against 78-155 us for
  `trio.from_thread.run` into a trio thread and 400-690 us for `trio.run`
  per call (a getattr that returns at once; 6 runs each).  Every path call
  looks its components up, so only the first is affordable.  The price: no
  event loop runs the methods, so they must not await trio (sleep, locks,
  to_thread, sockets...): such a call fails with EIO and a logged
  explanation.  A bare `yield` (asyncio's sleep(0)) is simply resumed.
- Each component of a path is looked up again on every path call (like
  entry_timeout=0); when its attributes did not change the mirror is not
  touched, so that costs one lookup and no syscall (3.9-4.1 us per
  component with memfs, 10 us with passthrough).  The lookup counts this
  implies, and those of readdir entries (pyfuse3's readdir_reply protocol),
  are handed back with `forget` when the inode's last name leaves the
  mirror, and all of them at unmount.
- `pyfuse3.readdir_reply` is replaced, once and process-wide, by a function
  that collects the entries for our own tokens and hands any other token to
  the real one; it always answers True, and readdir is called again from
  the last next_id until no entry comes.  `invalidate_inode` and
  `notify_store` (the next fill reads again) and `invalidate_entry[_async]`
  (nothing to do: we look up every time) are answered here while no real
  pyfuse3 main loop runs in the process; they may be called from any thread.
- `ctx` is a RequestContext subclass with the hypervisor's uid, gid and pid
  and umask 0: modes are passed as the vfs gives them (the caller's umask
  applied, as the kernel does).  setattr gets a SetattrFields subclass:
  pyfuse3's own fields cannot be set from Python.
- Kernel behaviours kept: the checks made before a file system hears of a
  call (truncating a directory, renaming a directory into itself);
  open/opendir answering ENOSYS mean "no handle", flush/release/releasedir
  ENOSYS are ignored, create ENOSYS falls back to mknod, xattr calls ENOSYS
  give EOPNOTSUPP.  statfs ENOSYS gives the mirror's numbers.  access,
  poll, fsync, fsyncdir are never called (permissions are the mirror's
  modes, as with default_permissions).

Contents: a regular file shows first as a sparse placeholder of the right
size; fill() reads it in 128 KiB chunks until a short read, and reads it
again after its (inode, mtime, size) changed, after the file system
invalidated it, and at every open if it was opened with direct_io.  All the
names of one inode are hard links to one mirror file.  Writes go natively
into the mirror file; inotify (IN_MODIFY) marks it dirty and, once a writer
closed it (IN_CLOSE_WRITE), the next flush() writes the whole file back:
open O_WRONLY, write in chunks, one setattr giving the size (the file
system's copy may be longer) and the mirror's mtime (the last write, or a
futimens), flush, release.  fchmod, fchown and futimens on an fd change the
mirror file only; inotify (IN_ATTRIB) tells us and flush() passes them on.
Measured with memfs (6 runs): 10 MB filled in 6.0-7.3 ms, written back in
9.6-10.4 ms; a first listing of 1000 entries 41-43 ms (placeholders made),
again 3.7-3.8 ms.  Consequences: the file system sees the data at close,
not at write(2) or fsync(2); a write-back error is logged, not returned to
the program (its close succeeded), and the data stays in the view's copy,
tried again at the next close and at unmount; a dirty file is not refreshed
from the file system until written back (the view's writes win); writes
through a shared mapping after the last close are found by their mtime at
unmount.

Limits: mirror files are owned by the hypervisor's user unless it is root
(then they get the file system's uid/gid, and fchown is passed on);
st_nlink counts the names the mirror has seen so far; device nodes show as
empty regular files when we cannot mknod them; atime is the mirror's until
the file system's changes; fsetxattr on an fd changes the view's copy only;
a directory beyond the inotify watch limit gets its files written back at
unmount only.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib
import importlib.util
import inspect
import itertools
import logging
import os
import stat
import struct
import sys
import weakref
from collections import deque

import pyfuse3
from pyfuse3 import EntryAttributes, FUSEError, ROOT_INODE

from umview_py.module import SyscallError

from .backend import MirrorBackend, MountError

log = logging.getLogger("umview")

CHUNK = 128 << 10                        # the kernel's usual max_read/max_write

_libc = ctypes.CDLL(None, use_errno=True)
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_Q_OVERFLOW, IN_IGNORED = 0x2, 0x4, 0x8, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_EXCL_UNLINK = 0x01000000, 0x02000000, 0x04000000
# IN_EXCL_UNLINK: writes to an unlinked file have no name left to write back to
WATCH = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK
_EVENT = struct.Struct("iIII")
AT_FDCWD = -100
RENAME_EXCHANGE = pyfuse3.RENAME_EXCHANGE


# ----------------------------------------------------------------------
# what pyfuse3 would hand the file system

class _Ctx(pyfuse3.RequestContext):
    __slots__ = ("_v",)

    def __init__(self, uid: int, gid: int, pid: int, umask: int):
        self._v = (uid, gid, pid, umask)

    uid = property(lambda self: self._v[0])
    gid = property(lambda self: self._v[1])
    pid = property(lambda self: self._v[2])
    umask = property(lambda self: self._v[3])


class _Fields(pyfuse3.SetattrFields):
    __slots__ = ("_set",)

    def __init__(self, names: set[str]):
        self._set = names

    update_atime = property(lambda self: "atime" in self._set)
    update_mtime = property(lambda self: "mtime" in self._set)
    update_ctime = property(lambda self: "ctime" in self._set)
    update_mode = property(lambda self: "mode" in self._set)
    update_uid = property(lambda self: "uid" in self._set)
    update_gid = property(lambda self: "gid" in self._set)
    update_size = property(lambda self: "size" in self._set)


class _Listing:
    """Our readdir token: collects what the file system replies."""
    __slots__ = ("entries",)

    def __init__(self):
        self.entries: list[tuple[bytes, EntryAttributes, int]] = []


class _NeedsLoop(Exception):
    pass


def _drive(aw):
    """Run an awaitable to completion without an event loop."""
    it = aw.__await__()
    try:
        while True:
            trap = it.send(None)
            if trap is not None:                 # a trio/asyncio trap: only a loop can answer it
                it.close()
                raise _NeedsLoop(trap)
    except StopIteration as stop:
        return stop.value


# ----------------------------------------------------------------------
# pyfuse3's module functions that need a kernel session

_real: dict = {}
_live: "weakref.WeakSet[FuseBackend]" = weakref.WeakSet()


def _readdir_reply(token, name, attr, next_id):
    if isinstance(token, _Listing):
        token.entries.append((bytes(name), attr, next_id))
        return True                              # no buffer to fill up: take everything
    return _real["readdir_reply"](token, name, attr, next_id)


def _ours() -> bool:
    return bool(_live) and pyfuse3.trio_token is None   # no real FUSE session running here


def _invalidate_inode(inode, attr_only=False):
    if not _ours():
        return _real["invalidate_inode"](inode, attr_only)
    if not attr_only:
        for b in list(_live):
            b._stale.append(inode)               # may come from any thread: handled at our next call


def _notify_store(inode, offset, data):
    if not _ours():
        return _real["notify_store"](inode, offset, data)
    _invalidate_inode(inode)


def _invalidate_entry(*args, **kw):
    if not _ours():
        return _real["invalidate_entry"](*args, **kw)


def _invalidate_entry_async(*args, **kw):
    if not _ours():
        return _real["invalidate_entry_async"](*args, **kw)


def _install_hooks() -> None:
    """Replace pyfuse3's session-bound functions, once, before any file
    system module is imported (so `from pyfuse3 import readdir_reply` gets
    ours too)."""
    if _real:
        return
    for name, hook in (("readdir_reply", _readdir_reply), ("invalidate_inode", _invalidate_inode),
                       ("notify_store", _notify_store), ("invalidate_entry", _invalidate_entry),
                       ("invalidate_entry_async", _invalidate_entry_async)):
        _real[name] = getattr(pyfuse3, name)
        setattr(pyfuse3, name, hook)


# ----------------------------------------------------------------------
# loading the file system

_serial = itertools.count(1)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _load_class(spec: str):
    mod_name, sep, cls_name = spec.rpartition(":")
    if not sep or not mod_name or not cls_name.isidentifier():
        raise MountError(f"pyfuse3: class={spec}: want MODULE:CLASS (MODULE a dotted name or a .py file)")
    try:
        if mod_name.endswith(".py") or "/" in mod_name:
            path = os.path.abspath(mod_name)
            if not os.path.isfile(path):
                raise MountError(f"pyfuse3: {mod_name}: no such file")
            stem = "".join(c if c.isalnum() else "_" for c in os.path.basename(path)[:-3])
            unique = f"_umview_pyfuse3_{next(_serial)}_{stem}"   # two mounts of one file stay apart
            mspec = importlib.util.spec_from_file_location(unique, path)
            module = importlib.util.module_from_spec(mspec)
            sys.modules[unique] = module
            try:
                mspec.loader.exec_module(module)
            except BaseException:
                del sys.modules[unique]
                raise
        else:
            module = importlib.import_module(mod_name)
    except MountError:
        raise
    except (Exception, SystemExit) as exc:   # SystemExit: a script without a __main__ guard
        log.debug("importing %s", mod_name, exc_info=True)
        raise MountError(f"pyfuse3: cannot import {mod_name}: {_one_line(exc)}") from None
    cls = getattr(module, cls_name, None)
    if not isinstance(cls, type):
        raise MountError(f"pyfuse3: {mod_name} has no class {cls_name}")
    return cls


def _takes_source(cls) -> bool:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


# ----------------------------------------------------------------------
# the mirror

def _lstat(path: str):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _rmtree(path: str) -> None:
    try:
        os.unlink(path)
        return
    except IsADirectoryError:
        pass
    os.chmod(path, 0o700)                        # a read-only directory of the file system
    for name in os.listdir(path):
        _rmtree(os.path.join(path, name))
    os.rmdir(path)


def _split(rel: str) -> tuple[str, str]:
    parent, _, name = rel.rpartition("/")
    return parent, name


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _shown(attr: EntryAttributes) -> tuple:
    """What the mirror entry shows of attr."""
    return (attr.st_ino, attr.st_mode, attr.st_size, attr.st_mtime_ns, attr.st_atime_ns,
            attr.st_uid, attr.st_gid, attr.st_rdev)


def _copy(attr: EntryAttributes) -> EntryAttributes:
    new = EntryAttributes()
    new.__setstate__(attr.__getstate__())
    return new


class _File:
    """The contents of one regular file of the file system (one inode); all
    its names in the mirror are hard links to one mirror file."""
    __slots__ = ("mirror_ino", "filled", "direct", "fs_key", "mirror_key", "dirty")

    def __init__(self):
        self.mirror_ino = None               # st_ino of its mirror file
        self.filled = False                  # the mirror file holds the contents...
        self.direct = False                  # ...read with direct_io (read again at each open)
        self.fs_key = None                   # (ino, mtime, size) in the file system when synced
        self.mirror_key = None               # (mtime, size) of the mirror file when synced
        self.dirty = False                   # written in the view since


class _Entry:
    """What we know of one name of the mount."""
    __slots__ = ("rel", "ino", "attr", "shown", "wd")

    def __init__(self, rel: str):
        self.rel = rel
        self.ino: int | None = None
        self.attr: EntryAttributes | None = None
        self.shown = None                    # _shown(attr) when the mirror entry last matched it
        self.wd: int | None = None           # directories: the inotify watch


class FuseBackend(MirrorBackend):
    type = "pyfuse3"
    readonly = False

    def __init__(self, source: str, options: dict[str, str], mirror: str):
        super().__init__(source, options, mirror)
        _install_hooks()
        cls = _load_class(options.get("class", ""))
        name = cls.__name__
        try:
            self.ops = cls(source) if _takes_source(cls) else cls()
        except Exception as exc:
            log.debug("constructing %s", name, exc_info=True)
            raise MountError(f"pyfuse3: {name}: {_one_line(exc)}") from None
        self._ctx = _Ctx(os.geteuid(), os.getegid(), os.getpid(), 0)
        self._root = os.geteuid() == 0
        self._entries: dict[str, _Entry] = {}
        self._by_ino: dict[int, set[_Entry]] = {}
        self._files: dict[int, _File] = {}
        self._nlookup: dict[int, int] = {}
        self._by_wd: dict[int, _Entry] = {}
        self._pending: set[_Entry] = set()       # closed after writes: write back at flush()
        self._view_attrs: set[_Entry] = set()    # chmod/futimens... through an fd: pass on at flush()
        self._ours: set[_Entry] = set()          # mirror entries we changed since the last event read
        self._opened: dict[str, int] = {}        # mirror dirs we are changing (nesting depth)
        self._nosys: set[str] = set()
        self._stale: deque[int] = deque()        # inodes invalidated by the file system
        self._closed = False
        try:
            init = getattr(self.ops, "init", None)
            if init is not None:
                init()
            attr = self.call("getattr", ROOT_INODE, self._ctx, expect=EntryAttributes)
        except SyscallError as exc:
            raise MountError(f"pyfuse3: {name}: the root cannot be read ({os.strerror(exc.errno)})") from None
        except Exception as exc:
            log.debug("%s.init", name, exc_info=True)
            raise MountError(f"pyfuse3: {name}.init: {_one_line(exc)}") from None
        if not stat.S_ISDIR(attr.st_mode):
            raise MountError(f"pyfuse3: {name}: the root is not a directory")
        fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise MountError(f"pyfuse3: inotify: {os.strerror(ctypes.get_errno())}")
        self._inotify = fd
        root = self._entries[""] = _Entry("")
        root.ino = ROOT_INODE                     # never counted, never forgotten
        try:
            self._watch(root)
            self._apply(root, attr)
        except OSError as exc:
            os.close(fd)
            raise MountError(f"pyfuse3: {mirror}: {exc.strerror}") from None
        _live.add(self)

    # -- calling the file system ------------------------------------------------
    def call(self, method: str, *args, expect=None):
        """Run one Operations method to completion; FUSEError becomes
        SyscallError, any other exception is logged and becomes EIO."""
        try:
            result = _drive(getattr(self.ops, method)(*args))
        except FUSEError as exc:
            raise SyscallError(exc.errno if 0 < exc.errno < 4096 else errno.EIO) from None
        except _NeedsLoop as exc:
            log.error("pyfuse3 %s.%s awaited %r: no event loop runs the methods of a file system "
                      "mounted in a view (they must not await trio)",
                      type(self.ops).__name__, method, exc.args[0])
            raise SyscallError(errno.EIO) from None
        except Exception as exc:
            hint = " (no event loop runs it: it must not await trio)" if "async context" in str(exc) else ""
            log.error("pyfuse3 %s.%s raised%s", type(self.ops).__name__, method, hint, exc_info=True)
            raise SyscallError(errno.EIO) from None
        if expect is not None and not isinstance(result, expect):
            log.error("pyfuse3 %s.%s returned %r, not %s", type(self.ops).__name__, method, result,
                      expect.__name__)
            raise SyscallError(errno.EIO)
        return result

    def _optional(self, method: str, *args) -> None:
        """flush, release, releasedir: ENOSYS means nothing to do."""
        if method in self._nosys:
            return
        try:
            self.call(method, *args)
        except SyscallError as exc:
            if exc.errno != errno.ENOSYS:
                raise
            self._nosys.add(method)

    def _open(self, e: _Entry, flags: int):
        """(fh, FileInfo or None); fh None: the file system wants no open (ENOSYS)."""
        if "open" in self._nosys:
            return None, None
        try:
            fi = self.call("open", e.ino, flags, self._ctx)
        except SyscallError as exc:
            if exc.errno != errno.ENOSYS:
                raise
            self._nosys.add("open")
            return None, None
        # pyfuse3 wants a FileInfo; its own tmpfs example returns a bare int from create
        return (fi.fh if isinstance(fi, pyfuse3.FileInfo) else fi), fi

    def _release(self, fh) -> None:
        if fh is not None:
            self._optional("release", fh)

    def _xattr(self, method: str, *args):
        try:
            return self.call(method, *args)
        except SyscallError as exc:
            if exc.errno == errno.ENOSYS:
                raise SyscallError(errno.EOPNOTSUPP) from None
            raise

    # -- inode bookkeeping ------------------------------------------------------
    def _counted(self, attr: EntryAttributes) -> EntryAttributes:
        """attr came with a lookup count (lookup, create, mkdir, readdir...)."""
        self._nlookup[attr.st_ino] = self._nlookup.get(attr.st_ino, 0) + 1
        return attr

    def _bind(self, e: _Entry, ino: int) -> None:
        if e.ino == ino:
            return
        if e.ino is not None:
            self._unbind(e)
        e.ino = ino
        self._by_ino.setdefault(ino, set()).add(e)

    def _unbind(self, e: _Entry) -> None:
        names = self._by_ino.get(e.ino)
        if names is not None:
            names.discard(e)
            if not names:                         # no name left: the file system may drop it
                del self._by_ino[e.ino]
                self._files.pop(e.ino, None)
                n = self._nlookup.pop(e.ino, 0)
                if n:
                    try:
                        self.call("forget", [(e.ino, n)])
                    except SyscallError:
                        pass                      # logged; forget has no caller to tell
        e.ino = None

    def _entry(self, rel: str) -> _Entry:
        e = self._entries.get(rel)
        if e is None:
            self.refresh(rel)
            e = self._entries.get(rel)
            if e is None:
                raise SyscallError(errno.ENOENT)
        return e

    def _new(self, rel: str, attr: EntryAttributes) -> _Entry:
        e = self._entries.get(rel)
        if e is None:
            e = self._entries[rel] = _Entry(rel)
        self._bind(e, attr.st_ino)
        self._apply(e, attr)
        return e

    def _under(self, e: _Entry) -> list[_Entry]:
        if e.wd is None:                          # not a directory: nothing below
            return [e]
        prefix = e.rel + "/"
        return [x for r, x in self._entries.items() if r == e.rel or r.startswith(prefix)]

    def _drop(self, rel: str) -> None:
        """Forget rel and everything below it, and remove its mirror entry."""
        path = self.mirror_path(rel)
        if _lstat(path) is not None:
            with self._changing(_split(rel)[0]):
                _rmtree(path)
        e = self._entries.get(rel)
        if e is not None:
            for x in self._under(e):
                self._discard(x)

    def _discard(self, e: _Entry) -> None:
        del self._entries[e.rel]
        self._pending.discard(e)
        self._view_attrs.discard(e)
        if e.wd is not None:
            self._by_wd.pop(e.wd, None)
        self._unbind(e)

    def _move(self, e: _Entry, new: str) -> None:
        old = e.rel
        moved = self._under(e)
        for x in moved:
            del self._entries[x.rel]
        for x in moved:
            x.rel = new + x.rel[len(old):]
            self._entries[x.rel] = x

    # -- keeping the mirror -------------------------------------------------------
    @contextlib.contextmanager
    def _access(self, path: str, bits: int):
        """Let us, not root, read or write a mirror entry whose mode (the file
        system's) denies it; the mode is put back after."""
        mode = None if self._root else stat.S_IMODE(os.lstat(path).st_mode)
        if mode is None or mode & bits == bits:
            yield
            return
        os.chmod(path, mode | bits)
        try:
            yield
        finally:
            os.chmod(path, mode)

    @contextlib.contextmanager
    def _changing(self, rel: str):
        """Add or remove entries in mirror directory rel, then give it back the
        file system's mode and times (our changes make its mtime now)."""
        depth = self._opened.get(rel, 0)
        self._opened[rel] = depth + 1
        try:
            if depth:
                yield
                return
            path = self.mirror_path(rel)
            with self._access(path, stat.S_IRWXU):
                yield
            e = self._entries.get(rel)
            if e is not None and e.attr is not None:
                os.utime(path, ns=(e.attr.st_atime_ns, e.attr.st_mtime_ns))
                self._ours.add(e)
        finally:
            if depth:
                self._opened[rel] = depth
            else:
                del self._opened[rel]

    def _watch(self, e: _Entry) -> None:
        wd = _libc.inotify_add_watch(self._inotify, os.fsencode(self.mirror_path(e.rel)), WATCH)
        if wd < 0:
            log.warning("pyfuse3 mount: inotify watch on %s: %s; files written there go back "
                        "to the file system at unmount only", e.rel or "/",
                        os.strerror(ctypes.get_errno()))
            e.wd = -1                             # still marks a directory
            return
        e.wd = wd
        self._by_wd[wd] = e

    def _apply(self, e: _Entry, attr: EntryAttributes) -> None:
        """Make e's mirror entry show attr, the file system's attributes."""
        shown = _shown(attr)
        if shown == e.shown:                      # the common case: nothing changed, no syscall
            e.attr = attr
            return
        path = self.mirror_path(e.rel)
        fmt = stat.S_IFMT(attr.st_mode)
        st = _lstat(path)
        if st is not None:
            self._read_events()                   # what the view did must not be refreshed over
        if st is not None and stat.S_IFMT(st.st_mode) != fmt:      # replaced by another type
            with self._changing(_split(e.rel)[0]):
                _rmtree(path)
            for x in self._under(e):
                if x is not e:
                    self._discard(x)
            if e.wd is not None:
                self._by_wd.pop(e.wd, None)
            self._pending.discard(e)
            self._view_attrs.discard(e)
            e.wd = None
            st = None
        old, e.attr = e.attr, attr
        created = st is None
        touched = created
        if fmt == stat.S_IFREG:
            touched = self._apply_file(e, attr, path, st) or touched
        elif fmt == stat.S_IFDIR:
            if created:
                with self._changing(_split(e.rel)[0]):
                    os.mkdir(path, 0o700)
            if e.wd is None:
                self._watch(e)
        elif fmt == stat.S_IFLNK:
            if created or old is None or (old.st_ino, old.st_mtime_ns) != (attr.st_ino, attr.st_mtime_ns):
                target = self.call("readlink", attr.st_ino, self._ctx)
                if created or os.readlink(os.fsencode(path)) != target:
                    with self._changing(_split(e.rel)[0]):
                        if not created:
                            os.unlink(path)
                        os.symlink(target, path)
                    touched = True
        elif created:
            with self._changing(_split(e.rel)[0]):
                try:
                    os.mknod(path, fmt | 0o600, attr.st_rdev)
                except PermissionError:           # a device, and we are not root: an empty file stands in
                    os.mknod(path, stat.S_IFREG | 0o600)
                    log.info("pyfuse3 mount: %s: cannot make a device node here, shown as a regular file",
                             e.rel)
        if touched:
            st = os.lstat(path)
        if created:
            self._copy_xattrs(e, path)
        if fmt == stat.S_IFREG:
            self._files[attr.st_ino].mirror_ino = st.st_ino
        self._set_meta(e, path, st, attr)

    def _apply_file(self, e: _Entry, attr: EntryAttributes, path: str, st) -> bool:
        """The regular file part of _apply; True if the mirror file changed."""
        f = self._files.get(attr.st_ino)
        if f is None:
            f = self._files[attr.st_ino] = _File()
        parent = _split(e.rel)[0]
        if st is not None and st.st_ino != f.mirror_ino:   # another inode's copy: this name moved on
            with self._changing(parent):
                os.unlink(path)
            st = None
        key = (attr.st_ino, attr.st_mtime_ns, attr.st_size)
        if st is None:
            sibling = self._mirror_name(f, e)
            with self._changing(parent):
                if sibling is not None:           # a hard link: the same mirror file
                    os.link(sibling, path)
                    return True
                # mknod: no open, so no close event to read back
                os.mknod(path, stat.S_IFREG | stat.S_IMODE(attr.st_mode) | stat.S_IWUSR)
                if attr.st_size:
                    os.truncate(path, attr.st_size)          # sparse: contents come at fill()
                    self._ours.add(e)
            f.filled, f.dirty, f.fs_key = False, False, key
            return True
        if f.dirty or key == f.fs_key:
            return False                          # the view's writes are newer / nothing new
        with self._access(path, stat.S_IWUSR):   # changed in the file system: the copy is stale
            if f.filled:
                os.truncate(path, 0)
            os.truncate(path, attr.st_size)
        self._ours.add(e)
        f.filled, f.fs_key = False, key
        return True

    def _mirror_name(self, f: _File, e: _Entry) -> str | None:
        """A mirror path of another name of f's inode, holding f's mirror file."""
        if f.mirror_ino is None:
            return None
        for x in self._by_ino.get(e.ino, ()):
            if x is not e:
                path = self.mirror_path(x.rel)
                st = _lstat(path)
                if st is not None and st.st_ino == f.mirror_ino:
                    return path
        return None

    def _set_meta(self, e: _Entry, path: str, st: os.stat_result, attr: EntryAttributes) -> None:
        if e in self._view_attrs:
            e.shown = None
            return                                # the view changed them: passed on at flush()
        if self._root and (st.st_uid, st.st_gid) != (attr.st_uid, attr.st_gid):
            os.lchown(path, attr.st_uid, attr.st_gid)    # before chmod: chown clears set-id bits
            st = os.lstat(path)
            self._ours.add(e)
        if not stat.S_ISLNK(attr.st_mode) and stat.S_IMODE(st.st_mode) != stat.S_IMODE(attr.st_mode):
            os.chmod(path, stat.S_IMODE(attr.st_mode))
            self._ours.add(e)
        f = self._files.get(attr.st_ino) if stat.S_ISREG(attr.st_mode) else None
        if f is not None and f.dirty:
            e.shown = None
            return                                # its mtime is the view's last write
        if (st.st_atime_ns, st.st_mtime_ns) != (attr.st_atime_ns, attr.st_mtime_ns):
            os.utime(path, ns=(attr.st_atime_ns, attr.st_mtime_ns), follow_symlinks=False)
            self._ours.add(e)
        if f is not None:
            f.mirror_key = (attr.st_mtime_ns, st.st_size)
        e.shown = _shown(attr)

    def _copy_xattrs(self, e: _Entry, path: str) -> None:
        """The view reads xattrs from the mirror: copy the file system's."""
        if "listxattr" in self._nosys or stat.S_ISLNK(e.attr.st_mode):
            return
        try:
            names = self.call("listxattr", e.ino, self._ctx)
        except SyscallError as exc:
            if exc.errno == errno.ENOSYS:
                self._nosys.add("listxattr")
            return
        for name in names:
            try:
                with self._access(path, stat.S_IWUSR):
                    os.setxattr(path, name, self.call("getxattr", e.ino, name, self._ctx))
            except (SyscallError, OSError) as exc:
                log.debug("pyfuse3 mount: xattr %r of %s not shown: %s", name, e.rel, exc)
        self._ours.add(e)

    # -- the back end's interface ---------------------------------------------------
    def refresh(self, rel: str) -> None:
        try:
            if rel == "":
                attr = self.call("getattr", ROOT_INODE, self._ctx, expect=EntryAttributes)
                self._apply(self._entries[""], attr)
                return
            parent, name = _split(rel)
            pe = self._entry(parent)
            try:
                attr = self.call("lookup", pe.ino, os.fsencode(name), self._ctx, expect=EntryAttributes)
            except SyscallError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                attr = None
            if attr is None or attr.st_ino == 0:  # st_ino 0: a cached negative entry
                self._drop(rel)
                return
            self._new(rel, self._counted(attr))
        finally:
            self._settle()

    def list_dir(self, rel: str) -> None:
        e = self._entry(rel)
        fh = None
        if "opendir" not in self._nosys:
            try:
                fh = self.call("opendir", e.ino, self._ctx)
            except SyscallError as exc:
                if exc.errno != errno.ENOSYS:
                    raise
                self._nosys.add("opendir")
        entries: dict[bytes, EntryAttributes] = {}
        try:
            off = 0
            while True:                           # again from the last next_id until nothing comes
                token = _Listing()
                self.call("readdir", 0 if fh is None else fh, off, token)
                for name, attr, _ in token.entries:
                    if name not in (b".", b"..") and attr.st_ino:
                        entries[name] = self._counted(attr)   # readdir_reply said True: one lookup
                if not token.entries or token.entries[-1][2] == off:
                    break
                off = token.entries[-1][2]
        finally:
            if fh is not None:
                self._optional("releasedir", fh)
        try:
            with self._changing(rel):
                names = {os.fsdecode(n) for n in entries}
                present = os.listdir(self.mirror_path(rel))
                for name in present:
                    if name not in names:
                        self._drop(_join(rel, name))
                for name in names.difference(present):   # lost from the mirror: made again
                    x = self._entries.get(_join(rel, name))
                    if x is not None:
                        x.shown = None
                for name, attr in entries.items():
                    self._new(_join(rel, os.fsdecode(name)), attr)
        finally:
            self._settle()

    def fill(self, rel: str) -> None:
        e = self._entry(rel)
        self._read_events()                       # a pending write of the view makes it dirty
        self._take_stale()
        f = self._files.get(e.ino) if stat.S_ISREG(e.attr.st_mode) else None
        if f is None or f.dirty or (f.filled and not f.direct):
            return
        path = self.mirror_path(rel)
        fh, fi = self._open(e, os.O_RDONLY)
        try:
            with self._access(path, stat.S_IWUSR):
                fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW)
                try:
                    off = 0
                    while True:
                        data = self.call("read", 0 if fh is None else fh, off, CHUNK)
                        view = memoryview(data)
                        while view:
                            view = view[os.write(fd, view):]
                        off += len(data)
                        if len(data) < CHUNK:     # short read: end of file
                            break
                finally:
                    os.close(fd)
        finally:
            self._ours.add(e)
            self._release(fh)
        attr = self.call("getattr", e.ino, self._ctx, expect=EntryAttributes)   # what was read
        f.filled, f.direct = True, bool(getattr(fi, "direct_io", False))
        f.fs_key = (attr.st_ino, attr.st_mtime_ns, attr.st_size)
        e.attr = attr
        self._set_meta(e, path, os.lstat(path), attr)
        self._settle()

    def flush(self) -> None:
        self._read_events()
        self._take_stale()
        while self._pending:
            self._write_back(self._pending.pop())
        while self._view_attrs:
            self._pass_attrs(self._view_attrs.pop())

    def statfs(self) -> dict | None:
        try:
            st = self.call("statfs", self._ctx, expect=pyfuse3.StatvfsData)
        except SyscallError as exc:
            if exc.errno == errno.ENOSYS:
                return None
            raise
        return {"f_bsize": st.f_frsize or st.f_bsize,    # the unit of the block counts
                "f_blocks": st.f_blocks, "f_bfree": st.f_bfree, "f_bavail": st.f_bavail,
                "f_files": st.f_files, "f_ffree": st.f_ffree, "f_namemax": st.f_namemax}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _live.discard(self)
        try:
            self.flush()
            # unclosed writers, and writes through a shared mapping that
            # inotify does not report
            for names in list(self._by_ino.values()):
                e = next(iter(names))
                f = self._files.get(e.ino)
                if f is not None and (f.dirty or self._changed(e)):
                    self._write_back(e)
        finally:
            counts = [(ino, n) for ino, n in self._nlookup.items() if n]
            self._nlookup.clear()
            if counts:
                try:
                    self.call("forget", counts)
                except SyscallError:
                    pass
            os.close(self._inotify)

    # -- what the view did to the mirror ------------------------------------------------
    def _changed(self, e: _Entry) -> bool:
        """Did the view change e's mirror file, events or not?"""
        f = self._files.get(e.ino)
        if f is None or f.mirror_key is None:
            return False
        st = _lstat(self.mirror_path(e.rel))
        return st is not None and (st.st_mtime_ns, st.st_size) != f.mirror_key

    def _read_events(self) -> None:
        while True:
            try:
                buf = os.read(self._inotify, 64 << 10)
            except BlockingIOError:
                break
            pos = 0
            while pos < len(buf):
                wd, mask, _, size = _EVENT.unpack_from(buf, pos)
                name = buf[pos + _EVENT.size:pos + _EVENT.size + size].rstrip(b"\0")
                pos += _EVENT.size + size
                if mask & IN_Q_OVERFLOW:          # events lost: compare every file
                    for e in list(self._entries.values()):
                        if self._changed(e):
                            self._files[e.ino].dirty = True
                            self._pending.add(e)
                    continue
                d = self._by_wd.get(wd)
                if d is None:
                    continue
                if mask & IN_IGNORED:
                    del self._by_wd[wd]
                    continue
                if not name:
                    continue                      # the directory itself: its parent's watch tells
                e = self._entries.get(_join(d.rel, os.fsdecode(name)))
                if e is None:
                    continue
                f = self._files.get(e.ino)        # regular files only
                if e in self._ours:               # our own doing (but a writer may have closed)
                    if mask & IN_CLOSE_WRITE and f is not None and f.dirty:
                        self._pending.add(e)
                    continue
                if mask & IN_ATTRIB:
                    self._view_attrs.add(e)
                if f is None:
                    continue
                if mask & IN_MODIFY:
                    f.dirty = True
                if mask & IN_CLOSE_WRITE and (f.dirty or self._changed(e)):
                    f.dirty = True
                    self._pending.add(e)
        self._ours.clear()

    def _settle(self) -> None:
        """Read the events our own mirror changes caused, while we know them."""
        if self._ours:
            self._read_events()

    def _take_stale(self) -> None:
        while self._stale:
            f = self._files.get(self._stale.popleft())
            if f is not None:
                f.filled = False

    def _write_back(self, e: _Entry) -> None:
        f = self._files.get(e.ino)
        if self._entries.get(e.rel) is not e or f is None:
            return                                # removed meanwhile
        path = self.mirror_path(e.rel)
        try:
            fh, _ = self._open(e, os.O_WRONLY)
            try:
                with self._access(path, stat.S_IRUSR):
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
                try:
                    size = 0
                    while data := os.read(fd, CHUNK):
                        while data:
                            n = self.call("write", 0 if fh is None else fh, size, data)
                            if not 0 < n <= len(data):
                                log.error("pyfuse3 %s.write returned %r for %d bytes",
                                          type(self.ops).__name__, n, len(data))
                                raise SyscallError(errno.EIO)
                            data, size = data[n:], size + n
                    mtime = os.fstat(fd).st_mtime_ns
                finally:
                    os.close(fd)
                # the size cuts what the file system had beyond ours; the
                # mtime is the view's (a write, or a futimens on the fd)
                try:
                    self._setattr(e, {"size", "mtime"}, fh, st_size=size, st_mtime_ns=mtime)
                except SyscallError as exc:
                    if exc.errno != errno.ENOSYS or \
                            self.call("getattr", e.ino, self._ctx, expect=EntryAttributes).st_size != size:
                        raise
                if fh is not None:
                    self._optional("flush", fh)
            finally:
                self._release(fh)
            attr = self.call("getattr", e.ino, self._ctx, expect=EntryAttributes)
        except (SyscallError, OSError) as exc:
            log.error("pyfuse3 mount: writing %s back failed (%s); the view keeps its copy, "
                      "tried again at the next close and at unmount", e.rel, exc)
            return
        self._ours.add(e)
        f.dirty, f.filled, f.direct = False, True, False
        f.fs_key = (attr.st_ino, attr.st_mtime_ns, attr.st_size)
        e.attr = attr
        self._set_meta(e, path, os.lstat(path), attr)
        self._settle()

    def _pass_attrs(self, e: _Entry) -> None:
        """The view changed e's mode, owner or times through an fd (fchmod,
        fchown, futimens): tell the file system."""
        path = self.mirror_path(e.rel)
        st = _lstat(path)
        if self._entries.get(e.rel) is not e or st is None:
            return
        a, fields, values = e.attr, set(), {}
        if not stat.S_ISLNK(a.st_mode) and stat.S_IMODE(st.st_mode) != stat.S_IMODE(a.st_mode):
            fields.add("mode")
            values["st_mode"] = stat.S_IFMT(a.st_mode) | stat.S_IMODE(st.st_mode)
        if self._root and (st.st_uid, st.st_gid) != (a.st_uid, a.st_gid):
            fields |= {"uid", "gid"}
            values.update(st_uid=st.st_uid, st_gid=st.st_gid)
        dirty = stat.S_ISREG(a.st_mode) and self._files[e.ino].dirty   # write-back passes its mtime
        if not dirty and (st.st_atime_ns, st.st_mtime_ns) != (a.st_atime_ns, a.st_mtime_ns):
            fields |= {"atime", "mtime"}
            values.update(st_atime_ns=st.st_atime_ns, st_mtime_ns=st.st_mtime_ns)
        try:
            if fields:
                try:
                    a = self._setattr(e, fields, **values)
                except SyscallError as exc:
                    log.warning("pyfuse3 mount: %s: the file system refused %s (%s); "
                                "the view shows its attributes again", e.rel, "/".join(sorted(fields)), exc)
            e.shown = None
            self._apply(e, a)
        except (SyscallError, OSError) as exc:    # nobody to tell: flush() runs for another call
            log.error("pyfuse3 mount: %s: %s", e.rel, exc)
        self._settle()

    # -- changes ---------------------------------------------------------------------
    def _parent(self, rel: str) -> tuple[_Entry, bytes]:
        parent, name = _split(rel)
        return self._entry(parent), os.fsencode(name)

    def _made(self, rel: str, attr: EntryAttributes) -> _Entry:
        try:
            return self._new(rel, self._counted(attr))
        finally:
            self._settle()

    def create(self, rel: str, mode: int) -> None:
        pe, name = self._parent(rel)
        mode = stat.S_IFREG | stat.S_IMODE(mode)
        try:
            res = self.call("create", pe.ino, name, mode, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self._ctx)
        except SyscallError as exc:
            if exc.errno != errno.ENOSYS:
                raise
            # the kernel's fallback
            self._made(rel, self.call("mknod", pe.ino, name, mode, 0, self._ctx, expect=EntryAttributes))
            return
        try:
            fi, attr = res
            if not isinstance(attr, EntryAttributes):
                raise TypeError
        except (TypeError, ValueError):
            log.error("pyfuse3 %s.create returned %r, not (FileInfo, EntryAttributes)",
                      type(self.ops).__name__, res)
            raise SyscallError(errno.EIO) from None
        self._release(fi.fh if isinstance(fi, pyfuse3.FileInfo) else fi)
        e = self._made(rel, attr)
        self._files[e.ino].filled = attr.st_size == 0   # nothing to read in a new file

    def mkdir(self, rel: str, mode: int) -> None:
        pe, name = self._parent(rel)
        self._made(rel, self.call("mkdir", pe.ino, name, stat.S_IFDIR | stat.S_IMODE(mode), self._ctx,
                                  expect=EntryAttributes))

    def mknod(self, rel: str, mode: int, rdev: int) -> None:
        pe, name = self._parent(rel)
        self._made(rel, self.call("mknod", pe.ino, name, mode, rdev, self._ctx, expect=EntryAttributes))

    def symlink(self, target: str, rel: str) -> None:
        pe, name = self._parent(rel)
        self._made(rel, self.call("symlink", pe.ino, name, os.fsencode(target), self._ctx,
                                  expect=EntryAttributes))

    def link(self, old_rel: str, new_rel: str) -> None:
        old = self._entry(old_rel)
        pe, name = self._parent(new_rel)
        self._made(new_rel, self.call("link", old.ino, pe.ino, name, self._ctx, expect=EntryAttributes))

    def unlink(self, rel: str) -> None:
        pe, name = self._parent(rel)
        self.call("unlink", pe.ino, name, self._ctx)
        self._drop(rel)
        self._settle()

    def rmdir(self, rel: str) -> None:
        pe, name = self._parent(rel)
        self.call("rmdir", pe.ino, name, self._ctx)
        self._drop(rel)
        self._settle()

    def rename(self, old_rel: str, new_rel: str, flags: int) -> None:
        exchange = flags & RENAME_EXCHANGE
        # the kernel's checks, made before the file system hears of it
        if new_rel.startswith(old_rel + "/"):
            raise SyscallError(errno.EINVAL)      # a directory into itself
        if old_rel.startswith(new_rel + "/"):
            raise SyscallError(errno.EINVAL if exchange else errno.ENOTEMPTY)
        self._read_events()                       # events name the entries as they are now
        old = self._entry(old_rel)
        other = self._entry(new_rel) if exchange else None
        po, no = self._parent(old_rel)
        pn, nn = self._parent(new_rel)
        self.call("rename", po.ino, no, pn.ino, nn, flags, self._ctx)
        if old_rel == new_rel:
            return
        src, dst = self.mirror_path(old_rel), self.mirror_path(new_rel)
        try:
            with self._changing(po.rel), self._changing(pn.rel):
                if other is not None:
                    if _libc.renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst),
                                       RENAME_EXCHANGE):
                        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
                    self._move(old, "\0")         # a name no rel can have
                    self._move(other, old_rel)
                    self._move(old, new_rel)
                    return
                if _lstat(dst) is not None:
                    self._drop(new_rel)           # replaced: its inode may be forgotten
                moving_dir = old.wd is not None and po is not pn and not self._root
                if moving_dir:                    # a directory changing parents updates its '..'
                    os.chmod(src, stat.S_IMODE(old.attr.st_mode) | stat.S_IWUSR)
                os.rename(src, dst)
                if moving_dir:
                    os.chmod(dst, stat.S_IMODE(old.attr.st_mode))
                self._move(old, new_rel)
        except OSError as exc:                    # the file system did it: rebuild from it
            log.warning("pyfuse3 mount: renaming %s to %s in the mirror: %s", old_rel, new_rel, exc)
            self._drop(old_rel)
            self._drop(new_rel)
        finally:
            self._settle()

    def setattr(self, rel: str, *, mode=None, uid=None, gid=None, size=None, atime_ns=None,
                mtime_ns=None) -> None:
        e = self._entry(rel)
        if size is not None and not stat.S_ISREG(e.attr.st_mode):   # the kernel's truncate checks
            raise SyscallError(errno.EISDIR if stat.S_ISDIR(e.attr.st_mode) else errno.EINVAL)
        fields, values = set(), {}
        for field, key, value in (("mode", "st_mode", mode), ("uid", "st_uid", uid), ("gid", "st_gid", gid),
                                  ("size", "st_size", size), ("atime", "st_atime_ns", atime_ns),
                                  ("mtime", "st_mtime_ns", mtime_ns)):
            if value is not None:
                fields.add(field)
                values[key] = value
        if mode is not None:
            values["st_mode"] = stat.S_IFMT(e.attr.st_mode) | stat.S_IMODE(mode)
        attr = self._setattr(e, fields, **values)
        try:
            f = self._files.get(e.ino)
            if size is not None and f is not None:
                path = self.mirror_path(rel)
                with self._access(path, stat.S_IWUSR):
                    os.truncate(path, size)      # the file system cut or grew its copy the same way
                self._ours.add(e)
                f.fs_key = (attr.st_ino, attr.st_mtime_ns, attr.st_size)
            self._apply(e, attr)
            if f is not None and f.dirty and {"atime", "mtime"} & fields:   # write-back passes them on
                os.utime(self.mirror_path(rel), ns=(attr.st_atime_ns, attr.st_mtime_ns))
                self._ours.add(e)
        finally:
            self._settle()

    def _setattr(self, e: _Entry, fields: set[str], fh=None, **values) -> EntryAttributes:
        attr = _copy(e.attr)                      # unchanged fields as the file system gave them
        for key, value in values.items():
            setattr(attr, key, value)
        return self.call("setattr", e.ino, attr, _Fields(fields), fh, self._ctx, expect=EntryAttributes)

    def setxattr(self, rel: str, name: bytes, value: bytes, flags: int) -> None:
        e = self._entry(rel)
        if flags & (os.XATTR_CREATE | os.XATTR_REPLACE):     # as pyfuse3 does it
            try:
                self._xattr("getxattr", e.ino, name, self._ctx)
                exists = True
            except SyscallError as exc:
                if exc.errno != pyfuse3.ENOATTR:
                    raise
                exists = False
            if exists and flags & os.XATTR_CREATE:
                raise SyscallError(errno.EEXIST)
            if not exists and flags & os.XATTR_REPLACE:
                raise SyscallError(pyfuse3.ENOATTR)
        self._xattr("setxattr", e.ino, name, value, self._ctx)
        self._mirror_xattr(e, os.setxattr, name, value)

    def removexattr(self, rel: str, name: bytes) -> None:
        e = self._entry(rel)
        self._xattr("removexattr", e.ino, name, self._ctx)
        self._mirror_xattr(e, os.removexattr, name)

    def _mirror_xattr(self, e: _Entry, change, *args) -> None:
        path = self.mirror_path(e.rel)
        try:
            with self._access(path, stat.S_IWUSR):
                change(path, *args, follow_symlinks=False)
        except OSError as exc:                    # e.g. trusted.* without root: not shown
            log.debug("pyfuse3 mount: xattr %r of %s not shown: %s", args[0], e.rel, exc)
        self._ours.add(e)
        self._settle()
