"""Small modules used by the tests, loaded with
`umview -p tests/modules_for_tests.py:ClassName` (or imported directly for
tests without ptrace).

Raiser      claims uname and raises RuntimeError("boom"): a module bug.
AsyncRaiser an async uname handler that lets the kernel run the call, then
            raises: the bug surfaces after the call ran (EIO at its exit).
Deny        fails sethostname with EACCES (SyscallError).
KernelPeek  an async uname handler: lets the kernel run the call
            (`await call.kernel()`), then rewrites the release field in the
            program's memory to "peek-<real release>".
SlowUname   async uname and sethostname handlers that wait for each other:
            uname blocks until some process calls sethostname, and
            sethostname blocks until a uname is waiting.  Whatever the order
            in which two processes make these calls, both complete only if a
            blocked handler does not block the serving of other processes.
            The uname answer is the kernel's, with the release replaced by the
            name given to sethostname (the real host name is never changed).
Later       a plain uname handler that answers with call.later(...): the
            continuation runs as a trio task (it awaits a checkpoint) and
            then answers as its option `then` says: "release" (write the
            kernel's uname with release "later-N", N counting the calls),
            "errno" (SyscallError EPERM), "raise" (a bug: EIO), "kernel"
            (None: the kernel runs the call).
Claimer     claims the one syscall its option names and lets it through.
PathClaimer claims openat (and lets every call through): a module of the
            path family, which makes the view deny io_uring and friends.
"""
import errno
import struct

import trio

from umview_py import Claims, Module, SyscallError
from umview_py.module import Option

UTS_LEN = 65
RELEASE_OFF = 2 * UTS_LEN  # sysname, nodename, release, ...


class Raiser(Module):
    name = "raiser"
    description = "uname raises RuntimeError (a module bug, for tests)"

    def uname(self, call):
        raise RuntimeError("boom")


class AsyncRaiser(Module):
    name = "asyncraiser"
    description = "uname runs in the kernel, then the handler raises (for tests)"

    async def uname(self, call):
        await call.kernel()
        raise RuntimeError("async boom")


class Deny(Module):
    name = "deny"
    description = "sethostname fails with EACCES (for tests)"

    def sethostname(self, call):
        raise SyscallError(errno.EACCES)


class KernelPeek(Module):
    name = "kernelpeek"
    description = "uname runs in the kernel, then its release is rewritten (for tests)"

    async def uname(self, call):
        result = await call.kernel()
        if result < 0:
            return result
        buf = call.args[0]
        real = call.read(buf + RELEASE_OFF, UTS_LEN).split(b"\0")[0]
        new = (b"peek-" + real)[:UTS_LEN - 1]
        call.write(buf + RELEASE_OFF, struct.pack(f"{UTS_LEN}s", new))
        return result


class SlowUname(Module):
    name = "slowuname"
    description = "uname waits for a sethostname from another process (for tests)"

    def __init__(self, **options):
        super().__init__(**options)
        self._waiting = None   # set when a uname handler is blocked
        self._released = None  # set by sethostname
        self._name = b""

    def _events(self):
        # trio objects are made in the trio thread, where async handlers run
        if self._waiting is None:
            self._waiting = trio.Event()
            self._released = trio.Event()

    async def uname(self, call):
        self._events()
        self._waiting.set()
        await self._released.wait()
        result = await call.kernel()
        if result < 0:
            return result
        call.write(call.args[0] + RELEASE_OFF, struct.pack(f"{UTS_LEN}s", self._name[:UTS_LEN - 1]))
        return result

    async def sethostname(self, call):
        self._events()
        length = call.arg(1)
        if length < 0 or length >= UTS_LEN:
            raise SyscallError(errno.EINVAL)
        name = call.read(call.args[0], length).split(b"\0")[0]
        await self._waiting.wait()
        self._name = name
        self._released.set()
        return 0


class PathClaimer(Module):
    name = "pathclaimer"
    description = "claims openat and lets every call through (for tests)"

    def claims(self):
        return Claims(syscalls={"openat"})

    def open(self, call):  # the table's method for openat
        return None


class Claimer(Module):
    """claims the syscall named by its option and lets every call through:
    loading it widens the view's filter (for tests of that)."""
    name = "claimer"
    description = "claims one syscall (option syscall=NAME) and lets it through"
    options = {"syscall": Option(str, "getppid")}

    def claims(self):
        return Claims(syscalls={self.config["syscall"]})

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda call: None


class Later(Module):
    name = "later"
    description = "uname answered by a continuation in trio (call.later, for tests)"
    options = {"then": Option(str, "release", "release, errno, raise or kernel")}

    def __init__(self, **options):
        super().__init__(**options)
        self.calls = 0

    def uname(self, call):
        self.calls += 1
        return call.later(self._finish(call, self.calls))

    async def _finish(self, call, n):
        await trio.lowlevel.checkpoint()   # only a running trio loop gets past this
        then = self.config["then"]
        if then == "errno":
            raise SyscallError(errno.EPERM)
        if then == "raise":
            raise RuntimeError("later boom")
        if then == "kernel":
            return None
        import os
        fields = [f.encode() for f in os.uname()]
        fields[2] = b"later-%d" % n
        call.write(call.args[0], b"".join(f.ljust(UTS_LEN, b"\0") for f in fields) + bytes(UTS_LEN))
        return 0
