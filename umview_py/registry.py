"""Finding modules: the entry-point group `umview.modules`.

A third-party package ships a module by declaring, in its pyproject.toml,
    [project.entry-points."umview.modules"]
    mymod = "mypkg.mymod:MyModule"
First-party modules (umview_modules) register the same way.
"""
from __future__ import annotations

from .errors import ModuleError
from .module import Module

GROUP = "umview.modules"


class EntryPoint:
    """name = "package.module:Class" from a distribution's entry_points.txt."""
    __slots__ = ("name", "value", "dist")

    def __init__(self, name: str, value: str, dist: str):
        self.name, self.value, self.dist = name, value, dist

    def load(self):
        import importlib
        modname, _, attr = self.value.partition(":")
        obj = importlib.import_module(modname.strip())
        for part in attr.strip().split(".") if attr.strip() else ():
            obj = getattr(obj, part)
        return obj

    def __repr__(self):
        return f"EntryPoint({self.name!r}, {self.value!r}, dist={self.dist!r})"


def _normalize(dist: str) -> str:
    return dist.split("-")[0].lower().replace("_", "-").replace(".", "-")


def available() -> dict:
    """name -> EntryPoint of the group, from the distributions on sys.path.

    The metadata files are read directly: importlib.metadata costs ~50 ms at
    every start (its import pulls in the email package, and it reads every
    distribution's metadata), and `umview -p MODULE` is a start-up path.
    As importlib.metadata does, the first distribution of a name on sys.path
    wins; entry_points.txt is the format the packaging specifications define
    (an INI file whose sections are groups)."""
    import os
    import sys

    found: dict[str, EntryPoint] = {}
    seen: set[str] = set()
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # a zip file, a missing directory
            continue
        for meta in sorted(names):
            if not meta.endswith((".dist-info", ".egg-info")):
                continue
            dist = _normalize(meta.rsplit(".", 1)[0])
            if dist in seen:
                continue
            seen.add(dist)
            try:
                with open(os.path.join(entry or ".", meta, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            for name, value in _group(text, GROUP):
                found.setdefault(name, EntryPoint(name, value, dist))
    return found


def _group(text: str, group: str):
    """(name, value) pairs of one section of an entry_points.txt."""
    inside = False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
        elif inside and "=" in line:
            name, _, value = line.partition("=")
            yield name.strip(), value.strip()


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
