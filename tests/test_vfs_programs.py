"""Real programs in the vfs module's mounts.

Most tests are differential: the same script runs natively in a directory
prepared on the host and in a view where the same tree is at a mount target
under /umvtest (which does not exist on the host, so only a virtual mount
can serve it).  Outputs are compared after replacing each side's base
directory by <BASE>: a host path leaking into the view (a placeholder, a
mirror directory) stays and shows up as a difference.  Where a mount type
legitimately shows something else than a native directory (the size of a
directory on another file system type, the link count of a merged
directory), the listing is normalized and the reason is given there.

The others check what has no native counterpart: read-only mounts, hidden
paths, errors of bad mounts, umview-mount/umview-umount inside a view, a
failing pyfuse3 file system.
"""
import difflib
import hashlib
import importlib.util
import io
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from conftest import run_native, run_view

PY = sys.executable                       # the real interpreter, not a pyenv shim
REPO = Path(__file__).resolve().parent.parent
HELLO_CLASS = f"{REPO}/tests/fuse_examples/hello.py:Hello"   # a pyfuse3 file system
TOP = "/umvtest"
FIXED = 946_782_245                       # 2000-01-02 03:04:05 UTC
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ann Author", "GIT_AUTHOR_EMAIL": "ann@example.com",
    "GIT_COMMITTER_NAME": "Carl Committer", "GIT_COMMITTER_EMAIL": "carl@example.com",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
}
BASE_ENV = {"LC_ALL": "C", "TZ": "UTC", "LANG": "C"}


# ----------------------------------------------------------------------
# helpers

def no_top():
    assert not os.path.lexists(TOP), f"{TOP} exists on the host: a mount was not virtual"


def sh(script, *options, base=None, env=None, cwd=None):
    """Run `sh -c script` in a view (options given) or natively (no options),
    with $BASE set to base; returns the result with base replaced by <BASE>
    in stdout and stderr."""
    env = {**BASE_ENV, **(env or {}), "BASE": str(base)}
    if options:
        no_top()
        r = run_view(["sh", "-c", script], *options, env=env, cwd=cwd)
        no_top()
    else:
        r = run_native(["sh", "-c", script], env=env, cwd=cwd)
    b = str(base).encode()
    r.stdout = r.stdout.replace(b, b"<BASE>")
    r.stderr = r.stderr.replace(b, b"<BASE>")
    return r


def same(native, view):
    """Differential check on normalized results: the native run must itself
    have worked (else the comparison proves little)."""
    assert native.returncode == 0, native.stderr.decode()[-3000:]
    for what in ("stdout", "stderr"):
        a, b = getattr(native, what).decode(), getattr(view, what).decode()
        if a != b:
            diff = difflib.unified_diff(a.splitlines(), b.splitlines(), "native", "view",
                                        lineterm="", n=2)
            pytest.fail(f"{what} differs:\n" + "\n".join(list(diff)[:150])
                        + ("\nview's stderr:\n" + view.stderr.decode()[-2000:]
                           if what == "stdout" else ""))
    assert view.returncode == native.returncode


def write(path, text, mode=0o644):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    path.chmod(mode)


def fix_times(root):
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (FIXED, FIXED), follow_symlinks=False)
    os.utime(root, (FIXED, FIXED))


def state(root):
    """Everything under root, times and modes included: to prove a
    directory was left alone."""
    rows = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            row = [str(p.relative_to(root)), stat.filemode(st.st_mode), st.st_uid, st.st_gid,
                   st.st_nlink, st.st_mtime_ns]
            if stat.S_ISREG(st.st_mode):
                row += [st.st_size, hashlib.sha256(p.read_bytes()).hexdigest()]
            elif stat.S_ISLNK(st.st_mode):
                row.append(os.readlink(p))
            rows.append(tuple(row))
    st = os.stat(root)
    return [(".", stat.filemode(st.st_mode), st.st_mtime_ns)] + rows


def make_tree(root):
    """A small tree: files, subdirectories, a symlink, an empty file, an
    executable, a name with a space, modes other than 0644/0755."""
    root = Path(root)
    root.mkdir(parents=True)
    write(root / "README", "a small tree\n")
    write(root / "empty", "")
    write(root / "run.sh", "#!/bin/sh\necho run\n", 0o755)
    write(root / "with space.txt", "spaces in the name\n")
    write(root / "a" / "one.txt", "one\n" * 100)
    write(root / "a" / "b" / "two.txt", "two\n" * 1000, 0o600)
    write(root / "a" / "b" / "c" / "deep.txt", "deep\n")
    write(root / "big.bin", bytes((i * 7) % 251 for i in range(200_000)))
    (root / "d").mkdir()
    (root / "d").chmod(0o750)
    os.symlink("a/one.txt", root / "link")
    fix_times(root)
    return root


def gcc(out, source, *flags):
    src = Path(str(out) + ".c")
    src.write_text(textwrap.dedent(source))
    subprocess.run(["gcc", "-O1", "-Wall", "-Werror", *flags, "-o", str(out), str(src)],
                   check=True, capture_output=True)
    return str(out)


# ----------------------------------------------------------------------
# C helpers, built once

PATHCALLS_C = r"""
    /* pathcalls OP PATH [OP PATH...]: the newer path calls, each printed as
       "OP PATH: result" (errno name on failure). */
    #define _GNU_SOURCE
    #include <errno.h>
    #include <fcntl.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <sys/stat.h>
    #include <sys/syscall.h>
    #include <unistd.h>
    #include <linux/openat2.h>
    #ifndef SYS_faccessat2
    #define SYS_faccessat2 439
    #endif
    #ifndef SYS_fchmodat2
    #define SYS_fchmodat2 452
    #endif
    #ifndef SYS_openat2
    #define SYS_openat2 437
    #endif

    static const char *ftype(unsigned m) {
        return S_ISREG(m) ? "file" : S_ISDIR(m) ? "dir" : S_ISLNK(m) ? "symlink" : "other";
    }

    static void print_statx(const struct statx *sx) {
        printf("%s %04o", ftype(sx->stx_mode), sx->stx_mode & 07777);
        if (!S_ISDIR(sx->stx_mode))
            printf(" size=%llu nlink=%u", (unsigned long long)sx->stx_size, sx->stx_nlink);
    }

    static void print_fd(long fd) {
        char buf[200];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n < 0) { printf("read %s", strerrorname_np(errno)); return; }
        buf[n] = 0;
        for (char *c = buf; *c; c++) if (*c == '\n') *c = '|';
        printf("'%s'", buf);
        close(fd);
    }

    static long do_openat2(int dirfd, const char *p, long flags, long resolve) {
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = flags;
        how.mode = (flags & O_CREAT) ? 0640 : 0;
        how.resolve = resolve;
        return syscall(SYS_openat2, dirfd, p, &how, sizeof how);
    }

    int main(int argc, char **argv) {
        umask(022);
        for (int i = 1; i + 1 < argc; i += 2) {
            const char *op = argv[i], *p = argv[i + 1];
            struct statx sx;
            struct stat st;
            long r = 0;
            printf("%s %s: ", op, p);
            errno = 0;
            if (!strcmp(op, "statx")) {
                r = syscall(SYS_statx, AT_FDCWD, p, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx);
                if (!r) print_statx(&sx);
            } else if (!strcmp(op, "statx-follow")) {
                r = syscall(SYS_statx, AT_FDCWD, p, 0, STATX_BASIC_STATS, &sx);
                if (!r) print_statx(&sx);
            } else if (!strcmp(op, "statx-at-parent")) {   /* dirfd: an O_PATH fd of .. */
                int dfd = open("..", O_PATH | O_DIRECTORY);
                r = syscall(SYS_statx, dfd, p, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx);
                if (!r) print_statx(&sx);
                close(dfd);
            } else if (!strcmp(op, "newfstatat")) {
                r = syscall(SYS_newfstatat, AT_FDCWD, p, &st, AT_SYMLINK_NOFOLLOW);
                if (!r) printf("%s %04o", ftype(st.st_mode), st.st_mode & 07777);
            } else if (!strcmp(op, "faccessat2")) {
                r = syscall(SYS_faccessat2, AT_FDCWD, p, R_OK, AT_EACCESS);
                if (!r) printf("ok");
            } else if (!strcmp(op, "faccessat2-nofollow")) {
                r = syscall(SYS_faccessat2, AT_FDCWD, p, F_OK, AT_EACCESS | AT_SYMLINK_NOFOLLOW);
                if (!r) printf("ok");
            } else if (!strcmp(op, "fchmodat2")) {
                r = syscall(SYS_fchmodat2, AT_FDCWD, p, 0640, 0);
                if (!r && !(r = stat(p, &st))) printf("now %04o", st.st_mode & 07777);
            } else if (!strcmp(op, "fchmodat2-nofollow")) {
                r = syscall(SYS_fchmodat2, AT_FDCWD, p, 0604, AT_SYMLINK_NOFOLLOW);
                if (!r && !(r = lstat(p, &st))) printf("now %04o", st.st_mode & 07777);
            } else if (!strcmp(op, "openat2")) {
                r = do_openat2(AT_FDCWD, p, O_RDONLY, 0);
                if (r >= 0) { print_fd(r); r = 0; }
            } else if (!strcmp(op, "openat2-nosymlinks")) {
                r = do_openat2(AT_FDCWD, p, O_RDONLY, RESOLVE_NO_SYMLINKS);
                if (r >= 0) { print_fd(r); r = 0; }
            } else if (!strcmp(op, "openat2-create")) {
                r = do_openat2(AT_FDCWD, p, O_WRONLY | O_CREAT | O_EXCL, 0);
                if (r >= 0) { close(r); r = stat(p, &st); if (!r) printf("made %04o", st.st_mode & 07777); }
            } else if (!strcmp(op, "openat2-at-parent")) {
                int dfd = open("..", O_RDONLY | O_DIRECTORY);
                r = do_openat2(dfd, p, O_RDONLY, 0);
                if (r >= 0) { print_fd(r); r = 0; }
                close(dfd);
            } else if (!strcmp(op, "cwd")) {
                char buf[4096];
                ssize_t n;
                if (!getcwd(buf, sizeof buf)) { r = -1; }
                else {
                    printf("getcwd=%s ", buf);
                    n = readlink("/proc/self/cwd", buf, sizeof buf - 1);
                    if (n < 0) r = -1; else { buf[n] = 0; printf("proc=%s", buf); }
                }
            } else {
                printf("unknown op");
            }
            if (r < 0) printf("%s", strerrorname_np(errno));
            printf("\n");
        }
        return 0;
    }
"""

PROBE_C = r"""
    /* A static program: its arguments, its cwd, where /proc/self/exe points;
       with "root": the content of /data.txt and the entries of /. */
    #define _GNU_SOURCE
    #include <dirent.h>
    #include <errno.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <unistd.h>

    int main(int argc, char **argv) {
        char buf[4096];
        ssize_t n;
        printf("probe: argc=%d", argc);
        for (int i = 1; i < argc; i++) printf(" [%s]", argv[i]);
        printf("\ncwd: %s\n", getcwd(buf, sizeof buf) ? buf : strerrorname_np(errno));
        n = readlink("/proc/self/exe", buf, sizeof buf - 1);
        if (n >= 0) buf[n] = 0;
        printf("exe: %s\n", n >= 0 ? buf : strerrorname_np(errno));
        if (argc > 1 && !strcmp(argv[1], "root")) {
            FILE *f = fopen("/data.txt", "r");
            if (!f) printf("data: %s\n", strerrorname_np(errno));
            else { n = fread(buf, 1, sizeof buf - 1, f); buf[n] = 0; printf("data: %s", buf); fclose(f); }
            struct dirent **names;
            int k = scandir("/", &names, NULL, alphasort);
            printf("root:");
            for (int i = 0; i < k; i++) printf(" %s", names[i]->d_name);
            printf("\n");
        }
        return 7;
    }
"""


@pytest.fixture(scope="module")
def cprogs(tmp_path_factory):
    out = tmp_path_factory.mktemp("vfs-progs")
    return {
        "pathcalls": gcc(out / "pathcalls", PATHCALLS_C),
        "probe_static": gcc(out / "probe_static", PROBE_C, "-static"),
    }


# ----------------------------------------------------------------------
# tar into a tmpfs

LISTING = ("find . -mindepth 1 \\( -type d -printf '%y %m - %T@ %P\\n' \\) "
           "-o -printf '%y %m %s %T@ %P -> %l\\n' | sort; "
           "find . -type f -print0 | sort -z | xargs -0 md5sum")


def test_tar_extract_into_tmpfs(tmp_path):
    """tar x of a real tree (the kernel headers) into a tmpfs mount: the same
    names, types, modes, sizes, times and contents as natively.  (Directory
    sizes are left out: they depend on the file system type, and the tmpfs is
    backed by a memory file system while the native run is on disk.)"""
    src = Path("/usr/include/linux")
    assert src.is_dir()
    tarball = tmp_path / "linux.tar"
    subprocess.run(["tar", "cf", str(tarball), "-C", str(src.parent), src.name], check=True)
    script = f'cd "$BASE/x" && tar xf {tarball} && {LISTING}'
    nat = tmp_path / "native"
    (nat / "x").mkdir(parents=True)
    native = sh(script, base=nat)
    assert native.returncode == 0 and native.stdout.count(b"\n") > 2 * 500
    view = sh(script, "--tmpfs", f"{TOP}/x", base=TOP)
    same(native, view)


# ----------------------------------------------------------------------
# git in a copy-on-write mount

GIT_SCRIPT = """\
cd "$BASE/repo" &&
git init -q -b main . && git add -A && git commit -q -m first &&
printf 'more\\n' >> README && git rm -q docs/a.txt && mkdir new && echo n > new/n.txt &&
chmod +x src/main.c && git add -A && git commit -q -m second &&
git log --format='%H %s' && git status --short && git ls-files -s &&
git fsck --no-progress --strict && echo fsck-ok && git log --format=%s
"""


def test_git_in_cow(tmp_path):
    """git init/add/commit/log in a cow mount over a prepared directory: the
    same commits (hashes included) as natively, and the lower directory is
    left exactly as it was (times and modes included)."""
    lower = tmp_path / "lower"
    write(lower / "README", "readme\n")
    write(lower / "src" / "main.c", "int main(void) { return 0; }\n")
    write(lower / "docs" / "a.txt", "doc a\n")
    write(lower / "docs" / "b.txt", "doc b\n")
    write(lower / "tool.sh", "#!/bin/sh\necho tool\n", 0o755)
    os.symlink("docs/b.txt", lower / "link")
    fix_times(lower)
    before = state(lower)
    home = tmp_path / "home"
    home.mkdir()
    env = {**GIT_ENV, "HOME": str(home)}
    nat = tmp_path / "native"
    nat.mkdir()
    shutil.copytree(lower, nat / "repo", symlinks=True)
    native = sh(GIT_SCRIPT, base=nat, env=env)
    assert native.stdout.decode().endswith("fsck-ok\nsecond\nfirst\n"), native.stderr
    view = sh(GIT_SCRIPT, "--mount", f"type=cow,source={lower},target={TOP}/repo",
              "-w", f"{TOP}/repo", base=TOP, env=env)
    same(native, view)
    assert state(lower) == before
    assert not (lower / ".git").exists()


# ----------------------------------------------------------------------
# python venv (and pip) in a tmpfs

TINY_PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "umvtiny"
version = "1.0"

[project.scripts]
umvtiny = "umvtiny:main"
"""
TINY_INIT = """\
import sys


def hello():
    return "hello from umvtiny"


def main():
    print(hello(), sys.argv[1:], sys.prefix)
"""


def _handmade_wheel(dest):
    """A wheel written by hand (when setuptools or wheel are missing)."""
    name = "umvtiny-1.0-py3-none-any.whl"
    files = {
        "umvtiny/__init__.py": TINY_INIT,
        "umvtiny-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: umvtiny\nVersion: 1.0\n",
        "umvtiny-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\n"
                                      "Tag: py3-none-any\n",
        "umvtiny-1.0.dist-info/entry_points.txt": "[console_scripts]\numvtiny = umvtiny:main\n",
    }
    record = "".join(f"{p},,\n" for p in files) + "umvtiny-1.0.dist-info/RECORD,,\n"
    files["umvtiny-1.0.dist-info/RECORD"] = record
    with zipfile.ZipFile(dest / name, "w") as z:
        for p, text in files.items():
            z.writestr(p, text)
    return dest / name


@pytest.fixture(scope="module")
def tiny_wheel(tmp_path_factory):
    base = tmp_path_factory.mktemp("wheel")
    proj = base / "proj"
    write(proj / "pyproject.toml", TINY_PYPROJECT)
    write(proj / "umvtiny" / "__init__.py", TINY_INIT)
    wheels = base / "wheels"
    wheels.mkdir()
    if all(importlib.util.find_spec(m) for m in ("setuptools", "wheel", "pip")):
        r = run_native([PY, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "--no-index", "-w", str(wheels), str(proj)],
                       env={"PIP_DISABLE_PIP_VERSION_CHECK": "1", "HOME": str(base)})
        assert r.returncode == 0, r.stderr.decode()
        found = list(wheels.glob("umvtiny-1.0-*.whl"))
        assert len(found) == 1
        return found[0]
    return _handmade_wheel(wheels)


VENV_SCRIPT = """\
{py} -m venv --without-pip "$BASE/venv/v" || exit 1
"$BASE/venv/v/bin/python" -c 'import sys; print(sys.prefix); print(sys.prefix != sys.base_prefix)'
"$BASE/venv/v/bin/python" -c 'import os, sys; print(os.path.realpath(sys.executable) == "{real}")'
{py} -m pip --python "$BASE/venv/v/bin/python" install -q --no-index --no-deps {wheel} || exit 2
"$BASE/venv/v/bin/python" -c 'import umvtiny; print(umvtiny.hello(), umvtiny.__file__)'
# a console script: its #! interpreter lives in the mount too
head -1 "$BASE/venv/v/bin/umvtiny"
"$BASE/venv/v/bin/umvtiny" one two
cd "$BASE/venv/v/bin" && ./umvtiny three
"""


VENV_EXPECTED = """\
<BASE>/venv/v
True
True
hello from umvtiny <BASE>/venv/v/lib/python{v}/site-packages/umvtiny/__init__.py
#!<BASE>/venv/v/bin/python
hello from umvtiny ['one', 'two'] <BASE>/venv/v
hello from umvtiny ['three'] <BASE>/venv/v
""".replace("{v}", "%d.%d" % sys.version_info[:2])


def test_venv_and_pip_in_tmpfs(tmp_path, tiny_wheel):
    """python -m venv into a tmpfs, its python runs and knows its (virtual)
    prefix, pip installs a local wheel into it offline, and the installed
    console script (#!/umvtest/venv/v/bin/python) runs."""
    script = VENV_SCRIPT.format(py=PY, wheel=tiny_wheel, real=os.path.realpath(PY))
    env = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1",
           "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    nat = tmp_path / "native"
    (nat / "venv").mkdir(parents=True)
    native = sh(script, base=nat, env=env)
    assert native.returncode == 0, native.stderr.decode()
    assert native.stdout.decode() == VENV_EXPECTED
    view = sh(script, "--tmpfs", f"{TOP}/venv", base=TOP, env=env)
    same(native, view)


# ----------------------------------------------------------------------
# gcc with sources in an archive mount

HELLO_C = """\
#include <stdio.h>
#include "util.h"

int main(int argc, char **argv) {
    printf("hello: %d args, util says %d\\n", argc - 1, util_answer(argc));
    return 0;
}
"""
UTIL_C = """\
#include "util.h"

int util_answer(int x) { return 40 + x; }
"""
UTIL_H = "int util_answer(int x);\n"
MAKEFILE = """\
SRC ?= .
VPATH = $(SRC)
CFLAGS = -O1 -Wall -I$(SRC)

hello2: hello.o util.o
\t$(CC) -o $@ $^

%.o: %.c util.h
\t$(CC) $(CFLAGS) -c -o $@ $<
"""


def _add(tar, name, data=b"", mode=0o644, kind=tarfile.REGTYPE, target=""):
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.type = mode, FIXED, kind
    info.uid, info.gid = os.getuid(), os.getgid()
    if kind == tarfile.SYMTYPE:
        info.linkname = target
        tar.addfile(info)
    elif kind == tarfile.DIRTYPE:
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


GCC_SCRIPT = """\
gcc -O1 -Wall -o "$BASE/out/hello" "$BASE/src/hello.c" "$BASE/src/util.c" && "$BASE/out/hello" a b
echo "gcc: $?"
make -s -C "$BASE/out" -f "$BASE/src/Makefile" SRC="$BASE/src" && "$BASE/out/hello2" x
echo "make: $?"
ls "$BASE/src" "$BASE/out"
"""


def test_gcc_from_archive(tmp_path):
    """Sources in a tgz mounted as an archive: gcc compiles them (including
    "util.h" found beside hello.c), make reads its Makefile from the archive
    and builds into a tmpfs, the binaries built run from the tmpfs."""
    tgz = tmp_path / "src.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name, text in (("hello.c", HELLO_C), ("util.c", UTIL_C), ("util.h", UTIL_H),
                           ("Makefile", MAKEFILE)):
            _add(tar, name, text.encode())
    nat = tmp_path / "native"
    (nat / "src").mkdir(parents=True)
    (nat / "out").mkdir()
    subprocess.run(["tar", "xzf", str(tgz), "-C", str(nat / "src")], check=True)
    native = sh(GCC_SCRIPT, base=nat)
    assert b"hello: 2 args, util says 43\ngcc: 0\nhello: 1 args, util says 42\nmake: 0\n" \
        in native.stdout, native.stderr
    view = sh(GCC_SCRIPT, "--mount", f"type=archive,source={tgz},target={TOP}/src",
              "--tmpfs", f"{TOP}/out", base=TOP)
    same(native, view)


def test_make_in_archive_is_read_only(tmp_path):
    """make -C in the (read-only) archive itself cannot write its objects."""
    tgz = tmp_path / "src.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name, text in (("hello.c", HELLO_C), ("util.c", UTIL_C), ("util.h", UTIL_H),
                           ("Makefile", MAKEFILE)):
            _add(tar, name, text.encode())
    r = sh('make -C "$BASE/src" 2>&1; echo "make: $?"; touch "$BASE/src/new" 2>&1; ls "$BASE/src"',
           "--mount", f"type=archive,source={tgz},target={TOP}/src", base=TOP)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert "Read-only file system" in out
    assert "make: 2\n" in out
    assert "touch: cannot touch '<BASE>/src/new': Read-only file system\n" in out
    assert out.endswith("Makefile\nhello.c\nutil.c\nutil.h\n")


# ----------------------------------------------------------------------
# ELF binaries and scripts executed from mounts

EXEC_SCRIPT = """\
"$BASE/bin/probe_static" one "two words"; echo "status $?"
"$BASE/bin/true"; echo "true: $?"
"$BASE/bin/script.sh" 1 2 3
"$BASE/bin/noexec.sh"; echo "noexec: $?"
cd "$BASE/bin" && ./probe_static rel; echo "status $?"
"""


def test_elf_from_archive(tmp_path, cprogs):
    """A static binary, a dynamic one (/bin/true) and a script run from an
    archive mount, by absolute and by relative path; /proc/self/exe shows the
    view path; a file without x bit is refused (EACCES) as natively."""
    tarball = tmp_path / "bins.tar"
    with tarfile.open(tarball, "w") as tar:
        _add(tar, "probe_static", Path(cprogs["probe_static"]).read_bytes(), 0o755)
        _add(tar, "true", Path("/bin/true").read_bytes(), 0o755)
        _add(tar, "script.sh", b'#!/bin/sh\necho "script: $# args"\n', 0o755)
        _add(tar, "noexec.sh", b"#!/bin/sh\necho never\n", 0o644)
    nat = tmp_path / "native"
    (nat / "bin").mkdir(parents=True)
    subprocess.run(["tar", "xf", str(tarball), "-C", str(nat / "bin")], check=True)
    native = sh(EXEC_SCRIPT, base=nat)
    assert "exe: <BASE>/bin/probe_static\nstatus 7\ntrue: 0\nscript: 3 args\n" \
        in native.stdout.decode()
    assert "Permission denied" in native.stderr.decode()
    view = sh(EXEC_SCRIPT, "--mount", f"type=archive,source={tarball},target={TOP}/bin", base=TOP)
    same(native, view)


SHELL_SCRIPT = """\
cd "$BASE/t" || exit 9
printf '#!/bin/sh\\necho "script: $0 $*"\\n' > s.sh && chmod +x s.sh
"$BASE/t/s.sh" abs; ./s.sh rel; sh s.sh bysh
cp -L /bin/sh "$BASE/t/mysh"
printf '#!%s\\necho "interp: $0 $*"\\n' "$BASE/t/mysh" > i.sh && chmod 755 i.sh
./i.sh one; "$BASE/t/i.sh" two
printf '#!%s -e\\nfalse\\necho "not reached"\\n' "$BASE/t/mysh" > e.sh && chmod 755 e.sh
./e.sh; echo "with -e: $?"
printf '#!/usr/bin/env sh\\necho "via env: $0"\\n' > env.sh && chmod 755 env.sh && ./env.sh
PATH="$BASE/t:$PATH" s.sh from-path
"""


def test_shell_scripts_in_tmpfs(tmp_path):
    """A #!/bin/sh script written into a tmpfs and run by path (absolute,
    relative, through PATH); a script whose #! interpreter itself is a copy
    of sh in the tmpfs (with and without an interpreter argument)."""
    nat = tmp_path / "native"
    (nat / "t").mkdir(parents=True)
    native = sh(SHELL_SCRIPT, base=nat)
    out = native.stdout.decode()
    assert "interp: ./i.sh one\ninterp: <BASE>/t/i.sh two\nwith -e: 1\n" in out, native.stderr
    assert "not reached" not in out
    view = sh(SHELL_SCRIPT, "--tmpfs", f"{TOP}/t", base=TOP)
    same(native, view)


# ----------------------------------------------------------------------
# find, du, ls -lR over each mount type

TOOLS = """\
cd "$BASE/t" || exit 9
{prep}
echo "== find"; find . | sort
echo "== find -printf"; find . -mindepth 1 -printf '%y %m %P -> %l\\n' | sort
echo "== md5sum"; find . -type f -exec md5sum {{}} + | sort -k2
echo "== du"; du -a --apparent-size -b . | sort -k2
echo "== ls"; ls -lR --time-style=+ .
"""
LS_ENTRY = re.compile(r"^([-dlcbps][-rwxsStT]{9}\S*) +(\d+) +(\S+) +(\S+) +(\d+) (.*)$")


def normalize(out, dir_size=False, dir_nlink=False):
    """dir_size: the size of a directory depends on the file system type
    (ext4 4096, tmpfs its entries) and so do ls's "total" block counts and
    du's directory lines (they add directory sizes); dir_nlink: a directory
    merged from layers may show another link count (overlayfs shows 1)."""
    lines = out.decode().split("\n")
    dirs = set()
    section = None
    res = []
    for line in lines:
        if line.startswith("== "):
            section = line
        elif section == "== find -printf" and line.startswith("d "):
            dirs.add("./" + line.split(" ", 2)[2].rsplit(" -> ", 1)[0])
        elif section == "== du" and dir_size:
            if line.split("\t", 1)[-1] in dirs | {"."}:
                continue
        elif section == "== ls":
            if dir_size and line.startswith("total "):
                continue
            m = LS_ENTRY.match(line)
            if m:   # (single spaces: ls pads its columns to the widest entry)
                mode, nlink, owner, group, size, rest = m.groups()
                if mode.startswith("d"):
                    nlink = "-" if dir_nlink else nlink
                    size = "-" if dir_size else size
                line = " ".join([mode, nlink, owner, group, size, rest])
        res.append(line)
    return "\n".join(res)


def _tree_tar(tmp_path, suffix):
    tree = tmp_path / "tree"
    if not tree.exists():
        make_tree(tree)
    arc = tmp_path / f"tree.{suffix}"
    if suffix == "zip":
        subprocess.run(f"cd {tree} && zip -q -r -y -X {arc} .", shell=True, check=True)
    else:
        subprocess.run(["tar", "caf", str(arc), "-C", str(tree), "."], check=True)
    return tree, arc


def mt_bind(tmp_path):
    # the very same host directory: nothing to normalize
    tree = make_tree(tmp_path / "tree")
    before = state(tree)

    def check():
        assert state(tree) == before
    return {"native_dir": tree, "opts": ["-b", f"{tree}:{TOP}/t"], "check": check}


def mt_tmpfs(tmp_path):
    tree, tarball = _tree_tar(tmp_path, "tar")
    nat = tmp_path / "native"
    nat.mkdir()
    return {"native_dir": nat, "opts": ["--tmpfs", f"{TOP}/t"],
            "prep": f"tar xf {tarball}", "dir_size": True}


COW_CHANGES = ("echo new > new.txt && rm a/one.txt && chmod 600 README && mv a/b a/bb && "
               "echo more >> big.bin && mkdir d/e && : > d/e/f")


def mt_cow(tmp_path):
    # copied-up directories live in the upper layer (memory): their sizes
    # differ; a merged directory's link count is not that of one layer
    lower = make_tree(tmp_path / "lower")
    before = state(lower)
    nat = tmp_path / "native"
    shutil.copytree(lower, nat, symlinks=True)

    def check():
        assert state(lower) == before
    return {"native_dir": nat, "opts": ["--mount", f"type=cow,source={lower},target={TOP}/t"],
            "prep": COW_CHANGES, "dir_size": True, "dir_nlink": True, "check": check}


def mt_merge(tmp_path):
    # merged directories are shown through listings: their sizes and link
    # counts are not those of a native directory holding the union
    first, second = tmp_path / "first", tmp_path / "second"
    write(first / "common.txt", "from the first\n")
    write(first / "only1.txt", "only in the first\n")
    write(first / "shared" / "a.txt", "first's a\n")
    write(first / "shared" / "same.txt", "first wins\n", 0o600)
    write(second / "common.txt", "from the second, longer\n", 0o755)
    write(second / "only2" / "x.txt", "only in the second\n")
    write(second / "shared" / "b.txt", "second's b\n")
    write(second / "shared" / "same.txt", "second loses\n")
    os.symlink("shared/b.txt", second / "link2")
    for d in (first, second):
        fix_times(d)
    nat = tmp_path / "native"
    nat.mkdir()
    # the union, first wins: copy the second, then the first over it
    subprocess.run(["cp", "-a", f"{second}/.", f"{first}/.", str(nat)], check=True)
    return {"native_dir": nat, "opts": ["--mount", f"type=merge,source={first}:{second},"
                                                   f"target={TOP}/t"],
            "dir_size": True, "dir_nlink": True}


def _mt_archive(suffix):
    def mt(tmp_path):
        # the archive's directories are made on a memory file system (sizes)
        tree, arc = _tree_tar(tmp_path, suffix)
        nat = tmp_path / "native"
        nat.mkdir()
        if suffix == "zip":
            subprocess.run(["unzip", "-q", str(arc), "-d", str(nat)], check=True)
        else:
            subprocess.run(["tar", "xf", str(arc), "-C", str(nat)], check=True)
        return {"native_dir": nat, "opts": ["--mount", f"type=archive,source={arc},target={TOP}/t"],
                "dir_size": True}
    return mt


TREE_MOUNTS = {
    "bind": mt_bind,
    "tmpfs": mt_tmpfs,
    "cow": mt_cow,
    "merge": mt_merge,
    "archive-tar": _mt_archive("tar"),
    "archive-tgz": _mt_archive("tgz"),
    "archive-tbz2": _mt_archive("tbz2"),
    "archive-txz": _mt_archive("txz"),
    "archive-zip": _mt_archive("zip"),
}


@pytest.mark.parametrize("kind", list(TREE_MOUNTS))
def test_tree_tools(kind, tmp_path):
    """find, md5sum, du -a --apparent-size, ls -lR over a tree in each mount
    type: the same as over the same tree natively."""
    m = TREE_MOUNTS[kind](tmp_path)
    script = TOOLS.format(prep=m.get("prep", ":"))
    # the native run works on a directory named t under its base
    nbase = tmp_path / "nbase"
    nbase.mkdir()
    os.symlink(m["native_dir"], nbase / "t")
    native = sh(script, base=nbase)
    assert native.returncode == 0, native.stderr.decode()
    assert b"./a" in native.stdout or b"./shared" in native.stdout
    view = sh(script, *m["opts"], base=TOP)
    assert view.stderr.decode() == native.stderr.decode()
    kw = {"dir_size": m.get("dir_size", False), "dir_nlink": m.get("dir_nlink", False)}
    lines_native = normalize(native.stdout, **kw).splitlines()
    lines_view = normalize(view.stdout, **kw).splitlines()
    if lines_view != lines_native:
        diff = difflib.unified_diff(lines_native, lines_view, "native", "view", lineterm="", n=1)
        pytest.fail("listings differ:\n" + "\n".join(list(diff)[:150]))
    assert view.returncode == 0
    m.get("check", lambda: None)()


SPECIAL_TYPES = """\
cd "$BASE/t" || exit 9
echo "== -type p"; find . -type p | sort
echo "== -type s"; find . -type s | sort
echo "== -type f"; find . -type f | sort
echo "== scandir"; python3 -c 'import os
for e in sorted(os.scandir("."), key=lambda e: e.name):
    print(e.name, e.is_file(follow_symlinks=False), e.is_dir(follow_symlinks=False), e.is_symlink())'
"""


@pytest.mark.parametrize("kind", ["merge", "cow"])
def test_special_files_in_a_listed_directory_keep_their_type(kind, tmp_path):
    """A directory the view shows through a listing (a merge; a cow mount
    with a deletion in it) gives the types of its entries as the kernel
    gives them from a real directory (getdents' d_type, which find -type
    and Python's scandir read without a stat): a FIFO and a socket were
    empty files there."""
    import socket
    first, second, nat = tmp_path / "first", tmp_path / "second", tmp_path / "native"
    for d in (first, second, nat):
        d.mkdir()
    socks = []
    for d in (first, nat):
        os.mkfifo(d / "fifo")
        socks.append(socket.socket(socket.AF_UNIX))
        socks[-1].bind(str(d / "sock"))
        write(d / "file", "x")
        (d / "dir").mkdir()
        os.symlink("file", d / "link")
    write(second / "gone", "deleted in the cow mount; the second layer of the merge")
    if kind == "merge":
        write(nat / "gone", "deleted in the cow mount; the second layer of the merge")
        opts, prep = ["--mount", f"type=merge,source={first}:{second},target={TOP}/t"], ""
    else:
        shutil.copy(second / "gone", first / "gone")
        opts, prep = ["--mount", f"type=cow,source={first},target={TOP}/t"], 'rm "$BASE/t/gone" && '
    nbase = tmp_path / "nbase"
    nbase.mkdir()
    os.symlink(nat, nbase / "t")
    native = sh(SPECIAL_TYPES, base=nbase)
    assert b"./fifo" in native.stdout and b"./sock" in native.stdout
    view = sh(prep + SPECIAL_TYPES, *opts, base=TOP)
    same(native, view)
    for s in socks:
        s.close()


def test_merge_first_wins(tmp_path):
    """A name in both layers of a merge shows the first's file; the others
    show from where they are; the merge is read-only."""
    m = mt_merge(tmp_path)
    r = sh('cd "$BASE/t" && cat common.txt shared/same.txt shared/a.txt shared/b.txt link2 && '
           'stat -c "%a %s %n" common.txt shared/same.txt; echo x > new 2>&1; echo "status $?"; '
           'rm common.txt; echo "rm $?"',
           *m["opts"], base=TOP)
    assert r.stdout.decode() == ("from the first\nfirst wins\nfirst's a\nsecond's b\nsecond's b\n"
                                 "644 15 common.txt\n600 11 shared/same.txt\nstatus 2\nrm 1\n")
    assert r.stderr.decode().count("Read-only file system") == 2


# ----------------------------------------------------------------------
# the spellings of a pyfuse3 class

HELLO_SCRIPT = ('ls "$BASE/h" && cat "$BASE/h/hello" && stat -c "%A %s %Y %n" "$BASE/h/hello" && '
                'stat -c "%F" "$BASE/h"')
HELLO_OUT = ("hello\nhello world\n-r--r--r-- 12 1600000000 <BASE>/h/hello\ndirectory\n")
HELLO_SPELLINGS = {
    # id: (class=..., extra environment)
    "relative-path": ("tests/fuse_examples/hello.py:Hello", {}),
    "absolute-path": (HELLO_CLASS, {}),
    "dotted-name": ("hello:Hello", {"PYTHONPATH": f"{REPO}/tests/fuse_examples"}),
}


@pytest.mark.parametrize("spelling", list(HELLO_SPELLINGS))
def test_pyfuse3_class_spellings(spelling):
    """class=MODULE:CLASS with MODULE a .py path (relative to umview's
    directory, or absolute) or a dotted module name on the path."""
    cls, env = HELLO_SPELLINGS[spelling]
    r = sh(HELLO_SCRIPT, "--mount", f"type=pyfuse3,target={TOP}/h,class={cls}", base=TOP,
           env=env, cwd=REPO)
    assert r.stderr.decode() == ""
    assert r.stdout.decode() == HELLO_OUT
    assert r.returncode == 0


def test_pyfuse3_mounted_from_inside_view():
    """umview-mount -t pyfuse3 -o class=... inside a view, then umview-umount
    (the source, a view path, is not used by this class)."""
    script = (f'umview-mount -t pyfuse3 -o class={HELLO_CLASS} '
              f'/ "$BASE/h" && {HELLO_SCRIPT} && umview-umount "$BASE/h" && '
              f'ls "$BASE/h" 2>/dev/null; echo "after umount: $?"')
    r = sh(script, "-p", "vfs", base=TOP)
    assert r.stderr.decode() == ""
    assert r.stdout.decode() == HELLO_OUT + "after umount: 2\n"
    assert r.returncode == 0


# ----------------------------------------------------------------------
# hide, ro-bind, -r/-w

def test_hide_file():
    """--hide /etc/hostname: cat fails with ENOENT, ls /etc does not list it
    and lists everything else."""
    assert os.path.exists("/etc/hostname")
    native_ls = run_native(["ls", "-a", "/etc"])
    script = ("cat /etc/hostname; echo \"cat: $?\"; ls -a /etc; test -e /etc/hostname || echo gone; "
              "stat /etc/hostname 2>&1 | sed 's/.*: //'; "
              f"{PY} -c 'import os; print(\"hostname\" in os.listdir(\"/etc\"), "
              "os.path.lexists(\"/etc/hostname\"))'")
    r = sh(script, "--hide", "/etc/hostname", base=TOP)
    expected_ls = b"".join(line + b"\n" for line in native_ls.stdout.splitlines() if line != b"hostname")
    assert r.stderr.decode() == "cat: /etc/hostname: No such file or directory\n"
    assert r.stdout.decode() == ("cat: 1\n" + expected_ls.decode() + "gone\n"
                                 "No such file or directory\n"
                                 "False False\n")
    assert r.returncode == 0


def test_hide_directory():
    """--hide of a directory: neither it nor anything below it exists."""
    assert os.path.exists("/usr/include/linux/types.h")
    r = sh("ls /usr/include | grep -cx linux; cat /usr/include/linux/types.h; echo \"cat: $?\"; "
           "ls /usr/include/linux; echo \"ls: $?\"; cd /usr/include/linux; echo \"cd: $?\"",
           "--hide", "/usr/include/linux", base=TOP)
    assert r.stdout.decode() == "0\ncat: 1\nls: 2\ncd: 2\n"
    assert "No such file or directory" in r.stderr.decode()


def test_ro_bind(tmp_path):
    """--ro-bind: reads work, every kind of change fails with EROFS, the host
    directory is unchanged."""
    host = make_tree(tmp_path / "host")
    before = state(host)
    r = sh('cd "$BASE/ro" && cat README && for c in "touch new" "rm README" "mkdir x" '
           '"chmod 600 README" "mv README R2" "ln -s a l2" "truncate -s 0 README"; do '
           '$c 2>/dev/null; echo "$c: $?"; done; echo more >> README',
           "--ro-bind", f"{host}:{TOP}/ro", base=TOP)
    assert r.stdout.decode() == ("a small tree\ntouch new: 1\nrm README: 1\nmkdir x: 1\n"
                                 "chmod 600 README: 1\nmv README R2: 1\nln -s a l2: 1\n"
                                 "truncate -s 0 README: 1\n")
    assert "README: Read-only file system" in r.stderr.decode()
    assert r.returncode != 0
    assert state(host) == before


def test_root_and_cwd(tmp_path, cprogs):
    """-r DIR makes DIR the view's /: a static program sees only DIR's
    entries, reads /data.txt, and -w sets its working directory."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    write(root / "data.txt", "data in the new root\n")
    shutil.copy(cprogs["probe_static"], root / "probe")
    r = run_view(["/probe", "root"], "-r", str(root), "-w", "/sub")
    assert r.stdout.decode() == ("probe: argc=2 [root]\ncwd: /sub\nexe: /probe\n"
                                 "data: data in the new root\nroot: . .. data.txt probe sub\n") \
        or r.stdout.decode() == ("probe: argc=2 [root]\ncwd: /sub\nexe: ENOENT\n"
                                 "data: data in the new root\nroot: . .. data.txt probe sub\n")
    assert r.returncode == 7


# ----------------------------------------------------------------------
# PRoot's bugs: the newer path calls after cd into a mount

PROOT_CALLS = [
    "statx", "../f", "statx", "f", "statx", "$BASE/b/f", "statx", "../../b/f", "statx", "../l",
    "statx-follow", "../l", "statx", ".", "statx", "..", "statx", "missing",
    "statx-at-parent", "f", "statx-at-parent", "../b/l", "newfstatat", "../../b/f",
    "faccessat2", "../f", "faccessat2", "$BASE/b/f", "faccessat2", "../../b/d/g",
    "faccessat2", "missing", "faccessat2-nofollow", "../l",
    "fchmodat2", "g", "fchmodat2", "$BASE/b/f", "fchmodat2", "../../b/d/g",
    "fchmodat2-nofollow", "../l", "fchmodat2", "missing",
    "openat2", "../f", "openat2", "$BASE/b/f", "openat2", "../../b/l", "openat2", "g",
    "openat2-nosymlinks", "../l", "openat2-nosymlinks", "$BASE/b/d/g",
    "openat2-create", "made", "openat2-create", "../../b/made2", "openat2-create", "made",
    "openat2-at-parent", "f", "openat2-at-parent", "d/g", "cwd", ".",
]
PROOT_SCRIPT = """\
cd "$BASE/b/d" || exit 9
{pathcalls} {calls}
stat -c '%F %a %s %n' ../f "$BASE/b/f" ../../b/f ../../b/d/g 2>&1
stat -L -c '%F %n' ../l 2>&1
test -r ../f && echo "test -r: yes"; test -r ../../b/d/g && echo "test -r 2: yes"
test -e ../../b/missing || echo "test -e missing: no"
bash -c '[ -r ../../b/f ] && echo "bash [ -r ]: yes"; [[ -w "$BASE/b/f" ]] && echo "bash [[ -w ]]: yes"'
readlink /proc/self/cwd; pwd; pwd -P; /bin/pwd
ls ../.. ..
{py} -c 'import os; print(os.getcwd(), os.access("../../b/f", os.R_OK), os.stat("../../b/d/g").st_size)'
ls -l ../made ../../b/made2 | cut -c1-10
"""


def _proot_layout(b):
    write(b / "f", "file f\n")
    write(b / "d" / "g", "file g\n")
    os.symlink("f", b / "l")


def test_proot_regressions_after_cd_into_bind(tmp_path, cprogs):
    """After cd into a bind mount whose target does not exist on the host:
    statx (coreutils stat), faccessat2 (test -r, bash [ -r ]), fchmodat2,
    openat2, fd-relative forms of them, relative paths that climb out of the
    mount (../../b/f goes through /umvtest, not through the host's parent of
    the source), getcwd and /proc/self/cwd give the view's path."""
    nat = tmp_path / "native"
    _proot_layout(nat / "b")
    host = tmp_path / "hostside"   # the bind source: not named b
    _proot_layout(host)
    script = PROOT_SCRIPT.format(pathcalls=cprogs["pathcalls"], py=PY,
                                 calls=" ".join(f'"{c}"' for c in PROOT_CALLS))
    native = sh(script, base=nat)
    out = native.stdout.decode()
    for line in ("statx ../../b/f: file 0644 size=7 nlink=1", "faccessat2 ../../b/d/g: ok",
                 "fchmodat2 ../../b/d/g: now 0640", "openat2 ../../b/l: 'file f|'",
                 "openat2-nosymlinks ../l: ELOOP", "openat2-create made: EEXIST",
                 "cwd .: getcwd=<BASE>/b/d proc=<BASE>/b/d", "test -r: yes",
                 "bash [ -r ]: yes", "<BASE>/b/d True 7"):
        assert line + "\n" in out, line
    view = sh(script, "-b", f"{host}:{TOP}/b", base=TOP)
    same(native, view)
    assert sorted(os.listdir(host)) == ["d", "f", "l", "made2"]
    assert sorted(os.listdir(host / "d")) == ["g", "made"]


CWD_SCRIPT = ("/bin/pwd; pwd -P; readlink /proc/self/cwd; cd .. && /bin/pwd; cd -; "
              f"{PY} -c 'import os; print(os.getcwd())'; ls")


@pytest.mark.parametrize("how", ["inherited", "w-host-path"])
def test_started_in_a_bind_source_keeps_its_name(tmp_path, how):
    """A directory that is both at its own path and at a bind mount (the
    program starts in the bind's source): getcwd, pwd -P and
    /proc/self/cwd name it as the program was started, /tmp/x and not
    /mnt/x, as the kernel and PRoot do.  Differential: the same script
    natively in the same directory."""
    work = tmp_path / "work"
    write(work / "f", "f\n")
    native = sh(CWD_SCRIPT, base=tmp_path, cwd=work)
    assert f"<BASE>/work\n<BASE>/work\n<BASE>/work\n<BASE>\n".encode() in native.stdout
    opts = ["-b", f"{tmp_path}:{TOP}/b"] + (["-w", str(work)] if how == "w-host-path" else [])
    view = sh(CWD_SCRIPT, *opts, base=tmp_path, cwd=work if how == "inherited" else tmp_path)
    same(native, view)


def test_started_at_a_bind_mount_keeps_the_mount_name(tmp_path):
    """The same directory entered by the mount's name (-w GUEST) is named by
    it: the view's answer is the name the program was started by."""
    work = tmp_path / "work"
    write(work / "f", "f\n")
    view = sh("/bin/pwd; readlink /proc/self/cwd; ls", "-b", f"{tmp_path}:{TOP}/b", "-w", f"{TOP}/b/work",
              base=tmp_path, cwd=tmp_path)
    assert view.returncode == 0, view.stderr.decode()
    assert view.stdout.decode() == f"{TOP}/b/work\n{TOP}/b/work\nf\n"


# ----------------------------------------------------------------------
# bad input

BAD_MOUNTS = {
    # id: (bad options, the same made good, a piece of the one-line message);
    # the good spelling must work: the error is due to the bad part only
    "bind-missing": ("-b /nonexistent-umv/src:/umvtest/x", "-b /usr/include:/umvtest/x",
                     "/nonexistent-umv/src"),
    "ro-bind-missing": ("--ro-bind /nonexistent-umv/src:/umvtest/x",
                        "--ro-bind /usr/include:/umvtest/x", "/nonexistent-umv/src"),
    "cow-missing": ("--mount type=cow,source=/nonexistent-umv/src,target=/umvtest/x",
                    "--mount type=cow,source=/usr/include,target=/umvtest/x", "/nonexistent-umv/src"),
    "merge-one-missing": ("--mount type=merge,source=/usr/include:/nonexistent-umv/src,target=/umvtest/x",
                          "--mount type=merge,source=/usr/include:/usr/share,target=/umvtest/x",
                          "/nonexistent-umv/src"),
    "archive-missing": ("--mount type=archive,source=/nonexistent-umv/a.tgz,target=/umvtest/x",
                        "--mount type=archive,source={tgz},target=/umvtest/x", "/nonexistent-umv/a.tgz"),
    "pyfuse3-missing-class-file": ("--mount type=pyfuse3,target=/umvtest/x,class=/nonexistent-umv/fs.py:Fs",
                                   f"--mount type=pyfuse3,target=/umvtest/x,class={HELLO_CLASS}",
                                   "/nonexistent-umv/fs.py"),
    "pyfuse3-missing-class": (f"--mount type=pyfuse3,target=/umvtest/x,class={HELLO_CLASS}x",
                              f"--mount type=pyfuse3,target=/umvtest/x,class={HELLO_CLASS}", "Hellox"),
    "pyfuse3-no-class": ("--mount type=pyfuse3,target=/umvtest/x",
                         f"--mount type=pyfuse3,target=/umvtest/x,class={HELLO_CLASS}", "class"),
    "unknown-type": ("--mount type=nosuchfs,source=/usr,target=/umvtest/x",
                     "--mount type=bind,source=/usr,target=/umvtest/x", "nosuchfs"),
    "bad-size": ("--mount type=tmpfs,target=/umvtest/x,size=abc",
                 "--mount type=tmpfs,target=/umvtest/x,size=1m", "size"),
    "unknown-option": ("--mount type=bind,source=/usr,target=/umvtest/x,frobnicate=1",
                       "--mount type=bind,source=/usr,target=/umvtest/x", "frobnicate"),
    "relative-target": ("--mount type=tmpfs,target=umvtest/x", "--mount type=tmpfs,target=/umvtest/x",
                        "umvtest/x"),
    "no-target": ("--mount type=tmpfs", "--mount type=tmpfs,target=/umvtest/x", "target"),
}


def _ran(options):
    no_top()
    r = run_view(["sh", "-c", "echo ran"], *options)
    no_top()
    return r


def assert_refused(r, piece):
    err = r.stderr.decode()
    assert r.returncode == 2, (r.returncode, err)
    assert r.stdout == b""
    assert err.count("\n") == 1 and err.startswith("umview"), err
    assert piece in err, err


@pytest.mark.parametrize("case", list(BAD_MOUNTS))
def test_bad_mount_options(case, tmp_path):
    """A mount that cannot be made: exit status 2, a one-line error from
    umview naming the problem, and the command never runs; the same mount
    without the problem works."""
    bad, good, piece = BAD_MOUNTS[case]
    tgz = tmp_path / "good.tgz"
    subprocess.run(["tar", "czf", str(tgz), "-C", "/usr/include/linux", "types.h"], check=True)
    assert_refused(_ran(bad.split(" ", 1)), piece)
    r = _ran(good.format(tgz=tgz).split(" ", 1))
    assert (r.returncode, r.stdout, r.stderr) == (0, b"ran\n", b"")


def _corrupt(tmp_path, name):
    path = tmp_path / name
    data = bytes((i * 37 + 11) % 256 for i in range(4096))
    if name.endswith(".tgz"):
        data = b"\x1f\x8b\x08\x00" + data        # a gzip header, then garbage
    elif name.endswith(".zip"):
        data = b"PK\x03\x04" + data              # a zip local header, then garbage
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["bad.tar", "bad.tgz", "bad.zip", "truncated.tgz"])
def test_corrupt_archive(tmp_path, name):
    """A corrupt archive: a clear one-line error, exit status 2, nothing
    mounted, the command does not run; a good archive of the same format
    mounts."""
    tree = make_tree(tmp_path / "tree")
    good = tmp_path / ("good." + name.split(".")[1])
    if name.endswith(".zip"):
        subprocess.run(f"cd {tree} && zip -q -r -y {good} .", shell=True, check=True)
    else:
        subprocess.run(["tar", "caf", str(good), "-C", str(tree), "."], check=True)
    if name == "truncated.tgz":
        arc = tmp_path / name
        arc.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
    else:
        arc = _corrupt(tmp_path, name)
    assert_refused(_ran(["--mount", f"type=archive,source={arc},target={TOP}/a"]), name)
    r = _ran(["--mount", f"type=archive,source={good},target={TOP}/a"])
    assert (r.returncode, r.stdout, r.stderr) == (0, b"ran\n", b"")


def test_umview_mount_failures_inside_view(tmp_path):
    """Inside a view: umview-mount of a missing source or a corrupt archive
    fails with status 1 and a message, and nothing is mounted; umview-umount
    of something not mounted fails with status 1; the view goes on."""
    bad = _corrupt(tmp_path, "bad.tgz")
    script = (f"umview-mount -t bind /nonexistent-umv/src {TOP}/m; echo \"mount missing: $?\"; "
              f"ls {TOP}/m 2>/dev/null; echo \"ls: $?\"; "
              f"umview-mount -t archive {bad} {TOP}/a; echo \"mount corrupt: $?\"; "
              f"ls {TOP}/a 2>/dev/null; echo \"ls: $?\"; "
              f"umview-mount -t nosuchfs /usr {TOP}/n; echo \"mount unknown type: $?\"; "
              f"umview-umount {TOP}/none; echo \"umount not mounted: $?\"; "
              f"umview-umount /usr; echo \"umount not a mount: $?\"; "
              f"echo hi > {TOP}/t/f && cat {TOP}/t/f")
    r = sh(script, "--tmpfs", f"{TOP}/t", base=TOP)
    assert r.stdout.decode() == ("mount missing: 1\nls: 2\nmount corrupt: 1\nls: 2\n"
                                 "mount unknown type: 1\numount not mounted: 1\n"
                                 "umount not a mount: 1\nhi\n")
    err = r.stderr.decode().splitlines()
    assert len(err) == 5, err
    assert err[0].startswith("umview-mount: ") and "/nonexistent-umv/src" in err[0]
    assert err[1].startswith("umview-mount: ") and "bad.tgz" in err[1]
    assert err[2].startswith("umview-mount: ") and "nosuchfs" in err[2]
    assert err[3].startswith("umview-umount: ") and err[4].startswith("umview-umount: ")
    assert r.returncode == 0


def test_umount_busy(tmp_path):
    """umview-umount of a mount a process has its cwd in fails with EBUSY;
    once the cwd left, it works, and the mount is gone."""
    script = (f'cd {TOP}/t && echo data > f && umview-umount {TOP}/t; echo "busy: $?"; '
              f'cat f; cd / && umview-umount {TOP}/t; echo "free: $?"; '
              f'ls {TOP}/t 2>/dev/null; echo "ls: $?"')
    r = sh(script, "--tmpfs", f"{TOP}/t", base=TOP)
    assert r.stdout.decode() == "busy: 1\ndata\nfree: 0\nls: 2\n"
    err = r.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("umview-umount: "), err
    assert "Device or resource busy" in err
    assert r.returncode == 0


FAULTY_FS = '''\
"""A pyfuse3 file system with bugs: read of "bad" and lookup of "boom"
raise exceptions that are not FUSEError."""
import errno
import os
import stat

import pyfuse3

FILES = {b"good": (2, b"good content\\n"), b"bad": (3, b"never shown\\n")}
BY_INODE = {ino: (name, data) for name, (ino, data) in FILES.items()}


class Faulty(pyfuse3.Operations):
    async def getattr(self, inode, ctx=None):
        entry = pyfuse3.EntryAttributes()
        if inode == pyfuse3.ROOT_INODE:
            entry.st_mode = stat.S_IFDIR | 0o755
            entry.st_size = 0
            entry.st_nlink = 2
        elif inode in BY_INODE:
            entry.st_mode = stat.S_IFREG | 0o644
            entry.st_size = len(BY_INODE[inode][1])
            entry.st_nlink = 1
        else:
            raise pyfuse3.FUSEError(errno.ENOENT)
        entry.st_atime_ns = entry.st_mtime_ns = entry.st_ctime_ns = 946782245 * 10**9
        entry.st_uid, entry.st_gid = os.getuid(), os.getgid()
        entry.st_ino = inode
        return entry

    async def lookup(self, parent_inode, name, ctx=None):
        if name == b"boom":
            raise ValueError("a bug in lookup")
        if parent_inode != pyfuse3.ROOT_INODE or name not in FILES:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return await self.getattr(FILES[name][0])

    async def opendir(self, inode, ctx):
        if inode != pyfuse3.ROOT_INODE:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        return inode

    async def readdir(self, fh, start_id, token):
        entries = sorted(FILES.items(), key=lambda kv: kv[1][0])
        for i, (name, (ino, _)) in enumerate(entries):
            if i < start_id:
                continue
            if not pyfuse3.readdir_reply(token, name, await self.getattr(ino), i + 1):
                break

    async def open(self, inode, flags, ctx):
        if inode not in BY_INODE:
            raise pyfuse3.FUSEError(errno.ENOENT)
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise pyfuse3.FUSEError(errno.EACCES)
        return pyfuse3.FileInfo(fh=inode)

    async def read(self, fh, off, size):
        name, data = BY_INODE[fh]
        if name == b"bad":
            raise RuntimeError("a bug in read")
        return data[off:off + size]
'''


def test_pyfuse3_exception_gives_eio(tmp_path):
    """A pyfuse3 file system whose methods raise non-FUSEError exceptions:
    the calls concerned fail with EIO, the others work, the view stays up."""
    fs = tmp_path / "faulty.py"
    fs.write_text(FAULTY_FS)
    script = (f"ls {TOP}/f; cat {TOP}/f/good; cat {TOP}/f/bad; echo \"bad: $?\"; "
              f"cat {TOP}/f/boom; echo \"boom: $?\"; cat {TOP}/f/good; echo alive")
    r = sh(script, "--mount", f"type=pyfuse3,target={TOP}/f,class={fs}:Faulty", base=TOP)
    assert r.stdout.decode() == "bad\ngood\ngood content\nbad: 1\nboom: 1\ngood content\nalive\n"
    # (umview's own stderr may carry the file system's tracebacks too)
    cat_errors = [line for line in r.stderr.decode().splitlines() if line.startswith("cat: ")]
    assert cat_errors == ["cat: <BASE>/f/bad: Input/output error",
                          "cat: <BASE>/f/boom: Input/output error"], r.stderr.decode()
    assert r.returncode == 0
