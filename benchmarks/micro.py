#!/usr/bin/env python3
"""Per-call cost of a system call natively, unclaimed in a view, trapped and
resumed in C (-S), and served by a Python module (misc).

    python3 benchmarks/micro.py [--rounds N] [--calls getppid,uname,clock_gettime]
                                [--n-fast 200000] [--n-trapped 20000] [--out FILE.md]

Compiles benchmarks/microbench.c (cc -O2) into a temporary directory, then in
each round runs every (call, mode) pair once in a shuffled order; the
program prints ns per call for its loop, and the table gives the median over
rounds.  Calls that do not stop run N_FAST times, calls that stop N_TRAPPED
times.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (RESULTS, fmt_cmdline, loadavg, machine_lines, median,  # noqa: E402
                     resolve_program, umview_command, wait_for_idle)

HERE = Path(__file__).resolve().parent

CALLS = ["getppid", "uname", "clock_gettime"]

# mode -> (options after `umview`, or None for native, description)
MODE_DESC = {
    "native": "the program alone",
    "view": "`umview --` (empty view)",
    "misc": "`umview -p misc --`",
    "misc-clock": "`umview -p misc,time_offset=1 --`",
    "trap-all": "`umview -S --` (every call stops; unclaimed ones resumed by the C core)",
    "pinned": "`umview --pin --`",
    "misc-pinned": "`umview --pin -p misc --`",
    "misc-clock-pinned": "`umview --pin -p misc,time_offset=1 --`",
    "trap-all-pinned": "`umview -S --pin --`",
    "proot": "`proot PROG` (reference; Debian's PRoot has no seccomp mode: two stops per call)",
    "c-floor": "benchmarks/ptrace_floor.c: a minimal C tracer (seccomp RET_TRACE, blocking "
               "waitpid, PTRACE_CONT; nothing else): the floor for one stop on this machine",
    "c-floor-pinned": "the same, tracer and tracee pinned to one CPU",
}
MODE_OPTS = {
    "native": None,
    "view": [],
    "misc": ["-p", "misc"],
    "misc-clock": ["-p", "misc,time_offset=1"],
    "trap-all": ["-S"],
    "pinned": ["--pin"],
    "misc-pinned": ["--pin", "-p", "misc"],
    "misc-clock-pinned": ["--pin", "-p", "misc,time_offset=1"],
    "trap-all-pinned": ["-S", "--pin"],
    "proot": None,
    "c-floor": None,
    "c-floor-pinned": None,
}

# Which modes each call is measured in.  "served" says where the call is
# answered (what the targets compare).
PLAN = {
    "getppid": ["native", "view", "misc", "pinned", "trap-all", "trap-all-pinned", "c-floor",
                "c-floor-pinned", "proot"],
    "uname": ["native", "view", "trap-all", "misc", "trap-all-pinned", "misc-pinned", "proot"],
    "clock_gettime": ["native", "view", "misc", "trap-all", "misc-clock", "trap-all-pinned",
                      "misc-clock-pinned", "proot"],
}


def served(call: str, mode: str) -> str:
    if mode == "native":
        return "kernel"
    if mode == "proot":
        return "stops (PRoot)"
    if mode.startswith("c-floor"):
        return "stop, minimal C tracer"
    if mode.startswith("trap-all"):
        return "stop, resumed in C"
    if call == "uname" and mode.startswith("misc") and not mode.startswith("misc-clock"):
        return "stop, served in Python"
    if call == "clock_gettime" and mode.startswith("misc-clock"):
        return "stop, served in Python"
    return "unclaimed (no stop)"


def trap_partner(mode: str) -> str:
    """The bare trapped-and-resumed-in-C mode with the same pinning."""
    return "trap-all-pinned" if mode.endswith("-pinned") else "trap-all"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", default=",".join(CALLS))
    ap.add_argument("--modes", default=None,
                    help="restrict to these modes (default: the plan for each call)")
    ap.add_argument("--n-fast", type=int, default=200000)
    ap.add_argument("--n-trapped", type=int, default=20000)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--wait-idle", type=float, default=30.0, metavar="SECONDS",
                    help="before each round, wait up to SECONDS for the machine to be less "
                         "than 25%% busy over one second (0: do not wait)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", default=str(RESULTS / "micro.md"))
    args = ap.parse_args()

    umview = umview_command()
    proot = resolve_program("proot")
    notes = []
    calls = [c for c in args.calls.split(",") if c]
    for c in calls:
        if c not in PLAN:
            ap.error(f"unknown call {c!r} (known: {', '.join(PLAN)})")
    only = set(args.modes.split(",")) if args.modes else None
    pairs = []
    for c in calls:
        for m in PLAN[c]:
            if only is not None and m not in only and m != "native":
                continue
            if m == "proot" and not proot:
                continue
            pairs.append((c, m))
    if not proot:
        notes.append("proot was not installed: its reference rows were skipped.")

    tmp = Path(tempfile.mkdtemp(prefix="umview-micro-"))
    try:
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            print("no C compiler (cc/gcc) on PATH", file=sys.stderr)
            return 2
        prog = tmp / "microbench"
        subprocess.run([cc, "-O2", "-o", str(prog), str(HERE / "microbench.c")], check=True)
        floor = tmp / "ptrace_floor"
        subprocess.run([cc, "-O2", "-o", str(floor), str(HERE / "ptrace_floor.c")], check=True)

        def argv(call: str, mode: str) -> list[str]:
            stops = served(call, mode) != "unclaimed (no stop)" and mode != "native"
            n = args.n_trapped if stops else args.n_fast
            cmd = [str(prog), call, str(n)]
            if mode == "native":
                return cmd
            if mode == "proot":
                return [proot] + cmd
            if mode.startswith("c-floor"):
                return [str(floor), str(n)] + (["pin"] if mode.endswith("-pinned") else [])
            return umview + MODE_OPTS[mode] + ["--"] + cmd

        res: dict[tuple[str, str], list[float]] = {p: [] for p in pairs}
        errors: list[str] = []
        rng = random.Random(args.seed)
        load_start = loadavg()
        t_start = time.monotonic()
        busy = []
        for r in range(args.rounds):
            if args.wait_idle > 0:
                busy.append(wait_for_idle(args.wait_idle))
                print(f"[round {r + 1}] machine {busy[-1][0]:.0%} busy before the round "
                      f"(waited {busy[-1][1]:.0f} s)", file=sys.stderr)
            order = list(pairs)
            rng.shuffle(order)
            for c, m in order:
                a = argv(c, m)
                try:
                    p = subprocess.run(a, capture_output=True, text=True, timeout=args.timeout,
                                       stdin=subprocess.DEVNULL)
                except subprocess.TimeoutExpired:
                    errors.append(f"{c} / {m}, round {r + 1}: timed out")
                    continue
                fields = p.stdout.split()
                if p.returncode != 0 or len(fields) != 3 or fields[0] not in (c, "floor"):
                    tail = " / ".join(p.stderr.strip().splitlines()[-3:])
                    errors.append(f"{c} / {m}, round {r + 1}: exit status {p.returncode}"
                                  f"{': ' + tail if tail else ''}")
                    print(f"[round {r + 1}] {c:14s} {m:18s} ERROR", file=sys.stderr)
                    continue
                ns = float(fields[2])
                res[(c, m)].append(ns)
                print(f"[round {r + 1}] {c:14s} {m:18s} {ns:10.1f} ns", file=sys.stderr)
        elapsed = time.monotonic() - t_start
        load_end = loadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = {p: median(v) for p, v in res.items() if v}
    L = ["# umview_py per-call cost", ""]
    L.append(f"Command: `{fmt_cmdline()}`")
    L.append("")
    L += machine_lines(umview)
    L.append(f"- rounds: {args.rounds}, interleaved, shuffled order in each round; "
             f"N = {args.n_fast} calls per run when the call does not stop, "
             f"{args.n_trapped} when it stops; total {elapsed:.0f} s; "
             f"load average at start {load_start}, at end {load_end}")
    if busy:
        L.append("- CPU busy (all processes) over 1 s before each round: " +
                 ", ".join(f"{b:.0%}" + (f" after waiting {w:.0f} s" if w >= 1 else "")
                           for b, w in busy))
    L.append("")
    L.append("ns/call is the median over rounds of the loop's time divided by N.  "
             "\"vs trapped\" is the extra cost over the bare stop resumed in C "
             "(`-S`, same pinning) for calls served in Python.")
    L.append("")
    L.append("| call | mode | where it is answered | ns/call | − native | vs trapped |")
    L.append("|---|---|---|---:|---:|---:|")
    for c, m in pairs:
        if (c, m) not in med:
            L.append(f"| {c} | {m} | {served(c, m)} | ERROR | | |")
            continue
        v = med[(c, m)]
        nat = med.get((c, "native"))
        dn = f"{v - nat:+.0f} ns" if nat is not None and m != "native" else ""
        vt = ""
        if served(c, m) == "stop, served in Python":
            t = med.get((c, trap_partner(m)))
            if t is not None:
                vt = f"{(v - t) / 1000:+.1f} µs"
        L.append(f"| {c} | {m} | {served(c, m)} | {v:.0f} | {dn} | {vt} |")
    L.append("")
    L.append("Modes:")
    L.append("")
    for m in dict.fromkeys(m for _, m in pairs):
        L.append(f"- {m}: {MODE_DESC[m]}")
    L.append("")
    if errors:
        L.append("Errors (not timed):")
        L.append("")
        L += [f"- {e}" for e in errors]
        L.append("")
    for n in notes:
        L += [f"Note: {n}", ""]
    L.append("Target (issue): a call served by a Python module costs <= 15 µs more than the "
             "bare trapped-and-resumed-in-C stop (\"vs trapped\" column).")
    text = "\n".join(L) + "\n"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written to {out}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
