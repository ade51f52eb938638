"""Helpers shared by benchmarks/run.py and benchmarks/micro.py (no third-party imports)."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def resolve_program(name: str) -> str | None:
    """Absolute path of `name` on PATH, seeing through pyenv shims.

    A pyenv shim is a bash script that runs `pyenv exec`: it adds tens of
    milliseconds (and hundreds of system calls) to every start, which would be
    charged to whatever is measured.  Benchmarks run the real program.
    """
    path = shutil.which(name)
    if path is None:
        return None
    if "/shims/" in path and shutil.which("pyenv"):
        try:
            real = subprocess.run(["pyenv", "which", name], capture_output=True,
                                  text=True, check=True).stdout.strip()
            if real and os.access(real, os.X_OK):
                return real
        except (OSError, subprocess.CalledProcessError):
            pass
    return path


def umview_command() -> list[str]:
    """The `umview` console script if on PATH, else `python3 -m umview_py`."""
    exe = resolve_program("umview")
    if exe:
        return [exe]
    py = resolve_program("python3") or sys.executable
    return [py, "-m", "umview_py"]


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def git_state() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{head}{' + uncommitted changes' if dirty else ''}" if head else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _cpu_times() -> tuple[int, int]:
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)        # idle + iowait
    return sum(f), idle


def busy_fraction(interval: float = 1.0) -> float:
    """Fraction of all CPUs busy over `interval` seconds (whoever runs)."""
    try:
        t0, i0 = _cpu_times()
        time.sleep(interval)
        t1, i1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return 0.0
    return 0.0 if t1 == t0 else 1.0 - (i1 - i0) / (t1 - t0)


def wait_for_idle(max_wait: float, threshold: float = 0.25) -> tuple[float, float]:
    """Wait (at most max_wait seconds) until the machine is less than
    `threshold` busy over one second.  Returns (busy fraction seen last,
    seconds waited)."""
    t0 = time.monotonic()
    while True:
        b = busy_fraction()
        waited = time.monotonic() - t0 - 1.0     # the first sample is not waiting
        if b < threshold or waited >= max_wait:
            return b, max(waited, 0.0)


def machine_lines(umview: list[str]) -> list[str]:
    """Markdown bullet lines describing the machine and the software measured."""
    uname = os.uname()
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: nproc={ncpu}, {cpu_model()}",
        f"- kernel: {uname.sysname} {uname.release} {uname.machine}",
        f"- python (benchmark driver): {platform.python_version()} ({sys.executable})",
        f"- umview: `{shlex.join(umview)}` ({_first_line(umview + ['--version'])}), "
        f"repository at {git_state()}",
    ]


def table_head(cols) -> list[str]:
    """The two header lines of a Markdown table with a mode column first."""
    cols = list(cols)
    return ["| mode | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def fmt_cmdline() -> str:
    return shlex.join([sys.executable] + sys.argv)


def compile_c(name: str, tmp: Path) -> str | None:
    """benchmarks/NAME.c built with cc -O2 into tmp: the executable's path,
    or None without a compiler or when it does not build."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    exe = tmp / name
    r = subprocess.run([cc, "-O2", "-o", str(exe), str(Path(__file__).resolve().parent / f"{name}.c")],
                       capture_output=True)
    return str(exe) if r.returncode == 0 else None
