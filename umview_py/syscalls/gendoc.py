"""Print the syscall table as a Markdown page:

    python -m umview_py.syscalls.gendoc > docs/syscalls.md
"""
from __future__ import annotations

import collections

from .table import FAMILIES, SUPPORT_LEVELS, SYSCALLS

INTRO = """\
# System calls (x86_64, Linux 6.18)

Generated from `umview_py/syscalls/x86_64.tsv` by
`python -m umview_py.syscalls.gendoc > docs/syscalls.md`; do not edit by hand
(a test checks that this page matches the table).

The table lists every x86_64 system call the core knows, one row each.
A number it does not list fails with ENOSYS whenever a module moves paths
or file descriptors.

Columns:

- **nr**, **name**: the kernel's number and name.
- **family**: `path` (takes a path name, with or without a dirfd), `fd`
  (operates on a file descriptor), `net` (sockets), `id` (credentials),
  `proc` (process and thread life cycle and attributes), `sig` (signals),
  `time` (clocks and timers), `mem` (memory), `ipc` (SysV and POSIX IPC,
  futexes), `sys` (system-wide state), `other`.
- **args**: the role of each argument, in order: `path` (a path name),
  `dirfd` (a directory fd, AT_FDCWD allowed), `fd`, `ptr` (a buffer or
  struct), `len`, `flags`, `mode`, `uid`, `gid`, `pid`, `sig`, `int`,
  `addr` (a memory address), `sockaddr`, `socklen`, `str` (a string that is
  not a path), `clock`, `cmd`.
- **follow**: whether the last component of the path is followed when it is
  a symlink: `yes`, `no`, `flag` (decided by a flag such as
  AT_SYMLINK_NOFOLLOW, AT_SYMLINK_FOLLOW or O_NOFOLLOW), `-` (no path).
- **method**: the module method that serves the call (`-`: none can).

Support levels:

- `virtual`: a module may claim the call and serve it.
- `kernel`: always runs in the kernel unchanged; no module may claim it.
- `deny`: takes paths or fds the view cannot redirect yet, so it fails with
  ENOSYS whenever a module moves paths or fds (and runs in the kernel
  otherwise).
- `core`: handled by the hypervisor core itself.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _counts(title: str, names, values) -> list[str]:
    count = collections.Counter(values)
    lines = [f"| {title} | calls |", "|---|---:|"]
    lines += [f"| `{n}` | {count[n]} |" for n in names]
    lines.append(f"| total | {sum(count.values())} |")
    return lines


def render() -> str:
    lines = [INTRO, "## Counts", ""]
    lines += _counts("support", SUPPORT_LEVELS, (s.support for s in SYSCALLS))
    lines.append("")
    lines += _counts("family", FAMILIES, (s.family for s in SYSCALLS))
    lines += ["", "## Table", "",
              "| nr | name | family | args | follow | method | support | notes |",
              "|---:|---|---|---|---|---|---|---|"]
    for s in SYSCALLS:
        lines.append(f"| {s.nr} | `{s.name}` | {s.family} | {', '.join(s.args)} | {s.follow} "
                     f"| {s.method} | {s.support} | {_cell(s.notes)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    print(render(), end="")


if __name__ == "__main__":
    main()
