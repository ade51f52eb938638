"""The `archive` mount type: a tar or zip file shown read-only.

The format is found from the contents, never the name: gzip, bzip2 and xz
magic numbers mean a compressed tar, a "ustar" header a tar, an end of
central directory record (or a leading local header) a zip, and anything
else is tried as an old-style tar.  Only the standard library reads them.

At mount the whole member list is read and checked, and the *skeleton* is
built in the mirror: every directory, symlink, hard link and special file
as it is, every regular file as a sparse placeholder of its size, with the
archive's permission bits and mtimes (atime = mtime).  Contents are copied
in by `fill`, in chunks, the first time a file is opened or executed; the
skeleton is complete, so `refresh` and `list_dir` have nothing to do.

Decisions:

* Unsafe names: a leading '/' is stripped (as GNU tar and unzip do); a
  member whose normalized name still has a '..' component is skipped with a
  warning, like one whose parent is not a directory in the archive (say,
  'a/b' after a file 'a', or under a symlink), and like a hard link to a
  missing member or a directory.  A member given twice: the last one wins.
* Directories the archive implies but does not list get mode 0755 and the
  archive file's mtime (stable across mounts, unlike the time of the mount).
* FIFOs are real FIFOs.  Device nodes cannot be made without privilege: they
  are empty regular files with no permission bits, so opening one fails
  with EACCES (except for root, which reads nothing).
* Ownership is not kept: every file belongs to the user running the view.
* Zip: a unix mode in the top half of external_attr (written on unix) gives
  the type (directory, symlink, file) and permission bits; otherwise names
  ending in '/' are directories (0755) and the rest files (0644).  A symlink
  holds its target as contents.  The mtime comes from the extended
  timestamp field (UTC) when there is one, else from the DOS date and time
  (local time, 2 s resolution).  Names without the UTF-8 flag that are
  valid UTF-8 are read as UTF-8 (Info-ZIP on unix writes them that way),
  else as CP437.
* Corruption: a missing, empty, unknown, truncated or corrupt archive is a
  MountError and leaves the mirror empty.  A tar must end with its
  end-of-archive zero block (tarfile alone would take a tar cut at a member
  boundary, or a garbled header, for the end), and a compressed tar is
  decompressed to its end at mount, so the compressed stream's own check
  (CRC, length) is verified too.  A zip member's data is only
  checked (CRC) when it is filled: a failed fill is logged and the open or
  exec fails with EIO (or the errno of the host error, e.g. ENOSPC).
* Cost: the archive stays open for the life of the mount.  Compressed
  tars are read through Python's seekable gzip/bz2/lzma files: a fill
  decompresses from the end of the previous fill when its member lies
  further on, from the start of the archive when it lies before it (files
  opened in archive order cost one pass in all; each mount costs one pass).
  Runs of zeros in a member are skipped rather than written, so the mirror
  keeps the member's holes.
"""
from __future__ import annotations

import bz2
import dataclasses
import decimal
import errno
import gzip
import logging
import lzma
import os
import posixpath
import stat
import struct
import tarfile
import time
import zipfile
import zlib

from umview_py.module import SyscallError

from .backend import MirrorBackend, MountError
from .mounts import rmtree

log = logging.getLogger("umview.vfs")

_CHUNK = 1 << 20
_COMPRESSION = ((b"\x1f\x8b", "gz", "gzip"), (b"BZh", "bz2", "bzip2"),
                (b"\xfd7zXZ\x00", "xz", "xz"))
_DECOMPRESSORS = {"gz": lambda f: gzip.GzipFile(fileobj=f), "bz2": bz2.BZ2File, "xz": lzma.LZMAFile}
# what tarfile says when the first block is no tar header
_NOT_TAR = ("bad checksum", "invalid header", "empty file", "truncated header")
# what reading a member may raise: decompressors and zipfile use their own types
_READ_ERRORS = (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zlib.error,
                lzma.LZMAError, RuntimeError, NotImplementedError)
_ZIP_UTF8_FLAG = 0x800
_ZIP_UNIX = 3            # ZipInfo.create_system of archives written on unix
_ZIP_EXT_TIME = 0x5455   # extended timestamp extra field ("UT")
_PATH_MAX = 4096

DIR, FILE, SYMLINK, FIFO, DEVICE = "dir", "file", "symlink", "fifo", "device"


@dataclasses.dataclass(eq=False)
class _Entry:
    name: str
    kind: str
    mode: int                       # permission bits
    mtime_ns: int
    size: int = 0
    target: str = ""                # a symlink's target
    data: object = None             # the TarInfo / ZipInfo holding a file's contents
    link: _Entry | None = None      # the entry this one is a hard link to


class ArchiveBackend(MirrorBackend):
    type = "archive"
    readonly = True

    def __init__(self, source: str, options: dict[str, str], mirror: str):
        super().__init__(source, options, mirror)
        self._file = self._stream = self._tar = self._zip = None
        self._entries: dict[str, _Entry] = {}
        self._filled: set[str] = set()
        try:
            self._file = open(source, "rb")
            self._implied_mtime = os.fstat(self._file.fileno()).st_mtime_ns
            self._open_archive()
            self._check_tree()
            self._build_skeleton()
        except BaseException as exc:
            self.close()
            rmtree(mirror, keep=True)
            if isinstance(exc, (ValueError, ArithmeticError)):
                # values tarfile and zipfile pass on as they are: a NUL in a
                # name, a time out of range, a pax mtime that is no number
                raise self._error(f"corrupt archive ({exc})") from None
            if not isinstance(exc, OSError):
                raise
            if exc.filename and exc.filename.startswith(mirror + "/"):
                rel = exc.filename[len(mirror) + 1:]
                raise self._error(f"cannot create {rel!r}: {exc.strerror}") from None
            raise self._error(exc.strerror or str(exc)) from None

    def _error(self, reason: str) -> MountError:
        return MountError(f"archive: {self.source}: {reason}")

    # -- reading the member list -------------------------------------------------
    def _open_archive(self) -> None:
        head = self._file.read(512)
        if not head:
            raise self._error("empty file")
        for magic, comp, label in _COMPRESSION:
            if head.startswith(magic):
                return self._open_tar(comp, label)
        if head[257:262] == b"ustar":
            return self._open_tar("", "tar")
        if head.startswith(b"PK\x03\x04") or zipfile.is_zipfile(self._file):
            return self._open_zip()
        self._open_tar("", "tar", magic=False)     # maybe a tar from before POSIX

    def _open_tar(self, comp: str, label: str, magic: bool = True) -> None:
        self._file.seek(0)
        # tarfile.open would turn most errors into "not a gzip file": open
        # the decompressor ourselves to keep the real reason
        self._stream = _DECOMPRESSORS[comp](self._file) if comp else self._file
        try:
            self._tar = tarfile.TarFile(fileobj=self._stream, tarinfo=_StrictTarInfo)
        except tarfile.ReadError as exc:
            if str(exc) not in _NOT_TAR:
                raise self._error(f"truncated or corrupt {label} archive ({exc})") from None
            if comp:
                raise self._error(f"{label} data is not a tar archive") from None
            raise self._error(f"corrupt tar archive ({exc})" if magic
                              else "not a tar or zip archive") from None
        except (EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
            raise self._error(f"truncated or corrupt {label} archive ({exc})") from None
        try:
            members = self._tar.getmembers()
            self._check_stream_end()
        except (tarfile.ReadError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
            raise self._error(f"truncated or corrupt {label} archive ({exc})") from None
        for m in members:
            self._add_tar_member(m)

    def _check_stream_end(self) -> None:
        """Read a compressed stream to its end, which verifies it (CRC,
        length): tarfile stops at the end-of-archive block."""
        if self._stream is not self._file:
            while self._stream.read(_CHUNK):
                pass

    def _add_tar_member(self, m: tarfile.TarInfo) -> None:
        rel = self._safe_name(m.name)
        if rel is None:
            return
        # a pax mtime has up to 9 decimals: a float would lose the last ones
        mtime_ns = int(decimal.Decimal(m.pax_headers.get("mtime", m.mtime)).scaleb(9))
        mode = m.mode & 0o7777
        if m.isreg():
            self._add(_Entry(rel, FILE, mode, mtime_ns, size=m.size, data=m))
        elif m.isdir():
            self._add(_Entry(rel, DIR, mode, mtime_ns))
        elif m.issym():
            self._add(_Entry(rel, SYMLINK, 0o777, mtime_ns, target=m.linkname))
        elif m.islnk():
            self._add_hard_link(rel, m.linkname)
        elif m.isfifo():
            self._add(_Entry(rel, FIFO, mode, mtime_ns))
        elif m.ischr() or m.isblk():
            self._add(_Entry(rel, DEVICE, 0, mtime_ns))
        else:
            log.warning("archive: %s: skipping %r: unknown member type %r", self.source, m.name, m.type)

    def _add_hard_link(self, rel: str, linkname: str) -> None:
        target_rel = self._safe_name(linkname)
        target = self._entries.get(target_rel) if target_rel is not None else None
        if target is None or target.kind == DIR:
            log.warning("archive: %s: skipping hard link %r: no member %r to link to",
                        self.source, rel, linkname)
            return
        canonical = target.link or target
        self._add(dataclasses.replace(canonical, name=rel, link=canonical))

    def _open_zip(self) -> None:
        self._file.seek(0)
        try:
            self._zip = zipfile.ZipFile(self._file)
            for info in self._zip.infolist():
                self._add_zip_member(info)
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error, lzma.LZMAError,
                RuntimeError, NotImplementedError) as exc:
            raise self._error(f"truncated or corrupt zip archive ({exc})") from None

    def _add_zip_member(self, info: zipfile.ZipInfo) -> None:
        name = info.filename
        if not info.flag_bits & _ZIP_UTF8_FLAG:
            try:
                name = name.encode("cp437").decode("utf-8")
            except UnicodeError:
                pass            # really CP437
        rel = self._safe_name(name)
        if rel is None:
            return
        unix_mode = info.external_attr >> 16 if info.create_system == _ZIP_UNIX else 0
        mtime_ns = _zip_mtime_ns(info)
        if stat.S_ISLNK(unix_mode):
            if info.file_size > _PATH_MAX:
                log.warning("archive: %s: skipping symlink %r: target too long", self.source, name)
                return
            target = self._zip.read(info).decode("utf-8", "surrogateescape")
            self._add(_Entry(rel, SYMLINK, 0o777, mtime_ns, target=target))
        elif stat.S_ISDIR(unix_mode) or info.is_dir():
            self._add(_Entry(rel, DIR, unix_mode & 0o7777 if unix_mode else 0o755, mtime_ns))
        else:
            self._add(_Entry(rel, FILE, unix_mode & 0o7777 if unix_mode else 0o644, mtime_ns,
                             size=info.file_size, data=info))

    def _safe_name(self, name: str) -> str | None:
        """The member's path inside the mount ('' for its root), or None
        when it would lie outside."""
        rel = posixpath.normpath(name.lstrip("/") or ".")
        if rel == ".":
            return ""
        if rel == ".." or rel.startswith("../"):
            log.warning("archive: %s: skipping %r: outside the archive", self.source, name)
            return None
        return rel

    def _add(self, entry: _Entry) -> None:
        if entry.name == "" and entry.kind != DIR:
            log.warning("archive: %s: skipping a root that is not a directory", self.source)
            return
        self._entries[entry.name] = entry

    # -- the tree -------------------------------------------------------------
    def _check_tree(self) -> None:
        """Give every entry a parent directory, dropping entries whose
        parent is not one, and drop hard links whose target was dropped
        or replaced (a copy of its contents stands in for such a link)."""
        entries = self._entries
        entries.setdefault("", _Entry("", DIR, 0o755, self._implied_mtime))
        dropped: set[str] = set()

        def parent_ok(rel: str) -> bool:
            missing = []
            while rel not in entries:       # the root always is
                if rel in dropped:
                    return False
                missing.append(rel)
                rel = posixpath.dirname(rel)
            if entries[rel].kind != DIR:
                return False
            for name in missing:
                entries[name] = _Entry(name, DIR, 0o755, self._implied_mtime)
            return True

        for rel in sorted(entries):     # a parent sorts before its children
            if rel and not parent_ok(posixpath.dirname(rel)):
                log.warning("archive: %s: skipping %r: its parent is not a directory",
                            self.source, rel)
                dropped.add(rel)
                del entries[rel]
        for entry in entries.values():
            if entry.link is not None and entries.get(entry.link.name) is not entry.link:
                entry.link = None

    def _build_skeleton(self) -> None:
        entries = sorted(self._entries.values(), key=lambda e: e.name)
        for e in entries:
            if e.link is None:
                self._create(e)
        for e in entries:
            if e.link is not None:
                os.link(self.mirror_path(e.link.name), self.mirror_path(e.name),
                        follow_symlinks=False)
        # last, and children first: making entries changes a directory's
        # mtime, and a directory without u+wx could not be filled in
        for e in reversed(entries):
            if e.kind == DIR:
                path = self.mirror_path(e.name)
                os.chmod(path, e.mode)
                os.utime(path, ns=(e.mtime_ns, e.mtime_ns))

    def _create(self, e: _Entry) -> None:
        path = self.mirror_path(e.name)
        if e.kind == DIR:
            if e.name:
                os.mkdir(path, 0o700)
            else:
                os.chmod(path, 0o700)
            return
        if e.kind == SYMLINK:
            os.symlink(e.target, path)
        else:
            if e.kind == FIFO:
                os.mkfifo(path, 0o600)
            else:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                try:
                    os.ftruncate(fd, e.size)
                finally:
                    os.close(fd)
            os.chmod(path, e.mode)
        os.utime(path, ns=(e.mtime_ns, e.mtime_ns), follow_symlinks=False)

    # -- the MirrorBackend interface --------------------------------------------
    def fill(self, rel: str) -> None:
        entry = self._entries.get(rel)
        if entry is None or entry.kind != FILE:
            return
        entry = entry.link or entry     # hard links share the canonical file
        if entry.name in self._filled:
            return
        path = self.mirror_path(entry.name)
        try:
            # the placeholder has the archive's mode: 0444, 0555, even 0
            os.chmod(path, entry.mode | stat.S_IRUSR | stat.S_IWUSR)
            try:
                with open(path, "r+b") as dst, self._open_member(entry.data) as src:
                    while chunk := src.read(_CHUNK):
                        if chunk.count(0) == len(chunk):
                            dst.seek(len(chunk), os.SEEK_CUR)  # already a hole
                        else:
                            dst.write(chunk)
            finally:
                os.chmod(path, entry.mode)
                os.utime(path, ns=(entry.mtime_ns, entry.mtime_ns))
        except _READ_ERRORS as exc:
            log.warning("archive: %s: cannot read %r: %s", self.source, entry.name, exc)
            raise SyscallError(getattr(exc, "errno", None) or errno.EIO) from None
        self._filled.add(entry.name)

    def _open_member(self, data):
        if self._tar is not None:
            return self._tar.extractfile(data)
        return self._zip.open(data)

    def statfs(self) -> dict:
        size = sum(e.size for e in self._entries.values() if e.kind == FILE and e.link is None)
        return {"f_bsize": 4096, "f_blocks": -(-size // 4096), "f_bfree": 0, "f_bavail": 0,
                "f_files": len(self._entries), "f_ffree": 0, "f_namemax": 255}

    def close(self) -> None:
        for f in (self._tar, self._zip, self._stream, self._file):
            if f is not None:
                f.close()


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile ends the member list silently, as if at the end-of-archive
    block, at the end of the file or at a block that is no header: a
    truncated or corrupt archive would look complete."""

    @classmethod
    def fromtarfile(cls, tf: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tf)
        except (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError):
            if tf.offset == 0:
                raise
            reason = "unexpected end of data"
        except tarfile.InvalidHeaderError:
            if tf.offset == 0:
                raise
            reason = f"no valid header at offset {tf.offset}"
        # the one header error that tarfile.next reports as an error
        raise tarfile.SubsequentHeaderError(reason)


def _zip_mtime_ns(info: zipfile.ZipInfo) -> int:
    extra = info.extra
    while len(extra) >= 4:
        tag, size = struct.unpack("<HH", extra[:4])
        # UT: a flags byte, then the mtime (seconds, UTC) when flag bit 0 is set
        if tag == _ZIP_EXT_TIME and size >= 5 and len(extra) >= 9 and extra[4] & 1:
            return struct.unpack("<i", extra[5:9])[0] * 1_000_000_000
        extra = extra[4 + size:]
    return int(time.mktime(info.date_time + (0, 0, -1))) * 1_000_000_000
