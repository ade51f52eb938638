"""vfs in nested views: a child view's mounts go on top of its parent's."""
from conftest import UMVIEW, run_view


def test_child_view_mounts_over_parents(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("from the host\n")
    inner = ("ls /umvtest; cat /umvtest/b2/f; echo made > /umvtest/t/x; cat /umvtest/t/x; "
             "cd /umvtest/b2 && /bin/pwd; grep -c umview /proc/self/mounts")
    script = (f"{' '.join(UMVIEW)} --tmpfs /umvtest/t -b /umvtest/b:/umvtest/b2 -- sh -c '{inner}'; "
              "echo outer; ls /umvtest")
    r = run_view(["sh", "-c", script], "-b", f"{src}:/umvtest/b")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\n") == [
        "b", "b2", "t",              # the parent's mount point and the child's
        "from the host", "made",     # a bind of a path that exists only in the parent view
        "/umvtest/b2", "3",
        "outer", "b", ""]            # the parent view never sees the child's mounts
    assert not (src / "x").exists()
