"""Testing modules without ptrace.

    from umview_py.testing import FakeProcess
    proc = FakeProcess()
    buf = proc.alloc(390)
    assert proc.call(module.uname, "uname", buf) == 0
    print(proc.read(buf, 65))

`FakeProcess` is a little address space (a dict of allocated blocks); reads
and writes outside them fail with EFAULT like process_vm_readv would.  Its
`call` builds a real `umview_py.Call` for a handler and returns what the
handler returned, or -errno for a SyscallError (what the program would see).
"""
from __future__ import annotations

import errno
import inspect
import os

import trio

from .errors import SyscallError
from .module import Call, Later
from .syscalls.table import BY_NAME


class FakeProcess:
    def __init__(self, pid: int = 4242):
        self.pid = pid
        self._blocks: dict[int, bytearray] = {}
        self._next = 0x10000
        self.kernel_results: dict[str, int] = {}  # what call.kernel() returns, by syscall

    # memory -------------------------------------------------------------
    def alloc(self, size: int, data: bytes = b"") -> int:
        addr = self._next
        self._next += (size + 0xFFF) & ~0xFFF or 0x1000
        block = bytearray(size)
        block[:len(data)] = data
        self._blocks[addr] = block
        return addr

    def string(self, text: str | bytes) -> int:
        raw = os.fsencode(text) + b"\0"
        return self.alloc(len(raw), raw)

    def _find(self, addr: int, size: int):
        for base, block in self._blocks.items():
            if base <= addr and addr + size <= base + len(block):
                return block, addr - base
        raise SyscallError(errno.EFAULT)

    def read(self, tid_or_addr, addr=None, size=None) -> bytes:
        if size is None:  # read(addr, size): the test's own view
            addr, size = tid_or_addr, addr
        block, off = self._find(addr, size)
        return bytes(block[off:off + size])

    def write(self, tid_or_addr, addr, data=None) -> None:
        if data is None:
            addr, data = tid_or_addr, addr
        block, off = self._find(addr, len(data))
        block[off:off + len(data)] = data

    def read_string(self, tid: int, addr: int, limit: int = 4096) -> bytes:
        for base, block in self._blocks.items():
            if base <= addr < base + len(block):
                tail = bytes(block[addr - base:])
                end = tail.find(b"\0")
                if end < 0:
                    raise SyscallError(errno.EFAULT)
                if end >= limit:
                    raise SyscallError(errno.ENAMETOOLONG)
                return tail[:end]
        raise SyscallError(errno.EFAULT)

    # calls --------------------------------------------------------------
    # (a plain handler may return call.later(coro): see settle/settle_now)
    def make_call(self, name: str, *args: int, view=None) -> Call:
        row = BY_NAME[name]

        async def runner(call, nr, a):
            return self.kernel_results.get(name, 0)

        return Call(row.nr, name, list(args) + [0] * (6 - len(args)), self.pid, self.pid, view, self,
                    runner)

    def call(self, handler, name: str, *args: int):
        """Run handler for syscall `name` with integer args; returns the
        handler's result, or -errno if it raised SyscallError."""
        c = self.make_call(name, *args)
        try:
            if inspect.iscoroutinefunction(handler):
                return trio.run(handler, c)
            return settle_now(handler(c))
        except SyscallError as exc:
            return -exc.errno


async def settle(result):
    """A handler's answer as the program would get it: a plain handler's
    call.later(coro) is awaited (inside a trio run, as in a real view)."""
    if isinstance(result, Later):
        return await result.awaitable
    return result


def settle_now(result):
    """settle() outside trio: a Later is run to the end in trio.run."""
    if isinstance(result, Later):
        return trio.run(settle, result)
    return result
