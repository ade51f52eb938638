"""`umview [OPTIONS] [--] [COMMAND [ARG...]]`: run COMMAND in a new view."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from . import __version__, registry
from .errors import ModuleError, UmviewError

EXAMPLES = """\
examples:
  umview bash                              a shell in an empty view
  umview -p misc,release=9.9.9 -- uname -r a fake kernel release
  umview --hostname box -- hostname        the same module, short spelling
  umview --time-offset -86400 -- date      yesterday, for this command only
  umview -S -- ls                          trap every call (debugging, comparison)
  umview -b ~/src:/src --tmpfs /tmp -- make -C /src   a bind mount and a private /tmp
  umview --mount type=cow,source=.,target=/w -w /w -- git commit -a   changes go to memory
  inside a view:  umview-insmod misc hostname=box; umview-lsmod; umview-rmmod misc
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UmviewError(f"{message} (see umview --help)")


def _module_flags():
    """Long options that modules declare (Option.cli): flag -> (module, key, Option)."""
    flags = {}
    for name in sorted(registry.available()):
        try:
            cls = registry.load_class(name)
        except ModuleError as exc:
            logging.getLogger("umview").warning("%s", exc)
            continue
        for key, opt in cls.options.items():
            if opt.cli:
                flags[opt.cli] = (name, key, opt)
    return flags


class _MountAction(argparse.Action):
    """Mount options, kept in command-line order: later mounts go on top."""

    def __call__(self, parser, ns, value, option_string=None):
        mounts = getattr(ns, "vfs_mounts", None) or []
        mounts.append(_mount_spec(self.dest, value))
        ns.vfs_mounts = mounts


def _mount_spec(kind: str, value: str) -> list:
    if kind in ("bind", "ro_bind"):
        host, sep, guest = value.partition(":")
        if not host:
            raise UmviewError(f"--{kind.replace('_', '-')} wants HOST[:GUEST], not {value!r}")
        host = os.path.abspath(os.path.expanduser(host))
        return ["bind", host, guest or host, {"ro": ""} if kind == "ro_bind" else {}]
    if kind == "tmpfs":
        return ["tmpfs", "", value, {}]
    if kind == "hide":
        return ["hide", "", value, {}]
    if kind == "root":
        return ["bind", os.path.abspath(value), "/", {}]
    fields = {}
    for item in value.split(","):
        key, sep, val = item.partition("=")
        key = {"src": "source", "dst": "target", "destination": "target", "readonly": "ro"}.get(key, key)
        if not key or (not sep and key != "ro"):
            raise UmviewError(f"--mount: {item!r} is not KEY=VALUE (in {value!r})")
        fields[key] = val
    if "type" not in fields or "target" not in fields:
        raise UmviewError(f"--mount needs type= and target= (in {value!r})")
    type_, source, target = fields.pop("type"), fields.pop("source", ""), fields.pop("target")
    if source and type_ in ("bind", "cow", "archive"):
        source = os.path.abspath(os.path.expanduser(source))
    elif source and type_ == "merge":
        source = ":".join(os.path.abspath(os.path.expanduser(s)) for s in source.split(":"))
    if "upper" in fields:
        fields["upper"] = os.path.abspath(os.path.expanduser(fields["upper"]))
    return [type_, source, target, fields]


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse makes a formatter for every add_argument(), and without a
    width each one imports shutil (bz2, lzma...) and asks the terminal: ~5 ms
    of every start.  The width is asked once, from the environment or the
    terminal, as shutil would."""
    _width = None

    def __init__(self, prog, **kw):
        if _Formatter._width is None:
            try:
                cols = int(os.environ.get("COLUMNS", "0")) or os.get_terminal_size(sys.stdout.fileno()).columns
            except (OSError, ValueError):
                cols = 80
            _Formatter._width = max(cols - 2, 20)
        kw.setdefault("width", _Formatter._width)
        super().__init__(prog, **kw)


def build_parser(flags):
    p = _Parser(prog="umview", description="Run COMMAND (default: $SHELL) in a new view: "
                "system calls that loaded modules claim are answered by them, all others run natively.",
                epilog=EXAMPLES, formatter_class=_Formatter)
    p.add_argument("-p", "--preload", action="append", default=[], metavar="MODULE[,KEY=VALUE...]",
                   help="load MODULE in the view (repeatable)")
    p.add_argument("-V", "--view-name", metavar="NAME", help="name of the new view")
    # "-0" is not given to argparse: an option that looks like a negative
    # number would make it take "--time-offset -86400" for two options.
    p.add_argument("--root-id", action="store_true", dest="fake_root",
                   help="(also -0) fake root, as PRoot's -0: the same as -p fakeroot")
    p.add_argument("-i", "--ids", metavar="UID:GID",
                   help="fake root with these ids (PRoot's -i): -p fakeroot,uid=UID,gid=GID")
    p.add_argument("-x", "--no-nesting", action="store_true",
                   help="refuse nested views: an `umview` run inside this view fails")
    p.add_argument("-S", "--no-seccomp", action="store_true",
                   help="trap every system call, not only the claimed ones (slow: for debugging and comparison)")
    p.add_argument("--pin", action="store_true",
                   help="run the hypervisor and the view on one CPU (faster for single-process work)")
    p.add_argument("--pin-cpu", type=int, metavar="N", help="like --pin, on CPU N")
    p.add_argument("--kill-on-exit", action="store_true",
                   help="kill the view's remaining processes when COMMAND exits (default: wait for them)")
    p.add_argument("--stats", action="store_true",
                   help="at exit, print calls, errors and time per module and syscall (like strace -c)")
    p.add_argument("--trace", nargs="?", const="", metavar="CLASSES",
                   help="print each call that reaches the hypervisor in strace's format, with the "
                        "module that served it; CLASSES: %%file,%%desc,%%network,%%process,%%creds,"
                        "%%signal,%%ipc,%%memory,%%clock, module names or syscall names (these calls "
                        "are then trapped too). Use --trace=CLASSES")
    p.add_argument("-o", "--output", metavar="FILE", help="write --trace and --stats output to FILE")
    p.add_argument("--list-modules", action="store_true", help="list the available modules and exit")
    p.add_argument("-v", "--verbose", action="count", default=0, help="say more (repeat for debug)")
    p.add_argument("--log", metavar="FILE", help="write the hypervisor's messages to FILE")
    p.add_argument("--version", action="version", version=f"umview {__version__}")
    fs = p.add_argument_group("file systems (each loads the vfs module; see docs/vfs.md)")
    fs.add_argument("-b", "--bind", action=_MountAction, metavar="HOST[:GUEST]",
                    help="show host path HOST at GUEST (default: the same path)")
    fs.add_argument("--ro-bind", action=_MountAction, metavar="HOST[:GUEST]", help="the same, read-only")
    fs.add_argument("--tmpfs", action=_MountAction, metavar="GUEST", help="an empty in-memory directory at GUEST")
    fs.add_argument("--hide", action=_MountAction, metavar="GUEST", help="GUEST does not exist in the view")
    fs.add_argument("--mount", action=_MountAction, metavar="type=T,source=S,target=G[,KEY=VALUE...]",
                    help="any mount type: bind, tmpfs, hide, cow (upper=DIR), merge (source=D1:D2), "
                         "archive, pyfuse3 (class=MODULE:CLASS)")
    fs.add_argument("-r", "--root", action=_MountAction, metavar="DIR",
                    help="DIR is the view's / (as chroot or PRoot -r)")
    fs.add_argument("-w", "--cwd", metavar="DIR", help="start COMMAND in DIR (a path in the view)")
    group = p.add_argument_group("module options (each loads its module)")
    for flag, (mod, key, opt) in sorted(flags.items()):
        repeat = opt.repeat  # repeatable: the values are joined with ','
        group.add_argument(flag, dest=f"modopt:{mod}:{key}", metavar=key.upper(),
                           action="append" if repeat else "store",
                           help=f"{opt.help} ({mod} {key}=)" + (" (repeatable)" if repeat else ""))
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    return p


_FLAGS = {"-S", "--no-seccomp", "--pin", "--kill-on-exit", "--list-modules", "-v", "-vv",
          "--verbose", "--version", "--stats", "-x", "--no-nesting", "--root-id", "-0", "-h",
          "--help", "--trace"}


def _spell_zero(argv):
    """-0 -> --root-id, among umview's options only (not in the command)."""
    out = list(argv)
    takes_value = False
    for i, arg in enumerate(out):
        if arg == "--" or (not arg.startswith("-") and not takes_value):
            break  # the command starts here
        if arg == "-0":
            out[i] = "--root-id"
        takes_value = arg.startswith("-") and "=" not in arg and arg not in _FLAGS
    return out


def parse(argv):
    argv = _spell_zero(argv)
    # Loading every installed module to learn its long options costs ~0.1 s
    # at each start: do it only when an option is not a core one, or for --help.
    head = argv[:argv.index("--")] if "--" in argv else argv
    try:
        if "-h" in head or "--help" in head:
            raise UmviewError("help")
        ns = build_parser({}).parse_args(argv)
    except UmviewError:
        ns = build_parser(_module_flags()).parse_args(argv)
    if ns.command and ns.command[0] == "--":
        ns.command = ns.command[1:]
    specs: dict[str, dict] = {}
    order = []
    for spec in ns.preload:
        name, opts = registry.parse_spec(spec)
        if name in specs:
            specs[name].update(opts)
        else:
            specs[name] = opts
            order.append(name)
    if ns.fake_root or ns.ids:
        if "fakeroot" not in specs:
            specs["fakeroot"] = {}
            order.append("fakeroot")
        if ns.ids:
            uid, sep, gid = ns.ids.partition(":")
            if not sep or not uid.isdigit() or not gid.isdigit():
                raise UmviewError(f"-i wants UID:GID, not {ns.ids!r}")
            specs["fakeroot"].update(uid=uid, gid=gid)
    mounts = getattr(ns, "vfs_mounts", None)
    if mounts:
        import json
        if "vfs" not in specs:
            specs["vfs"] = {}
            order.append("vfs")
        specs["vfs"]["mounts"] = json.dumps(mounts)
        if ns.cwd is None and any(m[2] == "/" for m in mounts):
            ns.cwd = "/"  # a new root: start at its top, as chroot would
    for dest, value in vars(ns).items():
        if dest.startswith("modopt:") and value is not None:
            _, mod, key = dest.split(":")
            if mod not in specs:
                specs[mod] = {}
                order.append(mod)
            specs[mod][key] = ",".join(value) if isinstance(value, list) else value
    ns.modules = [(name, specs[name]) for name in order]
    return ns


def _setup_logging(ns):
    handler = logging.FileHandler(ns.log) if ns.log else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("umview: %(message)s"))
    root = logging.getLogger("umview")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if ns.verbose > 1 else logging.INFO if ns.verbose else logging.WARNING)


def exit_code(status: int) -> int:
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return 255


def _run(ns, modules, command) -> int:
    """Run the command in a new view.  trio is started only when something
    needs it (a module with async handlers or tasks, tracing, a virtual
    syscall such as umview-insmod); until then a light loop serves the core,
    and `umview CMD` saves the ~100 ms import of trio."""
    from ._core.hypervisor import Hypervisor

    pin = ns.pin_cpu
    if ns.pin and pin is None:
        pin = min(os.sched_getaffinity(0))
    hv = Hypervisor(trap_all=ns.no_seccomp, pin_cpu=pin, propagate_stop=True)
    out = open(ns.output, "w") if ns.output else sys.stderr
    if ns.trace is not None:
        from ._core.trace import Tracer
        hv.trace = Tracer(out, ns.trace, [m.name for m in modules])
    status = [0]

    def begin():
        hv.start_core()
        view = hv.new_view(ns.view_name or "umview")
        view.no_nesting = ns.no_nesting
        for module in modules:
            hv.insmod(view, module)
        pid = hv.spawn_now(view, command, cwd=ns.cwd)
        hv.on_exit(pid, lambda st: _first_exit(hv, ns, status, st))

    try:
        if hv.needs_loop(modules):
            # modules start their trio tasks when loaded: trio first
            import trio
            trio.run(_serve, hv, begin)
        else:
            begin()
            if not hv.run_light():
                import trio
                trio.run(_serve, hv, None)
    finally:
        hv.shutdown()
    if ns.stats:
        from ._core.trace import format_stats
        out.write(format_stats(hv.total_stats))
    if out is not sys.stderr:
        out.close()
    return exit_code(status[0])


def _first_exit(hv, ns, status, st) -> None:
    status[0] = st
    if ns.kill_on_exit:
        hv.kill_all()


async def _serve(hv, begin) -> None:
    import trio

    error = None
    async with trio.open_nursery() as nursery:
        if begin is not None:
            hv.start_core()
        hv.attach(nursery)
        try:
            if begin is not None:
                begin()
            await hv.wait_all()
        except UmviewError as exc:  # raised below, not inside an exception group
            error = exc
        finally:
            nursery.cancel_scope.cancel()
    if error is not None:
        raise error


def _nest(ns, command) -> int:
    """Inside a view the processes are already traced, so no second tracer
    can start: ask the running hypervisor for a child view instead, move into
    it, and become the command."""
    from . import vsys

    if ns.no_seccomp or ns.pin or ns.pin_cpu is not None:
        logging.getLogger("umview").warning("-S and --pin apply to the outermost view only")
    path = command[0]
    if "/" not in path:
        import shutil
        path = shutil.which(path)
        if not path:
            raise UmviewError(f"{command[0]}: command not found", status=127)
    answer = vsys.call("nest", name=ns.view_name, modules=ns.modules, no_nesting=ns.no_nesting)
    os.environ["UMVIEW_VIEW"] = answer["view"]
    try:
        if ns.cwd:
            os.chdir(ns.cwd)  # now inside the new view: its paths
    except OSError as exc:
        raise UmviewError(f"-w {ns.cwd}: {exc.strerror}") from None
    try:
        os.execv(path, command)
    except OSError as exc:
        raise UmviewError(f"{command[0]}: {exc.strerror}", status=126) from None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        ns = parse(argv)
        _setup_logging(ns)
        if ns.list_modules:
            for name in sorted(registry.available()):
                try:
                    cls = registry.load_class(name)
                    print(f"{name:<12} {cls.description}")
                except ModuleError as exc:
                    print(f"{name:<12} (broken: {exc})")
            return 0
        modules = [registry.instantiate(name, opts) for name, opts in ns.modules]
        command = ns.command or [os.environ.get("SHELL") or "/bin/sh"]
        from . import vsys
        if vsys.inside_view():
            return _nest(ns, command)
        # The terminal's signals are for the program in the view; we go on
        # serving it (Ctrl-C reaches it as it would without us).
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(sig, signal.SIG_IGN)
        return _run(ns, modules, command)
    except UmviewError as exc:
        print(f"umview: {exc}", file=sys.stderr)
        return exc.status


def console_main() -> None:
    """The `umview` console script: main(), then exit without tearing the
    interpreter down.  Finalization (freeing every module and object) costs
    ~12 ms here, after the view is gone and nothing is left to save; atexit
    functions still run, and the standard streams are flushed."""
    status = main()
    import atexit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 1
    os._exit(status)


if __name__ == "__main__":
    console_main()
