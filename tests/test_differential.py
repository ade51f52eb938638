"""Differential tests: a real command run natively and in a view must give
the same stdout, the same stderr, the same exit status and leave the same
files behind.

Each command runs in three kinds of view:
  empty  - no module: only the virtual syscall is trapped (seccomp fast path);
  trap   - `-S`: every system call goes through the C core and back;
  misc   - `-p misc,domainname=x`: a module is loaded that claims uname,
           sethostname and setdomainname; none of these commands print the
           domain name, so their output must not change.

The native run of a command is done once per command and cached; every run
(native and views) happens in the same directory, prepared afresh each time,
so absolute paths in outputs are the same too.
"""
import hashlib
import os
import random
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import assert_same, run_native, run_view

MODES = {
    "empty": [],
    "trap": ["-S"],
    "misc": ["-p", "misc,domainname=x"],
}

FIXED_DATE = "2000-01-02 03:04:05 UTC"   # before 1e9 seconds: see snapshot()
BASE_ENV = {"LC_ALL": "C", "TZ": "UTC", "LANG": "C"}


# ----------------------------------------------------------------------
# helpers

def write(path: Path, text: str, mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def fix_mtimes(root: Path):
    subprocess.run(["find", str(root), "-exec", "touch", "-h", "-d", FIXED_DATE, "{}", "+"],
                   check=True)


def make_tree(root: Path):
    """A small tree with files, subdirectories, a symlink, an empty file, an
    executable, odd names; all mtimes fixed."""
    root.mkdir(parents=True)
    write(root / "README", "a small tree\n")
    write(root / "empty", "")
    write(root / "run.sh", "#!/bin/sh\necho run\n", 0o755)
    write(root / "with space.txt", "spaces in the name\n")
    write(root / "a" / "one.txt", "one\n" * 100)
    write(root / "a" / "b" / "two.txt", "two\n" * 1000, 0o600)
    write(root / "a" / "b" / "c" / "deep.txt", "deep\n")
    write(root / "big.bin", "".join(chr(32 + (i * 7) % 90) for i in range(100_000)))
    (root / "d").mkdir()
    (root / "d").chmod(0o750)
    os.symlink("a/one.txt", root / "link")
    fix_mtimes(root)


def snapshot(root: Path, exclude=()):
    """A checksum listing of everything under root: path, type, mode, owner,
    size and sha256 (files) or target (symlinks).  Modification times are
    listed exactly when they are old (set on purpose: touch -d, tar --mtime,
    cp -a of such files) and as "new" otherwise (made by the run itself)."""
    rows = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if rel in exclude:
                continue
            st = p.lstat()
            mtime = st.st_mtime_ns if st.st_mtime < 1e9 else "new"
            row = [rel, stat.filemode(st.st_mode), st.st_uid, st.st_gid, mtime]
            if stat.S_ISREG(st.st_mode):
                row += [st.st_size, hashlib.sha256(p.read_bytes()).hexdigest()]
            elif stat.S_ISLNK(st.st_mode):
                row.append(os.readlink(p))
            rows.append(tuple(row))
    return rows


def shell_status(proc):
    """subprocess gives -N for a death by signal N; umview (like a shell)
    exits with 128+N.  Compare them in the shell's terms."""
    if proc.returncode < 0:
        proc.returncode = 128 - proc.returncode
    return proc


# ----------------------------------------------------------------------
# the commands: each prepares `work` and returns (argv, extra run kwargs)

def c_ls(work, progs):
    make_tree(work / "tree")
    return ["ls", "-l", "tree", "tree/a", "tree/a/b"], {}


def c_find(work, progs):
    make_tree(work / "tree")
    return ["sh", "-c", "find tree | sort; find tree -type f -name '*.txt' | sort"], {}


def c_sort(work, progs):
    rnd = random.Random(1234)
    words = ["alpha", "beta", "gamma", "delta", "Epsilon", "zeta", "eta", "10", "9", "-1"]
    lines = "".join(f"{rnd.choice(words)} {rnd.randrange(100000)}\n" for _ in range(20000))
    return ["sort"], {"input": lines.encode()}


def c_cp(work, progs):
    make_tree(work / "tree")
    return ["sh", "-c", "cp -a tree copy && ls -lR copy"], {}


def c_du(work, progs):
    make_tree(work / "tree")
    return ["sh", "-c", "du -s --apparent-size tree; du -a -b tree | sort -k2"], {}


BASH_SCRIPT = r"""set -u
trap 'echo "trap EXIT: status $?"' EXIT
echo start
# pipes
printf '%s\n' c a b a c c | sort | uniq -c | sort -k1,1nr -k2
# subshells and command substitution
x=outer; (x=inner; echo "in subshell: $x"); echo "after: $x"
y=$(echo cmd-subst | tr a-z A-Z); echo "$y"
# background jobs and wait, in order
pids=""
for i in 1 2 3 4; do (echo "job $i" > job.$i; exit $i) & pids="$pids $!"; done
for p in $pids; do wait $p; echo "status $?"; done
cat job.1 job.2 job.3 job.4
sleep 0.01 & wait
echo "plain wait: $?"
# here-docs
cat <<EOT
here-doc, x=$x
EOT
cat <<'EOT'
quoted $x
EOT
while read -r a b; do echo "read: $b $a"; done <<EOT
1 one
2 two
EOT
# process substitution
diff <(printf '1\n2\n') <(printf '1\n3\n'); echo "diff status $?"
f() { return 5; }; f; echo "f returned $?"
(set -e; false; echo never); echo "set -e subshell: $?"
# a signal caught in a subshell
( trap 'echo got USR1; exit 9' USR1; kill -USR1 $BASHPID; echo notreached ); echo "usr1: $?"
# a pipeline with a failing member
set -o pipefail; false | true; echo "pipefail: $?"; set +o pipefail
echo "to stderr" >&2
exit 3
"""


def c_bash(work, progs):
    write(work / "script.sh", BASH_SCRIPT)
    return ["bash", "script.sh"], {}


PY_PARALLEL = r"""
import multiprocessing as mp
import sys
import threading


def square(x):
    return x * x


def child(q, n):
    q.put(sum(range(n)))
    sys.exit(7)


def main():
    lock = threading.Lock()
    counter = [0]
    results = {}

    def worker(n):
        for _ in range(5000):
            with lock:
                counter[0] += 1
        results[n] = sum(range(n * 1000))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("threads:", counter[0], sorted(results.items()))
    with mp.Pool(4) as pool:
        print("fork pool:", sum(pool.map(square, range(2000))))
    with mp.get_context("spawn").Pool(2) as pool:
        print("spawn pool:", pool.map(square, range(10)))
    q = mp.Queue()
    p = mp.Process(target=child, args=(q, 1000))
    p.start()
    print("queue:", q.get())
    p.join()
    print("process exitcode:", p.exitcode)
    print("done", file=sys.stderr)


if __name__ == "__main__":
    main()
"""


def c_python(work, progs):
    write(work / "par.py", PY_PARALLEL)
    return ["python3", "par.py"], {}


PY_SPAWN = r"""
import os, subprocess, sys
# subprocess uses vfork (CLONE_VM|CLONE_VFORK) where it can
r = subprocess.run(["sh", "-c", "echo sub; echo err >&2; exit 4"], capture_output=True)
print("subprocess:", r.returncode, r.stdout, r.stderr)
pid = os.posix_spawnp("sh", ["sh", "-c", "exit 6"], os.environ)
print("posix_spawn:", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print("system:", os.waitstatus_to_exitcode(os.system("exit 5")))
out = subprocess.check_output("seq 3 | tac", shell=True)
print("pipe:", out)
r = subprocess.run(["sh", "-c", "kill -INT $$"])
print("signalled:", r.returncode)
sys.stdout.flush()
os.execvp("echo", ["echo", "exec'd"])
"""


def c_pyspawn(work, progs):
    write(work / "spawn.py", PY_SPAWN)
    return ["python3", "spawn.py"], {}


def c_pthreads(work, progs):
    return [progs["pthreads"]], {}


def c_static(work, progs):
    return [progs["hello_static"]], {}


MAKEFILE = """\
CC = gcc
CFLAGS = -O1 -Wall
OBJS = main.o $(patsubst %.c,%.o,$(wildcard f*.c))

prog: $(OBJS)
\t$(CC) -o $@ $(OBJS)

%.o: %.c funcs.h
\t$(CC) $(CFLAGS) -c -o $@ $<

clean:
\trm -f prog *.o
"""


def c_make(work, progs):
    proj = work / "proj"
    n = 6
    decls = "".join(f"int f{i}(int x);\n" for i in range(n))
    write(proj / "funcs.h", decls)
    for i in range(n):
        write(proj / f"f{i}.c",
              f'#include "funcs.h"\nint f{i}(int x) {{ int s = 0; for (int k = 0; k <= x; k++) '
              f's += k * {i + 1}; return s; }}\n')
    calls = "".join(f'    printf("f{i}(%d) = %d\\n", 10 + {i}, f{i}(10 + {i}));\n' for i in range(n))
    write(proj / "main.c", f'#include <stdio.h>\n#include "funcs.h"\nint main(void) {{\n{calls}'
          "    return 0;\n}\n")
    write(proj / "Makefile", MAKEFILE)
    fix_mtimes(proj)
    script = ('cd proj && make -s -j4; echo "make: $?"; ./prog; echo "prog: $?"; '
              'make -q; echo "make -q: $?"; make; echo "make again: $?"')
    return ["sh", "-c", script], {}


def c_tar(work, progs):
    make_tree(work / "tree")
    script = ("tar cf a.tar --owner=0 --group=0 --numeric-owner --mtime=@0 --sort=name tree && "
              "tar tvf a.tar && mkdir out && tar xf a.tar -C out && diff -r tree out/tree && "
              "echo identical")
    return ["sh", "-c", script], {}


GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ann Author", "GIT_AUTHOR_EMAIL": "ann@example.com",
    "GIT_COMMITTER_NAME": "Carl Committer", "GIT_COMMITTER_EMAIL": "carl@example.com",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
}


def c_git(work, progs):
    script = ("git init -q -b main repo && cd repo && printf 'a\\n' > f && mkdir d && "
              "printf 'x\\n' > d/g && git add . && git commit -q -m first && "
              "printf 'b\\n' >> f && git commit -q -am second && git rm -q d/g && "
              "git commit -q -m third && git log --format='%H %an %cn %s' && "
              "git status --short && git fsck --no-progress --strict && echo fsck-ok")
    return ["sh", "-c", script], {"env": {**GIT_ENV, "HOME": str(work)}}


def c_sigterm(work, progs):
    return ["sh", "-c", "echo before; kill -TERM $$; echo after"], {}


def c_abort(work, progs):
    return ["python3", "-c", "import os, sys; print('aborting', flush=True); os.abort()"], {}


def c_exit42(work, progs):
    return ["sh", "-c", "echo out; echo err >&2; exit 42"], {}


def c_loop(work, progs):
    return ["bash", "-c", "for i in $(seq 1000); do /bin/true; done; echo done"], {}


def c_deep(work, progs):
    return [progs["deep_tree"], "200"], {}


# (id, prepare, expected exit status (None: not checked), snapshot exclusions, slow)
CASES = [
    ("ls", c_ls, 0, (), False),
    ("find", c_find, 0, (), False),
    ("sort", c_sort, 0, (), False),
    ("cp-a", c_cp, 0, (), False),
    ("du", c_du, 0, (), False),
    ("bash", c_bash, 3, (), False),
    ("python-par", c_python, 0, (), True),
    ("python-spawn", c_pyspawn, 0, (), False),
    ("pthreads", c_pthreads, 0, (), False),
    ("static", c_static, 0, (), False),
    ("make", c_make, 0, (), True),
    ("tar", c_tar, 0, (), False),
    # the index records inode numbers and change times of the work tree
    ("git", c_git, 0, ("repo/.git/index",), True),
    ("sigterm", c_sigterm, 143, (), False),
    ("abort", c_abort, 134, (), False),
    ("exit42", c_exit42, 42, (), False),
    ("loop1000", c_loop, 0, (), True),
    ("deep-tree", c_deep, 200, (), True),
]
CASE_BY_ID = {c[0]: c for c in CASES}


def _params():
    for cid, _, _, _, slow in CASES:
        for mode in MODES:
            marks = [pytest.mark.slow] if slow else []
            yield pytest.param(cid, mode, id=f"{cid}-{mode}", marks=marks)


@pytest.fixture(scope="module")
def native_cache(tmp_path_factory):
    return {"base": tmp_path_factory.mktemp("differential"), "results": {}}


def _prepare(native_cache, cid, progs):
    _, prep, _, _, _ = CASE_BY_ID[cid]
    work = native_cache["base"] / cid / "w"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    cmd, kw = prep(work, progs)
    kw = dict(kw)
    kw["env"] = {**BASE_ENV, **kw.get("env", {})}
    return work, cmd, kw


@pytest.mark.parametrize("cid,mode", list(_params()))
def test_same_as_native(cid, mode, native_cache, progs):
    _, _, expected, exclude, _ = CASE_BY_ID[cid]
    results = native_cache["results"]
    if cid not in results:
        work, cmd, kw = _prepare(native_cache, cid, progs)
        native = shell_status(run_native(cmd, cwd=work, **kw))
        results[cid] = (native, snapshot(work, exclude))
    native, native_files = results[cid]
    # the command itself must work natively, or the comparison proves little
    if expected is not None:
        assert native.returncode == expected, native.stderr[-2000:]

    work, cmd, kw = _prepare(native_cache, cid, progs)
    view = run_view(cmd, *MODES[mode], cwd=work, **kw)
    assert_same(native, view)
    assert snapshot(work, exclude) == native_files
