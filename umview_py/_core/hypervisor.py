"""The hypervisor: views, their module stacks, and the trio event pump.

One Hypervisor per process.  It starts the C tracer thread, spawns the first
process of a view, and serves the events the C core hands over:
  - a claimed call: the view's handlers for that syscall are asked in stack
    order (the view's own modules, newest first, then its parent's);
  - a virtual syscall (in-view commands): see `vsys_ops`;
  - process exits, group-stops of the first process.
"""
from __future__ import annotations

import errno
import logging
import os
import signal
import struct
import threading
import time

from ..errors import ModuleError, SyscallError, UmviewError
from ..module import Call, Later, Module
from ..syscalls.table import BY_NAME, BY_NR, READS
from . import seccomp
from .bridge import (ACT_CONT, ACT_DEFER, ACT_REWRITE, ACT_RUN_EXIT, ACT_SET_RESULT, ACT_SKIP, EV_ALLGONE,
                     EV_EXIT, EV_FORK, EV_GROUPSTOP, EV_LOG, EV_SIGNAL, EV_SYSEXIT, TraceeMemory, check,
                     ffi, lib)

log = logging.getLogger("umview")

# Signals the first process gets back at their default disposition: Python
# ignores SIGPIPE and SIGXFSZ, and umview itself ignores the terminal's
# job-control signals (they are for the program in the view, not for us).
RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGQUIT,
                 signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
VIEW_NO_VDSO = lib.UMV_VIEW_NO_VDSO
MAX_VIEWS = lib.UMV_MAX_VIEWS
_STAT_NRS = tuple(BY_NAME[n].nr for n in seccomp.STAT_CALLS)


def _shim_path() -> str | None:
    """The shim library (native/umvshim.c), when it was built and its
    path can go into LD_PRELOAD (which splits at spaces and colons)."""
    import importlib.machinery
    base = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_umvshim")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if os.path.exists(base + suffix) and not set(base + suffix) & {" ", ":"}:
            return base + suffix
    return None


def _with_shim(env: dict) -> None:
    """Preload the shim into a program spawned in a view where it has work
    (stat calls of a fake root, path calls outside the mounts; see
    native/umvshm.h).  UMVIEW_SHIM=0 turns it off (to compare, or to rule
    it out)."""
    if os.environ.get("UMVIEW_SHIM") == "0" or env.get("UMVIEW_SHIM") == "0":
        return
    shim = _shim_path()
    holder = lib.umv_shm_holder() if shim is not None else -1
    if holder < 0:
        return
    old = env.get("LD_PRELOAD", "")
    if shim not in old.replace(":", " ").split():
        env["LD_PRELOAD"] = f"{shim} {old}" if old else shim
    env["UMVIEW_SHM"] = f"/proc/{holder}/fd/3"


# the calls the shim answers for a module alone (native/umvshim.c):
# Claims.same_ids, Claims.connect_map, Claims.socks5
_SAME_ID_NRS = tuple(BY_NAME[n].nr for n in ("getuid", "geteuid", "getgid", "getegid", "setuid", "setgid",
                                             "setresuid", "setresgid"))
_PORT_MAP_NRS = tuple(BY_NAME[n].nr for n in ("connect", "getsockname"))
_SOCKS_NRS = tuple(BY_NAME[n].nr for n in ("connect", "getpeername", "getsockopt"))


_AF_INET, _AF_INET6 = 2, 10     # (socket is not imported at start-up)


def _socks_words(socks) -> list[int] | None:
    """Claims.socks5 as umv_view_set_net takes it (native/umvcore.h), or
    None when it does not fit."""
    import ipaddress
    ip, port, direct, timeout = socks
    ip = ipaddress.ip_address(ip)
    if len(direct) > lib.UMV_SHM_DIRECT:
        return None
    family = _AF_INET if ip.version == 4 else _AF_INET6
    words = [1, family, port, max(1, int(timeout * 1000))] + list(struct.unpack("<4I", ip.packed.ljust(16, b"\0")))
    words.append(len(direct))
    for net in direct:
        fam = _AF_INET if net.version == 4 else _AF_INET6
        words += [fam << 8 | net.prefixlen] + list(struct.unpack("<4I", net.network_address.packed.ljust(16, b"\0")))
    return words + [0] * (lib.UMV_SHM_SOCKS_WORDS - len(words))


class ModuleStats:
    __slots__ = ("calls", "errors", "seconds")

    def __init__(self):
        self.calls = 0
        self.errors = 0
        self.seconds = 0.0


def _merge_stats(into: dict, table: dict) -> None:
    for key, st in table.items():
        t = into.get(key)
        if t is None:
            t = into[key] = ModuleStats()
        t.calls += st.calls
        t.errors += st.errors
        t.seconds += st.seconds


class ViewState:
    def __init__(self, id: int, name: str, parent: "ViewState | None"):
        self.id = id
        self.name = name
        self.parent = parent
        self.modules: list[Module] = []
        self.children: list[ViewState] = []
        self.handlers: dict[int, list] = {}
        self.dispatch: dict[int, tuple] = {}  # nr -> (handlers, any async, name)
        self.trap = b""
        self.program = None
        self.program_args = None      # what seccomp.build made program of
        self.notify: frozenset = frozenset()  # calls the C core can serve from a listener
        self.stat_in_c = False
        self.path_shim = frozenset()   # path calls the shim runs (see _push)
        self.programs: dict = {}       # filter programs by what they were built from (_push)
        self.net_shim = False          # the shim makes a port map's or a proxy's connects
        self.gadget = frozenset()      # calls the filters let through from the shim's gadget
        self.stats: dict = {}     # (module, syscall) -> ModuleStats
        self.processes = 0        # live processes in this view
        self.no_nesting = False
        self.transient = False    # made by a nested `umview`: goes away with its last process

    def chain(self):
        """Modules that serve this view, in the order they are asked."""
        v = self
        while v is not None:
            yield from reversed(v.modules)
            v = v.parent

    def lineage(self):
        v = self
        while v is not None:
            yield v
            v = v.parent

    def module(self, name):
        for m in self.modules:
            if m.name == name:
                return m
        return None


def _is_async(fn) -> bool:
    """inspect.iscoroutinefunction without importing inspect (~6 ms)."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    return code is not None and bool(code.co_flags & 0x80)  # CO_COROUTINE


class _Flag:
    """A one-shot event usable before trio is imported (the CLI's light pump
    sets them) and awaited under trio once it runs.  Set and awaited on the
    main thread only."""
    __slots__ = ("_set", "_ev")

    def __init__(self):
        self._set = False
        self._ev = None

    def set(self) -> None:
        self._set = True
        if self._ev is not None:
            self._ev.set()

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        if not self._set:
            import trio
            if self._ev is None:
                self._ev = trio.Event()
            await self._ev.wait()


class Hypervisor:
    def __init__(self, *, trap_all: bool = False, pin_cpu: int | None = None,
                 propagate_stop: bool = False):
        self.trap_all = trap_all
        self.pin_cpu = pin_cpu
        self.propagate_stop = propagate_stop
        # UMVIEW_DISPATCH=trio: serve plain handlers in the trio thread too
        # (the slower design, kept to measure against: docs/design.md).
        self.dispatch_in_trio = os.environ.get("UMVIEW_DISPATCH") == "trio"
        self.memory = TraceeMemory()
        self.views: dict[int, ViewState] = {}
        self._ended_stats: dict = {}  # the statistics of views that ended (total_stats)
        self.trace = None            # a Tracer, or None
        self._next_view = 1
        self._exit_status: dict[int, int] = {}
        self._exit_events: dict[int, _Flag] = {}
        self._evbuf = ffi.new("umv_event[256]")
        self._draining = False
        self._sysexit_waiters: dict[int, list] = {}
        self._last_kernel: dict[int, int] = {}
        self._allgone = _Flag()
        self.parent_of: dict[int, int] = {}  # pid -> parent pid, for killing a tree
        self._idle: dict[int, _Flag] = {}  # view id -> set when it has no process
        self._nursery = None
        self._token = None
        self._started = False
        self._pump_scope = None
        # Work for trio handed over by the tracer thread before trio runs
        # (see run_light); the lock orders it against attach().
        self._pending: list = []
        self._pending_lock = threading.Lock()
        self._wake_fd = -1
        self._exit_callbacks: dict = {}  # pid -> fn(wait status), run by the pump

    # ------------------------------------------------------------------
    # views and modules

    def new_view(self, name: str | None = None, parent: ViewState | None = None) -> ViewState:
        if self._next_view >= MAX_VIEWS:
            raise UmviewError("too many views")
        vid = self._next_view
        self._next_view += 1
        view = ViewState(vid, name or f"view{vid}", parent)
        if parent:
            parent.children.append(view)
        self.views[vid] = view
        self._push(view)
        return view

    def insmod(self, view: ViewState, module: Module) -> None:
        if view.module(module.name):
            raise ModuleError(f"module {module.name} is already loaded in view {view.name}")
        view.modules.append(module)
        module.view = view
        module._push = lambda: self._push(view)
        try:
            module.loaded(view)
            self._push(view)
        except Exception:
            view.modules.remove(module)
            self._push(view)
            raise

    def rmmod(self, view: ViewState, name: str) -> None:
        module = view.module(name)
        if module is None:
            raise ModuleError(f"module {name} is not loaded in view {view.name}")
        view.modules.remove(module)
        self._push(view)
        self._unload(module)

    @staticmethod
    def _unload(module: Module) -> None:
        try:
            module.unloaded()
        except Exception:
            log.exception("module %s raised while unloading", module.name)
        module._free_stat_table()

    def _maybe_retire(self, view: ViewState) -> None:
        """A nested view ends with its last process (and its modules with it)."""
        while view is not None and view.transient and view.processes <= 0 and not view.children:
            for module in reversed(view.modules):
                self._unload(module)
            view.modules.clear()
            self._forget_in_c(view)
            parent = view.parent
            if parent:
                parent.children.remove(view)
            self.views.pop(view.id, None)
            _merge_stats(self._ended_stats, view.stats)
            view = parent

    def _alone(self, view: ViewState, nrs):
        """The one module that serves all of the calls nrs in view, when
        nothing else must see them (tracing, the trio dispatch kept for
        measurements); else None."""
        served = [view.dispatch.get(nr) for nr in nrs]
        if not served or not all(served) or self.trace is not None or self.dispatch_in_trio:
            return None
        mods = {h[0] for hs, _, _ in served for h in hs}
        return mods.pop() if len(mods) == 1 else None

    def _push_stat_owner(self, view: ViewState, claims_of: dict) -> None:
        """Let the C core answer the view's stat calls (Claims.stat_owner)
        when one module alone serves all of them."""
        owner = self._alone(view, [nr for nr in _STAT_NRS if nr in view.dispatch])
        if owner is not None and claims_of[owner].stat_owner is None:
            owner = None
        view.stat_in_c = owner is not None
        if owner is None:
            lib.umv_view_set_statown(view.id, -1, ffi.NULL)
        else:
            cfg = ffi.new("uint32_t[7]", claims_of[owner].stat_owner.config())
            lib.umv_view_set_statown(view.id, owner.stat_table(), cfg)

    def _push_same_ids(self, view: ViewState, claims_of: dict) -> None:
        """Let programs answer their own identity calls (Claims.same_ids)."""
        owner = self._alone(view, _SAME_ID_NRS)
        ids = claims_of[owner].same_ids if owner is not None else None
        if ids is None:
            lib.umv_view_set_ids(view.id, 0, 0, 0)
        else:
            lib.umv_shm_fd()  # before the core publishes to it
            lib.umv_view_set_ids(view.id, 1, ids[0] & 0xFFFFFFFF, ids[1] & 0xFFFFFFFF)

    def _push_net(self, view: ViewState, claims_of: dict) -> None:
        """Let programs make the connects and getsocknames of a port map
        (Claims.connect_map), and blocking connects through a SOCKS5 proxy
        (Claims.socks5), themselves."""
        owner = self._alone(view, _PORT_MAP_NRS)
        pairs = [g << 16 | h for g, h in sorted(((claims_of[owner].connect_map if owner else None) or {}).items())]
        if len(pairs) > lib.UMV_SHM_PORTS:
            pairs = []   # more than the page holds: all through the module
        owner = self._alone(view, _SOCKS_NRS)
        socks = claims_of[owner].socks5 if owner is not None else None
        words = _socks_words(socks) if socks is not None else None
        view.net_shim = bool(pairs) or words is not None
        if view.net_shim:
            lib.umv_shm_fd()  # before the core publishes to it
        lib.umv_view_set_net(view.id, len(pairs), ffi.new("uint32_t[]", pairs) if pairs else ffi.NULL,
                             ffi.new("uint32_t[]", words) if words else ffi.NULL)

    def _forget_in_c(self, view: ViewState) -> None:
        """What the C core and the shim keep of a view that ends."""
        lib.umv_view_set_statown(view.id, -1, ffi.NULL)
        lib.umv_view_set_ids(view.id, 0, 0, 0)
        lib.umv_view_set_net(view.id, 0, ffi.NULL, ffi.NULL)
        lib.umv_view_set_paths(view.id, ffi.NULL, 0, ffi.NULL)   # and the fds of its passes

    def _push(self, view: ViewState) -> None:
        """Recompute what the view traps and who serves it; tell the C core.
        Child views see their parent's modules, so they follow."""
        claimed: set[str] = set()
        arg_in: dict[str, tuple[int, frozenset]] = {}
        unconditional: set[str] = set()
        no_vdso = False
        handlers: dict[int, list] = {}
        prefixes: list[str] | None = []
        bases: list[str] = []
        passes: list[tuple[str, str]] = []
        layers: list[str] = []
        listings: list[tuple[str, str]] = []
        paths_in_c = True
        exec_found = True        # every module claiming exec calls says Claims.exec_found
        exec_setid = True        # ... and Claims.exec_setid
        cwd_narrowed = True      # every module that claims getcwd has paths
        claims_of = {}
        for module in view.chain():
            c = claims_of[module] = module.claims()
            no_vdso |= c.no_vdso
            if c.syscalls & {"execve", "execveat"}:
                exec_found &= bool(c.exec_found)
                exec_setid &= bool(c.exec_setid)
            cwd_narrowed &= "getcwd" not in c.syscalls or c.paths is not None
            if any(BY_NAME[n].family == "path" for n in c.syscalls if n in BY_NAME):
                if c.paths is None or prefixes is None:
                    prefixes = None
                else:
                    prefixes += c.paths[0]
                    bases += c.paths[1]
                    passes += c.paths[2] if len(c.paths) > 2 else ()
                    layers += c.paths[3] if len(c.paths) > 3 else ()
                    listings += c.paths[4] if len(c.paths) > 4 else ()
                    paths_in_c &= bool(c.paths_in_c)
            for name in c.syscalls:
                row = BY_NAME.get(name)
                if row is None:
                    raise ModuleError(f"module {module.name} claims unknown syscall {name!r}")
                fn = getattr(module, row.method, None)
                if fn is None:
                    raise ModuleError(f"module {module.name} claims {name} but has no method {row.method}")
                handlers.setdefault(row.nr, []).append((module, fn, _is_async(fn)))
                claimed.add(name)
                if name in c.arg_nonzero and name not in unconditional:
                    idx = c.arg_nonzero[name]
                    if name in arg_in and arg_in[name] != (idx, None):
                        del arg_in[name]
                        unconditional.add(name)
                    else:
                        arg_in[name] = (idx, None)
                elif name in c.arg_in and name not in unconditional:
                    idx, vals = c.arg_in[name]
                    if name in arg_in and (arg_in[name][0] != idx or arg_in[name][1] is None):
                        del arg_in[name]
                        unconditional.add(name)
                    else:
                        arg_in[name] = (idx, frozenset(vals) | arg_in.get(name, (idx, frozenset()))[1])
                else:
                    unconditional.add(name)
                    arg_in.pop(name, None)
        # io_uring and friends would reach files and sockets behind the
        # modules' backs: refused as soon as a module claims such calls.
        deny_paths = any(BY_NAME[n].family in ("path", "fd", "net") for n in claimed)
        if self.trace is not None:
            for name in self.trace.extra:  # trapped to be shown, served by the kernel
                claimed.add(name)
                handlers.setdefault(BY_NAME[name].nr, [])
                if name not in unconditional:
                    arg_in.pop(name, None)
        # Where path calls are narrowed in C, the core keeps each process's
        # cwd as a path between calls (see dir_of in native/umvcore.c) and
        # must see every change of it: fchdir is trapped too, and resumed
        # by the core unless a module claims it.
        narrowed = prefixes is not None and any(BY_NAME[n].family == "path" for n in claimed)
        watch = {"fchdir"} if narrowed and self.trace is None else set()
        view.handlers = handlers
        # What the tracer thread looks up per call, resolved once here.
        view.dispatch = {nr: (hs, any(h[2] for h in hs), BY_NR[nr].name if nr in BY_NR else str(nr))
                         for nr, hs in handlers.items()}
        self._push_stat_owner(view, claims_of)
        self._push_same_ids(view, claims_of)
        self._push_net(view, claims_of)
        # Calls the C core answers from a seccomp listener in processes
        # spawned from now on (see native/umvcore.c, "seccomp user
        # notification"): the path calls it narrows, the stat calls it
        # answers; unconditional claims only.
        kept = list(_passes(passes, prefixes + layers, bases)) if prefixes is not None else []
        # a pass dropped (a mount inside it): its calls reach the module
        paths_in_c = paths_in_c and len(kept) == len(passes)
        notify = set()
        # the path calls the C core may resume as they are when their paths
        # lead outside (unconditional claims with a rule)
        narrowable = {n for n in claimed if n not in arg_in and BY_NAME[n].nr < 1024
                      and _PATH_RULES[_RULE_INTS * BY_NAME[n].nr + 4] > 0} \
            if prefixes is not None and self.trace is None and not self.trap_all else set()
        if self.trace is None and not self.trap_all and os.environ.get("UMVIEW_NOTIF") != "0":
            if prefixes is not None and paths_in_c:
                notify |= narrowable
                notify |= {n for n in watch if n not in arg_in}
            if view.stat_in_c:
                notify |= {n for n in claimed if n not in arg_in and BY_NAME[n].nr in _STAT_NRS}
        view.notify = frozenset(notify)
        # The path calls the shim may judge and run inside the program (see
        # native/umvshm.h): those the core would resume as they are when
        # their paths lead outside every mount.  Whether the rest come as
        # ptrace stops or from the listener does not matter to the shim: a
        # view with a cow or archive mount gets it too.
        view.path_shim = frozenset(n for n in seccomp.PATH_CALLS if n in narrowable)
        if view.path_shim and cwd_narrowed and "getcwd" in claimed and "getcwd" not in arg_in:
            # its answer is a path: outside every prefix, base and pass it
            # is the kernel's (Claims.paths)
            view.path_shim |= {"getcwd"}
        view.gadget = frozenset(seccomp.STAT_CALLS if view.stat_in_c else ()) | \
            (view.path_shim | frozenset(seccomp.PATH_HELPERS) if view.path_shim else frozenset()) | \
            frozenset(seccomp.NET_CALLS if view.net_shim else ())
        args = (claimed | watch, arg_in, dict(deny_paths=deny_paths, trap_all=self.trap_all, gadget=view.gadget))
        # A module's reclaim often asks for a program built before (vfs, when
        # a program first opens an overlay's root): 0.4 ms a build here.
        key = (frozenset(args[0]), frozenset(args[1].items()), tuple(sorted(args[2].items())))
        prog = view.programs.get(key)
        if prog is None:
            if len(view.programs) >= 64:
                view.programs.clear()
            prog = view.programs[key] = seccomp.build(args[0], args[1], **args[2])
        claims_bm = bytes(seccomp.bitmap(BY_NAME[n].nr for n in claimed))
        flags = (VIEW_NO_VDSO if no_vdso else 0) | \
            (lib.UMV_VIEW_EXEC_FOUND if exec_found and self.trace is None else 0) | \
            (lib.UMV_VIEW_EXEC_SETID if exec_setid and self.trace is None else 0)
        widens = not view.trap or any(n & ~o for n, o in zip(prog.trap, view.trap))
        if widens:
            view.trap = bytes(a | b for a, b in zip(prog.trap, view.trap or bytes(len(prog.trap))))
            view.program = prog
            view.program_args = args
            blob = prog.blob()
            lib.umv_view_set(view.id, claims_bm, flags, blob, len(prog))
        else:
            lib.umv_view_set(view.id, claims_bm, flags, ffi.NULL, 0)
        if prefixes is None or self.trace is not None:
            lib.umv_view_set_paths(view.id, ffi.NULL, 0, ffi.NULL)
        else:
            blob = b"".join(b"C" + os.fsencode(p) + b"\0" for p in prefixes) + \
                b"".join(b"B" + os.fsencode(p) + b"\0" for p in bases) + \
                b"".join(b"D" + os.fsencode(p) + b"\0" for p in layers) + \
                b"".join((b"P" if len(dirs) == 2 else b"O") + b"".join(os.fsencode(d) + b"\0" for d in dirs)
                         for dirs in kept) + \
                b"".join(b"V" + os.fsencode(h) + b"\0W" + os.fsencode(g) + b"\0" for h, g in listings)
            calls = ffi.NULL
            if view.path_shim and _shim_path() is not None:
                # and execve when the core resumes it as it is outside: the
                # shim's execvp skips the $PATH entries that lack the file
                # (the call itself is never made through the gadget)
                shim_calls = view.path_shim | ({"execve"} & narrowable)
                calls = bytes(seccomp.bitmap(BY_NAME[n].nr for n in shim_calls))[:lib.UMV_SHM_CALLS // 8]
                lib.umv_shm_fd()  # before the core publishes to it
            lib.umv_view_set_paths(view.id, blob, len(blob), calls)
        for child in view.children:
            self._push(child)

    # ------------------------------------------------------------------
    # running

    async def start(self, nursery) -> None:
        """Start the core and serve it from trio (scripts, tests, the CLI
        when a module needs an event loop)."""
        self.start_core()
        self.attach(nursery)

    def start_core(self) -> None:
        """Start the C tracer thread.  Until attach() the events wait in the
        core's queue (or are served by run_light)."""
        if self._started:
            return
        global _current
        if _current is not None and _current is not self:
            raise UmviewError("one hypervisor per process")
        check(lib.umv_init(), "umv_init")
        lib.umv_set_path_rules(ffi.from_buffer("int32_t[]", _PATH_RULES), len(_PATH_RULES) // _RULE_INTS)
        # forks and exits wait in the core's queue unless someone waits for
        # them (_watch); a trace prints them in order with the calls
        lib.umv_set_flags(lib.UMV_REPORT_SIGNALS if self.trace is not None else lib.UMV_LAZY_EVENTS)
        if self.pin_cpu is not None:
            for tid in os.listdir("/proc/self/task"):
                os.sched_setaffinity(int(tid), {self.pin_cpu})
        _current = self
        self._started = True

    def attach(self, nursery) -> None:
        """Hand the pump, and the work the tracer thread queued before trio
        ran, to trio."""
        import trio
        self._nursery = nursery
        self._pump_scope = trio.CancelScope()
        with self._pending_lock:
            self._token = trio.lowlevel.current_trio_token()
            pending, self._pending = self._pending, []
        for fn, args in pending:
            nursery.start_soon(fn, *args)
        nursery.start_soon(self._pump)

    def needs_loop(self, modules=()) -> bool:
        """Whether trio must run from the start: for tracing, or for a module
        (loaded, or in modules, about to be) that starts trio tasks of its
        own when loaded (Module.needs_loop).  Async handlers do not need it:
        their first call is queued and starts trio (see run_light)."""
        if self.trace is not None or self.dispatch_in_trio:
            return True
        loaded = [m for v in self.views.values() for m in v.modules]
        return any(m.needs_loop for m in [*loaded, *modules])

    def run_light(self) -> bool:
        """Serve the core without trio while nothing needs it: the common
        `umview CMD` never imports trio (about 100 ms of start-up).  Returns
        True when every process is gone, False as soon as the tracer thread
        has queued work for trio (a virtual syscall, an async handler): the
        caller then starts trio and attach() takes over from here."""
        import select
        self._wake_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            poller = select.poll()
            poller.register(lib.umv_event_fd(), select.POLLIN)
            poller.register(self._wake_fd, select.POLLIN)
            buf = ffi.new("umv_event[256]")
            while not self._allgone.is_set():
                if self._pending:
                    return False
                try:
                    poller.poll()
                except InterruptedError:
                    pass
                self._drain(buf)
            return True
        finally:
            with self._pending_lock:
                os.close(self._wake_fd)
                self._wake_fd = -1

    def _to_trio(self, fn, *args) -> None:
        """From the tracer thread: run fn(*args) as a trio task, now or when
        trio starts."""
        with self._pending_lock:
            if self._token is None:
                self._pending.append((fn, args))
                if self._wake_fd >= 0:
                    os.eventfd_write(self._wake_fd, 1)
                return
        self._token.run_sync_soon(self._nursery.start_soon, fn, *args)

    async def spawn(self, view: ViewState, argv: list[str], env: dict | None = None,
                    cwd: str | None = None, stdio=(-1, -1, -1)) -> int:
        """Start argv in view; returns its pid."""
        return self.spawn_now(view, argv, env, cwd, stdio)

    def spawn_now(self, view: ViewState, argv: list[str], env: dict | None = None,
                  cwd: str | None = None, stdio=(-1, -1, -1)) -> int:
        """spawn(), callable without trio."""
        if not argv:
            raise UmviewError("no command")
        env = dict(os.environ if env is None else env)
        if view.stat_in_c or view.path_shim or view.net_shim:
            _with_shim(env)
        path = argv[0]
        if "/" not in path:
            # looked up in the view: a module may show other directories
            for d in env.get("PATH", os.defpath).split(":"):
                cand = os.path.join(d or ".", path)
                host = self.host_path(view, cand)
                if os.path.isfile(host) and os.access(host, os.X_OK):
                    path = cand
                    break
            else:
                raise UmviewError(f"{path}: command not found", status=127)
        view_cwd = os.getcwd() if cwd is None else os.path.normpath(os.path.join(os.getcwd(), cwd))
        if cwd is not None:
            host_cwd = self.host_path(view, view_cwd)
            if not os.path.isdir(host_cwd):
                raise UmviewError(f"{cwd}: no such directory in the view", status=2)
            cwd = host_cwd
        prog = view.program
        code = prog.code()
        ncode, nlen = ffi.NULL, 0
        if view.notify:
            # The view's program with the listener's calls in it, installed
            # in place of the view's (one filter for each call to run, see
            # seccomp.py); the child falls back to the view's own when the
            # kernel gives it no listener.  Its sendmsg, which hands the
            # listener over, must not wait for that listener.  A call the
            # shim makes is let through only where both would have.
            claimed, arg_in, kw = view.program_args
            kw = dict(kw, gadget=frozenset(seccomp.gadget_names(kw["gadget"])) & view.gadget)
            nprog = seccomp.build(claimed, arg_in, **kw, notify=view.notify - {"sendmsg"})
            ncode, nlen = nprog.blob(), len(nprog)  # the code, then the bitmap of its calls
        c_argv = [ffi.new("char[]", os.fsencode(a)) for a in argv]
        c_env = [ffi.new("char[]", os.fsencode(f"{k}={v}")) for k, v in env.items()]
        argv_arr = ffi.new("char *[]", c_argv + [ffi.NULL])
        env_arr = ffi.new("char *[]", c_env + [ffi.NULL])
        reset = ffi.new("int[]", [int(s) for s in RESET_SIGNALS])
        c_cwd = ffi.new("char[]", os.fsencode(cwd)) if cwd else ffi.NULL
        pid = lib.umv_spawn(os.fsencode(path), argv_arr, env_arr, c_cwd, code, len(prog), ncode, nlen, view.id,
                            -1 if self.pin_cpu is None else self.pin_cpu, reset, len(RESET_SIGNALS),
                            ffi.new("int[3]", list(stdio)))
        if pid < 0:
            status = 126 if -pid in (errno.EACCES, errno.ENOEXEC, errno.EISDIR) else 127
            raise UmviewError(f"{argv[0]}: {os.strerror(-pid)}", status=status)
        self._allgone = _Flag() if self._allgone.is_set() else self._allgone
        view.processes += 1
        for module in view.chain():
            # before the program can make a call that reaches Python: this
            # runs in the trio thread, which serves those calls
            try:
                module.started(pid, view_cwd)
            except Exception:
                log.exception("module %s: started() raised", module.name)
        self._exit_events.setdefault(pid, _Flag())
        self.parent_of[pid] = os.getpid()
        # its exit wakes us; not drained here: the caller registers what it
        # waits with (on_exit, wait) before any event of pid is taken in
        lib.umv_watch_exit(pid)
        return pid

    def host_path(self, view: ViewState, path: str) -> str:
        """Where a view path is on the host, as the view's modules say."""
        for module in view.chain():
            host = module.resolve_host(path)
            if host is not None:
                return host
        return path

    async def wait(self, pid: int) -> int:
        """The wait status of pid (as os.waitpid gives it): pid must have been
        spawned by us, or be alive when wait() is called."""
        ev = self._exit_events.setdefault(pid, _Flag())
        self._watch(pid)
        await ev.wait()
        del self._exit_events[pid]
        return self._exit_status.pop(pid)

    def on_exit(self, pid: int, fn) -> None:
        """Call fn(wait status) from the pump when pid exits."""
        self._exit_callbacks[pid] = fn
        self._watch(pid)

    async def wait_all(self) -> None:
        await self._allgone.wait()

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        if self._started:
            lib.umv_kill_all(sig)

    def kill_view(self, view: ViewState, sig: int = signal.SIGKILL) -> None:
        """Kill the processes of view and of the views nested in it."""
        if self._started:
            for child in list(view.children):
                self.kill_view(child, sig)
            lib.umv_kill_view(view.id, sig)

    async def kill_tree(self, pid: int, sig: int = signal.SIGKILL) -> None:
        """Kill pid and every process descended from it (as far as we saw
        them being born), and wait for them to be gone."""
        self._drain(self._evbuf)   # the forks the core has not told yet
        tree = {pid}
        grew = True
        while grew:
            grew = False
            for child, parent in list(self.parent_of.items()):
                if parent in tree and child not in tree:
                    tree.add(child)
                    grew = True
        alive = [p for p in tree if p in self.parent_of]
        for p in alive:
            self._exit_events.setdefault(p, _Flag())
        for p in alive:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        for p in alive:
            await self.wait(p)

    async def view_idle(self, view: ViewState) -> None:
        """Wait until view and the views nested in it have no process left."""
        for child in list(view.children):
            await self.view_idle(child)
        self._drain(self._evbuf)   # the exits the core keeps (the last one wakes us)
        while view.processes > 0:
            ev = self._idle.setdefault(view.id, _Flag())
            await ev.wait()

    def retire(self, view: ViewState) -> None:
        """Forget a view made by a script once its processes are gone."""
        view.transient = True
        self._maybe_retire(view)

    def shutdown(self) -> None:
        global _current
        for view in list(self.views.values()):
            for module in reversed(view.modules):
                self._unload(module)
            view.modules.clear()
            self._forget_in_c(view)
        if self._started:
            from .bridge import stats
            log.debug("core statistics: %s", stats())
            if self._token is not None:
                import trio
                try:
                    # the pump may not have seen its cancellation yet: it must
                    # not find its fd closed under it (trio would fail inside)
                    trio.lowlevel.notify_closing(lib.umv_event_fd())
                except RuntimeError:  # not inside trio.run
                    pass
            lib.umv_shutdown()
            self._started = False
            _current = None

    # ------------------------------------------------------------------
    # the pump

    async def _pump(self) -> None:
        import trio
        fd = lib.umv_event_fd()
        buf = ffi.new("umv_event[256]")
        with self._pump_scope:
            # shutdown() may come while the pump is woken but has not run yet
            # (another task drained the queue meanwhile: _watch, view_idle):
            # then no wait is there for notify_closing to end, and the fd must
            # not be waited on again once it is closed (trio would fail inside)
            while self._started:
                try:
                    await trio.lowlevel.wait_readable(fd)
                except trio.ClosedResourceError:  # shutdown()
                    return
                self._drain(buf)

    def _drain(self, buf) -> None:
        if self._draining:
            return   # called back from an event: the loop below goes on
        self._draining = True
        try:
            while True:
                n = lib.umv_get_events(buf, 256)
                if n == 0:
                    return
                for i in range(n):
                    self._event(buf[i])
        finally:
            self._draining = False

    def _watch(self, pid: int) -> None:
        """Have the core wake us when pid exits, and take in the events it
        queued before (pid may have exited already)."""
        lib.umv_watch_exit(pid)
        self._drain(self._evbuf)

    def stop_pump(self) -> None:
        if self._pump_scope is not None:
            self._pump_scope.cancel()

    def _event(self, ev) -> None:
        kind = ev.kind
        if kind == EV_SYSEXIT:
            waiter = self._sysexit_waiters.pop(ev.tid, None)
            if waiter:
                waiter[1] = ev.retval
                waiter[0].set()
            else:
                lib.umv_reply(ev.tid, ACT_CONT, 0, 0, ffi.NULL)
        elif kind == EV_EXIT:
            self.parent_of.pop(ev.pid, None)
            view = self.views.get(ev.view)
            if view:
                view.processes -= 1
                if view.processes <= 0 and view.id in self._idle:
                    self._idle.pop(view.id).set()
                self._maybe_retire(view)
            self._last_kernel.pop(ev.pid, None)
            waiter = self._exit_events.get(ev.pid)
            if waiter is not None:  # only processes someone waits for
                self._exit_status[ev.pid] = ev.retval
                waiter.set()
            if self.trace is not None:
                self.trace.exit_line(ev.pid, ev.retval)
            callback = self._exit_callbacks.pop(ev.pid, None)
            if callback is not None:
                callback(ev.retval)
            for tid, waiter in list(self._sysexit_waiters.items()):
                if waiter[2] == ev.pid:
                    del self._sysexit_waiters[tid]
                    waiter[1] = -errno.ESRCH
                    waiter[0].set()
        elif kind == EV_ALLGONE:
            self._allgone.set()
        elif kind == EV_GROUPSTOP:
            if self.propagate_stop:
                # The program was stopped from the terminal: stop ourselves
                # too, so that the shell that started umview sees a stopped
                # job; its SIGCONT (fg/bg) reaches both of us.
                os.kill(os.getpid(), signal.SIGSTOP)
        elif kind == EV_FORK:
            self.parent_of[ev.pid] = ev.data
            view = self.views.get(ev.view)
            if view:
                view.processes += 1
        elif kind == EV_SIGNAL:
            if self.trace is not None:
                self.trace.signal_line(ev.pid, ev.data)
        elif kind == EV_LOG:
            log.warning("could not widen the seccomp filter of process %d: "
                        "calls claimed after it started may run unseen", ev.pid)

    def _reply(self, call: Call, result, at_exit: bool) -> None:
        if at_exit:
            if result is None:
                lib.umv_reply(call.tid, ACT_CONT, 0, 0, ffi.NULL)
            else:
                lib.umv_reply(call.tid, ACT_SET_RESULT, result, 0, ffi.NULL)
        elif result is None:
            lib.umv_reply(call.tid, ACT_CONT, 0, 0, ffi.NULL)
        else:
            lib.umv_reply(call.tid, ACT_SKIP, result, 0, ffi.NULL)

    def _on_syscall(self, ev, value_ptr) -> int:
        """Runs on the C tracer thread (see umv_py_syscall below).  Plain
        handlers answer here; async ones and virtual syscalls are handed to
        the trio thread and answered there with umv_reply()."""
        if ev.data == seccomp.DATA_VSYS:
            self._to_trio(self._vsys, ev.tid, ev.pid, ev.view, list(ev.args))
            return ACT_DEFER
        view = self.views.get(ev.view)
        entry = view.dispatch.get(ev.nr) if view is not None else None
        if entry is None:
            return ACT_CONT
        # This is the hot path of every call served in Python: no helper
        # calls, lookups hoisted (docs/design.md has the per-call costs).
        handlers, has_async, name = entry
        call = Call(ev.nr, name, ev.args, ev.tid, ev.pid, view, self.memory, self._run_in_kernel, ev.sp)
        if has_async or self.dispatch_in_trio or self.trace is not None:
            self._to_trio(self._serve_async, call, handlers)
            return ACT_DEFER
        call._handlers = handlers
        stats = view.stats
        perf = time.perf_counter
        i = 0
        for module, fn, _ in handlers:
            call._pos = i
            i += 1
            t0 = perf()
            try:
                result = fn(call)
            except SyscallError as exc:
                self._account(view, module, call, t0, True)
                value_ptr[0] = -exc.errno
                return ACT_SKIP
            except Exception:
                self._module_bug(view, module, call, t0, reply=False)
                value_ptr[0] = -errno.EIO
                return ACT_SKIP
            dt = perf() - t0
            st = stats.get((module.name, name))
            if st is None:
                st = stats[(module.name, name)] = ModuleStats()
            st.calls += 1
            st.seconds += dt
            if result is not None:
                if type(result) is Later:
                    self._to_trio(self._serve_later, call, module, result.awaitable)
                    return ACT_DEFER
                value_ptr[0] = int(result)
                return ACT_SKIP
            # A rewritten call (a path moved by a file system) goes on down
            # the stack as rewritten: fakeroot then fakes the owner of the
            # file the path now names.
        if call.rewritten:
            ev.nr = call.nr
            for j in range(6):
                ev.args[j] = call.args[j]
            return ACT_REWRITE
        return ACT_CONT

    async def _serve_async(self, call: Call, handlers) -> None:
        view = call.view
        call._handlers = handlers
        trace = self.trace
        shown = trace.format_args(call) if trace else None  # as at entry
        kernel_result = None
        for i, (module, fn, is_async) in enumerate(handlers):
            t0 = time.perf_counter()
            call._pos = i
            try:
                result = await fn(call) if is_async else fn(call)
            except SyscallError as exc:
                self._account(view, module, call, t0, True)
                self._reply(call, -exc.errno, call.ran)
                if trace and trace.wants(call.name, module.name):
                    trace.call_line(call, -exc.errno, module.name, shown)
                return
            except Exception:
                self._module_bug(view, module, call, t0)
                if trace and trace.wants(call.name, module.name):
                    trace.call_line(call, -errno.EIO, module.name, shown)
                return
            self._account(view, module, call, t0, False)
            if result is not None or call.ran:
                self._reply(call, None if result is None else int(result), call.ran)
                if trace and trace.wants(call.name, module.name):
                    final = int(result) if result is not None else self._last_kernel.get(call.tid, 0)
                    trace.call_line(call, final, module.name, shown)
                return
        if call.rewritten and not call.ran:
            # run it rewritten; the exit (no waiter) restores the arguments
            c_args = ffi.new("uint64_t[6]", call.args[:6])
            lib.umv_reply(call.tid, ACT_RUN_EXIT, 0, call.nr, c_args)
            if trace and trace.wants(call.name, "kernel"):
                trace.call_line(call, 0, "kernel", shown)
            return
        if trace and trace.wants(call.name, "kernel"):
            t0 = time.perf_counter()
            kernel_result = await call.kernel()
            self._account(view, _KERNEL, call, t0, kernel_result < 0)
            self._reply(call, None, True)
            trace.call_line(call, kernel_result, "kernel", shown)
            return
        self._reply(call, None, False)

    async def _serve_later(self, call: Call, module: Module, awaitable) -> None:
        """The rest of a plain handler's call (Call.later), as a trio task."""
        t0 = time.perf_counter()
        try:
            result = await awaitable
        except SyscallError as exc:
            self._account(call.view, module, call, t0, True)
            self._reply(call, -exc.errno, call.ran)
            return
        except Exception:
            self._module_bug(call.view, module, call, t0)
            return
        self._account(call.view, module, call, t0, False)
        if result is None and call.rewritten and not call.ran:
            c_args = ffi.new("uint64_t[6]", call.args[:6])
            lib.umv_reply(call.tid, ACT_RUN_EXIT, 0, call.nr, c_args)
            return
        self._reply(call, None if result is None else int(result), call.ran)

    async def _run_in_kernel(self, call: Call, nr: int, args) -> int:
        waiter = [_Flag(), None, call.pid]
        self._sysexit_waiters[call.tid] = waiter
        c_args = ffi.new("uint64_t[6]", [a & 0xFFFFFFFFFFFFFFFF for a in (list(args) + [0] * 6)[:6]])
        lib.umv_reply(call.tid, ACT_RUN_EXIT, 0, nr, c_args)
        await waiter[0].wait()
        self._last_kernel[call.tid] = waiter[1]
        return waiter[1]

    def _account(self, view, module, call, t0, failed) -> None:
        dt = time.perf_counter() - t0
        key = (module.name, call.name)
        st = view.stats.get(key)
        if st is None:
            st = view.stats[key] = ModuleStats()
        st.calls += 1
        st.errors += failed
        st.seconds += dt

    @property
    def total_stats(self) -> dict:
        """(module, syscall) -> ModuleStats over every view, ended ones too."""
        total: dict = {}
        for table in [self._ended_stats, *(v.stats for v in self.views.values())]:
            _merge_stats(total, table)
        return total

    def _module_bug(self, view, module, call, t0, reply=True) -> None:
        self._account(view, module, call, t0, True)
        log.exception("module %s raised serving %s for pid %d; the program gets EIO",
                      module.name, call.name, call.pid)
        if reply:
            self._reply(call, -errno.EIO, call.ran)

    # ------------------------------------------------------------------
    # virtual syscalls: arg0/arg1 = JSON request, arg2/arg3 = answer buffer

    async def _vsys(self, tid, pid, view_id, args) -> None:
        try:
            req_ptr, req_len, out_ptr, out_len = args[:4]
            if req_len > 1 << 20:
                raise SyscallError(errno.E2BIG)
            import json
            req = json.loads(self.memory.read(tid, req_ptr, req_len))
            if not isinstance(req, dict):
                raise SyscallError(errno.EINVAL)
            op = req.get("op")
            fn = getattr(self, f"_op_{op}", None) if isinstance(op, str) else None
            if fn is None:
                raise SyscallError(errno.EINVAL)
            view = self.views[view_id]
            try:
                answer = await fn(view, pid, req)
            except UmviewError as exc:
                answer = {"error": str(exc)}
            data = json.dumps(answer).encode()
            if len(data) > out_len:
                raise SyscallError(errno.ERANGE)
            self.memory.write(tid, out_ptr, data)
            lib.umv_reply(tid, ACT_SKIP, len(data), 0, ffi.NULL)
        except SyscallError as exc:
            lib.umv_reply(tid, ACT_SKIP, -exc.errno, 0, ffi.NULL)
        except (ValueError, KeyError, TypeError):
            lib.umv_reply(tid, ACT_SKIP, -errno.EINVAL, 0, ffi.NULL)
        except Exception:
            log.exception("virtual syscall from pid %d failed", pid)
            lib.umv_reply(tid, ACT_SKIP, -errno.EIO, 0, ffi.NULL)

    async def _op_ping(self, view, pid, req):
        return {"view": view.id, "name": view.name, "hypervisor": os.getpid()}

    async def _op_insmod(self, view, pid, req):
        from .. import registry

        view = self._target(view, req)
        name = req["module"]
        options = {str(k).replace("-", "_"): str(v) for k, v in dict(req.get("options", {})).items()}
        module = registry.instantiate(name, options)
        self.insmod(view, module)
        return {"ok": True, "view": view.name}

    async def _op_rmmod(self, view, pid, req):
        view = self._target(view, req)
        self.rmmod(view, req["module"])
        return {"ok": True, "view": view.name}

    async def _op_nest(self, view, pid, req):
        """A `umview` started inside a view: the caller moves into a new child
        view (then execs its command there)."""
        from .. import registry

        for v in view.lineage():
            if v.no_nesting:
                raise UmviewError(f"view {v.name} does not allow nested views (-x)")
        modules = [registry.instantiate(str(name), {str(k).replace("-", "_"): str(val)
                                                    for k, val in dict(opts).items()})
                   for name, opts in req.get("modules", [])]
        child = self.new_view(req.get("name") or None, parent=view)
        child.transient = True
        child.no_nesting = bool(req.get("no_nesting"))
        try:
            for module in modules:
                self.insmod(child, module)
            check(lib.umv_set_process_view(pid, child.id), "umv_set_process_view")
        except BaseException:
            self._maybe_retire(child)
            raise
        view.processes -= 1
        child.processes += 1
        return {"ok": True, "view": child.name, "id": child.id}

    def _target(self, view, req):
        """The view a request names: the caller's own, or one nested in it."""
        vid = req.get("view")
        if vid is None:
            return view
        target = self.views.get(int(vid))
        if target is None or view not in list(target.lineage()):
            raise UmviewError(f"no view {vid} below view {view.name}")
        return target

    async def _op_newview(self, view, pid, req):
        """A script inside a view makes a child view to run commands in."""
        parent = self._target(view, req)
        for v in parent.lineage():
            if v.no_nesting:
                raise UmviewError(f"view {v.name} does not allow nested views (-x)")
        child = self.new_view(req.get("name") or None, parent=parent)
        return {"ok": True, "view": child.name, "id": child.id}

    async def _op_join(self, view, pid, req):
        """Move the calling process into a view nested in its own."""
        target = self._target(view, req)
        check(lib.umv_set_process_view(pid, target.id), "umv_set_process_view")
        view.processes -= 1
        target.processes += 1
        return {"ok": True, "view": target.name, "id": target.id}

    async def _op_dropview(self, view, pid, req):
        target = self._target(view, req)
        if target is view:
            raise UmviewError("a view cannot drop itself")
        self.kill_view(target)
        self.retire(target)
        return {"ok": True}

    async def _op_stats(self, view, pid, req):
        target = self._target(view, req)
        return {"stats": [[m, sc, st.calls, st.errors, st.seconds]
                          for (m, sc), st in target.stats.items()]}

    async def _op_command(self, view, pid, req):
        """An in-view command for a module of the caller's view (loaded there
        first when `autoload` says so and it is not)."""
        from .. import registry

        view = self._target(view, req)
        name = str(req["module"])
        module = view.module(name)
        if module is None:
            if not req.get("autoload"):
                raise ModuleError(f"module {name} is not loaded in view {view.name}")
            module = registry.instantiate(name, {})
            self.insmod(view, module)
        answer = module.command(str(req["name"]), dict(req.get("args") or {}), pid)
        return answer

    async def _op_lsmod(self, view, pid, req):
        view = self._target(view, req)
        return {"views": [
            {"id": v.id, "name": v.name,
             "modules": [{"name": m.name, "description": m.description, "options": m.describe()}
                         for m in v.modules]}
            for v in view.lineage()]}


_current: Hypervisor | None = None


def _under(path: str, top: str) -> bool:
    return top == "/" or path == top or path.startswith(top + "/")


def _passes(passes, prefixes, bases):
    """The passes that stay true with every module's prefixes: nothing else
    of the view (another mount, a module's own directory) at or below the
    guest directory or the host directory, and neither is the root."""
    for dirs in passes:   # (guest, host), or (guest, upper, lower): an overlay
        others = list(prefixes) + list(bases)
        for own in dirs:
            if own in others:
                others.remove(own)
        if "/" in dirs or not all(d.startswith("/") for d in dirs):
            continue
        if any(_under(o, d) for o in others for d in dirs):
            continue
        yield tuple(dirs)


# Path calls the C core may run on a pass's host path (see Claims.paths):
# those that only name a file.  chdir stays with Python (it remembers the
# view's cwd), as do statfs (a tmpfs's size), watches and openat2 (its
# RESOLVE_* flags).
_PASS_METHODS = frozenset(("open", "stat", "access", "readlink", "getxattr", "listxattr",
                           "setxattr", "removexattr", "mkdir", "mknod", "unlink", "rename",
                           "link", "symlink", "chmod", "chown", "truncate", "utimens"))
_RULE_INTS = 15
# Calls that change an fd's own file: a module that narrows its path calls
# (Claims.paths) gets them only for files it serves (a cow mount's lower
# layer, a read-only mount...).
_FD_FILE_CALLS = frozenset(("fchmod", "fchown", "fsetxattr", "fremovexattr"))


def _path_rules():
    """Per syscall number: where its paths and their dirfds are, and
    whether its first path's last symlink is followed, and where the output
    of a call that only reads goes (READS; -2: not such a call), for the C fast path
    (see umv_set_path_rules).  Calls whose path arguments mean more than a
    file to look up stay with Python: mount and umount.  An exec is checked
    with its #! or ELF interpreter (exec_outside in C)."""
    from array import array
    out = array("i", [-1, -1, -1, -1, 0, 0, 1, -1, 0, -2, 0, -1, -1, 0, -1] * 1024)
    for row in BY_NR.values():
        if row.nr < 1024 and row.name in _FD_FILE_CALLS:
            # a call on an fd's own file: resumed in C unless the file is
            # the view's business (see fd_class in native/umvcore.c)
            out[_RULE_INTS * row.nr + 4] = 1
            out[_RULE_INTS * row.nr + 14] = row.fd_args[0]
            continue
        if row.family != "path" or row.nr >= 1024 or row.method in ("mount", "umount"):
            continue
        paths = row.path_args[:2]
        if len(row.path_args) > 2:
            continue
        rec = []
        for i in (0, 1):
            if i < len(paths):
                p = paths[i]
                d = p - 1 if p > 0 and row.args[p - 1] == "dirfd" else -1
                rec += [p, d]
            else:
                rec += [-1, -1]
        flags = row.args.index("flags") if "flags" in row.args else -1
        fmode, fmask = 1, 0  # follows, or we cannot tell: the safe side
        if row.follow == "no":
            fmode = 0
        elif row.follow == "flag" and row.method == "open" and row.name != "openat2":
            fmode = 4
        elif row.follow == "flag" and row.name == "linkat":
            fmode, fmask = 3, 0x400  # AT_SYMLINK_FOLLOW
        elif row.follow == "flag" and flags >= 0 and "AT_SYMLINK_NOFOLLOW" in row.notes:
            fmode, fmask = 2, 0x100
        passes = row.method in _PASS_METHODS and row.name != "openat2"
        out[_RULE_INTS * row.nr:_RULE_INTS * (row.nr + 1)] = \
            array("i", rec + [1, int(passes), fmode, flags, fmask, *READS.get(row.name, (-2, 0, -1, -1)),
                              int(row.method == "execve"), -1])
    return out


_PATH_RULES = _path_rules()


class _Kernel:
    """Stands for the kernel in statistics of traced calls no module served."""

    name = "kernel"


_KERNEL = _Kernel()


@ffi.def_extern(error=lib.UMV_ACT_CONT)
def umv_py_syscall(ev, value_ptr):
    hv = _current
    if hv is None:
        return ACT_CONT
    try:
        return hv._on_syscall(ev, value_ptr)
    except BaseException:  # never let an exception cross into C
        log.exception("internal error serving a system call")
        value_ptr[0] = -errno.EIO
        return ACT_SKIP
