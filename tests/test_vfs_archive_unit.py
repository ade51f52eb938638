"""The archive mount back end without ptrace: tar (plain, gzip, bzip2, xz)
and zip archives made by the tarfile/zipfile modules and by the real tar
and zip programs are mounted into a mirror directory, whose skeleton is
compared with the source tree; every file is filled and compared byte for
byte; broken archives must give a clear MountError and an empty mirror."""
import errno
import filecmp
import io
import logging
import os
import shutil
import stat
import struct
import subprocess
import tarfile
import time
import zipfile

import pytest

from umview_py.module import SyscallError
from umview_modules.vfs import archive
from umview_modules.vfs.archive import ArchiveBackend
from umview_modules.vfs.backend import MountError

BIG = os.urandom(1 << 20) + bytes(1 << 20) + os.urandom(1 << 20)   # 3 MB with a hole


# ----------------------------------------------------------------------
# the source tree and its archives

@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """Nested and empty directories, an executable, read-only files and
    directory, relative and absolute symlinks, a hard link, names with a
    space and non-ASCII letters, a 3 MB file; every mtime different."""
    root = tmp_path_factory.mktemp("src") / "tree"
    (root / "d1/d2/d3").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "bin").mkdir()
    (root / "rodir").mkdir()
    (root / "d1/d2/d3/deep.txt").write_text("deep\n")
    (root / "d1/file").write_text("linked contents\n")
    os.link(root / "d1/file", root / "hard")
    (root / "bin/run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "bin/run.sh").chmod(0o755)
    (root / "ro.txt").write_text("read only\n")
    (root / "ro.txt").chmod(0o444)
    (root / "rodir/inside").write_text("in a read-only directory\n")
    (root / "with space.txt").write_text("space\n")
    (root / "naïve ünïcode.txt").write_text("unicode ✓\n")
    (root / "zero.txt").write_text("")
    (root / "big.bin").write_bytes(BIG)
    os.symlink("d1/d2/d3/deep.txt", root / "rel_link")
    os.symlink("/etc/hostname", root / "abs_link")
    t = 1_500_000_000
    # deepest first, so that setting a child's time leaves its parent's alone
    for i, (dirpath, dirnames, filenames) in enumerate(sorted(os.walk(root), reverse=True)):
        for j, name in enumerate(sorted(dirnames + filenames)):
            os.utime(os.path.join(dirpath, name), (t + 1000 * i + 10 * j,) * 2, follow_symlinks=False)
    os.utime(root, (t - 7777,) * 2)
    (root / "rodir").chmod(0o555)
    yield root
    (root / "rodir").chmod(0o755)


def _tar_py(src, dest, comp):
    with tarfile.open(dest, "w:" + comp) as tar:
        tar.add(src, arcname=".")


def _tar_prog(src, dest, flag):
    subprocess.run(["tar", "-c" + flag + "f", str(dest), "-C", str(src), "."], check=True)


def _zip_py(src, dest):
    """zipfile writes unix modes (ZipInfo.from_file); symlinks by hand."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for dirpath, dirnames, filenames in os.walk(src):
            for name in sorted(dirnames + filenames):
                path = os.path.join(dirpath, name)
                arc = os.path.relpath(path, src)
                if os.path.islink(path):
                    info = zipfile.ZipInfo(arc, time.localtime(os.lstat(path).st_mtime)[:6])
                    info.create_system = 3
                    info.external_attr = (stat.S_IFLNK | 0o777) << 16
                    z.writestr(info, os.readlink(path))
                else:
                    z.write(path, arc)


def _zip_prog(src, dest):
    subprocess.run(["zip", "-qry", str(dest), "."], cwd=src, check=True)


MAKERS = {
    "tarfile.tar": lambda s, d: _tar_py(s, d, ""),
    "tarfile.tar.gz": lambda s, d: _tar_py(s, d, "gz"),
    "tarfile.tar.bz2": lambda s, d: _tar_py(s, d, "bz2"),
    "tarfile.tar.xz": lambda s, d: _tar_py(s, d, "xz"),
    "tar.tar": lambda s, d: _tar_prog(s, d, ""),
    "tar.tgz": lambda s, d: _tar_prog(s, d, "z"),
    "tar.tbz": lambda s, d: _tar_prog(s, d, "j"),
    "tar.txz": lambda s, d: _tar_prog(s, d, "J"),
    "zipfile.zip": _zip_py,
    "zip.zip": _zip_prog,
}


_mounted = []


@pytest.fixture(autouse=True)
def _close_mounts():
    yield
    while _mounted:
        _mounted.pop().close()


def _mount(path, mirror):
    mirror.mkdir()
    b = ArchiveBackend(str(path), {}, str(mirror))
    _mounted.append(b)
    return b


def _tree(root):
    """rel -> lstat of everything under root (root itself is '')."""
    out = {"": os.lstat(root)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = os.lstat(path)
    return out


def _placeholder_is_zero(path, size):
    with open(path, "rb") as f:
        return f.read() == bytes(size)


# ----------------------------------------------------------------------
# well-formed archives

@pytest.mark.parametrize("kind", list(MAKERS))
def test_skeleton_and_fill(kind, src, tmp_path):
    if kind.startswith(("tar.", "zip.")) and not shutil.which(kind.split(".")[0]):
        pytest.skip(f"no {kind.split('.')[0]} program")
    arc = tmp_path / ("archive" + kind)   # the name must not matter: detection is by content
    MAKERS[kind](src, arc)
    os.rename(arc, tmp_path / "archive")
    mirror = tmp_path / "mirror"
    b = _mount(tmp_path / "archive", mirror)
    is_zip = kind.endswith("zip")
    want, got = _tree(src), _tree(mirror)
    if is_zip:          # zip keeps no root entry and no hard links
        del want[""], got[""]
    assert sorted(got) == sorted(want)
    for rel, st in want.items():
        g = got[rel]
        assert stat.S_IFMT(g.st_mode) == stat.S_IFMT(st.st_mode), rel
        if stat.S_ISLNK(st.st_mode):
            assert os.readlink(mirror / rel) == os.readlink(src / rel), rel
            continue
        assert stat.S_IMODE(g.st_mode) == stat.S_IMODE(st.st_mode), rel
        if kind == "zipfile.zip":     # DOS time: local, 2 s resolution
            assert abs(g.st_mtime_ns - st.st_mtime_ns) <= 2_000_000_000, rel
        else:
            assert g.st_mtime_ns == st.st_mtime_ns, rel
        if stat.S_ISREG(st.st_mode):
            assert g.st_size == st.st_size, rel
            # lazy: nothing is read from the archive before fill
            assert _placeholder_is_zero(mirror / rel, st.st_size), rel
    if not is_zip:
        assert got["hard"].st_ino == got["d1/file"].st_ino
    mtimes = {rel: st.st_mtime_ns for rel, st in _tree(mirror).items()}
    assert got["big.bin"].st_blocks == 0

    for rel, st in want.items():
        if stat.S_ISREG(st.st_mode):
            b.fill(rel)
            assert filecmp.cmp(src / rel, mirror / rel, shallow=False), rel
            g = os.lstat(mirror / rel)
            assert (stat.S_IMODE(g.st_mode), g.st_mtime_ns) == \
                   (stat.S_IMODE(got[rel].st_mode), got[rel].st_mtime_ns), rel
    # the hole in big.bin stays a hole
    assert os.lstat(mirror / "big.bin").st_blocks * 512 < len(BIG)
    # directories' times did not move while files were filled
    assert {rel: st.st_mtime_ns for rel, st in _tree(mirror).items()} == mtimes


def test_fill_once_and_noops(src, tmp_path, monkeypatch):
    _tar_py(src, tmp_path / "a.tgz", "gz")
    b = _mount(tmp_path / "a.tgz", tmp_path / "m")
    opened = []
    real = b._open_member
    monkeypatch.setattr(b, "_open_member", lambda data: opened.append(data.name) or real(data))
    b.fill("hard")
    b.fill("d1/file")       # the same file, through its other name
    b.fill("hard")
    assert len(opened) == 1
    assert (tmp_path / "m/d1/file").read_text() == "linked contents\n"
    for rel in ("", "d1", "rel_link", "abs_link", "no/such", "empty"):
        b.fill(rel)
        b.refresh(rel)
        b.list_dir(rel)
    assert len(opened) == 1


def test_fill_reads_in_chunks(src, tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "_CHUNK", 4096)
    _tar_py(src, tmp_path / "a.tar.xz", "xz")
    b = _mount(tmp_path / "a.tar.xz", tmp_path / "m")
    sizes = []
    real = b._open_member

    def spy(data):
        f = real(data)
        read = f.read
        f.read = lambda n=-1: sizes.append(n) or read(n)
        return f
    monkeypatch.setattr(b, "_open_member", spy)
    b.fill("big.bin")
    assert (tmp_path / "m/big.bin").read_bytes() == BIG
    assert set(sizes) == {4096}


def test_fill_in_any_order(src, tmp_path):
    """A compressed tar filled backwards (each seek rewinds the stream)."""
    _tar_py(src, tmp_path / "a.tar.bz2", "bz2")
    b = _mount(tmp_path / "a.tar.bz2", tmp_path / "m")
    files = [r for r, st in _tree(src).items() if stat.S_ISREG(st.st_mode)]
    for rel in sorted(files, reverse=True):
        b.fill(rel)
        assert filecmp.cmp(src / rel, tmp_path / "m" / rel, shallow=False), rel


def test_statfs(src, tmp_path):
    _tar_py(src, tmp_path / "a.tar", "")
    b = _mount(tmp_path / "a.tar", tmp_path / "m")
    tree = _tree(src)
    inodes = {st.st_ino: st.st_size for st in tree.values() if stat.S_ISREG(st.st_mode)}
    total = sum(inodes.values())
    assert b.statfs() == {"f_bsize": 4096, "f_blocks": (total + 4095) // 4096, "f_bfree": 0,
                          "f_bavail": 0, "f_files": len(tree), "f_ffree": 0, "f_namemax": 255}


def test_close_closes_the_archive(tmp_path):
    with tarfile.open(tmp_path / "a.tgz", "w:gz") as t:
        _add(t, "f", b"x")
    b = _mount(tmp_path / "a.tgz", tmp_path / "m")
    b.close()
    assert b._file.closed and b._tar.fileobj.closed
    b.close()       # closing twice is harmless


# ----------------------------------------------------------------------
# tar details, with hand-made members

def _add(tar, name, data=None, **attrs):
    info = tarfile.TarInfo(name)
    info.mtime = attrs.pop("mtime", 1_600_000_000)
    for k, v in attrs.items():
        setattr(info, k, v)
    if data is not None:
        info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def _tar(path, members, fmt=tarfile.PAX_FORMAT):
    with tarfile.open(path, "w", format=fmt) as t:
        for m in members:
            _add(t, *m[:-1], **m[-1]) if isinstance(m[-1], dict) else _add(t, *m)
    return path


def test_implied_directories(tmp_path):
    arc = _tar(tmp_path / "a.tar", [("x/y/z.txt", b"z")])
    b = _mount(arc, tmp_path / "m")
    arc_mtime = os.stat(arc).st_mtime_ns
    for rel in ("", "x", "x/y"):
        st = os.lstat(tmp_path / "m" / rel) if rel else os.lstat(tmp_path / "m")
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755, rel
        assert st.st_mtime_ns == arc_mtime, rel
    assert os.listdir(tmp_path / "m") == ["x"]


def test_unsafe_names(tmp_path, caplog):
    arc = _tar(tmp_path / "a.tar", [
        ("/abs/file", b"abs"), ("../evil", b"e"), ("a/../../evil2", b"e"), ("ok/../fine", b"f"),
        ("./dot", b"d")])
    with caplog.at_level(logging.WARNING, "umview.vfs"):
        b = _mount(arc, tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == ["abs", "dot", "fine"]
    assert not (tmp_path / "evil").exists() and not (tmp_path / "evil2").exists()
    b.fill("abs/file")
    assert (tmp_path / "m/abs/file").read_bytes() == b"abs"
    assert "'../evil': outside the archive" in caplog.text
    assert "'a/../../evil2': outside the archive" in caplog.text


def test_member_under_a_file_or_symlink_is_skipped(tmp_path, caplog):
    outside = tmp_path / "outside"
    outside.mkdir()
    arc = _tar(tmp_path / "a.tar", [
        ("f", b"file"), ("f/x", b"x"),
        ("l", {"type": tarfile.SYMTYPE, "linkname": str(outside)}), ("l/escape", b"boo"),
        ("d/sub/x", b"1"), ("d", b"now a file"), ("d/sub/y", b"2")])
    with caplog.at_level(logging.WARNING, "umview.vfs"):
        b = _mount(arc, tmp_path / "m")
    assert os.listdir(outside) == []
    assert sorted(os.listdir(tmp_path / "m")) == ["d", "f", "l"]
    assert os.path.isfile(tmp_path / "m/d")
    b.fill("d")
    assert (tmp_path / "m/d").read_bytes() == b"now a file"
    for rel in ("f/x", "l/escape", "d/sub/x", "d/sub/y"):
        assert f"skipping {rel!r}: its parent is not a directory" in caplog.text


def test_duplicate_member_last_wins(tmp_path):
    arc = _tar(tmp_path / "a.tar", [("f", b"old", {"mode": 0o600}), ("f", b"newer", {"mode": 0o640})])
    b = _mount(arc, tmp_path / "m")
    b.fill("f")
    assert (tmp_path / "m/f").read_bytes() == b"newer"
    assert stat.S_IMODE(os.lstat(tmp_path / "m/f").st_mode) == 0o640


def test_hard_links(tmp_path, caplog):
    arc = _tar(tmp_path / "a.tar", [
        ("t", b"first"),
        ("h1", {"type": tarfile.LNKTYPE, "linkname": "t"}),
        ("h2", {"type": tarfile.LNKTYPE, "linkname": "h1"}),        # a link to a link
        ("dangling", {"type": tarfile.LNKTYPE, "linkname": "nothing"}),
        ("t", b"replaced"),                                        # h1, h2 keep the old data
        ("s", {"type": tarfile.SYMTYPE, "linkname": "t"}),
        ("hs", {"type": tarfile.LNKTYPE, "linkname": "s"})])        # a hard link to a symlink
    with caplog.at_level(logging.WARNING, "umview.vfs"):
        b = _mount(arc, tmp_path / "m")
    m = tmp_path / "m"
    assert "skipping hard link 'dangling'" in caplog.text
    assert sorted(os.listdir(m)) == ["h1", "h2", "hs", "s", "t"]
    assert os.lstat(m / "h1").st_ino != os.lstat(m / "t").st_ino
    assert os.readlink(m / "hs") == "t"
    for rel in ("t", "h1", "h2"):
        b.fill(rel)
    assert [(m / r).read_bytes() for r in ("t", "h1", "h2")] == [b"replaced", b"first", b"first"]


def test_fifo_and_devices(tmp_path):
    arc = _tar(tmp_path / "a.tar", [
        ("fifo", {"type": tarfile.FIFOTYPE, "mode": 0o640}),
        ("null", {"type": tarfile.CHRTYPE, "mode": 0o666, "devmajor": 1, "devminor": 3}),
        ("sda", {"type": tarfile.BLKTYPE, "mode": 0o660, "devmajor": 8, "devminor": 0})])
    b = _mount(arc, tmp_path / "m")
    st = os.lstat(tmp_path / "m/fifo")
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
    for dev in ("null", "sda"):
        st = os.lstat(tmp_path / "m" / dev)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0 and st.st_size == 0
        b.fill(dev)     # not a regular file of the archive: nothing to do


def test_special_modes_and_fractional_mtime(tmp_path):
    arc = _tar(tmp_path / "a.tar", [
        ("locked", {"type": tarfile.DIRTYPE, "mode": 0o000}),
        ("locked/f", b"data", {"mode": 0o400}),
        ("suid", b"#!/bin/sh\n", {"mode": 0o4755, "mtime": 1_600_000_000.25}),
        ("nobody", b"unreadable", {"mode": 0o000})])
    b = _mount(arc, tmp_path / "m")
    m = tmp_path / "m"
    assert stat.S_IMODE(os.lstat(m / "locked").st_mode) == 0
    assert stat.S_IMODE(os.lstat(m / "suid").st_mode) == 0o4755
    assert os.lstat(m / "suid").st_mtime_ns == 1_600_000_000_250_000_000
    b.fill("suid")
    assert stat.S_IMODE(os.lstat(m / "suid").st_mode) == 0o4755
    b.fill("nobody")
    assert stat.S_IMODE(os.lstat(m / "nobody").st_mode) == 0
    os.chmod(m / "nobody", 0o400)
    assert (m / "nobody").read_bytes() == b"unreadable"


def test_empty_archives(tmp_path):
    _tar(tmp_path / "a.tar", [])
    _zip(tmp_path / "a.zip", [])
    for name in ("a.tar", "a.zip"):
        b = _mount(tmp_path / name, tmp_path / (name + ".m"))
        assert os.listdir(tmp_path / (name + ".m")) == []
        assert b.statfs()["f_files"] == 1


def test_deeper_than_the_recursion_limit(tmp_path):
    deep = "/".join(["d"] * 1500) + "/f"
    b = _mount(_tar(tmp_path / "a.tar", [(deep, b"deep")]), tmp_path / "m")
    b.fill(deep)
    assert (tmp_path / "m" / deep).read_bytes() == b"deep"
    archive.rmtree(str(tmp_path / "m"), keep=True)     # what a failed mount does (and pytest's rmtree could not)
    assert os.listdir(tmp_path / "m") == []


def test_unknown_member_type_is_skipped(tmp_path, caplog):
    arc = _tar(tmp_path / "a.tar", [("label", {"type": b"V"}), ("f", b"f")])
    with caplog.at_level(logging.WARNING, "umview.vfs"):
        _mount(arc, tmp_path / "m")
    assert os.listdir(tmp_path / "m") == ["f"]
    assert "skipping 'label': unknown member type b'V'" in caplog.text


@pytest.mark.parametrize("case", ["pax mtime", "huge mtime", "nul in zip symlink"])
def test_garbage_values(case, tmp_path):
    if case == "pax mtime":
        arc = _tar(tmp_path / "a", [("f", b"f", {"pax_headers": {"mtime": "soon"}})])
    elif case == "huge mtime":
        arc = _tar(tmp_path / "a", [("f", b"f", {"mtime": 1 << 70})], fmt=tarfile.GNU_FORMAT)
    else:
        arc = _zip(tmp_path / "a", [(_info("l", stat.S_IFLNK | 0o777), b"a\0b")])
    with pytest.raises(MountError) as e:
        _mount(arc, tmp_path / "m")
    assert str(e.value).startswith(f"archive: {arc}: corrupt archive ("), str(e.value)
    assert os.listdir(tmp_path / "m") == []


def test_old_tar_without_magic(tmp_path):
    """A pre-POSIX (v7) tar: no "ustar" magic, found by its checksum."""
    data = bytearray(_tar(tmp_path / "a.tar", [("f", b"v7")], fmt=tarfile.USTAR_FORMAT).read_bytes())
    data[257:265] = bytes(8)
    data[148:156] = b" " * 8
    data[148:156] = b"%06o\0 " % sum(data[:512])
    (tmp_path / "a.tar").write_bytes(bytes(data))
    b = _mount(tmp_path / "a.tar", tmp_path / "m")
    b.fill("f")
    assert (tmp_path / "m/f").read_bytes() == b"v7"


# ----------------------------------------------------------------------
# zip details

def _zip(path, members, **kw):
    with zipfile.ZipFile(path, "w", **kw) as z:
        for info, data in members:
            z.writestr(info, data)
    return path


def _info(name, mode=None, date_time=(2020, 5, 17, 12, 30, 42), system=3):
    info = zipfile.ZipInfo(name, date_time)
    info.create_system = system
    info.external_attr = (mode << 16) if mode is not None else 0
    return info


def test_zip_without_unix_modes(tmp_path):
    arc = _zip(tmp_path / "a.zip", [(_info("dir/", system=0), b""), (_info("dir/f", system=0), b"f"),
                                    (_info("g", system=0), b"g"), (_info("implied/h", system=0), b"h")])
    b = _mount(arc, tmp_path / "m")
    m = tmp_path / "m"
    modes = {rel: stat.S_IMODE(st.st_mode) for rel, st in _tree(m).items()}
    assert modes == {"": 0o755, "dir": 0o755, "dir/f": 0o644, "g": 0o644, "implied": 0o755,
                     "implied/h": 0o644}
    want = time.mktime((2020, 5, 17, 12, 30, 42, 0, 0, -1))
    assert os.lstat(m / "g").st_mtime_ns == int(want) * 1_000_000_000
    b.fill("dir/f")
    assert (m / "dir/f").read_bytes() == b"f"


def test_zip_with_unix_modes(tmp_path):
    arc = _zip(tmp_path / "a.zip", [
        (_info("d/", stat.S_IFDIR | 0o750), b""),
        (_info("d/exe", stat.S_IFREG | 0o755), b"#!/bin/sh\n"),
        (_info("perm_only", 0o600), b"p"),                   # no file type bits
        (_info("link", stat.S_IFLNK | 0o777), b"d/exe"),
        (_info("ro", stat.S_IFREG | 0o444), b"read only")], compression=zipfile.ZIP_DEFLATED)
    b = _mount(arc, tmp_path / "m")
    m = tmp_path / "m"
    tree = _tree(m)
    assert stat.S_ISDIR(tree["d"].st_mode) and stat.S_IMODE(tree["d"].st_mode) == 0o750
    assert stat.S_IMODE(tree["d/exe"].st_mode) == 0o755
    assert stat.S_ISREG(tree["perm_only"].st_mode) and stat.S_IMODE(tree["perm_only"].st_mode) == 0o600
    assert os.readlink(m / "link") == "d/exe"
    b.fill("ro")
    assert (m / "ro").read_bytes() == b"read only"
    assert stat.S_IMODE(os.lstat(m / "ro").st_mode) == 0o444


def test_zip_extended_timestamp(tmp_path):
    info = _info("f", stat.S_IFREG | 0o644)
    info.extra = struct.pack("<HHBi", 0x5455, 5, 1, 1_234_567_890)
    b = _mount(_zip(tmp_path / "a.zip", [(info, b"x")]), tmp_path / "m")
    assert os.lstat(tmp_path / "m/f").st_mtime_ns == 1_234_567_890 * 1_000_000_000


def test_zip_name_encodings(tmp_path):
    """UTF-8 names without the UTF-8 flag (as Info-ZIP writes them) are
    read as UTF-8; other bytes as CP437."""
    arc = tmp_path / "a.zip"
    _zip(arc, [(_info("naXXve.txt", 0o644), b"1"), (_info("cpXXX.txt", 0o644), b"2")])
    data = arc.read_bytes().replace(b"naXXve", "naïve".encode()).replace(b"cpXXX", b"cp\x82\x8a\x81")
    arc.write_bytes(data)
    b = _mount(arc, tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == ["cpéèü.txt", "naïve.txt"]
    b.fill("naïve.txt")
    assert (tmp_path / "m/naïve.txt").read_bytes() == b"1"


def test_zip_unsafe_name(tmp_path, caplog):
    arc = _zip(tmp_path / "a.zip", [(_info("../zipevil", 0o644), b"e"), (_info("/abs", 0o644), b"a")])
    with caplog.at_level(logging.WARNING, "umview.vfs"):
        b = _mount(arc, tmp_path / "m")
    assert os.listdir(tmp_path / "m") == ["abs"]
    assert "'../zipevil': outside the archive" in caplog.text


def test_zip_corrupt_member_fails_fill_with_eio(tmp_path, caplog):
    arc = tmp_path / "a.zip"
    _zip(arc, [(_info("f", stat.S_IFREG | 0o444), b"A" * 1000)])    # stored: data as is
    arc.write_bytes(arc.read_bytes().replace(b"A" * 1000, b"A" * 999 + b"B"))
    b = _mount(arc, tmp_path / "m")
    with caplog.at_level(logging.WARNING, "umview.vfs"), pytest.raises(SyscallError) as e:
        b.fill("f")
    assert e.value.errno == errno.EIO
    assert "cannot read 'f'" in caplog.text and "CRC" in caplog.text
    st = os.lstat(tmp_path / "m/f")
    assert stat.S_IMODE(st.st_mode) == 0o444 and st.st_size == 1000


# ----------------------------------------------------------------------
# archives that cannot be mounted

def _write(path, data):
    path.write_bytes(data)
    return path


def _small_tar(path, comp=""):
    with tarfile.open(path, "w:" + comp) as t:
        for i in range(3):
            _add(t, f"dir/f{i}", os.urandom(30000))
    return path


def _cut(path, size=None):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2 if size is None else size])
    return path


def _corrupt_gzip_crc(path):
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _corrupt_header(path):
    with tarfile.open(path) as t:
        offset = t.getmembers()[1].offset
    data = bytearray(path.read_bytes())
    data[offset:offset + 100] = b"garbage!" * 12 + b"gbge"
    path.write_bytes(bytes(data))
    return path


def _cut_at_member(path):
    with tarfile.open(path) as t:
        offset = t.getmembers()[2].offset
    return _cut(path, offset)


def _corrupt_first_header(path):
    data = bytearray(_small_tar(path).read_bytes())
    data[:100] = bytes(100)
    path.write_bytes(bytes(data))
    return path


def _corrupt_central_directory(path):
    _zip(path, [(_info("a", 0o644), b"a"), (_info("b", 0o644), b"b")])
    path.write_bytes(path.read_bytes().replace(b"PK\x01\x02", b"XX\x01\x02"))
    return path


def _gzip_of_text(path):
    import gzip
    path.write_bytes(gzip.compress(b"just some text\n" * 100))
    return path


BROKEN = {
    "missing": (lambda p: p, "No such file or directory"),
    "empty": (lambda p: _write(p, b""), "empty file"),
    "directory": (lambda p: p.mkdir() or p, "Is a directory"),
    "text": (lambda p: _write(p, b"hello, I am not an archive\n" * 40), "not a tar or zip archive"),
    "short text": (lambda p: _write(p, b"hi\n"), "not a tar or zip archive"),
    "gzip of text": (_gzip_of_text, "gzip data is not a tar archive"),
    "half tar.gz": (lambda p: _cut(_small_tar(p, "gz")),
                    "truncated or corrupt gzip archive (Compressed file ended"),
    "half tar.bz2": (lambda p: _cut(_small_tar(p, "bz2")),
                     "truncated or corrupt bzip2 archive (Compressed file ended"),
    "half tar.xz": (lambda p: _cut(_small_tar(p, "xz")),
                    "truncated or corrupt xz archive (Compressed file ended"),
    "tar.gz bad crc": (lambda p: _corrupt_gzip_crc(_small_tar(p, "gz")),
                       "truncated or corrupt gzip archive (CRC check failed"),
    "half tar": (lambda p: _cut(_small_tar(p)),
                 "truncated or corrupt tar archive (unexpected end of data)"),
    "tar cut at a member": (lambda p: _cut_at_member(_small_tar(p)),
                            "truncated or corrupt tar archive (unexpected end of data)"),
    "tar bad header": (lambda p: _corrupt_header(_small_tar(p)),
                       "truncated or corrupt tar archive (no valid header at offset"),
    "tar bad first header": (_corrupt_first_header, "corrupt tar archive (bad checksum)"),
    "zip bad central directory": (_corrupt_central_directory,
                                  "truncated or corrupt zip archive (Bad magic number for central"),
    "half zip": (lambda p: _cut(_zip(p, [(_info("a", 0o644), os.urandom(5000))])),
                 "truncated or corrupt zip archive (File is not a zip file)"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_mount_errors(case, tmp_path):
    make, reason = BROKEN[case]
    path = make(tmp_path / "archive")
    mirror = tmp_path / "mirror"
    with pytest.raises(MountError) as e:
        _mount(path, mirror)
    assert str(e.value).startswith(f"archive: {tmp_path / 'archive'}: {reason}"), str(e.value)
    assert "\n" not in str(e.value)
    assert os.listdir(mirror) == []


def test_failed_skeleton_leaves_mirror_empty(src, tmp_path, monkeypatch):
    """A failure at the very end, when directories have their final
    (read-only) modes, still empties the mirror."""
    real = ArchiveBackend._build_skeleton

    def failing(self):
        real(self)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(self.mirror, "rodir/inside"))
    monkeypatch.setattr(ArchiveBackend, "_build_skeleton", failing)
    _tar_py(src, tmp_path / "a.tar", "")
    with pytest.raises(MountError) as e:
        _mount(tmp_path / "a.tar", tmp_path / "m")
    assert str(e.value) == (f"archive: {tmp_path / 'a.tar'}: cannot create 'rodir/inside': "
                            "No space left on device")
    assert os.listdir(tmp_path / "m") == []
    assert os.path.exists("/etc/hostname")      # the absolute symlink was removed, not followed


def test_name_too_long(tmp_path):
    arc = _tar(tmp_path / "a.tar", [("ok/" + "x" * 300, b"x")])
    with pytest.raises(MountError) as e:
        _mount(arc, tmp_path / "m")
    assert str(e.value) == f"archive: {arc}: cannot create 'ok/{'x' * 300}': File name too long"
    assert os.listdir(tmp_path / "m") == []
