"""The fakeroot module in real views, with real programs.

Most tests run twice: as the user running the tests (`self`) and, when that
user is root, as the unprivileged user `umvtest` (`user`; created here with
useradd when missing), because a fake root matters for people who are not
root.  When the Python interpreter lives in a directory other users cannot
search (/root/.pyenv here), the `user` runs go through a private mount
namespace in which only the interpreter's tree is made reachable (nothing
on the host changes; see `UserRunner`).

What is checked:
- the probe of ../shared/design/PEERS.md (touch, chown, ls, mknod, tar) and tar
  extraction of what it made;
- id, install -o/-g/-m, cp -a and chown -R of a tree, lchown of a symlink,
  dpkg-deb, a child giving root up;
- a static C program (tests/progs/statvariants.c, raw system calls) prints
  the same owner, mode and rdev for every stat variant; its --edge mode
  gives exactly the native results (errors included) on awkward cases;
  its --ids mode checks the emulated credentials and their inheritance;
- persistence with db=: across runs, across a rename made outside, not
  across the reuse of an inode (in one view and across runs), stale records
  dropped, two views writing the same database at once, a hypervisor
  killed with SIGKILL while writing;
- fakeroot's state files with the real fakeroot, both ways (fakeroot -s then
  --fakeroot-load, --fakeroot-save then fakeroot -i, and through both);
- security.* and trusted.* xattrs (python's os.*xattr, setcap/getcap, cp -a,
  tar --xattrs, the database);
- set-user-ID and set-group-ID files (id, sh -p, a static program, saved
  ids, children forked before and after the exec, scripts, failed execs).
"""
import os
import pwd
import shlex
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import re
import tempfile
from pathlib import Path

import pytest

from conftest import PROGS, core_stats

TEST_USER = "umvtest"
IS_ROOT = os.geteuid() == 0
TIMEOUT = 180

def _env(extra=None):
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", os.defpath)
    env["LC_ALL"] = "C"
    env["TZ"] = "UTC"
    env.update(extra or {})
    return env


def _unsearchable_ancestor(path):
    """(the first directory on the way to path that others cannot search,
    the entry below it on the way), or None."""
    cur = Path("/")
    for part in Path(path).resolve().parts[1:]:
        if not os.stat(cur).st_mode & 0o001:
            return cur, cur / part
        cur = cur / part
    return None


class Runner:
    """Runs commands in views (and natively) as one user, in a work
    directory that user owns."""

    def __init__(self, workdir: Path, prefix=(), uid=None, gid=None):
        self.workdir = workdir
        self.prefix = list(prefix)
        self.uid = os.getuid() if uid is None else uid
        self.gid = os.getgid() if gid is None else gid

    def run(self, argv, *, input=None, timeout=TIMEOUT, cwd=None, check=False, env=None):
        res = subprocess.run(self.prefix + list(argv), cwd=cwd or self.workdir, input=input,
                             env=_env(env), capture_output=True, timeout=timeout)
        if check:
            assert res.returncode == 0, (argv, res.stdout.decode(), res.stderr.decode())
        return res

    def view(self, cmd, *options, **kw):
        return self.run([sys.executable, "-m", "umview_py"] + list(options) + ["--"] + list(cmd),
                        **kw)

    def fakeroot(self, script, *options, check=True, **kw):
        """sh -c script in a view with fakeroot (plus options); stdout as text."""
        opts = list(options) or ["-p", "fakeroot"]
        res = self.view(["sh", "-c", "umask 022\n" + script], *opts, **kw)
        if check:
            assert res.returncode == 0, (res.stdout.decode(), res.stderr.decode())
            assert b"Traceback" not in res.stderr, res.stderr.decode()
        return res.stdout.decode()

    def sh(self, script, **kw):
        """sh -c script natively, as this runner's user."""
        return self.run(["sh", "-c", "umask 022\n" + script], check=True, **kw).stdout.decode()


class UserRunner(Runner):
    """The unprivileged test user, reached from root with setpriv."""

    def __init__(self, workdir, pw):
        setpriv = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--"]
        hidden = _unsearchable_ancestor(sys.executable)
        if hidden is None:
            prefix = setpriv
        else:
            anc, keep = (shlex.quote(str(p)) for p in hidden)
            script = (f"set -e; t=$(mktemp -d); mount --bind {keep} \"$t\"; "
                      f"mount -t tmpfs -o mode=755 tmpfs {anc}; mkdir -p {keep}; "
                      f"mount --move \"$t\" {keep}; exec {' '.join(setpriv)} \"$@\"")
            prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"]
        super().__init__(workdir, prefix, pw.pw_uid, pw.pw_gid)


@pytest.fixture(scope="session")
def test_user():
    if not IS_ROOT:
        return None
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "-m", TEST_USER], check=True, capture_output=True)
        return pwd.getpwnam(TEST_USER)


def _workdir(owner=None):
    d = Path(tempfile.mkdtemp(prefix="umv-fr-", dir="/tmp"))
    d.chmod(0o755)
    if owner is not None:
        os.chown(d, owner.pw_uid, owner.pw_gid)
    return d


@pytest.fixture(params=["self", "user"])
def runner(request, test_user):
    if request.param == "user":
        if test_user is None:
            pytest.skip("not root: the tests already run as an unprivileged user")
        d = _workdir(test_user)
        r = UserRunner(d, test_user)
    else:
        d = _workdir()
        r = Runner(d)
    yield r
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def me():
    d = _workdir()
    yield Runner(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def statvariants():
    """tests/progs/statvariants.c linked statically, where any user can run it."""
    d = Path(tempfile.mkdtemp(prefix="umv-fr-bin-", dir="/tmp"))
    d.chmod(0o755)
    out = d / "statvariants"
    subprocess.run(["gcc", "-O1", "-Wall", "-static", "-o", str(out), str(PROGS / "statvariants.c")],
                   check=True, capture_output=True)
    out.chmod(0o755)
    yield str(out)
    shutil.rmtree(d, ignore_errors=True)


def fields(line):
    return line.split()


# ----------------------------------------------------------------------
# the probe, identity, everyday tools

def test_probe(runner):
    out = runner.fakeroot("touch f; chown 1234:5678 f; ls -ln f; mknod dev c 1 3; ls -l dev; "
                          "tar czf a.tgz f dev; tar tvzf a.tgz").splitlines()
    assert len(out) == 4, out
    assert fields(out[0])[0] == "-rw-r--r--" and fields(out[0])[2:4] == ["1234", "5678"], out
    assert fields(out[1])[0] == "crw-r--r--" and fields(out[1])[2:6] == ["root", "root", "1,", "3"], out
    assert fields(out[2])[:2] == ["-rw-r--r--", "1234/5678"], out
    assert fields(out[3])[:3] == ["crw-r--r--", "root/root", "1,3"], out
    # nothing changed on disk: the device is an empty regular file of ours
    st = os.lstat(runner.workdir / "f")
    dev = os.lstat(runner.workdir / "dev")
    assert (st.st_uid, dev.st_uid) == (runner.uid, runner.uid)
    assert stat.S_ISREG(dev.st_mode) and dev.st_size == 0
    # a fake root extracts the archive with its owners and its device
    out = runner.fakeroot("mkdir x && cd x && tar xzpf ../a.tgz && ls -ln f dev").splitlines()
    assert fields(out[0])[0] == "crw-r--r--" and fields(out[0])[2:6] == ["0", "0", "1,", "3"], out
    assert fields(out[1])[0] == "-rw-r--r--" and fields(out[1])[2:4] == ["1234", "5678"], out


def test_id(runner):
    out = runner.fakeroot("id; id -u; id -g; whoami").splitlines()
    assert out == ["uid=0(root) gid=0(root) groups=0(root)", "0", "0", "root"]
    out = runner.fakeroot("id -u; id -g; id -G; touch f; stat -c '%u %g' f",
                          "--fake-uid", "1000", "--fake-gid", "100").splitlines()
    assert out == ["1000", "100", "100", "1000 100"]


def test_install_setuid_root(runner):
    out = runner.fakeroot("install -o root -g root -m 4755 /bin/true t; ls -ln t; "
                          "install -o 1234 -g 5678 -m 2750 /bin/true u; stat -c '%A %u %g' u; ./t && echo ran")
    lines = out.splitlines()
    assert fields(lines[0])[0] == "-rwsr-xr-x" and fields(lines[0])[2:4] == ["0", "0"], out
    assert lines[1] == "-rwxr-s--- 1234 5678", out
    assert lines[2] == "ran"


def test_cp_a_and_chown_R(runner):
    runner.sh("mkdir -p tree/a/b && echo 1 > tree/a/one && echo 2 > tree/a/b/two && "
              "ln -s a/one tree/link && mkfifo tree/fifo")
    db = ["--fakeroot-db", str(runner.workdir / "state.db")]
    out = runner.fakeroot(
        "chown -R 1234:5678 tree && chown -h 7:8 tree/link && chmod 750 tree/a/b && "
        "mknod tree/null c 1 3 && chown 0:5 tree/null && "
        "cp -a tree copy && find tree copy -printf '%p %U:%G %M\\n' | sort", *db)
    got = dict(line.split(" ", 1) for line in out.splitlines())
    for top in ("tree", "copy"):
        assert got[f"{top}"] == "1234:5678 drwxr-xr-x", got
        assert got[f"{top}/a/one"] == "1234:5678 -rw-r--r--", got
        assert got[f"{top}/a/b"] == "1234:5678 drwxr-x---", got
        assert got[f"{top}/a/b/two"] == "1234:5678 -rw-r--r--", got
        assert got[f"{top}/link"] == "7:8 lrwxrwxrwx", got   # the link itself
        assert got[f"{top}/fifo"] == "1234:5678 prw-r--r--", got
        assert got[f"{top}/null"] == "0:5 crw-r--r--", got
    # python's os.stat, os.lstat, ls and stat agree with find
    out = runner.fakeroot(
        "python3 -c 'import os,sys\nfor p in sys.argv[1:]:\n s=os.lstat(p); t=os.stat(p)\n"
        " print(p, s.st_uid, s.st_gid, oct(s.st_mode), t.st_uid, t.st_gid)' copy/link copy/null copy/a; "
        "stat -c '%n %u %g %f' copy/link copy/null copy/a; ls -lnd copy/link copy/null copy/a", *db)
    lines = out.splitlines()
    assert lines[0] == "copy/link 7 8 0o120777 1234 5678", out
    assert lines[1] == "copy/null 0 5 0o20644 0 5", out
    assert lines[2] == "copy/a 1234 5678 0o40755 1234 5678", out
    assert lines[3:6] == ["copy/link 7 8 a1ff", "copy/null 0 5 21a4", "copy/a 1234 5678 41ed"], out
    # ls sorts: a, link, null
    assert [fields(x)[2:4] for x in lines[6:9]] == [["1234", "5678"], ["7", "8"], ["0", "5"]], out


def test_chmod_bits_the_kernel_refuses(runner):
    out = runner.fakeroot(
        "touch f; mkdir d; chmod 0 f; chmod 7777 d; stat -c '%a' f d; cat f && echo readable; "
        "touch d/inside && echo writable; chown 4321:4321 f; chmod 2755 f; stat -c '%a %u %g' f")
    assert out.splitlines() == ["0", "7777", "readable", "writable", "2755 4321 4321"], out
    # on disk the owner keeps access
    assert os.lstat(runner.workdir / "f").st_mode & 0o600 == 0o600
    assert os.lstat(runner.workdir / "d").st_mode & 0o700 == 0o700


def test_chown_of_a_file_owned_by_another_user(runner):
    # /etc/hostname belongs to root: a fake root can "chown" it too
    out = runner.fakeroot("chown 77:88 /etc/hostname && stat -c '%u %g' /etc/hostname; "
                          "chown 1 /nonexistent; echo $?")
    assert out.splitlines() == ["77 88", "1"], out
    assert os.stat("/etc/hostname").st_uid == 0


def test_chown_clears_setuid_as_the_kernel_does(runner):
    out = runner.fakeroot("touch f; chmod 6755 f; chown 0:0 f; stat -c %a f; "
                          "chmod 6745 f; chown 5 f; stat -c %a f; mkdir d; chmod 6755 d; chown 1:1 d; stat -c %a d")
    assert out.splitlines() == ["755", "2745", "6755"], out


def test_dropping_root_in_a_child(runner):
    """A child gives root up (setgroups, setgid, setuid, then exec): it and
    what it runs see the new ids; its parent stays root."""
    out = runner.fakeroot(
        "python3 -c 'import os; os.setgroups([7]); os.setgid(100); os.setuid(1000); "
        "os.execvp(\"sh\", [\"sh\", \"-c\", \"id -u; id -g; id -G; touch mine; "
        "chown 0 mine 2>/dev/null || echo refused\"])'; id -u")
    assert out.splitlines() == ["1000", "100", "100 7", "refused", "0"], out


@pytest.mark.skipif(not shutil.which("dpkg-deb"), reason="dpkg-deb is not installed")
def test_dpkg_deb(runner):
    runner.sh("mkdir -p pkg/DEBIAN pkg/usr/bin pkg/var/lib/thing && "
              "printf 'Package: thing\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: x <x@y>\\n"
              "Description: test\\n' > pkg/DEBIAN/control && cp /bin/true pkg/usr/bin/thing")
    out = runner.fakeroot("chown -R root:root pkg && chown 4321:4322 pkg/var/lib/thing && "
                          "chmod 4755 pkg/usr/bin/thing && dpkg-deb --build pkg thing.deb >/dev/null && "
                          "dpkg-deb -c thing.deb")
    rows = {fields(line)[-1]: fields(line)[:2] for line in out.splitlines()}
    assert rows["./usr/bin/thing"] == ["-rwsr-xr-x", "root/root"], out
    assert rows["./var/lib/thing/"] == ["drwxr-xr-x", "4321/4322"], out
    assert rows["./usr/"] == ["drwxr-xr-x", "root/root"], out


def test_others_real(me):
    """others=real: never-chowned files of other users keep their owner."""
    if not IS_ROOT:
        pytest.skip("needs a file of another user (made as root)")
    me.sh("touch theirs mine")
    os.chown(me.workdir / "theirs", 65534, 65534)
    out = me.fakeroot("stat -c '%n %u %g' theirs mine", "-p", "fakeroot,others=real")
    assert out.splitlines() == ["theirs 65534 65534", "mine 0 0"]
    out = me.fakeroot("stat -c '%n %u %g' theirs mine")
    assert out.splitlines() == ["theirs 0 0", "mine 0 0"]


# ----------------------------------------------------------------------
# the static program: all stat variants, edge cases, credentials

def test_every_stat_variant_agrees(runner, statvariants):
    out = runner.fakeroot(f"touch f; chown 1234:5678 f; chmod 4711 f; mknod dev b 8 1; chown 5:6 dev; "
                          f"chmod 640 dev; mkdir d; chown 9:10 d; {statvariants} f dev d")
    per_file = {}
    for line in out.splitlines():
        name, variant, *values = line.split()
        per_file.setdefault(name, {})[variant] = " ".join(values)
    assert set(per_file) == {"f", "dev", "d"}, out
    for name, want in (("f", "uid=1234 gid=5678 mode=104711 rdev=0,0"),
                       ("dev", "uid=5 gid=6 mode=60640 rdev=8,1"),
                       ("d", "uid=9 gid=10 mode=40755 rdev=0,0")):
        variants = per_file[name]
        assert len(variants) == 14, variants
        assert set(variants.values()) == {want}, variants


STAT_FIELDS = "%n %d %i %h %f %u %g %t %T %s %b %B %Y %Z %W"
PY_STATS = r"""
import os
def show(tag, st, times=True):
    print(tag, st.st_dev, st.st_ino, oct(st.st_mode), st.st_nlink, st.st_uid, st.st_gid, st.st_rdev,
          *((st.st_size, st.st_blksize, st.st_blocks, st.st_mtime_ns, st.st_ctime_ns) if times else ()))
for name in ("plain", "owned", "dir", "link", "dangling", "fifo", "dev", "."):
    try:
        show("stat " + name, os.stat(name))
    except OSError as exc:
        print("stat", name, exc.errno)
    show("lstat " + name, os.lstat(name))
for name in ("/proc/self/exe", "/dev/null", "/etc/hostname", "/proc/version"):
    show("stat " + name, os.stat(name), times=False)
d = os.open("dir", os.O_RDONLY)
show("fstat dir", os.fstat(d))
show("at owned", os.stat("../owned", dir_fd=d))
show("at link nofollow", os.stat("../link", dir_fd=d, follow_symlinks=False))
p = os.open("link", os.O_PATH | os.O_NOFOLLOW)
show("fstat O_PATH symlink", os.fstat(p))
r, w = os.pipe()
st = os.fstat(r)
print("fstat pipe", oct(st.st_mode), st.st_uid, st.st_gid)
try:
    os.stat("missing")
except OSError as exc:
    print("missing", exc.errno)
"""


def test_stats_answered_in_c_match_the_module(runner):
    """The C core answers the stat calls of files without a record itself
    (Claims.stat_owner).  With that turned off (UMVIEW_DISPATCH=trio sends
    every call to Python) the module answers all of them: real programs
    (coreutils stat: statx; python: newfstatat, fstat) must get the same
    answers, field for field, and the C core must have answered most."""
    runner.sh("mkdir db logs t")
    db = runner.workdir / "db" / "own.db"
    runner.fakeroot("cd t; echo data > plain; touch owned; chown 1234:5678 owned; chmod 4750 owned; "
                    "mkdir dir; ln -s plain link; ln -s nowhere dangling; mkfifo fifo; "
                    "mknod dev c 1 3", "-p", f"fakeroot,db={db}")
    script = (f"cd t; stat -c '{STAT_FIELDS}' plain owned dir link dangling fifo dev . missing 2>&1; "
              f"stat -L -c '{STAT_FIELDS}' link owned; ls -ln --time-style=+%s .; "
              f"python3 -c '{PY_STATS}'")
    outs, counts = [], []
    # answered in the program by the stat shim (what it can), by the
    # seccomp listener, at ptrace stops, by the module
    for env in ({}, {"UMVIEW_SHIM": "0"}, {"UMVIEW_SHIM": "0", "UMVIEW_NOTIF": "0"},
                {"UMVIEW_DISPATCH": "trio"}):
        log = runner.workdir / "logs" / "core.log"
        res = runner.view(["sh", "-c", script], "-vv", "--log", str(log), "-p", f"fakeroot,db={db}",
                          env=env)
        assert res.returncode == 0, res.stderr.decode()
        outs.append(res.stdout.decode())
        text = log.read_text()
        counts.append([int(re.search(rf"'{k}': (\d+)", text).group(1)) for k in ("notif_stats", "fast_stats")])
        log.unlink()   # (--log appends)
    assert outs[0] == outs[1] == outs[2] == outs[3]
    assert " 1234 5678 " in outs[0] and "missing 2" in outs[0] and "lstat dangling" in outs[0]
    assert "rwsr-x---" in outs[0] and "fstat pipe 0o10600 0 0" in outs[0], outs[0]
    # the shim leaves the core the stats of ld.so, which runs before it is
    # loaded, and of the file with a record
    shim, listener, ptrace, module = counts
    assert listener[0] >= shim[0] + 30 and ptrace[0] == 0 and ptrace[1] >= 30 and module == [0, 0], counts


SHIM_EDGES = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(512)
AT_FDCWD, AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW = -100, 0x1000, 0x100
def call(tag, fn, *args):
    ctypes.set_errno(0)
    rc = fn(*args)
    e = ctypes.get_errno()
    print(tag, rc, os.strerror(e) if rc else "ok")
d = os.open("d", os.O_RDONLY)
for name, fn, args in (
        ("stat ok", libc.stat, (b"f", buf)),
        ("stat NULL path", libc.stat, (None, buf)),
        ("stat bad path", libc.stat, (ctypes.c_void_p(16), buf)),
        ("stat bad buf", libc.stat, (b"f", ctypes.c_void_p(16))),
        ("stat missing", libc.stat, (b"nope", buf)),
        ("stat enotdir", libc.stat, (b"f/x", buf)),
        ("lstat dangling", libc.lstat, (b"dl", buf)),
        ("stat dangling", libc.stat, (b"dl", buf)),
        ("fstat bad fd", libc.fstat, (99, buf)),
        ("fstat negative", libc.fstat, (-100, buf)),
        ("fstat bad buf", libc.fstat, (d, ctypes.c_void_p(16))),
        ("fstatat empty", libc.fstatat, (d, b"", buf, AT_EMPTY_PATH)),
        ("fstatat empty no flag", libc.fstatat, (d, b"", buf, 0)),
        ("fstatat cwd empty", libc.fstatat, (AT_FDCWD, b"", buf, AT_EMPTY_PATH)),
        ("fstatat rel", libc.fstatat, (d, b"g", buf, 0)),
        ("fstatat nofollow", libc.fstatat, (AT_FDCWD, b"l", buf, AT_SYMLINK_NOFOLLOW)),
        ("fstatat bad flags", libc.fstatat, (d, b"g", buf, 0x40000)),
        ("statx ok", libc.statx, (d, b"g", 0, 0xfff, buf)),
        ("statx bad mask", libc.statx, (d, b"g", 0, 0x80000000, buf)),
        ("statx bad buf", libc.statx, (d, b"g", 0, 0xfff, ctypes.c_void_p(16))),
        ("statx bad fd", libc.statx, (77, b"g", 0, 0xfff, buf)),
        ("__xstat version", libc.__xstat, (3, b"f", buf)) if hasattr(libc, "__xstat") else ("-", None, ())):
    if fn is not None:
        call(name, fn, *args)
"""


def test_shim_errors_match_native(me):
    """The stat shim (native/umvshim.c) makes each call before touching the
    caller's memory: bad pointers, fds and flags give the kernel's errors,
    as they do natively, never a crash."""
    me.sh("echo hi > f; mkdir d; echo g > d/g; ln -s f l; ln -s missing dl")
    native = me.run([sys.executable, "-c", SHIM_EDGES], check=True).stdout.decode()
    view = me.view([sys.executable, "-c", SHIM_EDGES], "-p", "fakeroot")
    assert view.returncode == 0, view.stderr.decode()
    assert view.stdout.decode() == native
    assert "stat bad path -1 Bad address" in native and "fstat bad fd -1 Bad file descriptor" in native
    assert "fstatat cwd empty 0 ok" in native and "stat enotdir -1 Not a directory" in native


GADGET_CALL = r"""
import ctypes, os, sys
GADGET = 0x75ee000000
gadget = ctypes.CFUNCTYPE(ctypes.c_long, *[ctypes.c_long] * 6)(GADGET)
st = ctypes.create_string_buffer(256)
here = os.getcwd().encode()
# the stat family through the gadget: let through by the filter
print("stat", gadget(4, ctypes.cast(ctypes.c_char_p(b"f"), ctypes.c_void_p).value, ctypes.addressof(st), 0, 0, 0))
# anything else through the gadget: trapped as from anywhere else (chown: 92)
print("chown", gadget(92, ctypes.cast(ctypes.c_char_p(b"f"), ctypes.c_void_p).value, 4321, 8765, 0, 0))
"""


def test_gadget_lets_only_stat_calls_through(runner):
    """The shim's gadget is at a fixed address, and the view's filters let
    the stat family through from there.  Any other call made there must be
    trapped as usual: a chown through it is the fake root's, recorded and
    shown, and the file on disk keeps its owner."""
    runner.sh("touch f")
    before = os.stat(runner.workdir / "f")
    out = runner.fakeroot(f"{sys.executable} -c '{GADGET_CALL}'; ls -n f")
    assert "stat 0" in out and "chown 0" in out and " 4321 8765 " in out, out
    after = os.stat(runner.workdir / "f")
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)


def test_gadget_address_is_the_filters(tmp_path):
    """The filters' idea of where the gadget's calls return equals the C
    headers'."""
    from umview_py._core import seccomp
    from umview_py._native import lib
    assert seccomp.GADGET_IP == lib.UMV_GADGET_IP == lib.UMV_GADGET_ADDR + 20


def test_edge_cases_match_native(me, statvariants):
    """Errors and every field but the owner, natively and in the view, on
    the same files: the handlers step aside whenever the kernel would fail."""
    # in a directory of its own: its ".." must not change between the runs
    here = me.workdir / "base" / "run"
    here.mkdir(parents=True)
    me.sh("echo hi > f; mkdir d; echo g > d/g; ln -s f l; ln -s missing dl", cwd=here)
    native = me.run([statvariants, "--edge"], check=True, cwd=here).stdout.decode()
    view = me.view([statvariants, "--edge"], "-p", "fakeroot", cwd=here)
    assert view.returncode == 0, view.stderr.decode()
    assert view.stdout.decode() == native
    assert "EFAULT" in native and "EBADF" in native and "ENOTDIR" in native


def test_credentials(runner, statvariants):
    out = runner.view([statvariants, "--ids"], "-p", "fakeroot")
    assert out.returncode == 0, out.stderr.decode()
    lines = out.stdout.decode().splitlines()
    root = "uid=0 euid=0 gid=0 egid=0 res=0,0,0 resg=0,0,0 groups=0 capget=0 eff=1"
    changed = ("uid=1000 euid=2000 gid=100 egid=200 res=1000,2000,3000 resg=100,200,300 "
               "groups=10,20,30 capget=0 eff=000000000 perm=000000000")
    assert lines[0].startswith("start: " + root), lines
    assert lines[1:6] == ["setgroups: 0", "getgroups(0): 3", "getgroups(1): -22", "setresgid: 0",
                          "setresuid: 0"], lines
    assert lines[6] == "after setres: " + changed
    assert lines[7].startswith("child forked before: " + root), lines
    assert lines[8] == "child forked after: " + changed
    assert lines[9:] == [
        "setuid(0) unprivileged: -1", "seteuid(1000) via setreuid: 0", "setfsuid(3000) returns 1000",
        "setfsuid(-1) returns 3000", "setgroups unprivileged: -1",
        "end: uid=1000 euid=1000 gid=100 egid=200 res=1000,1000,3000 resg=100,200,300 "
        "groups=10,20,30 capget=0 eff=000000000 perm=000000000"], lines


# ----------------------------------------------------------------------
# persistence

def rows(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT ino, uid, gid, kind, perm, rdev_major, rdev_minor FROM files").fetchall()


def test_persistence_across_runs_and_renames(runner):
    db = runner.workdir / "state.db"
    runner.fakeroot("touch f g; mkdir d; chown 1234:5678 f; chown 1:2 d; chmod 0 g; mknod dev c 4 5",
                    "--fakeroot-db", str(db))
    # outside the view, between runs: a rename, and a move into another directory
    runner.sh("mv f f2; mkdir sub; mv d sub/d")
    out = runner.fakeroot("stat -c '%n %u %g %A %t,%T' f2 sub/d g dev", "--fakeroot-db", str(db))
    assert out.splitlines() == ["f2 1234 5678 -rw-r--r-- 0,0", "sub/d 1 2 drwxr-xr-x 0,0",
                                "g 0 0 ---------- 0,0", "dev 0 0 crw-r--r-- 4,5"], out
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _reuse_inode(workdir: Path, victim: str, limit=2000):
    """Delete victim and create files until one gets its inode; returns that
    file's name (or None).  Runs in this process: "outside" every view."""
    ino = os.lstat(workdir / victim).st_ino
    os.unlink(workdir / victim)
    for i in range(limit):
        name = f"new{i}"
        with open(workdir / name, "w"):
            pass
        if os.lstat(workdir / name).st_ino == ino:
            return name
    return None


def test_inode_reuse_outside_between_runs(me):
    db = me.workdir / "state.db"
    me.fakeroot("touch victim keep; chown 1234:5678 victim keep", "--fakeroot-db", str(db))
    assert len(rows(db)) == 2
    reused = _reuse_inode(me.workdir, "victim")
    if reused is None:
        pytest.skip("the file system did not reuse the inode within the bound")
    out = me.fakeroot(f"stat -c '%n %u %g' {reused} keep", "--fakeroot-db", str(db))
    assert out.splitlines() == [f"{reused} 0 0", "keep 1234 5678"], out
    assert [r[1:3] for r in rows(db)] == [(1234, 5678)]   # the stale record is gone


def test_stale_record_dropped_at_load(me):
    """The inode of a recorded path now belongs to another file at that very
    path: the record is dropped when the database is loaded, unused."""
    db = me.workdir / "state.db"
    me.fakeroot("touch victim; chown 1234:5678 victim", "--fakeroot-db", str(db))
    reused = _reuse_inode(me.workdir, "victim")
    if reused is None:
        pytest.skip("the file system did not reuse the inode within the bound")
    os.rename(me.workdir / reused, me.workdir / "victim")
    me.fakeroot("true", "--fakeroot-db", str(db))
    assert rows(db) == []
    assert me.fakeroot("stat -c '%u %g' victim", "--fakeroot-db", str(db)) == "0 0\n"


def test_inode_reuse_inside_one_view(runner):
    """chown, rm and create in a hurry, as `rm f; tar x` does: the new file
    gets the old inode, often with the same birth time (the kernel's coarse
    clock), and must still not inherit the owner."""
    script = (
        "python3 - <<'EOF'\n"
        "import os\n"
        "reused = inherited = 0\n"
        "for attempt in range(50):\n"
        "    open('victim', 'w').close()\n"
        "    os.chown('victim', 1234, 5678)\n"
        "    ino = os.stat('victim').st_ino\n"
        "    os.unlink('victim')\n"
        "    for i in range(50):\n"
        "        name = f'n{attempt}.{i}'\n"
        "        open(name, 'w').close()\n"
        "        s = os.stat(name)\n"
        "        if s.st_ino == ino:\n"
        "            reused += 1\n"
        "            inherited += (s.st_uid, s.st_gid) != (0, 0)\n"
        "            break\n"
        "print(reused, inherited)\n"
        "EOF\n"
        "touch same; chown 1:1 same; rm same; touch same; stat -c 'same %u %g' same\n")
    out = runner.fakeroot(script).splitlines()
    reused, inherited = map(int, out[0].split())
    if reused == 0:
        pytest.skip("the file system did not reuse inodes")
    assert inherited == 0, out
    assert out[1] == "same 0 0", out


def test_concurrent_views_share_a_database(me):
    db = me.workdir / "state.db"
    me.sh("mkdir a b; for i in $(seq 100); do touch a/$i b/$i; done")
    procs = [subprocess.Popen([sys.executable, "-m", "umview_py", "--fakeroot-db", str(db), "--",
                               "sh", "-c", f"for i in $(seq 100); do chown {uid}:{uid} {d}/$i; done"],
                              cwd=me.workdir, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
             for d, uid in (("a", 11), ("b", 22))]
    for p in procs:
        _, err = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 0, err.decode()
        assert b"lost" not in err, err.decode()
    out = me.fakeroot("stat -c %u a/* | sort | uniq -c; stat -c %u b/* | sort | uniq -c",
                      "--fakeroot-db", str(db))
    assert [line.split() for line in out.splitlines()] == [["100", "11"], ["100", "22"]], out


def test_database_survives_sigkill(me):
    db = me.workdir / "state.db"
    me.sh("for i in $(seq 3000); do echo > f$i; done")
    p = subprocess.Popen([sys.executable, "-m", "umview_py", "--fakeroot-db", str(db), "--", "sh", "-c",
                          "i=1; while :; do chown $((i % 5000 + 1)) f$((i % 3000 + 1)); echo $i; "
                          "i=$((i+1)); done"],
                         cwd=me.workdir, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    for _ in range(300):                 # 300 chowns done: kill the hypervisor mid-stream
        assert p.stdout.readline(), p.stderr.read().decode()
    os.kill(p.pid, signal.SIGKILL)       # its tracees die with it (PTRACE_O_EXITKILL)
    p.wait(timeout=30)
    p.stdout.close()
    p.stderr.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    saved = {ino: uid for ino, uid, *_ in rows(db)}
    assert len(saved) > 100
    out = me.fakeroot("stat -c '%i %u' f*", "--fakeroot-db", str(db))
    seen = dict(map(int, line.split()) for line in out.splitlines())
    for ino, uid in saved.items():
        assert seen[ino] == uid


# ----------------------------------------------------------------------
# fakeroot's state files: --fakeroot-load / --fakeroot-save, both ways

HAVE_FAKEROOT = shutil.which("fakeroot") is not None
needs_fakeroot = pytest.mark.skipif(not HAVE_FAKEROOT, reason="fakeroot is not installed")


def state_lines(path):
    return sorted(line for line in Path(path).read_text().splitlines() if line)


@needs_fakeroot
def test_state_saved_by_fakeroot_loads_in_umview(runner):
    runner.run(["fakeroot", "-s", "f.state", "--", "sh", "-c",
                "umask 022; touch a p; chown 12:34 a; chmod 4755 a; mknod d c 1 3; mkdir dd; "
                "chown 5:6 dd; ln -s a l; chown -h 7:8 l; chmod 0 p; mknod blk b 8 1; chown 9:10 blk"],
               check=True)
    assert len(state_lines(runner.workdir / "f.state")) == 6
    # without the state, nothing of it is known
    plain = runner.fakeroot("stat -c '%n %u %g %A' a dd", "-0").splitlines()
    assert plain == ["a 0 0 -rwsr-xr-x", "dd 0 0 drwxr-xr-x"], plain
    out = runner.fakeroot("ls -lnd a d dd l p blk", "-0", "--fakeroot-load", "f.state").splitlines()
    got = {fields(line)[-1] if not line.startswith("l") else fields(line)[-3]: fields(line)
           for line in out}
    assert got["a"][0] == "-rwsr-xr-x" and got["a"][2:4] == ["12", "34"], out
    assert got["d"][0] == "crw-r--r--" and got["d"][2:6] == ["0", "0", "1,", "3"], out
    assert got["blk"][0] == "brw-r--r--" and got["blk"][2:6] == ["9", "10", "8,", "1"], out
    assert got["dd"][0] == "drwxr-xr-x" and got["dd"][2:4] == ["5", "6"], out
    assert got["l"][0] == "lrwxrwxrwx" and got["l"][2:4] == ["7", "8"], out
    assert got["p"][0] == "----------" and got["p"][2:4] == ["0", "0"], out
    # tar in the view archives what fakeroot had recorded
    out = runner.fakeroot("tar cf t.tar a d dd && tar --numeric-owner -tvf t.tar", "-0",
                          "--fakeroot-load", "f.state")
    rows = {fields(line)[-1]: fields(line)[:3] for line in out.splitlines()}
    assert rows["a"][:2] == ["-rwsr-xr-x", "12/34"], out
    assert rows["d"] == ["crw-r--r--", "0/0", "1,3"], out
    assert rows["dd/"][:2] == ["drwxr-xr-x", "5/6"], out


@needs_fakeroot
def test_state_saved_by_umview_loads_in_fakeroot(runner):
    runner.fakeroot("touch b; chown 21:43 b; chmod 2755 b; mknod e b 8 1; mkdir d; chown 3:4 d; "
                    "chmod 750 d; ln -s b l; chown -h 9:9 l; touch plain",
                    "-0", "--fakeroot-save", "u.state")
    lines = state_lines(runner.workdir / "u.state")
    assert len(lines) == 4, lines      # b, e, d, l: plain was never chowned
    st = os.lstat(runner.workdir / "b")
    assert f"dev={st.st_dev:x},ino={st.st_ino},mode=102755,uid=21,gid=43,nlink=1,rdev=0" in lines, lines
    out = runner.run(["fakeroot", "-i", "u.state", "--", "ls", "-lnd", "b", "e", "d", "l"],
                     check=True).stdout.decode().splitlines()
    got = {fields(line)[-1] if not line.startswith("l") else fields(line)[-3]: fields(line)
           for line in out}
    assert got["b"][0] == "-rwxr-sr-x" and got["b"][2:4] == ["21", "43"], out
    assert got["e"][0] == "brw-r--r--" and got["e"][2:6] == ["0", "0", "8,", "1"], out
    assert got["d"][0] == "drwxr-x---" and got["d"][2:4] == ["3", "4"], out
    assert got["l"][2:4] == ["9", "9"], out
    # fakeroot reads every line and writes back exactly what we wrote
    runner.run(["fakeroot", "-i", "u.state", "-s", "v.state", "--", "true"], check=True)
    assert state_lines(runner.workdir / "v.state") == lines


@needs_fakeroot
def test_state_round_trip_through_both(runner):
    """fakeroot -> umview (load, change, save) -> fakeroot: the state of
    both runs arrives; an umview run in another directory passes entries
    it cannot find through unchanged."""
    runner.run(["fakeroot", "-s", "s1", "--", "sh", "-c", "touch a b; chown 1:2 a; chown 3:4 b"],
               check=True)
    runner.fakeroot("chown 5:6 b; touch c; chown 7:8 c; mv a a2", "-0",
                    "--fakeroot-load", "s1", "--fakeroot-save", "s2")
    out = runner.run(["fakeroot", "-i", "s2", "--", "stat", "-c", "%n %u %g", "a2", "b", "c"],
                     check=True).stdout.decode()
    assert out.splitlines() == ["a2 1 2", "b 5 6", "c 7 8"], out
    # elsewhere (nothing of s2 under the search directory): kept as it was
    other = runner.workdir / "other"
    runner.sh(f"mkdir {other}")
    runner.fakeroot("touch x; chown 9:9 x", "-0", "--fakeroot-load", str(runner.workdir / "s2"),
                    "--fakeroot-save", str(runner.workdir / "s3"), cwd=other)
    s2, s3 = state_lines(runner.workdir / "s2"), state_lines(runner.workdir / "s3")
    assert len(s3) == len(s2) + 1 and set(s2) < set(s3), (s2, s3)
    # --fakeroot-search finds them from anywhere
    out = runner.fakeroot("stat -c '%n %u %g' a2 c", "-0", "--fakeroot-load", str(runner.workdir / "s2"),
                          "--fakeroot-search", str(runner.workdir))
    assert out.splitlines() == ["a2 1 2", "c 7 8"], out


def test_state_of_a_reused_inode_is_not_applied(me):
    """A fakeroot entry about a directory whose inode now holds a regular
    file is stale: dropped, not applied."""
    me.sh("mkdir gone")
    st = os.lstat(me.workdir / "gone")
    (me.workdir / "s").write_text(
        f"dev={st.st_dev:x},ino={st.st_ino},mode=40700,uid=5,gid=5,nlink=2,rdev=0\n")
    os.rmdir(me.workdir / "gone")
    reused = None
    for i in range(2000):
        p = me.workdir / f"n{i}"
        p.touch()
        if os.lstat(p).st_ino == st.st_ino:
            reused = p.name
            break
    if reused is None:
        pytest.skip("the file system did not reuse the inode within the bound")
    out = me.fakeroot(f"stat -c '%u %g %F' {reused}", "-0", "--fakeroot-load", "s")
    assert out == "0 0 regular empty file\n", out


def test_bad_state_files_are_refused_before_running(me):
    (me.workdir / "bad").write_text("dev=fe00,ino=1,mode=100644\n")
    for opts, msg in ((["--fakeroot-load", "bad"], "not a line of fakeroot's state format"),
                      (["--fakeroot-load", "missing"], "cannot read fakeroot state"),
                      (["--fakeroot-save", "/nonexistent/dir/s"], "cannot write fakeroot state")):
        res = me.view(["sh", "-c", "echo ran"], *opts)
        assert res.returncode == 2 and res.stdout == b"", res
        assert msg in res.stderr.decode(), res.stderr.decode()


# ----------------------------------------------------------------------
# security.* and trusted.* extended attributes

XATTR_SCRIPT = r"""
import errno, os
open('f', 'w').close()
os.symlink('f', 'l')
def err(fn, *a, **kw):
    try:
        fn(*a, **kw)
    except OSError as exc:
        return errno.errorcode[exc.errno]
    return 'ok'
os.setxattr('f', 'security.test', b'v1')
os.setxattr('f', 'trusted.t', b'\x00\x01')
os.setxattr('f', 'user.u', b'disk')
print(os.getxattr('f', 'security.test'), os.getxattr('f', 'trusted.t'))
print(sorted(os.listxattr('f')))
print(err(os.setxattr, 'f', 'security.test', b'x', os.XATTR_CREATE),
      err(os.setxattr, 'f', 'security.new', b'x', os.XATTR_REPLACE),
      err(os.setxattr, 'f', 'security.test', b'v2', os.XATTR_REPLACE))
os.setxattr('l', 'security.link', b'L', follow_symlinks=False)
print(sorted(os.listxattr('l', follow_symlinks=False)), sorted(os.listxattr('l')))
fd = os.open('f', os.O_RDONLY)
print(os.getxattr(fd, 'security.test'), len(os.listxattr(fd)))
os.removexattr(fd, 'trusted.t')
print(err(os.getxattr, 'f', 'trusted.t'), err(os.removexattr, 'f', 'trusted.t'),
      err(os.getxattr, 'f', 'security.nothing'), err(os.setxattr, 'f', 'security.capability', b'bad'))
print(err(os.getxattr, 'missing', 'security.test'))
"""


def test_security_and_trusted_xattrs(runner):
    out = runner.fakeroot("python3 - <<'EOF'\n" + XATTR_SCRIPT + "EOF\n", "-0").splitlines()
    assert out == [
        "b'v1' b'\\x00\\x01'",
        "['security.test', 'trusted.t', 'user.u']",
        "EEXIST ENODATA ok",
        "['security.link'] ['security.test', 'trusted.t', 'user.u']",
        "b'v2' 3",
        "ENODATA ENODATA ENODATA EINVAL",
        "ENOENT"], out
    # nothing of it reached the disk but the user.* attribute
    assert os.listxattr(runner.workdir / "f") == ["user.u"]
    assert os.listxattr(runner.workdir / "l", follow_symlinks=False) == []


def test_xattrs_need_emulated_root(runner):
    if runner.uid != 0:   # the real user may not set them: that is what is emulated
        res = runner.run(["python3", "-c", "import os; open('f','w').close(); "
                          "os.setxattr('f', 'security.x', b'1')"])
        assert b"PermissionError" in res.stderr, res.stderr
    out = runner.fakeroot(
        "touch f; python3 -c 'import os; os.setxattr(\"f\", \"trusted.t\", b\"1\"); "
        "os.setresuid(1000, 1000, 1000)\n"
        "for call in (lambda: os.setxattr(\"f\", \"security.x\", b\"1\"), "
        "lambda: os.getxattr(\"f\", \"trusted.t\")):\n"
        " try: call(); print(\"ok\")\n"
        " except OSError as e: print(e.strerror)\n"
        "print(os.listxattr(\"f\"))'", "-0")
    assert out.splitlines() == ["Operation not permitted", "No data available", "[]"], out


@pytest.mark.skipif(not shutil.which("setcap"), reason="setcap is not installed (libcap2-bin)")
def test_setcap_getcap_cp_tar_and_persistence(runner):
    db = ["-0", "--fakeroot-db", str(runner.workdir / "state.db")]
    out = runner.fakeroot(
        "cp /bin/true t; setcap cap_net_raw,cap_net_admin+ep t; getcap t; cp -a t t2; getcap t2; "
        "cp t t3; getcap t3; tar --xattrs --xattrs-include='*' -cf x.tar t; mkdir o; "
        "tar --xattrs --xattrs-include='*' -xf x.tar -C o; getcap o/t; cp /bin/true c; "
        "setcap cap_chown+ep c; chown 1 c; getcap c; echo end", *db)
    assert out.splitlines() == ["t cap_net_admin,cap_net_raw=ep", "t2 cap_net_admin,cap_net_raw=ep",
                                "o/t cap_net_admin,cap_net_raw=ep", "end"], out
    assert os.listxattr(runner.workdir / "t") == []      # not on disk
    out = runner.fakeroot("getcap t t2 o/t; setcap -r t2; getcap t2; echo end", *db)
    assert out.splitlines() == ["t cap_net_admin,cap_net_raw=ep", "t2 cap_net_admin,cap_net_raw=ep",
                                "o/t cap_net_admin,cap_net_raw=ep", "end"], out
    with sqlite3.connect(runner.workdir / "state.db") as conn:
        kept = [x for (x,) in conn.execute("SELECT xattrs FROM files WHERE xattrs IS NOT NULL")]
    assert len(kept) == 2 and all("security.capability" in x for x in kept), kept


# ----------------------------------------------------------------------
# set-user-ID and set-group-ID files

def test_setuid_and_setgid_files(runner):
    out = runner.fakeroot(
        "install -o 1234 -m 4755 /usr/bin/id ./myid; ./myid -u; ./myid -ru; "
        "install -g 77 -m 2755 /usr/bin/id ./myidg; ./myidg -g; ./myidg -rg; "
        "install -g 77 -m 2745 /usr/bin/id ./nogx; ./nogx -g; id -u; "
        "install -o 1234 -m 4755 /bin/sh ./mysh; ./mysh -p -c 'id -u; id -ru; ./myidg -G'; "
        "chmod u-s mysh; ./mysh -p -c 'id -u'", "-0")
    assert out.splitlines() == ["1234", "0", "77", "0", "0", "0", "1234", "0", "0 77", "0"], out
    # the disk knows nothing of 1234
    assert os.lstat(runner.workdir / "myid").st_uid == runner.uid


def test_setuid_static_binary_and_saved_ids(runner, statvariants):
    out = runner.fakeroot(
        f"install -o 4321 -m 4755 {statvariants} ./sv; ./sv --ids | head -1; "
        "python3 -c 'import os; os.setresuid(0, 1000, 0); "
        "os.execvp(\"python3\", [\"python3\", \"-c\", \"import os; print(os.getresuid())\"])'", "-0")
    lines = out.splitlines()
    assert lines[0].startswith("start: uid=0 euid=4321 gid=0 egid=0 res=0,4321,4321 "), lines
    assert lines[1] == "(0, 1000, 1000)", lines   # exec copies the euid to the saved uid


MISSING_EXECS = r"""
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    env nope-umv-$i 2>/dev/null; echo "$?"
done
./missing 2>/dev/null; echo "$?"
mkdir -p sub; sub/nope 2>/dev/null; echo "$?"
/etc/passwd/x 2>/dev/null; echo "$?"
install -o 4321 -m 4755 /usr/bin/id ./found; PATH="/nope-umv:$PWD:$PATH" found -u
"""


def test_execs_of_missing_files_stay_in_c(runner):
    """An exec of a file that is not there (execvp, here env's, trying each
    $PATH directory) changes no ids: the C core fails it as the kernel does
    without asking the module (Claims.exec_found).  The same exit codes as
    natively; the set-user-ID file found after misses still sets the euid."""
    native = runner.sh(MISSING_EXECS.replace("install -o 4321", "install"))
    log = runner.workdir / "umview.log"   # where the runner's user may write
    out = runner.fakeroot(MISSING_EXECS, "-0", "-vv", "--log", str(log))
    assert out.splitlines()[:-1] == native.splitlines()[:-1]
    assert out.splitlines()[-1] == "4321" and native.splitlines()[0] == "127", (out, native)
    st = core_stats(log)
    # env's misses: 20 x the $PATH directories; the execs that ran reached Python
    assert st["to_python"] < 60, st   # 278 without the fast path


PLAIN_EXECS = r"""
for i in $(seq 30); do /bin/true; done
cp /usr/bin/id ./plain; ./plain -u; chmod 4755 ./plain; ./plain -u
install -o 4321 -m 4755 /usr/bin/id ./found; ./found -u
"""


def test_execs_of_files_not_set_id_stay_in_c(runner):
    """An exec of a file that is not set-user-ID nor set-group-ID, with no
    record, changes no ids while every process has the same ones: the C
    core lets it run without asking the module (Claims.exec_setid).  A
    file made set-user-ID in the view (a record) still sets the euid, and
    so does one whose owner is faked."""
    log = runner.workdir / "umview.log"
    out = runner.fakeroot(PLAIN_EXECS, "-0", "-vv", "--log", str(log))
    assert out.splitlines() == ["0", "0", "4321"], out
    st = core_stats(log)
    assert st["to_python"] < 20, st   # each of the 30 execs reached Python without the check


FORK_FIRST_C = r"""
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {   /* forks before any identity call of its own */
    pid_t p = fork();
    if (p == 0) { printf("child euid=%ld\n", syscall(SYS_geteuid)); return 0; }
    waitpid(p, 0, 0);
    printf("parent euid=%ld\n", syscall(SYS_geteuid));
    return 0;
}
"""


def test_setuid_child_forked_by_the_new_image(runner):
    """The child forked by a set-user-ID program before anything asked for
    ids gets the new ids; a child forked before the exec keeps the old."""
    src = runner.workdir / "forkfirst.c"
    src.write_text(FORK_FIRST_C)
    subprocess.run(["gcc", "-static", "-O1", "-o", str(runner.workdir / "forkfirst"), str(src)],
                   check=True, capture_output=True)
    (runner.workdir / "forkfirst").chmod(0o755)
    out = runner.fakeroot("install -o 1234 -m 4755 forkfirst ff; ./ff | cat; "
                          "install -o 1234 -m 4755 /bin/sh mysh; mkfifo p q; "
                          "sh -c '(read x < p; id -u; echo done > q) & "
                          "exec ./mysh -p -c \"echo go > p; read y < q\"'", "-0")
    assert out.splitlines() == ["child euid=1234", "parent euid=1234", "0"], out


def test_set_id_bits_that_do_not_apply(runner):
    """A script's set-id bits are ignored (as by Linux); an exec that fails
    changes nothing (the shell then runs the file itself)."""
    out = runner.fakeroot(
        "printf '#!/bin/sh\\nid -u\\n' > s; install -o 1234 -m 4755 s s2; ./s2; "
        "printf 'id -u\\n' > n; install -o 1234 -m 4755 n n2; ./n2; id -u", "-0")
    assert out.splitlines() == ["0", "0", "0"], out
