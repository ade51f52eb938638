"""The module API end to end: the test modules of tests/modules_for_tests.py
loaded in real views (`-p tests/modules_for_tests.py:Class`), and module
logic checked without ptrace through umview_py.testing.FakeProcess.

- a module that raises: the program gets EIO, the view goes on, the
  traceback is on umview's stderr;
- an async handler that runs the call in the kernel and rewrites the result;
- a handler that fails a call with SyscallError;
- a handler blocked on purpose does not block the other processes.
"""
import errno
import os
import socket
import struct
import sys
from pathlib import Path

import pytest

from conftest import run_native

# The working tree's modules, not an installed copy elsewhere (an editable
# install may point at another checkout).
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "modules") not in sys.path:
    sys.path.insert(0, str(ROOT / "modules"))
from umview_py import Claims, Module
from umview_py.errors import ModuleError
from umview_py.testing import FakeProcess

import modules_for_tests as mft

MODS = str(Path(__file__).parent / "modules_for_tests.py")
PY = sys.executable
GUARD = 60  # seconds: a failure guard only (a blocked view must not hang the suite)

UNAME_ERRNO = """
import os
try:
    os.uname()
    print("uname ok")
except OSError as e:
    print("errno", e.errno)
"""


def run_view(cmd, *options, **kw):
    """conftest.run_view with this working tree's umview_py and modules first
    on the path, whatever the current directory."""
    from conftest import run_view as run
    return run(cmd, *options, env={"PYTHONPATH": f"{ROOT}:{ROOT / 'modules'}"}, **kw)


def mod(name, *opts):
    return ",".join([f"{MODS}:{name}", *opts])


def out(res):
    return res.stdout.decode()


# ----------------------------------------------------------------------
# real views

def test_raising_module_gives_eio_and_the_view_goes_on():
    res = run_view(["sh", "-c", f'"{PY}" -c \'{UNAME_ERRNO}\'; echo alive; '
                    f'"{PY}" -c \'{UNAME_ERRNO}\'; echo still alive'],
                   "-p", mod("Raiser"), timeout=GUARD)
    assert out(res) == "errno 5\nalive\nerrno 5\nstill alive\n", res.stderr.decode()
    assert res.returncode == 0
    err = res.stderr.decode()
    assert "Traceback" in err and "RuntimeError: boom" in err, err
    assert "raiser" in err  # the log names the module


def test_raising_module_does_not_affect_other_calls():
    # uname fails, everything else (exec, files, pipes) works as usual
    res = run_view(["sh", "-c", "uname -r; echo rc=$?; echo hello | tr a-z A-Z; cat /etc/hostname >/dev/null && echo read"],
                   "-p", mod("Raiser"), timeout=GUARD)
    lines = out(res).splitlines()
    assert lines == ["rc=1", "HELLO", "read"], (lines, res.stderr.decode())
    assert "Input/output error" in res.stderr.decode()


def test_async_raising_module_gives_eio_after_the_kernel_ran():
    res = run_view([PY, "-c", UNAME_ERRNO + "print('next')\n"], "-p", mod("AsyncRaiser"),
                   timeout=GUARD)
    assert out(res) == "errno 5\nnext\n", res.stderr.decode()
    assert res.returncode == 0
    assert "RuntimeError: async boom" in res.stderr.decode()


def test_async_kernel_call_and_result_rewrite():
    real = os.uname()
    res = run_view(["uname", "-r"], "-p", mod("KernelPeek"), timeout=GUARD)
    assert out(res) == f"peek-{real.release}\n", res.stderr.decode()
    # the other fields are the kernel's
    native = run_native(["uname", "-s", "-n", "-v", "-m"])
    view = run_view(["uname", "-s", "-n", "-v", "-m"], "-p", mod("KernelPeek"), timeout=GUARD)
    assert view.stdout == native.stdout
    assert view.stderr == b"" and view.returncode == 0


@pytest.mark.parametrize("then,expect", [
    ("release", "later-1\nlater-2\n"), ("errno", f"errno {errno.EPERM}\n"),
    ("raise", "errno 5\n"), ("kernel", f"{os.uname().release}\n")])
def test_plain_handler_finishing_in_trio(then, expect):
    """call.later: a plain handler hands the rest of the call to a trio task,
    whose answer (a value, an errno, a bug's EIO, or None: the kernel runs
    the call) is the program's; the view goes on."""
    script = ("import os\nfor i in range(2 if %r == 'release' else 1):\n"
              "    try:\n        print(os.uname().release)\n"
              "    except OSError as e:\n        print('errno', e.errno)\n") % then
    res = run_view([PY, "-c", script], "-p", mod("Later", f"then={then}"), timeout=GUARD)
    assert out(res) == expect, res.stderr.decode()
    assert res.returncode == 0
    assert ("RuntimeError: later boom" in res.stderr.decode()) == (then == "raise")


def test_async_kernel_call_passes_kernel_errors_through():
    # uname(1): the kernel says EFAULT, the module passes it on
    script = ("import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); "
              "r = libc.syscall(63, ctypes.c_void_p(1)); print(r, ctypes.get_errno())")
    native = run_native([PY, "-c", script])
    view = run_view([PY, "-c", script], "-p", mod("KernelPeek"), timeout=GUARD)
    assert out(native) == f"-1 {errno.EFAULT}\n"
    assert view.stdout == native.stdout, view.stderr.decode()


def test_syscallerror_fails_the_call():
    before = socket.gethostname()
    # the name set is the current one: even if the module failed to deny the
    # call, the host would not be renamed
    script = ("import socket\n"
              "try:\n"
              f"    socket.sethostname({before!r}); print('set')\n"
              "except OSError as e:\n"
              "    print('errno', e.errno)\n")
    res = run_view([PY, "-c", script], "-p", mod("Deny"), timeout=GUARD)
    assert out(res) == f"errno {errno.EACCES}\n", res.stderr.decode()
    assert res.returncode == 0
    assert res.stderr == b""  # a SyscallError is no module bug: nothing logged
    assert socket.gethostname() == before


def test_blocked_handler_does_not_block_other_processes(tmp_path):
    # uname waits (in its handler) until another process calls sethostname,
    # and sethostname waits until a uname is blocked: both orders need the
    # hypervisor to serve the second process while the first one's handler
    # is blocked.  An unrelated process runs meanwhile, too.
    outfile = tmp_path / "uname.out"
    res = run_view(["sh", "-c", f"uname -r > {outfile} & "
                    "echo others run; ls / >/dev/null && echo ls ran; "
                    "hostname released-42; wait; echo waited"],
                   "-p", mod("SlowUname"), timeout=GUARD)
    assert out(res) == "others run\nls ran\nwaited\n", res.stderr.decode()
    assert outfile.read_text() == "released-42\n"
    # the other order: sethostname first, uname later
    res = run_view(["sh", "-c", "hostname released-43 & uname -r; wait"],
                   "-p", mod("SlowUname"), timeout=GUARD)
    assert out(res) == "released-43\n", res.stderr.decode()


def test_path_claimer_lets_calls_through(tmp_path):
    (tmp_path / "f").write_text("content\n")
    res = run_view(["cat", str(tmp_path / "f")], "-p", mod("PathClaimer"), timeout=GUARD)
    assert out(res) == "content\n" and res.returncode == 0, res.stderr.decode()


def test_module_from_file_errors():
    res = run_view(["true"], "-p", mod("Deny", "nosuch=1"), timeout=GUARD)
    assert res.returncode == 2
    assert "unknown option" in res.stderr.decode()
    res = run_view(["true"], "-p", f"{MODS}:NoSuchClass", timeout=GUARD)
    assert res.returncode != 0 and "NoSuchClass" in res.stderr.decode()
    res = run_view(["true"], "-p", f"{MODS}:UTS_LEN", timeout=GUARD)
    assert res.returncode != 0 and "not a umview_py.Module subclass" in res.stderr.decode()


# ----------------------------------------------------------------------
# without ptrace: the test modules

UTS = 65


def utsname(**fields):
    names = ("sysname", "nodename", "release", "version", "machine", "domainname")
    return b"".join(struct.pack(f"{UTS}s", fields.get(n, n).encode()) for n in names)


def field(raw, i):
    return raw[i * UTS:(i + 1) * UTS].split(b"\0")[0].decode()


def test_fake_raiser_raises():
    proc = FakeProcess()
    buf = proc.alloc(6 * UTS)
    with pytest.raises(RuntimeError, match="boom"):
        proc.call(mft.Raiser().uname, "uname", buf)


def test_fake_deny():
    proc = FakeProcess()
    name = proc.string("x")
    assert proc.call(mft.Deny().sethostname, "sethostname", name, 1) == -errno.EACCES


def test_fake_kernelpeek_rewrites_release():
    proc = FakeProcess()
    buf = proc.alloc(6 * UTS, utsname(release="1.2.3"))
    proc.kernel_results["uname"] = 0
    assert proc.call(mft.KernelPeek().uname, "uname", buf) == 0
    raw = proc.read(buf, 6 * UTS)
    assert field(raw, 2) == "peek-1.2.3"
    assert field(raw, 0) == "sysname" and field(raw, 3) == "version"


def test_fake_kernelpeek_passes_errors():
    proc = FakeProcess()
    proc.kernel_results["uname"] = -errno.EFAULT
    assert proc.call(mft.KernelPeek().uname, "uname", 1) == -errno.EFAULT


def test_claims_follow_handlers():
    assert mft.Raiser().claims().syscalls == {"uname"}
    assert mft.Deny().claims().syscalls == {"sethostname"}
    assert mft.SlowUname().claims().syscalls == {"uname", "sethostname"}
    assert mft.PathClaimer().claims().syscalls == {"openat"}

    class Empty(Module):
        name = "empty"

    assert Empty().claims() == Claims()
    with pytest.raises(ModuleError, match="unknown option"):
        mft.Deny(foo="1")


# ----------------------------------------------------------------------
# without ptrace: misc

from umview_modules.misc import Misc  # noqa: E402

NS = 1_000_000_000


def real_fields():
    with open("/proc/sys/kernel/domainname") as f:
        return tuple(os.uname()) + (f.read().strip(),)


def fake_uname(module, proc=None):
    proc = proc or FakeProcess()
    buf = proc.alloc(6 * UTS)
    assert proc.call(module.uname, "uname", buf) == 0
    raw = proc.read(buf, 6 * UTS)
    return tuple(field(raw, i) for i in range(6))


def test_misc_uname_defaults_to_the_host():
    assert fake_uname(Misc()) == real_fields()


def test_misc_uname_overrides():
    m = Misc(sysname="S", release="9.9.9", version="#1 V", machine="m68k", nodename="box",
             domainname="dom")
    assert fake_uname(m) == ("S", "box", "9.9.9", "#1 V", "m68k", "dom")
    # hostname= is an alias of nodename=
    assert fake_uname(Misc(hostname="alias"))[1] == "alias"
    assert fake_uname(Misc(hostname="alias", nodename="node"))[1] == "node"
    # a field of 64 bytes fits (with its NUL), 65 do not
    assert fake_uname(Misc(release="r" * 64))[2] == "r" * 64
    with pytest.raises(ModuleError, match="release"):
        Misc(release="r" * 65)


def test_misc_uname_bad_pointer():
    proc = FakeProcess()
    assert proc.call(Misc().uname, "uname", 0x1) == -errno.EFAULT
    short = proc.alloc(100)  # too small for struct utsname
    assert proc.call(Misc().uname, "uname", short) == -errno.EFAULT


def test_misc_sethostname_and_setdomainname():
    m = Misc()
    proc = FakeProcess()
    name = proc.string("newname")
    assert proc.call(m.sethostname, "sethostname", name, 7) == 0
    # the length counts, not the NUL: "newn"
    assert proc.call(m.setdomainname, "setdomainname", name, 4) == 0
    u = fake_uname(m, proc)
    assert u[1] == "newname" and u[5] == "newn"
    assert u[2] == os.uname().release
    assert proc.call(m.sethostname, "sethostname", name, 65) == -errno.EINVAL
    assert proc.call(m.sethostname, "sethostname", name, -1 & (2**64 - 1)) == -errno.EINVAL
    assert proc.call(m.sethostname, "sethostname", 0x1, 5) == -errno.EFAULT
    assert fake_uname(m, proc)[1] == "newname"  # failed calls changed nothing


def test_misc_sethostname_length_is_an_int():
    # The kernel's sethostname(char *name, int len) uses the low 32 bits of
    # the length: (1 << 32) | 3 is 3 for it.
    m = Misc()
    proc = FakeProcess()
    name = proc.string("abcdef")
    assert proc.call(m.sethostname, "sethostname", name, (1 << 32) | 3) == 0
    assert fake_uname(m, proc)[1] == "abc"
    # and with a bad pointer: EFAULT (the length is valid), not EINVAL
    assert proc.call(m.sethostname, "sethostname", 0x1, (1 << 32) | 3) == -errno.EFAULT


def test_misc_claims():
    c = Misc().claims()
    assert c.syscalls == {"uname", "sethostname", "setdomainname"}
    assert not c.no_vdso and not c.arg_in
    c = Misc(time_offset="86400").claims()
    assert {"clock_gettime", "gettimeofday", "time"} <= c.syscalls
    assert c.no_vdso
    idx, clocks = c.arg_in["clock_gettime"]
    assert idx == 0 and set(clocks) == {0, 5, 8, 11}
    assert Misc(time_offset="0").claims().no_vdso is False


def test_misc_options():
    assert Misc(time_offset="-1.5").offset_ns == -1_500_000_000
    with pytest.raises(ModuleError, match="time_offset"):
        Misc(time_offset="soon")
    with pytest.raises(ModuleError, match="unknown option"):
        Misc(color="blue")
    assert "release=1.0" in Misc(release="1.0").describe()
    assert Misc().describe() == ""


def bracket(fn, offset_s):
    import time
    before = time.time_ns()
    value = fn()
    after = time.time_ns()
    return before + offset_s * NS, value, after + offset_s * NS


def test_misc_clock_gettime_offset():
    m = Misc(time_offset="86400")
    proc = FakeProcess()
    ts = proc.alloc(16)
    lo, rc, hi = bracket(lambda: proc.call(m.clock_gettime, "clock_gettime", 0, ts), 86400)
    assert rc == 0
    sec, nsec = struct.unpack("<qq", proc.read(ts, 16))
    assert 0 <= nsec < NS
    assert lo <= sec * NS + nsec <= hi
    # negative offsets and the other realtime clocks
    m = Misc(time_offset="-86400")
    for clock in (5, 11):  # REALTIME_COARSE, TAI
        lo, rc, hi = bracket(lambda: proc.call(m.clock_gettime, "clock_gettime", clock, ts), -86400)
        assert rc == 0
        sec, nsec = struct.unpack("<qq", proc.read(ts, 16))
        assert lo - NS <= sec * NS + nsec <= hi + NS  # coarse lags a tick; TAI ~ UTC here
    # monotonic: not ours (None: the kernel answers)
    assert proc.call(m.clock_gettime, "clock_gettime", 1, ts) is None
    # a bad pointer
    assert proc.call(m.clock_gettime, "clock_gettime", 0, 0x1) == -errno.EFAULT


def test_misc_clock_realtime_alarm_like_the_kernel():
    # CLOCK_REALTIME_ALARM (8) needs an RTC; without one the kernel says
    # EINVAL.  A module must answer what the kernel would, never raise.
    import time
    m = Misc(time_offset="10")
    proc = FakeProcess()
    ts = proc.alloc(16)
    try:
        time.clock_gettime_ns(8)
        expected = 0
    except OSError as exc:
        expected = -exc.errno
    assert proc.call(m.clock_gettime, "clock_gettime", 8, ts) == expected


def test_misc_gettimeofday_and_time():
    m = Misc(time_offset="3600")
    proc = FakeProcess()
    tv = proc.alloc(16)
    tz = proc.alloc(8, b"\xff" * 8)
    lo, rc, hi = bracket(lambda: proc.call(m.gettimeofday, "gettimeofday", tv, tz), 3600)
    assert rc == 0
    sec, usec = struct.unpack("<qq", proc.read(tv, 16))
    assert 0 <= usec < 1_000_000
    assert lo // 1000 <= sec * 1_000_000 + usec <= hi // 1000
    assert proc.read(tz, 8) == b"\0" * 8
    assert proc.call(m.gettimeofday, "gettimeofday", 0x1, 0) == -errno.EFAULT
    assert proc.call(m.gettimeofday, "gettimeofday", 0, 0) == 0
    lo, sec, hi = bracket(lambda: proc.call(m.time, "time", 0), 3600)
    assert lo // NS <= sec <= hi // NS
    t = proc.alloc(8)
    lo, sec, hi = bracket(lambda: proc.call(m.time, "time", t), 3600)
    assert lo // NS <= sec <= hi // NS
    assert struct.unpack("<q", proc.read(t, 8))[0] == sec
    assert proc.call(m.time, "time", 0x1) == -errno.EFAULT


def test_widening_while_the_parent_waits():
    # Each umview-insmod widens the filter of every process of the view,
    # among them the shell, blocked in wait4 for that very command, which
    # gets its SIGCHLD just then.  The signal must be delivered with the
    # shell's own registers, not the injected seccomp() call's (it crashed).
    names = ["getppid", "getpgrp", "getsid", "sched_yield", "getpgid", "getpriority", "umask",
             "times", "sysinfo", "getrusage", "getcpu", "getitimer", "sched_getscheduler",
             "sched_getparam", "getresuid", "getresgid", "getgroups", "capget", "personality",
             "getrlimit", "prlimit64", "sched_getaffinity", "get_robust_list", "gettid",
             "rt_sigpending"]
    steps = "; ".join(f"umview-insmod {MODS}:Claimer syscall={n} && umview-rmmod claimer || exit 9"
                      for n in names)
    res = run_view(["sh", "-c", f"{steps}; echo survived"])
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert res.stdout == b"survived\n"


# ---------------------------------------------------------------- the C stat table

def test_stat_table_lists_and_unlists_keys():
    """Module.stat_listed keeps the C core's table of the files whose stat
    calls must reach the module (Claims.stat_owner); it grows, and deleted
    slots are reused without losing the keys behind them."""
    from umview_py._native import lib

    class Lister(Module):
        name = "lister"

    m = Lister()
    m.stat_listed((1, 1), False)           # unlisting before any table: nothing to do
    assert m._stat_table < 0
    keys = [(dev, ino) for dev in (2049, 64768) for ino in range(1, 3001)]
    for k in keys:
        m.stat_listed(k)
    table = m.stat_table()
    assert all(lib.umv_stat_table_has(table, *k) == 1 for k in keys)
    assert lib.umv_stat_table_has(table, 2049, 3001) == 0
    for k in keys[::2]:
        m.stat_listed(k, False)
    m.stat_listed((7, 7), False)           # never listed
    assert [lib.umv_stat_table_has(table, *k) for k in keys[:6]] == [0, 1, 0, 1, 0, 1]
    for k in keys[:100:2]:                 # back into deleted slots
        m.stat_listed(k)
    m.stat_listed(keys[1])                 # twice: still one entry
    m.stat_listed(keys[1], False)
    assert lib.umv_stat_table_has(table, *keys[1]) == 0
    assert sum(lib.umv_stat_table_has(table, *k) for k in keys) == len(keys) // 2 + 50 - 1
    m._free_stat_table()
    assert lib.umv_stat_table_has(table, *keys[3]) == 0 and m._stat_table == -1


def test_host_stat_beneath(tmp_path):
    """umview_py.host.stat_beneath: one walk that refuses what would need
    the long way (a symlink, '..' above the directory)."""
    import errno as _errno
    from umview_py.host import stat_beneath
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    (tmp_path / "d" / "l").symlink_to("f")
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        st = os.lstat(tmp_path / "d" / "f")
        assert stat_beneath(fd, "d/f") == (st.st_mode, st.st_ino, st.st_dev, st.st_nlink)
        assert stat_beneath(fd, "d/l")[0] & 0o170000 == 0o120000  # the link itself
        assert stat_beneath(fd, "d/l/x") == -_errno.ELOOP          # through a symlink
        assert stat_beneath(fd, "../x") == -_errno.EXDEV           # above the directory
        assert stat_beneath(fd, "d/missing") == -_errno.ENOENT
    finally:
        os.close(fd)
