#!/usr/bin/env python3
"""Fake-root benchmarks: real programs natively, under `umview -0`, `fakeroot` and pseudo.

    python3 benchmarks/fakeroot.py [--rounds N] [--workloads a,b,...] [--modes m1,m2,...]
                                   [--wait-idle S] [--no-stats] [--out FILE.md]

Workloads (those of benchmarks/run.py): python (imports), tar (an archive of
/usr/include), make (make -j2 of a generated 41-file C project), ls (ls -lR
/usr/share), startup (`true`).  Modes: native, view (`umview --`, an empty
view: umview's own start-up), umview-0 (`umview -0 --`), fakeroot (Debian's
`fakeroot --`, LD_PRELOAD + faked), pseudo (`fakeroot-pseudo`, LD_PRELOAD +
pseudo's sqlite server).  Each round runs every (workload, mode) pair once in
a freshly shuffled order; the tables give medians over rounds, and ratios to
native are taken inside each round (time drifts a lot on the shared machine).

umview is run from this repository (its directory and modules/ are put first
on the interpreter's path by a `python3 -c` bootstrap, not by PYTHONPATH, so
that the programs measured see the same environment in every mode).  It
ends as the installed `umview` script does (console_main: os._exit after
flushing, no interpreter teardown, which cost ~30 ms a run here).

After the timed rounds, one untimed run per workload under
`umview --stats -0 -vv` gives where the time goes: the C core's counters
(seccomp stops, calls sent to Python, mean Python time per call) and the
handler time per syscall.  Result: benchmarks/results/fakeroot.md.
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
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (REPO, RESULTS, fmt_cmdline, loadavg, machine_lines, median,  # noqa: E402
                     resolve_program, table_head, wait_for_idle)

# the same workloads, modes and runner as run.py
from run import Mode, Workload, make_workloads, pick_names, run_once  # noqa: E402
ALL_WORKLOADS = ["python", "tar", "make", "ls", "startup"]
ALL_MODES = ["native", "view", "umview-0", "fakeroot", "pseudo"]


# -------------------------------------------------------------------- modes

def umview_here() -> list[str]:
    """umview from this repository, whatever package is installed."""
    py = resolve_program("python3") or sys.executable
    boot = (f"import sys; sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'modules')!r}]; "
            "from umview_py.cli import console_main; console_main()")
    return [py, "-c", boot]


def version_of(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return ((p.stdout or p.stderr).strip().splitlines() or ["?"])[0]
    except (OSError, subprocess.SubprocessError):
        return "?"


def make_modes(umview: list[str]) -> tuple[dict[str, Mode], list[str]]:
    notes = []
    modes = {
        "native": Mode("native", "the command alone"),
        "view": Mode("view", "`umview -- CMD`: an empty view (umview's start-up, no call stops)",
                     umview + ["--"]),
        "umview-0": Mode("umview-0", "`umview -0 -- CMD`: the fakeroot module (stat family, "
                                     "identity, chown/chmod/mknod, execve, xattr writes claimed)",
                         umview + ["-0", "--"]),
    }
    fakeroot = resolve_program("fakeroot")
    if fakeroot:
        modes["fakeroot"] = Mode("fakeroot", f"`fakeroot -- CMD` ({fakeroot}, "
                                             f"{version_of([fakeroot, '--version'])})",
                                 [fakeroot, "--"])
    else:
        notes.append("fakeroot is not installed: its mode was skipped (`apt-get install -y fakeroot`).")
    pseudo = resolve_program("fakeroot-pseudo")
    if pseudo:
        modes["pseudo"] = Mode("pseudo", f"`fakeroot-pseudo CMD` ({pseudo}, "
                                         f"{version_of([pseudo, '--version'])})", [pseudo])
    else:
        notes.append("pseudo is not installed: its mode was skipped (`apt-get install -y pseudo`).")
    return modes, notes


# ------------------------------------------------------------------ running

def where_time_goes(wl: Workload, umview: list[str], tmp: Path, timeout: float):
    """One untimed `umview --stats -0 -vv` run: (core counters, --stats table
    text, wall seconds) or None."""
    log, stats = tmp / "core.log", tmp / "stats.txt"
    for f in (log, stats):
        f.unlink(missing_ok=True)
    probe = Mode("probe", "", umview + ["--stats", "-o", str(stats), "-vv", "--log", str(log),
                                        "-0", "--"])
    dt, err = run_once(wl, probe, timeout)
    if dt is None:
        return None
    try:
        m = re.search(r"core statistics: (\{[^}]*\})", log.read_text(errors="replace"))
        core = ast.literal_eval(m.group(1)) if m else None
        table = stats.read_text(errors="replace").strip()
    except (OSError, ValueError, SyntaxError):
        return None
    return core, table, dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workloads", default=",".join(ALL_WORKLOADS))
    ap.add_argument("--modes", default=",".join(ALL_MODES))
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    ap.add_argument("--wait-idle", type=float, default=60.0, metavar="SECONDS",
                    help="before each round, wait up to SECONDS for the machine to be less than "
                         "25%% busy over one second (0: do not wait)")
    ap.add_argument("--no-warmup", action="store_true")
    ap.add_argument("--no-stats", action="store_true",
                    help="skip the untimed `umview --stats -0 -vv` run per workload")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", default=str(RESULTS / "fakeroot.md"))
    args = ap.parse_args()

    umview = umview_here()
    tmp = Path(tempfile.mkdtemp(prefix="umview-fr-bench-"))
    try:
        workloads = make_workloads(tmp)
        modes, notes = make_modes(umview)
        wl_names = pick_names(ap, args.workloads, workloads, what="workload")
        mode_names = pick_names(ap, args.modes, ALL_MODES, available=modes)  # not installed: in the notes
        if "native" not in mode_names:
            mode_names.insert(0, "native")
        rng = random.Random(args.seed)
        if not args.no_warmup:
            print("warm-up (untimed): each workload natively, `umview -0 -- true`", file=sys.stderr)
            for w in wl_names:
                run_once(workloads[w], modes["native"], args.timeout)
            run_once(workloads["startup"], modes["umview-0"], args.timeout)
        times = {(w, m): {} for w in wl_names for m in mode_names}
        errors = {(w, m): [] for w in wl_names for m in mode_names}
        busy = []
        load_start, t_start = loadavg(), time.monotonic()
        for r in range(args.rounds):
            if args.wait_idle > 0:
                b, waited = wait_for_idle(args.wait_idle)
                busy.append((b, waited))
            pairs = [(w, m) for w in wl_names for m in mode_names]
            rng.shuffle(pairs)
            for w, m in pairs:
                dt, err = run_once(workloads[w], modes[m], args.timeout)
                if dt is None:
                    errors[(w, m)].append(f"round {r + 1}: {err}")
                    print(f"[round {r + 1}/{args.rounds}] {w:8s} {m:9s} ERROR {err}", file=sys.stderr)
                else:
                    times[(w, m)][r] = dt
                    print(f"[round {r + 1}/{args.rounds}] {w:8s} {m:9s} {dt:8.3f} s", file=sys.stderr)
        elapsed, load_end = time.monotonic() - t_start, loadavg()
        diag = {}
        if not args.no_stats and "umview-0" in mode_names:
            print("where the time goes (untimed: umview --stats -0 -vv)", file=sys.stderr)
            for w in wl_names:
                if w != "startup":
                    diag[w] = where_time_goes(workloads[w], umview, tmp, args.timeout)
        out = render(args, umview, workloads, modes, wl_names, mode_names, times, errors, notes,
                     elapsed, load_start, load_end, busy, diag)
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(out)
        print(out)
        print(f"written to {path}", file=sys.stderr)
        return 1 if any(errors.values()) else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- rendering

def ratios(times, w, m):
    nat = times[(w, "native")]
    return [t / nat[r] for r, t in times[(w, m)].items() if r in nat and nat[r] > 0]


def startup_free(times, w, m):
    """(t - startup_mode) / (t_native - startup_native), per round."""
    s0, n0 = times.get(("startup", m)), times.get(("startup", "native"))
    if not s0 or not n0:
        return []
    s0, n0 = median(list(s0.values())), median(list(n0.values()))
    nat = times[(w, "native")]
    return [(t - s0) / (nat[r] - n0) for r, t in times[(w, m)].items()
            if r in nat and nat[r] - n0 > 0]


def render(args, umview, workloads, modes, wl_names, mode_names, times, errors, notes, elapsed,
           load_start, load_end, busy, diag) -> str:
    L = ["# Fake-root benchmarks: umview -0, fakeroot, pseudo", ""]
    L.append(f"Command: `{fmt_cmdline()}`")
    L.append("")
    L += [line for line in machine_lines(umview) if not line.startswith("- umview:")]
    L.append("- umview: this repository's code (`python3 -c` bootstrap putting the repository "
             "and modules/ first on sys.path), "
             + next((x.split(", repository at ", 1)[1] for x in machine_lines(umview)
                     if x.startswith("- umview:")), "?"))
    L.append(f"- rounds: {args.rounds}, interleaved, shuffled order in each round; total "
             f"{elapsed / 60:.1f} min; load average at start {load_start}, at end {load_end}")
    if busy:
        L.append("- CPU busy over 1 s before each round: "
                 + ", ".join(f"{b:.0%}" + (f" after waiting {w:.0f} s" if w >= 1 else "")
                             for b, w in busy))
    L.append("")
    L.append("Each cell: median wall seconds, and the median over rounds of the ratio to that "
             "round's native run.")
    L.append("")
    L += table_head(wl_names)
    for m in mode_names:
        row = []
        for w in wl_names:
            t = times[(w, m)]
            if not t:
                row.append(f"ERROR ({len(errors[(w, m)])})" if errors[(w, m)] else "–")
                continue
            cell = f"{median(list(t.values())):.3f} s"
            rs = ratios(times, w, m)
            if m != "native" and rs:
                cell += f" ({median(rs):.2f}x)"
            if errors[(w, m)]:
                cell += f", {len(errors[(w, m)])} ERROR"
            row.append(cell)
        L.append(f"| {m} | " + " | ".join(row) + " |")
    L.append("")
    others = [w for w in wl_names if w != "startup"]
    if "startup" in wl_names and others:
        L.append("With each mode's median start-up (`true`) subtracted from both sides, "
                 "(t - startup_mode) / (t_native - startup_native): the slowdown while the "
                 "program runs (noisy for python, which is about as short as umview's start-up).")
        L.append("")
        L += table_head(others)
        for m in mode_names:
            if m == "native":
                continue
            L.append(f"| {m} | " + " | ".join(
                f"{median(rs):.2f}x" if (rs := startup_free(times, w, m)) else "–" for w in others)
                + " |")
        L.append("")
        L.append("Start-up (`true`), median: " + ", ".join(
            f"{m} {median(list(times[('startup', m)].values())) * 1000:.0f} ms"
            for m in mode_names if times[("startup", m)]))
        L.append("")
    # the targets
    if "umview-0" in mode_names and "fakeroot" in mode_names:
        L.append("Targets of the issue (whole-command ratios, medians over rounds):")
        L.append("")

        def med(w, m, fn=ratios):
            rs = fn(times, w, m) if (w, m) in times else []
            return median(rs) if rs else None
        for w in ("tar", "ls"):
            u, f = med(w, "umview-0"), med(w, "fakeroot")
            if u is not None and f is not None:
                L.append(f"- {w}: umview -0 {u:.2f}x, fakeroot {f:.2f}x: target ≤ {f / 2:.2f}x "
                         f"(half of fakeroot's) — {'met' if u <= f / 2 else 'NOT met'}")
        u = med("make", "umview-0")
        if u is not None:
            us = med("make", "umview-0", startup_free)
            L.append(f"- make -j2: umview -0 {u:.2f}x native (start-up subtracted: "
                     f"{us:.2f}x): target ≤ 1.2x — {'met' if u <= 1.2 else 'NOT met'}"
                     if us is not None else
                     f"- make -j2: umview -0 {u:.2f}x native: target ≤ 1.2x — "
                     f"{'met' if u <= 1.2 else 'NOT met'}")
        L.append("")
    if diag:
        L.append("Where the time goes under `umview -0` (one untimed run per workload with "
                 "`umview --stats -0 -vv`): seccomp stops, of which sent to Python, the mean time "
                 "per call spent in Python (dispatch and handler, from the core's counters), and "
                 "the handler time per syscall from `--stats`.")
        L.append("")
        L.append("| workload | wall | seccomp stops | to Python | Python per call | "
                 "Python total | busiest handlers |")
        L.append("|---|---|---|---|---|---|---|")
        for w, d in diag.items():
            if d is None:
                L.append(f"| {w} | ? | | | | | |")
                continue
            core, table, dt = d
            top = []
            for line in table.splitlines():
                f = line.split()
                if len(f) >= 6 and re.fullmatch(r"[0-9.]+", f[0]) and f[-2] != "total":
                    top.append(f"{f[-2]} {f[3]} x {f[2]} µs")
            core = core or {}
            py_ns, to_py = core.get("python_ns", 0), core.get("to_python", 0)
            per_call = f"{py_ns / to_py / 1000:.1f} µs" if to_py else "–"
            L.append(f"| {w} | {dt:.2f} s | {core.get('seccomp_stops', '?')} | {to_py} | {per_call} | "
                     f"{py_ns / 1e9:.2f} s | {'; '.join(top[:4])} |")
        L.append("")
    for n in notes:
        L.append(f"Note: {n}")
    if notes:
        L.append("")
    L.append("Workloads:")
    L.append("")
    for w in wl_names:
        L.append(f"- {w}: {workloads[w].desc}")
    L.append("")
    L.append("Modes:")
    L.append("")
    for m in mode_names:
        L.append(f"- {m}: {modes[m].desc}")
    L.append("")
    errs = [(k, e) for k, v in errors.items() for e in v]
    if errs:
        L.append("Errors:")
        L.append("")
        for (w, m), e in errs:
            L.append(f"- {w} / {m}: {e}")
        L.append("")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
