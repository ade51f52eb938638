"""Nested views, the Python scripting API, --trace and --stats."""
import os
import re
import subprocess
import sys
import textwrap

import pytest
import trio

import umview_py
from conftest import UMVIEW, _env, run_view

REAL_RELEASE = os.uname().release


def gone(pid):
    """Dead: no such process, or a zombie waiting for its (new) parent."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
REAL_NODE = os.uname().nodename


def test_three_levels_each_adding_a_module():
    # level 1: release, level 2: hostname, level 3: a clock offset (misc
    # instances stack: each answers what it sets, call.next() for the rest)
    script = textwrap.dedent("""
        umview -V two --hostname level2 -- sh -c '
            umview -V three --time-offset 31536000 -- sh -c "uname -rn; date +%Y; umview-lsmod"
            echo after: $(uname -rn)
            umview-rmmod misc; echo unloaded: $(uname -rn)'
        echo outer: $(uname -rn)
    """)
    r = run_view(["sh", "-c", script], "-V", "one", "-p", "misc,release=1.1.1")
    out = r.stdout.decode().splitlines()
    assert r.returncode == 0, r.stderr
    assert out[0] == "level2 1.1.1"
    assert int(out[1]) == int(subprocess.run(["date", "+%Y"], capture_output=True).stdout) + 1
    assert [line.split()[:2] for line in out[3:6]] == [["misc", "three"], ["misc", "two"], ["misc", "one"]]
    # the middle level unloads its module: its own hostname is gone, the
    # outer release stays; the outer view is not affected
    assert out[6] == "after: level2 1.1.1"
    assert out[7] == f"unloaded: {REAL_NODE} 1.1.1"
    assert out[8] == f"outer: {REAL_NODE} 1.1.1"


def test_no_nesting_refuses_inner_umview():
    r = run_view(["sh", "-c", "umview -- true; echo status=$?"], "-x")
    assert r.stdout == b"status=1\n"
    assert b"does not allow nested views" in r.stderr


def test_inner_view_with_bad_module_fails_cleanly():
    r = run_view(["sh", "-c", "umview -p nosuch -- true; echo status=$?; uname -r"], "-p", "misc,release=2.2")
    assert r.stdout == b"status=2\n2.2\n"
    assert b"unknown module" in r.stderr


async def test_api_from_outside_a_view(tmp_path):
    async with umview_py.View(name="build", modules=["misc,release=5.5"]) as view:
        await view.insmod("misc", hostname="builder") if False else None
        r = await view.run(["uname", "-rn"], capture_output=True)
        assert (r.returncode, r.stdout) == (0, f"{REAL_NODE} 5.5\n".encode())
        assert r.stats[("misc", "uname")][0] == 1
        async with view.nest(name="inner", modules=[("misc", {"hostname": "in"})]) as inner:
            r2 = await inner.run(["sh", "-c", "uname -rn; exit 3"], capture_output=True)
            assert (r2.returncode, r2.stdout) == (3, b"in 5.5\n")
            assert await inner.lsmod() == ["misc", "misc"]
        r3 = await view.run(["cat"], input=b"hello\n", capture_output=True)
        assert r3.stdout == b"hello\n"
        await view.rmmod("misc")
        r4 = await view.run(["uname", "-r"], capture_output=True)
        assert r4.stdout.decode().strip() == REAL_RELEASE


async def test_api_module_instance_and_kill_on_exception(tmp_path):
    from umview_modules.misc import Misc

    fifo = tmp_path / "pid"
    os.mkfifo(fifo)
    pids = []
    caught = []
    try:
        async with umview_py.View(modules=[Misc(release="6.6")]) as view:
            r = await view.run(["uname", "-r"], capture_output=True)
            assert r.stdout == b"6.6\n"
            async with trio.open_nursery() as nursery:
                nursery.start_soon(view.run, ["sh", "-c", f"echo $$ > {fifo}; exec sleep 1000"])
                with trio.fail_after(30):  # a guard; the read returns as soon as sh writes
                    pids.append(int(await trio.to_thread.run_sync(fifo.read_text)))
                raise RuntimeError("stop here")
    except* RuntimeError as group:  # bare or grouped, depending on trio's version
        caught.extend(group.exceptions)
    assert [str(e) for e in caught] == ["stop here"]
    assert gone(pids[0])


async def test_api_run_returns_while_the_view_has_other_processes(tmp_path):
    """The core keeps forks and exits in its queue until Python needs them
    (docs/design.md): a run ends as soon as its own process does, while
    another process of the view (here blocked on a FIFO) and its children
    come and go."""
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    async with umview_py.View() as view:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(view.run, ["sh", "-c", f"true; /bin/true; read x < {fifo}"])
            with trio.fail_after(30):   # a guard: these end at once
                for i in range(5):
                    r = await view.run(["sh", "-c", f"/bin/true; exit {i}"])
                    assert r.returncode == i
            await trio.to_thread.run_sync(fifo.write_text, "go\n")


def _fds_on(path) -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            pass
    return n


async def test_api_nested_views_with_mounts_leave_no_fd(tmp_path):
    """A view that ends gives back what the core kept for its mounts (an
    fd of each bind's source): a script that makes many views does not
    run out of fds."""
    import json
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    mounts = json.dumps([["bind", str(src), "/umvtest/b", {}]])
    async with umview_py.View() as outer:
        for _ in range(10):
            async with outer.nest(modules=[("vfs", {"mounts": mounts})]) as inner:
                r = await inner.run(["cat", "/umvtest/b/f"], capture_output=True)
                assert r.stdout == b"x"
                assert _fds_on(src) >= 1   # the core's, while the mount is there
        assert _fds_on(src) == 0


async def test_api_cancel_kills_the_tree(tmp_path):
    marker = tmp_path / "pids"
    async with umview_py.View() as view:
        with trio.move_on_after(3):
            await view.run(["sh", "-c", f"sleep 1000 & echo $! > {marker}; wait"])
        assert gone(int(marker.read_text()))


def test_blocking_run_helper():
    r = umview_py.run(["uname", "-r"], modules=["misc,release=7.7"], capture_output=True)
    assert (r.returncode, r.stdout) == (0, b"7.7\n")
    r = umview_py.run(["sh", "-c", "kill -9 $$"])
    assert r.returncode == -9


def test_api_from_inside_a_view(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(textwrap.dedent("""
        import trio, umview_py
        async def main():
            async with umview_py.View(name="sub", modules=["misc,hostname=subhost"]) as view:
                r = await view.run(["sh", "-c", "uname -rn; umview-lsmod"], capture_output=True)
                print(r.returncode, r.stdout.decode().split("\\n")[0])
                print(await view.lsmod(), r.stats[("misc", "uname")][0] >= 1)
            print("outside:", __import__("os").uname().nodename)
        trio.run(main)
    """))
    r = run_view([sys.executable, str(script)], "-V", "top", "-p", "misc,release=4.4")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ["0 subhost 4.4", "['misc', 'misc'] True", f"outside: {REAL_NODE}"]


TRACE_LINE = re.compile(r"^\[pid (\d+)\] (\w+)\((.*)\) = (-?\d+)(?: (\w+) \(.*\))? <(\w+)>$")


def test_trace_parsed_back(tmp_path):
    target = tmp_path / "hello.txt"
    target.write_text("hi\n")
    out = tmp_path / "trace.txt"
    r = run_view(["sh", "-c", f"uname -r; cat {target}; cat {tmp_path}/missing"],
                 "--trace=%file,misc", "-o", str(out), "--stats", "-p", "misc,release=3.3")
    assert r.stdout == b"3.3\nhi\n"
    calls = []
    stats_part = []
    for line in out.read_text().splitlines():
        m = TRACE_LINE.match(line)
        if m:
            calls.append(m.groups())
        elif "+++" not in line:
            stats_part.append(line)
    opened = [c for c in calls if c[1] == "openat" and str(target) in c[2]]
    assert opened and int(opened[0][3]) >= 3 and opened[0][5] == "kernel"
    missing = [c for c in calls if c[1] == "openat" and "missing" in c[2]]
    assert missing and missing[0][3] == "-1" and missing[0][4] == "ENOENT"
    unames = [c for c in calls if c[1] == "uname"]
    assert unames and unames[0][5] == "misc" and unames[0][3] == "0"
    # --stats adds up to the calls traced
    total = [line for line in stats_part if line.rstrip().endswith("total")]
    assert total and int(total[0].split()[2]) == len(calls)
    errors = sum(1 for c in calls if c[3].startswith("-"))
    assert int(total[0].split()[3]) == errors


def test_trace_rejects_unknown_class():
    r = subprocess.run(UMVIEW + ["--trace=%bogus", "--", "true"], capture_output=True, env=_env())
    assert r.returncode == 2 and b"unknown class" in r.stderr


def test_trace_shows_signals_and_exits():
    r = run_view(["sh", "-c", 'trap "echo got" INT; kill -INT $$; sh -c "kill -TERM \\$\\$"; exit 4'],
                 "--trace=misc", "-p", "misc")
    err = r.stderr.decode().splitlines()
    assert r.returncode == 4 and r.stdout == b"got\n"
    assert any(re.fullmatch(r"\[pid \d+\] --- SIGINT ---", line) for line in err)
    assert any(re.fullmatch(r"\[pid \d+\] \+\+\+ killed by SIGTERM \+\+\+", line) for line in err)
    assert re.fullmatch(r"\[pid \d+\] \+\+\+ exited with 4 \+\+\+", err[-1])


def test_umview_name_shows_the_chain():
    r = run_view(["sh", "-c", "umview-name; umview -V mid -- umview -V leaf -- umview-name"], "-V", "top")
    assert r.stdout.decode().splitlines() == ["top", "leaf", "parents: mid < top"]

