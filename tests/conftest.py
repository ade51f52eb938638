"""Shared fixtures: running commands natively and in a view, building the
small C helper programs of tests/progs."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PROGS = HERE / "progs"
UMVIEW = [sys.executable, "-m", "umview_py"]
TIMEOUT = 300


def _env(extra=None):
    env = dict(os.environ)
    # the console scripts (umview-insmod, ...) live beside the interpreter
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("LC_ALL", "C")
    env.update(extra or {})
    return env


def run_native(cmd, *, cwd=None, input=None, env=None, timeout=TIMEOUT):
    return subprocess.run(cmd, cwd=cwd, input=input, env=_env(env), capture_output=True,
                          timeout=timeout)


def run_view(cmd, *options, cwd=None, input=None, env=None, timeout=TIMEOUT):
    """Run cmd (a list) in a new view with the given umview options."""
    return subprocess.run(UMVIEW + list(options) + ["--"] + list(cmd), cwd=cwd, input=input,
                          env=_env(env), capture_output=True, timeout=timeout)


def assert_same(native, view):
    """Differential check: same stdout, stderr and exit status."""
    assert view.stdout == native.stdout, (view.stdout[-2000:], native.stdout[-2000:])
    assert view.stderr == native.stderr, (view.stderr[-2000:], native.stderr[-2000:])
    assert view.returncode == native.returncode


def core_stats_text(text):
    """The C core's counters from what umview -vv wrote (the last report)."""
    return {k: int(v) for k, v in re.findall(r"'(\w+)': (\d+)", text.split("core statistics:")[-1])}


def core_stats(log):
    """The C core's counters from a view's log (umview -vv --log FILE)."""
    return core_stats_text(Path(log).read_text())


@pytest.fixture(scope="session")
def progs(tmp_path_factory):
    """Compiles tests/progs/*.c once; returns a dict name -> path.  A file
    whose name ends in _static.c is linked statically."""
    out = tmp_path_factory.mktemp("progs")
    built = {}
    for src in sorted(PROGS.glob("*.c")):
        name = src.stem
        cmd = ["gcc", "-O1", "-Wall", "-o", str(out / name), str(src), "-lpthread"]
        if name.endswith("_static"):
            cmd.insert(1, "-static")
        subprocess.run(cmd, check=True, capture_output=True)
        built[name] = str(out / name)
    return built
