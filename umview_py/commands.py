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
