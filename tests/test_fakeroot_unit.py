"""The fakeroot module's logic without ptrace: umview_py.testing.FakeProcess
stands for the tracee.  Its pid is the pid of this test process, so the
paths the module builds (/proc/PID/cwd/..., /proc/PID/fd/N) reach this
process's own files and working directory."""
import errno
import os
import sqlite3
import stat
import struct
import subprocess

import pytest
import trio

from umview_py import Call
from umview_py.errors import ModuleError
from umview_py.testing import FakeProcess
from umview_modules import fakeroot as fr
from umview_modules.fakeroot import FakeRoot

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
NO_ID = 0xFFFFFFFF
MKNODAT = 259


@pytest.fixture
def proc():
    return FakeProcess(pid=os.getpid())


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def newfstatat(m, proc, path, flags=0, dirfd=AT_FDCWD):
    """What the program would read: the unpacked struct stat, or -errno,
    or None when the module lets the kernel answer."""
    buf = proc.alloc(fr.STAT.size)
    res = proc.call(m.stat, "newfstatat", dirfd, proc.string(path) if path is not None else 0, buf,
                    flags)
    if res != 0:
        return res
    return fr.STAT.unpack(proc.read(buf, fr.STAT.size))


def owner_mode(st):
    """(uid, gid, mode, rdev) of an unpacked struct stat."""
    return st[4], st[5], st[3], st[7]


def statx_buf(m, proc, path, flags=0, mask=fr.STATX_BASIC_STATS):
    buf = proc.alloc(fr.STATX_SIZE)
    res = proc.call(m.stat, "statx", AT_FDCWD, proc.string(path), flags, mask, buf)
    if res != 0:
        return res
    return fr.STATX.unpack_from(proc.read(buf, fr.STATX_SIZE))


def chown(m, proc, path, uid, gid, flags=0):
    return proc.call(m.chown, "fchownat", AT_FDCWD, proc.string(path), uid, gid, flags)


def chmod(m, proc, path, mode):
    return proc.call(m.chmod, "fchmodat", AT_FDCWD, proc.string(path), mode)


# ----------------------------------------------------------------------
# identity

def test_identity_defaults(proc):
    m = FakeRoot()
    for name in ("getuid", "geteuid", "getgid", "getegid"):
        assert proc.call(getattr(m, name), name) == 0
    m = FakeRoot(uid="1000", gid="100")
    assert proc.call(m.getuid, "getuid") == 1000
    assert proc.call(m.getegid, "getegid") == 100
    bufs = [proc.alloc(4) for _ in range(3)]
    assert proc.call(m.getresuid, "getresuid", *bufs) == 0
    assert [struct.unpack("<I", proc.read(b, 4))[0] for b in bufs] == [1000, 1000, 1000]
    assert proc.call(m.getgroups, "getgroups", 0, 0) == 1
    g = proc.alloc(8)
    assert proc.call(m.getgroups, "getgroups", 2, g) == 1
    assert struct.unpack("<I", proc.read(g, 4)) == (100,)


def test_bad_id_options():
    with pytest.raises(ModuleError):
        FakeRoot(uid="-1")
    with pytest.raises(ModuleError):
        FakeRoot(uid="4294967295")
    with pytest.raises(ModuleError):
        FakeRoot(others="nobody")


def test_getresuid_bad_pointer(proc):
    m = FakeRoot()
    assert proc.call(m.getresuid, "getresuid", proc.alloc(4), 8, proc.alloc(4)) == -errno.EFAULT


def test_groups(proc):
    m = FakeRoot()
    g = proc.alloc(12, struct.pack("<3I", 30, 10, 20))
    assert proc.call(m.setgroups, "setgroups", 3, g) == 0
    assert proc.call(m.getgroups, "getgroups", 1, g) == -errno.EINVAL
    assert proc.call(m.getgroups, "getgroups", -1, g) == -errno.EINVAL
    assert proc.call(m.getgroups, "getgroups", 3, g) == 3
    assert struct.unpack("<3I", proc.read(g, 12)) == (10, 20, 30)   # sorted, as the kernel does
    assert proc.call(m.setgroups, "setgroups", 70000, g) == -errno.EINVAL
    assert proc.call(m.setresuid, "setresuid", 5, 5, 5) == 0
    assert proc.call(m.setgroups, "setgroups", 0, 0) == -errno.EPERM


def test_setuid_rules(proc):
    m = FakeRoot()
    assert proc.call(m.setuid, "setuid", NO_ID) == -errno.EINVAL
    assert proc.call(m.setresuid, "setresuid", 1, 2, 3) == 0
    c = m._creds(proc.pid)
    assert (c.ruid, c.euid, c.suid, c.fsuid) == (1, 2, 3, 2)
    # no longer root: only the ids it has
    assert proc.call(m.setuid, "setuid", 0) == -errno.EPERM
    assert proc.call(m.setreuid, "setreuid", NO_ID, 3) == 0          # the saved id
    assert proc.call(m.setreuid, "setreuid", NO_ID, 4) == -errno.EPERM
    assert proc.call(m.setresuid, "setresuid", 9, NO_ID, NO_ID) == -errno.EPERM
    assert proc.call(m.setfsuid, "setfsuid", 9) == 3                 # refused: returns the old one
    assert proc.call(m.setfsuid, "setfsuid", 1) == 3
    assert m._creds(proc.pid).fsuid == 1
    assert proc.call(m.setuid, "setuid", 1) == 0                     # the real id
    c = m._creds(proc.pid)
    assert (c.ruid, c.euid, c.suid) == (1, 1, 3)


def test_seteuid_and_back(proc):
    """seteuid(1000) keeps root as real and saved id: it can come back."""
    m = FakeRoot()
    assert proc.call(m.setreuid, "setreuid", NO_ID, 1000) == 0
    assert proc.call(m.geteuid, "geteuid") == 1000
    assert proc.call(m.getuid, "getuid") == 0
    assert proc.call(m.setgid, "setgid", 5) == -errno.EPERM   # CAP_SETGID went with euid 0
    assert proc.call(m.setreuid, "setreuid", NO_ID, 0) == 0
    assert proc.call(m.setgid, "setgid", 5) == 0
    c = m._creds(proc.pid)
    assert (c.rgid, c.egid, c.sgid, c.fsgid) == (5, 5, 5, 5)


def test_setreuid_saved_id(proc):
    m = FakeRoot()
    assert proc.call(m.setreuid, "setreuid", 7, 8) == 0
    c = m._creds(proc.pid)
    assert (c.ruid, c.euid, c.suid) == (7, 8, 8)    # ruid given: saved = new euid


def test_children_keep_what_they_inherited(proc):
    m = FakeRoot()
    before = subprocess.Popen(["sleep", "60"])
    try:
        assert proc.call(m.setresgid, "setresgid", 50, 50, 50) == 0
        after = subprocess.Popen(["sleep", "60"])
        try:
            assert m._creds(before.pid) == m.default
            assert m._creds(after.pid).egid == 50
            assert m._creds(proc.pid).egid == 50
        finally:
            after.kill()
            after.wait()
    finally:
        before.kill()
        before.wait()


def test_capget(proc):
    m = FakeRoot()
    hdr = proc.alloc(8, struct.pack("<Ii", 0x1234, 0))
    # version probe: an unknown version is answered with the preferred one
    assert proc.call(m.capget, "capget", hdr, 0) == 0
    assert struct.unpack("<I", proc.read(hdr, 4))[0] == fr.CAP_V3
    data = proc.alloc(24)
    proc.write(hdr, struct.pack("<I", 0x1234))
    assert proc.call(m.capget, "capget", hdr, data) == -errno.EINVAL
    proc.write(hdr, struct.pack("<Ii", fr.CAP_V3, 0))
    assert proc.call(m.capget, "capget", hdr, data) == 0
    eff0, perm0, inh0, eff1, perm1, inh1 = struct.unpack("<6I", proc.read(data, 24))
    full = m.full_caps
    assert (eff1 << 32 | eff0, perm1 << 32 | perm0, inh0, inh1) == (full, full, 0, 0)
    proc.write(hdr, struct.pack("<Ii", fr.CAP_V3, -1))
    assert proc.call(m.capget, "capget", hdr, data) == -errno.EINVAL
    proc.write(hdr, struct.pack("<Ii", fr.CAP_V3, 0x3FFFFFFF))
    assert proc.call(m.capget, "capget", hdr, data) == -errno.ESRCH
    proc.write(hdr, struct.pack("<Ii", fr.CAP_V1, 0))
    small = proc.alloc(12)
    assert proc.call(m.capget, "capget", hdr, small) == 0        # v1: one word only
    assert proc.call(m.setresuid, "setresuid", 1, 1, 1) == 0
    proc.write(hdr, struct.pack("<Ii", fr.CAP_V3, 0))
    assert proc.call(m.capget, "capget", hdr, data) == 0
    assert proc.read(data, 24) == bytes(24)
    assert proc.call(m.capset, "capset", hdr, data) == 0
    assert proc.call(m.capset, "capset", hdr, 8) == -errno.EFAULT


# ----------------------------------------------------------------------
# the stat family

def test_stat_is_the_kernel_stat_but_the_owner(work, proc):
    m = FakeRoot()
    (work / "f").write_text("hello")
    os.mkdir(work / "d")
    os.symlink("f", work / "l")
    for path, flags, follow in (("f", 0, True), ("d", 0, True), ("l", 0, True),
                                ("l", AT_SYMLINK_NOFOLLOW, False), ("/dev/null", 0, True)):
        st = newfstatat(m, proc, path, flags)
        ref = os.stat(path, follow_symlinks=follow)
        assert st[:4] == (ref.st_dev, ref.st_ino, ref.st_nlink, ref.st_mode), path
        assert st[4:6] == (0, 0), path
        assert st[7:11] == (ref.st_rdev, ref.st_size, ref.st_blksize, ref.st_blocks), path
        assert (st[13] * 10**9 + st[14], st[15] * 10**9 + st[16]) == (ref.st_mtime_ns, ref.st_ctime_ns)


def test_stat_steps_aside_when_the_kernel_would_fail(work, proc):
    m = FakeRoot()
    (work / "f").write_text("x")
    assert newfstatat(m, proc, "missing") is None
    assert newfstatat(m, proc, "f/") is None
    assert newfstatat(m, proc, "") is None                       # no AT_EMPTY_PATH
    assert newfstatat(m, proc, None) is None                     # NULL path
    assert newfstatat(m, proc, "f", flags=0x8000) is None        # bad flags
    assert newfstatat(m, proc, "f", dirfd=-5) is None            # bad dirfd
    assert proc.call(m.stat, "newfstatat", AT_FDCWD, 8, proc.alloc(144), 0) is None
    assert proc.call(m.stat, "newfstatat", AT_FDCWD, proc.string("f"), 8, 0) is None
    assert proc.call(m.fstat, "fstat", 9999, proc.alloc(144)) is None
    # procfs objects are the kernel's too
    assert newfstatat(m, proc, "/proc/self/status") is None


def test_empty_path_and_proc_self_reach_this_process(work, proc):
    m = FakeRoot()
    (work / "f").write_text("x")
    fd = os.open("f", os.O_RDONLY)
    try:
        assert chown(m, proc, "f", 7, 8) == 0
        for st in (newfstatat(m, proc, "", AT_EMPTY_PATH, dirfd=fd),
                   newfstatat(m, proc, None, AT_EMPTY_PATH, dirfd=fd),
                   newfstatat(m, proc, f"/proc/self/fd/{fd}"),
                   newfstatat(m, proc, f"/dev/fd/{fd}"),
                   newfstatat(m, proc, f"/proc/thread-self/fd/{fd}")):
            assert st[4:6] == (7, 8)
        buf = proc.alloc(144)
        assert proc.call(m.fstat, "fstat", fd, buf) == 0
        assert fr.STAT.unpack(proc.read(buf, 144))[4:6] == (7, 8)
        cwd = newfstatat(m, proc, "", AT_EMPTY_PATH)
        assert cwd[1] == os.stat(".").st_ino
    finally:
        os.close(fd)


def test_fd_stats_without_pidfd_getfd(work, proc):
    """Where pidfd_getfd is refused, /proc/TID/fd/N serves the fd calls."""
    class NoGrab(FakeRoot):
        def _grab(self, call, tfd):
            return -1
    m = NoGrab()
    (work / "f").write_text("x")
    fd = os.open("f", os.O_RDONLY)
    try:
        assert chown(m, proc, "f", 7, 8) == 0
        assert newfstatat(m, proc, "", AT_EMPTY_PATH, dirfd=fd)[4:6] == (7, 8)
        buf = proc.alloc(fr.STATX_SIZE)
        assert proc.call(m.stat, "statx", fd, proc.string(""), AT_EMPTY_PATH, fr.STATX_BASIC_STATS,
                         buf) == 0
        assert fr.STATX.unpack_from(proc.read(buf, fr.STATX_SIZE))[fr.X_UID] == 7
    finally:
        os.close(fd)


def test_pidfds_of_dead_processes_are_closed(proc):
    m = FakeRoot()
    child = subprocess.Popen(["true"])
    m._pidfds[child.pid] = os.pidfd_open(child.pid)
    child.wait()
    m._pidfds[proc.pid] = os.pidfd_open(proc.pid)
    m._close_dead_pidfds()
    assert list(m._pidfds) == [proc.pid]
    os.close(m._pidfds.pop(proc.pid))


def test_statx_is_patched_and_keeps_the_mask(work, proc):
    m = FakeRoot()
    (work / "f").write_text("x")
    assert chown(m, proc, "f", 11, 12) == 0
    sx = statx_buf(m, proc, "f")
    assert (sx[fr.X_UID], sx[fr.X_GID]) == (11, 12)
    assert not sx[fr.X_MASK] & fr.STATX_BTIME            # not asked for: not given
    assert (sx[fr.X_BTIME], sx[fr.X_BTIME_NS]) == (0, 0)
    sx = statx_buf(m, proc, "f", mask=fr.STATX_BASIC_STATS | fr.STATX_BTIME)
    assert (sx[fr.X_UID], sx[fr.X_GID]) == (11, 12)
    assert statx_buf(m, proc, "f", mask=0x80000000) is None   # reserved bit: kernel's EINVAL


def test_lchown_records_the_link_itself(work, proc):
    m = FakeRoot()
    (work / "f").write_text("x")
    os.symlink("f", work / "l")
    assert proc.call(m.chown, "lchown", proc.string("l"), 3, 4) == 0
    assert owner_mode(newfstatat(m, proc, "l", AT_SYMLINK_NOFOLLOW))[:2] == (3, 4)
    assert owner_mode(newfstatat(m, proc, "l"))[:2] == (0, 0)   # the target is untouched
    assert proc.call(m.chown, "chown", proc.string("l"), 5, NO_ID) == 0
    assert owner_mode(newfstatat(m, proc, "f"))[:2] == (5, 0)


def test_chown_errors(work, proc):
    m = FakeRoot()
    assert chown(m, proc, "missing", 1, 1) is None            # the kernel says ENOENT
    assert chown(m, proc, "f", 1, 1, flags=0x8000) == -errno.EINVAL
    assert proc.call(m.fchown, "fchown", 9999, 1, 1) == -errno.EBADF
    fd = os.open(".", os.O_PATH)
    try:
        assert proc.call(m.fchown, "fchown", fd, 1, 1) == -errno.EBADF
        assert proc.call(m.fchmod, "fchmod", fd, 0o644) == -errno.EBADF
    finally:
        os.close(fd)


def test_chown_of_a_file_that_is_not_ours(proc):
    m = FakeRoot()
    assert chown(m, proc, "/etc/passwd", 9, 9) == 0
    assert owner_mode(newfstatat(m, proc, "/etc/passwd"))[:2] == (9, 9)


def test_chmod_keeps_the_owner_rw_on_disk(work, proc):
    m = FakeRoot()
    (work / "f").write_text("x")
    os.mkdir(work / "d")
    assert chmod(m, proc, "f", 0) == 0
    assert chmod(m, proc, "d", 0o7555) == 0
    assert os.stat("f").st_mode & 0o7777 == 0o600
    assert os.stat("d").st_mode & 0o777 == 0o755
    assert owner_mode(newfstatat(m, proc, "f"))[2] == stat.S_IFREG
    assert owner_mode(newfstatat(m, proc, "d"))[2] == stat.S_IFDIR | 0o7555
    # a mode the disk can hold: no override left, no record left
    assert chmod(m, proc, "f", 0o644) == 0
    assert owner_mode(newfstatat(m, proc, "f"))[2] == stat.S_IFREG | 0o644
    key = (os.stat("f").st_dev, os.stat("f").st_ino)
    assert key not in m.records


def test_a_chmod_outside_wins_over_an_old_override(work, proc):
    m = FakeRoot()
    (work / "f").write_text("x")
    assert chmod(m, proc, "f", 0o000) == 0
    os.chmod("f", 0o640)                 # not seen by the module
    assert owner_mode(newfstatat(m, proc, "f"))[2] == stat.S_IFREG | 0o640


def test_chown_clears_setuid(work, proc):
    m = FakeRoot()
    (work / "f").write_text("x")
    assert chmod(m, proc, "f", 0o6755) == 0
    assert chown(m, proc, "f", 0, 0) == 0
    assert owner_mode(newfstatat(m, proc, "f"))[2] == stat.S_IFREG | 0o755
    assert chmod(m, proc, "f", 0o6745) == 0
    assert chown(m, proc, "f", 1, NO_ID) == 0
    assert owner_mode(newfstatat(m, proc, "f"))[2] == stat.S_IFREG | 0o2745


def test_unprivileged_emulated_process(work, proc):
    m = FakeRoot()
    (work / "f").write_text("x")
    assert proc.call(m.setresuid, "setresuid", 1000, 1000, 1000) == 0
    assert chown(m, proc, "f", 5, 5) == -errno.EPERM              # the file is root's
    assert chmod(m, proc, "f", 0o600) == -errno.EPERM


def test_inode_reuse_is_not_inherited(work, proc):
    m = FakeRoot()
    (work / "victim").write_text("x")
    assert chown(m, proc, "victim", 1234, 5678) == 0
    ino = os.stat("victim").st_ino
    os.unlink("victim")
    for i in range(2000):
        name = f"n{i}"
        open(name, "w").close()
        if os.stat(name).st_ino == ino:
            break
    else:
        pytest.skip("the file system did not reuse the inode")
    assert owner_mode(newfstatat(m, proc, name))[:2] == (0, 0)
    assert not m.records                 # the stale record is gone


def test_same_birth_time_other_handle_is_stale(work, proc):
    """The birth time has the coarse clock's granularity; the handle's
    generation number tells two files apart even within one tick."""
    m = FakeRoot()
    (work / "f").write_text("x")
    assert chown(m, proc, "f", 1, 2) == 0
    (key, rec), = m.records.items()
    if not rec.gen[3]:
        pytest.skip("no file handles on this file system")
    rec.gen = rec.gen[:3] + (rec.gen[3] + "00",)
    assert owner_mode(newfstatat(m, proc, "f"))[:2] == (0, 0)
    assert not m.records


def test_generation_kinds():
    f = list(fr.STATX.unpack(bytes(fr.STATX.size)))
    f[fr.X_CTIME], f[fr.X_CTIME_NS] = 5, 6
    assert fr.generation(f, "") == ("c", 5, 6, "")
    assert fr.generation(f, "1:ab") == ("h", 0, 0, "1:ab")
    f[fr.X_MASK] = fr.STATX_BTIME
    f[fr.X_BTIME], f[fr.X_BTIME_NS] = 7, 8
    assert fr.generation(f, "1:ab") == ("b", 7, 8, "1:ab")


def test_dev_encoding_matches_the_kernel():
    st = os.stat("/dev/null")
    assert fr.encode_dev(os.major(st.st_rdev), os.minor(st.st_rdev)) == st.st_rdev
    assert fr.encode_dev(259, 70000) == os.makedev(259, 70000)
    assert fr.decode_dev(os.makedev(8, 1)) == (8, 1)


def test_per_process_paths():
    assert fr._per_process(b"/proc/self/fd/3", 10, 11) == b"/proc/10/fd/3"
    assert fr._per_process(b"/proc/thread-self/fd/3", 10, 11) == b"/proc/10/task/11/fd/3"
    assert fr._per_process(b"/dev/stdin", 10, 11) == b"/proc/10/fd/0"
    assert fr._per_process(b"/dev/fd/4/x", 10, 11) == b"/proc/10/fd/4/x"
    assert fr._per_process(b"/proc/selfish", 10, 11) is None
    assert fr._per_process(b"/etc/passwd", 10, 11) is None


# ----------------------------------------------------------------------
# mknod

def _mknod_call(proc, path, mode, dev, made):
    async def kernel(call, nr, args):
        made.append((nr, list(args)))
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, args[2] & 0o7777))
        return 0
    return Call(MKNODAT, "mknodat", [AT_FDCWD, proc.string(path), mode, dev, 0, 0], proc.pid, proc.pid,
                None, proc, kernel)


def test_mknod_makes_a_placeholder(work, proc):
    m = FakeRoot()
    made = []
    call = _mknod_call(proc, "null", stat.S_IFCHR | 0o640, os.makedev(1, 3), made)
    assert trio.run(m.mknod, call) == 0
    assert made[0][0] == MKNODAT and made[0][1][2] == stat.S_IFREG | 0o640   # rewritten
    assert stat.S_ISREG(os.stat("null").st_mode)
    uid, gid, mode, rdev = owner_mode(newfstatat(m, proc, "null"))
    assert (uid, gid, stat.S_IFMT(mode), rdev) == (0, 0, stat.S_IFCHR, os.makedev(1, 3))
    assert mode & 0o777 == os.stat("null").st_mode & 0o777
    # a chmod of the device keeps its type
    assert chmod(m, proc, "null", 0o600) == 0
    assert owner_mode(newfstatat(m, proc, "null"))[2] == stat.S_IFCHR | 0o600
    # fifos and regular files are the kernel's
    assert proc.call(m.mknod, "mknodat", AT_FDCWD, proc.string("p"), stat.S_IFIFO | 0o644, 0) is None


def test_mknod_refused_to_a_non_root(work, proc):
    m = FakeRoot()
    assert proc.call(m.setresuid, "setresuid", 1, 1, 1) == 0
    assert proc.call(m.mknod, "mknodat", AT_FDCWD, proc.string("b"), stat.S_IFBLK | 0o644,
                     os.makedev(8, 0)) == -errno.EPERM


# ----------------------------------------------------------------------
# the database

def _loaded(db, **opts):
    m = FakeRoot(db=str(db), **opts)
    m.loaded(None)
    return m


def test_store_round_trip(work, proc):
    db = work / "s.db"
    (work / "f").write_text("x")
    m = _loaded(db)
    assert chown(m, proc, "f", 1, 2) == 0
    assert chmod(m, proc, "f", 0o4000) == 0
    m.unloaded()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        (path, uid, gid, perm), = conn.execute("SELECT path, uid, gid, perm FROM files")
    assert (path, uid, gid, perm) == (str(work / "f"), 1, 2, 0o4000)
    os.rename("f", "g")                          # outside any view
    m2 = _loaded(db)
    try:
        assert owner_mode(newfstatat(m2, proc, "g")) [:3] == (1, 2, stat.S_IFREG | 0o4000)
    finally:
        m2.unloaded()


def test_store_drops_stale_records_at_load(work, proc):
    db = work / "s.db"
    (work / "f").write_text("x")
    m = _loaded(db)
    assert chown(m, proc, "f", 1, 2) == 0
    m.unloaded()
    with sqlite3.connect(db) as conn:   # as if the inode at that path had been reused
        conn.execute("UPDATE files SET gen_handle = gen_handle || '00'")
    m2 = _loaded(db)
    m2.unloaded()
    assert not m2.records
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM files").fetchone()[0] == 0


def test_store_keeps_records_it_cannot_check(work, proc):
    """A record whose path is gone may belong to a file renamed outside: it
    stays, and is checked when its inode is met."""
    db = work / "s.db"
    (work / "f").write_text("x")
    m = _loaded(db)
    assert chown(m, proc, "f", 1, 2) == 0
    m.unloaded()
    os.rename("f", "g")
    m2 = _loaded(db)
    m2.unloaded()
    assert len(m2.records) == 1


def test_store_rejects_a_file_that_is_not_a_database(work):
    (work / "bad.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ModuleError, match="cannot"):
        _loaded(work / "bad.db")


def test_others_real(work, proc):
    if os.geteuid() != 0:
        pytest.skip("needs a file of another user (made as root)")
    (work / "theirs").write_text("x")
    (work / "mine").write_text("x")
    os.chown("theirs", 65534, 65534)
    m = FakeRoot(others="real")
    assert owner_mode(newfstatat(m, proc, "theirs"))[:2] == (65534, 65534)
    assert owner_mode(newfstatat(m, proc, "mine"))[:2] == (0, 0)
    assert owner_mode(newfstatat(FakeRoot(), proc, "theirs"))[:2] == (0, 0)


def test_statx_wrapper_errors():
    with pytest.raises(FileNotFoundError):
        fr.statx("/nonexistent/x")


# ----------------------------------------------------------------------
# fakeroot's state format

def test_state_format_parse_and_write(work):
    line = fr.fakeroot_line(0xfe00, 2234783, 0o104755, 12, 34, 1, 0)
    assert line == "dev=fe00,ino=2234783,mode=104755,uid=12,gid=34,nlink=1,rdev=0\n"
    (work / "s").write_text(line + "\n" + fr.fakeroot_line(0x801, 7, 0o20644, 0, 0, 1, 259)
                            + "mode=40755,uid=5,gid=6,nlink=2,rdev=0 /some where/dir\n")
    a, b, c = fr.read_fakeroot_state(str(work / "s"))
    assert (a.dev, a.ino, a.mode, a.uid, a.gid, a.nlink, a.rdev, a.path) == \
        (0xfe00, 2234783, 0o104755, 12, 34, 1, 0, None)
    assert (os.major(b.rdev), os.minor(b.rdev)) == (1, 3)      # glibc's dev_t encoding
    assert (c.mode, c.uid, c.path) == (0o40755, 5, "/some where/dir")
    (work / "bad").write_text(line + "dev=fe00,ino=1,mode=100644\n")
    with pytest.raises(ModuleError, match=r"bad:2: not a line"):
        fr.read_fakeroot_state(str(work / "bad"))
    with pytest.raises(ModuleError, match="cannot read"):
        fr.read_fakeroot_state(str(work / "missing"))


def test_record_from_state(work):
    (work / "f").write_text("")
    os.chmod("f", 0o644)
    f, gen = fr.identify("f", nofollow=True)
    dev, ino = fr.file_key(f)
    entry = fr.StateEntry(dev, ino, stat.S_IFCHR | 0o600, 3, 4, 1, os.makedev(5, 6))
    rec = fr.record_from_state(entry, f, gen, "f")
    assert (rec.kind, rec.rdev, rec.uid, rec.gid, rec.perm, rec.disk_perm) == \
        (stat.S_IFCHR, (5, 6), 3, 4, 0o600, 0o644)
    same = fr.record_from_state(fr.StateEntry(dev, ino, stat.S_IFREG | 0o644, 0, 0, 1, 0), f, gen, "f")
    assert (same.kind, same.perm, same.uid) == (None, None, 0)
    # a directory's entry cannot be about a regular file: the inode was reused
    assert fr.record_from_state(fr.StateEntry(dev, ino, stat.S_IFDIR | 0o755, 0, 0, 2, 0),
                                f, gen, "f") is None


def test_load_and_save_state(work, proc):
    for name in ("a", "b", "gone"):
        (work / name).write_text("")
    os.mkdir("sub")
    (work / "sub" / "c").write_text("")
    keys = {n: fr.file_key(fr.identify(n, nofollow=True)[0]) for n in ("a", "b", "sub/c", "gone")}
    lines = [fr.fakeroot_line(*keys["a"], 0o100644, 1, 2, 1, 0),
             fr.fakeroot_line(*keys["sub/c"], 0o20640, 0, 5, 1, os.makedev(1, 3)),
             fr.fakeroot_line(*keys["gone"], 0o100600, 7, 7, 1, 0)]
    (work / "in").write_text("".join(lines))
    os.unlink("gone")           # not found: kept for save= as it was
    m = FakeRoot(load="in", save=str(work / "out"), search=str(work))
    m.loaded(None)
    assert owner_mode(newfstatat(m, proc, "a"))[:3] == (1, 2, stat.S_IFREG | 0o644)
    assert owner_mode(newfstatat(m, proc, "sub/c")) == (0, 5, stat.S_IFCHR | 0o640, os.makedev(1, 3))
    assert list(m.unresolved) == [keys["gone"]]
    assert chown(m, proc, "b", 8, 9) == 0
    os.rename("a", "sub/a2")    # the record's path is stale: found by the walk
    m.unloaded()
    out = sorted((work / "out").read_text().splitlines())
    st_b = os.lstat("b")
    want = sorted([lines[0].strip(), lines[1].strip(), lines[2].strip(),
                   fr.fakeroot_line(*keys["b"], st_b.st_mode, 8, 9, 1, 0).strip()])
    assert out == want


def test_save_state_writes_what_the_view_shows(work, proc):
    (work / "f").write_text("")
    m = FakeRoot(uid="1000", gid="100", save=str(work / "s"))
    m.loaded(None)
    assert chmod(m, proc, "f", 0) == 0       # a record (perm override) with the default owner
    m.unloaded()
    st = os.lstat("f")
    assert (work / "s").read_text() == fr.fakeroot_line(st.st_dev, st.st_ino, stat.S_IFREG, 1000, 100,
                                                       1, 0)


# ----------------------------------------------------------------------
# extended attributes

def setxattr(m, proc, path, name, value, flags=0, call="setxattr"):
    v = proc.alloc(max(len(value), 1), value)
    return proc.call(m.setxattr if call != "fsetxattr" else m.fsetxattr, call,
                     proc.string(path) if call != "fsetxattr" else path, proc.string(name), v,
                     len(value), flags)


def test_xattrs_kept_in_the_record(work, proc):
    (work / "f").write_text("")
    m = FakeRoot()
    assert "getxattr" not in m.claims().syscalls and "setxattr" in m.claims().syscalls
    assert setxattr(m, proc, "f", "user.x", b"1") is None        # the kernel's
    # the first attribute kept widens the claims (and is answered)
    value = proc.alloc(5, b"hello")
    call = proc.make_call("setxattr", proc.string("f"), proc.string("security.a"), value, 5, 0)
    assert m.setxattr(call) == 0 and not call.rewritten
    assert "getxattr" in m.claims().syscalls and "flistxattr" in m.claims().syscalls
    assert setxattr(m, proc, "f", "security.a2", b"x") == 0          # later ones: answered
    assert os.listxattr("f") == []
    buf = proc.alloc(64)
    name = proc.string("security.a")
    assert proc.call(m.getxattr, "getxattr", proc.string("f"), name, buf, 0) == 5
    assert proc.call(m.getxattr, "getxattr", proc.string("f"), name, buf, 4) == -errno.ERANGE
    assert proc.call(m.getxattr, "getxattr", proc.string("f"), name, buf, 64) == 5
    assert proc.read(buf, 5) == b"hello"
    assert proc.call(m.getxattr, "getxattr", proc.string("f"), proc.string("user.x"), buf, 64) is None
    assert proc.call(m.getxattr, "getxattr", proc.string("f"), proc.string("security.b"), buf, 64) is None
    assert setxattr(m, proc, "f", "security.a", b"x", fr.XATTR_CREATE) == -errno.EEXIST
    assert setxattr(m, proc, "f", "trusted.b", b"x", fr.XATTR_REPLACE) == -errno.ENODATA
    assert setxattr(m, proc, "f", "trusted.b", b"xy", 4) is None      # bad flags: the kernel's EINVAL
    assert setxattr(m, proc, "f", "security." + "n" * 300, b"x") is None   # ERANGE: the kernel's
    assert setxattr(m, proc, "missing", "security.a", b"x") is None   # ENOENT: the kernel's
    assert setxattr(m, proc, "f", "trusted.b", b"xy") == 0
    os.setxattr("f", "user.disk", b"d")
    fd = os.open("f", os.O_RDONLY)
    try:
        lst = proc.alloc(128)
        n = proc.call(m.listxattr, "flistxattr", fd, lst, 128)
        assert proc.read(lst, n).split(b"\0")[:-1] == [b"user.disk", b"security.a", b"security.a2",
                                                        b"trusted.b"]
        assert proc.call(m.listxattr, "flistxattr", fd, lst, 0) == n
        assert proc.call(m.listxattr, "flistxattr", fd, lst, n - 1) == -errno.ERANGE
        assert proc.call(m.removexattr, "fremovexattr", fd, proc.string("security.a")) == 0
        assert proc.call(m.removexattr, "fremovexattr", fd, proc.string("security.a")) == -errno.ENODATA
    finally:
        os.close(fd)
    # a process that gave root up may not set them, nor see trusted.*
    assert proc.call(m.setresuid, "setresuid", 5, 5, 5) == 0
    assert setxattr(m, proc, "f", "security.c", b"x") == -errno.EPERM
    assert proc.call(m.getxattr, "getxattr", proc.string("f"), proc.string("trusted.b"), buf, 64) \
        == -errno.ENODATA


def test_xattrs_in_the_database_and_chown_drops_capabilities(work, proc):
    db = work / "s.db"
    (work / "f").write_text("")
    caps = struct.pack("<IIIII", fr.VFS_CAP_REVISION_2 | 1, 1 << 13, 0, 0, 0)   # cap_net_raw+ep
    m = _loaded(db)
    assert setxattr(m, proc, "f", "security.capability", caps[:12]) == -errno.EINVAL   # revision 1
    assert setxattr(m, proc, "f", "security.capability", caps) == 0   # served; widens
    assert setxattr(m, proc, "f", "security.selinux", b"ctx\0") == 0
    m.unloaded()
    m2 = _loaded(db)
    try:
        assert m2.xattr_reads and "getxattr" in m2.claims().syscalls
        buf = proc.alloc(64)
        assert proc.call(m2.getxattr, "getxattr", proc.string("f"), proc.string("security.capability"),
                         buf, 64) == len(caps)
        assert proc.read(buf, len(caps)) == caps
        assert chown(m2, proc, "f", 1, 1) == 0
        assert proc.call(m2.getxattr, "getxattr", proc.string("f"), proc.string("security.capability"),
                         buf, 64) is None
        assert proc.call(m2.getxattr, "getxattr", proc.string("f"), proc.string("security.selinux"),
                         buf, 64) == 4
    finally:
        m2.unloaded()


def test_a_database_from_before_xattrs_opens(work, proc):
    db = work / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE files (dev INTEGER NOT NULL, ino INTEGER NOT NULL, gen_kind TEXT "
                     "NOT NULL, gen_sec INTEGER NOT NULL, gen_nsec INTEGER NOT NULL, gen_handle TEXT "
                     "NOT NULL, uid INTEGER, gid INTEGER, kind INTEGER, perm INTEGER, disk_perm "
                     "INTEGER, rdev_major INTEGER, rdev_minor INTEGER, path TEXT, PRIMARY KEY (dev, ino))")
    conn.close()
    (work / "f").write_text("")
    m = _loaded(db)
    assert setxattr(m, proc, "f", "trusted.x", b"1") == 0   # served; widens
    m.unloaded()
    assert _loaded(db).records[fr.file_key(fr.identify("f", nofollow=True)[0])].xattrs == \
        {b"trusted.x": b"1"}


def test_removing_an_attribute_the_disk_has_hides_it(work, proc):
    if os.geteuid() != 0:
        pytest.skip("needs a security.* attribute on disk (set as root)")
    (work / "f").write_text("")
    os.setxattr("f", "security.disk", b"d")
    m = FakeRoot()
    assert proc.call(m.removexattr, "removexattr", proc.string("f"), proc.string("security.disk")) \
        == 0   # served (hidden); widens
    buf = proc.alloc(64)
    assert proc.call(m.getxattr, "getxattr", proc.string("f"), proc.string("security.disk"), buf, 64) \
        == -errno.ENODATA
    n = proc.call(m.listxattr, "listxattr", proc.string("f"), buf, 64)
    assert b"security.disk" not in proc.read(buf, n)
    assert os.getxattr("f", "security.disk") == b"d"      # the disk keeps it
    assert setxattr(m, proc, "f", "security.disk", b"again", fr.XATTR_CREATE) == 0


# ----------------------------------------------------------------------
# exec of set-id files: noted at execve, applied once the image changed

def _running_cat():
    """A cat that has certainly finished its exec (it echoed a line)."""
    child = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    child.stdin.write(b"ready\n")
    child.stdin.flush()
    assert child.stdout.readline() == b"ready\n"
    return child


def test_exec_fingerprint():
    me = fr.exec_fingerprint(os.getpid())
    assert me is not None and len(me) == 24 and me == fr.exec_fingerprint(os.getpid())
    child = _running_cat()
    try:
        assert fr.exec_fingerprint(child.pid) not in (None, me)
    finally:
        child.stdin.close()
        child.wait()
        child.stdout.close()
    assert fr.exec_fingerprint(child.pid) is None


def test_exec_ids_of_set_id_files(work, proc):
    m = FakeRoot()
    for name, mode in (("u", 0o4755), ("g", 0o2755), ("gnox", 0o2745), ("plain", 0o755),
                       ("noexec", 0o4644)):
        (work / name).write_bytes(b"\x7fELF")
        os.chmod(name, mode)
        assert chown(m, proc, name, 1234, 77) == 0
        assert chmod(m, proc, name, mode) == 0
    (work / "script").write_bytes(b"#!/bin/sh\n")
    assert chown(m, proc, "script", 1234, 77) == 0
    assert chmod(m, proc, "script", 0o6755) == 0

    def ids(path):
        c = proc.make_call("execve", proc.string(path), 0, 0)
        return m._exec_ids(c, m._host(c, fr.AT_FDCWD32, c.args[0], 0))
    assert ids("u") == (1234, None)
    assert ids("g") == (None, 77)
    assert ids("gnox") == (None, None)
    assert ids("plain") == (None, None)
    assert ids("noexec") is None            # EACCES: the exec fails
    assert ids("script") == (None, None)    # Linux ignores set-id bits of scripts
    assert ids("missing") is None


def test_noted_exec_applies_once_the_image_changed(proc):
    m = FakeRoot()
    child = _running_cat()
    try:
        start = fr._proc_stat(child.pid)[1]
        now = fr.exec_fingerprint(child.pid)
        m.execs[child.pid] = (start, now, 1234, None)       # same image: not yet
        assert m._creds(child.pid) == m.default and child.pid in m.execs
        m.execs[child.pid] = (start, b"the image before", 1234, 77)
        c = m._creds(child.pid)
        assert (c.ruid, c.euid, c.suid, c.fsuid, c.rgid, c.egid, c.sgid) == (0, 1234, 1234, 1234, 0, 77, 77)
        assert not m.execs
        assert m._creds(proc.pid) == m.default               # only that process
    finally:
        child.stdin.close()
        child.wait()
        child.stdout.close()


def test_the_xattrat_calls(work, proc):
    """setxattrat/getxattrat/listxattrat/removexattrat (Linux 6.13): the
    value travels in a struct xattr_args."""
    (work / "f").write_text("")
    os.symlink("f", "l")
    m = FakeRoot()
    m.xattr_reads = True      # as after a first attribute (no widening in this test)
    value = proc.alloc(3, b"abc")
    args = proc.alloc(16, struct.pack("<QII", value, 3, 0))
    name = proc.string("security.at")
    assert proc.call(m.setxattr, "setxattrat", AT_FDCWD, proc.string("l"), AT_SYMLINK_NOFOLLOW, name,
                     args, 16) == 0
    assert proc.call(m.setxattr, "setxattrat", AT_FDCWD, proc.string("l"), 0x8000, name,
                     args, 16) is None                    # bad at-flags: the kernel's EINVAL
    assert proc.call(m.setxattr, "setxattrat", AT_FDCWD, proc.string("l"), 0, name, args, 8) is None
    big = proc.alloc(24, struct.pack("<QIIQ", value, 3, 0, 1))
    assert proc.call(m.setxattr, "setxattrat", AT_FDCWD, proc.string("l"), 0, name, big, 24) is None
    out = proc.alloc(16)
    get = proc.alloc(16, struct.pack("<QII", out, 16, 0))
    assert proc.call(m.getxattr, "getxattrat", AT_FDCWD, proc.string("l"), AT_SYMLINK_NOFOLLOW, name,
                     get, 16) == 3
    assert proc.read(out, 3) == b"abc"
    # the link itself has it, not the file it names
    assert proc.call(m.getxattr, "getxattrat", AT_FDCWD, proc.string("l"), 0, name, get, 16) is None
    fd = os.open(".", os.O_RDONLY)
    try:
        lst = proc.alloc(64)
        n = proc.call(m.listxattr, "listxattrat", fd, proc.string("l"), AT_SYMLINK_NOFOLLOW, lst, 64)
        assert proc.read(lst, n) == b"security.at\0"
        assert proc.call(m.removexattr, "removexattrat", fd, proc.string("l"), AT_SYMLINK_NOFOLLOW,
                         name) == 0
        assert proc.call(m.listxattr, "listxattrat", fd, proc.string("l"), AT_SYMLINK_NOFOLLOW,
                         lst, 64) is None         # nothing kept: the kernel's answer
    finally:
        os.close(fd)


def test_same_ids_until_a_change(proc):
    """Claims.same_ids holds while every process has the default ids: a
    call that changes nothing keeps it, a change of groups too (the shim
    answers no group call); the first other id ends it, for good, and the
    module reclaims from that call."""
    m = FakeRoot(uid=5, gid=7)
    reclaims = []
    m.reclaim = lambda: reclaims.append(m.claims().same_ids)
    assert m.claims().same_ids == (5, 7)
    assert proc.call(m.setresuid, "setresuid", NO_ID, 5, NO_ID) == 0
    g = proc.alloc(4, struct.pack("<I", 9))
    assert proc.call(m.setgroups, "setgroups", 1, g) == -errno.EPERM   # not root: refused
    assert m.claims().same_ids == (5, 7) and reclaims == []
    root = FakeRoot()
    root.reclaim = lambda: reclaims.append(root.claims().same_ids)
    assert proc.call(root.setgroups, "setgroups", 1, g) == 0
    assert root.claims().same_ids == (0, 0) and reclaims == []
    assert proc.call(root.setresgid, "setresgid", NO_ID, 3, NO_ID) == 0
    assert reclaims == [None] and root.claims().same_ids is None
    assert proc.call(root.setresgid, "setresgid", NO_ID, 0, NO_ID) == 0   # back: still off
    assert root.claims().same_ids is None and reclaims == [None]
