"""The seccomp programs, checked without a kernel: a small classic-BPF
interpreter runs them on made-up seccomp_data, and the same programs are
also loaded into a real kernel (in a forked child) to check they are valid."""
import ctypes
import errno
import os
import struct

import pytest

from umview_py._core import seccomp as sc
from umview_py.syscalls.table import BY_NAME, MAX_NR, SYSCALLS

I386 = 0x40000003


def interpret(prog, load, steps=None):
    """Run a classic-BPF program; load(offset) gives a word of seccomp_data,
    or None when it is not known (interpret then returns None)."""
    pc, acc = 0, 0
    insns = prog.insns
    for n in range(100000):
        code, jt, jf, k = insns[pc]
        assert jt < 256 and jf < 256
        if code == sc.LD_W_ABS:
            acc = load(k)
            if acc is None:
                return None
            pc += 1
        elif code == sc.RET_K:
            if steps is not None:
                steps.append(n + 1)
            return k
        elif code == sc.JA:
            pc += 1 + k
        else:
            cond = {sc.JEQ_K: acc == k, sc.JGE_K: acc >= k, sc.JGT_K: acc > k,
                    sc.JSET_K: bool(acc & k)}[code]
            pc += 1 + (jt if cond else jf)
    raise AssertionError("BPF program did not return")


def run_bpf(prog, nr, arch=sc.AUDIT_ARCH_X86_64, args=(0,) * 6, ip=0, steps=None):
    data = struct.pack("<IIQ6Q", nr & 0xFFFFFFFF, arch, ip, *args)
    return interpret(prog, lambda k: struct.unpack_from("<I", data, k)[0], steps)


def nr(name):
    return BY_NAME[name].nr


TRACE_CLAIM = sc.RET_TRACE | sc.DATA_CLAIM
ENOSYS = sc.RET_ERRNO | errno.ENOSYS


def test_empty_view_allows_everything_but_the_guards():
    p = sc.build(set())
    for s in SYSCALLS:
        want = sc.RET_ALLOW
        if s.name == "clone3":
            want = ENOSYS
        elif s.name in sc.GUARDED:
            want = sc.RET_TRACE | sc.DATA_GUARD
        assert run_bpf(p, s.nr) == want, s.name
    assert run_bpf(p, sc.NR_VSYS) == sc.RET_TRACE | sc.DATA_VSYS
    # an empty view leaves i386 and unknown numbers alone...
    assert run_bpf(p, 122, arch=I386) == sc.RET_ALLOW
    assert run_bpf(p, MAX_NR + 50) == sc.RET_ALLOW
    assert run_bpf(p, nr("getpid") | sc.X32_BIT) == sc.RET_ALLOW
    # ...but not their ways to make a child we would not follow
    assert run_bpf(p, 120, arch=I386, args=(0x11,) + (0,) * 5) == sc.RET_ALLOW
    assert run_bpf(p, 120, arch=I386, args=(0x11 | sc.CLONE_UNTRACED,) + (0,) * 5) == ENOSYS
    assert run_bpf(p, 435, arch=I386) == ENOSYS
    assert run_bpf(p, nr("clone3") | sc.X32_BIT) == ENOSYS
    assert run_bpf(p, nr("clone") | sc.X32_BIT, args=(sc.CLONE_UNTRACED,) + (0,) * 5) == ENOSYS
    assert run_bpf(p, nr("clone") | sc.X32_BIT, args=(0x11,) + (0,) * 5) == sc.RET_ALLOW
    assert p.trap == bytes(sc.BITMAP_BYTES)


def test_clone_untraced_is_trapped():
    p = sc.build(set())
    flags = 0x11  # SIGCHLD
    assert run_bpf(p, nr("clone"), args=(flags,) + (0,) * 5) == sc.RET_ALLOW
    assert run_bpf(p, nr("clone"), args=(flags | sc.CLONE_UNTRACED,) + (0,) * 5) == sc.RET_TRACE | sc.DATA_GUARD


def test_claims_and_foreign_arch():
    p = sc.build({"uname", "sethostname"})
    assert run_bpf(p, nr("uname")) == TRACE_CLAIM
    assert run_bpf(p, nr("sethostname")) == TRACE_CLAIM
    assert run_bpf(p, nr("getpid")) == sc.RET_ALLOW
    assert run_bpf(p, 122, arch=I386) == ENOSYS
    assert run_bpf(p, nr("uname") | sc.X32_BIT) == ENOSYS
    bits = {i for i in range(sc.BITMAP_BYTES * 8) if p.trap[i >> 3] >> (i & 7) & 1}
    assert bits == {nr("uname"), nr("sethostname"), sc.BIT_DENY_FOREIGN}


def test_argument_predicate():
    p = sc.build({"clock_gettime", "uname"}, {"clock_gettime": (0, frozenset({0, 5}))})
    for clock, want in [(0, TRACE_CLAIM), (5, TRACE_CLAIM), (1, sc.RET_ALLOW), (4, sc.RET_ALLOW)]:
        assert run_bpf(p, nr("clock_gettime"), args=(clock, 0, 0, 0, 0, 0)) == want
    # the predicate block restores the number: later checks still work
    assert run_bpf(p, nr("uname")) == TRACE_CLAIM
    assert run_bpf(p, nr("getpid")) == sc.RET_ALLOW


def test_nonzero_predicate():
    # sendto traps only when it names an address (arg 4 is not NULL); both
    # 32-bit halves of the pointer count
    p = sc.build({"sendto", "uname"}, {"sendto": (4, None)})
    for addr, want in [(0, sc.RET_ALLOW), (0x7ffd0000, TRACE_CLAIM), (1 << 40, TRACE_CLAIM),
                       ((1 << 40) | 8, TRACE_CLAIM)]:
        assert run_bpf(p, nr("sendto"), args=(3, 0, 0, 0, addr, 16)) == want
    assert run_bpf(p, nr("uname")) == TRACE_CLAIM
    assert run_bpf(p, nr("getpid")) == sc.RET_ALLOW


def test_deny_paths():
    p = sc.build({"openat"}, deny_paths=True)
    assert run_bpf(p, nr("openat")) == TRACE_CLAIM
    for s in SYSCALLS:
        if s.support == "deny":
            assert run_bpf(p, s.nr) == ENOSYS, s.name
    known = {s.nr for s in SYSCALLS}
    for n in range(MAX_NR + 100):
        if n not in known:
            assert run_bpf(p, n) == ENOSYS, n
    assert run_bpf(p, nr("read")) == sc.RET_ALLOW
    assert run_bpf(p, sc.NR_VSYS) == sc.RET_TRACE | sc.DATA_VSYS


def test_every_number_gets_its_rule_in_few_steps():
    """The numbers are looked up by a binary search: each gets the rule
    the docstring of seccomp.py gives it, in the same order of precedence,
    and no call runs more than a few dozen instructions."""
    claimed = {s.name for s in SYSCALLS if s.family in ("path", "fd")} | {"uname", "clock_gettime"}
    claimed |= {"clone", "ptrace", "mount", "sendto"}   # clone, ptrace, mount: ruled before claims
    gadget = frozenset(sc.PATH_CALLS + sc.PATH_HELPERS)
    arg_in = {"clock_gettime": (0, frozenset({0, 5})), "sendto": (4, None)}
    p = sc.build(claimed, arg_in, deny_paths=True, gadget=gadget)
    known = {s.nr: s for s in SYSCALLS}
    steps = []
    for n in list(range(MAX_NR + 40)) + [sc.NR_VSYS - 1, sc.NR_VSYS, sc.NR_BOUNCE, sc.NR_BOUNCE + 1,
                                         sc.X32_BIT - 1]:
        s = known.get(n)
        if n == sc.NR_VSYS:
            want = sc.RET_TRACE | sc.DATA_VSYS
        elif n == sc.NR_BOUNCE:
            want = sc.RET_TRACE | sc.DATA_BOUNCE
        elif s is None or s.support == "deny" or s.name == "clone3":
            want = ENOSYS
        elif s.name in sc.GUARDED:
            want = sc.RET_TRACE | sc.DATA_GUARD
        elif s.name == "clone":
            want = sc.RET_ALLOW     # CLONE_UNTRACED not set: test_clone_untraced_is_trapped
        elif s.name == "clock_gettime":
            want = TRACE_CLAIM      # its argument is 0 here, one of the values
        elif s.name in claimed and s.name not in arg_in:
            want = TRACE_CLAIM
        else:
            want = sc.RET_ALLOW
        assert run_bpf(p, n, steps=steps) == want, (n, s and s.name)
        if s is not None and s.name in gadget and want == TRACE_CLAIM:
            assert run_bpf(p, n, ip=sc.GADGET_IP) == sc.RET_ALLOW, s.name
    assert run_bpf(p, nr("clock_gettime"), args=(5, 0, 0, 0, 0, 0)) == TRACE_CLAIM
    assert run_bpf(p, nr("clock_gettime"), args=(1, 0, 0, 0, 0, 0)) == sc.RET_ALLOW
    assert run_bpf(p, nr("sendto"), args=(3, 0, 0, 0, 1 << 33, 16)) == TRACE_CLAIM
    assert max(steps) <= 40, max(steps)


def has_bit(p, bit):
    return bool(p.trap[bit >> 3] & (1 << (bit & 7)))


@pytest.mark.parametrize("notify", [False, True])
@pytest.mark.parametrize("kind", ["stat", "path"])
def test_gadget_passes_the_shims_calls_only(notify, kind):
    """The shim's calls (native/umvshim.c) return to GADGET_IP: the calls
    of its job made there are let through, anything else made there, and
    those calls made anywhere else (even one byte off), are not."""
    claimed = {"stat", "lstat", "fstat", "newfstatat", "statx", "chown", "execve", "openat", "getxattr",
               "mkdir", "unlinkat", "getcwd"}
    names = frozenset(sc.STAT_CALLS) if kind == "stat" else frozenset(sc.PATH_CALLS + sc.PATH_HELPERS)
    gadget = True if kind == "stat" else names
    # a spawn's program: half of the calls go to the listener
    notified = frozenset(sorted(claimed)[::2]) if notify else frozenset()
    p = sc.build(claimed, gadget=gadget, notify=notified)
    for name in claimed:
        trapped = sc.RET_USER_NOTIF if name in notified else TRACE_CLAIM
        want = sc.RET_ALLOW if name in names else trapped
        assert run_bpf(p, nr(name), ip=sc.GADGET_IP) == want, name
        for ip in (0, sc.GADGET_IP + 1, sc.GADGET_IP - 1, sc.GADGET_IP + (1 << 32), sc.GADGET_IP & 0xFFFFFFFF):
            assert run_bpf(p, nr(name), ip=ip) == trapped, (name, hex(ip))
    # i386 calls are refused wherever they come from
    assert run_bpf(p, 106, arch=I386, ip=sc.GADGET_IP) == ENOSYS
    if notify:
        # the bitmap a spawn's program carries is the listener's calls'
        assert {n for n in claimed if has_bit(p, nr(n))} == notified
    # without the rule, a program that traps those calls says so in its
    # bits (one per call), so that stacking it counts as a widening
    plain = sc.build(claimed)
    assert run_bpf(plain, nr("newfstatat"), ip=sc.GADGET_IP) == TRACE_CLAIM
    if not notify:
        for name in claimed:
            bit = sc.GADGET_BIT + nr(name)
            assert has_bit(plain, bit) == (nr(name) in sc.GADGET_NRS), name
            assert has_bit(p, bit) == (nr(name) in sc.GADGET_NRS and name not in names), name


def const_allow(prog, nr, arch=sc.AUDIT_ARCH_X86_64):
    """The kernel's seccomp_is_const_allow (kernel/seccomp.c): does the
    program return ALLOW for this number reading nothing but the number
    and the architecture?  Then the kernel caches ALLOW for it and runs no
    filter on its calls."""
    known = {sc.OFF_NR: nr, sc.OFF_ARCH: arch}
    return interpret(prog, known.get) == sc.RET_ALLOW


@pytest.mark.parametrize("gadget", [(), True, frozenset(sc.PATH_CALLS + sc.PATH_HELPERS)])
@pytest.mark.parametrize("notify", [False, True])
def test_unclaimed_calls_run_no_filter(gadget, notify):
    """Every call a program lets through whatever its arguments and its
    instruction pointer is one the kernel can cache: the gadget rule must
    not make the filter read the pointer for calls it does not trap."""
    claimed = {"stat", "lstat", "fstat", "newfstatat", "statx", "chown", "openat", "getxattr",
               "readlink", "getcwd", "clock_gettime", "sendto"}
    p = sc.build(claimed, {"clock_gettime": (0, frozenset({0})), "sendto": (4, None)},
                 deny_paths=True, gadget=gadget,
                 notify=frozenset({"stat", "openat", "getcwd"} if notify else ()))
    guarded = claimed | set(sc.GUARDED) | {"clone", "clone3"}
    for s in SYSCALLS:
        if s.name in guarded or s.support == "deny":
            continue
        assert const_allow(p, s.nr), s.name
    # and the claimed calls are not
    for name in claimed:
        assert not const_allow(p, nr(name)), name


def test_trap_all():
    p = sc.build(set(), trap_all=True)
    assert run_bpf(p, nr("getpid")) == TRACE_CLAIM
    assert run_bpf(p, nr("clone3")) == ENOSYS
    assert run_bpf(p, nr("clone"), args=(0x11, 0, 0, 0, 0, 0)) == TRACE_CLAIM


# (the trap-all program is loaded by every `umview -S` test; here a child with
# no tracer could not even exit under it: RET_TRACE without a tracer is ENOSYS)
@pytest.mark.parametrize("kwargs", [{}, {"deny_paths": True}, {"gadget": True}, {"notify": frozenset({"openat"})},
                                    {"gadget": frozenset(sc.PATH_CALLS + sc.PATH_HELPERS)}])
def test_kernel_accepts_the_program(kwargs):
    claimed = {"uname", "clock_gettime", "openat"}
    p = sc.build(claimed | {"sendto"}, {"clock_gettime": (0, frozenset({0})), "sendto": (4, None)},
                 **kwargs)
    code = p.code()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(code)
        prog = struct.pack("<HxxxxxxQ", len(p), ctypes.addressof(buf))
        pbuf = ctypes.create_string_buffer(prog)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
        rc = libc.syscall(317, 1, 0, pbuf)  # seccomp(SET_MODE_FILTER)
        os._exit(0 if rc == 0 else 10 + ctypes.get_errno())
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
