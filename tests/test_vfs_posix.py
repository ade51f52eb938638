"""POSIX conformance of the vfs module's writable mounts, differentially.

tests/progs/posix_suite.py performs some 250 file system steps in a
directory and prints one line per step (result or errno name), with nothing
that depends on the file system type or on where the directory is.  It runs
once natively in a fresh directory, then in a view at the target of each
writable mount type; the outputs must be identical, byte for byte, and both
must exit 0.

Every mount target is under /umvtest, which does not exist on the host: the
run can only work if the mount is virtual, and the host must still have no
/umvtest afterwards.  Where a mount writes through to a host directory (bind,
pyfuse3 passthrough) that directory must end up holding what the native run
left; where it must not write through (cow), its source is compared before
and after.
"""
import difflib
import hashlib
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import HERE, assert_same, run_native, run_view

PY = sys.executable                       # the real interpreter, not a pyenv shim
SUITE = HERE / "progs" / "posix_suite.py"
FUSE_EXAMPLES = HERE / "fuse_examples"
TOP = "/umvtest"


def suite(directory, skip=()):
    return [PY, str(SUITE)] + (["--skip", ",".join(skip)] if skip else []) + [str(directory)]


def assert_same_output(native, view):
    """assert_same, with a diff of the outputs when they differ."""
    if view.stdout != native.stdout:
        diff = difflib.unified_diff(native.stdout.decode().splitlines(),
                                    view.stdout.decode().splitlines(), "native", "view", lineterm="", n=1)
        pytest.fail("outputs differ:\n" + "\n".join(list(diff)[:200])
                    + "\nview's stderr:\n" + view.stderr.decode()[-3000:])
    assert_same(native, view)


def snapshot(root, base=None):
    """Everything under root (not root itself): path, type and mode, link
    count, size and sha256 of files, targets of symlinks (base, the path the
    program saw root at, shown as <DIR>).  No times, owners, inode numbers or
    directory sizes."""
    rows = []
    root = Path(root)
    base = str(base or os.path.realpath(root))
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            row = [str(p.relative_to(root)), stat.filemode(st.st_mode)]
            if stat.S_ISREG(st.st_mode):
                row += [st.st_nlink, st.st_size, hashlib.sha256(p.read_bytes()).hexdigest()]
            elif stat.S_ISLNK(st.st_mode):
                row.append(_dir_in(os.readlink(p), base))
            rows.append(tuple(row))
    return rows


def _dir_in(target, base):
    return "<DIR>" + target[len(base):] if target.startswith(base + "/") else target


# the same listing, as a program to run in a view (over a mount target)
SNAPSHOT_PY = r"""
import hashlib, os, stat, sys
root = sys.argv[1]
for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    for name in sorted(dirnames + filenames):
        p = os.path.join(dirpath, name)
        st = os.lstat(p)
        row = [os.path.relpath(p, root), stat.filemode(st.st_mode)]
        if stat.S_ISREG(st.st_mode):
            with open(p, "rb") as f:
                row += [st.st_nlink, st.st_size, hashlib.sha256(f.read()).hexdigest()]
        elif stat.S_ISLNK(st.st_mode):
            t = os.readlink(p)
            row.append("<DIR>" + t[len(root):] if t.startswith(root + "/") else t)
        print(repr(tuple(row)))
"""


def snapshot_text(root):
    return "".join(repr(row) + "\n" for row in snapshot(root)).encode()


def fuse_class(example, cls):
    """class=PATH:CLASS for a file system of tests/fuse_examples."""
    path = FUSE_EXAMPLES / f"{example}.py"
    assert path.is_file(), f"{path} is missing"
    return f"{path}:{cls}"


def assert_no_top():
    assert not os.path.lexists(TOP), f"{TOP} exists on the host: the mount is not virtual"


MEANINGFUL = [  # lines of the native output that show the steps did run
    "open O_EXCL existing: EEXIST", "open O_DIRECTORY on file: ENOTDIR",
    "open O_NOFOLLOW symlink: ELOOP", "rename dir over non-empty dir: ENOTEMPTY",
    "RENAME_NOREPLACE existing: EEXIST", "rmdir non-empty: ENOTEMPTY", "mkdir existing: EEXIST",
    "readdir 500 count: 500", "readdir 500 same names: True", "nlink after link: [2, 2]",
    "stat mtime: file 0640 size=5 nlink=1 mtime=1234567890987654321",
    "mmap write, read back: [b'mapped', b'page2', 8192, 8181]", "getcwd: <DIR>/sub",
    "readlink /proc/self/fd/N: ['<DIR>/sub/inner', '<DIR>/sub', '<DIR>/sub/inner']",
    "unlinked open file: [False, 0, b'still here', '<DIR>/gone (deleted)']",
    "pre.listdir new dir/sub: []", "pre.listdir new gone: []", "statvfs: [255, True]",
]


def _check_native(r, d, skip, tmp_path_factory):
    """The instrument itself: the native run worked, its steps got the
    results POSIX prescribes (a suite that printed only errors would compare
    equal too easily), and its output is the same on a memory file system
    and in a directory made by --prepare (the lower layer of the cow mounts)."""
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    assert r.stderr == b""
    out = r.stdout.decode()
    assert out.startswith("start: <DIR>\n") and out.endswith("end: ok\n")
    assert len(out.splitlines()) > 200
    assert "EXCEPTION" not in out and "OUTSIDE" not in out and "aborted" not in out
    for line in MEANINGFUL:
        assert line + "\n" in out, line
    if "exchange" not in skip:
        assert "after exchange: [b'Q\\n', b'P\\n']\n" in out
    if "dirrename" not in skip:
        assert ("pre.tree moved2: in [dir 0755]; m.txt [file 0644 size=5 nlink=1] b'mike\\n'; "
                "in/m2.txt [file 0600 size=7 nlink=1] b'mike 2\\n'\n") in out
    shm = tempfile.mkdtemp(prefix="posix-shm-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        assert_same_output(r, run_native(suite(shm, skip)))
    finally:
        subprocess.run(["rm", "-rf", shm], check=True)
    prepared = tmp_path_factory.mktemp("posix-prepared")
    assert run_native([PY, str(SUITE), "--prepare", str(prepared)]).returncode == 0
    assert (prepared / "pre" / "dir" / "sub" / "y.txt").read_bytes() == b"yankee\n"
    assert_same_output(r, run_native(suite(prepared, skip)))


@pytest.fixture(scope="module")
def native_runs(tmp_path_factory):
    """The suite run natively in a fresh directory, once per set of skipped
    steps: skip -> (result, directory)."""
    cache = {}

    def get(skip=()):
        if skip not in cache:
            d = tmp_path_factory.mktemp("posix-native")
            r = run_native(suite(d, skip))
            _check_native(r, d, skip, tmp_path_factory)
            cache[skip] = (r, d)
        return cache[skip]
    return get


@pytest.fixture(scope="module")
def native(native_runs):
    return native_runs()


# ----------------------------------------------------------------------
# the mount types

# Each m_* prepares a mount type: it returns (umview options, directory in
# the view, check after the run).

def m_bind(tmp_path, native_dir):
    host = tmp_path / "bindsrc"
    host.mkdir()

    def check():
        # the changes were made in the host directory itself
        assert snapshot(host, f"{TOP}/bind") == snapshot(native_dir)
    return ["-b", f"{host}:{TOP}/bind"], f"{TOP}/bind", check


def m_tmpfs(tmp_path, native_dir):
    return ["--tmpfs", f"{TOP}/tmp"], f"{TOP}/tmp", lambda: None


def state(root):
    """snapshot(root) with every mode, owner and modification time, root's
    included: to prove that a directory was left alone."""
    rows = []
    for p in [Path(root)] + sorted(Path(root).rglob("*")):
        st = p.lstat()
        rows.append((str(p.relative_to(root)), st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns))
    return snapshot(root), rows


def _cow_source(tmp_path):
    src = tmp_path / "lower"
    src.mkdir()
    r = run_native([PY, str(SUITE), "--prepare", str(src)])
    assert r.returncode == 0, r.stderr
    return src, state(src)


def m_cow_memory(tmp_path, native_dir):
    src, before = _cow_source(tmp_path)

    def check():
        assert state(src) == before, "the lower layer of a cow mount was changed"
    return ["--mount", f"type=cow,source={src},target={TOP}/cow"], f"{TOP}/cow", check


def m_cow_upper(tmp_path, native_dir):
    src, before = _cow_source(tmp_path)
    upper = tmp_path / "upper"

    def check():
        assert state(src) == before, "the lower layer of a cow mount was changed"
        # the changes are in the upper directory, as files of the same names
        assert (upper / "big").stat().st_size == 1 << 20
        assert (upper / "pre" / "a2.txt").read_bytes() == b"alpha\nappended\n"
        # and a new view over the same layers shows the state the run left
        view = run_view([PY, "-c", SNAPSHOT_PY, f"{TOP}/cow"],
                        "--mount", f"type=cow,source={src},target={TOP}/cow,upper={upper}")
        assert view.returncode == 0, view.stderr.decode()[-3000:]
        assert view.stdout.decode().splitlines() == snapshot_text(native_dir).decode().splitlines()
        assert state(src) == before
    opts = ["--mount", f"type=cow,source={src},target={TOP}/cow,upper={upper}"]
    return opts, f"{TOP}/cow", check


def m_pyfuse3_memfs(tmp_path, native_dir):
    return (["--mount", f"type=pyfuse3,target={TOP}/mem,class={fuse_class('memfs', 'MemFS')}"],
            f"{TOP}/mem", lambda: None)


def m_pyfuse3_passthrough(tmp_path, native_dir):
    host = tmp_path / "ptsrc"
    host.mkdir()

    def check():
        # the file system wrote everything through to its source directory
        assert snapshot(host, f"{TOP}/pt") == snapshot(native_dir)
    opts = ["--mount", f"type=pyfuse3,source={host},target={TOP}/pt,"
                       f"class={fuse_class('passthrough', 'Passthrough')}"]
    return opts, f"{TOP}/pt", check


MOUNTS = {
    "bind": m_bind,
    "tmpfs": m_tmpfs,
    "cow-memory": m_cow_memory,
    "cow-upper": m_cow_upper,
    "pyfuse3-memfs": m_pyfuse3_memfs,
    "pyfuse3-passthrough": m_pyfuse3_passthrough,
}
# steps left out (in both runs) where a mount's file system lacks them: the
# example passthrough refuses RENAME_EXCHANGE (EINVAL, as libfuse's
# passthrough_ll: os.rename cannot exchange); it must pass all the others.
# (A cow mount must rename a directory of its lower layer, which overlayfs
# refuses with EXDEV; to accept that, skip "dirrename" for both cow kinds.)
SKIPS = {"pyfuse3-passthrough": ("exchange",)}


@pytest.mark.parametrize("kind", list(MOUNTS))
def test_posix_suite_in_mount(kind, native_runs, tmp_path):
    """The suite at the target of a mount of this type: the same output as
    natively, and the mount's own check (see the m_* functions)."""
    skip = SKIPS.get(kind, ())
    native_result, native_dir = native_runs(skip)
    options, target, check = MOUNTS[kind](tmp_path, native_dir)
    assert_no_top()
    view = run_view(suite(target, skip), *options)
    assert_no_top()
    assert_same_output(native_result, view)
    assert view.returncode == 0, view.stderr.decode()[-3000:]
    check()
    assert_no_top()


def test_posix_suite_in_nested_mount(native, tmp_path):
    """A tmpfs mounted on a directory of a bind mount (mounts stack: the
    deeper one wins), then the suite in the tmpfs; the bind mount's host
    directory keeps only what was there."""
    host = tmp_path / "outer"
    (host / "inner").mkdir(parents=True)
    (host / "inner" / "hidden").write_text("covered by the tmpfs\n")
    before = snapshot(host)
    assert_no_top()
    view = run_view(suite(f"{TOP}/outer/inner"), "-b", f"{host}:{TOP}/outer",
                    "--tmpfs", f"{TOP}/outer/inner")
    assert_no_top()
    assert_same_output(native[0], view)
    assert snapshot(host) == before


def test_posix_suite_after_umview_mount(native, tmp_path):
    """The same suite in a tmpfs mounted from inside the view with
    umview-mount, after which umview-umount removes it again."""
    script = (f"umview-mount -t tmpfs tmpfs {TOP}/late || exit 10; "
              f"{PY} {SUITE} {TOP}/late || exit 11; "
              f"umview-umount {TOP}/late || exit 12; "
              f"test -e {TOP}/late/file && exit 13; exit 0")
    # a view with the vfs module loaded but no mount yet: -p vfs
    assert_no_top()
    view = run_view(["sh", "-c", script], "-p", "vfs")
    assert_no_top()
    assert_same_output(native[0], view)
