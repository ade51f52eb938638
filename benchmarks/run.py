#!/usr/bin/env python3
"""Workload benchmarks: wall time of real programs natively, in views, and under PRoot.

    python3 benchmarks/run.py [--rounds N] [--workloads a,b,...] [--modes m1,m2,...]
                              [--slow-rounds K] [--out FILE.md]

Each round runs every (workload, mode) pair once, in a freshly shuffled order;
the wall time of each run is taken with time.perf_counter() around
subprocess.run() (stdout to /dev/null).  A run whose exit status is not 0 is
reported as an error and never timed.  The table gives, per (workload, mode),
the median seconds and the median ratio to native, the ratio being computed in
each round against that round's native run (time on these machines drifts a
lot for ptrace-heavy work, so only interleaved comparisons mean anything).

Each workload but startup also runs under benchmarks/timer.c inside its mode
(`umview -- timer FILE CMD`), which times the program alone, without the
mode's start and end: the "work alone" table (--no-timer: not).

Workloads: python, tar, make, ls, startup (see WORKLOADS below).
Modes: native, floor, view, misc, misc-clock, trap-all, pinned, proot (see MODES).
"""

from __future__ import annotations

import argparse
import ast
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (RESULTS, compile_c, fmt_cmdline, loadavg, machine_lines, median,  # noqa: E402
                     resolve_program, table_head, umview_command, wait_for_idle)

# ---------------------------------------------------------------- workloads

HEADERS = ["stdio.h", "stdlib.h", "string.h", "unistd.h", "math.h", "errno.h",
           "fcntl.h", "sys/stat.h"]
NFILES = 40


def generate_make_project(root: Path) -> None:
    """40 C files, each including the 8 system headers, plus main.c and a link step."""
    root.mkdir(parents=True, exist_ok=True)
    includes = "".join(f"#include <{h}>\n" for h in HEADERS)
    objs = []
    for i in range(NFILES):
        (root / f"f{i:02d}.c").write_text(
            f"{includes}\n"
            f"int f{i:02d}(int x)\n{{\n"
            f"    struct stat st;\n"
            f"    char buf[64];\n"
            f"    snprintf(buf, sizeof buf, \"%d\", x + {i});\n"
            f"    if (stat(buf, &st) < 0 && errno == EBADF) return -1;\n"
            f"    return (int)strlen(buf) + (int)sqrt((double)(x * x)) + (access(buf, F_OK) == 0)"
            f" + (O_RDONLY ? 1 : 0) + (int)(getpid() & 0) + abs(-{i});\n}}\n")
        objs.append(f"f{i:02d}.o")
    decls = "".join(f"int f{i:02d}(int);\n" for i in range(NFILES))
    calls = "".join(f"    s += f{i:02d}(argc);\n" for i in range(NFILES))
    (root / "main.c").write_text(
        f"#include <stdio.h>\n{decls}\nint main(int argc, char **argv)\n{{\n"
        f"    int s = 0;\n    (void)argv;\n{calls}    printf(\"%d\\n\", s);\n    return 0;\n}}\n")
    objs.append("main.o")
    (root / "Makefile").write_text(
        "CC ?= cc\nCFLAGS ?= -O2 -Wall\n"
        f"OBJS = {' '.join(objs)}\n\n"
        "prog: $(OBJS)\n\t$(CC) $(CFLAGS) -o $@ $(OBJS) -lm\n\n"
        "%.o: %.c\n\t$(CC) $(CFLAGS) -c -o $@ $<\n\n"
        "clean:\n\trm -f prog $(OBJS)\n\n.PHONY: clean\n")


@dataclass
class Workload:
    name: str
    desc: str                     # as shown in the output
    argv: list[str]               # the command (no shell)
    cwd: str | None = None
    before: list[str] | None = None   # untimed, run natively before each timed run
    after: object = None              # untimed callable after each run
    work_file: str | None = None      # where a timer inside the mode writes the program's seconds


def make_workloads(tmp: Path) -> dict[str, Workload]:
    py = resolve_program("python3") or sys.executable
    tar_out = tmp / "out.tar"
    proj = tmp / "proj"
    generate_make_project(proj)

    def rm_tar() -> None:
        tar_out.unlink(missing_ok=True)

    return {
        "python": Workload("python", "`python3 -c 'import json, email, http.client, asyncio, decimal'`",
                           [py, "-c", "import json, email, http.client, asyncio, decimal"]),
        "tar": Workload("tar", "`tar cf OUT -C /usr include`",
                        ["tar", "cf", str(tar_out), "-C", "/usr", "include"], after=rm_tar),
        "make": Workload("make", f"`make -s -j2` ({NFILES} files x {len(HEADERS)} headers + link; "
                                 "`make clean` untimed before each build)",
                         ["make", "-s", "-j2"], cwd=str(proj), before=["make", "-s", "clean"]),
        "ls": Workload("ls", "`ls -lR /usr/share > /dev/null`", ["ls", "-lR", "/usr/share"]),
        "startup": Workload("startup", "`true`", ["true"]),
    }


# -------------------------------------------------------------------- modes

@dataclass
class Mode:
    name: str
    desc: str
    prefix: list[str] = field(default_factory=list)
    slow: bool = False            # may run in fewer rounds (--slow-rounds)
    only: tuple = ()              # run with these workloads only (empty: all)


def make_modes(umview: list[str], floor: str | None = None) -> tuple[dict[str, Mode], list[str]]:
    notes = []
    modes = {
        "native": Mode("native", "the command alone"),
        "view": Mode("view", "empty view: `umview -- CMD`", umview + ["--"]),
        "misc": Mode("misc", "`umview -p misc -- CMD` (uname family claimed)",
                     umview + ["-p", "misc", "--"]),
        "misc-clock": Mode("misc-clock", "`umview -p misc,time_offset=1 -- CMD` "
                                         "(clock calls served in Python, vDSO hidden)",
                           umview + ["-p", "misc,time_offset=1", "--"]),
        "trap-all": Mode("trap-all", "`umview -S -- CMD` (every call stops, resumed by the C core)",
                         umview + ["-S", "--"], slow=True),
        "pinned": Mode("pinned", "`umview --pin -- CMD` (hypervisor and view on one CPU)",
                       umview + ["--pin", "--"]),
    }
    if floor:
        # What no ptrace tool that follows every process can go below on
        # this machine: each fork costs three stops however little the
        # tracer does with them.
        modes["floor"] = Mode("floor", "`follow_floor CMD` (benchmarks/follow_floor.c: a minimal C "
                                       "tracer that follows every process, with an allow-all "
                                       "seccomp filter, and resumes each stop at once: the floor "
                                       "for an empty view)", [floor])
    else:
        notes.append("no C compiler: the `floor` mode (benchmarks/follow_floor.c) was skipped.")
    interp = umview_interpreter(umview)
    if interp:
        # What umview's start-up cannot go below: its Python interpreter
        # starting with the same site (the .pth files of site-packages run
        # at every start, and differ from machine to machine).
        modes["interp"] = Mode("interp", f"`{interp} -c pass` (startup only: the interpreter "
                                         "that runs umview, starting and doing nothing)",
                               [interp, "-c", "pass"], only=("startup",))
    proot = resolve_program("proot")
    if proot:
        ver = subprocess.run([proot, "--version"], capture_output=True, text=True).stdout
        m = re.search(r"\b\d+\.\d+(\.\d+)?\b", ver)
        vline = f"version {m.group(0)}" if m else ""
        modes["proot"] = Mode("proot", f"`proot CMD` ({proot}{', ' + vline if vline else ''})",
                              [proot], slow=True)
    else:
        notes.append("proot was not installed (not on PATH): the `proot` mode was skipped "
                     "(`apt-get install -y proot` to include it).")
    return modes, notes


def pick_names(ap, text: str, known, available=None, what: str = "mode") -> list[str]:
    """The comma-separated names of text, in order.  A name not in known is
    an argparse error; one that is known but not in available (a peer tool
    not installed here, which the notes then say) is dropped."""
    names = [n for n in text.split(",") if n]
    for n in names:
        if n not in known:
            ap.error(f"unknown {what} {n!r} (known: {', '.join(known)})")
    return [n for n in names if available is None or n in available]


def umview_interpreter(umview: list[str]) -> str | None:
    """The Python that runs umview: the console script's #! line, or the
    interpreter of `python3 -m umview_py`."""
    if len(umview) > 1:
        return umview[0]
    try:
        with open(umview[0], "rb") as f:
            first = f.readline().decode(errors="replace")
    except OSError:
        return None
    return first[2:].split()[0] if first.startswith("#!") and first[2:].strip() else None


# ------------------------------------------------------------------ running

@dataclass
class Result:
    times: dict[int, float] = field(default_factory=dict)     # round -> seconds
    work: dict[int, float] = field(default_factory=dict)      # round -> the program's own seconds
    errors: list[str] = field(default_factory=list)


def run_once(wl: Workload, mode: Mode, timeout: float) -> tuple[float | None, str]:
    if wl.before:
        subprocess.run(wl.before, cwd=wl.cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
    argv = mode.prefix + wl.argv
    with tempfile.TemporaryFile() as err:
        # Not subprocess.run(timeout=...): with a timeout, Popen.wait polls
        # waitpid with sleeps that double up to 50 ms, so a run is seen to
        # end only at the next poll: a 60 ms command measured 64 or 114 ms
        # (the polls fall at 63.5, 113.5, 163.5 ms).  A blocking wait sees
        # the end at once; a timer kills the command if it overstays.
        killed = threading.Event()

        def overstay(p) -> None:
            killed.set()
            p.kill()

        try:
            t0 = time.perf_counter()
            p = subprocess.Popen(argv, cwd=wl.cwd, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=err)
            timer = threading.Timer(timeout, overstay, (p,))
            timer.start()
            try:
                p.wait()
            finally:
                timer.cancel()
            dt = time.perf_counter() - t0
            if killed.is_set():
                return None, f"timed out after {timeout:.0f} s"
        finally:
            if callable(wl.after):
                wl.after()
        if p.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
            return None, f"exit status {p.returncode}" + (": " + " / ".join(tail) if tail else "")
    return dt, ""


def core_stats(wl: Workload, mode: Mode, umview: list[str], tmp: Path,
               timeout: float) -> dict | None:
    """One extra, untimed run with `-vv --log FILE`: the C core's statistics
    (seccomp stops, stops resumed in C, calls sent to Python, all ptrace
    stops), which the hypervisor logs at exit.  None if not available."""
    if mode.prefix[:len(umview)] != umview:
        return None
    log = tmp / "core-stats.log"
    log.unlink(missing_ok=True)
    probe = Mode(mode.name, mode.desc, umview + ["-vv", "--log", str(log)] +
                 mode.prefix[len(umview):])
    dt, _ = run_once(wl, probe, timeout)
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    finally:
        log.unlink(missing_ok=True)
    m = re.search(r"core statistics: (\{[^}]*\})", text)
    if dt is None or not m:
        return None
    try:
        return ast.literal_eval(m.group(1))
    except (ValueError, SyntaxError):
        return None


def slow_round_set(rounds: int, k: int) -> set[int]:
    """k round indices spread evenly over 0..rounds-1."""
    if k >= rounds:
        return set(range(rounds))
    if k <= 0:
        return set()
    if k == 1:
        return {rounds // 2}
    return {round(i * (rounds - 1) / (k - 1)) for i in range(k)}


def run_rounds(jobs: dict, wl_names: list[str], mode_names: list[str], slow_modes: set[str],
               rounds: int, slow_set: set[int], rng: random.Random, wait_idle: float,
               timeout: float, before_round=None, disturbed=None, restarts=None,
               max_restarts: int = 3):
    """The timed rounds.  jobs maps (workload, mode) to the (Workload, Mode)
    pair to run; each round runs every pair once in a freshly shuffled order
    (the slow modes only in the rounds of slow_set).  before_round(r), if
    given, is called before the idle wait of each round.  disturbed(), if
    given, is asked after each run: when it returns a reason (a string), the
    round's runs are thrown away and the round starts again (at most
    max_restarts times per round; the reasons are appended to the list
    restarts).  Returns (results, busy, elapsed seconds, load average at
    start, at end)."""
    results = {(w, m): Result() for w in wl_names for m in mode_names}
    load_start = loadavg()
    t_start = time.monotonic()
    busy = []
    width = max(len(m) for m in mode_names)
    r, tries = 0, 0
    while r < rounds:
        if before_round is not None:
            before_round(r)
        if wait_idle > 0:
            b, waited = wait_for_idle(wait_idle)
            print(f"[round {r + 1}/{rounds}] machine {b:.0%} busy before the round "
                  f"(waited {waited:.0f} s)", file=sys.stderr)
        pairs = [(w, m) for w in wl_names for m in mode_names
                 if (w, m) in jobs and not (m in slow_modes and r not in slow_set)]
        rng.shuffle(pairs)
        times, works, errors, why = {}, {}, {}, None
        for w, m in pairs:
            wl, mode = jobs[(w, m)]
            dt, err = run_once(wl, mode, timeout)
            if dt is not None and wl.work_file:
                try:
                    works[(w, m)] = float(Path(wl.work_file).read_text())
                except (OSError, ValueError):
                    dt, err = None, "the timer wrote no time"
                Path(wl.work_file).unlink(missing_ok=True)
            if dt is None:
                errors[(w, m)] = f"round {r + 1}: {err}"
                print(f"[round {r + 1}/{rounds}] {w:8s} {m:{width}s} ERROR {err}", file=sys.stderr)
            else:
                times[(w, m)] = dt
                print(f"[round {r + 1}/{rounds}] {w:8s} {m:{width}s} {dt:8.3f} s", file=sys.stderr)
            why = disturbed() if disturbed is not None else None
            if why and tries < max_restarts:
                break
        if why and tries < max_restarts:
            tries += 1
            if restarts is not None:
                restarts.append(f"round {r + 1}: {why}")
            print(f"[round {r + 1}/{rounds}] {why}: the round starts again", file=sys.stderr)
            continue
        if why and restarts is not None:
            restarts.append(f"round {r + 1}: {why}, kept after {max_restarts} restarts")
        if wait_idle > 0:
            busy.append((b, waited))
        for k, dt in times.items():
            results[k].times[r] = dt
        for k, dt in works.items():
            results[k].work[r] = dt
        for k, e in errors.items():
            results[k].errors.append(e)
        r, tries = r + 1, 0
    elapsed = time.monotonic() - t_start
    return results, busy, elapsed, load_start, loadavg()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workloads", default="python,tar,make,ls,startup")
    ap.add_argument("--modes", default="native,floor,view,misc,misc-clock,trap-all,pinned,proot,interp")
    ap.add_argument("--slow-rounds", type=int, default=None,
                    help="run the slow modes (trap-all, proot) in only this many of the "
                         "rounds, spread evenly (default: all rounds)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    ap.add_argument("--no-warmup", action="store_true",
                    help="skip the untimed warm-up run of each workload (page cache)")
    ap.add_argument("--wait-idle", type=float, default=60.0, metavar="SECONDS",
                    help="before each round, wait up to SECONDS for the machine to be less "
                         "than 25%% busy over one second (0: do not wait)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--no-stops", action="store_true",
                    help="skip the untimed diagnostic run per (workload, view mode) that "
                         "counts stops with the C core's statistics")
    ap.add_argument("--no-timer", action="store_true",
                    help="do not time the programs alone (benchmarks/timer.c inside each mode)")
    ap.add_argument("--out", default=str(RESULTS / "latest.md"))
    args = ap.parse_args()

    umview = umview_command()
    tmp = Path(tempfile.mkdtemp(prefix="umview-bench-"))
    try:
        all_wl = make_workloads(tmp)
        all_modes, notes = make_modes(umview, compile_c("follow_floor", tmp))
        wl_names = pick_names(ap, args.workloads, all_wl, what="workload")
        mode_names = pick_names(ap, args.modes,
                                [*all_modes, *({"proot", "interp", "floor"} - set(all_modes))],
                                available=all_modes)
        if "native" not in mode_names:
            mode_names.insert(0, "native")      # ratios need it
        rounds = args.rounds
        slow_k = rounds if args.slow_rounds is None else min(args.slow_rounds, rounds)
        slow_set = slow_round_set(rounds, slow_k)
        rng = random.Random(args.seed)

        if not args.no_warmup:
            print("warm-up (untimed): each workload natively, and `umview -- true`", file=sys.stderr)
            for w in wl_names:
                run_once(all_wl[w], all_modes["native"], args.timeout)
            run_once(all_wl["startup"], all_modes["view"], args.timeout)

        jobs = {(w, m): (all_wl[w], all_modes[m]) for w in wl_names for m in mode_names
                if not all_modes[m].only or w in all_modes[m].only}
        mode_names = [m for m in mode_names if any((w, m) in jobs for w in wl_names)]
        timer = None if args.no_timer else compile_c("timer", tmp)
        if timer is None and not args.no_timer:
            notes.append("no C compiler: the programs were not timed alone.")
        for (w, m), (wl, mode) in list(jobs.items()):
            if timer and w != "startup" and not mode.only:
                work = str(tmp / f"work-{w}-{m}")
                jobs[(w, m)] = (Workload(wl.name, wl.desc, [timer, work, *wl.argv], cwd=wl.cwd,
                                         before=wl.before, after=wl.after, work_file=work), mode)
        results, busy, elapsed, load_start, load_end = run_rounds(
            jobs, wl_names, mode_names, {m for m in mode_names if all_modes[m].slow},
            rounds, slow_set, rng, args.wait_idle, args.timeout)
        stops = {}
        if not args.no_stops:
            print("counting stops (untimed, -vv --log)", file=sys.stderr)
            for w in wl_names:
                for m in mode_names:
                    st = core_stats(all_wl[w], all_modes[m], umview, tmp, args.timeout)
                    if st is not None:
                        stops[(w, m)] = st

        out = render(args, umview, all_wl, all_modes, wl_names, mode_names, results, notes,
                     rounds, slow_k, elapsed, load_start, load_end, stops, busy)
        outp = Path(args.out)
        outp.parent.mkdir(parents=True, exist_ok=True)
        outp.write_text(out)
        print(out)
        print(f"written to {outp}", file=sys.stderr)
        return 1 if any(r.errors for r in results.values()) else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


TARGETS = ("Targets (issue): empty view <= 1.03x native on python, tar, make, ls (the work "
           "alone); startup <= 60 ms.")


def render(args, umview, all_wl, all_modes, wl_names, mode_names, results, notes,
           rounds, slow_k, elapsed, load_start, load_end, stops, busy,
           title="umview_py workload benchmarks", header_lines=(), extra_lines=(),
           targets=TARGETS) -> str:
    """The Markdown report.  header_lines: more bullet lines for the header;
    extra_lines: more lines after the tables (before the errors and notes);
    targets: the last line."""
    L = [f"# {title}", ""]
    L.append(f"Command: `{fmt_cmdline()}`")
    L.append("")
    L += machine_lines(umview)
    L.append(f"- rounds: {rounds} (slow modes: {slow_k}), interleaved, shuffled order in each "
             f"round; total {elapsed / 60:.1f} min; load average at start {load_start}, "
             f"at end {load_end}")
    if busy:
        L.append("- CPU busy (all processes) over 1 s before each round: " +
                 ", ".join(f"{b:.0%}" + (f" after waiting {w:.0f} s" if w >= 1 else "")
                           for b, w in busy) +
                 " (the driver waits up to --wait-idle seconds for < 25%; other work that "
                 "starts during a round is not seen here)")
    L += list(header_lines)
    L.append("")
    L.append("Each cell: median wall seconds, and the median over rounds of the ratio to that "
             "round's native run.")
    L.append("")

    def cell(w: str, m: str) -> str:
        res = results[(w, m)]
        if not res.times:
            return f"ERROR ({len(res.errors)} failed)" if res.errors else "–"
        med = median(list(res.times.values()))
        nat = results[(w, "native")].times
        ratios = [t / nat[r] for r, t in res.times.items() if r in nat and nat[r] > 0]
        s = f"{med:.3f} s"
        if m != "native" and ratios:
            s += f" ({median(ratios):.2f}x)"
        if res.errors:
            s += f", {len(res.errors)} ERROR"
        return s

    # Table: one row per mode, one column per workload (like PEERS.md).
    L += table_head(wl_names)
    for m in mode_names:
        L.append(f"| {m} | " + " | ".join(cell(w, m) for w in wl_names) + " |")
    L.append("")
    timed = [w for w in wl_names if any(results[(w, m)].work for m in mode_names)]
    if timed:
        L.append("The work alone: each program timed by benchmarks/timer.c inside its mode "
                 "(`umview -- timer FILE CMD`: a fork, an exec and a wait, the same in every "
                 "mode), so without the mode's start and end.  Median seconds, and the median "
                 "over rounds of the ratio to that round's native run.  The targets are read "
                 "here (`floor`, where it runs, is the least any tracer that follows every "
                 "process costs on this machine).")
        L.append("")
        L += table_head(timed)
        for m in mode_names:
            row = []
            for w in timed:
                t, n = results[(w, m)].work, results[(w, "native")].work
                if not t:
                    row.append("–")
                    continue
                rs = [t[r] / n[r] for r in t if r in n and n[r] > 0]
                c = f"{median(list(t.values())):.3f} s"
                row.append(c + (f" ({median(rs):.2f}x)" if m != "native" and rs else ""))
            L.append(f"| {m} | " + " | ".join(row) + " |")
        L.append("")
    if "startup" in wl_names and len(wl_names) > 1:
        L.append("The same, with each mode's startup (its median `true` time) subtracted from "
                 "both sides: (t - startup_mode) / (t_native - startup_native), median over "
                 "rounds.  This is the slowdown while the program runs; it is noisy where the "
                 "workload is short next to startup and its spread (python).")
        L.append("")
        others = [w for w in wl_names if w != "startup"]
        L += table_head(others)
        for m in mode_names:
            if m == "native":
                continue
            row = []
            for w in others:
                t, n = results[(w, m)].times, results[(w, "native")].times
                s0 = list(results[("startup", m)].times.values())
                n0 = list(results[("startup", "native")].times.values())
                if not s0 or not n0:
                    row.append("–")
                    continue
                s0, n0 = median(s0), median(n0)
                rs = [(t[r] - s0) / (n[r] - n0) for r in t if r in n and n[r] - n0 > 0]
                row.append(f"{median(rs):.2f}x" if rs else "–")
            L.append(f"| {m} | " + " | ".join(row) + " |")
        L.append("")
    if "startup" in wl_names:
        L.append("Startup in milliseconds (median; difference to native):")
        L.append("")
        nat = results[("startup", "native")].times
        for m in mode_names:
            t = results[("startup", m)].times
            if t:
                d = [t[r] - nat[r] for r in t if r in nat]
                extra = f", +{median(d) * 1000:.1f} ms" if m != "native" and d else ""
                L.append(f"- {m}: {median(list(t.values())) * 1000:.1f} ms{extra} (n={len(t)})")
        L.append("")
    if stops:
        L.append("Stops per run, from the C core's statistics (one extra untimed run with "
                 "`-vv --log`): seccomp stops / of which sent to Python / all ptrace stops "
                 "(lifecycle included), and the mean time per call inside Python.  An empty "
                 "view should show no seccomp stops at all.")
        L.append("")
        L += table_head(wl_names)
        for m in mode_names:
            if not any((w, m) in stops for w in wl_names):
                continue
            row = []
            for w in wl_names:
                st = stops.get((w, m))
                if st is None:
                    row.append("?")
                    continue
                c = f"{st.get('seccomp_stops', '?')} / {st.get('to_python', '?')} / " \
                    f"{st.get('stops', '?')}"
                if st.get("to_python"):
                    c += f" ({st.get('python_ns', 0) / st['to_python'] / 1000:.0f} µs)"
                row.append(c)
            L.append(f"| {m} | " + " | ".join(row) + " |")
        L.append("")
    L.append("Runs per cell: " + ", ".join(
        f"{m}={max(len(results[(w, m)].times) for w in wl_names)}" for m in mode_names))
    L.append("")
    L.append("Workloads:")
    L.append("")
    for w in wl_names:
        L.append(f"- {w}: {all_wl[w].desc}")
    L.append("")
    L.append("Modes:")
    L.append("")
    for m in mode_names:
        L.append(f"- {m}: {all_modes[m].desc}")
    L.append("")
    L += list(extra_lines)
    errs = [(w, m, e) for (w, m), r in results.items() for e in r.errors]
    if errs:
        L.append("Errors (these runs were not timed):")
        L.append("")
        for w, m, e in errs:
            L.append(f"- {w} / {m}: {e}")
        L.append("")
    for n in notes:
        L.append(f"Note: {n}")
        L.append("")
    L.append(targets)
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    sys.exit(main())
