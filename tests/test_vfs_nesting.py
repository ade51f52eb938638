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


async def test_python_api_mounts(tmp_path):
    import umview_py
    from umview_modules.vfs import Vfs

    (tmp_path / "f").write_text("api\n")
    vfs = Vfs(mounts=[["bind", str(tmp_path), "/umvtest/api", {}]])
    async with umview_py.View(modules=[vfs]) as view:
        r = await view.run(["cat", "/umvtest/api/f"], capture_output=True)
        assert (r.returncode, r.stdout) == (0, b"api\n")
        vfs.add_mount("tmpfs", "", "/umvtest/scratch")
        r = await view.run(["sh", "-c", "echo x > /umvtest/scratch/y && ls /umvtest"],
                           capture_output=True)
        assert (r.returncode, r.stdout) == (0, b"api\nscratch\n")
