"""Path calls outside every mount, answered inside the program.

Under the vfs, a view's programs get the shim (native/umvshim.c): open, the
stat family, access, readlink and the xattr reads whose paths lead nowhere
near a mount are judged in the program and run there, as the C core would
have resumed them (docs/vfs.md, "Calls outside every mount").  These tests
check that it answers as the kernel does, that it does answer (the core's
statistics), and every way a path outside can still lead into a mount: a
symlink, a directory swapped for a symlink after the shim has seen it, "..".
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import core_stats, run_native, run_view
from test_vfs_programs import TOP, no_top, same, sh

PY = sys.executable

WORK = r"""
set -e
cd "$BASE/out"
tar cf ../t.tar .
tar tvf ../t.tar | sort
ls -lnR .
find . -printf '%p %y %s %l\n' | sort
cp -a d ../copy && ls -ln ../copy
stat -L -c '%n %s %F' l d/f
readlink l
test -r d/f && echo readable
"$PY" - <<'EOF'
import os
for top, dirs, files in sorted(os.walk(".")):
    for n in sorted(dirs + files):
        p = os.path.join(top, n)
        st = os.lstat(p)
        print(p, oct(st.st_mode), st.st_size, os.access(p, os.R_OK), sorted(os.listxattr(p, follow_symlinks=False)))
print(os.getxattr("d/f", "user.k"), os.readlink("l"), open("l").read())
fd = os.open("d", os.O_RDONLY)
print(os.stat("f", dir_fd=fd).st_size, os.readlink("../l", dir_fd=fd))
os.close(fd)
with open("d/new", "w") as f:
    f.write("created\n")
print(open("d/new").read(), os.path.exists("nope/x"), os.path.exists("d/./f"), os.path.exists("d/../d/f"))
EOF
"""


def make_tree(base):
    out = base / "out"
    (out / "d" / "e").mkdir(parents=True)
    (out / "d" / "f").write_text("file f\n")
    os.setxattr(out / "d" / "f", "user.k", b"v")
    (out / "d" / "e" / "g").write_text("g" * 3000)
    for i in range(300):   # enough that the programs' own start-up calls are few beside
        (out / "d" / "e" / f"n{i:03}").write_text(str(i))
    (out / "l").symlink_to("d/f")
    (out / "dangling").symlink_to("missing")
    (base / "src").mkdir()


def test_work_outside_every_mount_matches_native_and_stays_in_the_program(tmp_path):
    """tar, ls -lR, find, cp -a, stat, readlink and python's os calls on a
    tree outside the view's mounts: the same output as natively; and the
    shim answers nearly all of their path calls (with it turned off, the
    core's listener sees them all)."""
    make_tree(tmp_path)
    env = {"PY": PY}

    def reset():   # what WORK made
        shutil.rmtree(tmp_path / "copy")
        (tmp_path / "out" / "d" / "new").unlink()

    native = sh(WORK, base=tmp_path, env=env)
    reset()
    counts = []
    for shim in ("1", "0"):
        log = tmp_path / f"log{shim}"
        view = sh(WORK, "-b", f"{tmp_path}/src:{TOP}/m", "-vv", "--log", str(log), base=tmp_path,
                  env={**env, "UMVIEW_SHIM": shim})
        same(native, view)
        reset()
        counts.append(core_stats(log)["notif_calls"])
    with_shim, without = counts
    assert with_shim * 4 < without, counts


LEADS_IN = r"""
import errno, os, sys
out, top = sys.argv[1], sys.argv[2]
def show(tag, fn):
    try:
        print(tag, fn())
    except OSError as e:
        print(tag, errno.errorcode[e.errno])
os.chdir(out)
show("stat link", lambda: os.stat("link").st_size)
show("lstat link", lambda: os.lstat("link").st_size == len(f"{top}/m/file"))
show("open link", lambda: open("link").read().strip())
show("access link", lambda: os.access("link", os.R_OK))
show("getxattr link", lambda: os.getxattr("link", "user.k"))
show("listxattr link", lambda: os.listxattr("link"))
show("stat dlink/file", lambda: os.stat("dlink/file").st_size)
show("open dlink/file", lambda: open(f"{out}/dlink/file").read().strip())
show("readlink dlink/sl", lambda: os.readlink("dlink/sl"))
show("getxattr dlink/file", lambda: os.getxattr("dlink/file", "user.k"))
show("stat rel", lambda: os.stat("rel/file").st_size)
show("stat dotdot", lambda: os.stat("sub/../dlink/file").st_size)
fd = os.open("dlink", os.O_RDONLY)
show("fstatat in dlink", lambda: os.stat("file", dir_fd=fd).st_size)
show("open in dlink", lambda: os.read(os.open("file", os.O_RDONLY, dir_fd=fd), 100))
os.close(fd)
# a directory the shim has seen, removed and put back as a symlink
os.mkdir("d")
show("stat d/file before", lambda: os.stat("d/file").st_size)
os.rmdir("d")
os.symlink(f"{top}/m", "d")
show("stat d/file after", lambda: os.stat("d/file").st_size)
show("open d/file after", lambda: open("d/file").read().strip())
# a file the shim has seen, replaced by a symlink into the mount
open("f", "w").close()
show("stat f before", lambda: os.stat("f").st_size)
os.unlink("f")
os.symlink(f"{top}/m/file", "f")
show("getxattr f after", lambda: os.getxattr("f", "user.k"))
show("access f after", lambda: os.access("f", os.R_OK))
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.realpath.restype = ctypes.c_char_p
show("realpath link", lambda: libc.realpath(b"link", None))
show("realpath dlink/sl", lambda: libc.realpath(b"dlink/sl", None))
# in a child that changes its cwd into the mount after a call outside
show("cwd", lambda: (os.stat("sub").st_size > 0, os.chdir(f"{top}/m"), os.stat("file").st_size)[2])
"""


@pytest.mark.parametrize("shim", ["1", "0"])
def test_paths_outside_that_lead_into_a_mount_are_the_views(tmp_path, shim):
    """Symlinks outside every mount that lead into one (absolute, relative,
    as the last component or a directory on the way, through "..", from a
    dirfd), and names the shim has already seen that become such symlinks:
    each shows the mount's file, as the view must, never the host's (where
    /umvtest does not exist).  With the shim and without (the core and the
    module alone)."""
    out, src = tmp_path / "out", tmp_path / "src"
    out.mkdir()
    src.mkdir()
    (out / "sub").mkdir()
    (src / "file").write_text("in the mount\n")
    os.setxattr(src / "file", "user.k", b"mounted")
    (src / "sl").symlink_to("file")
    (out / "link").symlink_to(f"{TOP}/m/file")
    (out / "dlink").symlink_to(f"{TOP}/m")
    (out / "rel").symlink_to(os.path.relpath(f"{TOP}/m", out))
    no_top()
    r = run_view([PY, "-c", LEADS_IN, str(out), TOP], "-b", f"{src}:{TOP}/m", env={"UMVIEW_SHIM": shim})
    no_top()
    assert r.returncode == 0, r.stderr.decode()
    size = len("in the mount\n")
    assert r.stdout.decode().splitlines() == [
        f"stat link {size}", "lstat link True", "open link in the mount",
        "access link True", "getxattr link b'mounted'", "listxattr link ['user.k']",
        f"stat dlink/file {size}", "open dlink/file in the mount", "readlink dlink/sl file",
        "getxattr dlink/file b'mounted'", f"stat rel {size}", f"stat dotdot {size}",
        f"fstatat in dlink {size}", "open in dlink b'in the mount\\n'",
        "stat d/file before ENOENT", f"stat d/file after {size}", "open d/file after in the mount",
        "stat f before 0", "getxattr f after b'mounted'", "access f after True",
        f"realpath link b'{TOP}/m/file'", f"realpath dlink/sl b'{TOP}/m/file'", f"cwd {size}"]


EDGES = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(512)
BAD = ctypes.c_void_p(16)
AT_FDCWD = -100
def call(tag, fn, *args):
    ctypes.set_errno(0)
    rc = fn(*args)
    e = ctypes.get_errno()
    print(tag, "fd" if tag.startswith("open") and rc >= 0 else rc, os.strerror(e) if rc < 0 else "ok")
    if tag.startswith("open") and rc >= 0:
        os.close(rc)
libc.open.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
libc.openat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
d = os.open("d", os.O_RDONLY)
for name, fn, args in (
        ("open ok", libc.open, (b"f", os.O_RDONLY, 0)),
        ("open NULL", libc.open, (None, os.O_RDONLY, 0)),
        ("open bad path", libc.open, (BAD, os.O_RDONLY, 0)),
        ("open missing", libc.open, (b"nope", os.O_RDONLY, 0)),
        ("open create", libc.open, (b"made", os.O_CREAT | os.O_WRONLY, 0o100644)),
        ("open excl", libc.open, (b"made", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)),
        ("open nofollow", libc.open, (b"l", os.O_RDONLY | os.O_NOFOLLOW, 0)),
        ("open follow", libc.open, (b"l", os.O_RDONLY, 0)),
        ("open unknown flag", libc.open, (b"f", os.O_RDONLY | 0x4000000, 0)),
        ("open creat+directory", libc.open, (b"made2", os.O_CREAT | os.O_DIRECTORY, 0o644)),
        ("open dir for write", libc.open, (b"d", os.O_WRONLY, 0)),
        ("open trailing slash", libc.open, (b"f/", os.O_RDONLY, 0)),
        ("openat rel", libc.openat, (d, b"g", os.O_RDONLY, 0)),
        ("openat bad fd", libc.openat, (99, b"g", os.O_RDONLY, 0)),
        ("openat dotdot", libc.openat, (d, b"../f", os.O_RDONLY, 0)),
        ("readlink ok", libc.readlink, (b"l", buf, 512)),
        ("readlink not a link", libc.readlink, (b"f", buf, 512)),
        ("readlink bad path", libc.readlink, (BAD, buf, 512)),
        ("readlink bad buf", libc.readlink, (b"l", BAD, 512)),
        ("readlinkat rel", libc.readlinkat, (d, b"../l", buf, 512)),
        ("getxattr ok", libc.getxattr, (b"f", b"user.k", buf, 512)),
        ("getxattr size", libc.getxattr, (b"f", b"user.k", None, 0)),
        ("getxattr small", libc.getxattr, (b"f", b"user.k", buf, 1)),
        ("getxattr missing", libc.getxattr, (b"f", b"user.none", buf, 512)),
        ("getxattr bad path", libc.getxattr, (BAD, b"user.k", buf, 512)),
        ("getxattr bad name", libc.getxattr, (b"f", BAD, buf, 512)),
        ("getxattr empty name", libc.getxattr, (b"f", b"", buf, 512)),
        ("getxattr bad value", libc.getxattr, (b"f", b"user.k", BAD, 512)),
        ("lgetxattr link", libc.lgetxattr, (b"l", b"user.k", buf, 512)),
        ("listxattr ok", libc.listxattr, (b"f", buf, 512)),
        ("listxattr bad buf", libc.listxattr, (b"f", BAD, 512)),
        ("llistxattr dangling", libc.llistxattr, (b"dl", buf, 512)),
        ("access ok", libc.access, (b"f", os.R_OK)),
        ("access bad mode", libc.access, (b"f", 0x100)),
        ("access bad path", libc.access, (BAD, os.R_OK)),
        ("access dangling", libc.access, (b"dl", os.F_OK)),
        ("stat dotdot", libc.stat, (b"d/../f", buf)),
        # through a symlinked directory (the shim follows it name by name)
        ("stat via link", libc.stat, (b"dd/g", buf)),
        ("stat via link dotdot", libc.stat, (b"dd/../f", buf)),
        ("stat via link missing", libc.stat, (b"dd/nope", buf)),
        ("stat via link not dir", libc.stat, (b"dd/g/x", buf)),
        ("stat via link loop", libc.stat, (b"loop/x", buf)),
        ("stat chain", libc.stat, (b"chain", buf)),
        ("lstat via link", libc.lstat, (b"dd/g", buf)),
        ("lstat chain", libc.lstat, (b"chain", buf)),
        ("readlink via link", libc.readlink, (b"dd/../l", buf, 512)),
        ("access via link", libc.access, (b"dd/g", os.R_OK)),
        ("access via dangling", libc.access, (b"dl/x", os.F_OK)),
        ("getxattr via link", libc.getxattr, (b"dd/../f", b"user.k", buf, 512)),
        ("stat bad path", libc.stat, (BAD, buf)),
        ("stat bad buf", libc.stat, (b"f", BAD)),
        ("lstat dangling", libc.lstat, (b"dl", buf)),
        ("statx bad path", libc.statx, (AT_FDCWD, BAD, 0, 0xfff, buf)),
        ("statx follow", libc.statx, (AT_FDCWD, b"l", 0, 0xfff, buf))):
    call(name, fn, *args)
print(open("made").read() == "", oct(os.stat("made").st_mode))
libc.realpath.restype = ctypes.c_char_p
for p in (b"f", b"./d/../f", b"l", b"dl", b"nope", b"d/nope/x", b"f/x", b"/usr/include/stdio.h",
          b"/usr/nope/x", b"/usr/include/nope.h", b"",
          # through symlinks (the shim's own walk): chains, loops, "..", trailing slashes
          b"dd/g", b"dd/../f", b"chain", b"chain/..", b"loop", b"loop/x", b"l/", b"dl/", b"dd/", b"dd/g/",
          b"d/.", b"f/.", b"dd/g/..", b"/", b"//usr//include/", b"/usr/include/../include/./stdio.h"):
    ctypes.set_errno(0)
    r = libc.realpath(p, None)
    print("realpath", p, r and r.replace(os.getcwd().encode(), b"HERE"), os.strerror(ctypes.get_errno()) if r is None else "ok")
"""


def test_shim_errors_match_native(tmp_path):
    """The shim reads a path only after a call of the kernel has read it
    (a statx first, for open): bad pointers, fds, flags and modes
    give the kernel's errors, as they do natively, never a crash."""
    res = []
    for view in (False, True):
        work = tmp_path / ("view" if view else "native")
        work.mkdir()
        (work / "f").write_text("")
        os.setxattr(work / "f", "user.k", b"value")
        (work / "d").mkdir()
        (work / "d" / "g").write_text("g")
        (work / "l").symlink_to("f")
        (work / "dl").symlink_to("missing")
        (work / "dd").symlink_to("d")
        (work / "chain").symlink_to("dd/../l")
        (work / "loop").symlink_to("loop")
        (tmp_path / "src").mkdir(exist_ok=True)
        if view:
            r = run_view([PY, "-c", EDGES], "-b", f"{tmp_path}/src:{TOP}/m", cwd=work)
        else:
            r = run_native([PY, "-c", EDGES], cwd=work)
        assert r.returncode == 0, r.stderr.decode()
        res.append(r.stdout.decode())
    assert res[1] == res[0]
    assert "open bad path -1 Bad address" in res[0] and "getxattr bad value -1 Bad address" in res[0]
    assert "open follow fd ok" in res[0] and "readlink not a link -1 Invalid argument" in res[0]
    assert "realpath b'./d/../f' b'HERE/f' ok" in res[0] and "realpath b'/usr/nope/x' None No such" in res[0]
    assert "realpath b'chain' b'HERE/f' ok" in res[0] and "realpath b'loop/x' None Too many levels" in res[0]
    assert "realpath b'dd/g/' None Not a directory" in res[0]
    assert "stat via link loop -1 Too many levels" in res[0] and "readlink via link 1" in res[0]


def notified_beside_a_bind(tmp_path, script, args, native, shim):
    """Run python script with args in a view with a bind elsewhere (its
    source tmp_path/empty); check its output is native's; return the calls
    the core's listener saw."""
    log = tmp_path / "log"
    view = run_view([PY, "-c", script, *args], "-b", f"{tmp_path}/empty:{TOP}/m", "-vv", "--log", str(log),
                    env={"UMVIEW_SHIM": shim})
    assert view.returncode == 0 and view.stdout == native.stdout, (view.stdout, native.stdout, view.stderr)
    return core_stats(log)["notif_calls"]


REALPATHS = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.realpath.restype = ctypes.c_char_p
for _ in range(100):
    for p in sys.argv[1:]:
        r = libc.realpath(p.encode(), None)
print(r)
"""


@pytest.mark.parametrize("shim", ["1", "0"])
def test_realpath_through_symlinks_stays_in_the_program(tmp_path, shim):
    """glibc's realpath reads each name with a readlink from inside libc,
    where the shim cannot see it; gcc's driver resolves /usr/bin/cc so.  The
    shim's realpath walks symlinks itself when every name it reaches is
    outside the mounts: 100 rounds of two resolutions through a chain of
    symlinks send the core almost nothing (without the shim, a call per
    name).  A chain that leads into the mount is the view's (the test
    above)."""
    (tmp_path / "empty").mkdir()
    d = tmp_path / "a" / "b"
    d.mkdir(parents=True)
    (d / "file").write_text("x")
    (tmp_path / "l1").symlink_to("a/b")
    (tmp_path / "l2").symlink_to(tmp_path / "l1")
    (tmp_path / "l3").symlink_to("l2/../l2/file")
    args = [f"{tmp_path}/l3", f"{tmp_path}/l2/./file"]
    native = run_native([PY, "-c", REALPATHS, *args])
    assert native.stdout.decode().strip() == repr(str(d / "file").encode())
    calls = notified_beside_a_bind(tmp_path, REALPATHS, args, native, shim)
    if shim == "1":
        assert calls < 100, calls
    else:
        assert calls > 100 * 2 * 4, calls


EACCESS = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
out = []
for p in sys.argv[1:]:
    for _ in range(50):
        r = libc.eaccess(p.encode(), os.X_OK)
        e = ctypes.get_errno() if r else 0
        size = os.stat(p).st_size if os.path.exists(p) else None
    out.append((r, e, size))
print(out)
"""


@pytest.mark.parametrize("shim", ["1", "0"])
def test_eaccess_and_followed_symlinks_stay_in_the_program(tmp_path, shim):
    """make looks for each command in every directory of $PATH with
    eaccess, whose glibc version stats from inside libc; gcc's driver stats
    /usr/bin/cc, a symlink.  The shim takes glibc's steps itself, and
    follows a symlink last from its directory: 50 rounds over four paths
    send the core almost nothing, with the same answers as natively."""
    (tmp_path / "empty").mkdir()
    d = tmp_path / "bin"
    d.mkdir()
    (d / "tool").symlink_to("/bin/true")
    (d / "plain").write_text("x")
    args = [str(d / "tool"), str(d / "plain"), str(d / "missing"), str(tmp_path / "nodir" / "x")]
    native = run_native([PY, "-c", EACCESS, *args])
    assert native.returncode == 0 and b"(0, 0, " in native.stdout, native
    calls = notified_beside_a_bind(tmp_path, EACCESS, args, native, shim)
    if shim == "1":
        assert calls < 100, calls
    else:
        assert calls > 4 * 50 * 2, calls


VIA_LINKS = r"""
import os, sys
a = sys.argv[1]
for _ in range(100):
    r = (os.stat(f"{a}/l1/file").st_size, os.lstat(f"{a}/l2/file").st_size, os.path.exists(f"{a}/l1/nope"),
         os.access(f"{a}/l3", os.R_OK), os.readlink(f"{a}/l2/../../l1"))
print(r)
"""


@pytest.mark.parametrize("shim", ["1", "0"])
def test_calls_through_symlinked_directories_stay_in_the_program(tmp_path, shim):
    """A stat, lstat, access or readlink whose walk meets a symlink (merged
    /usr makes /lib, /bin and /sbin symlinks) is followed in the program
    name by name when every name it reaches is outside the mounts: 100
    rounds of five such calls send the core almost nothing, and a missing
    name behind the symlink no longer goes to Python."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "file").write_text("xyz")
    (tmp_path / "l1").symlink_to("a/b")
    (tmp_path / "l2").symlink_to(tmp_path / "l1")
    (tmp_path / "l3").symlink_to("l2/../b/file")
    native = run_native([PY, "-c", VIA_LINKS, str(tmp_path)])
    assert native.stdout.decode().strip() == "(3, 3, False, True, 'a/b')"
    log = tmp_path / "log"
    view = run_view([PY, "-c", VIA_LINKS, str(tmp_path)], "-b", f"{tmp_path}/empty:{TOP}/m", "-vv",
                    "--log", str(log), env={"UMVIEW_SHIM": shim})
    assert view.returncode == 0 and view.stdout == native.stdout, view.stderr
    st = core_stats(log)
    if shim == "1":
        assert st["notif_calls"] < 100 and st["to_python"] < 5, st
    else:
        assert st["notif_calls"] > 100 * 5, st


@pytest.mark.parametrize("where", ["outside", "inside"])
def test_directory_streams_match_glibcs(tmp_path, progs, where):
    """The shim's own directory streams (opendir, fdopendir, readdir,
    readdir_r, telldir, seekdir, rewinddir, dirfd, closedir): the same
    entries, types, positions and errors as glibc's natively, in a
    directory outside every mount and in one inside a bind mount."""
    src = tmp_path / "src"
    d = src / "d"
    (d / "sub").mkdir(parents=True)
    (d / "file").write_text("x")
    (d / "link").symlink_to("file")
    for i in range(700):   # more than one getdents64 buffer
        (d / f"entry-with-a-longer-name-{i:04}").touch()
    native = run_native([progs["dirstreams"], str(d)])
    assert native.returncode == 0, native.stderr
    if where == "outside":
        (tmp_path / "empty").mkdir()
        view = run_view([progs["dirstreams"], str(d)], "-b", f"{tmp_path}/empty:{TOP}/m")
    else:
        view = run_view([progs["dirstreams"], f"{TOP}/m/d"], "-b", f"{src}:{TOP}/m")
    assert view.returncode == 0, view.stderr
    assert view.stdout == native.stdout
    assert b"after seekdir the same rest: 1" in native.stdout and b"closedir NULL -1 Invalid" in native.stdout


def test_listing_directories_stays_in_the_program(tmp_path):
    """glibc's opendir opens and fstats the directory from inside libc,
    where a preloaded library cannot see it: each would be a round trip to
    the core.  The shim's opendir does both through its own judged calls:
    `ls -R` of 300 directories outside every mount sends the core almost
    nothing (with the shim off, two calls a directory)."""
    tree = tmp_path / "tree"
    (tmp_path / "empty").mkdir()
    for i in range(300):
        (tree / f"d{i // 20}" / f"e{i}").mkdir(parents=True)
    native = run_native(["ls", "-R", str(tree)])
    counts = []
    for shim in ("1", "0"):
        log = tmp_path / f"log{shim}"
        view = run_view(["ls", "-R", str(tree)], "-b", f"{tmp_path}/empty:{TOP}/m", "-vv", "--log",
                        str(log), env={"UMVIEW_SHIM": shim})
        assert view.stdout == native.stdout and view.returncode == 0
        counts.append(core_stats(log)["notif_calls"])
    with_shim, without = counts
    assert without >= 2 * 300 and with_shim < 30, counts


CWD_WORK = r"""
import os, sys
print(os.getcwd(), os.stat("f").st_size, open("f").read().strip())
# a relative walk from here into the mount below: the mount's file
print(open("mnt/file").read().strip(), os.stat("mnt/file").st_size, sorted(os.listdir("mnt")))
print(os.path.exists("mnt/hostonly"), os.access("src/f", os.R_OK))
for _ in range(200):
    os.getcwd()
os.chdir("mnt")
print(os.getcwd(), open("file").read().strip())
os.chdir(sys.argv[1])
print(os.getcwd())
"""


@pytest.mark.parametrize("shim", ["1", "0"])
def test_cwd_above_a_mount(tmp_path, shim):
    """From a directory above a mount point and above a bind's source:
    getcwd and relative walks that stay outside are the kernel's (answered
    in the program or resumed by the core, never in Python), and a
    relative walk into the mount below reaches the mount, not the host
    directory it covers."""
    top = tmp_path / "top"
    (top / "mnt").mkdir(parents=True)
    (top / "mnt" / "hostonly").write_text("covered by the mount\n")
    (top / "f").write_text("outside\n")
    src = top / "src"
    src.mkdir()
    (src / "file").write_text("in the mount\n")
    (src / "f").write_text("x")
    log = tmp_path / "log"
    view = run_view([PY, "-c", CWD_WORK, str(tmp_path)], "-b", f"{src}:{top}/mnt", "-vv", "--log", str(log),
                    cwd=top, env={"UMVIEW_SHIM": shim})
    assert view.returncode == 0, view.stderr
    assert view.stdout.decode().splitlines() == [
        f"{top} 8 outside",
        f"in the mount 13 ['f', 'file']",
        "False True",
        f"{top}/mnt in the mount",
        str(tmp_path)]
    st = core_stats(log)
    if shim == "1":
        # the chdirs reach Python, and the walks into the mount; not the
        # 200 getcwd calls nor the walks that stay outside
        assert st["to_python"] < 40, st
    else:
        # without the shim, the core sends getcwd to the module
        assert st["to_python"] >= 200, st


COW_READS = r"""
set -e
cd "$BASE"
tar cf - d l dangling | tar tvf - | sort
ls -lnR d
find d l dangling -printf '%p %y %s %l\n' | sort
stat -L -c '%n %s %F' l d/f
readlink l dangling
test -r d/f && echo readable
cat l d/e/g | wc -c
"$PY" - <<'EOF2'
import errno, os
def show(tag, fn):
    try:
        print(tag, fn())
    except OSError as e:
        print(tag, errno.errorcode[e.errno])
for top, dirs, files in sorted(os.walk("d")):
    for n in sorted(dirs + files):
        p = os.path.join(top, n)
        st = os.lstat(p)
        print(p, oct(st.st_mode), st.st_size, os.access(p, os.R_OK), sorted(os.listxattr(p, follow_symlinks=False)))
show("getxattr", lambda: os.getxattr("d/f", "user.k"))
show("missing", lambda: os.stat("d/nope"))
show("missing dir", lambda: os.stat("nope/x"))
show("missing open", lambda: open("d/e/nope"))
show("file as dir", lambda: os.stat("d/f/x"))
show("trailing slash", lambda: os.stat("d/f/"))
show("dotdot", lambda: os.stat("d/e/../f").st_size)
fd = os.open("d", os.O_RDONLY)
show("at", lambda: (os.stat("f", dir_fd=fd).st_size, os.readlink("../l", dir_fd=fd)))
show("at open", lambda: os.read(os.open("e/g", os.O_RDONLY, dir_fd=fd), 5))
# a name looked for in a directory only the lower layer has, then made
# there: the copy-up puts the directory in the upper layer, and every
# later lookup must see both layers
show("before", lambda: os.path.exists("d/e/new"))
with open("d/e/new", "w") as f:
    f.write("created\n")
show("after", lambda: (os.stat("d/e/new").st_size, open("d/e/new").read().strip()))
show("at after", lambda: os.stat("e/new", dir_fd=fd).st_size)
show("listing", lambda: (len(os.listdir("d/e")), sorted(os.listdir("d/e"))[:2]))
show("lower file still", lambda: os.stat("d/e/g").st_size)
os.mkdir("d/e/sub")
open("d/e/sub/x", "w").close()
show("new dir", lambda: (sorted(os.listdir("d/e/sub")), os.stat("d/e/sub/x").st_size))
os.close(fd)
os.chdir("d/e")
show("cwd", lambda: (os.stat("g").st_size, os.stat("new").st_size, os.path.exists("sub/x")))
EOF2
"""


def test_reads_in_a_cow_mount_match_native_and_stay_in_the_program(tmp_path):
    """A cow mount with nothing deleted is an overlay: the shim runs reads
    (the stat family, access, readlink, the xattr reads, opens for reading
    of files and of directories one layer has) on the layer's file.  tar,
    ls -lR, find, stat, readlink, cat and python's os calls give what they
    give natively on a copy of the tree, including after a file is made in
    a directory only the lower layer had (which puts it in the upper layer
    too); and the reads do not reach the core (with the shim off, they all
    do).  The lower layer is never changed."""
    lower = tmp_path / "lower"
    make_tree(lower)
    tree = lower / "out"
    env = {"PY": PY}
    native_copy = tmp_path / "copy"
    shutil.copytree(tree, native_copy, symlinks=True)
    native = sh(COW_READS, base=native_copy, env=env)
    assert b"after (8, 'created')" in native.stdout, native.stdout
    before = sorted((str(p), p.lstat().st_mtime_ns) for p in tree.rglob("*"))
    counts = []
    for shim in ("1", "0"):
        log = tmp_path / f"log{shim}"
        view = sh(COW_READS, "--mount", f"type=cow,source={tree},target={TOP}/c", "-vv", "--log", str(log),
                  base=f"{TOP}/c", env={**env, "UMVIEW_SHIM": shim})
        view.stdout = view.stdout.replace(f"{TOP}/c".encode(), b"<BASE>")
        same(native, view)
        counts.append(core_stats(log)["seccomp_stops"])
        assert sorted((str(p), p.lstat().st_mtime_ns) for p in tree.rglob("*")) == before
    with_shim, without = counts
    assert with_shim * 4 < without, counts


COW_ROOT = r"""
set -e
echo new > "$1/made-in-upper"
tar -C "$1" -cf - . | tar -tvf - | sort
cd "$1" && stat -c '%n %s' made-in-upper f000 && cat made-in-upper
"""


def test_calls_from_a_cow_roots_listing_stay_in_the_program(tmp_path):
    """A program that opens the root of a cow mount (tar -C) gets the
    directory the module made to list it; the names relative to it are
    read from the layers in the program too (the module publishes the
    listing, Claims.paths): tar's 200 stats and opens at the top reach
    Python no more, with the same archive as natively, a file made in the
    upper layer included."""
    lower = tmp_path / "lower"
    lower.mkdir()
    for i in range(100):
        (lower / f"f{i:03}").write_text("x" * i)
        (lower / f"d{i:03}").mkdir()
    native_copy = tmp_path / "copy"
    shutil.copytree(lower, native_copy)
    native = subprocess.run(["sh", "-c", COW_ROOT, "sh", str(native_copy)], capture_output=True)
    assert native.returncode == 0, native.stderr
    log = tmp_path / "log"
    view = run_view(["sh", "-c", COW_ROOT, "sh", f"{TOP}/c"], "--mount", f"type=cow,source={lower},target={TOP}/c",
                    "-vv", "--log", str(log))
    assert view.returncode == 0, view.stderr

    def norm(out):   # the root's own line: the upper layer's directory, not the copy's
        return [re.sub(r" \d{4}-\d\d-\d\d \d\d:\d\d ", " ", line) for line in out.decode().splitlines()
                if not line.endswith(" ./")]
    assert norm(view.stdout) == norm(native.stdout)
    assert core_stats(log)["to_python"] < 50, core_stats(log)
    assert sorted(p.name for p in lower.iterdir()) == sorted(p.name for p in native_copy.iterdir() if p.name != "made-in-upper")


REL_CHDIR = r"""
import os, sys
os.chdir(sys.argv[1])
out = []
for step in ("d", "e", "..", "../d/e", "/", "umvtest/m/d"):
    os.chdir(step)
    out.append([os.getcwd()] + [os.path.exists(p) for p in ("f", "g", "e/g", "d/f")])
print(out)
"""


@pytest.mark.parametrize("kind", ["bind", "tmpfs", "cow"])
@pytest.mark.parametrize("shim", ["1", "0"])
def test_relative_chdir_then_relative_calls(tmp_path, kind, shim):
    """A chdir by a relative path, then calls relative to the new cwd: the
    core reads the cwd while it judges the chdir, and must not keep what
    it read (it is the cwd being left)."""
    src = tmp_path / "src"
    (src / "d" / "e").mkdir(parents=True)
    (src / "d" / "f").write_text("f")
    (src / "d" / "e" / "g").write_text("g")
    mount = {"bind": ["-b", f"{src}:{TOP}/m"], "tmpfs": ["--tmpfs", f"{TOP}/m"],
             "cow": ["--mount", f"type=cow,source={src},target={TOP}/m"]}[kind]
    fill = ["sh", "-c", f'cp -a {src}/. {TOP}/m && exec "$@"', "-"] if kind == "tmpfs" else []
    view = run_view(fill + [PY, "-c", REL_CHDIR, f"{TOP}/m"], *mount, env={"UMVIEW_SHIM": shim})
    no_top()
    assert view.returncode == 0, view.stderr
    m = f"{TOP}/m"
    assert view.stdout.decode().strip() == str([
        [f"{m}/d", True, False, True, False], [f"{m}/d/e", False, True, False, False],
        [f"{m}/d", True, False, True, False], [f"{m}/d/e", False, True, False, False],
        ["/", False, False, False, False], [f"{m}/d", True, False, True, False]])


ABOVE = r"""
import errno, os, sys
top = sys.argv[1]
def show(tag, fn):
    try:
        return f"{tag} {fn()}"
    except OSError as e:
        return f"{tag} {errno.errorcode[e.errno]}"
out = []
for _ in range(50):
    out = [show("parent", lambda: os.stat(top).st_ino),
           show("parent/.", lambda: os.stat(top + "/.").st_ino),
           show("access", lambda: os.access(top, os.W_OK)),
           show("above", lambda: os.stat(os.path.dirname(top)).st_ino),
           show("dir/.", lambda: os.stat("/usr/lib/.").st_ino),
           show("dir/..", lambda: os.stat("/usr/lib/..").st_ino),
           show("missing/.", lambda: os.stat("/usr/lib/nope-umv/12/.")),
           show("dotdot missing", lambda: os.stat("/usr/lib/../../nope-umv/lib/.")),
           show("dotdot found", lambda: os.stat("/usr/lib/../lib/.").st_ino),
           show("relative", lambda: os.stat("../" + os.path.basename(top) + "/.").st_ino)]
print("\n".join(out))
"""


def test_parents_of_a_bind_source_and_directory_walks_stay_in_the_program(tmp_path):
    """The directories above a bind's source are shown as the host shows
    them (Claims.paths layers), and "DIR/.", "DIR/.." and walks with ".."
    to a name that is missing (gcc's driver makes such calls for each of
    its search directories) are answered in the program: the same answers
    as natively, and nothing reaches Python."""
    src = tmp_path / "src"
    src.mkdir()
    native = run_native([PY, "-c", ABOVE, str(tmp_path)], cwd=tmp_path)
    log = tmp_path / "log"
    view = run_view([PY, "-c", ABOVE, str(tmp_path)], "-b", f"{src}:{TOP}/m", "-vv", "--log", str(log), cwd=tmp_path)
    no_top()
    assert view.returncode == 0, view.stderr
    assert view.stdout == native.stdout
    assert b"missing/. ENOENT" in native.stdout and b"dotdot missing ENOENT" in native.stdout
    assert core_stats(log)["to_python"] < 10, core_stats(log)


def test_private_directories_stay_hidden(tmp_path):
    """The view's private directories (a tmpfs's files) live under
    /dev/shm, and listings of /dev/shm in the view do not show them."""
    r = run_view(["sh", "-c", f"echo hi > {TOP}/t/f && cat {TOP}/t/f && ls -a /dev/shm"], "--tmpfs", f"{TOP}/t")
    no_top()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().split()
    assert lines[0] == "hi" and "." in lines, lines
    assert not [n for n in lines if n.startswith("umview-")], lines


TAR_X = r"""
set -e
mkdir -p "$DEST" && cd "$DEST"
tar xf "$BASE/in.tar"
chmod 700 d && chmod 600 d/f0
chown 1:2 d/f1 && chown -h 3:4 l
touch -d @1000000000 d/f2 && touch -h -d @1000000001 l
mkdir -m 751 m && ln -s d/f0 l2
"$PY" -c 'import os; os.chmod("d/f3", 0o604); os.chown("d/f3", 7, 8); os.utime("d/f3", ns=(5, 6))
fd = os.open("d/f4", os.O_RDONLY); os.fchmod(fd, 0o640); os.fchown(fd, 9, 10); os.utime(fd, ns=(7, 8))'
touch -h -d @1000000002 l2 m .
find . -printf '%p %y %m %U %G %T@ %l\n' | sort
"""


def make_tar(path):
    import io
    import tarfile
    with tarfile.open(path, "w") as t:
        def add(name, kind=tarfile.REGTYPE, data=b"", **kw):
            info = tarfile.TarInfo(name)
            info.type, info.size, info.mtime = kind, len(data), 946_782_245
            for k, v in kw.items():
                setattr(info, k, v)
            t.addfile(info, io.BytesIO(data) if data else None)
        add("d", tarfile.DIRTYPE, mode=0o755, uid=11, gid=12)
        for i in range(200):
            add(f"d/f{i}", data=b"x" * i, mode=0o644 if i % 2 else 0o600, uid=100 + i, gid=200 + i)
        add("d/e", tarfile.DIRTYPE, mode=0o750)
        add("l", tarfile.SYMTYPE, linkname="d/f1", uid=5, gid=6)


@pytest.mark.parametrize("where", ["tmpfs", "outside"])
def test_tar_x_and_changes_match_native_and_stay_in_the_program(tmp_path, where):
    """tar -x (as root: owners, modes and times restored), chmod, chown,
    touch, mkdir, ln -s and python's fchmod/fchown/futimens, in a tmpfs
    mount after a cd, or outside every mount: the same files as natively,
    and (the shim's mkdir, symlink, chmod, chown, utimensat and the calls on
    an fd's own file) almost none of their calls reach the core."""
    make_tar(tmp_path / "in.tar")
    env = {"PY": PY}
    native = sh(TAR_X, base=tmp_path, env={**env, "DEST": str(tmp_path / "native")})
    assert b"./d/f1 f 644 1 2" in native.stdout and b"./l l 777 3 4 1000000001" in native.stdout
    counts = []
    for shim in ("1", "0"):
        dest = f"{TOP}/t" if where == "tmpfs" else str(tmp_path / f"out{shim}")
        mount = ["--tmpfs", f"{TOP}/t"] if where == "tmpfs" else ["-b", f"{tmp_path}/native:{TOP}/m"]
        log = tmp_path / f"log{shim}"
        view = sh(TAR_X, *mount, "-vv", "--log", str(log), base=tmp_path,
                  env={**env, "DEST": dest, "UMVIEW_SHIM": shim})
        same(native, view)
        st = core_stats(log)
        counts.append(st["notif_calls"] + st["seccomp_stops"])
    with_shim, without = counts
    assert with_shim * 3 < without, counts


MADE_LATER = r"""
import os, sys
m = sys.argv[1]
os.chdir(m)
out = []
for d in ("new", "new2/sub"):
    out.append(os.path.exists(f"{m}/{d}/f"))
    os.makedirs(d)   # relative: below a pass, the shim's own mkdir
    with open(f"{m}/{d}/f", "w") as f:
        f.write("x")
    out.append((os.stat(f"{m}/{d}/f").st_size, open(f"{m}/{d}/f").read()))
print(out)
"""


@pytest.mark.parametrize("kind", ["bind", "tmpfs", "cow"])
def test_directory_made_after_it_was_missing(tmp_path, kind):
    """A path under a mount whose directory was missing, then made (by the
    shim's own mkdir, which no core count sees): the next lookups find it."""
    src = tmp_path / "src"
    src.mkdir()
    mount = {"bind": ["-b", f"{src}:{TOP}/m"], "tmpfs": ["--tmpfs", f"{TOP}/m"],
             "cow": ["--mount", f"type=cow,source={src},target={TOP}/m"]}[kind]
    view = run_view([PY, "-c", MADE_LATER, f"{TOP}/m"], *mount)
    no_top()
    assert view.returncode == 0, view.stderr
    assert view.stdout.decode().strip() == "[False, (1, 'x'), False, (1, 'x')]"


CHMOD_NOFOLLOW = r"""
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
os.chdir(sys.argv[1])
os.makedirs("d", exist_ok=True)
os.symlink("d", "l")
open("f", "w").close()
for p in ("l", "f", "d", "missing", "f/x", os.path.abspath("f")):
    r = libc.fchmodat(-100, p.encode(), 0o700, 0x100)   # AT_FDCWD, AT_SYMLINK_NOFOLLOW
    e = errno.errorcode.get(ctypes.get_errno()) if r else ""
    print(os.path.basename(p), r, e, oct(os.lstat(p).st_mode) if os.path.lexists(p) else "-")
"""


@pytest.mark.parametrize("where", ["tmpfs", "outside"])
def test_chmod_without_following_matches_native(tmp_path, where):
    """fchmodat(AT_SYMLINK_NOFOLLOW), which the shim makes as fchmodat2
    (glibc goes through /proc/self/fd): a symlink gives EOPNOTSUPP, a
    file or directory gets its mode, as natively."""
    (tmp_path / "n").mkdir()
    native = run_native([PY, "-c", CHMOD_NOFOLLOW, str(tmp_path / "n")])
    assert native.returncode == 0, native.stderr
    assert native.stdout.decode().splitlines()[:2] == ["l -1 ENOTSUP 0o120777", "f 0  0o100700"]
    dest = f"{TOP}/t" if where == "tmpfs" else str(tmp_path / "o")
    if where == "outside":
        os.mkdir(dest)
    mount = ["--tmpfs", f"{TOP}/t"] if where == "tmpfs" else ["-b", f"{tmp_path}/n:{TOP}/m"]
    view = run_view([PY, "-c", CHMOD_NOFOLLOW, dest], *mount)
    no_top()
    assert view.returncode == 0, view.stderr
    assert view.stdout == native.stdout


def test_first_deletion_in_a_cow_mount_is_seen_at_once(tmp_path):
    """The first deletion in a cow mount ends the overlay the shim reads;
    the program's very next call must not read the lower layer (it would
    list the deleted name).  The change is published by the tracer after
    the caller resumed; the shim's entry is marked pending meanwhile.  Two
    busy loops make the tracer late; before the mark, 5 runs in 40 listed
    the name here."""
    src = tmp_path / "src"
    (src / "dir" / "sub").mkdir(parents=True)
    (src / "dir" / "sub" / "y.txt").write_text("y\n")
    code = (f"import os; os.unlink('{TOP}/c/dir/sub/y.txt'); "
            f"print(os.listdir('{TOP}/c/dir/sub'))")
    hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(2)]
    try:
        outs = [run_view([sys.executable, "-S", "-c", code], "--mount",
                         f"type=cow,source={src},target={TOP}/c").stdout for _ in range(40)]
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    no_top()
    assert outs == [b"[]\n"] * 40, [o for o in outs if o != b"[]\n"]
    assert (src / "dir" / "sub" / "y.txt").exists()   # the source is never changed



FD_REUSED = r"""
import os, sys
out = sys.argv[1]
fd = os.open(f"{out}/d", os.O_RDONLY)           # a directory outside: the shim keeps its path
print(os.stat("f", dir_fd=fd).st_size, os.path.exists(f"{out}/d/mnt/file"))
os.close(fd)
# the same number, made by dup2 (no path call) a directory with a mount in it
top = os.open(f"{out}/top", os.O_RDONLY)
fd = os.open(f"{out}/d", os.O_RDONLY)
print(os.stat("f", dir_fd=fd).st_size)
fd2 = os.dup2(top, fd)
os.close(top)
print(fd2 == fd, os.stat("mnt/file", dir_fd=fd2).st_size, sorted(os.listdir(f"{out}/top/mnt")))
sub = os.open("mnt/sub", os.O_RDONLY, dir_fd=fd2)   # opened from it, into the mount
print(sorted(os.listdir(sub)), os.stat("g", dir_fd=sub).st_size)
os.close(sub)
os.close(fd2)
fd3 = os.open(f"{out}/d/sub", os.O_RDONLY)      # outside again, below a directory seen before
print(sorted(os.listdir(fd3)), os.stat("g", dir_fd=fd3).st_size, os.stat("../f", dir_fd=fd3).st_size)
"""


def test_a_directory_fd_number_reused(tmp_path):
    """The shim keeps the path of a directory it opened with the fd's
    number; when the number is given to a directory with a mount in it
    (by dup2, which is no path call), walks from it into the mount are the
    mount's (the fd's identity no longer matches what was kept), not the
    host directory it covers."""
    out, src = tmp_path / "out", tmp_path / "src"
    for d in (out / "d" / "sub", out / "d" / "mnt", out / "top" / "mnt", src / "sub"):
        d.mkdir(parents=True)
    (out / "d" / "f").write_text("outside")
    (out / "d" / "mnt" / "file").write_text("where a stale path would lead")
    (out / "d" / "sub" / "g").write_text("gg")
    (out / "top" / "mnt" / "hostonly").write_text("covered by the mount")
    (src / "file").write_text("in the mount\n")
    (src / "sub" / "g").write_text("mounted g")
    r = run_view([PY, "-c", FD_REUSED, str(out)], "-b", f"{src}:{out}/top/mnt")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().splitlines() == [
        "7 True", "7", "True 13 ['file', 'sub']", "['g'] 9", "['g'] 2 7"]


LOWER_CHANGED = r"""
import os, sys
lower, seen = sys.argv[1], sys.argv[2]
for n in range(3):
    d = f"new{n}"
    os.mkdir(f"{seen}/{d}")                 # in the upper layer only
    print(os.path.exists(f"{seen}/{d}/x"))  # the shim keeps where {d} is
    os.mkdir(f"{lower}/{d}")                # now in the lower one too...
    open(f"{lower}/{d}/x", "w").close()     # ...with a file the mount shows
    print(os.path.exists(f"{seen}/{d}/x"), sorted(os.listdir(f"{seen}/{d}")))
"""


def test_a_change_by_host_path_in_an_overlay_lower_layer_is_seen(tmp_path):
    """A cow mount with nothing deleted is an overlay, whose directories
    the shim keeps as found in each layer (a directory in the upper layer
    only, say).  A program that changes the lower layer by its host path
    (which the view shows as the host does) must see the change through
    the mount at once: the calls on an overlay's layers still reach the
    core, which makes the shim forget, though the calls on other layers'
    files (a bind's source) are the kernel's."""
    lower = tmp_path / "lower"
    lower.mkdir()
    no_top()
    view = run_view([PY, "-c", LOWER_CHANGED, str(lower), f"{TOP}/c"],
                    "--mount", f"type=cow,source={lower},target={TOP}/c")
    no_top()
    assert view.returncode == 0, view.stderr.decode()
    assert view.stdout.decode() == "False\nTrue ['x']\n" * 3


OPEN_EDGES = r"""
import ctypes, mmap, os
libc = ctypes.CDLL(None, use_errno=True)
libc.open.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
page = mmap.PAGESIZE
base = libc.mmap(None, 3 * page, 3, 0x22, -1, 0)
libc.mprotect(base + 2 * page, page, 0)         # the third page unreadable


def show(what, addr, flags=os.O_RDONLY):
    fd = libc.open(addr, flags, 0o644)
    err = ctypes.get_errno()
    print(what, "fd" if fd >= 0 else os.strerror(err))
    if fd >= 0:
        os.close(fd)


def put(text, end):                             # text ending at base + end
    ctypes.memmove(base + end - len(text), text, len(text))
    return base + end - len(text)


show("null", None)
show("low", 16)
show("unreadable", base + 2 * page)
show("runs into a bad page", put(b"/tmp/x", 2 * page))
show("creat runs into a bad page", put(b"/tmp/y", 2 * page), os.O_CREAT | os.O_WRONLY)
show("ends at the page's end", put(b"/nonexistent-umv\0", 2 * page))
show("crosses into a good page", put(b"/etc/passwd\0", page + 6))
show("a page long", put(b"/" * (page - 1) + b"\0", 2 * page))
print(os.path.exists("/tmp/y"))
"""


def test_open_with_bad_pointers_fails_as_natively(tmp_path):
    """The shim reads an open's path itself before judging it, after a
    probe of each page it touches; a pointer the kernel cannot read (NULL,
    an unreadable page, a text that runs into one) must fail with the
    kernel's EFAULT, never crash the program or create anything."""
    native = run_native([PY, "-c", OPEN_EDGES])
    assert native.returncode == 0, native.stderr.decode()
    out = native.stdout.decode()
    assert "null Bad address" in out and "runs into a bad page Bad address" in out, out
    assert "ends at the page's end No such file or directory" in out and "a page long fd" in out, out
    view = run_view([PY, "-c", OPEN_EDGES], "-b", f"{tmp_path}:{TOP}/m")
    assert (view.returncode, view.stdout, view.stderr) == (0, native.stdout, native.stderr)


FD_GIVEN = r"""
import fcntl, os, socket, sys
host, t = sys.argv[1], sys.argv[2]
D = os.O_RDONLY | os.O_DIRECTORY
for route in ("open", "dup2", "dup3", "dup", "F_DUPFD", "recvmsg"):
    n = os.open(host, D)                       # outside: the shim keeps its path
    m = os.open(t, D) if route != "open" else -1
    if route == "recvmsg":
        a, b = socket.socketpair(socket.AF_UNIX)
        socket.send_fds(a, [b"x"], [m])
    os.stat("f", dir_fd=n)                     # kept again, after every call the core saw
    if route == "open":
        os.close(n)
        k = os.open(t, D)                      # the core's: the mount's directory
    elif route == "dup2":
        k = os.dup2(m, n)                      # libc dup2
    elif route == "dup3":
        k = os.dup2(m, n, inheritable=False)   # libc dup3
    elif route == "dup":
        os.close(n)
        k = os.dup(m)                          # fcntl F_DUPFD_CLOEXEC
    elif route == "F_DUPFD":
        os.close(n)
        k = fcntl.fcntl(m, fcntl.F_DUPFD, n)
    else:
        os.close(n)
        k = socket.recv_fds(b, 10, 1)[1][0]    # recvmsg
    fd = os.open("f", os.O_RDONLY, dir_fd=k)
    data = os.read(fd, 100)
    os.close(fd)
    made = os.open(f"made-{route}", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=k)
    os.close(made)
    print(route, k == n, os.stat("f", dir_fd=k).st_size, data.decode().strip(),
          os.path.exists(f"{t}/made-{route}"), os.path.exists(f"{host}/made-{route}"))
    os.close(k)
    if m >= 0:
        os.close(m)
    if route == "recvmsg":
        a.close()
        b.close()
"""


def test_a_kept_directory_fd_number_given_another_directory(tmp_path):
    """The shim trusts the path it kept for a directory fd without asking
    statx again while nothing could have put another file at the number
    (fd_trusted in native/umvshim.c).  Each way a program puts a directory
    of a mount there: an open the core sees, dup2, dup3, fcntl F_DUPFD (as
    dup), and fd passing.  The mount is a cow mount, whose root a program
    gets as a listing of empty placeholder files: a call made from the
    number on the stale path would read one of them.  The same script
    natively, with a plain directory in the mount's place."""
    host, lower, plain = tmp_path / "host", tmp_path / "lower", tmp_path / "plain"
    for d in (host, lower, plain):
        d.mkdir()
    (host / "f").write_text("h")
    for d in (lower, plain):
        (d / "f").write_text("in the mount\n")
    native = run_native([PY, "-c", FD_GIVEN, str(host), str(plain)])
    assert native.returncode == 0, native.stderr.decode()
    expected = native.stdout.decode().splitlines()
    assert expected == [f"{r} True 13 in the mount True False"
                        for r in ("open", "dup2", "dup3", "dup", "F_DUPFD", "recvmsg")]
    for p in host.iterdir():
        if p.name != "f":
            p.unlink()
    view = run_view([PY, "-c", FD_GIVEN, str(host), f"{TOP}/c"], "--mount", f"type=cow,source={lower},target={TOP}/c")
    assert view.returncode == 0, view.stderr.decode()
    assert view.stdout.decode().splitlines() == expected
    assert sorted(p.name for p in lower.iterdir()) == ["f"]
    assert sorted(p.name for p in host.iterdir()) == ["f"]


RAW_OPEN_AT = r"""
import ctypes, os, sys
host, m = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
D = os.O_RDONLY | os.O_DIRECTORY
n = os.open(host, D)
os.stat("f", dir_fd=n)                  # the shim keeps its path
os.close(n)
k = libc.syscall(257, -100, m.encode(), D)   # openat, raw: the core's listener
print(k == n, os.stat("g", dir_fd=k).st_size, end=" ")
try:
    print(os.stat("../x", dir_fd=k).st_size)
except FileNotFoundError:
    print("missing")
"""


def test_a_kept_directory_fd_number_given_by_a_raw_open(tmp_path):
    """A raw open (ld.so's, libc's own, a Go program's) of a directory
    below a bind mount is the core's (its listener opens it for the
    program): the shim, which kept a path for the number before, must
    learn that the number holds another file.  From the mount's root,
    ".." is the mount's parent in the view; the stale path would lead to
    the bind source's parent on the host, which has an "x"."""
    host, src, plain = tmp_path / "host", tmp_path / "src", tmp_path / "plain"
    for d in (host, src, plain / "m"):
        d.mkdir(parents=True)
    (host / "f").write_text("h")
    (tmp_path / "x").write_text("the source's sibling")
    for d in (src, plain / "m"):
        (d / "g").write_text("gg")
    native = run_native([PY, "-c", RAW_OPEN_AT, str(host), str(plain / "m")])
    assert native.returncode == 0, native.stderr.decode()
    assert native.stdout.decode() == "True 2 missing\n"
    view = run_view([PY, "-c", RAW_OPEN_AT, str(host), f"{TOP}/m"], "-b", f"{src}:{TOP}/m")
    assert view.returncode == 0, view.stderr.decode()
    assert view.stdout == native.stdout


@pytest.mark.parametrize("mode", ["clone", "vfork"])
def test_a_kept_directory_fd_number_in_a_shared_table_or_memory(tmp_path, progs, mode):
    """A process that shares its fd table (clone CLONE_FILES) or its
    memory (vfork) with another cannot tell from its own counts that the
    other put a new file at a number it kept: the core marks it, and its
    shim trusts nothing kept while that lasts (tests/progs/fdshare.c).  A
    stale path would lead "../../x" from a directory in the bind mount to
    the bind source's sibling."""
    host, src, plain = tmp_path / "host", tmp_path / "src", tmp_path / "plain"
    for d in (host, src / "sub", plain / "m" / "sub"):
        d.mkdir(parents=True)
    (host / "f").write_text("h")
    (tmp_path / "x").write_text("the source's sibling")
    for d in (src, plain / "m"):
        (d / "sub" / "g").write_text("gg")
    native = run_native([progs["fdshare"], mode, str(host), str(plain / "m" / "sub")])
    assert (native.returncode, native.stdout) == (0, b"2 missing\n"), native
    view = run_view([progs["fdshare"], mode, str(host), f"{TOP}/m/sub"], "-b", f"{src}:{TOP}/m")
    assert (view.returncode, view.stdout) == (0, b"2 missing\n"), view
