"""fakeroot: run programs as a fake root.

Inside the view every process believes it is root (or the `uid`/`gid`
given): the identity calls answer the emulated credentials, the set*id calls
succeed as they would for root and change them, capget reports root's
capabilities.  chown, chmod and mknod of devices are remembered instead of
failing, and every stat variant shows what was remembered.  With `db=FILE`
the remembered ownership persists across runs in an sqlite database.

How it works, and why (docs/fakeroot.md has the user's side):

* Ownership records are keyed by the file's (st_dev, st_ino) and carry a
  *generation*: the file's handle (name_to_handle_at: for ext4, xfs, btrfs,
  tmpfs... it holds the inode's generation number, which changes when the
  inode is reused) and its statx birth time (stx_btime); on a file system
  with neither, the ctime when the record was written.  The birth time alone
  is not enough: it comes from the kernel's coarse clock (a jiffy, 4 ms
  here: 90 of 200 pairs of files created back to back had the same one),
  and ext4 hands a freed inode to the very next file created.  A record
  whose generation does not match the file found at its key is stale and is
  dropped, never applied.  Renames and hard links keep the key, so the owner
  follows the file wherever it moves, inside the view or outside.

* The stat family is served at the seccomp stop, in one stop: the
  hypervisor runs statx itself on the path by which it reaches the tracee's
  file (`Call.host_path`: /proc/PID/cwd/..., /proc/PID/fd/N/...,
  /proc/PID/root/...; for an fd, its own copy of the tracee's open file
  from pidfd_getfd), patches owner, mode and rdev, writes the result into
  the tracee and skips the call.  Whenever that does not succeed (bad
  pointer, missing file, bad dirfd, bad flags, ...) the handler steps aside
  and the kernel runs the call: the program gets exactly the kernel's error,
  never one we computed.  Paths that name the *reader's* process
  (/proc/self, /proc/thread-self, /dev/fd, /dev/stdin...) are spelled with
  the tracee's pid; what lands on procfs itself is left to the kernel.

* Files never chowned show the emulated uid/gid (as fakeroot shows uid 0
  for everything it does not know); `others=real` keeps the real owner of
  files that belong to other users.

* Credentials are per view until a process calls a set*id function; from
  then on that process has its own (pid, start time) entry.  The module sees
  no fork events: a process without an entry inherits from its nearest
  ancestor that has one (walked through /proc/PID/stat), and when a process
  changes its credentials its existing children are first given a copy of
  the old ones, so that they keep what they inherited at fork.

* The database is written by one background thread (a plain handler must
  never block the tracer thread on a disk write or a lock held by another
  view): one sqlite transaction per change, WAL journal, busy timeout for
  concurrent views.  A hypervisor killed with SIGKILL loses at most the
  changes still queued; the database itself is never corrupted.

* Extended attributes of the `security.` and `trusted.` namespaces (which
  only a privileged process may set) live in the file's record, never on
  disk; the other namespaces are the kernel's.  Reading calls
  (getxattr/listxattr, which `ls -l` makes twice per file) are claimed only
  once the view has such an attribute: until then they never stop.

* Executing a set-user-ID/set-group-ID file changes the emulated ids when
  the exec has happened.  The core reports no exec event to modules (and
  `await call.kernel()` of a successful execve never returns), so the execve
  stop only notes the change with a fingerprint of the process image (the
  16 random bytes the kernel puts at AT_RANDOM for every new image); the
  change is applied at the first credential lookup that sees another image.

* `load=`/`save=` read and write fakeroot's `-i`/`-s` text format.  Its
  records are keyed by (st_dev, st_ino) alone; at load time they are mapped
  to files by walking the `search=` directories, and each becomes a record
  with the generation of the file found there.
"""
from __future__ import annotations

import atexit
import ctypes
import errno
import fcntl
import logging
import os
import re
import select
import stat as S
import struct
import threading
import time

from umview_py import Module, ModuleError, Option, StatOwner, SyscallError

log = logging.getLogger("umview.fakeroot")

AT_FDCWD = -100
AT_FDCWD32 = AT_FDCWD & 0xFFFFFFFF   # as a raw 32-bit argument
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
STATX_BASIC_STATS = 0x7FF
STATX_BTIME = 0x800
O_PATH = getattr(os, "O_PATH", 0o10000000)
NO_ID = 0xFFFFFFFF                 # (uid_t)-1: "leave unchanged"
NGROUPS_MAX = 65536

# extended attributes (linux/xattr.h, linux/limits.h)
XATTR_CREATE, XATTR_REPLACE = 1, 2
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 65536
XATTR_LIST_MAX = 65536
XATTR_ARGS_SIZE = 16                # struct xattr_args (the *xattrat calls)
EMULATED_XATTRS = (b"security.", b"trusted.")   # what root alone may set
XATTR_READS = frozenset({"getxattr", "lgetxattr", "fgetxattr", "getxattrat",
                         "listxattr", "llistxattr", "flistxattr", "listxattrat"})
# security.capability: struct vfs_cap_data, revisions 2 and 3 (the only
# ones setxattr accepts: cap_convert_nscap's validheader())
VFS_CAP_REVISION_MASK, VFS_CAP_REVISION_2, VFS_CAP_REVISION_3 = 0xFF000000, 0x02000000, 0x03000000
XATTR_CAPS_SZ_2, XATTR_CAPS_SZ_3 = 20, 24
AT_RANDOM = 25                      # auxv entry: address of 16 random bytes of each new image

# capget/capset versions (linux/capability.h)
CAP_V1, CAP_V2, CAP_V3 = 0x19980330, 0x20071026, 0x20080522
CAP_WORDS = {CAP_V1: 1, CAP_V2: 2, CAP_V3: 2}

# struct statx, the part we read (offsets from linux/stat.h):
# mask blksize attributes nlink uid gid mode (pad) ino size blocks
# attributes_mask atime btime ctime mtime rdev_major rdev_minor dev_major dev_minor
STATX = struct.Struct("<IIQIIIH2xQQQQqI4xqI4xqI4xqI4xIIII")
STATX_SIZE = 256
(X_MASK, X_BLKSIZE, X_ATTR, X_NLINK, X_UID, X_GID, X_MODE, X_INO, X_SIZE, X_BLOCKS, X_ATTRMASK,
 X_ATIME, X_ATIME_NS, X_BTIME, X_BTIME_NS, X_CTIME, X_CTIME_NS, X_MTIME, X_MTIME_NS,
 X_RDEV_MAJ, X_RDEV_MIN, X_DEV_MAJ, X_DEV_MIN) = range(23)
OFF_UID, OFF_GID, OFF_MODE, OFF_BTIME, OFF_RDEV = 20, 24, 28, 80, 128

# x86_64 struct stat (144 bytes): dev ino nlink mode uid gid pad rdev size
# blksize blocks atime atime_ns mtime mtime_ns ctime ctime_ns, 3 reserved
STAT = struct.Struct("<QQQIIIiQqqqqqqqqq24x")

# Paths whose meaning depends on the process that resolves them: /proc/self
# is the *reader's* process, so the hypervisor must spell out the tracee's
# pid (glibc's fchmodat(AT_SYMLINK_NOFOLLOW) chmods "/proc/self/fd/N", tar
# uses it for every file it extracts).  /dev/fd and /dev/std* are symlinks
# into /proc/self.
def _per_process(path: bytes, pid: int, tid: int):
    """The tracee's own spelling of a /proc/self-relative path, or None."""
    if not path.startswith((b"/proc/", b"/dev/")):
        return None
    for prefix, repl in ((b"/proc/self", b"/proc/%d" % pid),
                         (b"/proc/thread-self", b"/proc/%d/task/%d" % (pid, tid)),
                         (b"/dev/fd", b"/proc/%d/fd" % pid)):
        if path == prefix or path.startswith(prefix + b"/"):
            return repl + path[len(prefix):]
    std = {b"/dev/stdin": 0, b"/dev/stdout": 1, b"/dev/stderr": 2}.get(path.rstrip(b"/"))
    if std is not None:
        return b"/proc/%d/fd/%d%s" % (pid, std, b"/" if path.endswith(b"/") else b"")
    return None


# ----------------------------------------------------------------------
# statx through libc (Python 3.11 has no os.statx)

_libc = ctypes.CDLL(None, use_errno=True)
try:
    _statx_fn = _libc.statx
    _statx_fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
    _statx_fn.restype = ctypes.c_int
except AttributeError:  # glibc < 2.28: the raw system call
    _syscall = _libc.syscall
    _syscall.restype = ctypes.c_long

    def _statx_fn(dirfd, path, flags, mask, buf):
        return _syscall(ctypes.c_long(332), ctypes.c_long(dirfd), ctypes.c_char_p(path),
                        ctypes.c_long(flags), ctypes.c_long(mask), buf)


def statx(path, flags: int = 0, mask: int = STATX_BASIC_STATS | STATX_BTIME, dirfd: int = AT_FDCWD):
    """The raw 256-byte struct statx of path (bytes or str); OSError on failure."""
    buf = ctypes.create_string_buffer(STATX_SIZE)
    if _statx_fn(dirfd, os.fsencode(path), flags, mask, buf) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    return buf.raw


# pidfd_getfd(2): a copy of a tracee's open file in the hypervisor.  A statx
# on it costs a fraction of resolving /proc/PID/fd/N (procfs lookups and a
# ptrace access check on every call).
_raw_syscall = _libc.syscall
_raw_syscall.restype = ctypes.c_long
SYS_PIDFD_GETFD = 438


def pidfd_getfd(pidfd: int, fd: int) -> int:
    """The hypervisor's own copy of the tracee's fd (close it), or -1."""
    return _raw_syscall(ctypes.c_long(SYS_PIDFD_GETFD), ctypes.c_long(pidfd), ctypes.c_long(fd),
                        ctypes.c_long(0))


_tls = threading.local()


def _statx_buffer():
    """A struct statx buffer of this thread's own (plain handlers run on the
    tracer thread, async ones and tests elsewhere): the hot path allocates
    nothing."""
    try:
        return _tls.buf
    except AttributeError:
        _tls.buf = ctypes.create_string_buffer(STATX_SIZE)
        return _tls.buf


def encode_dev(major: int, minor: int) -> int:
    """The kernel's new_encode_dev(): st_dev/st_rdev as struct stat has them."""
    return (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)


def decode_dev(dev: int) -> tuple[int, int]:
    """The kernel's new_decode_dev() of mknod's 32-bit dev argument."""
    return (dev & 0xFFF00) >> 8, (dev & 0xFF) | ((dev >> 12) & 0xFFF00)


_n2h = getattr(_libc, "name_to_handle_at", None)
if _n2h is not None:
    _n2h.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                     ctypes.c_int]
    _n2h.restype = ctypes.c_int
MAX_HANDLE_SZ = 128


def file_handle(fd: int) -> str:
    """The file handle of the open file fd (hex of type and bytes), or ""
    when its file system has none."""
    if _n2h is None:
        return ""
    buf = ctypes.create_string_buffer(8 + MAX_HANDLE_SZ)
    struct.pack_into("<I", buf, 0, MAX_HANDLE_SZ)
    mount_id = ctypes.c_int()
    if _n2h(fd, b"", buf, ctypes.byref(mount_id), AT_EMPTY_PATH) != 0:
        return ""
    size, kind = struct.unpack_from("<Ii", buf, 0)
    return "%x:%s" % (kind & 0xFFFFFFFF, buf.raw[8:8 + size].hex())


def generation(f, handle: str) -> tuple:
    """What tells this file from a later one that reuses its inode:
    (kind, seconds, nanoseconds, handle), kind b (birth time), h (handle
    only) or c (ctime: neither a birth time nor a handle)."""
    if f[X_MASK] & STATX_BTIME:
        return ("b", f[X_BTIME], f[X_BTIME_NS], handle)
    if handle:
        return ("h", 0, 0, handle)
    return ("c", f[X_CTIME], f[X_CTIME_NS], "")


def identify_fd(fd: int):
    """(statx fields, generation) of the open file fd, read consistently."""
    f = STATX.unpack_from(statx(b"", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, dirfd=fd))
    return f, generation(f, file_handle(fd))


def identify(path, nofollow: bool):
    """(statx fields, generation) of path, through one O_PATH descriptor so
    that both describe the same file."""
    fd = os.open(path, O_PATH | os.O_CLOEXEC | (os.O_NOFOLLOW if nofollow else 0))
    try:
        return identify_fd(fd)
    finally:
        os.close(fd)


def _answer_buffer(call, addr: int, size: int, data: bytes, limit: int) -> int:
    """getxattr/listxattr's answer: the length when asked (size 0), else
    data copied to the caller's buffer, or ERANGE when it does not fit."""
    if size == 0:
        return len(data)
    if len(data) > min(size, limit):
        raise SyscallError(errno.ERANGE)
    call.write(addr, data)
    return len(data)


def file_key(f) -> tuple[int, int]:
    return (os.makedev(f[X_DEV_MAJ], f[X_DEV_MIN]), f[X_INO])


def _fd_path(fd: int) -> str | None:
    """Where the hypervisor's open file fd is now (for the record's path
    column: information, and the load-time staleness check)."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return target if target.startswith("/") and not target.endswith(" (deleted)") else None


# ----------------------------------------------------------------------
# records and credentials

class Record:
    """What the view remembers about one file.  None means "as on disk"
    (for uid/gid: as any unrecorded file shows).

    Permission bits live on disk whenever the real chmod could set them; a
    `perm` override is kept only for the bits it could not (a file that is
    not ours, set-group-ID refused, the owner rw bits we always keep on
    disk), together with `disk_perm`, the disk's bits when the override was
    made.  When something we do not see changes the disk's bits later (a
    chmod outside the view, cp -a setting a mode through a POSIX ACL
    xattr), the override is outdated and the disk wins."""

    __slots__ = ("gen", "uid", "gid", "kind", "perm", "disk_perm", "rdev", "path", "xattrs")

    def __init__(self, gen, uid=None, gid=None, kind=None, perm=None, disk_perm=None, rdev=None,
                 path=None, xattrs=None):
        self.gen = gen
        self.uid = uid
        self.gid = gid
        self.kind = kind            # S_IFCHR / S_IFBLK of a device placeholder
        self.perm = perm            # 0o7777 bits shown instead of the disk's...
        self.disk_perm = disk_perm  # ...while the disk has these
        self.rdev = rdev            # (major, minor) of a device placeholder
        self.path = path            # last known path (information, load-time check)
        # security.*/trusted.* attributes: name -> value, or None for one
        # the disk has and the view removed
        self.xattrs = xattrs

    def copy(self, gen=None) -> "Record":
        return Record(self.gen if gen is None else gen, self.uid, self.gid, self.kind, self.perm,
                      self.disk_perm, self.rdev, self.path,
                      None if self.xattrs is None else dict(self.xattrs))

    def empty(self) -> bool:
        return (self.uid is None and self.gid is None and self.kind is None and self.perm is None
                and not self.xattrs)

    def mode(self, disk_mode: int) -> int:
        """st_mode shown for a file whose st_mode on disk is disk_mode."""
        mode = disk_mode
        if self.perm is not None and self.disk_perm == disk_mode & 0o7777:
            mode = (mode & ~0o7777) | self.perm
        if self.kind is not None:
            mode = self.kind | (mode & 0o7777)
        return mode

    def values(self) -> tuple:
        return (self.uid, self.gid, self.kind, self.perm, self.disk_perm)

    def __repr__(self):
        return (f"Record(uid={self.uid}, gid={self.gid}, kind={self.kind}, perm={self.perm}, "
                f"disk_perm={self.disk_perm}, rdev={self.rdev}, xattrs={self.xattrs}, "
                f"gen={self.gen})")


def xattrs_to_text(xattrs) -> str | None:
    """The database's spelling of a record's attributes: JSON, names as
    text (surrogate escapes for other bytes), values in hex, null for a
    removed one."""
    if not xattrs:
        return None
    import json   # here, as below: json's import and regexes cost every start
    return json.dumps({os.fsdecode(k): (None if v is None else v.hex())
                       for k, v in sorted(xattrs.items())})


def xattrs_from_text(text):
    if not text:
        return None
    import json
    return {os.fsencode(k): (None if v is None else bytes.fromhex(v))
            for k, v in json.loads(text).items()}


class Creds:
    """Emulated credentials of a process (immutable: changes make a new one)."""

    __slots__ = ("ruid", "euid", "suid", "fsuid", "rgid", "egid", "sgid", "fsgid", "groups")

    def __init__(self, ruid, euid, suid, fsuid, rgid, egid, sgid, fsgid, groups):
        for k, v in zip(self.__slots__, (ruid, euid, suid, fsuid, rgid, egid, sgid, fsgid, groups)):
            object.__setattr__(self, k, v)

    def __setattr__(self, k, v):
        raise AttributeError("Creds are immutable")

    def replace(self, **kw):
        values = {k: getattr(self, k) for k in self.__slots__}
        values.update(kw)
        return Creds(**values)

    def __eq__(self, other):
        return isinstance(other, Creds) and all(getattr(self, k) == getattr(other, k)
                                                for k in self.__slots__)

    def ids(self) -> tuple:
        """The user and group ids, the groups left out."""
        return tuple(getattr(self, k) for k in self.__slots__[:8])

    def __hash__(self):
        return hash(tuple(getattr(self, k) for k in self.__slots__))

    def __repr__(self):
        return ("Creds(uid=%d/%d/%d/%d gid=%d/%d/%d/%d groups=%s)"
                % tuple(getattr(self, k) for k in self.__slots__))


def _proc_stat(pid: int):
    """(ppid, start time) of pid, or None if it is gone."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[1]), int(rest[19])


def _children(pid: int) -> list[int]:
    """Live processes whose parent is pid (no CONFIG_PROC_CHILDREN here:
    scan /proc; this runs only when a process changes its credentials)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_stat(int(name))
            if st and st[0] == pid:
                out.append(int(name))
    return out


def _cap_last() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40


def _id_option(text):
    v = int(text)
    if not 0 <= v < NO_ID:
        raise ValueError(f"{v} is not a valid id")
    return v


def _others_option(text):
    if text not in ("root", "real"):
        raise ValueError("others must be root or real")
    return text


def _abs_path(text):
    if not text:
        raise ValueError("a file name is needed")
    return os.path.abspath(os.path.expanduser(text))


def _search_option(text):
    dirs = [os.path.abspath(os.path.expanduser(d)) for d in str(text).split(":") if d]
    if not dirs:
        raise ValueError("at least one directory is needed")
    return dirs


# ----------------------------------------------------------------------
# persistence

sqlite3 = None   # imported by the first Store


class Store:
    """The sqlite side.  Loaded once; then written by a background thread,
    one transaction per change."""

    SCHEMA = """
        CREATE TABLE IF NOT EXISTS files (
            dev INTEGER NOT NULL, ino INTEGER NOT NULL,
            gen_kind TEXT NOT NULL, gen_sec INTEGER NOT NULL, gen_nsec INTEGER NOT NULL,
            gen_handle TEXT NOT NULL,
            uid INTEGER, gid INTEGER, kind INTEGER, perm INTEGER, disk_perm INTEGER,
            rdev_major INTEGER, rdev_minor INTEGER,
            path TEXT, xattrs TEXT,
            PRIMARY KEY (dev, ino));
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
        INSERT OR IGNORE INTO meta VALUES ('format', 'umview-fakeroot 1');
    """

    def __init__(self, path: str):
        global sqlite3
        import sqlite3   # here: ~8 ms of every start without db=
        self.path = path
        try:
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout=30000")
            # Two views creating the same database at once: switching it to
            # WAL can answer "locked" at once, without the busy timeout, so
            # the set-up is retried for a while.
            for attempt in range(40):
                try:
                    self._setup(path)
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or attempt == 39:
                        raise
                    time.sleep(0.01 * (attempt + 1))
        except sqlite3.Error as exc:
            raise ModuleError(f"module fakeroot: cannot use database {path!r}: {exc}") from None
        import queue   # only with a database
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._writer, name="fakeroot-db", daemon=True)
        self.thread.start()
        self.closed = False
        atexit.register(self.close)

    def _setup(self, path: str) -> None:
        mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            log.warning("fakeroot db %s: journal mode is %s, not WAL", path, mode)
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(self.SCHEMA)
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(files)")}
        if "xattrs" not in columns:   # a database from before xattrs were kept
            self.conn.execute("ALTER TABLE files ADD COLUMN xattrs TEXT")

    def load(self) -> dict:
        """All records; stale ones (the path still names the same inode but
        its generation changed) are dropped from the database."""
        records, stale = {}, []
        try:
            rows = self.conn.execute("SELECT dev, ino, gen_kind, gen_sec, gen_nsec, gen_handle, uid, "
                                     "gid, kind, perm, disk_perm, rdev_major, rdev_minor, path, "
                                     "xattrs FROM files").fetchall()
        except sqlite3.Error as exc:
            raise ModuleError(f"module fakeroot: cannot read database {self.path!r}: {exc}") from None
        for dev, ino, gk, gs, gn, gh, uid, gid, kind, perm, disk_perm, rmaj, rmin, path, xa in rows:
            gen = (gk, gs, gn, gh)
            if path:
                try:
                    f, fgen = identify(path, nofollow=True)
                except OSError:
                    f = None  # gone from there: renamed, maybe; checked at each use
                if f is not None and file_key(f) == (dev, ino) and fgen != gen:
                    stale.append((dev, ino, gen))
                    continue
            try:
                xattrs = xattrs_from_text(xa)
            except (ValueError, TypeError, AttributeError):
                log.warning("fakeroot db %s: unreadable xattrs of %s ignored", self.path, path)
                xattrs = None
            records[(dev, ino)] = Record(gen, uid, gid, kind, perm, disk_perm,
                                         None if rmaj is None else (rmaj, rmin), path, xattrs)
        for dev, ino, gen in stale:
            self.delete((dev, ino), gen)
        if stale:
            log.info("fakeroot db %s: dropped %d stale records", self.path, len(stale))
        return records

    def put(self, key, rec: Record) -> None:
        self.queue.put(("put", key, (rec.gen,) + rec.values() + (rec.rdev, rec.path,
                                                                  xattrs_to_text(rec.xattrs))))

    def delete(self, key, gen) -> None:
        self.queue.put(("del", key, gen))

    def flush(self) -> None:
        """Wait until every queued change is in the database."""
        if not self.closed:
            self.queue.join()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.queue.put(None)
        self.thread.join()
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

    def _writer(self) -> None:
        conn = self.conn
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                op, (dev, ino), data = item
                for attempt in range(5):
                    try:
                        if op == "put":
                            gen, *values, rdev, path, xattrs = data
                            rmaj, rmin = rdev if rdev else (None, None)
                            conn.execute("INSERT OR REPLACE INTO files (dev, ino, gen_kind, gen_sec, "
                                         "gen_nsec, gen_handle, uid, gid, kind, perm, disk_perm, "
                                         "rdev_major, rdev_minor, path, xattrs) VALUES "
                                         "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                         (dev, ino, *gen, *values, rmaj, rmin, path, xattrs))
                        else:
                            conn.execute("DELETE FROM files WHERE dev=? AND ino=? AND gen_kind=? "
                                         "AND gen_sec=? AND gen_nsec=? AND gen_handle=?",
                                         (dev, ino, *data))
                        break
                    except sqlite3.OperationalError as exc:  # locked past the busy timeout
                        if attempt == 4:
                            log.error("fakeroot db %s: change lost: %s", self.path, exc)
                    except sqlite3.Error as exc:
                        log.error("fakeroot db %s: change lost: %s", self.path, exc)
                        break
            finally:
                self.queue.task_done()


# ----------------------------------------------------------------------
# fakeroot's own state files (`fakeroot -s FILE` writes one, `-i FILE` reads it)

# faked.c save_database(), as Debian builds it: one line per inode,
#   dev=%llx,ino=%llu,mode=%llo,uid=%llu,gid=%llu,nlink=%llu,rdev=%llu
# dev and rdev in glibc's dev_t encoding (os.makedev), mode the whole st_mode.
# (patterns, compiled by re's cache at first use, not at every start)
FAKEROOT_LINE = (rb"dev=([0-9a-fA-F]+),ino=([0-9]+),mode=([0-7]+),uid=([0-9]+),"
                 rb"gid=([0-9]+),nlink=([0-9]+),rdev=([0-9]+)")
# A fakeroot configured --with-dbformat=path keys its lines by path instead:
#   mode=%llo,uid=%llu,gid=%llu,nlink=%llu,rdev=%llu PATH
FAKEROOT_PATH_LINE = (rb"mode=([0-7]+),uid=([0-9]+),gid=([0-9]+),nlink=([0-9]+),"
                      rb"rdev=([0-9]+) (.+)")


class StateEntry:
    """One line of a fakeroot state file."""

    __slots__ = ("dev", "ino", "mode", "uid", "gid", "nlink", "rdev", "path")

    def __init__(self, dev, ino, mode, uid, gid, nlink, rdev, path=None):
        self.dev, self.ino, self.mode, self.nlink, self.rdev = dev, ino, mode, nlink, rdev
        self.uid, self.gid = uid & NO_ID, gid & NO_ID   # fakeroot stores uid_t in 64 bits
        self.path = path   # the path-keyed format only

    def __repr__(self):
        return (f"StateEntry(dev={self.dev:#x}, ino={self.ino}, mode={self.mode:o}, uid={self.uid}, "
                f"gid={self.gid}, rdev={self.rdev}, path={self.path!r})")


def read_fakeroot_state(path: str) -> list[StateEntry]:
    """The entries of a fakeroot state file; ModuleError when it cannot be
    read or a line is not in fakeroot's format (fakeroot itself silently
    stops at such a line)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ModuleError(f"module fakeroot: cannot read fakeroot state {path!r}: "
                          f"{exc.strerror}") from None
    out = []
    for n, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        m = re.fullmatch(FAKEROOT_LINE, line.strip())
        if m:
            dev, ino, mode, uid, gid, nlink, rdev = m.groups()
            out.append(StateEntry(int(dev, 16), int(ino), int(mode, 8), int(uid), int(gid),
                                  int(nlink), int(rdev)))
            continue
        m = re.fullmatch(FAKEROOT_PATH_LINE, line)
        if m:
            mode, uid, gid, nlink, rdev, where = m.groups()
            out.append(StateEntry(None, None, int(mode, 8), int(uid), int(gid), int(nlink),
                                  int(rdev), os.fsdecode(where)))
            continue
        raise ModuleError(f"module fakeroot: {path}:{n}: not a line of fakeroot's state format: "
                          f"{line[:80]!r}")
    return out


def fakeroot_line(dev: int, ino: int, mode: int, uid: int, gid: int, nlink: int, rdev: int) -> str:
    """One line of fakeroot's state format, as faked.c writes it."""
    return "dev=%x,ino=%d,mode=%o,uid=%d,gid=%d,nlink=%d,rdev=%d\n" % (dev, ino, mode, uid, gid,
                                                                       nlink, rdev)


def record_from_state(e: StateEntry, f, gen, path: str):
    """The record that shows the file (statx fields f, generation gen) as
    fakeroot's entry e says, or None when e cannot be about that file (its
    type differs: the inode was reused since fakeroot saw it).  A device
    fakeroot made is an empty regular file on disk, as umview makes them."""
    disk = f[X_MODE]
    dtype, rtype = S.S_IFMT(disk), S.S_IFMT(e.mode)
    rec = Record(gen, uid=e.uid, gid=e.gid, path=path)
    if rtype in (S.S_IFCHR, S.S_IFBLK):
        if dtype == S.S_IFREG:
            rec.kind = rtype
        elif dtype != rtype:
            return None
        rec.rdev = (os.major(e.rdev), os.minor(e.rdev))
    elif rtype != dtype:
        return None
    if not S.S_ISLNK(disk) and e.mode & 0o7777 != disk & 0o7777:
        rec.perm, rec.disk_perm = e.mode & 0o7777, disk & 0o7777
    return rec


def find_inodes(roots, wanted) -> dict:
    """{(dev, ino): path} for the keys of wanted found under the directories
    roots (symlinks not followed, /proc and /sys not entered); the walk
    stops as soon as all are found."""
    left = set(wanted)
    found = {}
    skip = set()
    for special in ("/proc", "/sys"):
        try:
            skip.add(os.stat(special).st_dev)
        except OSError:
            pass
    stack, seen = [], set()
    for root in roots:
        try:
            st = os.lstat(root)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in left:
            found[key] = root
            left.discard(key)
        if S.S_ISDIR(st.st_mode) and key not in seen and st.st_dev not in skip:
            seen.add(key)
            stack.append(root)
    while stack and left:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                key = (st.st_dev, st.st_ino)
                if key in left:
                    found[key] = entry.path
                    left.discard(key)
                if S.S_ISDIR(st.st_mode) and key not in seen and st.st_dev not in skip:
                    seen.add(key)
                    stack.append(entry.path)
    return found


def valid_caps(value: bytes) -> bool:
    """Whether setxattr would take value as security.capability (revision
    2 or 3 header of the matching size)."""
    if len(value) not in (XATTR_CAPS_SZ_2, XATTR_CAPS_SZ_3):
        return False
    rev = struct.unpack_from("<I", value)[0] & VFS_CAP_REVISION_MASK
    return (len(value), rev) in ((XATTR_CAPS_SZ_2, VFS_CAP_REVISION_2),
                                 (XATTR_CAPS_SZ_3, VFS_CAP_REVISION_3))


def exec_fingerprint(pid: int) -> bytes | None:
    """What tells one program image of process pid from the next: the
    address and contents of the 16 random bytes the kernel gives each new
    image (auxv AT_RANDOM).  None if they cannot be read."""
    try:
        with open(f"/proc/{pid}/auxv", "rb") as f:
            auxv = f.read()
        for i in range(0, len(auxv) - 15, 16):
            kind, value = struct.unpack_from("<QQ", auxv, i)
            if kind == AT_RANDOM:
                fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    data = os.pread(fd, 16, value)
                finally:
                    os.close(fd)
                return struct.pack("<Q", value) + data if len(data) == 16 else None
            if kind == 0:
                break
    except (OSError, OverflowError):
        return None
    return None


# ----------------------------------------------------------------------
# the module

class _Records(dict):
    """(st_dev, st_ino) -> Record, whose keys are mirrored in the C core's
    stat table (Module.stat_listed): the stat calls of these files reach the
    module; those of every other file are answered in C."""

    def __init__(self, module: Module, data=()):
        super().__init__(data)
        self.module = module
        for key in self:
            module.stat_listed(key)

    def __setitem__(self, key, value):
        if key not in self:
            self.module.stat_listed(key)
        super().__setitem__(key, value)

    def __delitem__(self, key):
        super().__delitem__(key)
        self.module.stat_listed(key, False)

    def pop(self, key, *default):
        had = key in self
        value = super().pop(key, *default)
        if had:
            self.module.stat_listed(key, False)
        return value

    def _unsupported(self, *args, **kwargs):
        raise TypeError("records change one key at a time (the C table mirrors them)")

    update = setdefault = popitem = clear = _unsupported


class FakeRoot(Module):
    name = "fakeroot"
    description = ("fake root: uid 0, remembered chown/chmod/mknod/xattrs, set-id execs, every stat "
                   "agrees; db= persists; fakeroot's state files")
    options = {
        "uid": Option(_id_option, 0, "the emulated user id", cli="--fake-uid"),
        "gid": Option(_id_option, 0, "the emulated group id", cli="--fake-gid"),
        "db": Option(str, None, "sqlite database where ownership persists across runs",
                     cli="--fakeroot-db"),
        "others": Option(_others_option, "root",
                         "owner shown for never-chowned files of other users: root (the emulated "
                         "ids, like fakeroot) or real"),
        "load": Option(_abs_path, None, "read this state file of fakeroot (what fakeroot -s "
                       "wrote) at start", cli="--fakeroot-load"),
        "save": Option(_abs_path, None, "write the view's state to this file in fakeroot's format "
                       "(for fakeroot -i) at exit", cli="--fakeroot-save"),
        "search": Option(_search_option, None, "directories (colon-separated) where load= and save= "
                         "look for the files of fakeroot's dev/ino records (default: the current "
                         "directory)", cli="--fakeroot-search"),
    }

    def __init__(self, **options):
        super().__init__(**options)
        uid, gid = self.config["uid"], self.config["gid"]
        self.default = Creds(uid, uid, uid, uid, gid, gid, gid, gid, (gid,))
        # every process still has the default ids (Claims.same_ids): false
        # from the first call that gives one others, for good
        self.same_ids = True
        self.procs: dict[int, tuple[int, Creds]] = {}   # pid -> (start time, creds)
        self.records: dict[tuple[int, int], Record] = _Records(self)
        self.store: Store | None = None
        self._pidfds: dict[int, int] = {}   # pid -> pidfd (stat handlers only: tracer thread)
        self.real_uid, self.real_gid = os.getuid(), os.getgid()
        self.others_real = self.config["others"] == "real"
        self.uid0, self.gid0 = uid, gid
        self.full_caps = (1 << (_cap_last() + 1)) - 1
        try:
            st = os.stat("/proc")
            self.proc_dev = (os.major(st.st_dev), os.minor(st.st_dev))
        except OSError:
            self.proc_dev = None
        # pid -> (start time, image fingerprint, uid, gid): an exec whose
        # set-user/group-ID (or saved-id copy) is applied once it happened
        self.execs: dict[int, tuple] = {}
        self.xattr_reads = False        # getxattr/listxattr claimed (an emulated xattr exists)
        self.search = self.config["search"] or [os.path.abspath(".")]
        self.unresolved: dict[tuple[int, int], StateEntry] = {}   # load= entries not found
        self._state_loaded = self._state_saved = False

    # -- life cycle -------------------------------------------------------
    def loaded(self, view) -> None:
        save = self.config["save"]
        if save and not os.access(os.path.dirname(save) or ".", os.W_OK):
            raise ModuleError(f"module fakeroot: cannot write fakeroot state {save!r}: "
                              "its directory is not writable")
        if self.config["db"] and self.store is None:
            self.store = Store(self.config["db"])
            self.records = _Records(self, self.store.load())
        if self.config["load"] and not self._state_loaded:
            self._state_loaded = True
            try:
                self.load_state(self.config["load"])
            except ModuleError:
                if self.store is not None:
                    self.store.close()
                raise
        if any(rec.xattrs for rec in self.records.values()):
            self.xattr_reads = True

    def unloaded(self) -> None:
        if self.config["save"] and not self._state_saved:
            self._state_saved = True
            try:
                self.save_state(self.config["save"])
            except OSError as exc:
                log.error("fakeroot: cannot write fakeroot state %s: %s", self.config["save"], exc)
        if self.store is not None:
            self.store.close()

    def claims(self):
        c = super().claims()
        # Files without a record are shown with the kernel's stat and our
        # owner: the C core does that itself; _Records lists the others.
        c.stat_owner = StatOwner(self.uid0, self.gid0, keep_others=self.others_real,
                                 real_uid=self.real_uid, real_gid=self.real_gid,
                                 kernel_dev=self.proc_dev)
        if not self.xattr_reads:
            c.syscalls -= XATTR_READS
        # an exec of a missing file changes no ids, nor one of a file that is
        # not set-id and has no record while every process has the default
        # ids (execve below)
        c.exec_found = True
        c.exec_setid = True
        if self.same_ids:
            c.same_ids = (self.default.ruid, self.default.rgid)
        return c

    def _ids_differ(self) -> None:
        """Some process is about to have ids other than the default: its
        programs must ask us from now on (before that call returns)."""
        if self.same_ids:
            self.same_ids = False
            self.reclaim()

    def _want_xattr_reads(self) -> None:
        if not self.xattr_reads:
            self.xattr_reads = True
            self.reclaim()

    def describe(self) -> str:
        base = super().describe()
        return f"{base} records={len(self.records)}".strip()

    # -- records ----------------------------------------------------------
    def _record(self, f, gen):
        """The valid record of the file whose statx fields are f and whose
        generation is gen, or None (a stale record is dropped)."""
        key = file_key(f)
        rec = self.records.get(key)
        if rec is None:
            return None
        if rec.gen == gen:
            return rec
        self._drop(key, rec)
        return None

    def _lookup(self, f, host: bytes, flags: int, fd: int = -1):
        """The valid record of the file that statx said f about, found
        through fd (the hypervisor's copy of the tracee's open file) or host
        again, or False if host names another file now (the kernel should
        then answer)."""
        key = file_key(f)
        if key not in self.records:
            return None
        if fd >= 0:
            return self._record(*identify_fd(fd))
        g, gen = identify(host, nofollow=bool(flags & AT_SYMLINK_NOFOLLOW))
        if file_key(g) != key:
            return False
        return self._record(g, gen)

    def _drop(self, key, rec) -> None:
        if self.records.get(key) is rec:
            del self.records[key]
        if self.store is not None:
            self.store.delete(key, rec.gen)

    def _save(self, key, rec: Record) -> None:
        if rec.empty():
            old = self.records.pop(key, None)
            if old is not None and self.store is not None:
                self.store.delete(key, old.gen)
            return
        self.records[key] = rec
        if self.store is not None:
            self.store.put(key, rec)

    def _default_ids(self, f) -> tuple[int, int]:
        """Owner shown for an unrecorded file."""
        uid, gid = self.default.euid, self.default.egid
        if self.others_real:
            if f[X_UID] != self.real_uid:
                uid = f[X_UID]
            if f[X_GID] != self.real_gid:
                gid = f[X_GID]
        return uid, gid

    def _shown(self, f, rec):
        """(uid, gid, mode, (rdev major, minor)) as the view shows the file."""
        uid, gid = self._default_ids(f)
        mode, rdev = f[X_MODE], (f[X_RDEV_MAJ], f[X_RDEV_MIN])
        if rec is not None:
            if rec.uid is not None:
                uid = rec.uid
            if rec.gid is not None:
                gid = rec.gid
            mode = rec.mode(mode)
            if rec.rdev is not None:
                rdev = rec.rdev
        return uid, gid, mode, rdev

    # -- credentials ------------------------------------------------------
    def _creds(self, pid: int) -> Creds:
        if self.execs:
            self._settle_execs()
        return self._creds_of(pid)

    def _creds_of(self, pid: int) -> Creds:
        if not self.procs:
            return self.default
        st = _proc_stat(pid)
        ent = self.procs.get(pid)
        if ent is not None:
            if st is not None and ent[0] == st[1]:
                return ent[1]
            del self.procs[pid]   # that pid was reused
        if st is None:
            return self.default
        creds = self.default
        p, seen = st[0], 0
        while p > 1 and seen < 64:
            pst = _proc_stat(p)
            if pst is None:
                break
            anc = self.procs.get(p)
            if anc is not None and anc[0] == pst[1]:
                creds = anc[1]
                break
            p, seen = pst[0], seen + 1
        self.procs[pid] = (st[1], creds)
        if len(self.procs) > 4096:
            self._prune()
        return creds

    def _prune(self) -> None:
        for pid, (start, _) in list(self.procs.items()):
            st = _proc_stat(pid)
            if st is None or st[1] != start:
                del self.procs[pid]

    def _set_creds(self, pid: int, old: Creds, new: Creds) -> None:
        if new == old:
            return
        if new.ids() != self.default.ids():
            self._ids_differ()
        # Children forked before this change keep what they inherited.
        for child in _children(pid):
            if child not in self.procs:
                cst = _proc_stat(child)
                if cst is not None:
                    self.procs[child] = (cst[1], old)
        st = _proc_stat(pid)
        if st is not None:
            self.procs[pid] = (st[1], new)

    # -- identity: get ----------------------------------------------------
    def getuid(self, call):
        return self._creds(call.pid).ruid

    def geteuid(self, call):
        return self._creds(call.pid).euid

    def getgid(self, call):
        return self._creds(call.pid).rgid

    def getegid(self, call):
        return self._creds(call.pid).egid

    def _put_ids(self, call, ids) -> int:
        for addr, value in zip(call.args[:3], ids):
            call.write(addr, struct.pack("<I", value))
        return 0

    def getresuid(self, call):
        c = self._creds(call.pid)
        return self._put_ids(call, (c.ruid, c.euid, c.suid))

    def getresgid(self, call):
        c = self._creds(call.pid)
        return self._put_ids(call, (c.rgid, c.egid, c.sgid))

    def getgroups(self, call):
        size = call.arg(0, bits=32)
        if size < 0:
            raise SyscallError(errno.EINVAL)
        groups = self._creds(call.pid).groups
        if size == 0:
            return len(groups)
        if size < len(groups):
            raise SyscallError(errno.EINVAL)
        if groups:
            call.write(call.args[1], struct.pack(f"<{len(groups)}I", *groups))
        return len(groups)

    # -- identity: set ----------------------------------------------------
    # Root's rules (privileged = emulated euid 0, which stands for
    # CAP_SETUID and CAP_SETGID), and an unprivileged process's rules once
    # it has given root up.
    @staticmethod
    def _ids(call, n):
        out = []
        for i in range(n):
            v = call.arg(i, signed=False, bits=32)
            out.append(None if v == NO_ID else v)
        return out

    def _change(self, call, fn) -> int:
        old = self._creds(call.pid)
        new = fn(old, old.euid == 0)
        self._set_creds(call.pid, old, new)
        return 0

    def setuid(self, call):
        (uid,) = self._ids(call, 1)
        if uid is None:
            raise SyscallError(errno.EINVAL)

        def fn(c, priv):
            if priv:
                return c.replace(ruid=uid, euid=uid, suid=uid, fsuid=uid)
            if uid in (c.ruid, c.suid):
                return c.replace(euid=uid, fsuid=uid)
            raise SyscallError(errno.EPERM)
        return self._change(call, fn)

    def setgid(self, call):
        (gid,) = self._ids(call, 1)
        if gid is None:
            raise SyscallError(errno.EINVAL)

        def fn(c, priv):
            if priv:
                return c.replace(rgid=gid, egid=gid, sgid=gid, fsgid=gid)
            if gid in (c.rgid, c.sgid):
                return c.replace(egid=gid, fsgid=gid)
            raise SyscallError(errno.EPERM)
        return self._change(call, fn)

    def _setre(self, call, r_, e_, s_, fs_):
        r, e = self._ids(call, 2)

        def fn(c, priv):
            cr, ce, cs = getattr(c, r_), getattr(c, e_), getattr(c, s_)
            if not priv and ((r is not None and r not in (cr, ce))
                             or (e is not None and e not in (cr, ce, cs))):
                raise SyscallError(errno.EPERM)
            nr = cr if r is None else r
            ne = ce if e is None else e
            ns = ne if (r is not None or (e is not None and e != cr)) else cs
            return c.replace(**{r_: nr, e_: ne, s_: ns, fs_: ne})
        return self._change(call, fn)

    def setreuid(self, call):
        return self._setre(call, "ruid", "euid", "suid", "fsuid")

    def setregid(self, call):
        return self._setre(call, "rgid", "egid", "sgid", "fsgid")

    def _setres(self, call, r_, e_, s_, fs_):
        ids = self._ids(call, 3)

        def fn(c, priv):
            current = (getattr(c, r_), getattr(c, e_), getattr(c, s_))
            if not priv and any(v is not None and v not in current for v in ids):
                raise SyscallError(errno.EPERM)
            new = [cur if v is None else v for v, cur in zip(ids, current)]
            return c.replace(**{r_: new[0], e_: new[1], s_: new[2], fs_: new[1]})
        return self._change(call, fn)

    def setresuid(self, call):
        return self._setres(call, "ruid", "euid", "suid", "fsuid")

    def setresgid(self, call):
        return self._setres(call, "rgid", "egid", "sgid", "fsgid")

    def _setfs(self, call, fs_, others):
        (v,) = self._ids(call, 1)
        old = self._creds(call.pid)
        before = getattr(old, fs_)
        if v is not None and (old.euid == 0 or v in [getattr(old, k) for k in others]):
            self._set_creds(call.pid, old, old.replace(**{fs_: v}))
        return before

    def setfsuid(self, call):
        return self._setfs(call, "fsuid", ("ruid", "euid", "suid", "fsuid"))

    def setfsgid(self, call):
        return self._setfs(call, "fsgid", ("rgid", "egid", "sgid", "fsgid"))

    def setgroups(self, call):
        size = call.arg(0, bits=32)
        if size < 0 or size > NGROUPS_MAX:
            raise SyscallError(errno.EINVAL)
        groups = struct.unpack(f"<{size}I", call.read(call.args[1], 4 * size)) if size else ()
        old = self._creds(call.pid)
        if old.euid != 0:
            raise SyscallError(errno.EPERM)
        self._set_creds(call.pid, old, old.replace(groups=tuple(sorted(groups))))
        return 0

    # -- capabilities -----------------------------------------------------
    def _cap_header(self, call):
        """(words to copy, pid) of a cap_user_header_t, as cap_validate_magic
        checks it: an unknown version is answered with the preferred one."""
        version = struct.unpack("<I", call.read(call.args[0], 4))[0]
        words = CAP_WORDS.get(version)
        if words is None:
            call.write(call.args[0], struct.pack("<I", CAP_V3))
            return None, None
        return words, struct.unpack("<i", call.read(call.args[0] + 4, 4))[0]

    def capget(self, call):
        words, pid = self._cap_header(call)
        if words is None:
            if call.args[1] == 0:
                return 0
            raise SyscallError(errno.EINVAL)
        if call.args[1] == 0:
            return 0
        if pid < 0:
            raise SyscallError(errno.EINVAL)
        if pid == 0 or pid == call.pid or pid == call.tid:
            c = self._creds(call.pid)
        else:
            if _proc_stat(pid) is None:
                raise SyscallError(errno.ESRCH)
            c = self._creds(pid)
        eff = self.full_caps if c.euid == 0 else 0
        perm = self.full_caps if 0 in (c.ruid, c.euid, c.suid) else 0
        data = b"".join(struct.pack("<III", (eff >> (32 * i)) & NO_ID, (perm >> (32 * i)) & NO_ID, 0)
                        for i in range(words))
        call.write(call.args[1], data)
        return 0

    def capset(self, call):
        words, pid = self._cap_header(call)
        if words is None:
            raise SyscallError(errno.EINVAL)
        if pid != 0 and pid != call.pid and pid != call.tid:
            raise SyscallError(errno.EPERM)
        call.read(call.args[1], 12 * words)  # EFAULT as the kernel would
        return 0   # root may set what it likes; the sets are not tracked

    # -- the stat family --------------------------------------------------
    # The hot path of the module (tar, ls -l, find: one call per file, and
    # glibc's fstat() is newfstatat(fd, "", AT_EMPTY_PATH)): the arguments
    # are read from call.args directly and the host path is built as bytes,
    # the same paths Call.host_path gives.
    def _host(self, call, dirfd: int, addr: int, flags: int):
        """(host path, flags for the hypervisor's statx, the tracee's fd when
        the target is that open file itself, else AT_FDCWD32), or None when
        the kernel should serve the call (it then gives its own error).
        dirfd and flags are the raw 32-bit values."""
        if addr == 0:
            if not flags & AT_EMPTY_PATH:
                return None
            path = b""
        else:
            path = call.read_string(addr)
        if not path:
            if not flags & AT_EMPTY_PATH:
                return None
            if dirfd == AT_FDCWD32:
                host = b"/proc/%d/cwd" % call.tid
            elif dirfd < 0x80000000:
                host = b"/proc/%d/fd/%d" % (call.tid, dirfd)
            else:
                return None
            # follow the magic link to the open file itself
            return host, flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW), dirfd
        if path[0] == 0x2F:   # absolute: the tracee's root
            if path.startswith((b"/proc/", b"/dev/")):
                own = _per_process(path, call.pid, call.tid)
                if own is not None:
                    return own, flags, AT_FDCWD32
            return b"/proc/%d/root%s" % (call.pid, path), flags, AT_FDCWD32
        if dirfd == AT_FDCWD32:
            return b"/proc/%d/cwd/%s" % (call.tid, path), flags, AT_FDCWD32
        if dirfd < 0x80000000:
            return b"/proc/%d/fd/%d/%s" % (call.pid, dirfd, path), flags, AT_FDCWD32
        return None

    def stat(self, call):
        """stat, lstat, newfstatat, statx."""
        name, a = call.name, call.args
        try:
            if name == "newfstatat":
                target = self._host(call, a[0] & 0xFFFFFFFF, a[1], a[3] & 0xFFFFFFFF)
                buf = a[2]
            elif name == "statx":
                target = self._host(call, a[0] & 0xFFFFFFFF, a[1], a[2] & 0xFFFFFFFF)
                if target is None:
                    return None
                return self._statx(call, target, a[3] & 0xFFFFFFFF, a[4])
            else:
                target = self._host(call, AT_FDCWD32, a[0], AT_SYMLINK_NOFOLLOW if name == "lstat" else 0)
                buf = a[1]
            if target is None:
                return None
            return self._stat(call, target, buf)
        except (OSError, SyscallError):
            return None   # the kernel runs the call and says what is wrong

    def fstat(self, call):
        fd = call.args[0] & 0xFFFFFFFF
        if fd >= 0x80000000:
            return None
        try:
            return self._stat(call, (b"/proc/%d/fd/%d" % (call.tid, fd), 0, fd), call.args[1])
        except (OSError, SyscallError):
            return None

    def _grab(self, call, tfd: int) -> int:
        """The hypervisor's copy of the tracee's open file tfd, or -1 (then
        /proc/TID/fd/N serves).  The pidfds are cached per process; those of
        processes that are gone are closed now and then."""
        pidfd = self._pidfds.get(call.pid)
        if pidfd is None:
            if len(self._pidfds) >= 256:
                self._close_dead_pidfds()
            try:
                pidfd = self._pidfds[call.pid] = os.pidfd_open(call.pid)
            except OSError:
                return -1
        fd = pidfd_getfd(pidfd, tfd)
        if fd < 0 and ctypes.get_errno() == errno.ESRCH:   # a dead process's pid, reused
            os.close(self._pidfds.pop(call.pid))
            return -1
        return fd

    def _close_dead_pidfds(self) -> None:
        poller = select.poll()
        for pidfd in self._pidfds.values():
            poller.register(pidfd, select.POLLIN)
        dead = {fd for fd, _ in poller.poll(0)}
        for pid, pidfd in list(self._pidfds.items()):
            if pidfd in dead:
                os.close(pidfd)
                del self._pidfds[pid]

    def _stat(self, call, target, buf: int):
        host, flags, tfd = target
        sx = _statx_buffer()
        fd = self._grab(call, tfd) if tfd != AT_FDCWD32 else -1
        try:
            if fd >= 0:
                failed = _statx_fn(fd, b"", flags | AT_EMPTY_PATH, STATX_BASIC_STATS, sx)
            else:
                failed = _statx_fn(AT_FDCWD, host, flags, STATX_BASIC_STATS, sx)
            if failed:
                return None
            f = STATX.unpack_from(sx)
            dmaj, dmin = f[X_DEV_MAJ], f[X_DEV_MIN]
            if (dmaj, dmin) == self.proc_dev:
                return None
            mode, rmaj, rmin = f[X_MODE], f[X_RDEV_MAJ], f[X_RDEV_MIN]
            if self.records and (os.makedev(dmaj, dmin), f[X_INO]) in self.records:
                rec = self._lookup(f, host, flags, fd)
                if rec is False:
                    return None
                uid, gid, mode, (rmaj, rmin) = self._shown(f, rec)
            elif self.others_real:
                uid, gid = self._default_ids(f)
            else:
                uid, gid = self.uid0, self.gid0
        finally:
            if fd >= 0:
                os.close(fd)
        call.write(buf, STAT.pack(
            (dmin & 0xFF) | (dmaj << 8) | ((dmin & ~0xFF) << 12), f[X_INO], f[X_NLINK], mode, uid, gid,
            0, (rmin & 0xFF) | (rmaj << 8) | ((rmin & ~0xFF) << 12), f[X_SIZE], f[X_BLKSIZE],
            f[X_BLOCKS], f[X_ATIME], f[X_ATIME_NS], f[X_MTIME], f[X_MTIME_NS], f[X_CTIME], f[X_CTIME_NS]))
        return 0

    def _statx(self, call, target, mask: int, buf: int):
        host, flags, tfd = target
        sx = _statx_buffer()
        fd = self._grab(call, tfd) if tfd != AT_FDCWD32 else -1
        try:
            if fd >= 0:
                failed = _statx_fn(fd, b"", flags | AT_EMPTY_PATH, mask, sx)
            else:
                failed = _statx_fn(AT_FDCWD, host, flags, mask, sx)
            if failed:
                return None
            f = STATX.unpack_from(sx)
            if (f[X_DEV_MAJ], f[X_DEV_MIN]) == self.proc_dev:
                return None
            out = bytearray(sx.raw)
            rec = self._lookup(f, host, flags, fd) if self.records else None
        finally:
            if fd >= 0:
                os.close(fd)
        if rec is False:
            return None
        uid, gid, mode, rdev = self._shown(f, rec)
        struct.pack_into("<II", out, OFF_UID, uid, gid)
        struct.pack_into("<H", out, OFF_MODE, mode & 0xFFFF)
        struct.pack_into("<II", out, OFF_RDEV, *rdev)
        call.write(buf, bytes(out))
        return 0

    # -- chown ------------------------------------------------------------
    # chown and chmod work on an O_PATH descriptor of the file: its statx,
    # its handle and (for chmod) the real chmod then all reach the same
    # inode, whatever renames happen meanwhile.
    def _open_target(self, call, dirfd: int, addr: int, flags: int):
        """An O_PATH fd of the file a path call means, or None when the kernel
        should serve the call (it then gives its own error)."""
        try:
            target = self._host(call, dirfd, addr, flags)
            if target is None:
                return None
            host, sflags, _ = target
            return os.open(host, O_PATH | os.O_CLOEXEC
                           | (os.O_NOFOLLOW if sflags & AT_SYMLINK_NOFOLLOW else 0))
        except (OSError, SyscallError):
            return None

    def _open_fd(self, call, fd: int) -> int:
        """An O_PATH fd of the file behind the tracee's fd, for the calls that
        need a real open file (fchown, fchmod: EBADF for an O_PATH fd)."""
        if fd < 0:
            raise SyscallError(errno.EBADF)
        try:
            with open(f"/proc/{call.tid}/fdinfo/{fd}", "rb") as fi:
                for line in fi:
                    if line.startswith(b"flags:"):
                        if int(line.split()[1], 8) & O_PATH:
                            raise SyscallError(errno.EBADF)
                        break
            return os.open(f"/proc/{call.tid}/fd/{fd}", O_PATH | os.O_CLOEXEC)
        except OSError:
            raise SyscallError(errno.EBADF) from None

    def chown(self, call):
        """chown, lchown, fchownat."""
        name = call.name
        if name == "fchownat":
            flags = call.arg(4, signed=False, bits=32)
            if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
                raise SyscallError(errno.EINVAL)
            dirfd, addr, uid_i = call.arg(0, signed=False, bits=32), call.args[1], 2
        else:
            flags = AT_SYMLINK_NOFOLLOW if name == "lchown" else 0
            dirfd, addr, uid_i = AT_FDCWD32, call.args[0], 1
        fd = self._open_target(call, dirfd, addr, flags)
        if fd is None:
            return None
        try:
            return self._chown(call, fd, call.arg(uid_i, signed=False, bits=32),
                               call.arg(uid_i + 1, signed=False, bits=32))
        finally:
            os.close(fd)

    def fchown(self, call):
        fd = self._open_fd(call, call.arg(0, bits=32))
        try:
            return self._chown(call, fd, call.arg(1, signed=False, bits=32),
                               call.arg(2, signed=False, bits=32))
        finally:
            os.close(fd)

    def _chown(self, call, fd: int, uid: int, gid: int):
        f, gen = identify_fd(fd)
        creds = self._creds(call.pid)
        rec = self._record(f, gen)
        cur_uid, cur_gid, mode, _ = self._shown(f, rec)
        if creds.euid != 0:
            # an unprivileged emulated process: the owner may only change
            # the group, to one of its own
            if ((uid != NO_ID and uid != cur_uid) or cur_uid != creds.fsuid
                    or (gid != NO_ID and gid != cur_gid and gid != creds.fsgid
                        and gid not in creds.groups)):
                raise SyscallError(errno.EPERM)
        new = Record(gen) if rec is None else rec.copy(gen)
        if uid != NO_ID:
            new.uid = uid
        if gid != NO_ID:
            new.gid = gid
        # The kernel clears set-user-ID (and set-group-ID with group execute)
        # of a non-directory on chown, even for root, and its file
        # capabilities (security.capability).
        if not S.S_ISDIR(mode) and new.xattrs and new.xattrs.get(b"security.capability") is not None:
            del new.xattrs[b"security.capability"]
        if not S.S_ISDIR(mode) and not S.S_ISLNK(mode):
            cleared = mode & ~S.S_ISUID
            if mode & S.S_ISGID and mode & S.S_IXGRP:
                cleared &= ~S.S_ISGID
            if cleared != mode:
                f, new.gen = self._set_perm(fd, f, new, cleared & 0o7777)
        new.path = _fd_path(fd) or new.path
        self._save(file_key(f), new)
        return 0

    # -- chmod ------------------------------------------------------------
    def chmod(self, call):
        """chmod, fchmodat, fchmodat2."""
        name = call.name
        if name == "chmod":
            dirfd, addr, mode, flags = AT_FDCWD32, call.args[0], call.arg(1, signed=False, bits=32), 0
        else:
            dirfd, addr = call.arg(0, signed=False, bits=32), call.args[1]
            mode = call.arg(2, signed=False, bits=32)
            flags = call.arg(3, signed=False, bits=32) if name == "fchmodat2" else 0
            if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
                raise SyscallError(errno.EINVAL)
        fd = self._open_target(call, dirfd, addr, flags)
        if fd is None:
            return None
        try:
            return self._chmod(call, fd, mode)
        finally:
            os.close(fd)

    def fchmod(self, call):
        fd = self._open_fd(call, call.arg(0, bits=32))
        try:
            return self._chmod(call, fd, call.arg(1, signed=False, bits=32))
        finally:
            os.close(fd)

    def _chmod(self, call, fd: int, mode: int):
        f, gen = identify_fd(fd)
        if S.S_ISLNK(f[X_MODE]):
            return None  # the kernel answers chmod of a symlink itself (EOPNOTSUPP)
        creds = self._creds(call.pid)
        rec = self._record(f, gen)
        shown_uid = self._shown(f, rec)[0]
        if creds.euid != 0 and shown_uid != creds.fsuid:
            raise SyscallError(errno.EPERM)
        new = Record(gen) if rec is None else rec.copy(gen)
        f, new.gen = self._set_perm(fd, f, new, mode & 0o7777)
        new.path = _fd_path(fd) or new.path
        self._save(file_key(f), new)
        return 0

    @staticmethod
    def _set_perm(fd: int, f, rec: Record, perm: int):
        """Give the file permission bits perm: on disk as far as the kernel
        lets us (always keeping the owner's rw, rwx for directories, as
        fakeroot does, so that the real user can go on using it), the rest
        as an override in rec.  Returns the file's new (statx, generation)."""
        real = perm | (0o700 if S.S_ISDIR(f[X_MODE]) else 0o600)
        if f[X_MODE] & 0o7777 != real:
            try:
                os.chmod(f"/proc/self/fd/{fd}", real)
            except PermissionError:
                pass      # not ours on disk: root could, so remember only
            except OSError as exc:
                raise SyscallError(exc.errno) from None
        f, gen = identify_fd(fd)   # the ctime changed (a ctime generation follows)
        disk = f[X_MODE] & 0o7777
        rec.perm, rec.disk_perm = (None, None) if disk == perm else (perm, disk)
        return f, gen

    # -- mknod ------------------------------------------------------------
    async def mknod(self, call):
        """mknod, mknodat: character and block devices become an empty
        regular file on disk, shown as the device.  The kernel makes the
        file (the call rewritten to S_IFREG): umask, errors and races are
        exactly its own."""
        if call.name == "mknod":
            dirfd, path_i, mode_i = AT_FDCWD, 0, 1
        else:
            dirfd, path_i, mode_i = call.arg(0, bits=32), 1, 2
        mode = call.arg(mode_i, signed=False, bits=32)
        kind = S.S_IFMT(mode)
        if kind not in (S.S_IFCHR, S.S_IFBLK):
            return None  # regular files, fifos and sockets need no privilege
        creds = self._creds(call.pid)
        if creds.euid != 0:
            raise SyscallError(errno.EPERM)
        rdev = decode_dev(call.arg(mode_i + 1, signed=False, bits=32))
        args = list(call.args)
        args[mode_i] = (mode & ~S.S_IFMT(mode)) | S.S_IFREG
        res = await call.kernel(call.nr, args)
        if res != 0:
            return res
        try:
            fd = os.open(call.host_path(call.read_path(call.args[path_i]), dirfd),
                         O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (OSError, SyscallError) as exc:
            log.warning("fakeroot: the file mknod made is gone at once (%s)", exc)
            return 0
        try:
            f, gen = identify_fd(fd)
            rec = Record(gen, kind=kind, rdev=rdev, path=_fd_path(fd))
        finally:
            os.close(fd)
        if creds.fsuid != self.default.euid:
            rec.uid = creds.fsuid
        if creds.fsgid != self.default.egid:
            rec.gid = creds.fsgid
        self._save(file_key(f), rec)
        return 0

    # -- exec of set-user-ID and set-group-ID files ---------------------
    def execve(self, call):
        """execve, execveat: the ids the new image will have are noted here
        and applied once the exec has happened (see _settle_execs)."""
        a = call.args
        try:
            if call.name == "execveat":
                target = self._host(call, a[0] & 0xFFFFFFFF, a[1], a[4] & 0xFFFFFFFF)
            else:
                target = self._host(call, AT_FDCWD32, a[0], 0)
            if target is None:
                return None
            ids = self._exec_ids(call, target)
        except (OSError, SyscallError):
            return None
        creds = self._creds(call.pid)   # settles an earlier exec of this process first
        if ids is None:
            return None                 # the exec will fail
        uid, gid = ids
        if uid is None and gid is None and creds.suid == creds.euid and creds.sgid == creds.egid:
            self.execs.pop(call.pid, None)
            return None
        st = _proc_stat(call.pid)
        fp = exec_fingerprint(call.pid)
        if st is None or fp is None:
            log.warning("fakeroot: cannot follow the exec of process %d: its ids stay", call.pid)
            return None
        # Children forked before the exec keep what they inherited; those
        # forked after it (maybe before the change is applied) get the new ids.
        for child in _children(call.pid):
            if child not in self.procs:
                cst = _proc_stat(child)
                if cst is not None:
                    self.procs[child] = (cst[1], creds)
        self.execs[call.pid] = (st[1], fp, uid, gid)
        self._ids_differ()   # maybe: the exec may still fail
        return None

    def _exec_ids(self, call, target):
        """(uid or None, gid or None) an exec of target gives the process
        (as the kernel's bprm_fill_uid, with the file's shown owner and
        mode), or None when the exec cannot succeed."""
        host, flags, _ = target
        sx = _statx_buffer()
        if _statx_fn(AT_FDCWD, host, flags, STATX_BASIC_STATS, sx):
            return None
        f = STATX.unpack_from(sx)
        if not S.S_ISREG(f[X_MODE]):
            return None
        rec = None
        if self.records and file_key(f) in self.records:
            rec = self._lookup(f, host, flags)
            if rec is False:   # another file there now: whatever it is, not ours to judge
                return (None, None)
        uid, gid, mode, _ = self._shown(f, rec)
        set_uid = bool(mode & S.S_ISUID)
        set_gid = mode & (S.S_ISGID | S.S_IXGRP) == (S.S_ISGID | S.S_IXGRP)
        if not (set_uid or set_gid):
            return (None, None)
        if not mode & 0o111:
            return None   # EACCES, even for root
        try:
            if os.statvfs(host).f_flag & os.ST_NOSUID:
                return (None, None)
        except OSError:
            pass
        try:
            with open(host, "rb") as fh:
                if fh.read(2) == b"#!":
                    return (None, None)   # Linux ignores set-id bits of scripts
        except OSError:
            pass
        # (no_new_privs is not consulted: the core sets it on every process of
        # the view, as seccomp filters need it, so a program's own
        # PR_SET_NO_NEW_PRIVS cannot be told from it.)
        return (uid if set_uid else None, gid if set_gid else None)

    def _settle_execs(self) -> None:
        """Apply the noted ids of every exec that has happened: the process
        shows another image than at its execve stop.  At every exec the
        saved ids become the effective ones (execve(2))."""
        for pid, note in list(self.execs.items()):
            start, fp, uid, gid = note
            st = _proc_stat(pid)
            if st is None or st[1] != start:
                self.execs.pop(pid, None)
                continue
            now = exec_fingerprint(pid)
            if now is None or now == fp:
                continue    # not yet (or it failed: the next execve replaces the note)
            if self.execs.get(pid) is not note:
                continue    # settled meanwhile (mknod asks from the trio thread)
            self.execs.pop(pid, None)
            new = self._creds_of(pid)
            if uid is not None:
                new = new.replace(euid=uid, fsuid=uid)
            if gid is not None:
                new = new.replace(egid=gid, fsgid=gid)
            # not _set_creds: the children it would pin were pinned at the
            # execve stop; the ones unpinned now were forked by the new image
            self.procs[pid] = (start, new.replace(suid=new.euid, sgid=new.egid))

    # -- extended attributes: security.* and trusted.* --------------------
    # Only a privileged process may set these; the view keeps them in the
    # file's record (and the database), never on disk.  Other namespaces
    # (user.*, system.posix_acl_*) are the kernel's.  Whenever an argument
    # is bad or the file cannot be reached, the kernel answers: its errors
    # for those come before any permission check.
    _FD_XATTR = frozenset({"fsetxattr", "fgetxattr", "flistxattr", "fremovexattr"})
    _L_XATTR = frozenset({"lsetxattr", "lgetxattr", "llistxattr", "lremovexattr"})
    _AT_XATTR = frozenset({"setxattrat", "getxattrat", "listxattrat", "removexattrat"})

    def _xattr_where(self, call):
        """(tracee fd or None, dirfd, path address, at-flags, index of the
        first argument after the file), or None for bad at-flags."""
        n, a = call.name, call.args
        if n in self._FD_XATTR:
            return a[0] & 0xFFFFFFFF, None, None, 0, 1
        if n in self._AT_XATTR:
            flags = a[2] & 0xFFFFFFFF
            if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
                return None
            return None, a[0] & 0xFFFFFFFF, a[1], flags, 3
        return None, AT_FDCWD32, a[0], AT_SYMLINK_NOFOLLOW if n in self._L_XATTR else 0, 1

    @staticmethod
    def _xattr_args(call, i):
        """(value address, size, flags) of the struct xattr_args of
        setxattrat/getxattrat, or None (the kernel then answers)."""
        usize = call.args[i + 2]
        if usize < XATTR_ARGS_SIZE or usize > 4096:
            return None
        try:
            data = call.read(call.args[i + 1], usize)
        except SyscallError:
            return None
        if any(data[XATTR_ARGS_SIZE:]):
            return None
        return struct.unpack_from("<QII", data)

    @staticmethod
    def _xattr_name(call, addr):
        """The attribute name when the view keeps it, else None."""
        try:
            name = call.read_string(addr, XATTR_NAME_MAX + 1)
        except SyscallError:
            return None
        if len(name) > XATTR_NAME_MAX or not name.startswith(EMULATED_XATTRS):
            return None
        return name

    def _xattr_open(self, call, where) -> int:
        """The hypervisor's descriptor of the file an xattr call names (close
        it), or -1: the kernel answers."""
        tfd, dirfd, addr, flags, _ = where
        if tfd is not None:
            if tfd >= 0x80000000:
                return -1
            fd = self._grab(call, tfd)
            if fd < 0:
                try:
                    return self._open_fd(call, tfd)
                except SyscallError:
                    return -1
            try:
                if fcntl.fcntl(fd, fcntl.F_GETFL) & O_PATH:   # the kernel says EBADF
                    os.close(fd)
                    return -1
            except OSError:
                os.close(fd)
                return -1
            return fd
        try:
            target = self._host(call, dirfd, addr, flags)
            if target is None:
                return -1
            host, sflags, dfd = target
            if dfd != AT_FDCWD32:
                fd = self._grab(call, dfd)
                if fd >= 0:
                    return fd
            return os.open(host, O_PATH | os.O_CLOEXEC
                           | (os.O_NOFOLLOW if sflags & AT_SYMLINK_NOFOLLOW else 0))
        except (OSError, SyscallError):
            return -1

    def _xattr_record(self, fd: int):
        """The valid record of the file fd if it has attributes, else None;
        one statx decides for files without a record."""
        sx = _statx_buffer()
        if _statx_fn(fd, b"", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, sx):
            return None
        rec = self.records.get(file_key(STATX.unpack_from(sx)))
        if rec is None or not rec.xattrs:
            return None
        rec = self._record(*identify_fd(fd))
        return rec if rec is not None and rec.xattrs else None

    @staticmethod
    def _on_disk(fd: int, name: bytes) -> bool:
        try:
            os.getxattr(f"/proc/self/fd/{fd}", name)
            return True
        except OSError:
            return False

    def _change_xattr(self, call, fd: int, name: bytes, value, xflags: int = 0) -> int:
        """Set (value: bytes) or remove (value None) attribute name of the
        file fd, as root may."""
        f, gen = identify_fd(fd)
        if self._creds(call.pid).euid != 0:
            raise SyscallError(errno.EPERM)
        if value is not None and name == b"security.capability" and not valid_caps(value):
            raise SyscallError(errno.EINVAL)
        rec = self._record(f, gen)
        kept = rec.xattrs if rec is not None and rec.xattrs else {}
        on_disk = self._on_disk(fd, name) if kept.get(name, b"") is not None else True
        exists = kept[name] is not None if name in kept else on_disk
        if value is None and not exists:
            raise SyscallError(errno.ENODATA)
        if xflags & XATTR_CREATE and exists:
            raise SyscallError(errno.EEXIST)
        if xflags & XATTR_REPLACE and not exists:
            raise SyscallError(errno.ENODATA)
        new = Record(gen) if rec is None else rec.copy(gen)
        new.xattrs = dict(kept)
        if value is not None:
            new.xattrs[name] = value
        elif on_disk:
            new.xattrs[name] = None       # hidden: the disk keeps it
        else:
            del new.xattrs[name]
        new.xattrs = new.xattrs or None
        new.path = _fd_path(fd) or new.path
        self._save(file_key(f), new)
        if new.xattrs:
            self._want_xattr_reads()
        return 0

    def setxattr(self, call):
        """setxattr, lsetxattr, setxattrat."""
        return self._setxattr(call)

    def fsetxattr(self, call):
        return self._setxattr(call)

    def _setxattr(self, call):
        where = self._xattr_where(call)
        if where is None:
            return None
        a, i = call.args, where[4]
        if call.name == "setxattrat":
            args = self._xattr_args(call, i)
            if args is None:
                return None
            value_addr, size, xflags = args
        else:
            value_addr, size, xflags = a[i + 1], a[i + 2], a[i + 3] & 0xFFFFFFFF
        if xflags & ~(XATTR_CREATE | XATTR_REPLACE) or size > XATTR_SIZE_MAX:
            return None
        name = self._xattr_name(call, a[i])
        if name is None:
            return None
        try:
            value = call.read(value_addr, size) if size else b""
        except SyscallError:
            return None
        fd = self._xattr_open(call, where)
        if fd < 0:
            return None
        try:
            return self._change_xattr(call, fd, name, value, xflags)
        finally:
            os.close(fd)

    def removexattr(self, call):
        """removexattr, lremovexattr, removexattrat."""
        return self._removexattr(call)

    def fremovexattr(self, call):
        return self._removexattr(call)

    def _removexattr(self, call):
        where = self._xattr_where(call)
        if where is None:
            return None
        name = self._xattr_name(call, call.args[where[4]])
        if name is None:
            return None
        fd = self._xattr_open(call, where)
        if fd < 0:
            return None
        try:
            return self._change_xattr(call, fd, name, None)
        finally:
            os.close(fd)

    def getxattr(self, call):
        """getxattr, lgetxattr, getxattrat (claimed once the view keeps an attribute)."""
        return self._getxattr(call)

    def fgetxattr(self, call):
        return self._getxattr(call)

    def _getxattr(self, call):
        if not self.records:
            return None
        where = self._xattr_where(call)
        if where is None:
            return None
        a, i = call.args, where[4]
        if call.name == "getxattrat":
            args = self._xattr_args(call, i)
            if args is None or args[2]:
                return None
            value_addr, size = args[0], args[1]
        else:
            value_addr, size = a[i + 1], a[i + 2]
        name = self._xattr_name(call, a[i])
        if name is None:
            return None
        fd = self._xattr_open(call, where)
        if fd < 0:
            return None
        try:
            rec = self._xattr_record(fd)
        finally:
            os.close(fd)
        if rec is None or name not in rec.xattrs:
            return None
        value = rec.xattrs[name]
        if value is None or (name.startswith(b"trusted.") and self._creds(call.pid).euid != 0):
            raise SyscallError(errno.ENODATA)
        return _answer_buffer(call, value_addr, size, value, XATTR_SIZE_MAX)

    def listxattr(self, call):
        """listxattr, llistxattr, listxattrat (claimed once the view keeps an attribute)."""
        return self._listxattr(call)

    def flistxattr(self, call):
        return self._listxattr(call)

    def _listxattr(self, call):
        if not self.records:
            return None
        where = self._xattr_where(call)
        if where is None:
            return None
        list_addr, size = call.args[where[4]], call.args[where[4] + 1]
        fd = self._xattr_open(call, where)
        if fd < 0:
            return None
        try:
            rec = self._xattr_record(fd)
            if rec is None:
                return None
            try:
                disk = [os.fsencode(n) for n in os.listxattr(f"/proc/self/fd/{fd}")]
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                    return None
                disk = []      # a file system without xattrs: ours alone
        finally:
            os.close(fd)
        root = self._creds(call.pid).euid == 0
        names = [n for n in disk if n not in rec.xattrs]
        names += [n for n, v in rec.xattrs.items()
                  if v is not None and (root or not n.startswith(b"trusted."))]
        data = b"".join(n + b"\0" for n in names)
        return _answer_buffer(call, list_addr, size, data, XATTR_LIST_MAX)

    # -- fakeroot's state files (load=, save=) -----------------------------
    def load_state(self, path: str) -> None:
        """Read fakeroot's state file: each entry becomes the record of the
        file that has its (dev, ino) now, found under the search
        directories.  Entries found nowhere are kept as they are for save=;
        entries whose file type does not match the file found are stale
        (the inode was reused) and dropped."""
        wanted: dict[tuple[int, int], StateEntry] = {}
        paths: dict[tuple[int, int], str] = {}
        for e in read_fakeroot_state(path):
            if e.path is not None:
                try:
                    st = os.lstat(e.path)
                except OSError:
                    continue
                e.dev, e.ino = st.st_dev, st.st_ino
                paths[(e.dev, e.ino)] = e.path
            wanted[(e.dev, e.ino)] = e
        paths.update(find_inodes(self.search, set(wanted) - set(paths)))
        applied = stale = 0
        for key, e in wanted.items():
            where = paths.get(key)
            try:
                f, gen = identify(where, nofollow=True) if where else (None, None)
            except OSError:
                f = None
            if f is None or file_key(f) != key:
                self.unresolved[key] = e
                continue
            rec = record_from_state(e, f, gen, where)
            if rec is None:
                stale += 1
                continue
            old = self._record(f, gen)
            if old is not None and old.xattrs:   # fakeroot's format has none: keep ours
                rec.xattrs = dict(old.xattrs)
            self._save(key, rec)
            applied += 1
        log.info("fakeroot: %s: %d entries applied, %d not found under %s, %d stale", path, applied,
                 len(self.unresolved), ":".join(self.search), stale)

    def save_state(self, path: str) -> None:
        """Write fakeroot's state file: one entry per file the view keeps a
        record of (as the view shows it now), plus the load= entries whose
        file was not found (so that nothing is lost on the way)."""
        located, missing = {}, []
        for key, rec in list(self.records.items()):
            try:
                f, gen = identify(rec.path, nofollow=True) if rec.path else (None, None)
            except OSError:
                f = None
            if f is not None and file_key(f) == key:
                located[key] = (f, gen)
            else:
                missing.append(key)
        for key, where in find_inodes(self.search, missing).items():
            try:
                f, gen = identify(where, nofollow=True)
            except OSError:
                continue
            if file_key(f) == key:
                located[key] = (f, gen)
        lines = {}
        for key, (f, gen) in located.items():
            rec = self._record(f, gen)
            if rec is None:
                continue
            uid, gid, mode, rdev = self._shown(f, rec)
            lines[key] = fakeroot_line(key[0], key[1], mode, uid, gid, f[X_NLINK], os.makedev(*rdev))
        for key, e in self.unresolved.items():
            if key not in lines and key not in self.records:
                lines[key] = fakeroot_line(key[0], key[1], e.mode, e.uid, e.gid, e.nlink, e.rdev)
        text = "".join(lines[k] for k in sorted(lines))
        real = os.path.realpath(path)
        try:
            regular = S.S_ISREG(os.stat(real).st_mode)
        except FileNotFoundError:
            regular = True
        if not regular:        # a FIFO, as fakeroot allows: write into it
            with open(real, "w") as fh:
                fh.write(text)
            return
        tmp = f"{real}.umview-{os.getpid()}"
        try:
            with open(tmp, "w") as fh:
                fh.write(text)
            os.replace(tmp, real)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
