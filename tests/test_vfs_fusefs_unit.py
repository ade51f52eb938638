"""The pyfuse3 mount back end without ptrace: the example file systems of
tests/fuse_examples (ordinary pyfuse3.Operations subclasses) are mounted
into a mirror directory and driven the way the vfs module drives a back
end; the mirror is checked with plain os calls and the file system through
its own methods (memfs) or the host directory it shows (passthrough)."""
import errno
import logging
import mmap
import os
import stat
import tempfile
import textwrap
import time
import traceback
from pathlib import Path

import pytest
import pyfuse3

from umview_py.module import SyscallError
from umview_modules.vfs import fusefs
from umview_modules.vfs.backend import MountError
from umview_modules.vfs.fusefs import FuseBackend

EX = Path(__file__).parent / "fuse_examples"
CTX = fusefs._Ctx(os.getuid(), os.getgid(), os.getpid(), 0)


@pytest.fixture
def mount(tmp_path, monkeypatch):
    """mount(spec, source='') -> (backend, mirror Path); spec 'file.py:Class'
    is looked for in tests/fuse_examples unless it holds a '/'.  The
    examples are importable meanwhile (the test file systems build on memfs)."""
    monkeypatch.syspath_prepend(str(EX))
    made = []

    def mount(spec, source=""):
        if "/" not in spec:
            spec = f"{EX}/{spec}"
        mirror = tmp_path / f"mirror{len(made)}"
        mirror.mkdir()
        b = FuseBackend(source, {"class": spec}, str(mirror))
        made.append(b)
        b.refresh("")
        return b, mirror

    yield mount
    for b in made:
        b.close()


def fs_ino(b, rel):
    """The file system's inode for rel, looked up without keeping a count."""
    ino = pyfuse3.ROOT_INODE
    for name in rel.split("/"):
        ino = b.call("lookup", ino, name.encode(), CTX).st_ino
        b.call("forget", [(ino, 1)])
    return ino


def fs_read(b, rel):
    fh = b.call("open", fs_ino(b, rel), os.O_RDONLY, CTX).fh
    try:
        return b.call("read", fh, 0, 1 << 30)
    finally:
        if type(b.ops).release is not pyfuse3.Operations.release:
            b.call("release", fh)


def fs_attr(b, rel):
    return b.call("getattr", fs_ino(b, rel), CTX)


def node(b, rel):
    return b.ops.nodes[fs_ino(b, rel)]


def walk(b, rel=""):
    """refresh every component of rel, as the vfs does on a path call."""
    parts = rel.split("/") if rel else []
    for i in range(len(parts) + 1):
        b.refresh("/".join(parts[:i]))


def write_native(path, data, flags=os.O_WRONLY | os.O_TRUNC):
    fd = os.open(path, flags)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def write_fs(path, text):
    path.write_text(textwrap.dedent(text))
    return str(path)


# ----------------------------------------------------------------------
# hello: read-only, one file

def test_hello_tree_placeholder_and_fill(mount):
    from hello import STAMP
    b, m = mount("hello.py:Hello")
    b.list_dir("")
    assert os.listdir(m) == ["hello"]
    st = os.stat(m / "hello")
    assert stat.S_IFMT(st.st_mode) == stat.S_IFREG and stat.S_IMODE(st.st_mode) == 0o444
    assert st.st_size == 12 and st.st_mtime_ns == STAMP
    assert (m / "hello").read_bytes() == bytes(12)          # a sparse placeholder until fill
    b.fill("hello")
    assert (m / "hello").read_bytes() == b"hello world\n"
    assert os.stat(m / "hello").st_mtime_ns == STAMP
    assert stat.S_IMODE(os.stat(m).st_mode) == 0o755 and os.stat(m).st_mtime_ns == STAMP


def test_hello_what_it_does_not_implement(mount):
    b, m = mount("hello.py:Hello")
    for op, args in (("create", ("new", 0o644)), ("mkdir", ("d", 0o755)), ("symlink", ("t", "l")),
                     ("unlink", ("hello",)), ("rename", ("hello", "x", 0)),
                     ("link", ("hello", "h2")), ("setattr", ("hello",))):
        with pytest.raises(SyscallError) as exc:
            getattr(b, op)(*args, **({"mode": 0o600} if op == "setattr" else {}))
        assert exc.value.errno == errno.ENOSYS, op
    with pytest.raises(SyscallError) as exc:
        b.setxattr("hello", b"user.x", b"1", 0)
    assert exc.value.errno == errno.EOPNOTSUPP
    assert b.statfs() is None                               # the mirror's numbers
    b.list_dir("")
    assert os.listdir(m) == ["hello"]


def test_hello_refused_write_back_is_logged_and_kept(mount, caplog):
    b, m = mount("hello.py:Hello")
    b.list_dir("")
    b.fill("hello")
    os.chmod(m / "hello", 0o644)                            # a writer the fs will refuse
    write_native(m / "hello", b"bye\n")
    with caplog.at_level(logging.ERROR, logger="umview"):
        b.flush()
    assert "writing hello back failed" in caplog.text
    walk(b, "hello")
    b.fill("hello")
    assert (m / "hello").read_bytes() == b"bye\n"          # the view keeps its copy
    assert fs_read(b, "hello") == b"hello world\n"


def test_hello_refused_fchmod_is_undone(mount, caplog):
    b, m = mount("hello.py:Hello")
    b.list_dir("")
    fd = os.open(m / "hello", os.O_RDONLY)
    try:
        os.fchmod(fd, 0o400)
    finally:
        os.close(fd)
    with caplog.at_level(logging.WARNING, logger="umview"):
        b.flush()
    assert "hello: the file system refused mode" in caplog.text
    assert stat.S_IMODE(os.stat(m / "hello").st_mode) == 0o444


# ----------------------------------------------------------------------
# memfs: everything a writable file system does

def test_memfs_mutations_reach_fs_and_mirror(mount):
    b, m = mount("memfs.py:MemFS")
    b.mkdir("d", 0o750)
    b.create("d/f", 0o640)
    b.symlink("d/f", "ln")
    b.link("d/f", "hard")
    b.mknod("fifo", stat.S_IFIFO | 0o600, 0)
    assert sorted(os.listdir(m)) == ["d", "fifo", "hard", "ln"]
    assert stat.S_IMODE(os.stat(m / "d").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(m / "d/f").st_mode) == 0o640
    assert os.readlink(m / "ln") == "d/f"
    assert stat.S_ISFIFO(os.lstat(m / "fifo").st_mode)
    assert os.stat(m / "hard").st_ino == os.stat(m / "d/f").st_ino   # one mirror inode
    assert stat.S_ISDIR(fs_attr(b, "d").st_mode)
    assert node(b, "d/f") is node(b, "hard") and node(b, "d/f").nlink == 2
    assert node(b, "ln").target == b"d/f"
    assert stat.S_ISFIFO(fs_attr(b, "fifo").st_mode)
    b.unlink("hard")
    b.rename("d/f", "f", 0)
    with pytest.raises(SyscallError) as exc:
        b.rmdir("nothere")
    assert exc.value.errno == errno.ENOENT
    b.rmdir("d")
    assert sorted(os.listdir(m)) == ["f", "fifo", "ln"]
    assert sorted(b.ops.nodes[pyfuse3.ROOT_INODE].entries) == [b"f", b"fifo", b"ln"]
    with pytest.raises(SyscallError) as exc:
        b.mkdir("f", 0o755)
    assert exc.value.errno == errno.EEXIST
    stats = b.statfs()
    assert stats["f_bsize"] == 4096 and stats["f_namemax"] == 255
    assert stats["f_files"] - stats["f_ffree"] == len(b.ops.nodes)


def test_memfs_write_back_at_close(mount):
    b, m = mount("memfs.py:MemFS")
    b.create("f", 0o644)
    b.fill("f")
    data = os.urandom(300_000)                             # more than two chunks
    write_native(m / "f", data)
    b.flush()
    assert fs_read(b, "f") == data
    assert fs_attr(b, "f").st_mtime_ns == os.stat(m / "f").st_mtime_ns
    write_native(m / "f", b"short")                        # O_TRUNC: the fs file must shrink
    b.flush()
    assert fs_read(b, "f") == b"short" and fs_attr(b, "f").st_size == 5
    walk(b, "f")
    b.fill("f")
    assert (m / "f").read_bytes() == b"short"


def test_memfs_dirty_file_kept_until_closed(mount):
    b, m = mount("memfs.py:MemFS")
    b.create("f", 0o644)
    fd = os.open(m / "f", os.O_WRONLY)
    try:
        os.write(fd, b"not yet closed")
        b.flush()
        assert fs_read(b, "f") == b""                      # written back at close only
        walk(b, "f")                                       # the fs says size 0: not applied
        b.fill("f")
        assert (m / "f").read_bytes() == b"not yet closed"
    finally:
        os.close(fd)
    b.flush()
    assert fs_read(b, "f") == b"not yet closed"


def test_memfs_unmount_writes_back_unclosed_and_mapped(mount):
    b, m = mount("memfs.py:MemFS")
    b.create("open", 0o644)
    b.create("mapped", 0o644)
    write_native(m / "mapped", b"x" * 4096)
    b.flush()
    fd = os.open(m / "mapped", os.O_RDWR)
    mm = mmap.mmap(fd, 4096)
    os.close(fd)
    b.flush()
    mm[:6] = b"mapped"                                     # no write(2), no inotify event
    mm.close()
    fd = os.open(m / "open", os.O_WRONLY)
    os.write(fd, b"still open")
    b.close()
    os.close(fd)
    assert fs_read(b, "open") == b"still open"
    assert fs_read(b, "mapped") == b"mapped" + b"x" * 4090


def test_memfs_changes_made_by_the_fs_itself(mount):
    b, m = mount("memfs.py:MemFS")
    b.create("f", 0o644)
    b.create("gone", 0o644)
    write_native(m / "f", b"old contents")
    b.flush()
    walk(b, "f")
    b.fill("f")
    n = node(b, "f")
    n.data[:] = b"new and longer contents"
    n.mtime = time.time_ns()
    walk(b, "f")
    assert os.stat(m / "f").st_size == len(n.data)
    b.fill("f")
    assert (m / "f").read_bytes() == b"new and longer contents"
    # same size, same mtime: only the fs's invalidation tells (from any thread)
    n.data[:3] = b"NEW"
    pyfuse3.invalidate_inode(n.ino)
    b.fill("f")
    assert (m / "f").read_bytes() == b"NEW and longer contents"
    pyfuse3.notify_store(n.ino, 0, b"new")
    n.data[:3] = b"new"
    b.fill("f")
    assert (m / "f").read_bytes() == b"new and longer contents"
    # removed and replaced behind our back
    root = b.ops.nodes[pyfuse3.ROOT_INODE]
    b.ops.remove_entry(root, b"gone")
    b.ops.make(pyfuse3.ROOT_INODE, b"fresh", stat.S_IFREG | 0o600, CTX).lookups -= 1
    b.refresh("gone")
    assert not (m / "gone").exists()
    b.ops.remove_entry(root, b"f")
    b.ops.make(pyfuse3.ROOT_INODE, b"f", stat.S_IFDIR | 0o700, CTX).lookups -= 1
    b.list_dir("")
    assert sorted(os.listdir(m)) == ["f", "fresh"] and (m / "f").is_dir()


def test_memfs_readdir_many_entries_and_lookup_counts(mount):
    b, m = mount("memfs.py:MemFS")
    names = {f"file{i:04d}" for i in range(1500)}
    for name in names:
        b.ops.make(pyfuse3.ROOT_INODE, name.encode(), stat.S_IFREG | 0o644, CTX).lookups -= 1
    b.list_dir("")
    assert set(os.listdir(m)) == names
    b.list_dir("")
    assert all(n.lookups == 2 for i, n in b.ops.nodes.items() if i != pyfuse3.ROOT_INODE)
    b.unlink("file0000")
    assert len(b.ops.nodes) == 1500                        # forgotten: freed at once
    b.close()
    assert all(n.lookups == 0 for n in b.ops.nodes.values())


def test_readdir_paged_by_next_id(mount, tmp_path):
    """A file system that replies a few entries per call, as with the
    kernel's small buffers: readdir is called again from the last next_id."""
    spec = write_fs(tmp_path / "paged.py", """
        import pyfuse3, memfs

        class Paged(memfs.MemFS):
            calls = 0

            async def readdir(self, fh, start_id, token):
                self.calls += 1
                for name, (ino, cookie) in list(self.nodes[fh].entries.items()):
                    if cookie > start_id:
                        if cookie > start_id + 7:
                            break
                        pyfuse3.readdir_reply(token, name, self.attr(self.nodes[ino]), cookie)
                        self.nodes[ino].lookups += 1
        """)
    b, m = mount(spec + ":Paged")
    for i in range(50):
        b.create(f"f{i}", 0o644)
    for i in range(0, 50, 2):
        os.unlink(m / f"f{i}")                             # lost from the mirror: made again
        b.ops.remove_entry(b.ops.nodes[pyfuse3.ROOT_INODE], f"f{i + 1}".encode())   # gone
    (m / "stray").write_text("")                           # not in the file system: removed
    b.list_dir("")
    assert sorted(os.listdir(m)) == sorted(f"f{i}" for i in range(0, 50, 2))
    assert b.ops.calls > 4


def test_memfs_setattr(mount):
    b, m = mount("memfs.py:MemFS")
    b.create("f", 0o644)
    write_native(m / "f", b"0123456789")
    b.flush()
    walk(b, "f")
    b.fill("f")
    b.setattr("f", mode=0o600)
    assert stat.S_IMODE(os.stat(m / "f").st_mode) == 0o600
    assert stat.S_IMODE(fs_attr(b, "f").st_mode) == 0o600 and stat.S_ISREG(fs_attr(b, "f").st_mode)
    b.setattr("f", size=4)
    assert (m / "f").read_bytes() == b"0123" and fs_read(b, "f") == b"0123"
    b.setattr("f", size=6)
    walk(b, "f")
    b.fill("f")
    assert (m / "f").read_bytes() == b"0123\0\0" and fs_read(b, "f") == b"0123\0\0"
    b.setattr("f", atime_ns=1_000_000_001, mtime_ns=2_000_000_002)
    st = os.stat(m / "f")
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_001, 2_000_000_002)
    assert fs_attr(b, "f").st_mtime_ns == 2_000_000_002
    b.setattr("f", uid=os.getuid(), gid=os.getgid())
    assert node(b, "f").uid == os.getuid()
    b.mkdir("d", 0o755)
    b.setattr("d", mode=0o500)
    b.create("d/inside", 0o600)                            # the mirror dir is opened to us
    assert stat.S_IMODE(os.stat(m / "d").st_mode) == 0o500
    assert os.listdir(m / "d") == ["inside"]


def test_memfs_xattrs(mount):
    b, m = mount("memfs.py:MemFS")
    b.create("f", 0o644)
    b.setxattr("f", b"user.color", b"blue", 0)
    assert os.getxattr(m / "f", "user.color") == b"blue"
    assert node(b, "f").xattrs == {b"user.color": b"blue"}
    with pytest.raises(SyscallError) as exc:
        b.setxattr("f", b"user.color", b"red", os.XATTR_CREATE)
    assert exc.value.errno == errno.EEXIST
    with pytest.raises(SyscallError) as exc:
        b.setxattr("f", b"user.size", b"1", os.XATTR_REPLACE)
    assert exc.value.errno == errno.ENODATA
    b.removexattr("f", b"user.color")
    assert os.listxattr(m / "f") == [] and node(b, "f").xattrs == {}
    # set by the file system itself: copied when the entry first shows
    n = b.ops.make(pyfuse3.ROOT_INODE, b"tagged", stat.S_IFREG | 0o644, CTX)
    n.lookups -= 1
    n.xattrs[b"user.tag"] = b"yes"
    b.list_dir("")
    assert os.getxattr(m / "tagged", "user.tag") == b"yes"


def test_memfs_rename_flags_and_replacement(mount):
    b, m = mount("memfs.py:MemFS")
    for name, data in (("a", b"AAA"), ("b", b"BB")):
        b.create(name, 0o644)
        write_native(m / name, data)
    b.mkdir("da", 0o755)
    b.mkdir("db", 0o700)
    b.create("da/in", 0o644)
    b.flush()
    with pytest.raises(SyscallError) as exc:
        b.rename("a", "b", pyfuse3.RENAME_NOREPLACE)
    assert exc.value.errno == errno.EEXIST
    b.rename("a", "b", pyfuse3.RENAME_EXCHANGE)
    assert (m / "a").read_bytes() == b"BB" and (m / "b").read_bytes() == b"AAA"
    assert fs_read(b, "a") == b"BB" and fs_read(b, "b") == b"AAA"
    b.rename("da", "db", pyfuse3.RENAME_EXCHANGE)
    assert os.listdir(m / "db") == ["in"] and stat.S_IMODE(os.stat(m / "da").st_mode) == 0o700
    replaced = fs_ino(b, "b")
    b.rename("a", "b", 0)                                  # replaces b: its inode is forgotten
    assert not (m / "a").exists() and (m / "b").read_bytes() == b"BB"
    assert replaced not in b.ops.nodes
    write_native(m / "db/in", b"moved")                    # state followed the rename
    b.flush()
    assert fs_read(b, "db/in") == b"moved"


def test_memfs_rename_dir_with_dirty_file(mount):
    b, m = mount("memfs.py:MemFS")
    b.mkdir("d", 0o755)
    b.create("d/f", 0o644)
    fd = os.open(m / "d/f", os.O_WRONLY)
    os.write(fd, b"written before the rename")
    b.rename("d", "e", 0)
    os.close(fd)
    b.flush()
    assert fs_read(b, "e/f") == b"written before the rename"


def test_memfs_hard_links_share_one_mirror_file(mount):
    b, m = mount("memfs.py:MemFS")
    b.create("a", 0o644)
    write_native(m / "a", b"linked\n")
    b.flush()
    b.link("a", "b")
    assert os.stat(m / "a").st_nlink == 2 and os.stat(m / "a").st_ino == os.stat(m / "b").st_ino
    b.setattr("b", size=0)                                 # open(b, O_TRUNC) in the view
    write_native(m / "b", b"changed\n")
    walk(b, "a")                                           # the fs changed a's size: a is dirty too
    b.flush()
    walk(b, "a")
    b.fill("a")
    assert (m / "a").read_bytes() == b"changed\n" and fs_read(b, "a") == b"changed\n"
    # two names found in the file system: one mirror file too
    n = b.ops.make(pyfuse3.ROOT_INODE, b"x", stat.S_IFREG | 0o644, CTX)
    n.lookups -= 1
    n.data[:] = b"xx"
    b.ops.add_entry(b.ops.nodes[pyfuse3.ROOT_INODE], b"y", n)
    n.nlink += 1
    b.list_dir("")
    assert os.stat(m / "x").st_ino == os.stat(m / "y").st_ino and os.stat(m / "y").st_nlink == 2
    b.fill("y")
    assert (m / "x").read_bytes() == b"xx"
    b.unlink("x")
    assert (m / "y").read_bytes() == b"xx" and os.stat(m / "y").st_nlink == 1


def test_memfs_fd_attribute_changes_reach_the_fs(mount):
    """fchmod/futimens on an fd act on the mirror file; inotify (IN_ATTRIB)
    tells us and flush() passes them on."""
    b, m = mount("memfs.py:MemFS")
    b.create("f", 0o644)
    b.mkdir("d", 0o755)
    fd = os.open(m / "f", os.O_RDONLY)
    try:
        os.fchmod(fd, 0o600)
        os.utime(fd, ns=(111, 222))
    finally:
        os.close(fd)
    fd = os.open(m / "d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    walk(b, "f")                                           # a refresh before the flush keeps them
    b.flush()
    a = fs_attr(b, "f")
    assert (stat.S_IMODE(a.st_mode), a.st_atime_ns, a.st_mtime_ns) == (0o600, 111, 222)
    assert stat.S_IMODE(fs_attr(b, "d").st_mode) == 0o700
    st = os.stat(m / "f")
    assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (0o600, 222)


def test_kernel_checks_before_the_fs(mount):
    b, m = mount("memfs.py:MemFS")
    b.mkdir("d", 0o755)
    b.mkdir("d/sub", 0o755)
    b.symlink("d", "ln")
    for rel, err in (("d", errno.EISDIR), ("ln", errno.EINVAL)):
        with pytest.raises(SyscallError) as exc:
            b.setattr(rel, size=0)
        assert exc.value.errno == err
    for old, new, flags, err in (("d", "d/sub/x", 0, errno.EINVAL), ("d/sub", "d", 0, errno.ENOTEMPTY),
                                 ("d/sub", "d", pyfuse3.RENAME_EXCHANGE, errno.EINVAL)):
        with pytest.raises(SyscallError) as exc:
            b.rename(old, new, flags)
        assert exc.value.errno == err
    assert sorted(b.ops.nodes[fs_ino(b, "d")].entries) == [b"sub"]


def test_dotted_module_name(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EX))
    mirror = tmp_path / "m"
    mirror.mkdir()
    b = FuseBackend("", {"class": "memfs:MemFS"}, str(mirror))
    try:
        b.mkdir("x", 0o755)
        assert type(b.ops).__module__ == "memfs" and os.listdir(mirror) == ["x"]
    finally:
        b.close()


def as_unprivileged(fn):
    """fn(workdir) in a child process that is not root (when we are): root
    would pass every permission check the mirror's upkeep has to get around."""
    work = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        if os.geteuid() != 0:
            fn(Path(work))
            return
        os.chown(work, 65534, 65534)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setgroups([])
                os.setresgid(65534, 65534, 65534)
                os.setresuid(65534, 65534, 65534)
                fn(Path(work))
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    finally:
        fusefs._rmtree(work)


def test_read_only_modes_do_not_stop_the_upkeep():
    def scenario(work):
        mirror = work / "m"
        mirror.mkdir()
        b = FuseBackend("", {"class": f"{EX}/memfs.py:MemFS"}, str(mirror))
        b.refresh("")
        b.mkdir("ro", 0o755)
        b.mkdir("ro/sub", 0o755)
        b.mkdir("other", 0o755)
        b.create("ro/sub/f", 0o644)
        write_native(mirror / "ro/sub/f", b"first")
        b.flush()
        for rel, mode in (("ro/sub/f", 0o444), ("ro/sub", 0o555), ("ro", 0o555)):
            b.setattr(rel, mode=mode)
        n = node(b, "ro/sub/f")
        n.data[:] = b"second version"
        n.mtime = time.time_ns()
        walk(b, "ro/sub/f")
        b.fill("ro/sub/f")                                 # into a 0o444 file
        assert (mirror / "ro/sub/f").read_bytes() == b"second version"
        b.ops.make(fs_ino(b, "ro/sub"), b"g", stat.S_IFREG | 0o400, CTX).lookups -= 1
        b.list_dir("ro/sub")                               # a new entry in a 0o555 directory
        assert sorted(os.listdir(mirror / "ro/sub")) == ["f", "g"]
        b.rename("ro/sub", "other/sub", 0)                 # a 0o555 directory changes parents
        assert sorted(os.listdir(mirror / "other/sub")) == ["f", "g"]
        assert [stat.S_IMODE(os.stat(mirror / p).st_mode) for p in ("ro", "other/sub", "other/sub/f")] \
            == [0o555, 0o555, 0o444]
        b.ops.remove_entry(b.ops.nodes[pyfuse3.ROOT_INODE], b"other")
        b.refresh("other")                                 # gone: a read-only tree to remove
        assert sorted(os.listdir(mirror)) == ["ro"]
        b.close()
    as_unprivileged(scenario)


# ----------------------------------------------------------------------
# passthrough: a host directory

@pytest.fixture
def host(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub/deep.txt").write_text("deep\n")
    (src / "top.txt").write_text("top\n")
    (src / "exe").write_text("#!/bin/sh\n")
    os.chmod(src / "exe", 0o755)
    os.symlink("sub/deep.txt", src / "link")
    os.utime(src / "top.txt", ns=(1_234_567_890_123_456_789, 1_234_567_890_123_456_789))
    return src


def test_passthrough_reads_host(mount, host):
    b, m = mount("passthrough.py:Passthrough", str(host))
    b.list_dir("")
    assert sorted(os.listdir(m)) == ["exe", "link", "sub", "top.txt"]
    assert os.readlink(m / "link") == "sub/deep.txt"
    assert stat.S_IMODE(os.stat(m / "exe").st_mode) == 0o755
    assert os.stat(m / "top.txt").st_mtime_ns == 1_234_567_890_123_456_789
    b.fill("top.txt")
    assert (m / "top.txt").read_text() == "top\n"
    b.list_dir("sub")
    b.fill("sub/deep.txt")
    assert (m / "sub/deep.txt").read_text() == "deep\n"
    assert b.statfs()["f_blocks"] == os.statvfs(host).f_blocks


def test_passthrough_changes_reach_host(mount, host):
    b, m = mount("passthrough.py:Passthrough", str(host))
    b.create("new.txt", 0o600)
    write_native(m / "new.txt", b"written in the view\n")
    b.flush()
    assert (host / "new.txt").read_bytes() == b"written in the view\n"
    assert stat.S_IMODE(os.stat(host / "new.txt").st_mode) == 0o600
    b.mkdir("dir", 0o755)
    b.symlink("../top.txt", "dir/up")
    b.link("top.txt", "dir/top2")
    b.rename("new.txt", "dir/renamed.txt", 0)
    b.setattr("dir/renamed.txt", mode=0o640)
    assert sorted(os.listdir(host / "dir")) == ["renamed.txt", "top2", "up"]
    assert os.readlink(host / "dir/up") == "../top.txt"
    assert os.stat(host / "dir/top2").st_ino == os.stat(host / "top.txt").st_ino
    assert stat.S_IMODE(os.stat(host / "dir/renamed.txt").st_mode) == 0o640
    walk(b, "top.txt")
    b.fill("top.txt")
    write_native(m / "top.txt", b"changed\n")
    b.flush()
    assert (host / "top.txt").read_bytes() == b"changed\n"
    b.unlink("dir/up")
    b.unlink("exe")
    with pytest.raises(SyscallError) as exc:
        b.rmdir("sub")
    assert exc.value.errno == errno.ENOTEMPTY
    assert sorted(os.listdir(host)) == ["dir", "link", "sub", "top.txt"]
    (host / "outside").write_text("made on the host\n")      # host changes show at the next walk
    b.list_dir("")
    assert "outside" in os.listdir(m)


# ----------------------------------------------------------------------
# errors

@pytest.mark.parametrize("spec, message", [
    ("", "want MODULE:CLASS"),
    ("memfs", "want MODULE:CLASS"),
    ("memfs:", "want MODULE:CLASS"),
    (":MemFS", "want MODULE:CLASS"),
    ("no_such_module_xyz:Fs", "cannot import no_such_module_xyz: ModuleNotFoundError"),
    ("/no/such/file.py:Fs", "/no/such/file.py: no such file"),
    (f"{EX}/memfs.py:Missing", "has no class Missing"),
    (f"{EX}/memfs.py:CAPACITY", "has no class CAPACITY"),
    ("os:path", "has no class path"),
])
def test_bad_class_specs(tmp_path, spec, message):
    with pytest.raises(MountError, match=message.replace(".", r"\.")) as exc:
        FuseBackend("", {"class": spec}, str(tmp_path))
    assert "\n" not in str(exc.value)


def test_import_constructor_init_and_root_errors(tmp_path):
    cases = {
        "syntax.py": ("def broken(:\n", "cannot import .*SyntaxError"),
        "raises.py": ("raise RuntimeError('no luck\\nat all')\n",
                      "cannot import .*RuntimeError: no luck at all"),
        "exits.py": ("import sys\nsys.exit(2)\n", "cannot import .*SystemExit"),
        "badinit.py": ("import pyfuse3\nclass Fs(pyfuse3.Operations):\n"
                       "    def init(self):\n        raise OSError('init failed')\n",
                       r"Fs\.init: OSError: init failed"),
        "noroot.py": ("import pyfuse3\nclass Fs(pyfuse3.Operations):\n    pass\n",
                      r"the root cannot be read \(Function not implemented\)"),
        "fileroot.py": ("import pyfuse3\nclass Fs(pyfuse3.Operations):\n"
                        "    async def getattr(self, inode, ctx):\n"
                        "        return pyfuse3.EntryAttributes()\n",
                        "the root is not a directory"),
    }
    for name, (code, message) in cases.items():
        (tmp_path / name).write_text(code)
        with pytest.raises(MountError, match=message):
            FuseBackend("", {"class": f"{tmp_path / name}:Fs"}, str(tmp_path))
    with pytest.raises(MountError, match="Passthrough: ValueError: '/no/such/dir' is not a directory"):
        FuseBackend("/no/such/dir", {"class": f"{EX}/passthrough.py:Passthrough"}, str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted(cases)   # the mirror untouched


def test_method_raising_gives_eio_and_a_traceback(mount, tmp_path, caplog):
    spec = write_fs(tmp_path / "broken.py", """
        import memfs

        class Broken(memfs.MemFS):
            async def lookup(self, parent_inode, name, ctx=None):
                if name == b"bad":
                    raise ValueError("a bug in the file system")
                return await super().lookup(parent_inode, name, ctx)

            async def mkdir(self, parent_inode, name, mode, ctx):
                return "not attributes"
        """)
    b, m = mount(spec + ":Broken")
    with caplog.at_level(logging.ERROR, logger="umview"):
        with pytest.raises(SyscallError) as exc:
            b.refresh("bad")
        assert exc.value.errno == errno.EIO
        with pytest.raises(SyscallError) as exc:
            b.mkdir("d", 0o755)
        assert exc.value.errno == errno.EIO
    raised, returned = caplog.records
    assert raised.name == "umview" and raised.exc_info[0] is ValueError
    assert "Broken.lookup raised" in raised.getMessage()
    assert "a bug in the file system" in caplog.text
    assert "Broken.mkdir returned 'not attributes', not EntryAttributes" in returned.getMessage()
    b.create("good", 0o644)                                # the mount still works
    assert os.listdir(m) == ["good"]


def test_awaiting_trio_fails_clearly_asyncio_sleep0_works(mount, tmp_path, caplog):
    spec = write_fs(tmp_path / "awaiting.py", """
        import asyncio, errno
        import trio, pyfuse3, memfs

        class Awaiting(memfs.MemFS):
            async def lookup(self, parent_inode, name, ctx=None):
                if name == b"sleep":
                    await trio.sleep(0)
                elif name == b"lock":
                    async with trio.Lock():
                        pass
                elif name == b"yield":
                    await asyncio.sleep(0)
                    raise pyfuse3.FUSEError(errno.ENOENT)
                return await super().lookup(parent_inode, name, ctx)
        """)
    b, m = mount(spec + ":Awaiting")
    with caplog.at_level(logging.ERROR, logger="umview"):
        for name in ("sleep", "lock"):
            with pytest.raises(SyscallError) as exc:
                b.refresh(name)
            assert exc.value.errno == errno.EIO
    assert len(caplog.records) == 2 and "must not await trio" in caplog.records[0].getMessage()
    assert "must not await trio" in caplog.records[1].getMessage()
    b.refresh("yield")                                     # ENOENT: simply not there


def test_readdir_reply_is_routed_only_for_our_tokens():
    fusefs._install_hooks()
    assert pyfuse3.readdir_reply is fusefs._readdir_reply
    token = fusefs._Listing()
    attr = pyfuse3.EntryAttributes()
    assert pyfuse3.readdir_reply(token, b"x", attr, 5) is True
    assert token.entries == [(b"x", attr, 5)]
    with pytest.raises(TypeError):                         # the real one's type check
        pyfuse3.readdir_reply(object(), b"x", attr, 5)
