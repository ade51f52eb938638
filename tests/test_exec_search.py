"""execvp and its kin in a view: the shim (native/umvshim.c, "execvp")
passes over the $PATH entries that lack the file without a stop, and
otherwise searches as glibc does: misses, a file where a directory should
be, a file that is not executable (EACCES, the search goes on), a script
without #! (run by /bin/sh), an empty entry (the cwd), PATH unset."""
import shutil

import pytest

from conftest import assert_same, core_stats, run_native, run_view


@pytest.fixture
def bindir(progs, tmp_path):
    d = tmp_path / "bin"
    (d / "noexec").mkdir(parents=True)
    shutil.copy(progs["execsearch"], d / "found")
    (d / "noshebang").write_text('echo "ran noshebang $2"\n')
    (d / "noshebang").chmod(0o755)
    for name in ("found", "noshebang"):
        shutil.copy(d / name, d / "noexec" / name)
        (d / "noexec" / name).chmod(0o644)
    (tmp_path / "empty").mkdir()
    return d


@pytest.mark.parametrize("mode", ["fakeroot", "bind"])
def test_exec_search_as_glibc_without_stops_for_misses(progs, bindir, tmp_path, mode):
    cmd = [progs["execsearch"], str(bindir)]
    native = run_native(cmd, cwd=bindir)
    out = native.stdout.decode()
    assert native.returncode == 0 and "ran found execvpe" in out and "ran noshebang execlp" in out, out
    assert "]: EACCES" in out and "]: ENOENT" in out and "execvp  [/bin]: ENOENT" in out, out
    opts = ["-0"] if mode == "fakeroot" else ["-b", f"{tmp_path / 'empty'}:/umvtest/b"]
    counts = {}
    for shim in ("1", "0"):
        log = tmp_path / f"umview-{shim}.log"
        view = run_view(cmd, *opts, "-vv", "--log", str(log), cwd=bindir, env={"UMVIEW_SHIM": shim})
        assert_same(native, view)
        st = core_stats(log)
        # a fake root's execs stop (ptrace); a vfs view's reach the core's listener
        counts[shim] = st["seccomp_stops"] if mode == "fakeroot" else st["notif_calls"]
    # 3 x 6 x 4 searches, most of them passing over two or more entries
    assert counts["1"] + 90 < counts["0"], counts
