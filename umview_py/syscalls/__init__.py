"""The syscall table (see table.py and x86_64.tsv)."""
from .table import BY_NAME, BY_NR, FAMILIES, MAX_NR, SUPPORT_LEVELS, SYSCALLS, Syscall, lookup

__all__ = ["Syscall", "SYSCALLS", "BY_NAME", "BY_NR", "MAX_NR", "FAMILIES", "SUPPORT_LEVELS", "lookup"]
