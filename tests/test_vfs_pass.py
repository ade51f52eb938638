"""Path calls below a writable bind or tmpfs mount run by the kernel.

The C core runs such a call on the host path without asking the vfs module
when the path, walked from the mount's host directory, stays below it
(Claims.paths passes).  These tests check both halves: the work done in
such a mount matches the same work done natively (and the core's
statistics show the calls did not reach Python), and every way out of the
directory (`..` above the mount, a symlink to an absolute path or climbing
out, a mount inside, a rename to elsewhere) is still resolved as the view
sees it, not as the host does.
"""
import os
import stat

import pytest

from conftest import core_stats, run_native, run_view
from test_vfs_programs import PY, TOP, no_top, same, sh

WORK = r"""
set -e
cd "$BASE"
mkdir -p d/e
echo one > d/e/f
ln -s e/f d/rel
ln -s .. d/e/back
cat d/rel d/e/back/e/f
mv d/e/f d/e/g
ln d/e/g d/hard
stat -c '%n %h %s %F' d/e/g d/hard d/rel
chmod 640 d/hard
touch -d @946782245 d/e/g
stat -c '%n %a %Y' d/e/g "$BASE/d/hard"
python3 -c 'import os; os.rename("d/e/g", "d/e/h"); print(sorted(os.listdir("d/e")))'
cat "$BASE/d/e/h" "$BASE/d/e/back/e/h"
readlink d/rel "$BASE/d/e/back"
rm d/hard; rm -r d/e; ls -a d; stat -c '%A %N' d/rel
test -e d/rel || echo dangling
rmdir d 2>&1 || true
ls
"""


@pytest.fixture(params=["listener", "ptrace"])
def both_roads(request, monkeypatch):
    """Run the test with the C core serving calls from its seccomp listener
    (the default), then at ptrace stops (UMVIEW_NOTIF=0)."""
    if request.param == "ptrace":
        monkeypatch.setenv("UMVIEW_NOTIF", "0")
    else:
        monkeypatch.delenv("UMVIEW_NOTIF", raising=False)
    return request.param


def tree(top):
    """(path, file type) of everything below top."""
    return sorted((str(p.relative_to(top)), stat.S_IFMT(p.lstat().st_mode)) for p in top.rglob("*"))


@pytest.mark.parametrize("road", ["listener", "ptrace", "shim"])
def test_work_in_bind_and_tmpfs_matches_native_without_python(tmp_path, road):
    """Served by the seccomp listener, or (UMVIEW_NOTIF=0) at ptrace stops
    resumed in C (both with the shim off), or in the programs (the shim
    runs opens, stats and changes by the guest path on the host path)."""
    native_dir = tmp_path / "native"
    native_dir.mkdir()
    native = sh(WORK, base=native_dir)
    env = {"UMVIEW_NOTIF": "0", "UMVIEW_SHIM": "0"} if road == "ptrace" else \
        {"UMVIEW_SHIM": "0"} if road == "listener" else {}
    for kind in ("bind", "tmpfs"):
        src = tmp_path / f"src-{kind}"
        src.mkdir()
        mount = ["-b", f"{src}:{TOP}/w"] if kind == "bind" else ["--tmpfs", f"{TOP}/w"]
        log = tmp_path / f"{kind}.log"
        view = sh(WORK, *mount, "-vv", "--log", str(log), base=f"{TOP}/w", env=env)
        same(native, view)
        st = core_stats(log)
        # absolute paths under the mount ran on the host path (stat and
        # readlink run by the hypervisor itself), relative ones as they
        # were; only a few calls (chdir, exec...) reached Python
        runs = st["fast_paths"] + st["notif_paths"]
        if road == "shim":
            # stat, cat, touch, chmod, ln -s, readlink: in the programs
            assert st["fast_moved"] + st["notif_served"] + st["fast_served"] <= 4, st
            assert st["to_python"] < 20, st
        else:
            assert st["fast_moved"] + st["notif_served"] >= 2 and st["fast_served"] + st["notif_served"] >= 2, st
            assert runs >= 20, st
            assert st["to_python"] < runs / 10, st
        if road == "ptrace":
            assert st["notif_calls"] == 0, st
        elif road == "listener":
            assert st["notif_paths"] >= 20 and st["notif_paths"] > 5 * st["fast_paths"], st
            # cat's opens by the absolute path too: opened by the listener
            # itself (notif_open), with the stats it serves
            assert st["notif_served"] >= 4 and st["fast_moved"] == 0, st
        if kind == "bind":
            # the work landed in the bound host directory, as natively
            assert tree(src) == tree(native_dir) == [("d", stat.S_IFDIR), ("d/rel", stat.S_IFLNK)]


def test_ways_out_of_a_bind_are_the_views(tmp_path, both_roads):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("hi\n")
    (src / "self").symlink_to(f"{TOP}/w/sub")      # absolute, into the guest side
    (src / "up").symlink_to("../..")                # climbs out of the mount
    (src / "hostabs").symlink_to(str(src / "sub"))  # absolute, host side
    out = tmp_path / "out"
    out.mkdir()
    (out / "l").symlink_to(f"{TOP}/w")              # a host link into the mount
    script = f"""
cd {TOP}/w/sub && ls ../.. && ls ..
cat {TOP}/w/self/f && cd {TOP}/w && cat self/f
test -d {TOP}/w/up/umvtest/w && echo up-is-root
cd {TOP}/w && test -d up/umvtest/w && echo up-is-root-again
cat hostabs/f
cat {out}/l/sub/f
cd {out} && cat l/sub/f && cat l/self/../sub/f
cat {out}/l/sub/nope/x 2>/dev/null || echo missing
cd {TOP}/w/sub && python3 -c '
import errno, os
for fn in (os.rename, os.link):
    try:
        fn("f", "{out}/moved")
    except OSError as e:
        print(fn.__name__, errno.errorcode[e.errno])
'
"""
    r = run_view(["sh", "-ec", script], "-b", f"{src}:{TOP}/w")
    no_top()
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().split("\n") == [
        "w", "hostabs", "self", "sub", "up",
        "hi", "hi",
        "up-is-root", "up-is-root-again",
        "hi", "hi", "hi", "hi",
        "missing",
        "rename EXDEV", "link EXDEV", ""]
    assert not (out / "moved").exists()


def test_a_mount_inside_a_bind_is_not_passed_over(tmp_path, both_roads):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("host\n")
    script = f"""
ls {TOP}/w/sub; cd {TOP}/w && ls sub && echo new > sub/n && cat sub/n {TOP}/w/sub/n
cd sub && ls && cd .. && ls sub
"""
    r = run_view(["sh", "-ec", script], "-b", f"{src}:{TOP}/w", "--tmpfs", f"{TOP}/w/sub")
    no_top()
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().split() == ["new", "new", "n", "n"]
    assert sorted(p.name for p in (src / "sub").iterdir()) == ["f"]


def test_read_only_bind_still_refuses_writes(tmp_path, both_roads):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x\n")
    r = run_view(["sh", "-c", f"cd {TOP}/w; cat f; touch g; mkdir h; rm f; echo y > {TOP}/w/f; ls"],
                 "--ro-bind", f"{src}:{TOP}/w", env={"LC_ALL": "C"})
    no_top()
    assert r.stdout.decode().split() == ["x", "f"]
    assert r.stderr.decode().count("Read-only file system") == 4, r.stderr.decode()
    assert sorted(p.name for p in src.iterdir()) == ["f"]


def test_calls_a_pass_may_not_run_still_reach_the_module(tmp_path, both_roads):
    """statfs shows a tmpfs's size=, chdir is remembered: both reach the
    module however the path is written."""
    script = f"""
cd {TOP}/t && mkdir d && stat -f -c %b . d {TOP}/t {TOP}/t/d
cd d && pwd && cd .. && pwd && /bin/pwd
"""
    r = run_view(["sh", "-ec", script], "--mount", f"type=tmpfs,target={TOP}/t,size=1m")
    no_top()
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().split() == ["256"] * 4 + [f"{TOP}/t/d", f"{TOP}/t", f"{TOP}/t"]


def test_exec_outside_with_an_interpreter_inside(tmp_path, both_roads):
    """Programs outside every mount are exec'd by the kernel without the
    module, unless their #! interpreter is the view's: a script on the host
    whose interpreter is a copy of sh in a tmpfs still runs."""
    script = tmp_path / "s.sh"
    script.write_text(f"#!{TOP}/t/mysh\necho \"interp: $0 $*\"\n")
    script.chmod(0o755)
    plain = tmp_path / "p.sh"
    plain.write_text("#!/bin/sh\necho plain\n")
    plain.chmod(0o755)
    cmd = f"cp /bin/sh {TOP}/t/mysh && {script} one && cd {tmp_path} && ./s.sh two && ./p.sh && /bin/true"
    r = run_view(["sh", "-ec", cmd], "--tmpfs", f"{TOP}/t")
    no_top()
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode() == f"interp: {script} one\ninterp: ./s.sh two\nplain\n"
    assert run_view(["sh", "-c", str(script)]).returncode == 127  # no mount: the host has no interpreter


def test_signals_do_not_interrupt_calls_that_never_say_eintr(tmp_path, progs, both_roads):
    """A call waiting for the C core's answer (listener or ptrace stop) is
    restarted after a signal handler without SA_RESTART, as the kernel does
    for a call that does not block: no EINTR from stat, open, access,
    readlink, natively or in a view with a mount."""
    f = tmp_path / "f"
    f.write_text("x")
    (tmp_path / "l").symlink_to("f")
    cmd = [progs["eintr"], str(f), str(tmp_path / "l"), "20000"]
    native = run_native(cmd)
    assert native.stdout == b"signals many, EINTR 0, other errors 0\n", native.stdout
    # the host paths (the view sends them to Python: the mount's source),
    # the mount's paths (run below the pass)
    for args in (cmd[1:3], [f"{TOP}/w/f", f"{TOP}/w/l"]):
        view = run_view([cmd[0], *args, "20000"], "-b", f"{tmp_path}:{TOP}/w")
        no_top()
        assert view.stdout == native.stdout, (args, view.stdout, view.stderr)


def test_the_listener_only_where_the_core_answers(tmp_path):
    """Views whose every mount is a pass get their path calls from the
    seccomp listener; a view with a cow mount (whose calls reach Python,
    each a bounce through the listener) traps them with ptrace stops."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x\n")
    counts = {}
    for kind, mount in (("bind", ["-b", f"{src}:{TOP}/w"]),
                        ("cow", ["--mount", f"type=cow,source={src},target={TOP}/w"])):
        log = tmp_path / f"{kind}.log"
        r = run_view(["sh", "-c", f"cat {TOP}/w/f; cd {TOP}/w && cat f && ls"], *mount, "-vv", "--log", str(log))
        no_top()
        assert r.stdout == b"x\nx\nf\n", r.stderr
        counts[kind] = core_stats(log)["notif_calls"]
    assert counts["bind"] > 0 and counts["cow"] == 0, counts


CWD_PROBE = r"""
import os, sys
top, out = sys.argv[1:]
with open(os.path.join(top, "m", "file"), "w") as f:
    f.write("in the tmpfs\n")
os.chdir(out)
os.stat("x")                              # the core learns the cwd: out
fd = os.open(top, os.O_RDONLY)
os.fchdir(fd)                             # ...which fchdir changes
print("after fchdir", os.path.exists("m/file"), os.path.exists("x"))
os.chdir(out)
os.stat("x")
os.chdir(top)
print("after chdir", os.path.exists("m/file"), os.path.exists("x"))
d1 = os.open(out, os.O_RDONLY)
os.stat("x", dir_fd=d1)                   # the core learns dirfd d1: out
os.close(d1)
d2 = os.open(top, os.O_RDONLY)            # the same number, another directory
print("same number", d1 == d2, os.path.exists(f"/proc/self/fd/{d2}"))
print("dirfd", os.stat("m/file", dir_fd=d2).st_size, sorted(os.listdir(d2)))
"""


def test_cwd_and_dirfds_known_to_the_core_follow_changes(tmp_path, both_roads):
    """The C core keeps the directory of a process's cwd and dirfds between
    calls (to skip a readlink of /proc/PID/cwd per call): fchdir, chdir,
    and an fd number closed and reused for another directory must each be
    seen, or `m/file` below the tmpfs would be looked up on the host."""
    top, out = tmp_path / "top", tmp_path / "out"
    top.mkdir()
    out.mkdir()
    (out / "x").write_text("")
    r = run_view(["python3", "-c", CWD_PROBE, str(top), str(out)], "--tmpfs", f"{top}/m")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().splitlines() == [
        "after fchdir True False", "after chdir True False", "same number True True",
        "dirfd 13 ['m']"]
    assert not (top / "m").exists()


PROC_FD_PROBE = r"""
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_PATH)
    for mode in (0o711, 0o700):                 # as glibc's fchmodat(AT_SYMLINK_NOFOLLOW)
        os.chmod(f"/proc/self/fd/{fd}", mode)
    print(oct(os.stat(p).st_mode & 0o777), os.readlink(f"/proc/self/fd/{fd}") == p)
"""


def test_chmod_through_proc_self_fd(tmp_path, both_roads):
    """chmod("/proc/self/fd/N"), the way glibc and tar -x set modes through
    O_PATH fds, is run by the kernel for a file outside every mount or below
    a tmpfs (a pass); readlink of the link still shows the guest path (the
    module's answer)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "g").write_text("")
    paths = [f"{TOP}/t/d", str(out / "g")]
    log = tmp_path / "log"
    r = run_view(["sh", "-c", f'mkdir {TOP}/t/d && exec python3 -c "$0" "$@"', PROC_FD_PROBE, *paths],
                 "--tmpfs", f"{TOP}/t", "-vv", "--log", str(log))
    no_top()
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().split("\n") == ["0o700 True"] * len(paths) + [""]
    # 4 chmods, none in Python (the mkdir, the readlinks and sh's calls are)
    assert core_stats(log)["to_python"] <= 4, core_stats(log)


FD_PROBE = r"""
import errno, os, sys
xattrs = sys.argv.pop(1) == "xattrs"
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY)
    path_fd = os.open(p, os.O_PATH)
    out = []
    for what, fn in (("fchmod", lambda: os.fchmod(fd, 0o600)),
                     ("proc-chmod", lambda: os.chmod(f"/proc/self/fd/{path_fd}", 0o640)),
                     ("fchown", lambda: os.fchown(fd, 1234, -1)),
                     ("futimens", lambda: os.utime(fd, ns=(10**18, 10**18))),
                     ("fsetxattr", lambda: os.setxattr(fd, "user.t", b"v"))):
        if what == "fsetxattr" and not xattrs:
            continue
        try:
            fn()
            out.append(what)
        except OSError as e:
            out.append(f"{what}:{errno.errorcode[e.errno]}")
    st = os.stat(p)
    xattr = os.getxattr(p, "user.t") if xattrs and out[-1] == "fsetxattr" else b"-"
    print(*out, oct(st.st_mode & 0o777), st.st_uid, st.st_mtime_ns == 10**18, xattr.decode())
"""


def test_calls_on_fds_never_change_what_a_mount_protects(tmp_path, both_roads):
    """A program's fds are the files themselves, so fchmod, fchown,
    futimens, fsetxattr (and chmod through /proc/self/fd/N) would change a
    cow mount's lower layer or a read-only mount's source in place: in a
    cow mount the file is copied up and changed there, in a read-only one
    they fail with EROFS; on a plain host file they are the kernel's."""
    lower, ro, plain = tmp_path / "lower", tmp_path / "ro", tmp_path / "plain"
    for d in (lower, ro, plain):
        d.mkdir()
        (d / "f").write_text("data\n")
        (d / "f").chmod(0o644)
    try:   # user xattrs where the file system has them (tmpfs before Linux 6.6 has not)
        os.setxattr(plain / "f", "user.probe", b"1")
        os.removexattr(plain / "f", "user.probe")
        xattrs = True
    except OSError:
        xattrs = False
    before = {d: (d / "f").stat() for d in (lower, ro)}
    r = run_view(["python3", "-c", FD_PROBE, "xattrs" if xattrs else "-", f"{TOP}/c/f", f"{TOP}/r/f",
                  str(plain / "f")],
                 "--mount", f"type=cow,source={lower},target={TOP}/c", "--ro-bind", f"{ro}:{TOP}/r")
    no_top()
    assert r.returncode == 0, r.stderr.decode()
    x, xro, v = (" fsetxattr", " fsetxattr:EROFS", " v") if xattrs else ("", "", " -")
    assert r.stdout.decode().splitlines() == [
        f"fchmod proc-chmod fchown futimens{x} 0o640 1234 True{v}",
        f"fchmod:EROFS proc-chmod:EROFS fchown:EROFS futimens:EROFS{xro} 0o644 0 False -",
        f"fchmod proc-chmod fchown futimens{x} 0o640 1234 True{v}"]
    for d in (lower, ro):
        st = (d / "f").stat()
        assert (st.st_mode, st.st_uid, st.st_mtime_ns) == \
            (before[d].st_mode, before[d].st_uid, before[d].st_mtime_ns), d
        assert os.listxattr(d / "f") == []


@pytest.mark.parametrize("shim", ["0", "1"])
def test_reads_in_a_cow_mount_answered_in_c_follow_its_layers(tmp_path, both_roads, shim, monkeypatch):
    """A cow mount with nothing deleted is an overlay for the C core (and
    for the shim, in programs linked with libc): stat, access, getxattr of
    a path are answered from the upper layer if it has the path, else from
    the lower one.  A write (copy-up) must then be seen, a deletion turns
    the overlay off (the lower file must stay hidden), and symlinks still
    reach the module."""
    monkeypatch.setenv("UMVIEW_SHIM", shim)
    lower = tmp_path / "lower"
    (lower / "sub").mkdir(parents=True)
    (lower / "f").write_text("x\n")
    (lower / "sub" / "g").write_text("y\n")
    (lower / "lnk").symlink_to("f")
    script = f"""
cd {TOP}/c
stat -c '%n %s' f sub/g lnk {TOP}/c/sub/g
stat -L -c '%n %s' lnk
echo longer > f && stat -c '%n %s' f {TOP}/c/f && test -r f && echo readable
echo new > sub/h && stat -c '%n %s' sub/h
cd sub && stat -c '%n %s' ../f g h && cd ..
cat f sub/g sub/h {TOP}/c/lnk
rm sub/g; stat -c '%n' sub/g 2>/dev/null || echo gone; test -e {TOP}/c/sub/g || echo still-gone
cat sub/g 2>/dev/null || echo unreadable
stat -c '%n %s' f sub/h
"""
    log = tmp_path / "log"
    r = run_view(["sh", "-ec", script], "--mount", f"type=cow,source={lower},target={TOP}/c",
                 "-vv", "--log", str(log))
    no_top()
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().splitlines() == [
        "f 2", "sub/g 2", "lnk 1", f"{TOP}/c/sub/g 2", "lnk 2",
        "f 7", f"{TOP}/c/f 7", "readable", "sub/h 4",
        "../f 7", "g 2", "h 4",
        "longer", "y", "new", "longer",
        "gone", "still-gone", "unreadable", "f 7", "sub/h 4"]
    st = core_stats(log)
    if shim == "0":
        assert st["fast_served"] >= 8 and st["fast_moved"] >= 3, st   # stats; cat's opens
    else:
        assert st["fast_served"] + st["fast_moved"] <= 2, st   # answered in the programs
    assert sorted(p.name for p in lower.rglob("*")) == ["f", "g", "lnk", "sub"]
    assert (lower / "f").read_text() == "x\n"
    # started there with -w: the cwd is the mount's upper layer, as after a
    # chdir (not a listing), so its reads are answered in C too
    log.unlink()
    r = run_view(["sh", "-c", "stat -c %s f sub/g; pwd"], "--mount", f"type=cow,source={lower},target={TOP}/c",
                 "-w", f"{TOP}/c", "-vv", "--log", str(log))
    no_top()
    assert r.stdout.decode().split() == ["2", "2", f"{TOP}/c"], r.stderr.decode()
    if shim == "0":
        assert core_stats(log)["fast_served"] >= 2, core_stats(log)


SOURCE_WORK = r"""
set -e
make -s clean
make -s
./prog
touch "$BASE/work/new"
mkdir "$BASE/work/d"
mv "$BASE/work/new" "$BASE/work/d/moved"
ln -s moved "$BASE/work/d/link"
chmod 600 "$BASE/work/d/moved"
stat -c '%n %a %s %F' "$BASE/work/d/moved" "$BASE/work/d/link"
echo text > "$BASE/work/d/link"
cat "$BASE/work/d/moved"
rm -r "$BASE/work/d"
ls "$BASE/work"
/bin/pwd
"""


def test_work_in_a_bind_source_by_its_own_paths(tmp_path):
    """The work lies in a bind's source and is named by its host paths
    (make run there, gcc's temporary files in $TMPDIR there, files made,
    moved and removed by absolute paths): the same files as natively, and
    the kernel runs those calls.  A layer's files are at their own paths
    in the view too, so only the calls that keep a name for the module
    (chdir, exec) and what the shim leaves to the core reach it: 12 calls
    here, 87 when a layer's files were all the module's (and 424 in make
    -j2 of the benchmark's project from /tmp with /tmp bound elsewhere,
    gcc's temporary files among them; 3 now)."""
    work = tmp_path / "work"
    (tmp_path / "tmp").mkdir()
    work.mkdir()
    for i in range(3):
        (work / f"f{i}.c").write_text(f"int f{i}(void) {{ return {i}; }}\n")
    (work / "main.c").write_text(
        "#include <stdio.h>\nint f0(void), f1(void), f2(void);\n"
        "int main(void) { printf(\"%d\\n\", f0() + f1() + f2()); return 0; }\n")
    (work / "Makefile").write_text(
        "prog: f0.o f1.o f2.o main.o\n\t$(CC) -o $@ $^\n\n"
        "clean:\n\trm -f prog *.o\n")
    env = {"TMPDIR": str(tmp_path / "tmp")}
    native = sh(SOURCE_WORK, base=tmp_path, env=env, cwd=work)
    assert b"\n3\n" in b"\n" + native.stdout, native.stderr
    log = tmp_path.parent / f"{tmp_path.name}.log"
    view = sh(SOURCE_WORK, "-b", f"{tmp_path}:{TOP}/b", "-vv", "--log", str(log), base=tmp_path, env=env,
              cwd=work)
    same(native, view)
    st = core_stats(log)
    assert st["to_python"] < 20, st
    # the same files at the mount
    seen = run_view(["ls", f"{TOP}/b/work"], "-b", f"{tmp_path}:{TOP}/b")
    assert seen.stdout.decode().split() == sorted(os.listdir(work)), seen


RAW_OPENS = r"""
import ctypes, fcntl, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
base = sys.argv[1]


def raw_open(path, flags):
    # not through libc's open: as ld.so, fopen or opendir open, where the
    # preloaded shim cannot see it
    fd = libc.syscall(257, -100, path.encode(), flags, 0)
    return fd if fd >= 0 else -ctypes.get_errno()


CASES = [("f", os.O_RDONLY), ("f", os.O_RDONLY | os.O_CLOEXEC), ("f", os.O_RDONLY | os.O_NONBLOCK),
         ("d", os.O_RDONLY | os.O_DIRECTORY), ("f", os.O_RDONLY | os.O_DIRECTORY),
         ("link", os.O_RDONLY), ("link", os.O_RDONLY | os.O_NOFOLLOW), ("missing", os.O_RDONLY),
         ("f", os.O_PATH), ("d/g", os.O_RDONLY | os.O_NOATIME), ("fifo", os.O_RDONLY | os.O_NONBLOCK),
         ("f", os.O_WRONLY | os.O_APPEND), ("new", os.O_WRONLY | os.O_CREAT)]
for name, flags in CASES * 3:
    fd = raw_open(f"{base}/{name}", flags)
    if fd < 0:
        print(name, flags, os.strerror(-fd))
        continue
    fl = fcntl.fcntl(fd, fcntl.F_GETFL) & ~0o100000      # O_LARGEFILE is the kernel's to add
    data = b""
    if not flags & (os.O_DIRECTORY | os.O_PATH | os.O_WRONLY) and name != "fifo":
        data = os.pread(fd, 100, 0)
    st = os.fstat(fd)
    print(name, flags, oct(fl), not os.get_inheritable(fd), data, os.readlink(f"/proc/self/fd/{fd}")[len(base):],
          st.st_ino == os.stat(f"{base}/{name}", follow_symlinks=False).st_ino)
    os.close(fd)
"""


def test_opens_the_shim_cannot_see_below_a_bind(tmp_path):
    """Opens made past libc's open (ld.so's, fopen's, opendir's: here raw
    syscalls) of files in a bind mount reach the core's seccomp listener,
    which cannot rewrite the path to the host's.  An open for reading of a
    regular file or directory is opened by the core and handed to the
    program (SECCOMP_IOCTL_NOTIF_ADDFD): the same flags, close-on-exec,
    data, inode and /proc/self/fd name as natively, and no ptrace stop.
    Everything else (a symlink with O_NOFOLLOW, a FIFO, a write, a
    creation, a missing name) goes the usual road, with the kernel's
    answers."""
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "f").write_text("file f\n")
    (src / "d" / "g").write_text("file g\n")
    os.symlink("f", src / "link")
    os.mkfifo(src / "fifo")
    native = run_native([PY, "-c", RAW_OPENS, str(src)])
    assert native.returncode == 0, native.stderr.decode()
    out = native.stdout.decode()
    assert "f 0 0o0 False b'file f\\n' /f True" in out and "link 131072 Too many levels of symbolic links" in out, out
    for p in ("new",):
        os.unlink(src / p)
    log = tmp_path / "log"
    no_top()
    view = run_view([PY, "-c", RAW_OPENS, f"{TOP}/m"], "-b", f"{src}:{TOP}/m", "-vv", "--log", str(log))
    no_top()
    assert (view.returncode, view.stdout, view.stderr) == (0, native.stdout, native.stderr)
    st = core_stats(log)
    # 6 kinds of open served so, 3 times each: d, f (3 flag sets), the link
    # followed, d/g; O_PATH goes on (the kernel hands no O_PATH file over)
    # (the others are moved on the ptrace road; readlink of /proc/self/fd/N
    # is the module's)
    assert st["notif_served"] >= 18 and st["fast_moved"] <= 21, st
