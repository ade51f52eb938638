"""Building the seccomp-bpf programs that decide which calls stop.

Every process of a view runs with a stack of filters.  The first one, set
before the first exec, is the view's program at that time; loading a module
later stacks another (see the why-comment in native/umvcore.c).  Stacked
filters all run and the most restrictive action wins (KILL > TRAP > ERRNO >
USER_NOTIF > TRACE > LOG > ALLOW), so:
  - a later filter can add TRACE for more calls, never remove one: after a
    module is unloaded its calls still stop and the C fast path resumes them;
  - an ERRNO(ENOSYS) rule of any filter beats every TRACE.
The program of a spawn also holds the calls the C core's listener serves
(RET_USER_NOTIF, build's `notify`): each filter of the stack that a call
meets costs the call a run of __seccomp_filter, and a path call the shim
makes (native/umvshim.c) used to meet two, the notifier's and the view's.

Layout of a program: a head for the foreign ABIs, then a binary search on
the syscall number (_dispatch) that jumps to the number's rule, the first
of these that applies:
  arch != x86_64 (int 0x80 from a 64-bit process, or i386): ALLOW when the
      view virtualizes nothing, else ENOSYS: i386 numbers would reach the
      kernel unseen;
  nr >= 0x40000000 (x32 ABI): likewise;
  the virtual syscall: TRACE(VSYS);
  clone3: ENOSYS (its flags are in memory, out of BPF's reach, so
      CLONE_UNTRACED could hide there; glibc then falls back to clone);
  clone with CLONE_UNTRACED: TRACE(GUARD) (the core clears the flag);
  ptrace, process_vm_readv/writev, pidfd_getfd: TRACE(GUARD) (refused when
      aimed at the hypervisor);
  when a module virtualizes paths or fds: ENOSYS for rows of support `deny`
      (io_uring and the other calls that could reach files behind our back)
      and for every number the table does not know;
  each claimed syscall: TRACE(CLAIM), optionally only for some values of an
      argument; with `gadget` (names), those calls made from the shim's
      gadget (instruction pointer UMV_GADGET_IP, see native/umvshm.h) are
      let through instead, a check made inside the call's own branch (see
      _ret);
  default: ALLOW (or TRACE(CLAIM) in --no-seccomp mode).
"""
from __future__ import annotations

import errno
import struct

from ..syscalls.table import BY_NAME, BY_NR, MAX_NR, SYSCALLS

BITMAP_BYTES = 128
AUDIT_ARCH_X86_64 = 0xC000003E
X32_BIT = 0x40000000
NR_VSYS = 0x7500
NR_BOUNCE = 0x7501          # a notified call the C core sends on to ptrace
DATA_CLAIM, DATA_VSYS, DATA_GUARD, DATA_BOUNCE = 0x7501, 0x7502, 0x7503, 0x7504
CLONE_UNTRACED = 0x00800000

RET_ALLOW = 0x7FFF0000
RET_TRACE = 0x7FF00000
RET_USER_NOTIF = 0x7FC00000
RET_ERRNO = 0x00050000

# pseudo-bits of the trap bitmap that stand for rules rather than syscalls
BIT_DENY_PATHS = 1023
BIT_DENY_FOREIGN = 1022
BIT_TRAP_ALL = 1021
# Bit GADGET_BIT + nr: call nr is trapped even when made from the shim's
# gadget (a program without the gadget rule for it traps more).
GADGET_BIT = 512

# the calls the shim makes through its gadget (native/umvshim.c): the stat
# family of a fake root; the path calls it judges outside every mount, and
# what it asks the kernel to judge them (openat2 probes, the cwd, fd links);
# the connects of a port map or a SOCKS5 proxy, and their names
STAT_CALLS = ("stat", "lstat", "fstat", "newfstatat", "statx")
PATH_CALLS = ("openat", "newfstatat", "statx", "readlinkat", "faccessat", "getxattr", "lgetxattr",
              "listxattr", "llistxattr", "mkdirat", "symlinkat", "fchmodat", "fchmodat2", "fchownat", "utimensat",
              "fchmod", "fchown")
# (rt_sigprocmask with an invalid `how` is the shim's probe of a pointer:
# readable() in native/umvshim.c)
PATH_HELPERS = ("openat2", "getcwd", "readlink", "rt_sigprocmask")
# and the connects and getsocknames of a port map (Claims.connect_map), the
# proxied connects and their names (Claims.socks5)
NET_CALLS = ("connect", "getsockname", "getpeername", "getsockopt", "rt_sigprocmask")
GADGET_NRS = frozenset(BY_NAME[n].nr for n in STAT_CALLS + PATH_CALLS + PATH_HELPERS + NET_CALLS)
GADGET_IP = 0x75ee000014    # UMV_GADGET_IP in native/umvcore.h (a test compares)

# BPF opcodes
LD_W_ABS = 0x20
JEQ_K = 0x15
JGE_K = 0x35
JGT_K = 0x25
JSET_K = 0x45
RET_K = 0x06
JA = 0x05

OFF_NR, OFF_ARCH, OFF_IP, OFF_ARGS = 0, 4, 8, 16

I386_CLONE, I386_CLONE3 = 120, 435
GUARDED = ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd")


def _ins(code, jt, jf, k):
    return (code, jt, jf, k & 0xFFFFFFFF)


class Program:
    """A filter program with the set of calls it traps."""

    def __init__(self, insns, trap: bytes):
        self.insns = insns
        self.trap = trap

    def __len__(self):
        return len(self.insns)

    def code(self) -> bytes:
        return b"".join(struct.pack("<HBBI", *i) for i in self.insns)

    def blob(self) -> bytes:
        """The program followed by its trap bitmap, as umv_view_set wants it."""
        return self.code() + self.trap


def bitmap(numbers) -> bytearray:
    bm = bytearray(BITMAP_BYTES)
    for n in numbers:
        bm[n >> 3] |= 1 << (n & 7)
    return bm


def _gaps(known):
    """Ranges [lo, hi] of numbers up to MAX_NR that are not in `known`."""
    lo = None
    for nr in range(MAX_NR + 2):
        if nr not in known and nr <= MAX_NR:
            lo = nr if lo is None else lo
        elif lo is not None:
            yield lo, nr - 1
            lo = None


def gadget_names(gadget) -> list:
    if gadget is True:
        return sorted(STAT_CALLS)
    return sorted(gadget or ())


def _ret(action, from_gadget: bool) -> list:
    """Return `action`; with from_gadget, ALLOW instead when the call
    returns to the shim's gadget.  The instruction pointer is looked at
    only here, inside the branch of one syscall number: the kernel caches
    ALLOW for a number whose path through every filter of the stack reads
    nothing but the number and the architecture (seccomp_cache_prepare,
    kernel/seccomp.c, since 5.11), and a call of such a number then runs no
    filter at all.  One load of the pointer ahead of the number checks
    would cost every call of the program the whole filter (~150 ns here:
    getpid in a fake-root view 308 ns against 226 ns in an empty one)."""
    if not from_gadget:
        return [_ins(RET_K, 0, 0, action)]
    return [
        _ins(LD_W_ABS, 0, 0, OFF_IP + 4),
        _ins(JEQ_K, 0, 3, GADGET_IP >> 32),
        _ins(LD_W_ABS, 0, 0, OFF_IP),
        _ins(JEQ_K, 0, 1, GADGET_IP & 0xFFFFFFFF),
        _ins(RET_K, 0, 0, RET_ALLOW),
        _ins(RET_K, 0, 0, action),
    ]


# A rule is what the program does with one syscall number, as a hashable
# tuple; numbers with equal rules share one block of code (see _dispatch).
def _rule_code(rule) -> list:
    kind = rule[0]
    if kind == "ret":                   # ("ret", action)
        return [_ins(RET_K, 0, 0, rule[1])]
    if kind == "trap":                  # ("trap", action, from_gadget)
        return _ret(rule[1], rule[2])
    if kind == "clone":                 # ("clone", default): flags are the low word of arg 0
        return [_ins(LD_W_ABS, 0, 0, OFF_ARGS), _ins(JSET_K, 0, 1, CLONE_UNTRACED),
                _ins(RET_K, 0, 0, RET_TRACE | DATA_GUARD), _ins(RET_K, 0, 0, rule[1])]
    if kind == "nonzero":               # ("nonzero", idx, action, from_gadget, default)
        # trap only when the 64-bit argument is not 0 (a NULL pointer:
        # sendto on a connected socket names no address)
        _, idx, action, from_gadget, default = rule
        trace = _ret(action, from_gadget)
        return [_ins(LD_W_ABS, 0, 0, OFF_ARGS + 8 * idx),
                _ins(JEQ_K, 0, 2, 0),
                _ins(LD_W_ABS, 0, 0, OFF_ARGS + 8 * idx + 4),
                _ins(JEQ_K, len(trace), 0, 0)] + trace + [_ins(RET_K, 0, 0, default)]
    if kind == "values":                # ("values", idx, values, action, from_gadget, default)
        _, idx, values, action, from_gadget, default = rule
        trace = _ret(action, from_gadget)
        p = [_ins(LD_W_ABS, 0, 0, OFF_ARGS + 8 * idx)]
        # each match jumps over the checks after it and the JA to the trace
        p += [_ins(JEQ_K, len(values) - i, 0, v) for i, v in enumerate(values)]
        return p + [_ins(JA, 0, 0, len(trace))] + trace + [_ins(RET_K, 0, 0, default)]
    raise ValueError(rule)


def _dispatch(rules: dict, other) -> list:
    """Code that, with the syscall number loaded, runs the rule of that
    number: `rules` maps numbers to rules, `other` is the rule of every
    number not in it.  A binary search over ranges of numbers that share a
    rule, so that a call runs ~2 log2(ranges) instructions instead of a
    comparison per claimed number (statx ran 175 instructions in a vfs
    view).  It compares nothing but the number, so the kernel's cache of
    always-allowed numbers still sees through it (see _ret)."""
    ranges = []                          # [lo, hi, rule], hi inclusive

    def add(lo, hi, rule):
        if ranges and ranges[-1][2] == rule:
            ranges[-1][1] = hi
        else:
            ranges.append([lo, hi, rule])

    last = -1
    for nr in sorted(rules):
        if nr > last + 1:
            add(last + 1, nr - 1, other)
        add(nr, nr, rules[nr])
        last = nr
    if last < 0xFFFFFFFF:
        add(last + 1, 0xFFFFFFFF, other)
    blocks = {}                          # rule -> label of its code
    code = []                            # instructions, or ("ja", label)
    labels = {}

    def tree(rs):
        if len(rs) == 1:
            code.append(("ja", blocks.setdefault(rs[0][2], ("block", len(blocks)))))
            return
        mid = len(rs) // 2
        right = ("node", len(code))
        # nr >= first of the right half: fall through to the jump there;
        # else skip it into the left half that follows
        code.append(_ins(JGE_K, 0, 1, rs[mid][0]))
        code.append(("ja", right))
        tree(rs[:mid])
        labels[right] = len(code)
        tree(rs[mid:])

    tree(ranges)
    for rule, label in blocks.items():
        labels[label] = len(code)
        code += _rule_code(rule)
    return [_ins(JA, 0, 0, labels[c[1]] - i - 1) if isinstance(c[0], str) else c
            for i, c in enumerate(code)]


def build(claimed: set[str], arg_in: dict | None = None, *, deny_paths: bool = False,
          trap_all: bool = False, gadget=(), notify=frozenset()) -> Program:
    """The program for a view whose modules claim `claimed` (syscall names).
    The calls `notify` go to the C core's seccomp listener instead
    (RET_USER_NOTIF, see native/umvcore.c): given, this is the program of
    a spawn, installed with the listener flag, and its `trap` bitmap is the
    notified calls' (the C core keeps it per process)."""
    arg_in = arg_in or {}
    virtualizes = bool(claimed) or trap_all
    foreign = RET_ERRNO | errno.ENOSYS if virtualizes else RET_ALLOW
    default = RET_TRACE | DATA_CLAIM if trap_all else RET_ALLOW
    # The head: foreign ABIs.  i386 (int 0x80) and x32 calls are refused
    # once the view virtualizes anything (their numbers would reach the
    # kernel unseen); even in an empty view their clone3, and clone with
    # CLONE_UNTRACED, are refused: that child would not be followed and
    # would stay outside the view for good.  Indexes are fixed:
    p = [
        _ins(LD_W_ABS, 0, 0, OFF_ARCH),                  # 0
        _ins(JEQ_K, 6, 0, AUDIT_ARCH_X86_64),            # 1 -> 8
        _ins(LD_W_ABS, 0, 0, OFF_NR),                    # 2 i386
        _ins(JEQ_K, 0, 1, I386_CLONE3),                  # 3
        _ins(RET_K, 0, 0, RET_ERRNO | errno.ENOSYS),     # 4
        _ins(JEQ_K, 0, 1, I386_CLONE),                   # 5
        _ins(JA, 0, 0, 7),                               # 6 -> 14
        _ins(RET_K, 0, 0, foreign),                      # 7
        _ins(LD_W_ABS, 0, 0, OFF_NR),                    # 8 x86_64
        _ins(JGE_K, 0, 8, X32_BIT),                      # 9 -> 18 when not x32
        _ins(JEQ_K, 0, 1, X32_BIT | BY_NAME["clone3"].nr),  # 10
        _ins(RET_K, 0, 0, RET_ERRNO | errno.ENOSYS),     # 11
        _ins(JEQ_K, 1, 0, X32_BIT | BY_NAME["clone"].nr),   # 12 -> 14
        _ins(RET_K, 0, 0, foreign),                      # 13
        _ins(LD_W_ABS, 0, 0, OFF_ARGS),                  # 14 foreign clone: flags
        _ins(JSET_K, 0, 1, CLONE_UNTRACED),              # 15
        _ins(RET_K, 0, 0, RET_ERRNO | errno.ENOSYS),     # 16
        _ins(RET_K, 0, 0, foreign),                      # 17
        _ins(LD_W_ABS, 0, 0, OFF_NR),                    # 18 native calls
    ]
    # Native numbers, each given the first rule that applies in this order
    # (a deny row beats a claim):
    gnames = set(gadget_names(gadget))
    rules = {}
    rules[NR_VSYS] = ("ret", RET_TRACE | DATA_VSYS)
    rules[NR_BOUNCE] = ("ret", RET_TRACE | DATA_BOUNCE)
    rules.setdefault(BY_NAME["clone3"].nr, ("ret", RET_ERRNO | errno.ENOSYS))
    rules.setdefault(BY_NAME["clone"].nr, ("clone", default))
    for name in GUARDED:
        rules.setdefault(BY_NAME[name].nr, ("ret", RET_TRACE | DATA_GUARD))
    enosys = ("ret", RET_ERRNO | errno.ENOSYS)
    if deny_paths:
        # rows of support `deny`, and the numbers the table does not know
        # (the virtual syscalls were ruled above)
        known = {s.nr for s in SYSCALLS}
        for s in SYSCALLS:
            if s.support == "deny":
                rules.setdefault(s.nr, enosys)
        for n in range(MAX_NR + 1):
            if n not in known:
                rules.setdefault(n, enosys)
    trapped = set()
    for name in set(claimed) | set(notify):
        nr = BY_NAME[name].nr
        trapped.add(nr)
        g = name in gnames
        action = RET_USER_NOTIF if name in notify else RET_TRACE | DATA_CLAIM
        if name not in arg_in:
            rule = ("trap", action, g)
        elif arg_in[name][1] is None:
            rule = ("nonzero", arg_in[name][0], action, g, default)
        else:
            rule = ("values", arg_in[name][0], tuple(sorted(arg_in[name][1])), action, g, default)
        rules.setdefault(nr, rule)
    other = ("ret", default)
    if deny_paths:
        # numbers past the table's are refused with the unknown ones; the
        # known ones nothing ruled keep the default
        for n in range(MAX_NR + 1):
            rules.setdefault(n, other)
        other = enosys
    p += _dispatch(rules, other)
    bits = set(trapped)
    if deny_paths:
        bits.add(BIT_DENY_PATHS)
    if virtualizes:
        bits.add(BIT_DENY_FOREIGN)
    # dropping the gadget rule for a call traps more: a program without it
    # widens the view's
    bits.update(GADGET_BIT + nr for nr in trapped & GADGET_NRS if BY_NR[nr].name not in gnames)
    if trap_all:
        bits.add(BIT_TRAP_ALL)
        bits.update(range(MAX_NR + 1))
    if len(p) > 4096:
        raise ValueError(f"seccomp program too long ({len(p)} instructions)")
    if notify:
        return Program(p, bytes(bitmap(BY_NAME[n].nr for n in notify)))
    return Program(p, bytes(bitmap(bits)))
