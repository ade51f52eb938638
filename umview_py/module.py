"""The module API: what a module is, what it claims, and the call it serves.

A module is a class (pyfuse3's `Operations` is the model).  Each handler is a
method named after the `method` column of the syscall table (usually the
syscall's own name: `uname`, `sethostname`, `clock_gettime`, ...) and takes
one argument, the `Call`.  A handler

- returns an int: the call is not run; the program sees that result;
- returns None: "not mine": the next module of the view's stack is asked,
  and when none answers the kernel runs the call;
- raises `SyscallError(errno)`: the program sees -1 with that errno;
- raises anything else: a bug in the module.  The traceback is logged, the
  program sees EIO, and the view keeps running.

A handler may be a plain function (it runs at once, in the event pump, the
cheap way) or `async` (it runs as a trio task of its own, so a slow handler
delays only the process that made the call).  Only async handlers may
`await call.kernel()`, which runs the (possibly rewritten) call in the kernel
and returns its raw result (negative errno on failure) so that the handler can
change what the program sees.

The methods a module defines are its claims: the view traps exactly the
syscalls whose table `method` some loaded module defines (override
`claims()` to narrow that, for example when an option is off).
"""
from __future__ import annotations

import errno
import os

from .errors import ModuleError, SyscallError

AT_FDCWD = -100

__all__ = ["Module", "Option", "Claims", "StatOwner", "Call", "SyscallError", "boolean"]


class _Record:
    """Keyword-constructible value class with equality and repr (what the
    dataclasses used to give; dataclasses costs ~7 ms of every start through
    the inspect module)."""
    __slots__ = ()
    _fields: tuple = ()

    def _values(self):
        return tuple(getattr(self, f) for f in self._fields)

    def __eq__(self, other):
        return type(other) is type(self) and other._values() == self._values()

    def __repr__(self):
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({inner})"


class Option(_Record):
    """One KEY=VALUE option of a module.  `type` converts the text; `cli` is a
    long option of `umview` (e.g. "--hostname"); with `repeat` the `umview`
    flag may be given again, its values joined with ','."""
    __slots__ = _fields = ("type", "default", "help", "cli", "repeat")

    def __init__(self, type: Callable[[str], Any] = str, default: Any = None, help: str = "",
                 cli: str | None = None, repeat: bool = False):
        for f, v in zip(self._fields, (type, default, help, cli, repeat)):
            object.__setattr__(self, f, v)

    def __setattr__(self, name, value):
        raise AttributeError(f"Option is read-only ({name})")

    def __hash__(self):
        return hash(self._values())



class StatOwner(_Record):
    """Claims.stat_owner: the C core answers the stat family (stat, lstat,
    fstat, newfstatat, statx) itself, as the kernel would but with the owner
    replaced by uid:gid, for every file except those the module lists with
    Module.stat_listed (and except absolute /proc and /dev paths, which mean
    the caller there): those calls reach the module's handlers.  With
    keep_others, only files owned by real_uid (real_gid) get uid (gid); other
    owners are shown as they are.  Files on kernel_dev (major, minor) are
    left to the kernel.  Used only while this module alone serves the view's
    stat calls (no other module claims them, no tracing)."""
    __slots__ = _fields = ("uid", "gid", "keep_others", "real_uid", "real_gid", "kernel_dev")

    def __init__(self, uid: int, gid: int, keep_others: bool = False, real_uid: int = -1,
                 real_gid: int = -1, kernel_dev: tuple[int, int] | None = None):
        self.uid, self.gid, self.keep_others = uid, gid, keep_others
        self.real_uid, self.real_gid, self.kernel_dev = real_uid, real_gid, kernel_dev

    def config(self) -> list[int]:
        """The seven numbers umv_view_set_statown takes."""
        maj, mnr = self.kernel_dev if self.kernel_dev is not None else (0xFFFFFFFF, 0xFFFFFFFF)
        return [self.uid & 0xFFFFFFFF, self.gid & 0xFFFFFFFF, self.real_uid & 0xFFFFFFFF,
                self.real_gid & 0xFFFFFFFF, int(bool(self.keep_others)), maj, mnr]


class Claims(_Record):
    """What a module wants trapped.

    `syscalls`: syscall names.  `arg_in`: syscall name -> (argument index, set
    of values): trap the call only when that argument's low 32 bits are one
    of the values (checked by the seccomp filter itself, so other calls of
    that syscall never stop).  `no_vdso`: programs exec'd in the view get no
    vDSO, so their clock reads become real syscalls.  `paths`: for modules
    that serve path calls only in some places: (prefixes, bases),
    (prefixes, bases, passes), (prefixes, bases, passes, layers) or
    (prefixes, bases, passes, layers, listings).
    `arg_nonzero`: syscall name -> argument index: trap the call only when
    that (64-bit) argument is not 0, e.g. an optional address.  A path
    call whose paths lead (as the kernel resolves them) to none of
    `prefixes`, nor above one, and that is not relative to a cwd or dirfd in
    `bases`, is resumed by the C core without reaching the module.
    `passes`: (guest, host) pairs, where the view shows the plain host
    directory `host` at `guest` (a bind mount): a call that only names files
    (stat, open, mkdir, rename..., not exec, chdir or statfs) whose paths
    stay below one such directory (no '..' above it, no symlink out of it)
    is run by the kernel on the host path, without reaching the module; a
    pass with anything else of the view at or below either directory is
    ignored.  `layers`: host directories the module shows elsewhere (a
    bind's source): a path at or under one is its business, as with
    `prefixes`, but a directory above one is not (the view shows it as the
    host does; gcc stats /tmp at every compile); and only for chdir, exec
    and getcwd (the view names a cwd as it was reached), calls on an fd's
    own file and walks relative to a cwd or dirfd there: a call that only
    names files (as a pass may run) by a text that reaches a layer from
    outside is the kernel's (the layer's files are at their own paths in
    the view too), except into an overlay's layers, whose changes the
    core must see.  A (guest, upper, lower) triple is an *overlay*: the view shows
    at `guest` the union of two host directories, upper first, with nothing
    deleted; the core answers calls that only read (the stat family,
    access, getxattr, listxattr) from the layer that has the path, when
    neither walk meets a symlink or '..', and so does the shim in programs
    linked with libc (with opens for reading of a regular file, or of a
    directory only one layer has).  The shim keeps which layers have a
    directory until the next call that reaches a module: a module must
    change the layers only while it serves a call.  `listings`: (host
    directory, guest directory) pairs, where a program that opened the
    root of an overlay (guest) holds the host directory the module made to
    list it: the shim reads the overlay for names relative to it too.  A
    module with `paths` that
    claims getcwd agrees that where the kernel's cwd is outside every
    prefix, base and pass, the kernel's answer is the view's: the shim
    preloaded into the view's programs may answer it there.  None (the
    default): every claimed path call reaches it.
    `paths_in_c`: with `paths`, the module expects the C core to answer
    nearly all of its path calls (every mount a pass, say): processes
    spawned from then on send them to the core's seccomp listener, a
    cheaper round trip than a ptrace stop, but a call that must reach the
    module costs about three (see docs/design.md).
    `exec_found`: the module need not see an execve or execveat whose file
    does not exist (the kernel fails it, ENOENT or ENOTDIR, as it is): the
    C core resumes those itself when every module claiming exec calls says
    so.  execvp and shells try each $PATH directory in turn, so most execs
    of a build are such misses.
    `exec_setid`: the module need not see an exec of a file that is not
    set-user-ID, nor set-group-ID with group execute, on the host and that
    its `stat_owner` table does not list, while its `same_ids` claim is in
    effect: such an exec changes no ids (a fake root's only interest in an
    exec).  Like `exec_found`, it counts only when every module claiming
    exec calls says so.
    `same_ids`: (uid, gid) when every process of the view has all its user
    ids uid and all its group ids gid, as the module serves them: programs
    may then answer getuid, geteuid, getgid and getegid themselves, and
    the setuid, setgid, setresuid and setresgid calls that change nothing
    (the shim, native/umvshim.c).  The module must reclaim with None from
    the handler of the first call that makes some process's ids differ
    (it is in effect before that caller resumes).  Used only when this
    module alone serves those calls.
    `connect_map`: {guest port: host port} when the module's whole answer
    to a connect to an IPv4 loopback address (127.0.0.0/8, or 0.0.0.0) at
    a guest port is to connect to the host port instead (the rest of the
    address kept), its answer to getsockname is the kernel's with a host
    port shown as its guest port, and it answers getpeername from the
    address alone: programs may then make those connects and getsocknames
    themselves (the shim).  Used only when this module alone serves
    connect and getsockname.
    `socks5`: (proxy ip, proxy port, direct networks, seconds) when the
    module's whole answer to a blocking connect of a TCP socket to an IPv4
    or IPv6 address outside the direct networks (ipaddress networks, at
    most 16) and other than the proxy is to connect it to the proxy and
    make a SOCKS5 CONNECT without authentication, within that time, and
    its getpeername of such a socket shows the address the program asked
    for: programs may then do that themselves (the shim, as proxychains
    does).  Used only when this module alone serves connect, getpeername
    and getsockopt."""

    __slots__ = _fields = ("syscalls", "arg_in", "no_vdso", "paths", "arg_nonzero", "stat_owner",
                           "paths_in_c", "exec_found", "exec_setid", "same_ids", "connect_map", "socks5")
    __hash__ = None

    def __init__(self, syscalls: set[str] | None = None,
                 arg_in: dict[str, tuple[int, frozenset[int]]] | None = None, no_vdso: bool = False,
                 paths: tuple[list[str], list[str]] | None = None,
                 arg_nonzero: dict[str, int] | None = None, stat_owner: StatOwner | None = None,
                 paths_in_c: bool = False, exec_found: bool = False, exec_setid: bool = False,
                 same_ids: tuple[int, int] | None = None, connect_map: dict[int, int] | None = None,
                 socks5: tuple | None = None):
        self.syscalls = set() if syscalls is None else syscalls
        self.arg_in = {} if arg_in is None else arg_in
        self.no_vdso = no_vdso
        self.paths = paths
        self.arg_nonzero = {} if arg_nonzero is None else arg_nonzero
        self.stat_owner = stat_owner
        self.paths_in_c = paths_in_c
        self.exec_found = exec_found
        self.exec_setid = exec_setid
        self.same_ids = same_ids
        self.connect_map = connect_map
        self.socks5 = socks5


def boolean(text: str) -> bool:
    """Option type for yes/no options."""
    low = str(text).lower()
    if low in ("1", "yes", "true", "on", ""):
        return True
    if low in ("0", "no", "false", "off"):
        return False
    raise ValueError(f"not a yes/no value: {text!r}")


class Module:
    """Base class of all modules.  Subclasses set `name`, `description`,
    `options`, and define handler methods."""

    name: str = ""
    description: str = ""
    options: dict[str, Option] = {}
    # True when the module runs trio tasks of its own from loaded() (servers,
    # timers): `umview` then starts its event loop at once.  Otherwise trio
    # starts with the first call an async handler must serve.
    needs_loop: bool = False

    def __init__(self, **options: Any):
        unknown = set(options) - set(self.options)
        if unknown:
            raise ModuleError(
                f"module {self.name}: unknown option {sorted(unknown)[0]!r}"
                + (f" (known: {', '.join(sorted(self.options))})" if self.options else " (it takes none)")
            )
        self.config: dict[str, Any] = {}
        for key, opt in self.options.items():
            if key in options:
                value = options[key]
                if isinstance(value, str) and opt.type is not str:
                    try:
                        value = opt.type(value)
                    except (TypeError, ValueError) as exc:
                        raise ModuleError(f"module {self.name}: bad value for {key}: {value!r} ({exc})") from None
                self.config[key] = value
            else:
                self.config[key] = opt.default
        self.view = None  # set by the hypervisor when loaded

    # -- claims ---------------------------------------------------------
    @classmethod
    def handler_names(cls) -> set[str]:
        """Names of the handler methods this class defines (not inherited
        from Module itself)."""
        names = set()
        for klass in cls.__mro__:
            if klass is Module or klass is object:
                break
            names.update(n for n, v in vars(klass).items() if callable(v) and not n.startswith("_"))
        return names

    def claims(self) -> Claims:
        from .syscalls.table import SYSCALLS

        mine = self.handler_names()
        return Claims(syscalls={s.name for s in SYSCALLS if s.method in mine and s.support == "virtual"})

    # -- life cycle -----------------------------------------------------
    def loaded(self, view) -> None:
        """Called when the module joins a view (before any call reaches it)."""

    def reclaim(self) -> None:
        """Tell the view that claims() now answers differently (a module
        that traps according to its state, such as the mounts of vfs)."""
        push = getattr(self, "_push", None)
        if push is not None:
            push()

    def unloaded(self) -> None:
        """Called when the module leaves its view."""

    # -- stat calls answered in C (Claims.stat_owner) -------------------------
    _stat_table = -1

    def stat_listed(self, key: tuple[int, int], listed: bool = True) -> None:
        """List (or unlist) the file key = (st_dev, st_ino): its stat calls
        must reach this module's handlers (see StatOwner)."""
        from ._native import lib
        if self._stat_table < 0 and not listed:
            return
        rc = lib.umv_stat_table_set(self.stat_table(), key[0], key[1], int(listed))
        if rc < 0:
            raise MemoryError(f"stat table: {os.strerror(-rc)}")

    def stat_table(self) -> int:
        """The C table of listed keys (made empty on first use)."""
        if self._stat_table < 0:
            from ._native import lib
            table = lib.umv_stat_table_new()
            if table < 0:
                raise ModuleError(f"module {self.name}: no stat table left ({os.strerror(-table)})")
            self._stat_table = table
        return self._stat_table

    def _free_stat_table(self) -> None:
        if self._stat_table >= 0:
            from ._native import lib
            lib.umv_stat_table_free(self._stat_table)
            self._stat_table = -1

    def resolve_host(self, path: str) -> str | None:
        """Modules that move paths (file systems) say where a view path lives
        on the host: the core uses it to start a program in a view (its
        working directory, its lookup on $PATH).  None: not mine."""
        return None

    def started(self, pid: int, cwd: str) -> None:
        """The core has just started process pid in the view (umview's
        command, View.run) in the working directory cwd, a view path.  A
        module that names directories (a file system) may remember by which
        name: a directory can be in the view twice (a bind source at its
        own path and at the mount's), and the kernel only says which host
        directory it is."""

    def command(self, name: str, args: dict, pid: int) -> dict:
        """An in-view command (such as umview-mount) sent to this module by
        process pid; returns a JSON-able answer.  Raise ModuleError with a
        message for the user."""
        raise ModuleError(f"module {self.name} has no command {name!r}")

    def describe(self) -> str:
        """One line for `umview-lsmod`: the options that differ from the defaults."""
        return " ".join(f"{k}={v}" for k, v in self.config.items() if v != self.options[k].default)


class Later:
    """What Call.later returns: the rest of a plain handler's work, to be
    finished as a trio task."""
    __slots__ = ("awaitable",)

    def __init__(self, awaitable):
        self.awaitable = awaitable


class Call:
    """One intercepted system call, as a handler sees it.

    `memory` reads and writes the tracee (process_vm_readv/writev in a real
    view, a dict in umview_py.testing); `runner` runs the call in the kernel
    (only in async handlers)."""

    __slots__ = ("nr", "name", "args", "tid", "pid", "view", "memory", "_runner", "ran",
                 "_handlers", "_pos", "sp", "rewritten", "_scratch")

    def __init__(self, nr, name, args, tid, pid, view, memory, runner=None, sp=0):
        self.nr = nr
        self.name = name
        self.args = list(args)
        self.tid = tid
        self.pid = pid
        self.view = view
        self.memory = memory
        self._runner = runner
        self.ran = False
        self._handlers = ()
        self._pos = 0
        self.sp = sp
        self.rewritten = False
        self._scratch = 128  # the red zone below the stack pointer is the program's

    def __repr__(self):
        return f"<Call {self.name}{tuple(hex(a) for a in self.args)} pid={self.pid}>"

    # memory -------------------------------------------------------------
    def read(self, addr: int, size: int) -> bytes:
        if size < 0 or size > 1 << 30:
            raise SyscallError(errno.EINVAL)
        return self.memory.read(self.tid, addr, size)

    def write(self, addr: int, data: bytes) -> None:
        self.memory.write(self.tid, addr, data)

    def read_string(self, addr: int, limit: int = 4096) -> bytes:
        return self.memory.read_string(self.tid, addr, limit)

    def read_path(self, addr: int) -> str:
        return os.fsdecode(self.read_string(addr, 4096))

    def host_path(self, path: str | bytes, dirfd: int = AT_FDCWD) -> str:
        """A path by which the hypervisor reaches the file the tracee means by
        (dirfd, path): relative paths go through the tracee's /proc/PID/cwd
        or /proc/PID/fd/DIRFD, absolute ones through /proc/PID/root (so a
        chroot'ed tracee is honoured).  An empty path means dirfd itself
        (AT_EMPTY_PATH).  The kernel resolves these magic links, so symlinks
        and `..` mean what they mean for the tracee."""
        path = os.fsdecode(path)
        if path.startswith("/"):
            return f"/proc/{self.pid}/root{path}"
        base = f"/proc/{self.tid}/cwd" if dirfd == AT_FDCWD else f"/proc/{self.pid}/fd/{dirfd}"
        return f"{base}/{path}" if path else base

    def arg(self, i: int, signed: bool = True, bits: int = 64) -> int:
        """Argument i as a signed (default) or unsigned integer of `bits` bits."""
        v = self.args[i] & ((1 << bits) - 1)
        if signed and v >> (bits - 1):
            v -= 1 << bits
        return v

    # rewriting ------------------------------------------------------------
    def scratch(self, data: bytes) -> int:
        """Copy data into the tracee, below its stack pointer and red zone,
        and return its address: room for a rewritten argument (a path, a
        sockaddr) that lives as long as the call.  Nothing of the program is
        there, and signal frames are only built after the call returns."""
        self._scratch = (self._scratch + len(data) + 15) & ~15
        addr = self.sp - self._scratch
        self.write(addr, data)
        return addr

    def rewrite(self, nr: int | None = None, **args: int) -> None:
        """Run the call in the kernel with other arguments (`arg0=...` to
        `arg5=...`) or as another syscall; the handler then returns None.
        The program's own registers are put back when the call returns."""
        for key, value in args.items():
            self.args[int(key[3:])] = value & 0xFFFFFFFFFFFFFFFF
        if nr is not None:
            self.nr = nr
        self.rewritten = True

    def later(self, awaitable) -> Later:
        """From a plain handler: `return call.later(coro)` finishes the call
        as a trio task, which awaits coro; its result is the call's (None:
        the kernel runs the call, as rewritten if it was).  The program's
        thread waits; every other process goes on.  For handlers that can
        usually answer at once and must sometimes wait (a proxy handshake):
        the common case then costs no trip through trio."""
        return Later(awaitable)

    # the stack ----------------------------------------------------------
    def next(self):
        """Ask the modules below this one (the parent views' modules, or
        older modules of this view) for the call, as if this module were not
        there.  Returns their result, or None if none of them takes the call
        (then the kernel would run it).  Plain handlers only."""
        pos = self._pos
        try:
            for i in range(pos + 1, len(self._handlers)):
                module, fn, is_async = self._handlers[i]
                if is_async:
                    raise RuntimeError(f"call.next() reached the async handler of {module.name}")
                self._pos = i
                result = fn(self)
                if result is not None:
                    return result
            return None
        finally:
            self._pos = pos

    # the kernel ---------------------------------------------------------
    async def kernel(self, nr: int | None = None, args: list[int] | None = None) -> int:
        """Run the call in the kernel (optionally as syscall `nr` with other
        `args`) and return its raw result: >= 0, or -errno."""
        if self._runner is None:
            raise RuntimeError("call.kernel() needs an async handler in a running view")
        if self.ran:
            raise RuntimeError("call.kernel() may run only once per call")
        self.ran = True
        return await self._runner(self, self.nr if nr is None else nr, self.args if args is None else args)
