"""The mount table of a view and the resolution of view paths.

Every file a view shows lives somewhere on the host: a bind mount's source,
a tmpfs's private directory, a cow mount's upper or lower layer, a mirror
directory filled by a back end (archive, pyfuse3), a *listing* directory
made to show a merged directory's entries.  Resolving a view path gives that
host path, so the path call can be rewritten to it and the kernel does the
rest: every call on the resulting fd is native.  The way back (host path ->
view path) serves getcwd, /proc/self/fd/N, /proc/self/cwd, and relative
paths, since a process whose cwd is in a mount has its real cwd in a host
directory of that mount.
"""
from __future__ import annotations

import errno
import logging
import os
import stat

from umview_py.host import stat_beneath
from umview_py.module import SyscallError

from .backend import MirrorBackend, MountError

log = logging.getLogger("umview")

MAXSYMLINKS = 40
COW_STATE = ".umview-cow"  # whiteouts of a cow mount, kept in its upper layer

TYPES = ("bind", "tmpfs", "hide", "cow", "merge", "archive", "pyfuse3")
# options each type takes (besides ro/rw)
TYPE_OPTIONS = {
    "bind": set(), "tmpfs": {"size", "mode"}, "hide": set(), "cow": {"upper"}, "merge": set(),
    "archive": set(), "pyfuse3": {"class"},
}


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower()
    mult = units.get(t[-1:], 1)
    num = t[:-1] if t[-1:] in units else t
    if not num.isdigit():
        raise MountError(f"tmpfs: bad size {text!r} (want a number, optionally with k, m or g)")
    return int(num) * mult


def norm(path: str) -> str:
    """Lexically normalized absolute path ('..' taken as the parent: only for
    paths already free of symlinks)."""
    out: list[str] = []
    for c in path.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if out:
                out.pop()
        else:
            out.append(c)
    return "/" + "/".join(out)


def under(path: str, prefix: str) -> bool:
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def rel_of(path: str, prefix: str) -> str:
    if prefix == "/":
        return path[1:]
    return path[len(prefix) + 1:]


def join(base: str, rel: str) -> str:
    return f"{base}/{rel}" if rel else base


class Mount:
    """One mount of the view.  (A plain class: dataclasses costs ~10 ms to
    import, paid at every start of a view with a mount.)"""
    __slots__ = ("id", "type", "source", "target", "options", "readonly", "layers", "backend",
                 "private", "whiteouts", "opaque", "size")

    def __init__(self, id: int, type: str, source: str, target: str, options: dict,
                 readonly: bool, layers: list[str]):
        self.id, self.type, self.source, self.target = id, type, source, target
        self.options, self.readonly = options, readonly
        self.layers = layers                          # host directories, first wins
        self.backend: MirrorBackend | None = None
        self.private: str | None = None              # our directory, removed at umount
        self.whiteouts: set = set()                   # cow: deleted rel paths
        self.opaque: set = set()                      # cow: dirs whose lower part is gone
        self.size: int | None = None                  # tmpfs size= (shown by statfs)

    def __repr__(self):
        return f"Mount({self.id}, {self.type!r}, {self.source!r}, {self.target!r})"

    def describe_options(self) -> str:
        opts = ["ro" if self.readonly else "rw"]
        opts += [f"{k}={v}" for k, v in self.options.items() if k not in ("ro", "rw")]
        return ",".join(opts)

    # -- cow state ----------------------------------------------------------
    def cow_save(self) -> None:
        if self.type != "cow" or self.private:  # an in-memory upper dies with us
            return
        import json
        data = json.dumps({"whiteouts": sorted(self.whiteouts), "opaque": sorted(self.opaque)})
        tmp = join(self.layers[0], COW_STATE + ".tmp")
        with open(tmp, "w") as f:
            f.write(data)
        os.replace(tmp, join(self.layers[0], COW_STATE))

    def cow_load(self) -> None:
        try:
            import json
            with open(join(self.layers[0], COW_STATE)) as f:
                data = json.load(f)
            self.whiteouts = set(data.get("whiteouts", []))
            self.opaque = set(data.get("opaque", []))
        except FileNotFoundError:
            pass
        except (ValueError, OSError) as exc:
            raise MountError(f"cow: {self.layers[0]}/{COW_STATE}: unreadable ({exc})") from None


class Resolved:
    """Where a view path leads."""
    __slots__ = ("vpath", "mount", "rel", "host", "st", "layer", "implicit")

    def __init__(self, vpath: str, mount: Mount | None, rel: str, host: str | None, st,
                 layer: int = 0, implicit: bool = False):
        self.vpath = vpath          # the view path, symlinks resolved (the last one as asked)
        self.mount = mount
        self.rel = rel              # path inside the mount
        self.host = host            # the host path that holds it (None: hidden)
        self.st = st                # lstat of host, None when it does not exist
        self.layer = layer          # cow/merge: the layer index holding it
        self.implicit = implicit    # a directory that exists only to hold mount points

    def _key(self):
        return (self.vpath, self.mount, self.rel, self.host, self.st, self.layer, self.implicit)

    def __eq__(self, other):
        return type(other) is Resolved and other._key() == self._key()

    __hash__ = None

    def __repr__(self):
        return "Resolved(" + ", ".join(repr(x) for x in self._key()) + ")"

    @property
    def exists(self) -> bool:
        return self.st is not None

    @property
    def is_dir(self) -> bool:
        return self.st is not None and stat.S_ISDIR(self.st.st_mode)


class MountTable:
    """The mounts of one view and path resolution through them."""

    def __init__(self, lower=None):
        self.mounts: list[Mount] = []       # in mount order
        self.by_target: dict[str, list[Mount]] = {}
        self._next = 1
        self._private_root: str | None = None
        self.listings: dict[str, str] = {}  # listing dir (host) -> view dir
        self._listing_of: dict[str, str] = {}
        self.lower = lower                  # a parent view's table (nesting)
        self._implicit: dict[str, tuple] = {}  # view dir -> (listing, stat)

    # -- private directories ---------------------------------------------
    def private_dir(self, what: str | None = None) -> str:
        """A new private directory (`what` names it), under our root, made
        at the first mount: the core must know the root from the start (a
        listing made later lives there, and calls relative to it are ours)."""
        if self._private_root is None:
            base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else \
                os.environ.get("TMPDIR", "/tmp")
            _remove_stale(base)
            self._private_root = _mkdtemp(f"umview-{os.getpid()}-", base)
        if what is None:
            return self._private_root
        return _mkdtemp(what + "-", self._private_root)

    @property
    def private_root(self) -> str | None:
        return self._private_root

    def cleanup(self) -> None:
        self._close_roots()
        for m in reversed(self.mounts):
            self._release(m)
        self.mounts.clear()
        self.by_target.clear()
        if self._private_root:
            rmtree(self._private_root)
            self._private_root = None

    # -- mounting ------------------------------------------------------------
    def mount(self, type_: str, source: str, target: str, options: dict | None = None) -> Mount:
        options = dict(options or {})
        if type_ not in TYPES:
            raise MountError(f"unknown mount type {type_!r} (known: {', '.join(TYPES)})")
        if not target.startswith("/"):
            raise MountError(f"mount target must be an absolute path: {target!r}")
        target = norm(target)
        if target != "/":
            # as mount(8): the mount point is where the target path leads
            try:
                target = self.resolve(target).vpath
            except SyscallError:
                pass
        ro = options.pop("ro", None) is not None
        options.pop("rw", None)
        bad = set(options) - TYPE_OPTIONS[type_]
        if bad:
            raise MountError(f"{type_}: unknown option {sorted(bad)[0]!r}"
                             + (f" (known: ro, rw, {', '.join(sorted(TYPE_OPTIONS[type_]))})"
                                if TYPE_OPTIONS[type_] else " (known: ro, rw)"))
        self.private_dir()
        m = Mount(self._next, type_, source, target, options, ro, [])
        if type_ == "bind":
            host = self._source_dir(source, type_, allow_file=True)
            m.layers = [host]
        elif type_ == "tmpfs":
            if "size" in options:
                m.size = _size(options["size"])
            m.private = self.private_dir("tmpfs")
            mode = options.get("mode", "1777" if target == "/tmp" else "755")
            try:
                os.chmod(m.private, int(mode, 8))
            except ValueError:
                raise MountError(f"tmpfs: bad mode {mode!r}") from None
            m.layers = [m.private]
        elif type_ == "hide":
            m.layers = []
        elif type_ == "cow":
            lower = self._source_dir(source, type_)
            if "upper" in options:
                upper = os.path.realpath(options["upper"])
                os.makedirs(upper, exist_ok=True)
                if under(upper, lower) or under(lower, upper):
                    raise MountError("cow: the upper directory must be outside the source and not hold it")
            else:
                upper = m.private = self.private_dir("cow")
            if not os.listdir(upper):  # a new upper layer: its root is the source's
                st = os.stat(lower)
                os.chmod(upper, stat.S_IMODE(st.st_mode))
                os.utime(upper, ns=(st.st_atime_ns, st.st_mtime_ns))
            m.layers = [upper, lower]
            m.cow_load()
        elif type_ == "merge":
            if not source:
                raise MountError("merge: no source directories (source=DIR1:DIR2:...)")
            m.layers = [self._source_dir(s, type_) for s in source.split(":")]
            m.readonly = True
        elif type_ in ("archive", "pyfuse3"):
            m.private = self.private_dir(type_)
            try:
                if type_ == "archive":
                    from .archive import ArchiveBackend as cls
                    if not os.path.exists(source):
                        raise MountError(f"archive: {source}: no such file")
                else:
                    from .fusefs import FuseBackend as cls
                    if "class" not in options:
                        raise MountError("pyfuse3: the class=MODULE:CLASS option is missing")
                m.backend = cls(source, options, m.private)
            except BaseException:
                rmtree(m.private)
                raise
            m.readonly = ro or m.backend.readonly
            m.layers = [m.private]
        if ro:
            m.readonly = True
        self._next += 1
        self._implicit.clear()
        self.mounts.append(m)
        self.by_target.setdefault(target, []).append(m)
        return m

    def _source_dir(self, source: str, type_: str, allow_file: bool = False) -> str:
        if not source:
            raise MountError(f"{type_}: no source")
        if self.lower is not None:
            # in a nested view, sources are paths of the parent view
            try:
                res = self.lower.resolve(norm(os.path.abspath(source)))
            except SyscallError as exc:
                raise MountError(f"{type_}: {source}: {os.strerror(exc.errno)}") from None
            if res.host is not None and res.exists:
                source = res.host
        real = os.path.realpath(source)
        try:
            st = os.stat(real)
        except OSError as exc:
            raise MountError(f"{type_}: {source}: {exc.strerror}") from None
        if not allow_file and not stat.S_ISDIR(st.st_mode):
            raise MountError(f"{type_}: {source}: not a directory")
        return real

    def umount(self, target: str) -> Mount:
        self._close_roots()
        self._implicit.clear()
        target = norm(target)
        stack = self.by_target.get(target)
        if not stack:
            raise SyscallError(errno.EINVAL)
        m = stack.pop()
        if not stack:
            del self.by_target[target]
        self.mounts.remove(m)
        self._release(m)
        return m

    def _release(self, m: Mount) -> None:
        if m.backend is not None:
            try:
                m.backend.close()
            except Exception:
                log.exception("closing the %s mount at %s", m.type, m.target)
        m.cow_save()
        if m.private:
            rmtree(m.private)

    # -- lookups --------------------------------------------------------------
    def mount_at(self, vpath: str) -> tuple[Mount | None, str]:
        """The mount that holds vpath (the deepest target above it), and the
        path inside it."""
        p = vpath
        while True:
            stack = self.by_target.get(p)
            if stack:
                return stack[-1], rel_of(vpath, p) if p != vpath else ""
            if p == "/":
                return None, vpath
            p = p.rsplit("/", 1)[0] or "/"

    def covers(self, path: str) -> bool:
        """Does the view show something else than the host at path (it is in
        a mount, or a mount lies below it, or it is one of our directories)?"""
        if self._private_root and (under(path, self._private_root) or under(self._private_root, path)):
            return True
        for target in self.by_target:
            if under(path, target) or under(target, path):
                return True
        return False

    def _in_mount(self, m: Mount | None, rel: str, vpath: str) -> Resolved:
        """lstat the entry rel of mount m (or the host's vpath with no mount)."""
        if m is None:
            res = self.lower.lookup(vpath) if self.lower is not None else \
                Resolved(vpath, None, vpath, vpath, _lstat(vpath))
            if res.st is None and any(under(t, vpath) for t in self.by_target):
                # A mount point's parents exist in the view even where the
                # host has no such directory (as the kernel's would have to).
                res = Resolved(vpath, None, vpath, None, None, implicit=True)
                cached = self._implicit.get(vpath)
                if cached is None:  # its entries change only with the mounts
                    host = self.listing(res)
                    cached = self._implicit[vpath] = (host, os.lstat(host))
                res.host, res.st = cached
            return res
        if m.type == "hide":
            return Resolved(vpath, m, rel, None, None)
        if m.type == "cow":
            upper, lower = m.layers
            st = _lstat(join(upper, rel))
            if st is not None:
                return Resolved(vpath, m, rel, join(upper, rel), st, 0)
            if rel == COW_STATE or self._whited(m, rel):
                return Resolved(vpath, m, rel, join(upper, rel), None, 0)
            st = _lstat(join(lower, rel))
            if st is not None:
                return Resolved(vpath, m, rel, join(lower, rel), st, 1)
            return Resolved(vpath, m, rel, join(upper, rel), None, 0)
        if m.type == "merge":
            for i, layer in enumerate(m.layers):
                st = _lstat(join(layer, rel))
                if st is not None:
                    return Resolved(vpath, m, rel, join(layer, rel), st, i)
            return Resolved(vpath, m, rel, join(m.layers[0], rel), None, 0)
        if m.backend is not None:
            m.backend.refresh(rel)
        host = join(m.layers[0], rel)
        return Resolved(vpath, m, rel, host, _lstat(host))

    @staticmethod
    def _whited(m: Mount, rel: str) -> bool:
        if not m.whiteouts and not m.opaque:
            return False
        p = rel
        while p:
            if p in m.whiteouts:
                return True
            parent = p.rpartition("/")[0]
            if parent in m.opaque or (parent == "" and "" in m.opaque):
                # an opaque dir hides the lower entries below it
                return True
            p = parent
        return False

    def lookup(self, vpath: str) -> Resolved:
        m, rel = self.mount_at(vpath)
        return self._in_mount(m, rel, vpath)

    def resolve(self, vpath: str, follow: bool = True, proc: tuple[int, int] | None = None) -> Resolved:
        """Walk vpath (absolute) component by component, as the kernel would
        through the view's mounts: symlinks are read where they are (in a
        layer, a mirror, the host) and followed in the view; '..' goes up in
        the view, so it crosses mount points the way a real mount would.
        `proc` = (pid, tid) of the caller: /proc/self is its, not ours.
        Raises SyscallError for ENOENT (a missing parent), ENOTDIR, ELOOP,
        ENAMETOOLONG."""
        if len(vpath) >= 4096:
            raise SyscallError(errno.ENAMETOOLONG)
        trailing = vpath.endswith("/") and vpath.strip("/") != ""
        todo = [c for c in reversed(vpath.split("/")) if c not in ("", ".")]
        cur = "/"
        if ".." not in todo and self.by_target:
            # Mount points were resolved when mounted, so the walk may start
            # at the deepest one the path names.
            m, rel = self.mount_at("/" + "/".join(reversed(todo)))
            if m is not None and m.target != "/":
                cur = m.target
                todo = [c for c in reversed(rel.split("/")) if c] if rel else []
                if todo and not (trailing and follow is False):
                    quick = self._quick(cur, m, "", todo, follow or trailing)
                    if quick is not None:
                        if trailing and quick.st is not None and not stat.S_ISDIR(quick.st.st_mode):
                            raise SyscallError(errno.ENOTDIR)
                        return quick
        res = self.lookup(cur)
        links = 0
        while todo:
            name = todo.pop()
            if name == "..":
                cur = cur.rsplit("/", 1)[0] or "/"
                res = self.lookup(cur)
                continue
            if len(name) > 255:
                raise SyscallError(errno.ENAMETOOLONG)
            if cur == "/proc" and proc and name in ("self", "thread-self"):
                todo.extend(reversed([str(proc[0])] if name == "self" else
                                     [str(proc[0]), "task", str(proc[1])]))
                continue
            cand = cur + name if cur == "/" else f"{cur}/{name}"
            last = not todo
            if _magic(cur, name) and self.mount_at(cand)[0] is None:
                # /proc/PID/fd/N, cwd, exe, root: links the kernel follows to
                # the file itself (a pipe, a deleted file).  The last one is
                # left to the kernel, unless followed to a file in a mount
                # (fchmodat on an O_PATH fd goes through /proc/self/fd/N: a
                # cow mount's lower file must be copied up first); through
                # one, go on from its view path.
                if last and not (follow or trailing):
                    return Resolved(cand, None, cand, cand, _lstat(cand))
                try:
                    target = os.readlink(cand)
                except OSError as exc:
                    if last:
                        return Resolved(cand, None, cand, cand, _lstat(cand))
                    raise SyscallError(exc.errno) from None
                view, same = self.to_view(target) if target.startswith("/") else (target, True)
                if last and (same or target.endswith(" (deleted)")):
                    return Resolved(cand, None, cand, cand, _lstat(cand))
                if not target.startswith("/"):
                    raise SyscallError(errno.ENOTDIR)
                cur = "/"
                todo.extend(c for c in reversed(view.split("/")) if c)
                continue
            if True:
                qm, qrel = self.mount_at(cand)
                quick = self._quick(cand, qm, qrel, todo, follow or trailing) if not _magic(cur, name) \
                    else None
                if quick is not None:
                    if trailing and quick.st is not None and not stat.S_ISDIR(quick.st.st_mode):
                        raise SyscallError(errno.ENOTDIR)
                    return quick
            res = self.lookup(cand)
            if res.st is None:
                if last:
                    return res
                raise SyscallError(errno.ENOENT)
            mode = res.st.st_mode
            if stat.S_ISLNK(mode) and (not last or follow or trailing):
                links += 1
                if links > MAXSYMLINKS:
                    raise SyscallError(errno.ELOOP)
                target = os.readlink(res.host)
                if not target:
                    raise SyscallError(errno.ENOENT)
                if target.startswith("/"):
                    cur = "/"
                todo.extend(c for c in reversed(target.split("/")) if c not in ("", "."))
                if not todo:  # a link to "/"
                    res = self.lookup("/")
                continue
            if not last and not stat.S_ISDIR(mode):
                raise SyscallError(errno.ENOTDIR)
            cur = cand
        if trailing and res.st is not None and not stat.S_ISDIR(res.st.st_mode):
            raise SyscallError(errno.ENOTDIR)
        if res.vpath != cur:
            res = self.lookup(cur)
        return res

    def _quick(self, cand: str, m: Mount | None, rel: str, todo: list[str],
               follow_last: bool) -> Resolved | None:
        """The rest of the walk in one call, when the kernel can do it for
        us: inside one plain directory tree (a bind or tmpfs mount, or the
        host where no mount is), with no '..' and no mount point on the way,
        openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) either reaches the
        file with no symlink passed, or fails and the walk goes on one
        component at a time.  None: take the long way."""
        if ".." in todo or self.lower is not None:
            return None
        if m is None:
            if self.covers(cand):
                return None
            layer, rel = "/", cand[1:]
        elif m.type in ("bind", "tmpfs"):
            layer = m.layers[0]
        else:
            return None
        for target in self.by_target:
            if target.startswith(cand + "/"):
                return None
        rest = "/".join(reversed(todo))
        vpath = f"{cand}/{rest}" if rest else cand
        rel_full = f"{rel}/{rest}" if rest and rel else rest or rel
        root = self._root_fd(layer)
        if root is None:
            return None
        host = join(layer.rstrip("/"), rel_full) if layer != "/" else "/" + rel_full
        st = _beneath(root, rel_full or ".", host)
        if st is None:
            return None
        if st is False:  # missing: is only the last component missing?
            if not rest and not rel:
                return None
            parent = rel_full.rpartition("/")[0]
            pst = _beneath(root, parent or ".", host)
            if not pst or not stat.S_ISDIR(pst.st_mode):
                return None
            st = None
        elif stat.S_ISLNK(st.st_mode) and follow_last:
            return None
        return Resolved(vpath, m, rel_full if m is not None else vpath, host, st)

    def _root_fd(self, layer: str) -> int | None:
        fds = self.__dict__.setdefault("_roots", {})
        fd = fds.get(layer)
        if fd is None:
            try:
                fd = os.open(layer, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                return None
            fds[layer] = fd
        return fd

    def _close_roots(self) -> None:
        for fd in self.__dict__.pop("_roots", {}).values():
            os.close(fd)

    # -- host -> view ------------------------------------------------------
    def to_view(self, host: str) -> tuple[str, bool]:
        """The view path of a host path (a cwd, an fd's file), and whether the
        view sees it at the same place (nothing to translate)."""
        root = self._private_root
        if root and under(host, root):
            for listing, vdir in self.listings.items():
                if under(host, listing):
                    return join(vdir, rel_of(host, listing)) if host != listing else vdir, False
        hit = None
        for m in reversed(self.mounts):
            for layer in m.layers:
                if under(host, layer):
                    v = m.target if host == layer else join(m.target.rstrip("/") or "", rel_of(host, layer))
                    v = v or "/"
                    if m.private and root and under(host, root):
                        return v, False
                    if hit is None:
                        hit = v
        if hit is not None:
            # A bind source is in the view twice (at its own path and at
            # the mount's): prefer the mount's (an fd's file keeps no
            # record of the name it was opened by); a cwd's name is
            # remembered by the caller (chdir, and Vfs.started for the
            # directory a program was started in).
            return hit, hit == host
        if not self.covers(host):
            if self.lower is not None:
                return self.lower.to_view(host)
            return host, True
        if self.lower is not None:
            return self.lower.to_view(host)
        return host, False

    def in_layer(self, host: str) -> bool:
        """Is host inside a directory some mount shows elsewhere?"""
        return any(under(host, layer) for m in self.mounts for layer in m.layers)

    # -- directory listings -------------------------------------------------
    def needs_listing(self, res: Resolved) -> bool:
        """Must a directory be shown through a listing directory (its entries
        are not those of one host directory)?"""
        vdir = res.vpath
        m = res.mount
        if m is not None and m.type in ("cow", "merge"):
            others = m.layers[res.layer + 1:]
            if any(_lstat(join(layer, res.rel)) is not None for layer in others):
                return True
            if m.type == "cow" and (m.whiteouts or m.opaque):
                return True
        for target in self.by_target:
            if target != vdir and under(target, vdir) and "/" not in rel_of(target, vdir):
                return True
        if self._private_root and vdir == os.path.dirname(self._private_root):
            return True
        return False

    def entries(self, res: Resolved) -> dict[str, int]:
        """name -> file type bits of the view directory res."""
        out: dict[str, int] = {}
        m = res.mount
        if m is not None and m.type in ("cow", "merge"):
            layers = m.layers
            for i, layer in enumerate(layers):
                if m.type == "cow" and i == 1 and res.rel in m.opaque:
                    continue
                for name, mode in _scan(join(layer, res.rel)):
                    if name in out:
                        continue
                    rel = join(res.rel, name) if res.rel else name
                    if m.type == "cow" and (rel == COW_STATE or (i == 1 and self._whited(m, rel))):
                        continue
                    out[name] = mode
        elif res.host is not None and res.host not in self.listings:
            for name, mode in _scan(res.host):
                out[name] = mode
        vdir = res.vpath
        for target, stack in self.by_target.items():
            if target != vdir and under(target, vdir) and "/" not in rel_of(target, vdir):
                name = rel_of(target, vdir)
                if stack[-1].type == "hide":
                    out.pop(name, None)
                else:
                    out[name] = stat.S_IFDIR
        if self._private_root and vdir == os.path.dirname(self._private_root):
            out.pop(os.path.basename(self._private_root), None)
        return out

    def has_listing(self, vdir: str) -> bool:
        return vdir in self._listing_of

    def listing(self, res: Resolved) -> str:
        """A host directory holding the entries of view directory res (as
        empty files, directories, symlinks, FIFOs and sockets of the right
        types; a device as an empty file): what a program that opens res
        for reading its entries gets."""
        vdir = res.vpath
        host = self._listing_of.get(vdir)
        if host is None:
            host = self.private_dir("dir")
            self._listing_of[vdir] = host
            self.listings[host] = vdir
        want = {name: _placeholder(mode) for name, mode in self.entries(res).items()}
        have = {name: mode for name, mode in _scan(host)}
        for name, mode in list(have.items()):
            if name not in want or want[name] != stat.S_IFMT(mode):
                p = join(host, name)
                if stat.S_ISDIR(mode):
                    rmtree(p)
                else:
                    os.unlink(p)
                del have[name]
        # made relative to the directory, each by one call (a first listing
        # of the standard library's 206 names: 1.7 -> 0.8 ms)
        fd = os.open(host, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name, mode in want.items():
                if name in have:
                    continue
                if stat.S_ISDIR(mode):
                    os.mkdir(name, dir_fd=fd)
                elif stat.S_ISLNK(mode):
                    os.symlink("umview-placeholder", name, dir_fd=fd)  # never read: lookups go through the view
                else:
                    os.mknod(name, 0o600 | mode, dir_fd=fd)
        finally:
            os.close(fd)
        os.chmod(host, stat.S_IMODE(res.st.st_mode) if res.st is not None else 0o755)
        if res.st is not None:  # fstat of the open directory shows the directory's times
            os.utime(host, ns=(res.st.st_atime_ns, res.st.st_mtime_ns))
        return host

    def relist(self, vdir: str, added: str | None = None) -> None:
        """A directory's entries changed: refresh its listing, if a program
        has it (a listing is what an open directory fd reads).  `added`:
        a regular file the kernel is about to create there, listed now."""
        host = self._listing_of.get(vdir)
        if host is None:
            return
        if added is not None:
            p = join(host, added)
            if not os.path.lexists(p):
                os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o600))
            return
        try:
            self.listing(self.resolve(vdir))
        except SyscallError:
            pass

    # -- cow ---------------------------------------------------------------
    def copy_up(self, res: Resolved, content: bool = True) -> str:
        """Make res (in a cow mount) exist in the upper layer; returns its
        upper path.  Parents are copied first (directories only)."""
        m = res.mount
        upper, lower = m.layers
        parts = res.rel.split("/") if res.rel else []
        for i in range(1, len(parts)):
            prel = "/".join(parts[:i])
            up = join(upper, prel)
            if _lstat(up) is None:
                st = os.stat(join(lower, prel))
                os.mkdir(up, stat.S_IMODE(st.st_mode) | 0o700)
                os.chmod(up, stat.S_IMODE(st.st_mode))
                os.utime(up, ns=(st.st_atime_ns, st.st_mtime_ns))
        dst = join(upper, res.rel)
        if res.layer == 0 and res.st is not None:
            return dst
        if res.st is None:
            return dst
        src = join(lower, res.rel)
        mode = res.st.st_mode
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISDIR(mode):
            os.mkdir(dst, stat.S_IMODE(mode) | 0o700)
            os.chmod(dst, stat.S_IMODE(mode))
            os.utime(dst, ns=(res.st.st_atime_ns, res.st.st_mtime_ns))
        elif stat.S_ISREG(mode):
            import shutil  # here: a copy-up is rare, and shutil costs ~4 ms at start
            if content:
                shutil.copy2(src, dst)
            else:
                os.close(os.open(dst, os.O_CREAT | os.O_WRONLY, stat.S_IMODE(mode)))
                shutil.copystat(src, dst)
        else:
            raise SyscallError(errno.EOPNOTSUPP)
        return dst

    def in_lower(self, res: Resolved) -> bool:
        """Does a cow mount's lower layer show something at res?"""
        m = res.mount
        return _lstat(join(m.layers[1], res.rel)) is not None and not self._whited(m, res.rel) \
            and res.rel not in m.opaque

    def copy_up_tree(self, res: Resolved) -> None:
        """Copy a cow directory and all the view shows in it to the upper
        layer, which then holds the whole of it."""
        self.copy_up(res)
        for name in self.entries(res):
            child = self.lookup(join(res.vpath.rstrip("/"), name) or "/")
            if child.st is None:
                continue
            if stat.S_ISDIR(child.st.st_mode):
                self.copy_up_tree(child)
            else:
                self.copy_up(child)

    def make_opaque(self, res: Resolved) -> None:
        m = res.mount
        if res.rel not in m.opaque:
            m.opaque.add(res.rel)
            m.cow_save()

    def whiteout(self, res: Resolved) -> None:
        """After removing res from a cow mount's upper layer: hide the lower
        entry too, if there is one."""
        m = res.mount
        if _lstat(join(m.layers[1], res.rel)) is not None and not self._whited(m, res.rel):
            m.whiteouts.add(res.rel)
            m.cow_save()

    def unwhiteout(self, res: Resolved, is_dir: bool) -> None:
        """A new entry at a whited-out name: a new directory there must not
        show the old lower directory's entries (it is opaque)."""
        m = res.mount
        if res.rel in m.whiteouts:
            m.whiteouts.discard(res.rel)
            if is_dir:
                m.opaque.add(res.rel)
            m.cow_save()


def _mkdtemp(prefix: str, parent: str) -> str:
    """A new directory of ours (mode 700) named prefix + random hex, as
    tempfile.mkdtemp makes (without importing tempfile, ~9 ms)."""
    for _ in range(100):
        path = os.path.join(parent, prefix + os.urandom(6).hex())
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free name for a private directory", parent)


def _remove_stale(base: str) -> None:
    """Private directories of hypervisors that were killed (SIGKILL leaves
    no time to clean up) go when the next one starts."""
    for name in os.listdir(base):
        parts = name.split("-")
        if len(parts) == 3 and parts[0] == "umview" and parts[1].isdigit():
            if not os.path.exists(f"/proc/{parts[1]}"):
                rmtree(os.path.join(base, name))


def _magic(parent: str, name: str) -> bool:
    parts = parent.split("/")
    if len(parts) < 3 or parts[1] != "proc" or not parts[2].isdigit():
        return False
    rest = parts[3:]
    if len(rest) >= 2 and rest[0] == "task" and rest[1].isdigit():
        rest = rest[2:]
    if not rest:
        return name in ("cwd", "exe", "root")
    return rest == ["fd"] and name.isdigit()


class _Stat:
    """What the walk learns of a file without a full stat: the type and
    identity; any other field is asked of the kernel when first wanted."""

    __slots__ = ("st_mode", "st_ino", "st_dev", "st_nlink", "_path", "_full")

    def __init__(self, mode, ino, dev, nlink, path):
        self.st_mode, self.st_ino, self.st_dev, self.st_nlink = mode, ino, dev, nlink
        self._path = path
        self._full = None

    def __getattr__(self, name):
        if self._full is None:
            self._full = os.lstat(self._path)
        return getattr(self._full, name)


def _beneath(root: int, rel: str, host: str):
    """lstat of rel below directory fd root, with no symlink and no '..'
    on the way (through the C core, one call): the result, False if it does
    not exist, None if the kernel could not tell (a symlink, a mount
    crossing...).  host: the same file's host path, for fields wanted later."""
    r = stat_beneath(root, rel)
    if type(r) is int:
        return False if r == -errno.ENOENT else None
    return _Stat(*r, host)


def _lstat(path: str):
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno in (errno.ENAMETOOLONG, errno.ELOOP):
            raise SyscallError(exc.errno) from None
        if exc.errno == errno.EACCES:
            raise SyscallError(errno.EACCES) from None
        raise


def _placeholder(mode: int) -> int:
    """The type of a listing's placeholder for an entry of type mode: the
    same (its d_type is what a reader of the listing sees), but a device,
    which takes a privilege to make, is an empty file."""
    t = stat.S_IFMT(mode)
    return t if t in (stat.S_IFDIR, stat.S_IFLNK, stat.S_IFIFO, stat.S_IFSOCK) else stat.S_IFREG


def _scan(path: str):
    """(name, file type bits) of each entry of host directory path.  The
    type comes from the directory entry itself where the file system
    gives it (d_type): a stat of each name cost 0.5 ms of the 2.5 ms a
    first listing of a cow mount over the standard library took."""
    try:
        with os.scandir(path) as it:
            for e in it:
                try:
                    if e.is_symlink():
                        mode = stat.S_IFLNK
                    elif e.is_dir(follow_symlinks=False):
                        mode = stat.S_IFDIR
                    elif e.is_file(follow_symlinks=False):
                        mode = stat.S_IFREG
                    else:   # a FIFO, socket or device: d_type does not say which
                        mode = stat.S_IFMT(e.stat(follow_symlinks=False).st_mode)
                except OSError:
                    continue
                yield e.name, mode
    except (FileNotFoundError, NotADirectoryError):
        return


def rmtree(path: str, keep: bool = False) -> None:
    """Remove one of our directories (with keep: only what it holds): each
    directory first gets u+rwx (an archive's skeleton may be read-only);
    symlinks are never followed (a chmod through one would change the
    host), and there is no recursion (trees may nest deeper than Python's
    recursion limit)."""
    if os.path.islink(path) or not os.path.isdir(path):
        if os.path.lexists(path):
            os.unlink(path)
        return
    os.chmod(path, 0o700)
    stack = [path]
    while stack:
        top = stack[-1]
        subdirs = []
        with os.scandir(top) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
                else:
                    os.unlink(entry.path)
        for sub in subdirs:
            os.chmod(sub, 0o700)
        stack.extend(subdirs)
        if not subdirs:  # emptied: its children were popped before it
            stack.pop()
            if top != path or not keep:
                os.rmdir(top)
