"""Short spellings borrowed from PRoot: -0 and -i UID:GID load fakeroot."""
from conftest import run_view


def test_dash_i_sets_the_ids(tmp_path):
    r = run_view(["sh", "-c", "id -u; id -g; touch f; stat -c '%u %g' f"], "-i", "12:34", cwd=tmp_path)
    assert r.stdout.split() == [b"12", b"34", b"12", b"34"], r.stderr


def test_dash_zero_is_fakeroot(tmp_path):
    r = run_view(["sh", "-c", "umview-lsmod | tail -n +2 | cut -d' ' -f1; id -u"], "-0")
    assert r.stdout.split() == [b"fakeroot", b"0"], r.stderr


def test_dash_i_rejects_garbage():
    r = run_view(["true"], "-i", "x")
    assert r.returncode == 2 and r.stderr.count(b"\n") == 1


def test_dash_zero_in_the_command_is_left_alone():
    r = run_view(["echo", "-0"])
    assert r.stdout == b"-0\n"
    r = run_view(["echo", "-0"], "-p", "misc")
    assert r.stdout == b"-0\n"
