"""The in-view commands: umview-insmod, umview-rmmod, umview-lsmod, umview-name.

They change the view of the process that runs them, which is the view of the
shell that started them, and so of that shell and all its children."""
from __future__ import annotations

import sys

from . import vsys
from .errors import UmviewError
from .registry import parse_spec


def _run(fn, argv, usage):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    try:
        return fn(argv) or 0
    except UmviewError as exc:
        prog = usage.split()[1]
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.status


def _insmod(argv):
    if not argv:
        raise UmviewError("usage: umview-insmod MODULE [KEY=VALUE...]")
    name, options = parse_spec(argv[0])
    for item in argv[1:]:
        key, sep, value = item.partition("=")
        options[key.replace("-", "_")] = value if sep else ""
    vsys.call("insmod", module=name, options=options)


def _rmmod(argv):
    if len(argv) < 1:
        raise UmviewError("usage: umview-rmmod MODULE...")
    for name in argv:
        vsys.call("rmmod", module=name)


def _lsmod(argv):
    answer = vsys.call("lsmod")
    print(f"{'Module':<16} {'View':<16} Options")
    for v in answer["views"]:
        for m in reversed(v["modules"]):
            print(f"{m['name']:<16} {v['name']:<16} {m['options']}".rstrip())


def _name(argv):
    answer = vsys.call("lsmod")
    names = [v["name"] for v in answer["views"]]
    print(names[0])
    if len(names) > 1:
        print("parents: " + " < ".join(names[1:]))


def name_main(argv=None):
    return _run(_name, argv, "usage: umview-name\n"
                "Print the name of the calling view, then its chain of parents.")


def insmod_main(argv=None):
    return _run(_insmod, argv, "usage: umview-insmod MODULE [KEY=VALUE...]\n"
                "Load MODULE into the view of the calling shell and its children.")


def rmmod_main(argv=None):
    return _run(_rmmod, argv, "usage: umview-rmmod MODULE...\n"
                "Unload MODULE from the view of the calling shell and its children.")


def lsmod_main(argv=None):
    return _run(_lsmod, argv, "usage: umview-lsmod\n"
                "List the modules of the calling view, newest first, then its parents'.")


def _mount(argv):
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            raise UmviewError(f"{message} (usage: umview-mount -t TYPE [-o OPTIONS] SOURCE TARGET)")

    p = Parser(prog="umview-mount", add_help=False)
    p.add_argument("-t", "--types", dest="type")
    p.add_argument("-o", "--options", action="append", default=[])
    p.add_argument("-r", "--read-only", action="store_true")
    p.add_argument("args", nargs="*")
    ns = p.parse_args(argv)
    if not ns.args:
        answer = vsys.call("command", module="vfs", name="mounts", args={}, autoload=True)
        for type_, source, target, opts in answer["mounts"]:
            print(f"{source or type_} on {target} type {type_} ({opts})")
        return
    if len(ns.args) == 1 and ns.type in ("tmpfs", "hide"):
        source, target = "", ns.args[0]
    elif len(ns.args) == 2:
        source, target = ns.args
    else:
        raise UmviewError("usage: umview-mount -t TYPE [-o OPTIONS] SOURCE TARGET")
    if not ns.type:
        raise UmviewError("no type: give -t TYPE (bind, tmpfs, hide, cow, merge, archive, pyfuse3)")
    options = {}
    for group in ns.options:
        for item in group.split(","):
            if item:
                key, _, value = item.partition("=")
                options[key] = value
    if ns.read_only:
        options["ro"] = ""
    vsys.call("command", module="vfs", name="mount", autoload=True,
              args={"type": ns.type, "source": source, "target": target, "options": options})


def _umount(argv):
    if not argv:
        raise UmviewError("usage: umview-umount TARGET...")
    for target in argv:
        vsys.call("command", module="vfs", name="umount", args={"target": target})


def mount_main(argv=None):
    return _run(_mount, argv, "usage: umview-mount -t TYPE [-o OPTIONS] SOURCE TARGET\n"
                "Mount in the view of the calling shell and its children.  TYPE: bind, tmpfs,\n"
                "hide, cow (-o upper=DIR), merge (SOURCE=DIR1:DIR2...), archive, pyfuse3\n"
                "(-o class=MODULE:CLASS).  Without arguments: list the view's mounts.")


def umount_main(argv=None):
    return _run(_umount, argv, "usage: umview-umount TARGET...\n"
                "Unmount TARGET from the view of the calling shell and its children.")
