"""-r DIR: a new root, with its own ELF loader and libraries."""
import os
import shutil
import subprocess

import pytest

from conftest import run_view


def _copy_program(root, prog):
    """Put prog and the shared objects it needs (as ldd lists them) into root."""
    shutil.copy2(prog, root / "bin" / os.path.basename(prog))
    out = subprocess.run(["ldd", prog], capture_output=True, text=True, check=True).stdout
    for word in out.split():
        if word.startswith("/"):
            dst = root / word.lstrip("/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(os.path.realpath(word), dst)


@pytest.fixture
def rootfs(tmp_path):
    root = tmp_path / "root"
    for d in ("bin", "proc", "dev", "tmp", "etc"):
        (root / d).mkdir(parents=True)
    for prog in ("dash", "cat", "readlink", "ls"):
        _copy_program(root, shutil.which(prog))
    (root / "bin" / "sh").symlink_to("dash")
    (root / "etc" / "motd").write_text("the new root\n")
    return root


def test_programs_run_with_the_roots_loader_and_libc(rootfs):
    r = run_view(["/bin/cat", "/proc/self/maps"], "-r", str(rootfs), "-b", "/proc", "-b", "/dev")
    assert r.returncode == 0, r.stderr
    # maps shows view paths; the inode says which file is really mapped
    mapped = {(f[-1], int(f[4])) for f in (line.split() for line in r.stdout.decode().splitlines())
              if len(f) == 6 and f[-1].startswith("/")}
    loaders = {m for m in mapped if "ld-linux" in m[0]}
    libcs = {m for m in mapped if "libc.so" in m[0]}
    # the kernel would have loaded the host's loader: the view made it the root's
    assert loaders and libcs, mapped
    for path, ino in loaders | libcs:
        assert not path.startswith(str(rootfs)), path  # no host path shows
        assert ino == os.stat(rootfs / path.lstrip("/")).st_ino, (path, ino)
        assert ino != os.stat(path).st_ino, path


def test_new_root_view_paths(rootfs):
    script = ("cat /etc/motd; ls /; readlink /proc/self/exe; cd /etc && readlink /proc/self/cwd; "
              "printf '#!/bin/sh\\necho script $0 $1\\n' > /tmp/s.sh; /bin/sh -c 'exec 3>/dev/null'; "
              "exec /bin/sh /tmp/s.sh one")
    r = run_view(["/bin/sh", "-c", script], "-r", str(rootfs), "-b", "/proc", "-b", "/dev")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\n") == [
        "the new root", "bin", "dev", "etc", "lib", "lib64", "proc", "tmp", "/bin/readlink", "/etc",
        "script /tmp/s.sh one", ""]
    assert (rootfs / "tmp" / "s.sh").exists()
