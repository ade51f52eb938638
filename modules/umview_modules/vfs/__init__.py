"""vfs: mounts that exist only in a view.

Types: bind, tmpfs, hide, cow, merge, archive, pyfuse3 (see docs/vfs.md).
Every path call is resolved through the view's mount table (mounts.py) and
rewritten to the host path that holds the file, so the kernel runs it and
the fd it may return is a real kernel object: read, write, mmap, poll, dup,
fork, exec and fd passing need no trapping at all.  Only the calls that
return paths (getcwd, readlink of /proc/PID/{cwd,fd/N,exe}) are answered
here, translated back to view paths.
"""
from __future__ import annotations

import errno
import functools
import json
import logging
import os
import stat
import struct

from umview_py.module import AT_FDCWD, Call, Claims, Module, Option, SyscallError
from umview_py.syscalls.table import BY_NAME, READS

from .backend import MirrorBackend, MountError
from .mounts import COW_STATE, TYPES, Mount, MountTable, Resolved, join, norm, under

__all__ = ["Vfs", "MountError", "MirrorBackend", "TYPES"]

log = logging.getLogger("umview")

O_ACCMODE = 3
O_PATH = 0o10000000
AT_SYMLINK_NOFOLLOW = 0x100
AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000
AT_REMOVEDIR = 0x200
RESOLVE_NO_XDEV, RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH, RESOLVE_IN_ROOT = 0x01, 0x04, 0x08, 0x10
MS_BIND = 4096
MS_RDONLY = 1
UMOUNT_NOFOLLOW = 8
RENAME_EXCHANGE = 2
SUN_PATH_MAX = 108


def _libc():
    """libc through ctypes, for the two calls os lacks (statfs, renameat2
    with flags); imported when first needed (ctypes costs ~3 ms at start)."""
    global _LIBC
    if _LIBC is None:
        import ctypes
        _LIBC = ctypes, ctypes.CDLL(None, use_errno=True)
    return _LIBC


_LIBC = None

# where the flags that decide symlink following are, for rows with follow=flag
_FLAG_ARG = {"inotify_add_watch": 2, "fanotify_mark": 1, "name_to_handle_at": 4, "newfstatat": 3, "statx": 2, "fchownat": 4, "utimensat": 3, "faccessat2": 3,
             "fchmodat2": 3, "execveat": 4, "linkat": 4, "umount2": 1, "setxattrat": 2,
             "getxattrat": 2, "listxattrat": 2, "removexattrat": 2}
_PROC_LINKS = ("cwd", "exe", "root")


def _mounts_option(text):
    """The `mounts` option: a JSON list of [type, source, target, {options}]."""
    if isinstance(text, list):
        return text
    if not text:
        return []
    value = json.loads(text)
    if not isinstance(value, list):
        raise ValueError("a JSON list")
    return value


class _Skip(Exception):
    """Answer the call with this result, without the kernel."""

    def __init__(self, result):
        self.result = result


class Vfs(Module):
    name = "vfs"
    description = "mounts inside the view: bind, tmpfs, hide, cow, merge, archive, pyfuse3"
    options = {
        "mounts": Option(_mounts_option, [], "JSON list of [type, source, target, {options}]"),
    }

    def __init__(self, **options):
        super().__init__(**options)
        self.table = MountTable()
        self._overlaid: frozenset = frozenset()   # cow targets the core reads (claims)
        # pid -> (loader's host path, program's view path) of a program
        # started through its ELF interpreter (a new root): /proc/PID/exe
        self.exes: dict[int, tuple[str, str]] = {}
        # pid -> (host dir, view path) of its last chdir through us: a bind
        # source is seen at two view paths, and the cwd shows the one used.
        self.cwds: dict[int, tuple[str, str]] = {}
        self._proc_dir: str | None = None  # generated /proc files
        self._proc_seq = 0

    # -- life cycle -----------------------------------------------------------
    def loaded(self, view) -> None:
        for parent in list(view.lineage())[1:]:
            lower = parent.module("vfs")
            if lower is not None:
                self.table.lower = lower.table
                break
        try:
            for item in self.config["mounts"]:
                type_, source, target, *rest = item
                self.add_mount(type_, source, target, rest[0] if rest else {})
        except BaseException:
            self.table.cleanup()
            raise

    def unloaded(self) -> None:
        self.table.cleanup()

    def claims(self) -> Claims:
        """Every path call is trapped, but the C core passes over those whose
        paths lead nowhere near a mount (see Claims.paths): mount points and
        what is above them, the host directories mounts show elsewhere, our
        own directories, and /proc (its mount lists and links to cwds and
        fds tell about mounts)."""
        c = super().claims()
        # datagrams to a named address only (send() is sendto(..., NULL))
        c.arg_nonzero["sendto"] = 4
        c.syscalls.discard("sendmmsg")
        t = self.table
        if t.lower is not None or "/" in t.by_target:
            return c  # a new root: every path is the view's
        if not t.mounts:
            c.paths = ([], [])
            return c
        prefixes = list(t.by_target) + ["/proc"]
        # the host directories mounts show: the view's at and under them;
        # their parents it shows as the host does (not our private root's:
        # it is hidden from listings of its parent)
        layers = [layer for m in t.mounts for layer in m.layers]
        if t.private_root:
            prefixes.append(t.private_root)
        # A writable bind or tmpfs directory is a plain host directory: a call
        # whose path stays inside it can be run by the kernel on the host
        # path (the core checks that it does, and that no other mount is
        # inside; see Claims.paths).
        passes = [(m.target, m.layers[0]) for m in t.mounts
                  if m.type in ("bind", "tmpfs") and not m.readonly and len(t.by_target[m.target]) == 1
                  and os.path.isdir(m.layers[0])]
        # Every mount a pass: nearly every path call is the C core's to
        # answer, so let them come from its seccomp listener.  Other mounts
        # (cow, archive...) send their calls here, and through the listener
        # each would cost a bounce.
        c.paths_in_c = len(passes) == len(t.mounts)
        # A cow mount with nothing deleted (no whiteouts, no opaque
        # directory) is an overlay: the core answers the calls that only
        # read (stat, access, getxattr...) from the upper layer, else the
        # lower one, where their walks meet no symlink and no '..'.  Not
        # through the listener (paths_in_c stays as is): with a cow mount
        # many calls still reach Python, each a bounce; measured, ls -lR in
        # a cow 15.4 -> 13.7 s, but tar -x into one 11.3 -> 12.2-15.2 s.
        self._overlaid = frozenset(m.target for m in t.mounts if self._overlay_ok(m))
        passes += [(m.target, m.layers[0], m.layers[1]) for m in t.mounts if m.target in self._overlaid]
        # The root of an overlay is always in both layers, so a program that
        # opens it (tar -C) gets a listing directory: the shim reads the
        # overlay through it too (Claims.paths).
        listings = [(host, vdir) for host, vdir in t.listings.items() if vdir in self._overlaid]
        c.paths = (prefixes, [], passes, layers, listings)
        return c

    def _overlay_ok(self, m) -> bool:
        return (m.type == "cow" and not m.whiteouts and not m.opaque and len(m.layers) == 2
                and len(self.table.by_target[m.target]) == 1
                and not os.path.lexists(os.path.join(m.layers[0], COW_STATE))
                and all(os.path.isdir(layer) for layer in m.layers))

    def _whiteout(self, res) -> None:
        self.table.whiteout(res)
        self._cow_changed(res)

    def _unwhiteout(self, res, is_dir: bool) -> None:
        self.table.unwhiteout(res, is_dir)
        self._cow_changed(res)

    def _cow_changed(self, res) -> None:
        """After a whiteout was recorded or dropped: the core's overlay for
        the mount goes (or comes back) with it."""
        m = res.mount
        if m is not None and m.type == "cow" and (m.target in self._overlaid) != self._overlay_ok(m):
            self.reclaim()

    def describe(self) -> str:
        return " ".join(f"{m.type}:{m.target}" for m in self.table.mounts)

    def add_mount(self, type_: str, source: str, target: str, options: dict | None = None) -> Mount:
        """Mount in this view (the Python API; umview-mount comes here too)."""
        try:
            m = self.table.mount(type_, source, target, options)
            self.reclaim()
            return m
        except MountError:
            raise
        except OSError as exc:
            raise MountError(f"{type_}: {exc.filename or source}: {exc.strerror}") from None

    def resolve_host(self, path: str) -> str | None:
        """Where the view path lives on the host (used to start a program
        there, or to find it on $PATH)."""
        try:
            res = self.table.resolve(norm(path))
        except SyscallError:
            return None
        if res.host is None or not res.exists:
            return None
        # a directory: its host directory, as a chdir there gives (a cow
        # root is its upper layer, where the core answers reads), unless
        # only a listing can stand for it
        return self._open_target(res) if res.is_dir and res.implicit else res.host

    def started(self, pid: int, cwd: str) -> None:
        """A program started in cwd: a directory that is also shown at a
        mount (a bind source, a cow lower layer) keeps the name it was
        started by, as the kernel would (umview -b /tmp:/mnt, started in
        /tmp/x, is in /tmp/x, not in /mnt/x); see _view_cwd."""
        host = self.resolve_host(cwd)
        if host is None:
            return
        real = os.path.realpath(host)
        if self.table.in_layer(real):
            self._remember_cwd(pid, real, norm(cwd))

    def _remember_cwd(self, pid: int, host: str, vpath: str) -> None:
        """pid's cwd is host, by the name vpath (dropping the records of
        processes gone, now and then)."""
        if len(self.cwds) > 4096:
            self.cwds = {p: r for p, r in self.cwds.items() if os.path.exists(f"/proc/{p}")}
        self.cwds[pid] = (host, vpath)

    def command(self, name: str, args: dict, pid: int) -> dict:
        """In-view commands (umview-mount, umview-umount)."""
        try:
            return self._command(name, args, pid)
        except SyscallError as exc:
            what = args.get("source") or args.get("target") or name
            raise MountError(f"{what}: {os.strerror(exc.errno)}") from None

    def _command(self, name: str, args: dict, pid: int) -> dict:
        if name == "mount":
            source = args.get("source", "")
            if args["type"] in ("bind", "cow", "merge", "archive") or (
                    args["type"] == "pyfuse3" and source):
                source = ":".join(self._view_source(s, pid) for s in source.split(":")) \
                    if args["type"] == "merge" else self._view_source(source, pid)
            m = self.add_mount(args["type"], source, self._abs(args["target"], pid), args.get("options"))
            return {"ok": True, "id": m.id}
        if name == "umount":
            target = self._abs(args["target"], pid)
            self._umount(target)
            return {"ok": True}
        if name == "mounts":
            return {"mounts": [[m.type, m.source, m.target, m.describe_options()]
                               for m in self.table.mounts]}
        raise MountError(f"vfs: no command {name!r}")

    def _abs(self, path: str, pid: int) -> str:
        if path.startswith("/"):
            return norm(path)
        cwd, _ = self.table.to_view(os.readlink(f"/proc/{pid}/cwd"))
        return norm(join(cwd, path))

    def _view_source(self, source: str, pid: int) -> str:
        """A mount source named inside the view is a view path."""
        try:
            res = self.table.resolve(self._abs(source, pid))
        except SyscallError as exc:
            raise MountError(f"{source}: {os.strerror(exc.errno)}") from None
        if res.host is None or not res.exists:
            raise MountError(f"{source}: No such file or directory")
        return res.host

    def _umount(self, target: str) -> None:
        stack = self.table.by_target.get(target)
        if not stack:
            raise MountError(f"{target}: not mounted")
        m = stack[-1]
        if self._busy(m):
            raise MountError(f"{target}: {os.strerror(errno.EBUSY)}")
        self.table.umount(target)
        self.reclaim()

    def _busy(self, m: Mount) -> bool:
        """Does a process of ours have its cwd or an open file in m?  (As the
        kernel's umount, EBUSY then.)"""
        me = str(os.getpid())
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status") as f:
                    tracer = next((line.split()[1] for line in f if line.startswith("TracerPid:")), "0")
                # TracerPid is the tracing thread: is it one of ours?
                if tracer == "0" or not os.path.exists(f"/proc/{me}/task/{tracer}"):
                    continue
                links = [os.readlink(f"/proc/{entry}/cwd")]
                fds = f"/proc/{entry}/fd"
                links += [os.readlink(f"{fds}/{fd}") for fd in os.listdir(fds)]
            except (OSError, StopIteration):
                continue
            for link in links:
                if any(under(link, layer) for layer in m.layers):
                    return True
                view, _ = self.table.to_view(link)
                if under(view, m.target):
                    return True
        return False

    # -- translation ---------------------------------------------------------------
    def _base(self, call: Call, dirfd: int) -> tuple[str, bool]:
        """The view directory relative paths start from, and whether the
        kernel sees the same one."""
        if dirfd == AT_FDCWD:
            return self._view_cwd(call.pid, call.tid)
        try:
            host = os.readlink(f"/proc/{call.pid}/fd/{dirfd}")
        except FileNotFoundError:
            raise SyscallError(errno.EBADF) from None
        except OSError as exc:
            raise SyscallError(exc.errno) from None
        if not host.startswith("/"):  # a socket, a pipe: not a directory
            raise SyscallError(errno.ENOTDIR)
        return self.table.to_view(host)

    def _view_cwd(self, pid: int, tid: int | None = None) -> tuple[str, bool]:
        try:
            host = os.readlink(f"/proc/{tid or pid}/cwd")
        except OSError as exc:
            raise SyscallError(exc.errno) from None
        view, same = self.table.to_view(host)
        if self.cwds and self.table.in_layer(host):
            p = pid
            for _ in range(16):  # our own chdir, or the nearest ancestor's
                rec = self.cwds.get(p)
                if rec is not None and rec[0] == host:
                    return rec[1], rec[1] == host
                p = _ppid(p)
                if p <= 1:
                    break
        return view, same

    def _resolve(self, call: Call, dirfd: int, path: str, follow: bool) -> Resolved | None:
        """Resolve (dirfd, path) in the view; None when the kernel, given the
        call as it is, would reach the same file (the fast case: nothing of
        the view is on the way)."""
        if path.startswith("/"):
            base, same = "/", True
        else:
            try:
                base, same = self._base(call, dirfd)
            except SyscallError:
                return None  # a bad dirfd: the kernel's error, in its order
        vpath = path if path.startswith("/") else join(base.rstrip("/") or "", path) or "/"
        table = self.table
        if same and table.lower is None and not table.covers(norm(vpath)) and "/" not in table.by_target \
                and not vpath.startswith("/proc/"):
            # Let the kernel resolve it as it stands: only if where it really
            # leads (symlinks and '..' included) is outside every mount is
            # the call left alone.
            real = _kernel_path(vpath, follow)
            if real is not None and not table.covers(real):
                return None
        try:
            res = table.resolve(vpath, follow, (call.pid, call.tid))
        except SyscallError:
            if same and table.lower is None and not table.covers(norm(vpath)) \
                    and "/" not in table.by_target:
                return None  # failed before reaching anything of the view
            raise
        if res.mount is not None and res.mount.backend is not None:
            res.mount.backend.flush()
        return res

    def _path(self, call: Call, which: int = 0):
        idx, dirfd_idx = _path_slots(call.name, which)
        dirfd = call.arg(dirfd_idx, bits=32) if dirfd_idx is not None else AT_FDCWD
        ptr = call.args[idx]
        text = call.read_path(ptr) if ptr else None
        return idx, dirfd_idx, dirfd, text

    def _follow(self, call: Call, which: int = 0) -> bool:
        row = BY_NAME[call.name]
        if row.follow != "flag":
            return row.follow == "yes"
        name = call.name
        flags = call.arg(_FLAG_ARG[name], bits=32) if name in _FLAG_ARG else 0
        if name == "inotify_add_watch":
            return not flags & 0x02000000  # IN_DONT_FOLLOW
        if name == "fanotify_mark":
            return not flags & 0x04  # FAN_MARK_DONT_FOLLOW
        if name in ("linkat", "name_to_handle_at"):
            return bool(flags & AT_SYMLINK_FOLLOW) if which == 0 else False
        if name == "umount2":
            return not flags & UMOUNT_NOFOLLOW
        return not flags & AT_SYMLINK_NOFOLLOW

    def _here(self, call: Call, idx: int, dirfd_idx, host: str):
        """Run a call that only reads (stat, xattrs, access) here, on the
        host path, and copy what it wrote into the program: one stop
        instead of the two a rewritten call costs.  The hypervisor has the
        program's credentials.  Rewritten instead when a module below this
        one also serves the call (it must see it), or outside a real view."""
        out = READS.get(call.name)
        serve = getattr(call.memory, "serve_here", None)
        if out is None or serve is None or call._pos < len(call._handlers) - 1:
            self._put(call, idx, dirfd_idx, host)
            return None
        buf_i, size, size_i, name_i = out
        return serve(call.tid, call.nr, call.args, idx, os.fsencode(host),
                     -1 if dirfd_idx is None else dirfd_idx, name_i, buf_i, size, size_i)

    def _put(self, call: Call, idx: int, dirfd_idx, host: str) -> None:
        """Point path argument idx at host (and its dirfd at AT_FDCWD)."""
        call.rewrite(**{f"arg{idx}": call.scratch(os.fsencode(host) + b"\0")})
        if dirfd_idx is not None:
            call.rewrite(**{f"arg{dirfd_idx}": AT_FDCWD})

    def _target(self, call: Call, which: int = 0, follow: bool | None = None):
        """Resolve the which-th path of the call: (res or None, idx, dirfd_idx).
        None also when the path cannot be read, or is empty: the kernel then
        fails the call itself, and checks its other arguments first, as it
        always does (EINVAL for bad flags before EFAULT or ENOENT)."""
        try:
            idx, dirfd_idx, dirfd, text = self._path(call, which)
        except SyscallError:
            return None, BY_NAME[call.name].path_args[which], None
        if not text:
            return None, idx, dirfd_idx
        res = self._resolve(call, dirfd, text, self._follow(call, which) if follow is None else follow)
        return res, idx, dirfd_idx

    @staticmethod
    def _visible(res: Resolved) -> Resolved:
        if res.host is None or (res.mount is not None and res.mount.type == "hide"):
            raise SyscallError(errno.ENOENT)
        return res

    @staticmethod
    def _writable(res: Resolved) -> None:
        if res.mount is not None and res.mount.readonly:
            raise SyscallError(errno.EROFS)

    def _open_target(self, res: Resolved) -> str:
        """The host path a program gets when it opens directory res."""
        if res.implicit:
            return self.table.listing(res)
        m = res.mount
        if m is not None and m.backend is not None:
            m.backend.list_dir(res.rel)
            res = self.table.lookup(res.vpath)
        if self.table.needs_listing(res):
            known = self.table.has_listing(res.vpath)
            host = self.table.listing(res)
            if not known and res.vpath in self._overlaid:
                self.reclaim()   # programs may now walk from it in the shim (claims: listings)
            return host
        return res.host

    @staticmethod
    def _umask(call: Call) -> int:
        try:
            with open(f"/proc/{call.pid}/status") as f:
                for line in f:
                    if line.startswith("Umask:"):
                        return int(line.split()[1], 8)
        except OSError:
            pass
        return 0o022

    def _dispatch(self, fn, call):
        try:
            return fn(call)
        except _Skip as s:
            return s.result
        except OSError as exc:
            if exc.errno is None:
                raise
            return -exc.errno

    # -- handlers ------------------------------------------------------------
    # Each returns None to let the kernel run the (possibly rewritten) call,
    # or a result; they raise SyscallError for errors.

    def open(self, call: Call):
        return self._dispatch(self._open, call)

    def _open(self, call: Call):
        name = call.name
        resolve = 0
        if name == "openat2":
            size = call.arg(3)
            if size < 24:
                raise SyscallError(errno.EINVAL)
            flags, mode, resolve = struct.unpack("<QQQ", call.read(call.args[2], 24))
        elif name == "creat":
            flags, mode = os.O_CREAT | os.O_WRONLY | os.O_TRUNC, call.arg(1)
        else:
            fi = 2 if name == "openat" else 1
            flags, mode = call.arg(fi, bits=32), call.arg(fi + 1, bits=32)
            resolve = 0
        excl = flags & os.O_CREAT and flags & os.O_EXCL
        follow = not (flags & os.O_NOFOLLOW or excl or resolve & RESOLVE_NO_SYMLINKS)
        res, idx, dirfd_idx = self._target(call, 0, follow)
        if res is None:
            return None
        special = self._proc_file(call, res)
        if special is not None:
            self._put(call, idx, dirfd_idx, special)
            return None
        if resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT | RESOLVE_NO_XDEV):
            self._check_resolve(call, res, resolve)
        m = res.mount
        writing = (flags & O_ACCMODE) != os.O_RDONLY or flags & os.O_TRUNC
        creating = flags & os.O_CREAT and not res.exists
        if res.host is None or (m is not None and m.type == "hide"):
            raise SyscallError(errno.EACCES if creating else errno.ENOENT)
        if res.exists and excl:
            raise SyscallError(errno.EEXIST)
        if (writing or creating) and m is not None and m.readonly:
            if not (res.is_dir and not creating):
                raise SyscallError(errno.EROFS)
        host = res.host
        if m is not None and m.backend is not None:
            b = m.backend
            if creating:
                perm = mode & ~self._umask(call) & 0o7777
                b.create(res.rel, perm)
                flags &= ~(os.O_EXCL | os.O_CREAT)
                self._set_flags(call, flags)
            elif res.exists and stat.S_ISREG(res.st.st_mode):
                if flags & os.O_TRUNC and writing:
                    b.setattr(res.rel, size=0)
                else:
                    b.fill(res.rel)
        elif m is not None and m.type == "cow":
            if creating:
                host = self.table.copy_up(res)
                self._unwhiteout(res, False)
                self.table.relist(_parent(res.vpath), added=_name(res.vpath))
            elif writing and res.layer == 1 and not res.is_dir:
                host = self.table.copy_up(res, content=not flags & os.O_TRUNC)
        if res.is_dir and not flags & O_PATH:
            host = self._open_target(res)
        self._put(call, idx, dirfd_idx, host)
        return None

    def _check_resolve(self, call: Call, res: Resolved, resolve: int) -> None:
        """openat2's RESOLVE_BENEATH, RESOLVE_IN_ROOT and RESOLVE_NO_XDEV,
        checked in the view (the rewritten call names an absolute host path,
        which the kernel would refuse under them), then taken off the call.
        RESOLVE_IN_ROOT is checked as RESOLVE_BENEATH: a path that would
        leave the root fails with EXDEV instead of being clamped to it."""
        _, _, dirfd, text = self._path(call)
        base, _ = self._base(call, dirfd)
        if resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT):
            if text.startswith("/") or not under(res.vpath, base):
                raise SyscallError(errno.EXDEV)
        if resolve & RESOLVE_NO_XDEV and self.table.mount_at(base)[0] is not res.mount:
            raise SyscallError(errno.EXDEV)
        how = bytearray(call.read(call.args[2], 24))
        struct.pack_into("<Q", how, 16, resolve & ~(RESOLVE_BENEATH | RESOLVE_IN_ROOT | RESOLVE_NO_XDEV))
        call.rewrite(arg2=call.scratch(bytes(how)), arg3=24)

    def _set_flags(self, call: Call, flags: int) -> None:
        if call.name == "openat2":
            how = bytearray(call.read(call.args[2], 24))
            how[0:8] = struct.pack("<Q", flags)
            call.rewrite(arg2=call.scratch(bytes(how)), arg3=24)
        else:
            call.rewrite(**{f"arg{2 if call.name == 'openat' else 1}": flags})
        if call.name == "creat":  # creat has no flags argument: make it open
            call.rewrite(nr=BY_NAME["open"].nr, arg1=flags, arg2=call.args[1])

    def _proc_file(self, call: Call, res: Resolved) -> str | None:
        """/proc/self/mounts and mountinfo list the view's mounts."""
        p = res.vpath
        parts = p.split("/")
        if len(parts) == 3 and parts[1] == "proc" and parts[2] == "mounts":
            kind = "mounts"
        elif len(parts) == 4 and parts[1] == "proc" and parts[3] in ("mounts", "mountinfo"):
            kind = parts[3]
        elif len(parts) == 4 and parts[1] == "proc" and parts[3] == "maps" and parts[2].isdigit():
            return self._maps_file(p)
        else:
            return None
        return self._mount_file(call, kind)

    def _maps_file(self, path: str) -> str | None:
        """/proc/PID/maps with the view's paths for mapped files (a library
        in a mount would show the host directory that holds it)."""
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        out = []
        for line in lines:
            fields = line.split(None, 5)
            if len(fields) == 6 and fields[5].startswith("/"):
                name, deleted = fields[5], ""
                if name.endswith(" (deleted)"):
                    name, deleted = name[:-10], " (deleted)"
                view, same = self.table.to_view(name)
                if not same:
                    line = line[:len(line) - len(fields[5])] + view + deleted
            out.append(line)
        return self._generated("maps", "\n".join(out) + "\n")

    def _generated(self, kind: str, text: str) -> str:
        """A file holding text, for a program to open instead of a /proc
        file.  The last 64 are kept (a program opens its file right after
        we return; an open file outlives its name)."""
        if self._proc_dir is None:
            self._proc_dir = self.table.private_dir("proc")
        self._proc_seq += 1
        dst = join(self._proc_dir, f"{kind}.{self._proc_seq}")
        with open(dst, "w") as f:
            f.write(text)
        old = join(self._proc_dir, f"{kind}.{self._proc_seq - 64}")
        if os.path.exists(old):
            os.unlink(old)
        return dst

    def _mount_file(self, call: Call, kind: str) -> str:
        lines = []
        try:
            with open(f"/proc/{call.pid}/{kind}") as f:
                host_lines = f.read().splitlines()
        except OSError:
            host_lines = []
        covered = self.table.covers
        for line in host_lines:
            fields = line.split(" ")
            point = fields[1] if kind == "mounts" else fields[4]
            point = point.replace("\\040", " ")
            if covered(point) and point != "/":
                continue
            lines.append(line)
        tables = []
        t = self.table
        while t is not None:
            tables.append(t)
            t = t.lower
        for table in reversed(tables):
            for m in table.mounts:
                target = m.target.replace(" ", "\\040")
                source = (m.source or m.type).replace(" ", "\\040")
                if kind == "mounts":
                    lines.append(f"{source} {target} umview.{m.type} {m.describe_options()} 0 0")
                else:
                    lines.append(f"{10000 + m.id} 1 0:0 / {target} {m.describe_options()} - "
                                 f"umview.{m.type} {source} {m.describe_options()}")
        return self._generated(kind, "\n".join(lines) + "\n")

    def stat(self, call: Call):
        res, idx, dirfd_idx = self._target(call)
        if res is None:
            return None
        self._visible(res)
        if not res.exists:
            raise SyscallError(errno.ENOENT)
        return self._here(call, idx, dirfd_idx, res.host)

    def access(self, call: Call):
        res, idx, dirfd_idx = self._target(call)
        if res is None:
            return None
        self._visible(res)
        if not res.exists:
            raise SyscallError(errno.ENOENT)
        mode = call.arg(2 if call.name != "access" else 1, bits=32)
        if mode & os.W_OK and res.mount is not None and res.mount.readonly:
            raise SyscallError(errno.EROFS)
        return self._here(call, idx, dirfd_idx, res.host)

    getxattr = listxattr = stat

    def watch(self, call: Call):
        """inotify_add_watch, fanotify_mark, name_to_handle_at: the file the
        view means, watched or named by the kernel."""
        if call.name == "fanotify_mark" and not call.args[4]:
            return None  # the dirfd itself
        return self.stat(call)

    def readlink(self, call: Call):
        size_i = BY_NAME[call.name].path_args[0] + 2
        if call.arg(size_i, bits=32) <= 0:
            return None  # EINVAL: the kernel checks it first
        try:
            idx, dirfd_idx, dirfd, text = self._path(call)
            link = self._proc_link(call, dirfd, text) if text else None
        except SyscallError:
            return None  # an unreadable path or a bad dirfd: the kernel's error
        if not text:
            return None
        # /proc/PID/fd/N, cwd, exe of a process in the view hold host paths:
        # read them here and answer with the view path.
        if link is not None:
            buf, size = call.args[idx + 1], call.arg(idx + 2, bits=32)
            data = os.fsencode(link)[:size]
            call.write(buf, data)
            return len(data)
        res = self._resolve(call, dirfd, text, False)
        if res is None:
            return None
        self._visible(res)
        if not res.exists:
            raise SyscallError(errno.ENOENT)
        self._put(call, idx, dirfd_idx, res.host)
        return None

    def _proc_link(self, call: Call, dirfd: int, text: str) -> str | None:
        if not text.startswith("/proc/"):
            if dirfd == AT_FDCWD or not text:
                return None
            base, _ = self._base(call, dirfd)
            if not base.startswith("/proc/"):
                return None
            text = join(base, text)
        parts = text.split("/")[2:]
        if not parts:
            return None
        who = parts[0]
        if who == "self":
            proc = f"/proc/{call.pid}"
        elif who == "thread-self":
            proc = f"/proc/{call.pid}/task/{call.tid}"
        elif who.isdigit():
            proc = f"/proc/{who}"
        else:
            return None
        rest = parts[1:]
        if len(rest) == 3 and rest[0] == "task" and rest[1].isdigit():
            proc, rest = f"{proc}/task/{rest[1]}", rest[2:]
        if rest == ["cwd"]:
            pid = call.pid if who in ("self", "thread-self") else int(who)
            return self._view_cwd(pid)[0]
        if not ((len(rest) == 1 and rest[0] in _PROC_LINKS)
                or (len(rest) == 2 and rest[0] == "fd" and rest[1].isdigit())):
            return None
        try:
            host = os.readlink(f"{proc}/{'/'.join(rest)}")
        except OSError as exc:
            raise SyscallError(exc.errno) from None
        if not host.startswith("/"):
            return host  # pipe:[..], socket:[..], anon_inode:...
        if rest == ["exe"]:
            pid = call.pid if who in ("self", "thread-self") else int(who)
            rec = self.exes.get(pid)
            if rec is not None and rec[0] == host:
                return rec[1]
        suffix = ""
        if host.endswith(" (deleted)"):
            host, suffix = host[:-10], " (deleted)"
        view, _ = self.table.to_view(host)
        return view + suffix

    def getcwd(self, call: Call):
        view, same = self._view_cwd(call.pid, call.tid)
        if same:
            return None
        data = os.fsencode(view) + b"\0"
        if len(data) > call.arg(1):
            raise SyscallError(errno.ERANGE)
        call.write(call.args[0], data)
        return len(data)

    def chdir(self, call: Call):
        res, idx, dirfd_idx = self._target(call, follow=True)
        if res is None:
            if call.name == "chdir" and self.cwds.get(call.pid) or self.table.mounts:
                real = _kernel_path(self._full(call, 0), True)
                if real is not None:
                    self._remember_cwd(call.pid, real, real)
            return None
        self._visible(res)
        if not res.exists:
            raise SyscallError(errno.ENOENT)
        if not res.is_dir:
            raise SyscallError(errno.ENOTDIR)
        if call.name == "chdir":
            self._remember_cwd(call.pid, os.path.realpath(res.host), res.vpath)
        self._put(call, idx, dirfd_idx, res.host)
        return None

    def chroot(self, call: Call):
        return self.chdir(call)

    def execve(self, call: Call):
        res, idx, dirfd_idx = self._target(call)
        if res is None:
            return self._exec_outside(call, idx)
        self._visible(res)
        if not res.exists:
            raise SyscallError(errno.ENOENT)
        m = res.mount
        if m is not None and m.backend is not None and stat.S_ISREG(res.st.st_mode):
            m.backend.fill(res.rel)
        host = res.host
        interp = self._script_interpreter(host)
        if interp is not None:
            ires = self._visible(self.table.resolve(norm(interp[0])))
            if not ires.exists:
                raise SyscallError(errno.ENOENT)
            moved = res.mount is not None or ires.mount is not None
            if moved and not os.access(host, os.X_OK):
                raise SyscallError(errno.EACCES)
            # a script in a mount: the kernel would give the interpreter the
            # host path as $0; an interpreter in a mount: it would look for
            # it on the host
            if moved or ires.host != os.path.realpath(interp[0]):
                return self._exec_script(call, idx, ires, interp)
        loader = self._foreign_loader(host)
        if loader is not None:
            return self._exec_as(call, idx, res, [], 0, loader)
        self._put(call, idx, dirfd_idx, host)
        return None

    def _exec_outside(self, call: Call, idx: int):
        """A program outside every mount whose #! interpreter is the view's:
        the kernel would look for the interpreter on the host, so run it as
        the kernel would.  Anything else: the kernel's."""
        try:
            host = _kernel_path(self._full(call, 0), True) if call.args[idx] else None
        except SyscallError:
            return None
        interp = self._script_interpreter(host) if host else None
        if interp is None:
            return None
        try:
            ires = self.table.resolve(norm(interp[0]))
        except SyscallError:
            return None
        if ires.mount is None and ires.host == os.path.realpath(interp[0]):
            return None
        self._visible(ires)
        if not ires.exists:
            raise SyscallError(errno.ENOENT)
        if not os.access(host, os.X_OK):
            raise SyscallError(errno.EACCES)
        return self._exec_script(call, idx, ires, interp)

    def _exec_script(self, call: Call, idx: int, ires: Resolved, interp):
        """The kernel would look the interpreter up on the host: run it
        ourselves as the kernel would: INTERP [ARG] SCRIPT ARGS."""
        im = ires.mount
        if im is not None and im.backend is not None:
            im.backend.fill(ires.rel)
        head = [os.fsencode(interp[0])] + ([interp[1]] if interp[1] else [])
        return self._exec_as(call, idx, ires, head + [call.args[idx]], 1)

    @staticmethod
    def _script_interpreter(host: str):
        """(interpreter, its optional argument) of a #! script, or None."""
        try:
            with open(host, "rb") as f:
                head = f.read(256)
        except OSError:
            return None
        if not head.startswith(b"#!"):
            return None
        line = head[2:].split(b"\n", 1)[0].strip()
        if not line:
            return None
        interp, _, arg = line.partition(b" ")
        interp = os.fsdecode(interp)
        if not interp.startswith("/"):
            return None
        return interp, arg.strip()

    def _foreign_loader(self, host: str) -> Resolved | None:
        """The ELF interpreter (PT_INTERP) of host, when the view has it
        somewhere else than the host (a new root): the kernel would load the
        host's.  None for static programs and when the host's is the view's."""
        try:
            with open(host, "rb") as f:
                ehdr = f.read(64)
                if len(ehdr) < 64 or ehdr[:4] != b"\x7fELF" or ehdr[4] != 2:
                    return None
                phoff, = struct.unpack_from("<Q", ehdr, 32)
                phentsize, phnum = struct.unpack_from("<HH", ehdr, 54)
                f.seek(phoff)
                phdrs = f.read(phentsize * min(phnum, 256))
                for k in range(len(phdrs) // phentsize):
                    p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", phdrs, k * phentsize)
                    if p_type == 3:  # PT_INTERP
                        f.seek(p_offset)
                        interp = f.read(min(p_filesz, 4096)).split(b"\0", 1)[0].decode()
                        break
                else:
                    return None
        except (OSError, UnicodeDecodeError, struct.error):
            return None
        if not interp.startswith("/"):
            return None
        lres = self.table.resolve(norm(interp))
        if lres.host is None or not lres.exists or lres.host == os.path.realpath(interp):
            return None
        m = lres.mount
        if m is not None and m.backend is not None:
            m.backend.fill(lres.rel)
        return lres

    def _exec_as(self, call: Call, idx: int, exe: Resolved, head: list, drop: int,
                 loader: Resolved | None = None):
        """Rewrite an exec: run exe with argv = head + the program's argv
        without its first `drop` entries (entries: bytes to copy, or
        addresses of the program's own strings).  With a loader (the ELF
        interpreter of a new root), run the loader on exe instead, as
        `ld.so --argv0 ARGV0 PROGRAM ARGS` (glibc's loader; others get
        `LOADER PROGRAM ARGS`)."""
        argv_ptr = call.args[idx + 1]
        old = []
        for i in range(4096):
            ptr = struct.unpack("<Q", call.read(argv_ptr + 8 * i, 8))[0] if argv_ptr else 0
            if not ptr:
                break
            old.append(ptr)
        items = head + old[drop:]
        if loader is None:
            loader = self._foreign_loader(exe.host)
        target = exe
        if loader is not None:
            argv0 = items[0] if items else os.fsencode(exe.vpath)
            glibc = os.path.basename(loader.vpath).startswith("ld-linux")
            items = [os.fsencode(loader.vpath)] + (["--argv0", argv0] if glibc else []) + \
                [os.fsencode(exe.vpath)] + items[1:]
            target = loader
            self.exes[call.pid] = (loader.host, exe.vpath)
        new = [call.scratch((it.encode() if isinstance(it, str) else it) + b"\0")
               if isinstance(it, (bytes, str)) else it for it in items]
        arr = call.scratch(struct.pack(f"<{len(new) + 1}Q", *new, 0))
        host = call.scratch(os.fsencode(target.host) + b"\0")
        if call.name == "execveat":
            call.rewrite(nr=BY_NAME["execve"].nr, arg0=host, arg1=arr, arg2=call.args[3])
        else:
            call.rewrite(arg0=host, arg1=arr)
        return None

    def _change(self, call: Call, which: int = 0, follow: bool | None = None):
        """Resolve a path whose file is about to change (attributes)."""
        res, idx, dirfd_idx = self._target(call, which, follow)
        if res is None and dirfd_idx is not None:
            res = self._empty_path_file(call, idx, dirfd_idx)
        if res is None:
            return None, idx, dirfd_idx
        self._visible(res)
        if not res.exists:
            raise SyscallError(errno.ENOENT)
        self._writable(res)
        return res, idx, dirfd_idx

    def _empty_path_file(self, call: Call, idx: int, dirfd_idx: int):
        """utimensat(fd, NULL), and "" with AT_EMPTY_PATH: the dirfd's own
        file, when it is in a mount (None: the kernel's)."""
        row = BY_NAME[call.name]
        ptr = call.args[idx]
        if ptr:
            flags_i = row.args.index("flags") if "flags" in row.args else None
            if flags_i is None or not call.arg(flags_i, bits=32) & AT_EMPTY_PATH:
                return None
            try:
                if call.read_string(ptr, 1):
                    return None
            except SyscallError:
                return None
        return self._fd_res(call, call.arg(dirfd_idx, bits=32))

    def _fd_res(self, call: Call, fd: int):
        """The view's file behind the caller's open file fd (its
        /proc/PID/fd/N link, followed), when it is in a mount."""
        if fd < 0:
            return None
        try:
            res = self.table.resolve(f"/proc/self/fd/{fd}", True, (call.pid, call.tid))
        except SyscallError:
            return None
        return res if res.mount is not None else None

    # -- calls on an fd's own file -----------------------------------------
    # The fds a program gets are the files themselves, so these are the
    # kernel's, except where the file must not change in place: a cow
    # mount's lower layer (copied up, and changed there: stat of the path
    # shows the change; the fd goes on reading the file it opened), a
    # read-only mount (EROFS).  The C core sends only those here (fd_class).
    def _fd_file(self, call: Call, op):
        res = self._fd_res(call, call.arg(0, bits=32))
        if res is None or res.mount.backend is not None:
            return None
        self._writable(res)
        if res.mount.type != "cow":
            return None
        host = self.table.copy_up(res)
        try:
            op(host)
        except OSError as exc:
            return -exc.errno
        return 0

    def fchmod(self, call: Call):
        mode = call.arg(1, bits=32) & 0o7777
        return self._fd_file(call, lambda host: os.chmod(host, mode))

    def fchown(self, call: Call):
        uid, gid = call.arg(1, bits=32), call.arg(2, bits=32)   # -1: keep
        return self._fd_file(call, lambda host: os.chown(host, uid, gid))

    def fsetxattr(self, call: Call):
        def op(host):
            name = os.fsdecode(call.read_string(call.args[1], 255))
            os.setxattr(host, name, call.read(call.args[2], call.arg(3)), call.arg(4, bits=32))
        return self._fd_file(call, op)

    def fremovexattr(self, call: Call):
        return self._fd_file(call, lambda host: os.removexattr(
            host, os.fsdecode(call.read_string(call.args[1], 255))))

    def _attr(self, call: Call, backend_op):
        res, idx, dirfd_idx = self._change(call)
        if res is None:
            return None
        m = res.mount
        if m is not None and m.backend is not None:
            backend_op(m.backend, res)
            return 0
        host = res.host
        if m is not None and m.type == "cow":
            host = self.table.copy_up(res)
        self._put(call, idx, dirfd_idx, host)
        return None

    def chmod(self, call: Call):
        mode = call.arg(2 if call.name in ("fchmodat", "fchmodat2") else 1, bits=32) & 0o7777
        return self._dispatch(lambda c: self._attr(c, lambda b, r: b.setattr(r.rel, mode=mode)), call)

    def chown(self, call: Call):
        i = 2 if call.name == "fchownat" else 1
        uid, gid = call.arg(i, bits=32), call.arg(i + 1, bits=32)
        keep = -1
        return self._dispatch(lambda c: self._attr(c, lambda b, r: b.setattr(
            r.rel, uid=None if uid == keep else uid, gid=None if gid == keep else gid)), call)

    def truncate(self, call: Call):
        size = call.arg(1)
        if size < 0:
            raise SyscallError(errno.EINVAL)

        def op(b, r):
            if size:
                b.fill(r.rel)
            b.setattr(r.rel, size=size)
        return self._dispatch(lambda c: self._attr(c, op), call)

    def utimens(self, call: Call):
        return self._dispatch(lambda c: self._attr(c, self._backend_utimens(c)), call)

    def _backend_utimens(self, call: Call):
        def op(b, r):
            import time
            now = time.time_ns()
            name = call.name
            ptr = call.args[2 if name in ("utimensat", "futimesat") else 1]
            if not ptr:
                at = mt = now
            elif name == "utimensat":
                a_s, a_ns, m_s, m_ns = struct.unpack("<qqqq", call.read(ptr, 32))
                at = now if a_ns == (1 << 30) - 1 else None if a_ns == (1 << 30) - 2 else a_s * 10**9 + a_ns
                mt = now if m_ns == (1 << 30) - 1 else None if m_ns == (1 << 30) - 2 else m_s * 10**9 + m_ns
            elif name == "utime":
                a, mm = struct.unpack("<qq", call.read(ptr, 16))
                at, mt = a * 10**9, mm * 10**9
            else:
                a_s, a_us, m_s, m_us = struct.unpack("<qqqq", call.read(ptr, 32))
                at, mt = a_s * 10**9 + a_us * 1000, m_s * 10**9 + m_us * 1000
            b.setattr(r.rel, atime_ns=at, mtime_ns=mt)
        return op

    def setxattr(self, call: Call):
        def op(b, r):
            i = 1 if call.name != "setxattrat" else 3
            if call.name == "setxattrat":
                raise SyscallError(errno.EOPNOTSUPP)
            name = call.read_string(call.args[i], 255)
            value = call.read(call.args[i + 1], call.arg(i + 2))
            b.setxattr(r.rel, name, value, call.arg(i + 3, bits=32))
        return self._dispatch(lambda c: self._attr(c, op), call)

    def removexattr(self, call: Call):
        def op(b, r):
            if call.name == "removexattrat":
                raise SyscallError(errno.EOPNOTSUPP)
            b.removexattr(r.rel, call.read_string(call.args[1], 255))
        return self._dispatch(lambda c: self._attr(c, op), call)

    # -- namespace changes ---------------------------------------------------
    def _new(self, call: Call, which: int = 0):
        """Resolve the path of an entry about to be created."""
        res, idx, dirfd_idx = self._target(call, which, False)
        if res is None:
            return None, idx, dirfd_idx
        m = res.mount
        if res.host is None or (m is not None and m.type == "hide"):
            raise SyscallError(errno.EACCES)
        if res.exists:
            raise SyscallError(errno.EEXIST)
        self._writable(res)
        return res, idx, dirfd_idx

    def mkdir(self, call: Call):
        return self._dispatch(self._mkdir, call)

    def _mkdir(self, call: Call):
        res, idx, dirfd_idx = self._new(call)
        if res is None:
            return None
        mode = call.arg(2 if call.name == "mkdirat" else 1, bits=32) & 0o7777 & ~self._umask(call)
        m = res.mount
        if m is not None and m.backend is not None:
            m.backend.mkdir(res.rel, mode)
            return 0
        if m is not None and m.type == "cow":
            host = self.table.copy_up(res)
            os.mkdir(host, mode)
            os.chmod(host, mode)
            self._unwhiteout(res, True)
            self.table.relist(_parent(res.vpath))
            return 0
        self._put(call, idx, dirfd_idx, res.host)
        return None

    def mknod(self, call: Call):
        return self._dispatch(self._mknod, call)

    def _mknod(self, call: Call):
        res, idx, dirfd_idx = self._new(call)
        if res is None:
            return None
        i = 2 if call.name == "mknodat" else 1
        mode, dev = call.arg(i, bits=32), call.arg(i + 1)
        m = res.mount
        if m is not None and m.backend is not None:
            m.backend.mknod(res.rel, (mode & ~0o7777) | (mode & 0o7777 & ~self._umask(call)), dev)
            return 0
        if m is not None and m.type == "cow":
            host = self.table.copy_up(res)
            self._unwhiteout(res, False)
            self.table.relist(_parent(res.vpath), added=_name(res.vpath))
            self._put(call, idx, dirfd_idx, host)
            return None
        self._put(call, idx, dirfd_idx, res.host)
        return None

    def symlink(self, call: Call):
        return self._dispatch(self._symlink, call)

    def _symlink(self, call: Call):
        res, idx, dirfd_idx = self._new(call)
        if res is None:
            return None
        m = res.mount
        if m is not None and (m.backend is not None or m.type == "cow"):
            target = call.read_path(call.args[0])
            if m.backend is not None:
                m.backend.symlink(target, res.rel)
            else:
                host = self.table.copy_up(res)
                os.symlink(target, host)
                self._unwhiteout(res, False)
                self.table.relist(_parent(res.vpath))
            return 0
        self._put(call, idx, dirfd_idx, res.host)
        return None

    def _refuse_mount_point(self, res: Resolved) -> None:
        if res.vpath in self.table.by_target or res.implicit:
            raise SyscallError(errno.EBUSY)

    def unlink(self, call: Call):
        return self._dispatch(self._unlink, call)

    def _unlink(self, call: Call):
        rmdir = call.name == "rmdir" or (call.name == "unlinkat" and call.arg(2, bits=32) & AT_REMOVEDIR)
        last = _last(self._path(call)[3])
        if rmdir and last in (".", ".."):
            raise SyscallError(errno.EINVAL if last == "." else errno.ENOTEMPTY)
        res, idx, dirfd_idx = self._target(call, 0, False)
        if res is None:
            return None
        self._visible(res)
        if not res.exists:
            raise SyscallError(errno.ENOENT)
        self._refuse_mount_point(res)
        self._writable(res)
        m = res.mount
        if rmdir and not res.is_dir:
            raise SyscallError(errno.ENOTDIR)
        if not rmdir and res.is_dir:
            raise SyscallError(errno.EISDIR)
        if m is not None and m.backend is not None:
            (m.backend.rmdir if rmdir else m.backend.unlink)(res.rel)
            return 0
        if m is not None and m.type == "cow":
            if rmdir and self.table.entries(res):
                raise SyscallError(errno.ENOTEMPTY)
            if res.layer == 0:
                if rmdir:
                    os.rmdir(res.host)
                else:
                    os.unlink(res.host)
            self._whiteout(res)
            self.table.relist(_parent(res.vpath))
            return 0
        self._put(call, idx, dirfd_idx, res.host)
        return None

    def rename(self, call: Call):
        return self._dispatch(self._rename, call)

    def _two(self, call: Call):
        old, oidx, odirfd = self._target(call, 0, False)
        new, nidx, ndirfd = self._target(call, 1, False)
        if old is None or new is None:
            try:
                texts = [self._path(call, w)[3] for w in (0, 1)]
            except SyscallError:
                return None  # an unreadable path: the kernel fails the call
            if old is None and new is None or not all(texts):
                return None
        table = self.table
        if old is None:
            old = table.resolve(self._full(call, 0), False)
        if new is None:
            new = table.resolve(self._full(call, 1), False)
        self._visible(old)
        if not old.exists:
            raise SyscallError(errno.ENOENT)
        if new.host is None or (new.mount is not None and new.mount.type == "hide"):
            raise SyscallError(errno.EACCES)
        if old.mount is not new.mount:
            raise SyscallError(errno.EXDEV)
        self._writable(old)
        return old, oidx, odirfd, new, nidx, ndirfd

    def _full(self, call: Call, which: int) -> str:
        _, _, dirfd, text = self._path(call, which)
        if text.startswith("/"):
            return text
        base, _ = self._base(call, dirfd)
        return join(base.rstrip("/") or "", text) or "/"

    def _rename(self, call: Call):
        if _last(self._path(call, 0)[3]) in (".", "..") or _last(self._path(call, 1)[3]) in (".", ".."):
            raise SyscallError(errno.EBUSY)
        got = self._two(call)
        if got is None:
            return None
        old, oidx, odirfd, new, nidx, ndirfd = got
        self._refuse_mount_point(old)
        if new.exists:
            self._refuse_mount_point(new)
        flags = call.arg(4, bits=32) if call.name == "renameat2" else 0
        m = old.mount
        if m is not None and m.backend is not None:
            m.backend.rename(old.rel, new.rel, flags)
            return 0
        if m is not None and m.type == "cow":
            if new.exists and new.is_dir and self.table.entries(new):
                if old.is_dir and not flags & RENAME_EXCHANGE:
                    raise SyscallError(errno.ENOTEMPTY)
            # A directory the lower layer has (part of) is copied up whole
            # first: overlayfs answers EXDEV there, which programs other
            # than mv do not expect.
            for r in (old, new) if flags & RENAME_EXCHANGE else (old,):
                if r.is_dir and self.table.in_lower(r):
                    self.table.copy_up_tree(r)
            old, new = self.table.lookup(old.vpath), self.table.lookup(new.vpath)
            src = self.table.copy_up(old)
            dst = self.table.copy_up(new)
            _renameat2(src, dst, flags)
            if not flags & RENAME_EXCHANGE:
                self._whiteout(old)
            self._unwhiteout(new, old.is_dir)
            if old.is_dir:
                self.table.make_opaque(new)
            self.table.relist(_parent(old.vpath))
            self.table.relist(_parent(new.vpath))
            return 0
        self._put(call, oidx, odirfd, old.host)
        self._put(call, nidx, ndirfd, new.host)
        return None

    def link(self, call: Call):
        return self._dispatch(self._link, call)

    def _link(self, call: Call):
        got = self._two(call)
        if got is None:
            return None
        old, oidx, odirfd, new, nidx, ndirfd = got
        if new.exists:
            raise SyscallError(errno.EEXIST)
        m = old.mount
        if m is not None and m.backend is not None:
            m.backend.link(old.rel, new.rel)
            return 0
        if m is not None and m.type == "cow":
            os.link(self.table.copy_up(old), self.table.copy_up(new))
            self._unwhiteout(new, False)
            self.table.relist(_parent(new.vpath))
            return 0
        self._put(call, oidx, odirfd, old.host)
        self._put(call, nidx, ndirfd, new.host)
        if call.name == "linkat":  # we resolved the old path already
            call.rewrite(arg4=call.arg(4, bits=32) & ~AT_SYMLINK_FOLLOW)
        return None

    def statfs(self, call: Call):
        return self._dispatch(self._statfs, call)

    def _statfs(self, call: Call):
        res, idx, dirfd_idx = self._target(call)
        if res is None:
            return None
        self._visible(res)
        if not res.exists:
            raise SyscallError(errno.ENOENT)
        m = res.mount
        fields = None
        if m is not None and m.backend is not None:
            fields = m.backend.statfs()
        elif m is not None and m.size is not None:
            used = sum(os.lstat(os.path.join(d, f)).st_blocks * 512
                       for d, _, files in os.walk(m.layers[0]) for f in files)
            blocks = m.size // 4096
            free = max(0, (m.size - used) // 4096)
            fields = {"f_bsize": 4096, "f_blocks": blocks, "f_bfree": free, "f_bavail": free}
        if fields is None:
            self._put(call, idx, dirfd_idx, res.host)
            return None
        ctypes, libc = _libc()
        buf = ctypes.create_string_buffer(120)
        if libc.statfs(os.fsencode(res.host), buf) != 0:
            raise SyscallError(ctypes.get_errno())
        raw = bytearray(buf.raw)
        offsets = {"f_type": 0, "f_bsize": 8, "f_blocks": 16, "f_bfree": 24, "f_bavail": 32,
                   "f_files": 40, "f_ffree": 48, "f_namemax": 64, "f_frsize": 72}
        for key, value in fields.items():
            if key in offsets:
                struct.pack_into("<q", raw, offsets[key], int(value))
        if "f_bsize" in fields and "f_frsize" not in fields:
            struct.pack_into("<q", raw, 72, int(fields["f_bsize"]))
        call.write(call.args[1], bytes(raw))
        return 0

    # -- mount(2) / umount2(2) from programs in the view ---------------------
    def mount(self, call: Call):
        return self._dispatch(self._mount_call, call)

    def _mount_call(self, call: Call):
        source = call.read_path(call.args[0]) if call.args[0] else ""
        target = call.read_path(call.args[1])
        fstype = call.read_path(call.args[2]) if call.args[2] else ""
        flags = call.arg(3)
        data = call.read_string(call.args[4], 4096).decode(errors="replace") if call.args[4] else ""
        options = dict(kv.partition("=")[::2] for kv in data.split(",") if kv)
        if flags & MS_RDONLY:
            options["ro"] = ""
        if flags & MS_BIND:
            type_ = "bind"
        else:
            type_ = fstype[7:] if fstype.startswith("umview.") else fstype
        if type_ not in TYPES:
            raise SyscallError(errno.ENODEV)
        tres = self._visible(self.table.resolve(self._abs_call(call, target)))
        if not tres.exists:
            raise SyscallError(errno.ENOENT)
        try:
            args = {"type": type_, "source": source, "target": tres.vpath, "options": options}
            self.command("mount", args, call.pid)
        except MountError as exc:
            log.warning("mount(2) in the view: %s", exc)
            raise SyscallError(errno.EINVAL) from None
        return 0

    def _abs_call(self, call: Call, path: str) -> str:
        if path.startswith("/"):
            return norm(path)
        base, _ = self._base(call, AT_FDCWD)
        return norm(join(base, path))

    def umount(self, call: Call):
        target = self._abs_call(call, call.read_path(call.args[0]))
        if target not in self.table.by_target:
            res = self.table.resolve(target)
            if res.vpath not in self.table.by_target:
                return -errno.EINVAL
            target = res.vpath
        try:
            self._umount(target)
        except MountError:
            return -errno.EBUSY
        return 0

    # -- unix socket paths ---------------------------------------------------
    def bind(self, call: Call):
        return self._dispatch(lambda c: self._sockaddr(c, 1, 2, creating=True), call)

    def connect(self, call: Call):
        return self._dispatch(lambda c: self._sockaddr(c, 1, 2, creating=False), call)

    def sendto(self, call: Call):
        return self._dispatch(lambda c: self._sockaddr(c, 4, 5, creating=False), call)

    def sendmsg(self, call: Call):
        """sendmsg: msg_name (a struct msghdr's first field, its length the
        second) may be a unix socket path.  (sendmmsg: not looked at.)"""
        if call.name != "sendmsg" or not call.args[1]:
            return None
        return self._dispatch(self._sendmsg, call)

    def _sendmsg(self, call: Call):
        hdr = bytearray(call.read(call.args[1], 56))
        name, namelen = struct.unpack_from("<QI", hdr, 0)
        new = self._unix_path(call, name, namelen, False)
        if new is None:
            return None
        struct.pack_into("<QI", hdr, 0, call.scratch(new), len(new))
        call.rewrite(arg1=call.scratch(bytes(hdr)))
        return None

    def _sockaddr(self, call: Call, ai: int, li: int, creating: bool):
        new = self._unix_path(call, call.args[ai], call.arg(li, bits=32), creating)
        if new is not None:
            call.rewrite(**{f"arg{ai}": call.scratch(new), f"arg{li}": len(new)})
        return None

    def _unix_path(self, call: Call, ptr: int, size: int, creating: bool) -> bytes | None:
        """The sockaddr to use instead of the program's, or None."""
        if not ptr or size <= 2 or size > 110:
            return None
        raw = call.read(ptr, size)
        family = struct.unpack("<H", raw[:2])[0]
        if family != 1 or raw[2] == 0:  # not AF_UNIX, or an abstract name
            return None
        path = os.fsdecode(raw[2:].split(b"\0", 1)[0])
        res = self._resolve(call, AT_FDCWD, path, True)
        if res is None:
            return None
        if res.host is None or (res.mount is not None and res.mount.type == "hide"):
            raise SyscallError(errno.EACCES if creating else errno.ENOENT)
        host = res.host
        if creating and res.mount is not None and res.mount.type == "cow":
            host = self.table.copy_up(res)
        data = os.fsencode(host)
        if len(data) >= SUN_PATH_MAX:
            raise SyscallError(errno.ENAMETOOLONG)
        return struct.pack("<H", 1) + data + b"\0"


# calls _here runs itself: name -> (output buffer arg, its size in bytes,
# the arg holding its size instead (the result is then the length), the
# xattr name arg); -1: none


@functools.lru_cache(maxsize=None)
def _path_slots(name: str, which: int) -> tuple[int, int | None]:
    """(index of the which-th path argument, index of its dirfd or None)."""
    row = BY_NAME[name]
    idx = row.path_args[which]
    return idx, idx - 1 if idx > 0 and row.args[idx - 1] == "dirfd" else None


def _parent(vpath: str) -> str:
    return vpath.rsplit("/", 1)[0] or "/"


def _name(vpath: str) -> str:
    return vpath.rsplit("/", 1)[1]


def _last(path: str | None) -> str:
    """The last component of a path as the program wrote it."""
    return (path or "").rstrip("/").rpartition("/")[2]


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _kernel_path(path: str, follow: bool) -> str | None:
    """Where the kernel resolves path (ours are the same as the tracee's
    when nothing of the view is on the way), or, when it does not exist,
    where its parent directory is plus the name.  None: it cannot tell (a
    symlink, followed last, that leads nowhere on the host may lead into a
    mount in the view)."""
    flags = os.O_PATH | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if follow and os.path.lexists(path):
            return None
        head, _, tail = path.rstrip("/").rpartition("/")
        try:
            fd = os.open(head or "/", os.O_PATH)
        except OSError:
            return None
        try:
            return join(os.readlink(f"/proc/self/fd/{fd}").rstrip("/"), tail)
        finally:
            os.close(fd)
    except OSError:
        return None
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _renameat2(src: str, dst: str, flags: int) -> None:
    if flags == 0:
        os.rename(src, dst)
        return
    ctypes, libc = _libc()
    fn = libc.renameat2
    if fn(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags) != 0:
        raise SyscallError(ctypes.get_errno())
