"""The misc module through real commands in real views: uname fields, the
host name (changed in the view only), and the wall-clock offset (seen by
dynamic and static programs alike; monotonic clocks untouched).

Time checks bracket the view's reading between native readings taken just
before and just after the run, shifted by the offset, with a second of slack
for truncation to whole seconds and coarse clocks."""
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from conftest import run_native

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DAY = 86400
GUARD = 60  # seconds: failure guard only


def run_view(cmd, *options, **kw):
    """conftest.run_view with this working tree's umview_py and modules first
    on the path, whatever the current directory."""
    from conftest import run_view as run
    return run(cmd, *options, env={"PYTHONPATH": f"{ROOT}:{ROOT / 'modules'}"}, timeout=GUARD, **kw)


def ok(res):
    assert res.returncode == 0, (res.returncode, res.stdout, res.stderr)
    assert res.stderr == b"", res.stderr.decode()
    return res.stdout.decode()


@pytest.fixture
def host_name_kept():
    """The real host name before the test; the test fails if it changed (and
    the name is put back, so that one failure does not spoil the machine)."""
    before = socket.gethostname()
    yield before
    after = socket.gethostname()
    if after != before:
        socket.sethostname(before)
    assert after == before, f"the view renamed the real host to {after!r}"


# ----------------------------------------------------------------------
# names

def test_uname_release():
    assert ok(run_view(["uname", "-r"], "-p", "misc,release=9.9.9-test")) == "9.9.9-test\n"


def test_uname_other_fields_unchanged():
    native = run_native(["uname", "-s", "-n", "-v", "-m"])
    view = run_view(["uname", "-s", "-n", "-v", "-m"], "-p", "misc,release=9.9.9-test")
    assert ok(view) == native.stdout.decode()


def test_uname_every_field():
    out = ok(run_view(["uname", "-s", "-n", "-r", "-v", "-m"], "-p",
                      "misc,sysname=Sys,nodename=node,release=1.0,version=#7,machine=mach"))
    assert out == "Sys node 1.0 #7 mach\n"


def test_uname_nodename_and_hostname():
    out = ok(run_view(["sh", "-c", "uname -n; hostname"], "-p", "misc,nodename=box"))
    assert out == "box\nbox\n"
    # hostname= is an alias
    assert ok(run_view(["hostname"], "-p", "misc,hostname=alias")) == "alias\n"


def test_domainname():
    assert ok(run_view(["domainname"], "-p", "misc,domainname=nisdom")) == "nisdom\n"


def test_hostname_changes_only_the_view(host_name_kept):
    before = host_name_kept
    out = ok(run_view(["sh", "-c", "hostname newname-in-view; hostname; uname -n; sh -c hostname; "
                       f"\"{PY}\" -c 'import socket; print(socket.gethostname())'"],
                      "-p", "misc"))
    assert out == "newname-in-view\n" * 4
    assert socket.gethostname() == before
    with open("/proc/sys/kernel/hostname") as f:
        assert f.read().strip() == before
    # a new view starts from the real name again
    assert ok(run_view(["hostname"], "-p", "misc")) == f"{before}\n"


def test_hostname_change_seen_by_a_concurrent_process(host_name_kept, tmp_path):
    # a process started before the change sees it too (the name lives in
    # the view, not in the process)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    out = ok(run_view(["sh", "-c", f"(read x < {fifo}; hostname) & hostname changed; echo go > {fifo}; wait"],
                      "-p", "misc"))
    assert out == "changed\n"


def test_short_spellings():
    assert ok(run_view(["uname", "-r"], "--uname-release", "7.7.7")) == "7.7.7\n"
    assert ok(run_view(["sh", "-c", "hostname; uname -n"], "--hostname", "hh")) == "hh\nhh\n"
    out = ok(run_view(["uname", "-n", "-r"], "--hostname", "hh", "--uname-release", "7.7.8"))
    assert out == "hh 7.7.8\n"


# ----------------------------------------------------------------------
# time

def bracketed(cmd, *options, offset):
    """Run cmd in a view; return (lo, stdout, hi): the native wall clock
    before and after, shifted by offset."""
    lo = time.time()
    out = ok(run_view(cmd, *options))
    hi = time.time()
    return int(lo) + offset, out, int(hi) + 1 + offset


TIME_PY = [PY, "-c", "import time; print(int(time.time()))"]


@pytest.mark.parametrize("offset,options", [
    (DAY, ["--time-offset", "86400"]),
    (-DAY, ["-p", "misc,time_offset=-86400"]),
], ids=["plus-day-long-option", "minus-day-module-option"])
@pytest.mark.parametrize("cmd", [["date", "+%s"], TIME_PY], ids=["date", "python"])
def test_time_offset(cmd, offset, options):
    lo, out, hi = bracketed(cmd, *options, offset=offset)
    assert lo - 1 <= int(out) <= hi, (lo, out, hi)


def test_module_option_and_long_option_merge():
    # -p misc,... and --time-offset configure one misc module, not two
    lo, out, hi = bracketed(["sh", "-c", "uname -r; date +%s"], "-p", "misc,release=x",
                            "--time-offset", "3600", offset=3600)
    release, now = out.split()
    assert release == "x"
    assert lo - 1 <= int(now) <= hi


def parse_clock_static(out):
    words = out.split()
    return {words[i]: float(words[i + 1]) for i in range(0, len(words), 2)}


def test_static_binary_sees_the_offset(progs):
    tai_minus_utc = round(time.clock_gettime(time.CLOCK_TAI) - time.time())
    # natively first: the bracket holds with no offset (the check means something)
    lo_m, lo = time.monotonic(), time.time()
    native = parse_clock_static(run_native([progs["clock_static"]]).stdout.decode())
    hi, hi_m = time.time(), time.monotonic()
    for key in ("realtime", "coarse", "gettimeofday", "time"):
        assert int(lo) - 1 <= native[key] <= int(hi) + 1, (key, native)
    assert int(lo) - 1 <= native["tai"] - tai_minus_utc <= int(hi) + 1
    assert lo_m <= native["monotonic"] <= hi_m

    lo_m, lo = time.monotonic(), time.time()
    out = ok(run_view([progs["clock_static"]], "--time-offset", "-86400"))
    hi, hi_m = time.time(), time.monotonic()
    view = parse_clock_static(out)
    for key in ("realtime", "coarse", "gettimeofday", "time"):
        assert int(lo) - 1 - DAY <= view[key] <= int(hi) + 1 - DAY, (key, view, lo, hi)
    assert int(lo) - 1 - DAY <= view["tai"] - tai_minus_utc <= int(hi) + 1 - DAY, view
    # CLOCK_MONOTONIC and CLOCK_BOOTTIME are not shifted
    assert lo_m <= view["monotonic"] <= hi_m, (view, lo_m, hi_m)
    assert view["boottime"] >= view["monotonic"]


def test_time_offset_loaded_at_run_time_reaches_later_programs(progs):
    """misc with a time offset inserted by a shell already running: the
    programs it starts afterwards see the offset, a static binary too.  The
    shell forked without exec stops; the view that now hides the vDSO gives
    them to it, and its children inherit them (native/umvcore.c,
    exec_wanted)."""
    lo = time.time()
    out = ok(run_view(["sh", "-c", f"umview-insmod misc time_offset=86400 && {progs['clock_static']}"]))
    hi = time.time()
    view = parse_clock_static(out)
    for key in ("realtime", "coarse", "gettimeofday", "time"):
        assert int(lo) - 1 + DAY <= view[key] <= int(hi) + 1 + DAY, (key, view, lo, hi)


def test_monotonic_not_shifted():
    lo = time.monotonic()
    out = ok(run_view([PY, "-c", "import time; print(time.monotonic(), time.clock_gettime(time.CLOCK_BOOTTIME))"],
                      "--time-offset", "86400"))
    hi = time.monotonic()
    mono, boot = map(float, out.split())
    assert lo <= mono <= hi
    assert boot >= mono


def test_no_offset_no_time_change():
    # misc without time_offset does not touch the clock (nor the vDSO)
    lo, out, hi = bracketed(TIME_PY, "-p", "misc,release=x", offset=0)
    assert lo - 1 <= int(out) <= hi


# ----------------------------------------------------------------------
# answering like the kernel when the call is wrong

ERRORS_PY = r'''
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def show(name, r):
    print(name, r, errno.errorcode.get(ctypes.get_errno()) if r < 0 else "-")
ts = ctypes.create_string_buffer(16)
# sethostname(char *name, int len): the kernel reads len as an int, so
# (1 << 32) | 5 is a valid length 5 and the bad pointer gives EFAULT.
# (Only unreadable pointers here: natively as root a readable one would
# rename the host.)
show("sethostname-bad-ptr", libc.syscall(ctypes.c_long(170), ctypes.c_void_p(1), ctypes.c_long(5)))
show("sethostname-int-len", libc.syscall(ctypes.c_long(170), ctypes.c_void_p(1), ctypes.c_long((1 << 32) | 5)))
show("sethostname-too-long", libc.syscall(ctypes.c_long(170), ctypes.c_void_p(1), ctypes.c_long(65)))
show("uname-bad-ptr", libc.syscall(ctypes.c_long(63), ctypes.c_void_p(1)))
for clock in (0, 5, 8, 11):   # the realtime clocks misc shifts; 8 needs an RTC
    show(f"clock_gettime-{clock}", libc.syscall(ctypes.c_long(228), ctypes.c_long(clock), ts))
    show(f"clock_gettime-{clock}-bad-ptr", libc.syscall(ctypes.c_long(228), ctypes.c_long(clock), ctypes.c_void_p(1)))
show("gettimeofday-bad-ptr", libc.syscall(ctypes.c_long(96), ctypes.c_void_p(1), None))
show("time-bad-ptr", libc.syscall(ctypes.c_long(201), ctypes.c_void_p(1)))
'''


def test_errors_like_the_kernel(host_name_kept):
    native = run_native([PY, "-c", ERRORS_PY])
    assert native.returncode == 0, native.stderr
    view = run_view([PY, "-c", ERRORS_PY], "-p", "misc,release=x,time_offset=100")
    diff = [(n, v) for n, v in zip(native.stdout.decode().splitlines(), view.stdout.decode().splitlines())
            if n != v]
    assert not diff, (diff, view.stderr.decode()[-2000:])
    assert view.stdout == native.stdout
    assert view.stderr == b"", view.stderr.decode()[-2000:]
