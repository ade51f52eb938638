"""The vfs mount table and path resolution, without ptrace."""
import errno
import os

import pytest

from umview_modules.vfs import MountError
from umview_modules.vfs.mounts import MountTable, norm
from umview_py.module import SyscallError


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "f").write_text("F")
    (src / "d" / "g").write_text("G")
    os.symlink("d/g", src / "rel")
    os.symlink("/umvtest/other/o", src / "abs")
    os.symlink("..", src / "d" / "up")
    other = tmp_path / "other"
    other.mkdir()
    (other / "o").write_text("O")
    table = MountTable()
    yield table, src, other
    table.cleanup()


def test_bind_and_symlinks_resolve_in_the_view(tree):
    table, src, other = tree
    table.mount("bind", str(src), "/umvtest/b")
    table.mount("bind", str(other), "/umvtest/other")
    res = table.resolve("/umvtest/b/rel")
    assert (res.vpath, res.host) == ("/umvtest/b/d/g", str(src / "d" / "g"))
    # an absolute link is followed in the view, into the other mount
    res = table.resolve("/umvtest/b/abs")
    assert res.host == str(other / "o")
    assert table.resolve("/umvtest/b/abs", follow=False).host == str(src / "abs")
    # '..' through a symlink goes where the link leads, then up
    assert table.resolve("/umvtest/b/d/up/f").host == str(src / "f")
    # '..' above the mount point leaves the mount
    res = table.resolve("/umvtest/b/../other/o")
    assert res.host == str(other / "o")


def test_implicit_parent_directories_list_their_mount_points(tree):
    table, src, _ = tree
    table.mount("bind", str(src), "/umvtest/x/b")
    table.mount("tmpfs", "", "/umvtest/x/t")
    res = table.resolve("/umvtest/x")
    assert res.is_dir and res.implicit
    assert sorted(os.listdir(res.host)) == ["b", "t"]


def test_missing_parent_and_file_as_directory(tree):
    table, src, _ = tree
    table.mount("bind", str(src), "/umvtest/b")
    with pytest.raises(SyscallError) as e:
        table.resolve("/umvtest/b/nope/x")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(SyscallError) as e:
        table.resolve("/umvtest/b/f/x")
    assert e.value.errno == errno.ENOTDIR
    res = table.resolve("/umvtest/b/new")
    assert not res.exists and res.host == str(src / "new")


def test_symlink_loop(tmp_path):
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    table = MountTable()
    table.mount("bind", str(tmp_path), "/umvtest/l")
    with pytest.raises(SyscallError) as e:
        table.resolve("/umvtest/l/a")
    assert e.value.errno == errno.ELOOP
    table.cleanup()


def test_hide_and_to_view(tree):
    table, src, _ = tree
    table.mount("bind", str(src), "/umvtest/b")
    table.mount("hide", "", "/umvtest/b/d")
    assert table.resolve("/umvtest/b/d").host is None
    assert table.to_view(str(src / "f")) == ("/umvtest/b/f", False)
    assert table.to_view("/usr/bin") == ("/usr/bin", True)
    t = table.mount("tmpfs", "", "/umvtest/t")
    assert table.to_view(t.layers[0] + "/a/b") == ("/umvtest/t/a/b", False)


def test_cow_whiteouts_and_opaque_directories(tree):
    table, src, _ = tree
    before = sorted(os.listdir(src))
    m = table.mount("cow", str(src), "/umvtest/c")
    res = table.resolve("/umvtest/c/d/g")
    assert res.layer == 1
    up = table.copy_up(res)
    assert __import__("pathlib").Path(up).read_text() == "G" and up.startswith(m.layers[0])
    assert table.resolve("/umvtest/c/d/g").layer == 0
    # delete d/g and d: whiteouts hide the lower entries
    os.unlink(up)
    table.whiteout(table.resolve("/umvtest/c/d/g", follow=False))
    assert not table.resolve("/umvtest/c/d/g").exists
    os.rmdir(os.path.dirname(up))  # as rmdir in the view does: the upper d goes
    table.whiteout(table.resolve("/umvtest/c/d", follow=False))
    assert not table.resolve("/umvtest/c/d").exists
    # a new d is opaque: the old d's entries stay gone
    res = table.resolve("/umvtest/c/d")
    os.mkdir(table.copy_up(res))
    table.unwhiteout(res, True)
    res = table.resolve("/umvtest/c/d")
    assert res.exists and table.entries(res) == {}
    assert sorted(os.listdir(src)) == before and (src / "d" / "g").exists()


def test_cow_state_persists_in_the_upper_directory(tree, tmp_path):
    table, src, _ = tree
    upper = tmp_path / "upper"
    table.mount("cow", str(src), "/c", {"upper": str(upper)})
    table.whiteout(table.resolve("/c/f"))
    table.cleanup()
    again = MountTable()
    again.mount("cow", str(src), "/c", {"upper": str(upper)})
    assert not again.resolve("/c/f").exists
    assert ".umview-cow" not in again.entries(again.resolve("/c"))
    again.cleanup()


def test_merge_first_wins(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "same").write_text("A")
    (b / "same").write_text("B")
    (b / "only_b").write_text("b")
    table = MountTable()
    m = table.mount("merge", f"{a}:{b}", "/m")
    assert m.readonly
    assert __import__("pathlib").Path(table.resolve("/m/same").host).read_text() == "A"
    res = table.resolve("/m")
    assert table.needs_listing(res)
    assert sorted(table.entries(res)) == ["only_b", "same"]
    listing = table.listing(res)
    assert sorted(os.listdir(listing)) == ["only_b", "same"]
    # what fstat of the open directory shows: the directory's mode and times
    assert os.stat(listing).st_mtime_ns == res.st.st_mtime_ns
    assert os.stat(listing).st_mode == res.st.st_mode
    table.cleanup()


def test_a_listing_has_each_names_type_and_follows_changes(tmp_path):
    """A listing holds a placeholder of each entry's type (what getdents
    shows a reader, find -type): a directory, a symlink, a FIFO, a socket,
    an empty file for a file or a device.  The types come from the
    directory entries (d_type) where the file system gives them; a FIFO or
    a socket, which d_type names but DirEntry does not, is stated.  Made
    again, it follows the layers: a name gone, a name whose type changed,
    a new one."""
    import socket
    import stat
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "file").write_text("x")
    (a / "dir").mkdir()
    (a / "link").symlink_to("dir")
    os.mkfifo(a / "fifo")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(a / "sock"))
    (b / "gone").write_text("")
    table = MountTable()
    table.mount("merge", f"{a}:{b}", "/m")
    res = table.resolve("/m")
    kinds = {n: stat.S_IFMT(m) for n, m in table.entries(res).items()}
    assert kinds == {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "link": stat.S_IFLNK, "fifo": stat.S_IFIFO,
                     "sock": stat.S_IFSOCK, "gone": stat.S_IFREG}
    listing = table.listing(res)

    def shown():
        return {n: stat.S_IFMT(os.lstat(os.path.join(listing, n)).st_mode) for n in os.listdir(listing)}
    assert shown() == {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "link": stat.S_IFLNK, "fifo": stat.S_IFIFO,
                       "sock": stat.S_IFSOCK, "gone": stat.S_IFREG}
    fifo_ino = os.lstat(os.path.join(listing, "fifo")).st_ino
    (b / "gone").unlink()
    (a / "file").unlink()
    (a / "file").mkdir()
    (a / "new").write_text("")
    assert table.listing(res) == listing
    assert shown() == {"file": stat.S_IFDIR, "dir": stat.S_IFDIR, "link": stat.S_IFLNK, "fifo": stat.S_IFIFO,
                       "sock": stat.S_IFSOCK, "new": stat.S_IFREG}
    assert os.lstat(os.path.join(listing, "fifo")).st_ino == fifo_ino   # kept, not made again
    s.close()
    table.cleanup()


def test_bad_mounts_are_clear_errors(tmp_path):
    table = MountTable()
    with pytest.raises(MountError, match="No such file"):
        table.mount("bind", str(tmp_path / "missing"), "/x")
    with pytest.raises(MountError, match="unknown mount type"):
        table.mount("ext9", "", "/x")
    with pytest.raises(MountError, match="bad size"):
        table.mount("tmpfs", "", "/x", {"size": "abc"})
    with pytest.raises(MountError, match="unknown option"):
        table.mount("tmpfs", "", "/x", {"colour": "red"})
    with pytest.raises(MountError, match="absolute"):
        table.mount("tmpfs", "", "x")
    assert table.mounts == []
    table.cleanup()


def test_private_directories_go_at_cleanup():
    table = MountTable()
    m = table.mount("tmpfs", "", "/t")
    root = table.private_root
    assert os.path.isdir(m.layers[0])
    table.cleanup()
    assert not os.path.exists(root)


def test_norm():
    assert norm("/a/./b/../c//") == "/a/c"
    assert norm("/../..") == "/"


def test_cleanup_never_follows_symlinks(tmp_path):
    # A listing of a directory holding a symlink to a directory, removed at
    # cleanup: the directory the symlink points to keeps its mode.
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    outside.chmod(0o755)
    src = tmp_path / "src"
    src.mkdir()
    os.symlink(str(outside), src / "link")
    os.symlink("/", src / "root")
    root_mode = os.stat("/").st_mode
    table = MountTable()
    table.mount("merge", f"{src}:{tmp_path / 'outside'}", "/m")
    table.listing(table.resolve("/m"))
    table.cleanup()
    assert (outside.stat().st_mode & 0o777) == 0o755
    assert os.stat("/").st_mode == root_mode


def test_cleanup_of_a_deep_tree():
    table = MountTable()
    m = table.mount("tmpfs", "", "/t")
    d = m.layers[0]
    fd = os.open(d, os.O_PATH)
    for _ in range(1200):  # deeper than Python's recursion limit
        os.mkdir("d", dir_fd=fd)
        nfd = os.open("d", os.O_PATH, dir_fd=fd)
        os.close(fd)
        fd = nfd
    os.close(fd)
    table.cleanup()
    assert not os.path.exists(d)
