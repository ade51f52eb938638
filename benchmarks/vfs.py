#!/usr/bin/env python3
"""File-system benchmarks: run.py's workloads natively, in views with vfs mounts, and under PRoot.

    python3 benchmarks/vfs.py [--rounds N] [--workloads a,b,...] [--modes m1,m2,...]
                              [--slow-rounds K] [--out FILE.md]

Each workload reads an input directory (python: the standard library, tar:
/usr/include, make: a generated C project, ls: /usr/share).  The modes differ
in where that input is seen: at its own host path (native, view,
umview-bind-outside), or at /umvtest/w, a path that does not exist on the
host, through a bind mount, a copy-on-write mount or PRoot's -b, or copied
into a tmpfs at /umvtest/t.  Rounds, shuffling, medians and ratios are those
of run.py (each round runs every (workload, mode) pair once; ratios are taken
against the same round's native run).  Before the rounds, every pair runs once,
untimed, with its output summarised and compared with the native run's
(the "check" table); after them, one untimed run per umview pair counts stops.
Result: benchmarks/results/vfs.md.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (RESULTS, compile_c, git_state, median, resolve_program, table_head,  # noqa: E402
                     umview_command)
from run import (HEADERS, NFILES, Mode, Workload, core_stats, generate_make_project, pick_names,  # noqa: E402
                 render, run_rounds, slow_round_set)

GUEST = "/umvtest/w"          # where the input is seen in the *-inside and cow modes
TMPFS = "/umvtest/t"          # the tmpfs of umview-tmpfs
OUTSIDE = "/umvtest/b"        # the bind mount of umview-bind-outside (nothing uses it)
IMPORTS = "import json, email, http.client, asyncio, decimal"

ALL_WORKLOADS = ["python", "tar", "make", "ls", "startup"]
ALL_MODES = ["native", "native-copy", "view", "umview-bind-outside", "umview-bind-inside",
             "umview-tmpfs", "umview-cow", "proot-bind-inside"]


# ---------------------------------------------------------------- workloads

@dataclass
class FsWorkload:
    """A workload whose input is the host directory `input`, seen at
    ROOT/`sub` where ROOT depends on the mode.  argv(ROOT) is the command;
    if in_root, it runs with ROOT as its working directory.  check(ROOT) is
    a shell command whose output summarise() turns into the lines compared
    with the native run's."""
    name: str
    desc: str
    input: str
    sub: str
    argv: object                          # root -> list[str]
    check: object                         # root -> shell text
    in_root: bool = False
    exclude: list[str] = field(default_factory=list)   # not copied into the tmpfs
    before: list[str] | None = None       # untimed, natively, before each run
    after: object = None                  # untimed, after each run
    summarise: object = None              # stdout -> list[str]; None: stdout's lines
    root_in_output: bool = False          # the output names ROOT: replaced before comparing
    copy_may_differ: tuple = ()           # summary lines (by prefix) that may differ in a copy


def _digest(lines) -> str:
    h = hashlib.sha256()
    for x in lines:
        h.update(x.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()[:16]


def _summarise_tar(out: str) -> list[str]:
    """Archive size, member count, a digest of the `tar tvf` listing sorted
    by name (readdir order may differ between file systems), and the line of
    the top directory."""
    lines = out.splitlines()
    size = lines[0].strip() if lines else "?"
    listing = sorted(lines[1:], key=lambda x: x.split(None, 5)[-1])
    return [f"archive bytes: {size}", f"members: {len(listing)}",
            f"sorted listing digest: {_digest(listing)}"] + \
           [f"top: {x}" for x in listing if x.split(None, 5)[-1] == "./"]


def _summarise_ls(out: str) -> list[str]:
    """Lines and bytes of `ls -lR .`, and a digest of (mode string, name)
    of every entry and of the directory headers: what must be equal in every
    mode.  Sizes of directories (and so the column widths and the bytes)
    legitimately differ in a copy on another file system."""
    lines = out.splitlines()
    keep = []
    for x in lines:
        if not x or x.startswith("total "):
            continue
        if x.startswith(".") and x.endswith(":"):          # a directory header
            keep.append(x)
            continue
        f = x.split(None, 8)
        keep.append(f"{f[0]} {f[-1]}" if len(f) == 9 else x)
    return [f"lines: {len(lines)}", f"bytes: {len(out.encode('utf-8', 'surrogateescape'))}",
            f"entries: {sum(1 for k in keep if not k.endswith(':'))}",
            f"(mode, name) digest: {_digest(keep)}"]


def make_workloads(tmp: Path) -> dict[str, FsWorkload]:
    py = resolve_program("python3") or sys.executable
    info = subprocess.run([py, "-c", "import sys, sysconfig; "
                                     "print(sys.prefix); print(sysconfig.get_paths()['stdlib'])"],
                          capture_output=True, text=True, check=True).stdout.split("\n")
    prefix, stdlib = os.path.realpath(info[0]), os.path.realpath(info[1])
    sub = os.path.relpath(stdlib, prefix)
    tar_out = tmp / "out.tar"
    proj = tmp / "proj"
    generate_make_project(proj)
    empty = tmp / "empty"
    empty.mkdir(exist_ok=True)

    def rm_tar() -> None:
        tar_out.unlink(missing_ok=True)

    def py_argv(root: str) -> list[str]:
        return ["env", f"PYTHONHOME={root}", py, "-S", "-c", IMPORTS]

    def py_check(root: str) -> str:
        code = (f"{IMPORTS}, sys; print(sys.prefix); print(len(sys.modules)); "
                "[print(m.__name__, m.__file__) for m in (json, email, http.client, asyncio, decimal)]")
        return shlex.join(["env", f"PYTHONHOME={root}", py, "-S", "-c", code])

    return {
        "python": FsWorkload(
            "python", f"`env PYTHONHOME=ROOT python3 -S -c '{IMPORTS}'`; the standard library "
                      f"{stdlib} is seen at ROOT/{sub} (-S: no site-packages, whose .pth files "
                      "import third-party code here; the tmpfs copy leaves out site-packages "
                      "and test)",
            stdlib, sub, py_argv, py_check, exclude=["./site-packages", "./test"],
            root_in_output=True),
        "tar": FsWorkload(
            "tar", "`tar cf OUT -C ROOT .` of /usr/include (OUT on the host, outside every "
                   "mount, deleted after each run)",
            "/usr/include", ".", lambda root: ["tar", "cf", str(tar_out), "-C", root, "."],
            lambda root: f"tar cf {shlex.quote(str(tar_out))} -C {shlex.quote(root)} . && "
                         f"wc -c < {shlex.quote(str(tar_out))} && tar tvf {shlex.quote(str(tar_out))}",
            after=rm_tar, summarise=_summarise_tar),
        "make": FsWorkload(
            "make", f"`make -s -j2` in ROOT, a generated C project ({NFILES} files x "
                    f"{len(HEADERS)} headers + link, as run.py's); `make -s clean` natively, "
                    "untimed, before each build",
            str(proj), ".", lambda root: ["make", "-s", "-j2"],
            lambda root: "make -s -j2 && ./prog && ls", in_root=True,
            before=["make", "-s", "-C", str(proj), "clean"]),
        "ls": FsWorkload(
            "ls", "`ls -lR .` in ROOT, /usr/share (stdout to /dev/null)",
            "/usr/share", ".", lambda root: ["ls", "-lR", "."], lambda root: "ls -lR .",
            in_root=True, summarise=_summarise_ls, copy_may_differ=("bytes:",)),
        "startup": FsWorkload(
            "startup", "`true` in ROOT, an empty directory (the mode's mount and working "
                       "directory; nothing copied)",
            str(empty), ".", lambda root: ["true"], lambda root: "true", in_root=True),
    }


# -------------------------------------------------------------------- modes

@dataclass
class FsMode:
    name: str
    desc: str
    slow: bool = False


def make_modes(umview: list[str]) -> tuple[dict[str, FsMode], list[str], str | None]:
    notes = []
    modes = {
        "native": FsMode("native", "the command alone, on the input's host path"),
        "native-copy": FsMode("native-copy", "natively, the input first copied with "
                              "`tar -C INPUT -cf - . | tar -C DIR -xf -` into a new directory on "
                              "/dev/shm, then the command there (the copy is timed, the removal "
                              "is not; the work after it is also timed alone): the native counterpart of "
                              "umview-tmpfs"),
        "view": FsMode("view", "`umview -- CMD`: an empty view, input at its host path"),
        "umview-bind-outside": FsMode(
            "umview-bind-outside", f"`umview -b EMPTYDIR:{OUTSIDE} -- CMD`: a bind mount that "
                                   "the work never enters (input at its host path)"),
        "umview-bind-inside": FsMode(
            "umview-bind-inside", f"`umview -b INPUT:{GUEST}[/SUB] [-w {GUEST}] -- CMD`: the "
                                  f"input bind-mounted at {GUEST} (not on the host), the work "
                                  "done there"),
        "umview-tmpfs": FsMode(
            "umview-tmpfs", f"`umview --tmpfs {TMPFS} -- sh -c 'tar -C INPUT -cf - . | tar -C "
                            f"{TMPFS}[/SUB] -xf - && cd {TMPFS} && exec CMD'`: the input "
                            "copied into a tmpfs, then the work done there; **the copy is "
                            "included in the time** (compare with native-copy); the work after the copy is also "
                            "timed alone, by a timer around CMD", slow=True),
        "umview-cow": FsMode(
            "umview-cow", f"`umview --mount type=cow,source=INPUT,target={GUEST}[/SUB] "
                          f"[-w {GUEST}] -- CMD`: a copy-on-write mount over the input (writes "
                          "go to memory), the work done there"),
    }
    proot = resolve_program("proot")
    if proot:
        ver = subprocess.run([proot, "--version"], capture_output=True, text=True).stdout
        m = re.search(r"\b\d+\.\d+(\.\d+)?\b", ver)
        modes["proot-bind-inside"] = FsMode(
            "proot-bind-inside", f"`proot -b INPUT:{GUEST}[/SUB] [-w {GUEST}] CMD`, the "
                                 f"reference ({proot}{', version ' + m.group(0) if m else ''})",
            slow=True)
    else:
        notes.append("proot was not installed (not on PATH): `proot-bind-inside` was skipped "
                     "(`apt-get install -y proot` to include it).")
    return modes, notes, proot


# The copy modes also time the work alone, after the copy: the command
# runs under benchmarks/timer.c, which writes its wall seconds to a file.
WORK: dict[tuple[str, str], list[float]] = {}   # (workload, copy mode): the work's seconds, run by run


def _copy_sh(src: str, dest: str, exclude: list[str]) -> str:
    ex = "".join(f" --exclude={shlex.quote(e)}" for e in exclude)
    return (f"mkdir -p {shlex.quote(dest)} && tar -C {shlex.quote(src)}{ex} -cf - . | "
            f"tar -C {shlex.quote(dest)} -xf -")


def build(wl: FsWorkload, mode: str, umview: list[str], proot: str | None, tmp: Path,
          check: bool = False, timer: str | None = None) -> tuple[Workload, Mode, str]:
    """The run.py (Workload, Mode) pair for one (workload, mode), and the
    root the input is seen at (to normalise check outputs).  With check, the
    command is the workload's check command instead (a shell command)."""
    def cmd(root: str) -> list[str]:
        return ["sh", "-c", wl.check(root)] if check else wl.argv(root)

    def at(root: str) -> str:
        return root if wl.sub == "." else f"{root}/{wl.sub}"

    host_root = wl.input if wl.sub == "." else wl.input[:-len(wl.sub) - 1]
    native_cwd = host_root if wl.in_root else str(tmp)
    nm = lambda p, d: Mode(mode, d, p)  # noqa: E731
    after, before = wl.after, wl.before
    work_file = tmp / f"work-{wl.name}-{mode}"

    def timed(argv: list[str]) -> list[str]:
        return argv if check or timer is None else [timer, str(work_file), *argv]

    # the other modes time the program alone too, inside the mode (run.py's
    # work_file): the ratio without the mode's start and end
    alone = timer is not None and not check and mode not in COPY_MODES and wl.name != "startup"

    def run(root: str) -> list[str]:
        return timed(cmd(root)) if alone else cmd(root)

    if timer is not None and not check and mode in COPY_MODES and wl.name != "startup":
        def after(inner=after, key=(wl.name, mode)) -> None:   # noqa: F811
            try:
                WORK.setdefault(key, []).append(float(work_file.read_text()))
                work_file.unlink()
            except (OSError, ValueError):
                pass
            if callable(inner):
                inner()
    if mode == "native":
        argv, cwd, prefix, root = run(host_root), native_cwd, [], host_root
    elif mode == "view":
        argv, cwd, prefix, root = run(host_root), native_cwd, umview + ["--"], host_root
    elif mode == "umview-bind-outside":
        empty = tmp / "empty"
        argv, cwd, root = run(host_root), native_cwd, host_root
        prefix = umview + ["-b", f"{empty}:{OUTSIDE}", "--"]
    elif mode in ("umview-bind-inside", "umview-cow", "proot-bind-inside"):
        root, cwd = GUEST, str(tmp)
        wd = ["-w", GUEST] if wl.in_root else []
        if mode == "umview-bind-inside":
            prefix = umview + ["-b", f"{wl.input}:{at(GUEST)}"] + wd + ["--"]
        elif mode == "umview-cow":
            prefix = umview + ["--mount", f"type=cow,source={wl.input},target={at(GUEST)}"] + \
                wd + ["--"]
        else:
            prefix = [proot, "-b", f"{wl.input}:{at(GUEST)}"] + wd
        argv = run(GUEST)
    elif mode == "umview-tmpfs":
        root, cwd = TMPFS, str(tmp)
        prefix = umview + ["--tmpfs", TMPFS, "--"]
        if wl.name == "startup":
            argv = cmd(TMPFS)
        else:
            argv = ["sh", "-c", _copy_sh(wl.input, at(TMPFS), wl.exclude) +
                    f" && cd {TMPFS} && exec " + shlex.join(timed(cmd(TMPFS)))]
    elif mode == "native-copy":
        base = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else tmp
        d = str(base / f"umview-bench-copy-{os.getpid()}")
        root, cwd, prefix = d, str(tmp), []
        if wl.name == "startup":
            argv = cmd(d)
        else:
            argv = ["sh", "-c", _copy_sh(wl.input, at(d), wl.exclude) +
                    f" && cd {shlex.quote(d)} && exec " + shlex.join(timed(cmd(d)))]

        def after(d=d, inner=after) -> None:
            shutil.rmtree(d, ignore_errors=True)
            if callable(inner):
                inner()
    else:
        raise ValueError(mode)
    return Workload(wl.name, wl.desc, argv, cwd=cwd, before=before, after=after,
                    work_file=str(work_file) if alone else None), nm(prefix, mode), root


# ------------------------------------------------------------------ checks

COPY_MODES = ("native-copy", "umview-tmpfs")     # the input is a copy on another file system


def run_check(wl: Workload, mode: Mode, timeout: float) -> tuple[int | None, str, str]:
    """One untimed run with stdout and stderr kept: (exit status or None
    on timeout, stdout, stderr)."""
    if wl.before:
        subprocess.run(wl.before, cwd=wl.cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
    try:
        p = subprocess.run(mode.prefix + wl.argv, cwd=wl.cwd, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "surrogateescape"), \
            p.stderr.decode("utf-8", "surrogateescape")
    except subprocess.TimeoutExpired:
        return None, "", f"timed out after {timeout:.0f} s"
    finally:
        if callable(wl.after):
            wl.after()


def summary(fw: FsWorkload, out: str, root: str) -> list[str]:
    if fw.root_in_output:
        out = out.replace(root, "ROOT")
    return fw.summarise(out) if fw.summarise else out.splitlines()


def checks(all_wl, wl_names, mode_names, umview, proot, tmp, timeout):
    """Every (workload, mode) once, untimed; its summarised output compared
    with native's.  Returns {(w, m): (status, command, lines, stderr tail)}."""
    res = {}
    native = {}
    for w in wl_names:
        fw = all_wl[w]
        for m in mode_names:
            wl, mode, root = build(fw, m, umview, proot, tmp, check=True)
            rc, out, err = run_check(wl, mode, timeout)
            print(f"[check] {w:8s} {m:20s} exit {rc}", file=sys.stderr)
            command = f"`{shlex.join(mode.prefix + wl.argv)}` (cwd {wl.cwd})"
            tail = err.strip().splitlines()[-15:]
            if rc != 0:
                res[(w, m)] = (f"FAILED (exit {rc})", command, [], tail)
                if m == "native":
                    native[w] = None
                continue
            s = summary(fw, out, root)
            if m == "native":
                native[w] = s
                res[(w, m)] = ("reference", command, s if len(s) <= 12 else s[:12] + ["..."],
                               tail)
                continue
            ref = native.get(w)
            if ref is None:
                res[(w, m)] = ("exit 0 (no native reference)", command, [], tail)
            elif s == ref:
                res[(w, m)] = ("ok", command, [], tail)
            else:
                pairs = [(a, b) for a, b in zip(ref, s) if a != b]
                diff = [f"native `{a}`, here `{b}`" for a, b in pairs]
                if len(ref) != len(s):
                    diff.append(f"{len(ref)} summary lines natively, {len(s)} here")
                soft = m in COPY_MODES and len(ref) == len(s) and \
                    all(a.startswith(fw.copy_may_differ) and b.startswith(fw.copy_may_differ)
                        for a, b in pairs) if fw.copy_may_differ else False
                st = "ok (bytes differ: directory sizes of the copy)" if soft else "DIFFERS"
                res[(w, m)] = (st, command, diff[:10], tail)
    return res


def check_lines(res, wl_names, mode_names) -> list[str]:
    L = ["Checks: one untimed run of each pair before the rounds, its output summarised and "
         "compared with the native run's (python: sys.prefix with ROOT for the input's "
         "location, the number of modules and the modules' files; tar: the archive's size "
         "and its `tar tvf` listing sorted by name; make: the program's output and the "
         "directory's file names; ls: lines, bytes and every entry's mode and name).  "
         "\"ok\": the same as native.", ""]
    L += table_head(wl_names)
    for m in mode_names:
        L.append(f"| {m} | " + " | ".join(res[(w, m)][0] if (w, m) in res else "–"
                                          for w in wl_names) + " |")
    L.append("")
    shown = [(w, m) for w in wl_names for m in mode_names if (w, m) in res and
             (res[(w, m)][0] not in ("ok", "reference") or res[(w, m)][2] or res[(w, m)][3] or
              (res[(w, m)][0] == "reference" and w != "startup"))]
    if shown:
        L.append("Check details (native: the reference summary; other modes: what differs, "
                 "and anything written on stderr):")
        L.append("")
        for w, m in shown:
            st, command, lines, tail = res[(w, m)]
            L.append(f"- {w} / {m}: {st}: {command}")
            for x in lines:
                L.append(f"  - {x}")
            if tail:
                L.append("")
                L.append("  ```")
                L += [f"  {x}" for x in tail]
                L.append("  ```")
        L.append("")
    return L


# ------------------------------------------------------------------ targets

INSIDE_TARGETS = {"python": 1.3, "tar": 2.0, "make": 2.5, "ls": 7.0}
OUTSIDE_TARGET = 1.2
INSIDE_MODES = ["umview-bind-inside", "umview-tmpfs", "umview-cow"]


def work_ratio(work, w: str) -> float | None:
    """umview-tmpfs's work alone (after its copy) over native-copy's, medians."""
    t, n = work.get((w, "umview-tmpfs")), work.get((w, "native-copy"))
    return median(t) / median(n) if t and n and median(n) > 0 else None


def work_lines(work, wl_names) -> list[str]:
    ws = [w for w in wl_names if (w, "native-copy") in work or (w, "umview-tmpfs") in work]
    if not ws:
        return []
    rows = []
    for m in ("native-copy", "umview-tmpfs"):
        cells = [f"{median(work[(w, m)]):.3f} s (n={len(work[(w, m)])})" if work.get((w, m)) else "–"
                 for w in ws]
        rows.append(f"| {m} | " + " | ".join(cells) + " |")
    ratios = [work_ratio(work, w) for w in ws]
    rows.append("| umview-tmpfs / native-copy | " +
                " | ".join(f"{r:.2f}x" if r is not None else "–" for r in ratios) + " |")
    return ["The work alone in the copy modes: the command after the copy, timed inside the run "
            "by a small timer around it (median seconds); the copy into the tmpfs is what "
            "umview-tmpfs's whole time adds over it.", "",
            *table_head(ws)] + rows + [""]


def alone_ratio(results, w: str, m: str) -> float | None:
    """The program alone in mode m over natively, timed inside each (median of rounds)."""
    t, n = results[(w, m)].work, results[(w, "native")].work
    rs = [t[r] / n[r] for r in t if r in n and n[r] > 0]
    return median(rs) if rs else None


def target_lines(results, wl_names, mode_names, work=None) -> list[str]:
    def ratios(w, m, sub):
        t, n = results[(w, m)].times, results[(w, "native")].times
        if not t:
            return None
        if not sub:
            rs = [t[r] / n[r] for r in t if r in n and n[r] > 0]
        else:
            s0 = list(results[("startup", m)].times.values())
            n0 = list(results[("startup", "native")].times.values())
            if not s0 or not n0:
                return None
            s0, n0 = median(s0), median(n0)
            rs = [(t[r] - s0) / (n[r] - n0) for r in t if r in n and n[r] - n0 > 0]
        return median(rs) if rs else None

    rows = []
    for m in mode_names:
        if m == "umview-bind-outside":
            goal = {w: OUTSIDE_TARGET for w in INSIDE_TARGETS}
        elif m in INSIDE_MODES:
            goal = INSIDE_TARGETS
        else:
            continue
        cells = []
        for w in INSIDE_TARGETS:
            if w not in wl_names:
                continue
            raw = ratios(w, m, False)
            sub = ratios(w, m, True) if "startup" in wl_names else None
            if raw is None:
                cells.append("no time")
                continue
            g = goal[w]
            if sub is not None and sub <= 0:
                sub_s = " / – (startup longer than the run: noise)"
                sub = None
            else:
                sub_s = f" / {sub:.2f}x" if sub is not None else ""
            wr = work_ratio(work or {}, w) if m == "umview-tmpfs" else alone_ratio(results, w, m)
            work_s = f" / work alone {wr:.2f}x" if wr is not None else ""
            verdict = "met" if raw <= g else ("met without startup" if sub is not None and sub <= g
                                              else "met for the work alone" if wr is not None and wr <= g
                                              else "NOT met")
            cells.append(f"≤ {g}x: {raw:.2f}x{sub_s}{work_s} {verdict}")
        rows.append(f"| {m} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    ws = [w for w in INSIDE_TARGETS if w in wl_names]
    return ["Targets (issue): outside a mount ≤ 1.2x native; inside a bind, tmpfs or cow mount "
            "python ≤ 1.3x, tar ≤ 2x, make ≤ 2.5x, ls ≤ 7x.  Each cell: the target, the median "
            "ratio to native, then (after /) the ratio with each side's startup subtracted "
            "(the startup-subtracted table above); \"met without startup\" when only the latter is within the "
            "target.  umview-tmpfs includes the copy into the tmpfs; its \"work alone\" is its work "
            "after the copy over native-copy's (the table above); the other modes' is the program "
            "timed alone inside the mode over natively (the work-alone table).", "",
            *table_head(ws)] + rows + [""]


# --------------------------------------------------------------------- main

def pytest_running() -> bool:
    """Whether a process whose command line contains "pytest" runs."""
    try:
        return subprocess.run(["pgrep", "-f", "pytest"], stdout=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False


def wait_for_pytest(max_wait: float) -> float:
    """Wait (at most max_wait seconds) while a pytest process runs; the seconds waited."""
    t0 = time.monotonic()
    announced = False
    while time.monotonic() - t0 < max_wait:
        if not pytest_running():
            break
        if not announced:
            print("pytest is running: waiting for it to finish", file=sys.stderr)
            announced = True
        time.sleep(5)
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workloads", default=",".join(ALL_WORKLOADS))
    ap.add_argument("--modes", default=",".join(ALL_MODES))
    ap.add_argument("--slow-rounds", type=int, default=None,
                    help="run the slow modes (umview-tmpfs, proot-bind-inside) in only this "
                         "many of the rounds, spread evenly (default: all rounds)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    ap.add_argument("--wait-idle", type=float, default=60.0, metavar="SECONDS",
                    help="before each round, wait up to SECONDS for the machine to be less "
                         "than 25%% busy over one second (0: do not wait)")
    ap.add_argument("--wait-pytest", type=float, default=3600.0, metavar="SECONDS",
                    help="before the checks and each round, wait up to SECONDS while a "
                         "process whose command line contains 'pytest' runs (0: do not wait)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--no-checks", action="store_true",
                    help="skip the untimed check run of each pair (it also warms the cache)")
    ap.add_argument("--no-stops", action="store_true",
                    help="skip the untimed run per (workload, umview mode) counting stops")
    ap.add_argument("--out", default=str(RESULTS / "vfs.md"))
    args = ap.parse_args()

    umview = umview_command()
    git_start = git_state()
    tmp = Path(tempfile.mkdtemp(prefix="umview-bench-vfs-"))
    try:
        all_wl = make_workloads(tmp)
        all_modes, notes, proot = make_modes(umview)
        timer = compile_c("timer", tmp)
        wl_names = pick_names(ap, args.workloads, all_wl, what="workload")
        mode_names = pick_names(ap, args.modes, ALL_MODES, available=all_modes)
        if "native" not in mode_names:
            mode_names.insert(0, "native")
        rounds = args.rounds
        slow_k = rounds if args.slow_rounds is None else min(args.slow_rounds, rounds)
        slow_set = slow_round_set(rounds, slow_k)
        rng = random.Random(args.seed)
        jobs = {}
        for w in wl_names:
            for m in mode_names:
                wl, mode, _ = build(all_wl[w], m, umview, proot, tmp, timer=timer)
                jobs[(w, m)] = (wl, mode)

        pytest_waits, restarts = [], []

        def before_round(r: int) -> None:
            if args.wait_pytest > 0:
                pytest_waits.append(wait_for_pytest(args.wait_pytest))

        def disturbed() -> str | None:
            if args.wait_pytest > 0 and pytest_running():
                return "pytest started during the round"
            return None

        check_res = {}
        if not args.no_checks:
            before_round(-1)
            print("checks (untimed): each pair once, output compared with native", file=sys.stderr)
            check_res = checks(all_wl, wl_names, mode_names, umview, proot, tmp, args.timeout)
        results, busy, elapsed, load_start, load_end = run_rounds(
            jobs, wl_names, mode_names, {m for m in mode_names if all_modes[m].slow},
            rounds, slow_set, rng, args.wait_idle, args.timeout, before_round=before_round,
            disturbed=disturbed, restarts=restarts)
        work = {k: list(v) for k, v in WORK.items()}   # the timed rounds' (not the stop counts')
        stops = {}
        if not args.no_stops:
            print("counting stops (untimed, -vv --log)", file=sys.stderr)
            for w in wl_names:
                for m in mode_names:
                    # without the timer: the program's own stops
                    st = core_stats(*build(all_wl[w], m, umview, proot, tmp)[:2], umview, tmp, args.timeout)
                    if st is not None:
                        stops[(w, m)] = st
        git_end = git_state()

        header = []
        if any(x >= 1 for x in pytest_waits):
            header.append("- waited for pytest to finish: " +
                          ", ".join(f"{x:.0f} s" for x in pytest_waits))
        if restarts:
            header.append("- rounds started again (their runs thrown away): " +
                          "; ".join(restarts))
        if git_end != git_start:
            header.append(f"- the repository changed during the run: at start {git_start}, "
                          f"at end {git_end}")
        extra = check_lines(check_res, wl_names, mode_names) if check_res else []
        extra += work_lines(work, wl_names)
        extra += target_lines(results, wl_names, mode_names, work)
        out = render(args, umview, all_wl, all_modes, wl_names, mode_names, results, notes,
                     rounds, slow_k, elapsed, load_start, load_end, stops, busy,
                     title="umview_py file-system benchmarks (vfs mounts)",
                     header_lines=header, extra_lines=extra,
                     targets="ROOT in the workloads is where the mode shows the input: its "
                             f"host path natively, {GUEST} in the *-inside and cow modes, "
                             f"{TMPFS} in umview-tmpfs.")
        outp = Path(args.out)
        outp.parent.mkdir(parents=True, exist_ok=True)
        outp.write_text(out)
        print(out)
        print(f"written to {outp}", file=sys.stderr)
        failed = any(r.errors for r in results.values()) or \
            any(v[0].startswith(("FAILED", "DIFFERS")) for v in check_res.values())
        return 1 if failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
