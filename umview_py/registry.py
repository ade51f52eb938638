"""Finding modules: the entry-point group `umview.modules`.

A third-party package ships a module by declaring, in its pyproject.toml,
    [project.entry-points."umview.modules"]
    mymod = "mypkg.mymod:MyModule"
First-party modules (umview_modules) register the same way.
"""
from __future__ import annotations

from typing import Any

from .errors import ModuleError
from .module import Module

GROUP = "umview.modules"


def available() -> dict:
    """name -> entry point.  importlib.metadata is imported here, not at
    start: scanning the installed distributions is ~15 ms of every start."""
    import importlib.metadata
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=GROUP)}


def _load_from_file(spec: str) -> type[Module]:
    """'path/to/file.py:ClassName': a module not installed as a package (handy
    while writing one, and in tests)."""
    import importlib.util
    import os

    path, _, clsname = spec.rpartition(":")
    if not os.path.isfile(path):
        raise ModuleError(f"module file {path!r} not found")
    modname = "umview_local_" + os.path.splitext(os.path.basename(path))[0]
    spec_ = importlib.util.spec_from_file_location(modname, path)
    pymod = importlib.util.module_from_spec(spec_)
    try:
        spec_.loader.exec_module(pymod)
    except Exception as exc:
        raise ModuleError(f"module file {path!r} cannot be imported: {exc}") from None
    cls = getattr(pymod, clsname, None)
    if cls is None:
        raise ModuleError(f"module file {path!r} has no class {clsname!r}")
    return cls


def load_class(name: str) -> type[Module]:
    if ".py:" in name:
        cls = _load_from_file(name)
        if not (isinstance(cls, type) and issubclass(cls, Module)):
            raise ModuleError(f"{name!r} is not a umview_py.Module subclass")
        return cls
    eps = available()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise ModuleError(f"unknown module {name!r} (available: {known})")
    try:
        cls = eps[name].load()
    except Exception as exc:  # a broken third-party package must not crash us
        raise ModuleError(f"module {name!r} cannot be imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise ModuleError(f"entry point {name!r} is not a umview_py.Module subclass")
    return cls


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """'misc,release=5.0,hostname=box' -> ('misc', {...}) (umview's -p syntax)."""
    name, *rest = spec.split(",")  # (a file path with a comma is not supported)
    opts = {}
    for item in rest:
        if not item:
            continue
        key, sep, value = item.partition("=")
        opts[key.strip().replace("-", "_")] = value if sep else ""
    if not name:
        raise ModuleError(f"bad module spec {spec!r}: no module name")
    return name.strip(), opts


def instantiate(name: str, options: dict[str, Any]) -> Module:
    cls = load_class(name)
    mod = cls(**options)
    if not mod.name:
        mod.name = cls.__name__.lower()
    return mod
