"""Garbage in: tests/progs/fuzz.c makes thousands of random system calls with
bad pointers, odd lengths, wrong flags and invalid fds (from a set of calls
that cannot harm the machine: see the comment at its top), natively and in
views, and prints every result.  The results must be identical, call by
call: a view may change what the calls its modules claim *answer*, never how
they *fail*.

Views: misc (claims uname, sethostname, setdomainname), misc with a time
offset (also the realtime clock calls, gettimeofday, time), and -S with misc
(every call goes through the core), and misc with vfs mounts (every path
call goes through the vfs module's resolution).  The virtual syscall 0x7500 gets garbage
too: natively ENOSYS, in a view an error (never a crash); those lines ("V")
are not compared, and at the end the program's uname must still be served
by the view ("R release fuzz.1")."""
import socket
from pathlib import Path

import pytest

from conftest import run_native

ROOT = Path(__file__).resolve().parent.parent
ENV = {"PYTHONPATH": f"{ROOT}:{ROOT / 'modules'}"}
SEEDS = [1, 2, 3]
CALLS = 3000
GUARD = 60  # seconds: failure guard only
RELEASE = "fuzz.1"
MODES = {
    "misc": ["-p", f"misc,release={RELEASE}"],
    "clock": ["-p", f"misc,release={RELEASE},time_offset=1000"],
    "trap-all": ["-S", "-p", f"misc,release={RELEASE}"],
    # every path call goes to the vfs module (a mount elsewhere): garbage
    # paths must fail as natively, through the C fast path and Python alike
    "vfs": ["-p", f"misc,release={RELEASE}", "--tmpfs", "/umvtest-fuzz/t", "--hide", "/umvtest-fuzz/h"],
}


def run_view(cmd, *options, **kw):
    from conftest import run_view as run
    return run(cmd, *options, env=ENV, timeout=GUARD, **kw)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    # one directory for every run: getcwd's answers are part of the output
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def native_runs(progs, workdir):
    host = socket.gethostname()
    with open("/proc/sys/kernel/domainname") as f:
        domain = f.read()
    runs = {}
    try:
        for seed in SEEDS:
            res = run_native([progs["fuzz"], str(seed), str(CALLS)], cwd=workdir, timeout=GUARD)
            assert res.returncode == 0, res.stderr
            runs[seed] = res.stdout.decode().splitlines()
    finally:
        # fuzz.c never gives sethostname a readable pointer; make sure
        if socket.gethostname() != host:
            socket.sethostname(host)
            pytest.fail("the native fuzz run renamed the host")
        with open("/proc/sys/kernel/domainname") as f:
            assert f.read() == domain, "the native fuzz run changed the domain name"
    return runs


def split(out_lines):
    calls = [ln for ln in out_lines if ln[:1] not in ("V", "R")]
    vsys = [ln for ln in out_lines if ln.startswith("V")]
    final = [ln for ln in out_lines if ln.startswith("R")]
    return calls, vsys, final


def test_native_run_is_sane(native_runs):
    for seed, out in native_runs.items():
        calls, vsys, final = split(out)
        assert len(calls) + len(vsys) == CALLS
        assert len(vsys) > 100
        # natively the virtual syscall does not exist
        assert all(ln.split()[2:4] == ["-1", "38"] for ln in vsys), seed
        # the runs exercise both failures and successes
        results = {ln.split()[2] for ln in calls}
        assert "-1" in results and "0" in results


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mode", list(MODES))
def test_fuzz_same_as_native(progs, workdir, native_runs, mode, seed):
    res = run_view([progs["fuzz"], str(seed), str(CALLS)], *MODES[mode], cwd=workdir)
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    out = res.stdout.decode().splitlines()
    calls, vsys, final = split(out)
    native_calls, native_vsys, _ = split(native_runs[seed])
    # the hypervisor survived the garbage and still serves the program
    assert final == [f"R release {RELEASE}"], (final, res.stderr.decode()[-3000:])
    # the virtual syscall: every garbage request failed (-1, some errno)
    assert len(vsys) == len(native_vsys)
    bad = [ln for ln in vsys if ln.split()[2] != "-1"]
    assert not bad, bad[:10]
    # every other call: the same result as natively, call by call
    diff = [(n, v) for n, v in zip(native_calls, calls) if n != v]
    assert len(calls) == len(native_calls)
    if diff:
        by_call = {}
        for n, v in diff:
            by_call.setdefault(n.split()[1], []).append(f"native: {n}  view: {v}")
        summary = {name: (len(items), items[:3]) for name, items in by_call.items()}
        pytest.fail(f"{len(diff)} calls differ from native, by syscall: {summary}")


VSYS_GARBAGE = r'''
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
out = ctypes.create_string_buffer(4096)
for req in [b"[1,2]", b"null", b'"str"', b"5", b'{"op":5}', b"{}", b'{"op":"nosuch"}',
            b'{"op":"insmod"}', b"{", b"\xff\xfe", b""]:
    r = libc.syscall(ctypes.c_long(0x7500), ctypes.c_char_p(req), ctypes.c_long(len(req)),
                     out, ctypes.c_long(len(out)))
    print(req.decode("latin-1"), r, errno.errorcode.get(ctypes.get_errno()) if r < 0 else "-")
# and the view still answers a good request
req = b'{"op":"ping"}'
r = libc.syscall(ctypes.c_long(0x7500), ctypes.c_char_p(req), ctypes.c_long(len(req)), out,
                 ctypes.c_long(len(out)))
print("ping", r > 0)
'''


def test_vsys_malformed_requests_are_einval():
    """Requests that are not JSON objects, or lack a known op, are the
    caller's mistake: EINVAL, and nothing in the log (a traceback there
    would say the hypervisor has a bug)."""
    import sys
    res = run_view([sys.executable, "-c", VSYS_GARBAGE], *MODES["misc"])
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode().splitlines()
    assert out[-1] == "ping True"
    wrong = [ln for ln in out[:-1] if not ln.endswith(" -1 EINVAL")]
    assert not wrong, wrong
    assert b"Traceback" not in res.stderr, res.stderr.decode()[-3000:]
