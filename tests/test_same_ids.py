"""A fake root whose processes all have the same ids lets its programs
answer getuid & co. themselves (Claims.same_ids, the shim's identity
section): the answers are the module's, with and without the shim; a
change (setresuid to another euid) is seen at once by the process that
made it, and not by a child forked before; and while nothing changed,
those calls make no stop."""

import pytest

from conftest import core_stats_text, run_view


@pytest.mark.parametrize("ids", [[], ["-i", "1000:1000"]])
def test_identity_calls_answered_in_the_program(progs, tmp_path, ids):
    outs, stops = {}, {}
    for shim in ("1", "0"):
        log = tmp_path / f"log{shim}"
        r = run_view([progs["sameids"], "1000"], "-0", *ids, "-vv", "--log", str(log),
                     env={"UMVIEW_SHIM": shim})
        assert r.returncode == 0, r.stderr
        outs[shim] = r.stdout.decode()
        stops[shim] = core_stats_text(log.read_text())["seccomp_stops"]
    assert outs["1"] == outs["0"]
    lines = outs["1"].splitlines()
    if not ids:
        assert lines == [
            "start: uid=0 euid=0 gid=0 egid=0 res=0,0,0 resg=0,0,0",
            "no-op changes: 0 0 0 0 0",
            "start spawn: uid=0(root) gid=0(root) groups=0(root)",
            "change: 0",
            "after: uid=0 euid=1234 gid=0 egid=0 res=0,1234,0 resg=0,0,0",
            "eaccess: 0",
            "after spawn: uid=0(root) gid=0(root) groups=0(root)",
            "child forked before: uid=0 euid=0 gid=0 egid=0 res=0,0,0 resg=0,0,0",
        ], lines
    else:
        assert lines[0] == "start: uid=1000 euid=1000 gid=1000 egid=1000 res=1000,1000,1000 resg=1000,1000,1000"
    # 4,000 identity calls in the loop: each a stop without the shim
    assert stops["0"] > 4000 > 100 > stops["1"], stops
