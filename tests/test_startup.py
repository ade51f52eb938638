"""Start-up: `umview CMD` serves its view without trio until something needs
it, and modules are found through the `umview.modules` entry points that
installed distributions declare (read by umview_py.registry itself).

Each test runs real views in a fresh interpreter, so that what it imports is
its own."""
import os
import subprocess
import sys
import textwrap

import pytest

PY = sys.executable
GUARD = 120  # seconds: a failure guard only


def py(code: str, env=None, cwd=None):
    return subprocess.run([PY, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=GUARD, env=env, cwd=cwd)


def test_empty_view_never_imports_trio():
    p = py("""
        import sys
        from umview_py.cli import main
        rc = main(["--", "sh", "-c", "echo in-view; exit 7"])
        print(rc, "trio" in sys.modules)
    """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["in-view", "7", "False"]


def test_plain_module_runs_without_trio():
    p = py("""
        import sys
        from umview_py.cli import main
        rc = main(["-p", "misc,release=8.8.8", "--", "uname", "-r"])
        print(rc, "trio" in sys.modules)
    """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["8.8.8", "0", "False"]


def test_virtual_syscall_starts_trio_mid_run():
    # The shell runs under the light loop; umview-insmod's virtual syscall
    # waits while trio starts, then is answered, and the view goes on.
    p = py("""
        import sys
        from umview_py.cli import main
        rc = main(["--", "sh", "-c",
                   "uname -r > /dev/null; umview-insmod misc release=4.2.0 && uname -r && "
                   "umview-lsmod | tail -n +2 | cut -d' ' -f1; exit 3"])
        print(rc, "trio" in sys.modules)
    """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["4.2.0", "misc", "3", "True"]


def test_module_with_tasks_gets_trio_from_the_start():
    p = py("""
        import sys
        from umview_py.cli import main
        rc = main(["--net", "loopback", "--", "true"])
        print(rc, "trio" in sys.modules)
    """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "True"]


# ---------------------------------------------------------------- entry points

THIRD = '''
from umview_py import Module, Option

class Third(Module):
    name = "third"
    description = "{desc}"
    options = {{"release": Option(str, "3.3.3", "what uname -r says")}}

    def uname(self, call):
        import struct
        fields = [b"Linux", b"box", self.config["release"].encode(), b"#1", b"x86_64", b"(none)"]
        call.write(call.args[0], b"".join(f.ljust(65, b"\\0") for f in fields))
        return 0
'''


def make_dist(root, dist, pkg, desc, entry="third", group="umview.modules", broken=False):
    """A distribution as pip installs one: pkg.py and DIST-1.0.dist-info."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, f"{pkg}.py"), "w") as f:
        f.write("raise ImportError('deliberately broken')\n" if broken else THIRD.format(desc=desc))
    info = os.path.join(root, f"{dist}-1.0.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    with open(os.path.join(info, "entry_points.txt"), "w") as f:
        f.write(f"[console_scripts]\n{entry} = nowhere:main\n\n"
                f"[{group}]\n# a comment\n{entry} = {pkg}:Third\n")


def env_with(*paths):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def test_third_party_module_from_its_entry_point(tmp_path):
    make_dist(str(tmp_path / "site"), "umv_third", "umvthird", "a third-party module")
    env = env_with(str(tmp_path / "site"))
    out = subprocess.run(["umview", "--list-modules"], capture_output=True, text=True, env=env,
                         timeout=GUARD)
    assert out.returncode == 0, out.stderr
    assert any(line.split()[:1] == ["third"] and "a third-party module" in line
               for line in out.stdout.splitlines())
    run = subprocess.run(["umview", "-p", "third,release=6.6.6", "--", "uname", "-r"],
                         capture_output=True, text=True, env=env, timeout=GUARD)
    assert (run.returncode, run.stdout) == (0, "6.6.6\n"), run.stderr


def test_first_distribution_on_the_path_wins(tmp_path):
    # The same distribution twice (as with a --user and a system install):
    # the first on sys.path is the one used, as importlib.metadata does.
    make_dist(str(tmp_path / "a"), "umv_third", "umvthird_a", "first copy")
    make_dist(str(tmp_path / "b"), "umv-third", "umvthird_b", "second copy")
    env = env_with(str(tmp_path / "a"), str(tmp_path / "b"))
    out = subprocess.run(["umview", "--list-modules"], capture_output=True, text=True, env=env,
                         timeout=GUARD)
    assert "first copy" in out.stdout and "second copy" not in out.stdout, out.stdout


def test_entry_point_of_another_group_is_not_a_module(tmp_path):
    make_dist(str(tmp_path / "site"), "umv_other", "umvother", "not ours", entry="other",
              group="someone.else")
    env = env_with(str(tmp_path / "site"))
    run = subprocess.run(["umview", "-p", "other", "--", "true"], capture_output=True, text=True,
                         env=env, timeout=GUARD)
    assert run.returncode == 2
    assert "unknown module 'other'" in run.stderr


def test_broken_third_party_module_is_a_clear_error(tmp_path):
    make_dist(str(tmp_path / "site"), "umv_broken", "umvbroken", "", broken=True)
    env = env_with(str(tmp_path / "site"))
    run = subprocess.run(["umview", "-p", "third", "--", "true"], capture_output=True, text=True,
                         env=env, timeout=GUARD)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "umview: module 'third' cannot be imported: deliberately broken"]
    listing = subprocess.run(["umview", "--list-modules"], capture_output=True, text=True, env=env,
                             timeout=GUARD)
    assert listing.returncode == 0
    assert "third        (broken: module 'third' cannot be imported: deliberately broken)" \
        in listing.stdout


@pytest.mark.parametrize("argv,status", [(["--", "true"], 0), (["--", "sh", "-c", "kill -9 $$"], 137)])
def test_console_script_exit_status_and_flushed_output(tmp_path, argv, status):
    # console_main leaves with os._exit: what was written must still arrive.
    log = tmp_path / "log"
    run = subprocess.run(["umview", "-vv", "--log", str(log), "--stats", *argv],
                         capture_output=True, text=True, timeout=GUARD)
    assert run.returncode == status
    assert "core statistics" in log.read_text()
    assert run.stderr.strip(), "the --stats table was lost"


def test_async_handler_starts_trio_at_its_first_call(tmp_path):
    # fakeroot's mknod handler is async: a view that never calls mknod runs
    # without trio; the first mknod waits while trio starts, and is served.
    p = py("""
        import sys
        from umview_py.cli import main
        rc = main(["-0", "--", "sh", "-c", "touch f && chown 7:8 f && stat -c '%u:%g' f"])
        print(rc, "trio" in sys.modules)
        rc = main(["-0", "--", "sh", "-c", "mknod d c 1 3 && stat -c '%F %t,%T %u' d"])
        print(rc, "trio" in sys.modules)
    """, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["7:8", "0 False", "character special file 1,3 0", "0 True"]
