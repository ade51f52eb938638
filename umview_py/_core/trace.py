"""--trace and --stats: strace's formats, plus who served each call."""
from __future__ import annotations

import errno
import os
import signal

from ..errors import UmviewError
from ..syscalls.table import BY_NAME, SYSCALLS

# strace's class names -> families of the syscall table
CLASSES = {
    "%file": "path", "%desc": "fd", "%network": "net", "%net": "net", "%process": "proc",
    "%creds": "id", "%signal": "sig", "%ipc": "ipc", "%memory": "mem", "%clock": "time",
}
AT_FDCWD = -100


def _signed(v: int, bits: int = 64) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _quote(raw: bytes, limit: int = 64) -> str:
    text = raw[:limit].decode("latin-1")
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"' + ("..." if len(raw) > limit else "")


class Tracer:
    def __init__(self, out, spec: str, module_names):
        self.out = out
        self.extra: set[str] = set()     # calls to trap for the trace only
        self.modules: set[str] = set()   # modules whose calls are shown
        self.all = not spec
        for item in filter(None, (x.strip() for x in spec.split(","))):
            if item in CLASSES:
                fam = CLASSES[item]
                self.extra |= {s.name for s in SYSCALLS if s.family == fam and s.support == "virtual"}
            elif item in BY_NAME:
                if BY_NAME[item].support != "virtual":
                    raise UmviewError(f"--trace: {item} cannot be traced (support: {BY_NAME[item].support})")
                self.extra.add(item)
            elif item in module_names or not item.startswith("%"):
                self.modules.add(item)
            else:
                raise UmviewError(f"--trace: unknown class {item!r} (known: {', '.join(sorted(CLASSES))})")

    def wants(self, name: str, served_by: str) -> bool:
        return self.all or name in self.extra or served_by in self.modules

    def format_args(self, call) -> str:
        row = BY_NAME.get(call.name)
        roles = row.args if row else ("ptr",) * 6
        parts = []
        for i, role in enumerate(roles):
            v = call.args[i]
            if role in ("path", "str"):
                try:
                    parts.append(_quote(call.read_string(v, 4096)) if v else "NULL")
                except Exception:
                    parts.append(hex(v))
            elif role == "dirfd":
                fd = _signed(v, 32)
                parts.append("AT_FDCWD" if fd == AT_FDCWD else str(fd))
            elif role in ("ptr", "addr", "sockaddr"):
                parts.append(hex(v) if v else "NULL")
            elif role == "flags":
                parts.append(hex(v & 0xFFFFFFFF))
            elif role == "mode":
                parts.append(oct(v & 0o7777).replace("0o", "0"))
            else:
                parts.append(str(_signed(v)))
        return ", ".join(parts)

    def call_line(self, call, result: int, served_by: str, args: str | None = None) -> None:
        """args: the arguments as format_args showed them at the call's
        entry (after the reply the program may have changed or freed its
        memory, or exited)."""
        if result < 0 and -result < 4096:
            e = -result
            res = f"-1 {errno.errorcode.get(e, str(e))} ({os.strerror(e)})"
        else:
            res = str(result)
        if args is None:
            args = self.format_args(call)
        self.out.write(f"[pid {call.pid}] {call.name}({args}) = {res} <{served_by}>\n")
        self.out.flush()

    def signal_line(self, pid: int, sig: int) -> None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"SIG{sig}"
        self.out.write(f"[pid {pid}] --- {name} ---\n")
        self.out.flush()

    def exit_line(self, pid: int, status: int) -> None:
        if os.WIFSIGNALED(status):
            sig = signal.Signals(os.WTERMSIG(status)).name
            self.out.write(f"[pid {pid}] +++ killed by {sig} +++\n")
        else:
            self.out.write(f"[pid {pid}] +++ exited with {os.WEXITSTATUS(status)} +++\n")
        self.out.flush()


def format_stats(stats: dict) -> str:
    """strace -c's table, one row per (module, syscall)."""
    rows = sorted(stats.items(), key=lambda kv: -kv[1].seconds)
    total = sum(s.seconds for _, s in rows) or 1e-12
    lines = [f"{'% time':>6} {'seconds':>11} {'usecs/call':>11} {'calls':>9} {'errors':>9} "
             f"{'syscall':<18} module",
             f"{'-' * 6} {'-' * 11} {'-' * 11} {'-' * 9} {'-' * 9} {'-' * 18} {'-' * 12}"]
    for (module, name), s in rows:
        lines.append(f"{100 * s.seconds / total:6.2f} {s.seconds:11.6f} {1e6 * s.seconds / max(s.calls, 1):11.1f} "
                     f"{s.calls:9d} {s.errors or '':>9} {name:<18} {module}")
    calls = sum(s.calls for _, s in rows)
    errors = sum(s.errors for _, s in rows)
    lines.append(f"{'-' * 6} {'-' * 11} {'-' * 11} {'-' * 9} {'-' * 9} {'-' * 18} {'-' * 12}")
    lines.append(f"{100.0:6.2f} {sum(s.seconds for _, s in rows):11.6f} {'':>11} {calls:9d} "
                 f"{errors or '':>9} total")
    return "\n".join(lines) + "\n"
