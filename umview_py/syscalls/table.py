"""The syscall table: every x86_64 syscall of Linux 6.18, as data.

The rows live in `x86_64.tsv` beside this file (its header comment explains
the columns); they are parsed and checked once, at import.  A bad row is a
ValueError that names its line.
"""
from __future__ import annotations

import os

__all__ = ["Syscall", "SYSCALLS", "BY_NAME", "BY_NR", "MAX_NR", "FAMILIES", "SUPPORT_LEVELS",
           "ROLES", "FOLLOW", "READS", "lookup", "parse", "load"]

FAMILIES = ("path", "fd", "net", "id", "proc", "sig", "time", "mem", "ipc", "sys", "other")
SUPPORT_LEVELS = ("virtual", "kernel", "deny", "core")
ROLES = ("path", "dirfd", "fd", "ptr", "len", "flags", "mode", "uid", "gid", "pid", "sig", "int",
         "addr", "sockaddr", "socklen", "str", "clock", "cmd")
FOLLOW = ("yes", "no", "flag", "-")
COLUMNS = ("nr", "name", "family", "args", "follow", "method", "support", "notes")
MAX_ARGS = 6

# Path calls that only read, and where their output goes, for running them
# on another path on the program's behalf: (index of the output buffer,
# its fixed size, index of the argument that gives its size, index of a
# name string the call also reads), -1 = none.
READS = {
    "stat": (1, 144, -1, -1), "lstat": (1, 144, -1, -1), "newfstatat": (2, 144, -1, -1),
    "statx": (4, 256, -1, -1),
    "getxattr": (2, 0, 3, 1), "lgetxattr": (2, 0, 3, 1), "listxattr": (1, 0, 2, -1),
    "llistxattr": (1, 0, 2, -1),
    "access": (-1, 0, -1, -1), "faccessat": (-1, 0, -1, -1), "faccessat2": (-1, 0, -1, -1),
    "readlink": (1, 0, 2, -1), "readlinkat": (2, 0, 3, -1),
}


class Syscall:
    """One row.  A plain class, not a dataclass: the table is loaded at
    every start, and dataclasses costs ~7 ms to import."""
    __slots__ = COLUMNS

    def __init__(self, nr: int, name: str, family: str, args: tuple[str, ...], follow: str,
                 method: str, support: str, notes: str = ""):
        self.nr, self.name, self.family, self.args = nr, name, family, args
        self.follow, self.method, self.support, self.notes = follow, method, support, notes

    def _values(self):
        return tuple(getattr(self, f) for f in COLUMNS)

    def __eq__(self, other):
        return type(other) is Syscall and other._values() == self._values()

    def __hash__(self):
        return hash(self._values())

    def __repr__(self):
        return "Syscall(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in COLUMNS) + ")"

    def _indexes(self, role: str) -> tuple[int, ...]:
        return tuple(i for i, r in enumerate(self.args) if r == role)

    @property
    def path_args(self) -> tuple[int, ...]:
        return self._indexes("path")

    @property
    def dirfd_args(self) -> tuple[int, ...]:
        return self._indexes("dirfd")

    @property
    def fd_args(self) -> tuple[int, ...]:
        return self._indexes("fd")


def _row(fields: list[str]) -> Syscall:
    """One row from its columns; raises ValueError saying what is wrong."""
    if len(fields) == len(COLUMNS) - 1:  # an editor may strip the tab before empty notes
        fields = fields + [""]
    if len(fields) != len(COLUMNS):
        raise ValueError(f"{len(fields)} columns, expected {len(COLUMNS)}")
    nr, name, family, args, follow, method, support, notes = (f.strip() for f in fields)
    if not nr.isdigit():
        raise ValueError(f"nr {nr!r} is not a number")
    if not name.isidentifier():
        raise ValueError(f"bad name {name!r}")
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}")
    roles = tuple(args.split(",")) if args else ()
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"unknown argument role {role!r}")
    if len(roles) > MAX_ARGS:
        raise ValueError(f"{len(roles)} arguments, at most {MAX_ARGS}")
    if follow not in FOLLOW:
        raise ValueError(f"follow {follow!r} is not one of {', '.join(FOLLOW)}")
    if support not in SUPPORT_LEVELS:
        raise ValueError(f"unknown support level {support!r}")
    if method != "-" and (not method.isidentifier() or method.startswith("_")):
        raise ValueError(f"method {method!r} is not a public identifier")
    if (support == "virtual") != (method != "-"):
        raise ValueError("a virtual call needs a method; any other has method -")
    has_path = "path" in roles
    if (family == "path") != has_path:
        raise ValueError("family path and a path argument go together")
    if (follow != "-") != has_path:
        raise ValueError("follow is - exactly when the call takes no path")
    if has_path and support not in ("virtual", "deny"):
        raise ValueError("a path call must be virtual or deny")
    return Syscall(int(nr), name, family, roles, follow, method, support, notes)


def parse(text: str, source: str = "<text>") -> tuple[Syscall, ...]:
    """Parse the TSV text of a table; the rows sorted by number."""
    rows: list[Syscall] = []
    by_nr: dict[int, int] = {}
    by_name: dict[str, int] = {}
    header = False
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        try:
            if not header:
                if tuple(f.strip() for f in fields) != COLUMNS:
                    raise ValueError(f"expected the header line {' '.join(COLUMNS)!r}")
                header = True
                continue
            row = _row(fields)
            if row.nr in by_nr:
                raise ValueError(f"number {row.nr} already on line {by_nr[row.nr]}")
            if row.name in by_name:
                raise ValueError(f"name {row.name} already on line {by_name[row.name]}")
        except ValueError as exc:
            raise ValueError(f"{source}:{lineno}: {exc}: {line!r}") from None
        by_nr[row.nr] = by_name[row.name] = lineno
        rows.append(row)
    if not header:
        raise ValueError(f"{source}: no header line")
    return tuple(sorted(rows, key=lambda s: s.nr))


def load(path: str | os.PathLike) -> tuple[Syscall, ...]:
    with open(path, encoding="utf-8") as f:
        return parse(f.read(), os.fspath(path))


def _load_builtin() -> tuple[Syscall, ...]:
    return load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "x86_64.tsv"))


SYSCALLS: tuple[Syscall, ...] = _load_builtin()
BY_NAME: dict[str, Syscall] = {s.name: s for s in SYSCALLS}
BY_NR: dict[int, Syscall] = {s.nr: s for s in SYSCALLS}
MAX_NR: int = SYSCALLS[-1].nr


def lookup(name_or_nr: str | int) -> Syscall:
    """The row of a syscall, by name or number."""
    table = BY_NR if isinstance(name_or_nr, int) else BY_NAME
    try:
        return table[name_or_nr]
    except KeyError:
        raise KeyError(f"unknown syscall {name_or_nr!r}: not in the x86_64 table "
                       f"(numbers 0..{MAX_NR})") from None
