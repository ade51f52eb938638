"""Escapes: a program in a view tries to get out of it (run unseen by the
tracer, or reach into the hypervisor).  Each attempt is a C program of
tests/progs/escape_*.c, run in a view that virtualizes something (misc with a
fake release, so "still in the view" is visible as `release esc.1`), and
natively, where the same attempt must work (so a pass means the view stopped
it, not that the attempt was broken).

  (a) clone(CLONE_UNTRACED): the core clears the flag; the child stays traced
  (b) int $0x80 (i386 numbers) and the x32 ABI: ENOSYS in a view that
      virtualizes anything
  (c) clone3: ENOSYS in every view (libc falls back to clone);
      io_uring_*: ENOSYS when a module virtualizes paths or fds
  (d) ptrace and process_vm_readv/writev against the hypervisor: refused,
      and the hypervisor goes on serving the program
  (e) pidfd_open(hypervisor) + pidfd_getfd: refused
  (f) /proc/HYPERVISOR/mem: refused
  (g) i386 clone(CLONE_UNTRACED) in a view with no module yet, then a
      module loaded: the child must be in the view too
"""
import errno
import os
import sys
import subprocess
from pathlib import Path

import pytest

from conftest import UMVIEW, _env, run_native

ROOT = Path(__file__).resolve().parent.parent
MODS = str(ROOT / "tests" / "modules_for_tests.py")
GUARD = 60  # seconds: failure guard only
ENV = {"PYTHONPATH": f"{ROOT}:{ROOT / 'modules'}"}
MISC = ["-p", "misc,release=esc.1"]
REAL = os.uname().release


def run_view(cmd, *options, **kw):
    """conftest.run_view with this working tree's umview_py and modules first
    on the path, whatever the current directory."""
    from conftest import run_view as run
    return run(cmd, *options, env=ENV, timeout=GUARD, **kw)


def lines(res):
    return res.stdout.decode().splitlines()


def fields(res):
    """'name a b' lines -> {name: [a, b]}"""
    return {ln.split()[0]: ln.split()[1:] for ln in lines(res) if ln.strip()}


# ----------------------------------------------------------------------
# (a) CLONE_UNTRACED

def test_clone_untraced_native(progs):
    res = run_native([progs["escape_untraced"]])
    assert lines(res) == [f"child release {REAL} traced 0", f"parent release {REAL}"]


@pytest.mark.parametrize("options", [MISC, ["-S"] + MISC], ids=["misc", "trap-all"])
def test_clone_untraced_child_stays_in_view(progs, options):
    res = run_view([progs["escape_untraced"]], *options)
    assert lines(res) == ["child release esc.1 traced 1", "parent release esc.1"], res.stderr
    assert res.returncode == 0


def test_clone_untraced_in_empty_view(progs):
    # nothing virtualized, but the child must still be traced (a module
    # loaded later must reach it)
    res = run_view([progs["escape_untraced"]])
    assert lines(res) == [f"child release {REAL} traced 1", f"parent release {REAL}"], res.stderr


# ----------------------------------------------------------------------
# (b) i386 and x32 system calls

def test_int80_native(progs):
    res = run_native([progs["escape_int80"]])
    out = fields(res)
    assert out["int80-uname"] == ["0", REAL]
    assert out["int80-getpid"] == ["0", "match", "1"]


@pytest.mark.parametrize("options", [MISC, ["-S"] + MISC, ["-p", f"{MODS}:PathClaimer"] + MISC],
                         ids=["misc", "trap-all", "paths"])
def test_int80_refused_when_virtualizing(progs, options):
    res = run_view([progs["escape_int80"]], *options)
    assert lines(res) == [
        f"int80-uname -{errno.ENOSYS} -",
        f"int80-getpid -{errno.ENOSYS} match 0",
        f"x32-uname -1 {errno.ENOSYS}",
        "release esc.1",
    ], res.stderr
    assert res.returncode == 0


def test_int80_in_empty_view_works_as_natively(progs):
    native = run_native([progs["escape_int80"]])
    view = run_view([progs["escape_int80"]])
    assert view.stdout == native.stdout, view.stderr
    assert view.returncode == 0


# ----------------------------------------------------------------------
# (c) clone3 and io_uring

def test_clone3_native(progs):
    res = run_native([progs["escape_clone3"]])
    out = lines(res)
    # parent and child both print: their first lines may come in either order
    assert sorted(out[:2]) == sorted(["clone3 1 0", f"child release {REAL}"])
    assert out[2:] == ["thread ok", "spawn ok 0", f"release {REAL}"]


@pytest.mark.parametrize("options", [[], MISC, ["-S"], ["-p", f"{MODS}:PathClaimer"]],
                         ids=["empty", "misc", "trap-all", "paths"])
def test_clone3_enosys_in_every_view(progs, options):
    res = run_view([progs["escape_clone3"]], *options)
    release = "esc.1" if "-p" in options and MISC[1] in options else REAL
    assert lines(res) == [f"clone3 -1 {errno.ENOSYS}", "thread ok", "spawn ok 0",
                          f"release {release}"], res.stderr
    assert res.returncode == 0


def io_uring_native(progs):
    out = fields(run_native([progs["escape_iouring"]]))
    if out["io_uring_setup"] != ["1", "0"]:
        pytest.skip(f"io_uring is not available natively here: {out['io_uring_setup']}")
    return out


def test_io_uring_refused_when_paths_are_virtual(progs):
    native = io_uring_native(progs)
    assert native["io_uring_enter"] == ["-1", str(errno.EBADF)]
    res = run_view([progs["escape_iouring"]], "-p", f"{MODS}:PathClaimer", *MISC)
    assert lines(res) == [f"io_uring_setup -1 {errno.ENOSYS}", f"io_uring_enter -1 {errno.ENOSYS}",
                          f"io_uring_register -1 {errno.ENOSYS}", "release esc.1"], res.stderr
    assert res.returncode == 0


def test_io_uring_allowed_without_path_modules(progs):
    # misc virtualizes no path and no fd: nothing to bypass, io_uring works
    native = io_uring_native(progs)
    res = run_view([progs["escape_iouring"]], *MISC)
    out = fields(res)
    assert out["io_uring_setup"] == native["io_uring_setup"]
    assert out["release"] == ["esc.1"]


# ----------------------------------------------------------------------
# (d), (e), (f): attacks on the hypervisor

def run_in_view_with_pid(prog, *options):
    """Run prog in a view; returns (umview's pid, result)."""
    cmd = UMVIEW + list(options) + ["--", prog]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(ENV))
    try:
        out, err = proc.communicate(timeout=GUARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the view hung: {out!r} {err!r}")
    return proc.pid, subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture
def victim():
    """An ordinary process of ours, for the native runs."""
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            if f.read().strip() != "0":
                pytest.skip("Yama restricts ptrace here: the native attempts would fail anyway")
    except FileNotFoundError:
        pass
    proc = subprocess.Popen(["sleep", "600"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def ptrace_in_view(progs):
    return run_in_view_with_pid(progs["escape_ptrace"], *MISC)


def test_ptrace_attempts_work_natively(progs, victim):
    res = run_native([progs["escape_ptrace"], str(victim)])
    out = fields(res)
    assert out["target"] == [str(victim), "tasks", "1"]
    for key in ("seize", "attach"):
        assert out[key] == ["0", "0"], (key, out)
    assert out["seize-tasks"] == ["1/1", "0"]
    assert out["vm_readv"] == ["8", "0"] and out["vm_writev"] == ["8", "0"]
    assert out["vm_writev-tasks"] == ["1/1", "0"]
    assert out["pidfd_open"] == ["1", "0"] and out["pidfd_getfd"] == ["1", "0"]
    assert out["pidfd_getfd-threads"] == ["1/1", "0"]


def test_ptrace_and_process_vm_refused(ptrace_in_view):
    hv_pid, res = ptrace_in_view
    out = fields(res)
    target, _, ntasks = out["target"]
    assert int(target) == hv_pid, "the first process of a view should be the hypervisor's child"
    assert int(ntasks) >= 2  # the hypervisor's main thread and its tracer thread at least
    refused = {str(errno.EPERM), str(errno.ESRCH)}
    for key in ("seize", "attach", "vm_readv", "vm_writev"):
        assert out[key][0] == "-1" and out[key][1] in refused, (key, out)
    for key in ("seize-tasks", "vm_writev-tasks"):
        assert out[key][0] == f"0/{ntasks}" and out[key][1] in refused, (key, out)


def test_pidfd_getfd_refused(ptrace_in_view):
    _, res = ptrace_in_view
    out = fields(res)
    refused = {str(errno.EPERM), str(errno.ESRCH)}
    # pidfd_open itself may work; taking an fd through it must not
    if out["pidfd_open"] == ["1", "0"]:
        assert out["pidfd_getfd"][0] == "-1" and out["pidfd_getfd"][1] in refused, out
    ntasks = out["target"][2]
    assert out["pidfd_getfd-threads"][0] == f"0/{ntasks}", out


def test_hypervisor_serves_after_the_attempts(ptrace_in_view):
    _, res = ptrace_in_view
    assert lines(res)[-2:] == ["alive", "release esc.1"], res.stderr
    assert res.returncode == 0
    assert res.stderr == b""


def test_proc_mem_works_natively(progs, victim):
    out = fields(run_native([progs["escape_procmem"], str(victim)]))
    assert out["mem-open"] == ["1", "0"] and out["mem-read"] == ["8", "0"]


def test_proc_mem_of_hypervisor_refused(progs):
    # /proc/PID/mem reads and writes the hypervisor's memory like
    # process_vm_readv/writev.  The hypervisor makes itself non-dumpable,
    # which closes it to processes of the same (non-root) user; root's
    # CAP_SYS_PTRACE passes anyway (docs/design.md), so run as a user.
    import pwd
    import shutil

    from test_fakeroot import TEST_USER, UserRunner, _workdir

    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam(TEST_USER)
        except KeyError:
            subprocess.run(["useradd", "-m", TEST_USER], check=True, capture_output=True)
            pw = pwd.getpwnam(TEST_USER)
        workdir = _workdir(pw)
        runner = UserRunner(workdir, pw)
    else:
        from test_fakeroot import Runner
        workdir = _workdir()
        runner = Runner(workdir)
    try:
        prog = workdir / "escape_procmem"
        shutil.copy(progs["escape_procmem"], prog)
        prog.chmod(0o755)
        res = runner.view([str(prog)], *MISC, timeout=GUARD)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out = fields(res)
    assert out.get("release") == ["esc.1"], (res.returncode, res.stdout, res.stderr)
    hv_pid = out["target"][0]
    assert out["mem-open"][0] != "1", f"/proc/{hv_pid}/mem opened from inside the view: {out}"
    assert out["mem-read"][0] == "-1", out
    assert out["mem-open-rw"][0] != "1", out


# ----------------------------------------------------------------------
# (g) a child hidden before the first module is loaded

def test_i386_untraced_clone_before_insmod(progs):
    insmod = "umview-insmod misc release=late.1"
    res = run_view([progs["escape_late_i386"], insmod])
    out = lines(res)
    assert out[1:3] == ["insmod 0", "parent release late.1"], (out, res.stderr)
    if out[0] != "clone 1":
        # the view refused the i386 clone outright: no child, no escape
        assert out[0] == f"clone -{errno.ENOSYS}", out
        return
    assert out[3] == "child release late.1 traced 1", \
        f"an i386 clone(CLONE_UNTRACED) child escaped the view: {out}"
