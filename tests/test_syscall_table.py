"""The syscall table: it loads, it agrees with the headers and the running
kernel, its path calls are described, and its doc page is up to date."""
import ctypes
import errno
import os
import re
from pathlib import Path

import pytest

from umview_py.syscalls import gendoc
from umview_py.syscalls.table import (BY_NAME, BY_NR, MAX_NR, SYSCALLS, FAMILIES, SUPPORT_LEVELS,
                                      load, lookup, parse)

ROOT = Path(__file__).resolve().parent.parent
UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
VIRTUAL_NRS = range(0x7500, 0x7600)  # reserved for the view's own virtual syscalls
HEADER = "nr\tname\tfamily\targs\tfollow\tmethod\tsupport\tnotes\n"

# name -> indexes of its path arguments
PATH_CALLS = {
    "statx": (1,), "faccessat2": (1,), "fchmodat2": (1,), "openat2": (1,), "renameat2": (1, 3),
    "execveat": (1,), "name_to_handle_at": (1,), "inotify_add_watch": (1,), "fanotify_mark": (4,),
    "setxattrat": (1,), "getxattrat": (1,), "listxattrat": (1,), "removexattrat": (1,),
    "utimensat": (1,), "umount2": (0,), "chroot": (0,), "chdir": (0,), "mknodat": (1,),
    "linkat": (1, 3), "symlinkat": (2,), "readlinkat": (1,), "unlinkat": (1,), "mkdirat": (1,),
    "fchownat": (1,), "truncate": (0,), "statfs": (0,), "mount": (1,),
}


def test_table_loads():
    assert len(SYSCALLS) == len(BY_NAME) == len(BY_NR) > 370
    assert [s.nr for s in SYSCALLS] == sorted(BY_NR)
    assert MAX_NR == SYSCALLS[-1].nr >= 469
    assert {s.family for s in SYSCALLS} <= set(FAMILIES)
    assert {s.support for s in SYSCALLS} == set(SUPPORT_LEVELS)
    assert lookup("openat") is lookup(257) is BY_NAME["openat"]
    assert BY_NAME["openat"].args == ("dirfd", "path", "flags", "mode")
    assert BY_NAME["newfstatat"].args == ("dirfd", "path", "ptr", "flags")
    assert BY_NAME["connect"].args == ("fd", "sockaddr", "socklen")
    assert BY_NAME["renameat2"].dirfd_args == (0, 2)
    assert BY_NAME["read"].fd_args == (0,)
    with pytest.raises(KeyError, match="no_such_call"):
        lookup("no_such_call")
    with pytest.raises(KeyError, match="999"):
        lookup(999)


@pytest.mark.skipif(not UNISTD.exists(), reason=f"no {UNISTD}")
def test_matches_unistd_header():
    defines = re.findall(r"^#define __NR_(\w+)\s+(\d+)", UNISTD.read_text(), re.M)
    assert len(defines) > 300
    for name, nr in defines:
        assert name in BY_NAME, f"{name} ({nr}) is missing from the table"
        assert BY_NAME[name].nr == int(nr), name


def _raw_errno(nr: int) -> str | int:
    """errno of syscall nr with zero arguments, run in a child process."""
    pid = os.fork()
    if pid == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            ret = libc.syscall(nr, 0, 0, 0, 0, 0, 0)
            os._exit(ctypes.get_errno() if ret == -1 else 255)
        finally:
            os._exit(254)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    code = os.WEXITSTATUS(status)
    return {255: "success", 254: "child error"}.get(code, code)


def test_kernel_has_no_call_missing_from_table():
    unknown = [nr for nr in range(1024) if nr not in BY_NR and nr not in VIRTUAL_NRS]
    wrong = {nr: r for nr in unknown if (r := _raw_errno(nr)) != errno.ENOSYS}
    assert not wrong, f"the kernel implements numbers the table lacks: {wrong}"


def test_path_calls_are_described():
    for s in SYSCALLS:
        if s.path_args:
            assert s.family == "path", s
            assert s.follow != "-", s
            assert s.support in ("virtual", "deny"), s
        # a dirfd always qualifies the path that follows it
        for i in s.dirfd_args:
            assert i + 1 < len(s.args) and s.args[i + 1] == "path", s
    for name, where in PATH_CALLS.items():
        assert BY_NAME[name].path_args == where, name


def test_support_levels():
    core = {s.name for s in SYSCALLS if s.support == "core"}
    assert core == {"clone", "clone3", "ptrace", "process_vm_readv", "process_vm_writev",
                    "pidfd_getfd", "kcmp"}
    # resolved through the view's mounts like any path call (vfs)
    for name in ("name_to_handle_at", "fanotify_mark", "inotify_add_watch"):
        assert BY_NAME[name].support == "virtual" and BY_NAME[name].method == "watch", name
    for name in ("open_by_handle_at", "mount_setattr", "open_tree", "open_tree_attr", "move_mount", "fsopen", "fsconfig",
                 "fsmount", "fspick", "io_uring_setup", "io_uring_enter", "io_uring_register",
                 "quotactl", "quotactl_fd", "swapon", "swapoff", "acct", "pivot_root",
                 "lookup_dcookie", "uselib", "file_getattr", "file_setattr", "statmount",
                 "listmount"):
        assert BY_NAME[name].support == "deny", name
    for name in ("rt_sigreturn", "exit", "exit_group", "futex", "restart_syscall"):
        assert BY_NAME[name].support == "kernel" and BY_NAME[name].method == "-", name
    # the misc module serves these under their own names
    for name in ("uname", "sethostname", "setdomainname", "clock_gettime", "gettimeofday", "time"):
        assert BY_NAME[name].method == name and BY_NAME[name].support == "virtual"


def test_doc_page_is_current():
    page = (ROOT / "docs" / "syscalls.md").read_text(encoding="utf-8")
    assert page == gendoc.render(), "regenerate: python -m umview_py.syscalls.gendoc > docs/syscalls.md"


GOOD = "0\tread\tfd\tfd,ptr,len\t-\tread\tvirtual\t\n"


def test_parse_good_rows(tmp_path):
    text = "# comment\n" + HEADER + GOOD + "2\topen\tpath\tpath,flags,mode\tflag\topen\tvirtual\n"
    rows = parse(text)
    assert [r.name for r in rows] == ["read", "open"]
    assert rows[1].notes == "" and rows[1].path_args == (0,)
    f = tmp_path / "t.tsv"
    f.write_text(text)
    assert load(f) == rows


@pytest.mark.parametrize("bad, why", [
    ("0\tread\tfd\tfd,ptr,len\t-\tread\n", "columns"),
    ("x\tread\tfd\tfd,ptr,len\t-\tread\tvirtual\t\n", "not a number"),
    ("0\tread\tfile\tfd,ptr,len\t-\tread\tvirtual\t\n", "family"),
    ("0\tread\tfd\tfd,buf,len\t-\tread\tvirtual\t\n", "role"),
    ("0\tread\tfd\tfd,ptr,len,int,int,int,int\t-\tread\tvirtual\t\n", "at most 6"),
    ("0\tread\tfd\tfd,ptr,len\tmaybe\tread\tvirtual\t\n", "follow"),
    ("0\tread\tfd\tfd,ptr,len\t-\tread\tsometimes\t\n", "support"),
    ("0\tread\tfd\tfd,ptr,len\t-\t-\tvirtual\t\n", "method"),
    ("0\tread\tfd\tfd,ptr,len\t-\tread\tkernel\t\n", "method"),
    ("4\tstat\tpath\tptr,ptr\tyes\tstat\tvirtual\t\n", "path"),
    ("4\tstat\tfd\tpath,ptr\tyes\tstat\tvirtual\t\n", "path"),
    ("4\tstat\tpath\tpath,ptr\t-\tstat\tvirtual\t\n", "follow"),
    ("4\tstat\tpath\tpath,ptr\tyes\t-\tkernel\t\n", "virtual or deny"),
    ("0\twrite\tfd\tfd,ptr,len\t-\twrite\tvirtual\t\n", "number 0 already on line 2"),
    ("1\tread\tfd\tfd,ptr,len\t-\tread\tvirtual\t\n", "name read already on line 2"),
])
def test_parse_rejects_bad_rows(tmp_path, bad, why):
    f = tmp_path / "bad.tsv"
    f.write_text(HEADER + GOOD + bad)
    with pytest.raises(ValueError, match=re.escape(why)) as info:
        load(f)
    assert "bad.tsv:3:" in str(info.value)


def test_parse_needs_header():
    with pytest.raises(ValueError, match="header"):
        parse(GOOD)
