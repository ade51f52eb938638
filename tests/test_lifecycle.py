"""The life of a view, seen from outside: exit statuses, errors of the
command line, background children, a hypervisor killed mid-run, job control
under a terminal, and the in-view commands.

No test sleeps to wait for something: processes tell the test what they are
doing through FIFOs, and timeouts are only failure guards.  (One check is a
negative one - "umview has not exited yet" - and needs a short bounded wait;
it is marked where it is.)"""
import errno
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import UMVIEW, _env, assert_same, core_stats, run_native, run_view

GUARD = 60  # seconds: failure guards only


# ----------------------------------------------------------------------
# helpers

def umview(*options, cmd):
    return UMVIEW + list(options) + ["--"] + list(cmd)


def read_fifo(path, until=b"\n", timeout=GUARD):
    """Open a FIFO for reading without blocking on the open, then read until
    `until` has arrived (or EOF after some data).  Fails after `timeout`."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while until not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"nothing from {path} within {timeout}s (got {data!r})")
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                if data:
                    break
                # no writer yet (Linux reports no EOF before a first writer),
                # or a writer came and went without writing
                raise AssertionError(f"EOF from {path} without data")
            data += chunk
    finally:
        os.close(fd)
    return data


def wait_eof(path, timeout=GUARD):
    """Block until the writers of the FIFO have come and closed it.  (On
    Linux, a reader that opened without blocking is not woken by the absence
    of writers, only by a writer closing after the reader opened.)"""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{path} not closed by its writers within {timeout}s")
            r, _, _ = select.select([fd], [], [], left)
            if r and not os.read(fd, 4096):
                return
    finally:
        os.close(fd)


def write_fifo(path, data, timeout=GUARD):
    """Open a FIFO for writing (it must have a reader) and write."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            # no reader yet: this is a failure guard, the reader is expected
            # to be there already in every use below
            time.sleep(0.01)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def gone(pid):
    """True if pid no longer runs (it does not exist or is a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_gone(pids, timeout=10):
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if not gone(p)}
        if alive:
            time.sleep(0.01)  # failure guard loop: the kernel kills them at once
    return alive


# ----------------------------------------------------------------------
# exit statuses

@pytest.mark.parametrize("mode", [[], ["-S"]], ids=["empty", "trap"])
@pytest.mark.parametrize("cmd,status", [
    (["sh", "-c", "exit 3"], 3),
    (["sh", "-c", "kill -KILL $$"], 128 + 9),
    (["sh", "-c", "kill -SEGV $$"], 128 + 11),
    (["python3", "-c", "import ctypes; ctypes.string_at(0)"], 128 + 11),  # a real fault
    (["sh", "-c", "exec 1>&-; exit 0"], 0),
], ids=["exit3", "sigkill", "sigsegv-sent", "sigsegv-fault", "exit0"])
def test_exit_status(cmd, status, mode):
    r = run_view(cmd, *mode)
    assert r.returncode == status, r.stderr


# ----------------------------------------------------------------------
# exec stops, only where they have work (native/umvcore.c, exec_wanted)

@pytest.mark.parametrize("mode", [[], ["--time-offset", "3600"], ["-S"]], ids=["empty", "no-vdso", "trap"])
@pytest.mark.parametrize("how", ["thread", "fork"])
def test_exec_from_a_thread(progs, mode, how):
    """A thread other than the leader execs (its tid vanishes with no exit
    of its own), or the child of a threaded process execs: the view ends
    with the program, with its output and status."""
    cmd = [progs["thread_exec"], "echo from sh; exit 3"] + (["fork"] if how == "fork" else [])
    native = run_native(cmd)
    assert native.returncode == (13 if how == "fork" else 3)
    assert_same(native, run_view(cmd, *mode, timeout=60))


LOOP = "i=0; while [ $i -lt 30 ]; do /bin/true; i=$((i+1)); done"


def test_execs_of_single_threaded_programs_make_no_stop(tmp_path):
    """30 runs of /bin/true from sh: the fork event, the child's first stop
    and the SIGCHLD are ptrace stops, the exec is not; under a view that
    hides the vDSO it is (the new image's auxv is edited there)."""
    counts = {}
    for kind, options in (("plain", []), ("no-vdso", ["--time-offset", "3600"])):
        log = tmp_path / f"{kind}.log"
        r = run_view(["sh", "-c", LOOP], "-vv", "--log", str(log), *options)
        assert r.returncode == 0, r.stderr
        counts[kind] = core_stats(log)["stops"]
    assert counts["plain"] <= 3 * 30 + 8, counts
    assert counts["no-vdso"] >= 4 * 30, counts


def test_command_not_found():
    r = run_view(["no-such-command-umview-test"])
    assert r.returncode == 127
    assert r.stdout == b""
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and "no-such-command-umview-test" in lines[0], r.stderr


def test_command_not_executable(tmp_path):
    f = tmp_path / "script"
    f.write_text("#!/bin/sh\necho ran\n")
    f.chmod(0o644)
    r = run_view([str(f)])
    assert r.returncode == 126
    assert r.stdout == b""
    assert len(r.stderr.decode().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("options", [
    ["--bogus"],
    ["-p", "nosuch"],
    ["-p", "misc,nosuch=1"],
    ["-p", "misc,time_offset=notanumber"],
], ids=["bad-option", "unknown-module", "bad-module-option", "bad-module-value"])
def test_bad_command_line(options, tmp_path):
    marker = tmp_path / "FILE"
    r = subprocess.run(umview(*options, cmd=["touch", str(marker)]), env=_env(),
                       capture_output=True, timeout=GUARD)
    assert r.returncode == 2, r.stderr
    assert r.stdout == b""
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("umview: "), r.stderr
    assert not marker.exists(), "the command ran despite the bad command line"


def test_version():
    from umview_py import __version__
    r = subprocess.run(UMVIEW + ["--version"], env=_env(), capture_output=True, timeout=GUARD)
    assert r.returncode == 0
    assert r.stdout.decode().strip() == f"umview {__version__}"


def test_help():
    r = subprocess.run(UMVIEW + ["--help"], env=_env(), capture_output=True, timeout=GUARD)
    assert r.returncode == 0
    out = r.stdout.decode()
    assert out.startswith("usage: umview")
    assert "examples:" in out and "umview-insmod" in out and "--kill-on-exit" in out


def test_list_modules():
    r = subprocess.run(UMVIEW + ["--list-modules"], env=_env(), capture_output=True, timeout=GUARD)
    assert r.returncode == 0
    names = [line.split()[0] for line in r.stdout.decode().splitlines() if line.strip()]
    assert "misc" in names


def test_console_script_is_the_same_cli():
    script = Path(sys.executable).parent / "umview"
    r = subprocess.run([str(script), "--", "sh", "-c", "echo hi; exit 4"], env=_env(),
                       capture_output=True, timeout=GUARD)
    assert (r.returncode, r.stdout) == (4, b"hi\n")


# ----------------------------------------------------------------------
# background children: waited for by default, killed with --kill-on-exit

BG_SCRIPT = r"""
exec 4>"$D/main_alive"          # held by the main process only
sh -c 'echo $$ > "$D/bgfifo"; read x < "$D/go"; echo finished > "$D/out"' 4>&- &
read bgpid < "$D/bgfifo"        # the background child runs
echo $bgpid > "$D/bgpid"
exit 5
"""


def _start_bg(tmp_path, *options):
    for name in ("main_alive", "go", "bgfifo"):
        os.mkfifo(tmp_path / name)
    with open(tmp_path / "stderr", "wb") as err:
        return subprocess.Popen(umview(*options, cmd=["sh", "-c", BG_SCRIPT]),
                                env=_env({"D": str(tmp_path)}), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)


def _main_exited(proc, tmp_path):
    try:
        wait_eof(tmp_path / "main_alive")       # the main process has exited
    except AssertionError as exc:
        raise AssertionError(f"{exc}; umview status {proc.poll()}, its stderr: "
                             f"{(tmp_path / 'stderr').read_text()!r}") from None


def _bg_pid(tmp_path):
    # written by the main process before it exits, so complete once
    # main_alive has been closed
    return int((tmp_path / "bgpid").read_text())


def test_waits_for_background_children(tmp_path):
    proc = _start_bg(tmp_path)
    try:
        _main_exited(proc, tmp_path)
        bgpid = _bg_pid(tmp_path)
        # Negative check, the one bounded wait of this file: without waiting,
        # umview would exit within milliseconds of its main process (and the
        # kernel would then kill the background child, its tracee).
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)
        assert not gone(bgpid)
        write_fifo(tmp_path / "go", b"go\n")   # let the background child finish
        proc.wait(timeout=GUARD)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 5, (tmp_path / "stderr").read_text()
    assert (tmp_path / "out").read_text() == "finished\n"
    assert gone(bgpid)


def test_kill_on_exit_kills_background_children(tmp_path):
    proc = _start_bg(tmp_path, "--kill-on-exit")
    try:
        _main_exited(proc, tmp_path)
        proc.wait(timeout=GUARD)  # returns without any help
        bgpid = _bg_pid(tmp_path)
    finally:
        proc.kill()
        proc.wait()
    left = wait_gone([bgpid])
    for p in left:  # clean up before failing
        os.kill(p, signal.SIGKILL)
    assert proc.returncode == 5, (tmp_path / "stderr").read_text()
    assert not left, "background child still running after --kill-on-exit"
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------
# the hypervisor killed with SIGKILL: every process of the view dies

TREE_SCRIPT = r"""
sleep 1000 & a=$!
sh -c 'sleep 1000 & b=$!; echo $$ $b > "$D/inner"; wait' & i=$!
python3 -c 'import threading, time; [threading.Thread(target=time.sleep, args=(1000,)).start() for _ in range(3)]' & t=$!
read inner < "$D/inner"
echo $$ $a $i $t $inner > "$D/pids"
wait
"""


@pytest.mark.parametrize("mode", [[], ["-S"]], ids=["empty", "trap"])
def test_hypervisor_killed(tmp_path, mode):
    os.mkfifo(tmp_path / "pids")
    os.mkfifo(tmp_path / "inner")
    proc = subprocess.Popen(umview(*mode, cmd=["sh", "-c", TREE_SCRIPT]),
                            env=_env({"D": str(tmp_path)}), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pids = [int(p) for p in read_fifo(tmp_path / "pids").split()]
        assert len(pids) == 6
        assert not [p for p in pids if gone(p)]
        proc.kill()
        proc.wait(timeout=GUARD)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    left = wait_gone(pids)
    for p in left:  # clean up before failing
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"processes of the view survived their hypervisor: {sorted(left)}"


# ----------------------------------------------------------------------
# job control in an interactive bash under a pseudo-terminal

class Pty:
    def __init__(self, argv, env):
        pid, fd = pty.fork()
        if pid == 0:  # child: exec at once (the parent may have threads)
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.buf = b""
        self.log = b""

    def send(self, data: bytes):
        os.write(self.fd, data)

    def expect(self, pattern, timeout=GUARD):
        """Read until the regex appears; consume the output up to its end."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{pattern!r} not seen within {timeout}s; output:\n"
                                     f"{self.log.decode(errors='replace')}")
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: the slave side is closed
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"EOF before {pattern!r}; output:\n"
                                         f"{self.log.decode(errors='replace')}")
                self.buf += chunk
                self.log += chunk

    def drain_and_wait(self, timeout=GUARD):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return status
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                self.log += chunk
        raise AssertionError("umview did not exit; output:\n" + self.log.decode(errors="replace"))

    def close(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


@pytest.mark.parametrize("mode", [[], ["-S"]], ids=["empty", "trap"])
def test_job_control_in_interactive_bash(mode):
    env = _env({"PS1": "PROMPT> ", "TERM": "dumb", "HISTFILE": "/dev/null"})
    argv = umview(*mode, cmd=["bash", "--norc", "--noprofile", "-i"])
    t = Pty(argv, env)
    try:
        t.expect(rb"PROMPT> ")
        # The job says when it runs in the foreground (bash hands it the
        # terminal before exec): its echo reads RE""ADY, its output READY.
        # After fg it reads a line from the terminal, which it can only do
        # in the foreground; then it becomes `sleep 100`.
        t.send(b"sh -c 'echo RE\"\"ADY; read x; echo GOT-$x; exec sleep 100'\n")
        t.expect(rb"\nREADY")
        t.send(b"\x1a")                      # Ctrl-Z
        t.expect(rb"Stopped")
        t.expect(rb"PROMPT> ")
        t.send(b"jobs\n")
        t.expect(rb"\[1\]\+\s+Stopped\s+sh -c")
        t.expect(rb"PROMPT> ")
        t.send(b"fg\n")
        t.expect(rb"sh -c")                  # bash names the job it resumes
        t.send(b"hello\n")
        t.expect(rb"GOT-hello")
        t.send(b"\x03")                      # Ctrl-C: kills the sleep
        t.expect(rb"PROMPT> ")
        t.send(b"echo rc=$?\n")
        t.expect(rb"rc=130")
        t.expect(rb"PROMPT> ")
        t.send(b"exit 7\n")
        status = t.drain_and_wait()
    finally:
        t.close()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7, t.log.decode(errors="replace")


def test_umview_as_a_job_of_an_interactive_bash():
    """The other side: umview itself is the job.  Ctrl-Z stops the program in
    the view; umview must stop too so that the shell sees a stopped job, and
    fg must resume both; Ctrl-C kills the program and umview exits 130."""
    env = _env({"PS1": "PROMPT> ", "TERM": "dumb", "HISTFILE": "/dev/null",
                "UMV": " ".join(UMVIEW)})
    t = Pty(["/bin/bash", "--norc", "--noprofile", "-i"], env)
    try:
        t.expect(rb"PROMPT> ")
        t.send(b"$UMV -- sh -c 'echo RE\"\"ADY; read x; echo GOT-$x; exec sleep 100'\n")
        t.expect(rb"\nREADY")
        t.send(b"\x1a")                      # Ctrl-Z
        t.expect(rb"Stopped")
        t.expect(rb"PROMPT> ")
        t.send(b"jobs\n")
        t.expect(rb"\[1\]\+\s+Stopped\s+\$UMV")
        t.expect(rb"PROMPT> ")
        t.send(b"fg\n")
        t.expect(rb"\$UMV")
        t.send(b"hello\n")
        t.expect(rb"GOT-hello")
        t.send(b"\x03")                      # Ctrl-C
        t.expect(rb"PROMPT> ")
        t.send(b"echo rc=$?\n")
        t.expect(rb"rc=130")
        t.expect(rb"PROMPT> ")
        t.send(b"exit 0\n")
        status = t.drain_and_wait()
    finally:
        t.close()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# ----------------------------------------------------------------------
# in-view commands

def test_insmod_lsmod_rmmod_in_view():
    real = os.uname().release
    assert real != "1.2.3"
    r = run_view(["sh", "-c", "umview-insmod misc release=1.2.3; uname -r; umview-lsmod; "
                  "umview-rmmod misc; uname -r; umview-lsmod"])
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "1.2.3"
    assert lines[1].split() == ["Module", "View", "Options"]
    assert lines[2].split()[0] == "misc" and "release=1.2.3" in lines[2]
    assert lines[3] == real
    assert lines[4].split() == ["Module", "View", "Options"]
    assert len(lines) == 5  # no module left after rmmod


def test_in_view_command_outside_a_view():
    script = Path(sys.executable).parent / "umview-lsmod"
    assert script.exists()
    r = subprocess.run([str(script)], env=_env(), capture_output=True, timeout=GUARD)
    assert r.returncode == 1
    assert r.stdout == b""
    assert r.stderr.decode().strip().endswith("not inside a view"), r.stderr


LOOP_PY = r"""
import os, sys, threading, time

seen = {}
started = threading.Event()


def watch(who, first):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = os.uname().release
        if r == "7.7.7":
            seen[who] = (first, r)
            return
    seen[who] = (first, None)


def thread_main():
    first = os.uname().release
    started.set()
    watch("thread", first)


# a process (and a thread of it) that was already running, and had already
# called uname, when the module was loaded
t = threading.Thread(target=thread_main)
t.start()
started.wait()
first = os.uname().release
with open(os.environ["D"] + "/ready", "w") as f:
    f.write(first + "\n")
watch("main", first)
t.join()
for who in sorted(seen):
    print(who, *seen[who])
sys.exit(0 if all(v[1] == "7.7.7" for v in seen.values()) else 1)
"""


@pytest.mark.parametrize("mode", [[], ["-S"]], ids=["empty", "trap"])
def test_module_reaches_running_process(tmp_path, mode):
    (tmp_path / "loop.py").write_text(LOOP_PY)
    os.mkfifo(tmp_path / "ready")
    script = ('python3 "$D/loop.py" & p=$!; read real < "$D/ready"; '
              'umview-insmod misc release=7.7.7; wait $p; echo "loop: $?"; uname -r')
    r = run_view(["sh", "-c", script], *mode, env={"D": str(tmp_path)}, timeout=GUARD)
    real = os.uname().release
    assert r.stdout.decode().splitlines() == [
        f"main {real} 7.7.7", f"thread {real} 7.7.7", "loop: 0", "7.7.7"], r.stderr
    assert r.returncode == 0
    assert r.stderr == b""


STOPPED_NEIGHBOUR = r"""
import os, signal, subprocess, sys, time, trio, umview_py
# A child of the script's process that is not in any view, stopped by job
# control while the view runs: the tracer's wait must pass over it.
other = subprocess.Popen(["sleep", "60"])
os.kill(other.pid, signal.SIGSTOP)

async def main():
    async with umview_py.View(modules=["misc"]) as view:
        await view.run(["true"])
        cpu = time.process_time()
        # an idle second in the view: the tracer must sleep through it, not
        # spin on the neighbour's stop (that would burn a CPU for a second)
        r = await view.run(["sh", "-c", "sleep 1; for i in 1 2 3; do uname -r; done"],
                           capture_output=True)
        print(r.returncode, r.stdout.decode().split())
        print("cpu", time.process_time() - cpu)

trio.run(main)
os.kill(other.pid, signal.SIGKILL)
print("neighbour", other.wait())
"""


def test_a_stopped_child_outside_the_view_is_passed_over():
    r = subprocess.run([sys.executable, "-c", STOPPED_NEIGHBOUR], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"0 {[os.uname().release] * 3}"
    assert float(lines[1].split()[1]) < 0.5, lines[1]
    assert lines[2].startswith("neighbour ")
