"""A deterministic POSIX file system conformance program.

    python3 posix_suite.py DIR            run every step in DIR
    python3 posix_suite.py --prepare DIR  only make DIR/pre (the tree the
                                          steps of section "pre" work on)
    --skip GROUP[,GROUP...] before either: leave out a section (pre, files,
    links, rename, dirs, meta, mmap, paths), the RENAME_EXCHANGE steps
    (exchange) or the rename of a directory of DIR/pre (dirrename), for a
    file system known not to have them

Each step prints one line: its name and its result, or the errno name of the
error it got.  Nothing printed depends on the file system type or on where
DIR is: no inode or device numbers, owners, atimes, block counts, directory
sizes or directory link counts (they differ between ext4, tmpfs, overlayfs);
modification times only where a step set them; paths relative to DIR (a path
outside DIR is printed in full, so it shows up as a difference).  The output
is the same for a DIR on ext4 and on tmpfs, so that a run at a mount point in
a view can be compared byte for byte with a native run.

DIR/pre may exist already (a copy-on-write mount over a directory made with
--prepare): the steps then modify files of the lower layer.  The output does
not say whether pre was made now.

Uses the os module only (and ctypes for renameat2, which os lacks).  Exits 0.
"""
import ctypes
import errno
import hashlib
import mmap
import os
import stat
import sys

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
T1 = 1_000_000_123_456_789          # explicit times, with nanoseconds
T2 = 1_234_567_890_987_654_321
T3 = 946_782_245_000_000_001        # 2000-01-02 03:04:05
BASE = ""                           # realpath of DIR, set in main()
SKIP = set()                        # step groups left out (--skip), see main()
_libc = ctypes.CDLL(None, use_errno=True)


def out(name, value):
    print(f"{name}: {value}", flush=True)


def step(name, fn, *args, **kw):
    """Run fn; print its result, or the error's errno name."""
    try:
        value = fn(*args, **kw)
    except OSError as exc:
        value = errno.errorcode.get(exc.errno, f"errno {exc.errno}")
    except Exception as exc:  # a bug in the step itself: still one line
        value = f"EXCEPTION {type(exc).__name__}: {exc}"
    out(name, "ok" if value is None else value)
    return value


def rel(path):
    """A path shown relative to DIR: <DIR>/..., or in full when outside."""
    if path == BASE:
        return "<DIR>"
    if path.startswith(BASE + "/"):
        return "<DIR>/" + path[len(BASE) + 1:]
    return f"OUTSIDE {path}"


def kind(mode):
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "chr"),
                       (stat.S_ISBLK, "blk")):
        if test(mode):
            return name
    return "?"


def fmt(st, mtime=False):
    """type, permission bits, and (not for directories) size and link count."""
    parts = [kind(st.st_mode), f"{stat.S_IMODE(st.st_mode):04o}"]
    if not stat.S_ISDIR(st.st_mode):
        parts += [f"size={st.st_size}", f"nlink={st.st_nlink}"]
    if mtime:
        parts.append(f"mtime={st.st_mtime_ns}")
    return " ".join(parts)


def st(path, follow=True, mtime=False, **kw):
    return fmt(os.stat(path, follow_symlinks=follow, **kw), mtime)


def write(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode=0o644, **kw):
    fd = os.open(path, flags, mode, **kw)
    try:
        n = 0
        while n < len(data):
            n += os.write(fd, data[n:])
        return n
    finally:
        os.close(fd)


def read(path, **kw):
    fd = os.open(path, os.O_RDONLY, **kw)
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)
    finally:
        os.close(fd)


def show(data):
    """Bytes as a short printable string (long ones as length + digest)."""
    if len(data) <= 80:
        return repr(data)
    return f"len={len(data)} md5={hashlib.md5(data).hexdigest()}"


def tree(path):
    """Recursive listing: relative name, fmt, content or target."""
    rows = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            s = os.lstat(p)
            row = f"{os.path.relpath(p, path)} [{fmt(s)}]"
            if stat.S_ISREG(s.st_mode):
                row += " " + show(read(p))
            elif stat.S_ISLNK(s.st_mode):
                row += " -> " + os.readlink(p)
            rows.append(row)
    return "; ".join(rows) or "(empty)"


def renameat2(old, new, flags, olddirfd=AT_FDCWD, newdirfd=AT_FDCWD):
    if _libc.renameat2(olddirfd, os.fsencode(old), newdirfd, os.fsencode(new), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


# ----------------------------------------------------------------------
# the tree that `--prepare` makes, and that section "pre" changes

PRE_FILES = [  # (name, content, mode)
    ("a.txt", b"alpha\n", 0o644),
    ("b.txt", b"bravo\n" * 10, 0o600),
    ("run.sh", b"#!/bin/sh\necho run\n", 0o755),
    ("dir/x.txt", b"x-ray\n", 0o644),
    ("dir/sub/y.txt", b"yankee\n", 0o640),
    ("gone/g1.txt", b"golf\n", 0o644),
    ("gone/deeper/g2.txt", b"golf 2\n", 0o644),
    ("moved/m.txt", b"mike\n", 0o644),
    ("moved/in/m2.txt", b"mike 2\n", 0o600),
    ("keep/k.txt", b"kilo\n", 0o444),
    ("hard1", b"shared by two names\n", 0o644),
]


def prepare(base):
    pre = os.path.join(base, "pre")
    if os.path.isdir(pre):
        return
    for name, data, mode in PRE_FILES:
        p = os.path.join(pre, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        write(p, data)
        os.chmod(p, mode)
    os.link(os.path.join(pre, "hard1"), os.path.join(pre, "hard2"))
    os.symlink("a.txt", os.path.join(pre, "link"))
    os.chmod(os.path.join(pre, "dir", "sub"), 0o750)
    for name, _, _ in PRE_FILES:
        os.utime(os.path.join(pre, name), ns=(T3, T3))


def section_pre(d):
    """Changes to files that may live in a lower, read-only layer."""
    pre = os.path.join(d, "pre")
    P = lambda *names: os.path.join(pre, *names)  # noqa: E731
    step("pre.tree", tree, pre)
    for name, _, _ in PRE_FILES:
        step(f"pre.stat {name}", st, P(name), mtime=True)
    step("pre.stat hard2", st, P("hard2"), mtime=True)
    step("pre.stat link", st, P("link"), follow=False)
    # read, then append to a lower file (a copy-up keeps the old content)
    step("pre.read a", lambda: show(read(P("a.txt"))))
    step("pre.append a", write, P("a.txt"), b"appended\n", os.O_WRONLY | os.O_APPEND)
    step("pre.read a again", lambda: show(read(P("a.txt"))))
    # metadata only: mode, times
    step("pre.chmod b", os.chmod, P("b.txt"), 0o640)
    step("pre.stat b", st, P("b.txt"), mtime=True)
    step("pre.read b", lambda: show(read(P("b.txt"))))
    step("pre.utime keep/k", os.utime, P("keep", "k.txt"), ns=(T1, T2))
    step("pre.stat keep/k", st, P("keep", "k.txt"), mtime=True)
    step("pre.truncate run.sh", os.truncate, P("run.sh"), 9)
    step("pre.read run.sh", lambda: show(read(P("run.sh"))))
    # the read-only mode of a lower file (root ignores it: print access())
    step("pre.access k W_OK", os.access, P("keep", "k.txt"), os.W_OK)
    step("pre.rmdir keep (not empty)", os.rmdir, P("keep"))
    # a lower directory emptied, removed, made again: its old entries stay gone
    step("pre.rmdir dir/sub (not empty)", os.rmdir, P("dir", "sub"))
    step("pre.unlink dir/sub/y", os.unlink, P("dir", "sub", "y.txt"))
    step("pre.listdir dir/sub", lambda: sorted(os.listdir(P("dir", "sub"))))
    step("pre.rmdir dir/sub", os.rmdir, P("dir", "sub"))
    step("pre.stat dir/sub", st, P("dir", "sub"))
    step("pre.listdir dir", lambda: sorted(os.listdir(P("dir"))))
    step("pre.mkdir dir/sub (old name)", os.mkdir, P("dir", "sub"))
    step("pre.stat new dir/sub", st, P("dir", "sub"))
    step("pre.listdir new dir/sub", lambda: sorted(os.listdir(P("dir", "sub"))))
    step("pre.create in new dir/sub", write, P("dir", "sub", "new.txt"), b"new\n")
    step("pre.listdir new dir/sub again", lambda: sorted(os.listdir(P("dir", "sub"))))
    step("pre.read old name in new dir/sub", read, P("dir", "sub", "y.txt"))
    # remove a lower file, then make one of the same name
    step("pre.unlink link", os.unlink, P("link"))
    step("pre.readlink link", os.readlink, P("link"))
    step("pre.unlink dir/x", os.unlink, P("dir", "x.txt"))
    step("pre.read dir/x", read, P("dir", "x.txt"))
    step("pre.create dir/x", write, P("dir", "x.txt"), b"new x\n",
         os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    step("pre.read dir/x", lambda: show(read(P("dir", "x.txt"))))
    # a whole lower tree removed (rm -r order), then a directory of its name
    step("pre.rm -r gone", lambda: [os.unlink(P("gone", "deeper", "g2.txt")),
                                    os.rmdir(P("gone", "deeper")), os.unlink(P("gone", "g1.txt")),
                                    os.rmdir(P("gone"))] and None)
    step("pre.stat gone", st, P("gone"))
    step("pre.listdir pre", lambda: sorted(os.listdir(pre)))
    step("pre.mkdir gone", os.mkdir, P("gone"))
    step("pre.listdir new gone", lambda: sorted(os.listdir(P("gone"))))
    step("pre.stat gone/deeper", st, P("gone", "deeper"))
    # a lower file renamed, a lower file replaced by rename
    step("pre.rename a -> a2", os.rename, P("a.txt"), P("a2.txt"))
    step("pre.read a2", lambda: show(read(P("a2.txt"))))
    step("pre.stat a", st, P("a.txt"))
    step("pre.rename b over keep/k", os.rename, P("b.txt"), P("keep", "k.txt"))
    step("pre.read keep/k", lambda: show(read(P("keep", "k.txt"))))
    # (hard links of a lower layer are only looked at: a copy-up breaks them
    # on overlayfs too, and its nlink stays that of the lower file)
    # a lower directory renamed (overlayfs without redirect_dir says EXDEV;
    # POSIX and every native file system do it)
    if "dirrename" in SKIP:
        out("pre.rename moved", "skipped")
    else:
        step("pre.rename moved -> moved2", os.rename, P("moved"), P("moved2"))
        step("pre.stat moved", st, P("moved"))
        step("pre.tree moved2", tree, P("moved2"))
    step("pre.tree end", tree, pre)


def section_files(d):
    f = os.path.join(d, "file")
    step("create", write, f, b"hello\n", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    step("stat file", st, f)
    step("read", lambda: show(read(f)))
    step("open O_EXCL existing", write, f, b"", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    step("open missing", read, os.path.join(d, "missing"))
    step("open O_DIRECTORY on file", os.open, f, os.O_RDONLY | os.O_DIRECTORY)
    step("open dir O_WRONLY", os.open, d, os.O_WRONLY)
    step("open file/x", os.open, os.path.join(f, "x"), os.O_RDONLY)
    step("O_APPEND", write, f, b"more\n", os.O_WRONLY | os.O_APPEND)
    step("after append", lambda: show(read(f)))

    def append_after_seek():
        fd = os.open(f, os.O_RDWR | os.O_APPEND)
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, b"end\n")
            return os.lseek(fd, 0, os.SEEK_CUR)
        finally:
            os.close(fd)
    step("O_APPEND after lseek 0, offset", append_after_seek)
    step("after append 2", lambda: show(read(f)))
    step("O_TRUNC", write, f, b"new\n", os.O_WRONLY | os.O_TRUNC)
    step("after O_TRUNC", lambda: show(read(f)))
    step("stat after O_TRUNC", st, f)

    def seeks():
        fd = os.open(f, os.O_RDWR)
        try:
            os.write(fd, b"0123456789")
            res = [os.lseek(fd, 3, os.SEEK_SET), os.read(fd, 2).decode(),
                   os.lseek(fd, 2, os.SEEK_CUR), os.read(fd, 1).decode(),
                   os.lseek(fd, -4, os.SEEK_END), os.read(fd, 10).decode(),
                   os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 0, os.SEEK_HOLE)]
            try:
                os.lseek(fd, -20, os.SEEK_END)
            except OSError as exc:
                res.append(errno.errorcode[exc.errno])
            try:
                os.lseek(fd, 100, os.SEEK_DATA)
            except OSError as exc:
                res.append(errno.errorcode[exc.errno])
            return res
        finally:
            os.close(fd)
    step("lseek SET/CUR/END/DATA/HOLE", seeks)

    def preadwrite():
        fd = os.open(f, os.O_RDWR)
        try:
            os.pwrite(fd, b"XY", 4)
            os.pwrite(fd, b"!", 15)   # past the end: a gap of zeros
            return [os.pread(fd, 100, 0), os.lseek(fd, 0, os.SEEK_CUR), os.fstat(fd).st_size]
        finally:
            os.close(fd)
    step("pread/pwrite", preadwrite)
    step("truncate grow", os.truncate, f, 20)
    step("after grow", lambda: show(read(f)))
    step("truncate shrink", os.truncate, f, 3)
    step("after shrink", lambda: show(read(f)))

    def ftrunc():
        fd = os.open(f, os.O_RDWR)
        try:
            os.ftruncate(fd, 6)
            a = os.fstat(fd).st_size
            os.ftruncate(fd, 2)
            return [a, os.fstat(fd).st_size, os.pread(fd, 10, 0)]
        finally:
            os.close(fd)
    step("ftruncate grow, shrink", ftrunc)
    step("truncate missing", os.truncate, os.path.join(d, "missing"), 0)
    step("truncate dir", os.truncate, d, 0)
    big = bytes((i * 7 + i // 251) & 0xFF for i in range(1 << 20))
    step("write 1 MiB", write, os.path.join(d, "big"), big)
    step("read 1 MiB", lambda: show(read(os.path.join(d, "big"))))
    step("stat big", st, os.path.join(d, "big"))

    def syncs():
        fd = os.open(f, os.O_RDWR)
        try:
            return [os.fsync(fd), os.fdatasync(fd)]
        finally:
            os.close(fd)
    step("fsync/fdatasync", syncs)

    # an open file outlives its name
    def unlinked():
        p = os.path.join(d, "gone")
        fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"still here")
            os.unlink(p)
            res = [os.path.exists(p), os.fstat(fd).st_nlink, os.pread(fd, 100, 0)]
            res.append(rel_link(f"/proc/self/fd/{fd}"))
            return res
        finally:
            os.close(fd)
    step("unlinked open file", unlinked)


def rel_link(link):
    """readlink of a /proc magic link, with DIR shown as <DIR>."""
    target = os.readlink(link)
    suffix = ""
    if target.endswith(" (deleted)"):
        target, suffix = target[:-len(" (deleted)")], " (deleted)"
    return rel(target) + suffix


def section_links(d):
    f = os.path.join(d, "lfile")
    write(f, b"linked\n")
    step("link", os.link, f, os.path.join(d, "lfile2"))
    step("nlink after link", lambda: [os.stat(f).st_nlink, os.stat(os.path.join(d, "lfile2")).st_nlink])
    step("link onto existing", os.link, f, os.path.join(d, "lfile2"))
    os.mkdir(os.path.join(d, "ldir"))
    step("link a dir", os.link, os.path.join(d, "ldir"), os.path.join(d, "dirlink"))
    step("link missing", os.link, os.path.join(d, "missing"), os.path.join(d, "x"))
    step("write via link", write, os.path.join(d, "lfile2"), b"changed\n")
    step("read via other name", lambda: show(read(f)))
    step("unlink one name", os.unlink, f)
    step("nlink after unlink", lambda: os.stat(os.path.join(d, "lfile2")).st_nlink)
    step("unlink missing", os.unlink, f)
    step("unlink a dir", os.unlink, os.path.join(d, "ldir"))

    # symbolic links
    t = os.path.join(d, "target")
    write(t, b"target data\n")
    step("symlink", os.symlink, "target", os.path.join(d, "sym"))
    step("symlink onto existing", os.symlink, "target", os.path.join(d, "sym"))
    step("readlink", os.readlink, os.path.join(d, "sym"))
    step("lstat symlink", lambda: kind(os.lstat(os.path.join(d, "sym")).st_mode)
         + f" size={os.lstat(os.path.join(d, 'sym')).st_size}")
    step("stat through symlink", st, os.path.join(d, "sym"))
    step("read through symlink", lambda: show(read(os.path.join(d, "sym"))))
    step("readlink of a file", os.readlink, t)
    step("open O_NOFOLLOW symlink", os.open, os.path.join(d, "sym"), os.O_RDONLY | os.O_NOFOLLOW)
    step("open O_NOFOLLOW|O_PATH symlink",
         lambda: kind(os.fstat(os.open(os.path.join(d, "sym"), os.O_PATH | os.O_NOFOLLOW)).st_mode))
    # an absolute symlink into DIR: followed in the namespace of the caller
    step("symlink absolute", os.symlink, os.path.join(BASE, "target"), os.path.join(d, "abssym"))
    step("readlink absolute", lambda: rel(os.readlink(os.path.join(d, "abssym"))))
    step("read through absolute symlink", lambda: show(read(os.path.join(d, "abssym"))))
    os.mkdir(os.path.join(d, "sdir"))
    step("symlink ../target", os.symlink, "../target", os.path.join(d, "sdir", "up"))
    step("read through ../ symlink", lambda: show(read(os.path.join(d, "sdir", "up"))))
    step("symlink to a dir", os.symlink, "sdir", os.path.join(d, "dsym"))
    step("stat dir through symlink", st, os.path.join(d, "dsym", "up"))
    step("listdir through symlink", lambda: sorted(os.listdir(os.path.join(d, "dsym"))))
    step("dangling symlink", os.symlink, "nowhere", os.path.join(d, "dangle"))
    step("stat dangling", st, os.path.join(d, "dangle"))
    step("O_CREAT|O_EXCL on dangling", write, os.path.join(d, "dangle"), b"x",
         os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    step("O_CREAT through dangling", write, os.path.join(d, "dangle"), b"made\n")
    step("the dangling target now", lambda: show(read(os.path.join(d, "nowhere"))))
    step("symlink loop", os.symlink, "loop2", os.path.join(d, "loop1"))
    step("symlink loop 2", os.symlink, "loop1", os.path.join(d, "loop2"))
    step("stat loop", st, os.path.join(d, "loop1"))
    step("open path through a file symlink", os.open, os.path.join(d, "sym", "x"), os.O_RDONLY)
    step("unlink symlink", os.unlink, os.path.join(d, "sym"))
    step("target survives", lambda: show(read(t)))
    step("rmdir through symlink", os.rmdir, os.path.join(d, "dsym"))


def section_rename(d):
    r = os.path.join(d, "ren")
    os.mkdir(r)
    write(os.path.join(r, "a"), b"A\n")
    write(os.path.join(r, "b"), b"B\n")
    os.link(os.path.join(r, "b"), os.path.join(r, "b-link"))
    step("rename over existing", os.rename, os.path.join(r, "a"), os.path.join(r, "b"))
    step("after rename", lambda: [os.path.exists(os.path.join(r, "a")), read(os.path.join(r, "b")),
                                  os.stat(os.path.join(r, "b-link")).st_nlink,
                                  read(os.path.join(r, "b-link"))])
    step("rename to itself", os.rename, os.path.join(r, "b"), os.path.join(r, "b"))
    step("rename missing", os.rename, os.path.join(r, "a"), os.path.join(r, "c"))
    for p in ("d1/x", "d2/y", "empty/"):
        os.makedirs(os.path.join(r, os.path.dirname(p)), exist_ok=True)
        if not p.endswith("/"):
            write(os.path.join(r, p), p.encode())
    step("rename dir over non-empty dir", os.rename, os.path.join(r, "d1"), os.path.join(r, "d2"))
    step("rename dir over empty dir", os.rename, os.path.join(r, "d1"), os.path.join(r, "empty"))
    step("after dir rename", lambda: [sorted(os.listdir(r)),
                                      sorted(os.listdir(os.path.join(r, "empty")))])
    step("rename file over dir", os.rename, os.path.join(r, "b"), os.path.join(r, "d2"))
    step("rename dir over file", os.rename, os.path.join(r, "d2"), os.path.join(r, "b"))
    step("rename dir into itself", os.rename, os.path.join(r, "d2"), os.path.join(r, "d2", "in"))
    step("rename into missing dir", os.rename, os.path.join(r, "b"), os.path.join(r, "no", "b"))
    write(os.path.join(r, "p"), b"P\n")
    write(os.path.join(r, "q"), b"Q\n")
    step("RENAME_NOREPLACE existing", renameat2, os.path.join(r, "p"), os.path.join(r, "q"),
         RENAME_NOREPLACE)
    step("RENAME_NOREPLACE new", renameat2, os.path.join(r, "p"), os.path.join(r, "p2"),
         RENAME_NOREPLACE)
    if "exchange" in SKIP:
        out("RENAME_EXCHANGE", "skipped")
        step("rename tree", tree, r)
        return
    step("RENAME_EXCHANGE", renameat2, os.path.join(r, "p2"), os.path.join(r, "q"),
         RENAME_EXCHANGE)
    step("after exchange", lambda: [read(os.path.join(r, "p2")), read(os.path.join(r, "q"))])
    step("RENAME_EXCHANGE file and dir", renameat2, os.path.join(r, "q"),
         os.path.join(r, "empty"), RENAME_EXCHANGE)
    step("after exchange 2", lambda: [kind(os.lstat(os.path.join(r, n)).st_mode)
                                      for n in ("q", "empty")])
    step("RENAME_EXCHANGE missing", renameat2, os.path.join(r, "p2"), os.path.join(r, "zz"),
         RENAME_EXCHANGE)
    step("rename tree", tree, r)


def section_dirs(d):
    m = os.path.join(d, "mk")
    step("mkdir", os.mkdir, m, 0o755)
    step("mkdir existing", os.mkdir, m)
    step("mkdir in missing parent", os.mkdir, os.path.join(d, "no", "such"))
    step("mkdir under a file", os.mkdir, os.path.join(d, "file", "sub"))
    step("mkdir mode 0700", os.mkdir, os.path.join(m, "priv"), 0o700)
    step("stat priv", st, os.path.join(m, "priv"))
    step("rmdir non-empty", os.rmdir, m)
    step("rmdir a file", os.rmdir, os.path.join(d, "file"))
    step("rmdir missing", os.rmdir, os.path.join(d, "missing"))
    step("rmdir .", os.rmdir, os.path.join(m, "priv", "."))
    step("rmdir priv", os.rmdir, os.path.join(m, "priv"))
    step("rmdir mk", os.rmdir, m)
    step("stat mk", st, m)
    # 500 entries
    many = os.path.join(d, "many")
    os.mkdir(many)
    names = [f"entry-{i:03d}" + ("" if i % 3 else ".txt") for i in range(500)]
    for i, name in enumerate(names):
        if i % 50 == 7:
            os.mkdir(os.path.join(many, name))
        else:
            write(os.path.join(many, name), str(i).encode())
    got = sorted(os.listdir(many))
    step("readdir 500 count", lambda: len(got))
    step("readdir 500 same names", lambda: got == sorted(names))
    step("readdir 500 digest", lambda: hashlib.md5("\n".join(got).encode()).hexdigest())

    def scan_count():
        with os.scandir(many) as it:
            entries = list(it)
        return [len(entries), sum(e.is_dir(follow_symlinks=False) for e in entries),
                sum(e.is_file(follow_symlinks=False) for e in entries)]
    step("scandir 500 count, dirs, files", scan_count)

    def readdir_fd():
        fd = os.open(many, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return len(os.listdir(fd))
        finally:
            os.close(fd)
    step("readdir by fd", readdir_fd)
    # what readdir shows after changes (no stale listing)
    step("remove half", lambda: [os.rmdir(p) if os.path.isdir(p) else os.unlink(p)
                                 for p in (os.path.join(many, n) for n in names[::2])] and None)
    step("readdir after removing", lambda: len(os.listdir(many)))
    write(os.path.join(many, "zz-new"), b"")
    step("readdir after creating", lambda: sorted(os.listdir(many))[-2:])
    step("rmdir with 250 entries", os.rmdir, many)

    # scandir d_type
    s = os.path.join(d, "scan")
    os.mkdir(s)
    write(os.path.join(s, "f"), b"")
    os.mkdir(os.path.join(s, "d"))
    os.symlink("f", os.path.join(s, "l"))
    os.symlink("d", os.path.join(s, "ld"))
    os.symlink("none", os.path.join(s, "dangling"))

    def scan_types():
        with os.scandir(s) as it:
            return [(e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False),
                     e.is_symlink(), e.is_dir(), e.is_file())
                    for e in sorted(it, key=lambda e: e.name)]
    step("scandir d_type", scan_types)


def section_meta(d):
    f = os.path.join(d, "meta")
    write(f, b"meta\n")
    for mode in (0o600, 0o755, 0o4755, 0o1777, 0o000, 0o644):
        step(f"chmod {mode:04o}", lambda m=mode: (os.chmod(f, m), st(f))[1])
    step("chmod missing", os.chmod, os.path.join(d, "missing"), 0o644)

    def fchmod():
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fchmod(fd, 0o640)
            return fmt(os.fstat(fd))
        finally:
            os.close(fd)
    step("fchmod", fchmod)
    step("chmod dir", lambda: (os.chmod(os.path.join(d, "sdir"), 0o711),
                               st(os.path.join(d, "sdir")))[1])
    step("utime ns", os.utime, f, ns=(T1, T2))
    step("stat mtime", st, f, mtime=True)
    step("utime ns on dir", os.utime, os.path.join(d, "sdir"), ns=(T2, T1))
    step("stat dir mtime", st, os.path.join(d, "sdir"), mtime=True)
    os.utime(os.path.join(d, "target"), ns=(T3, T3))
    step("utime symlink itself", os.utime, os.path.join(d, "abssym"), ns=(T1, T3),
         follow_symlinks=False)
    step("lstat symlink mtime", lambda: os.lstat(os.path.join(d, "abssym")).st_mtime_ns)
    step("target mtime unchanged", lambda: os.stat(os.path.join(d, "target")).st_mtime_ns == T3)

    def futimes():
        fd = os.open(f, os.O_RDONLY)
        try:
            os.utime(fd, ns=(T2, T3))
            return os.fstat(fd).st_mtime_ns
        finally:
            os.close(fd)
    step("futimens", futimes)
    step("utime missing", os.utime, os.path.join(d, "missing"), ns=(T1, T1))
    # access
    step("access F_OK", os.access, f, os.F_OK)
    step("access missing", os.access, os.path.join(d, "missing"), os.F_OK)
    os.chmod(f, 0o644)
    step("access R_OK|W_OK", os.access, f, os.R_OK | os.W_OK)
    step("access X_OK (0644)", os.access, f, os.X_OK)
    os.chmod(f, 0o755)
    step("access X_OK (0755)", os.access, f, os.X_OK)
    step("access effective_ids", os.access, f, os.R_OK, effective_ids=True)
    step("access through symlink", os.access, os.path.join(d, "abssym"), os.R_OK)
    step("access dangling", os.access, os.path.join(d, "loop1"), os.F_OK)
    # xattrs (user.*: ext4 and tmpfs have them)
    step("setxattr", os.setxattr, f, "user.one", b"1")
    step("setxattr 2", os.setxattr, f, "user.two", b"value two")
    step("setxattr XATTR_CREATE existing", os.setxattr, f, "user.one", b"x", os.XATTR_CREATE)
    step("setxattr XATTR_REPLACE missing", os.setxattr, f, "user.three", b"x", os.XATTR_REPLACE)
    step("getxattr", os.getxattr, f, "user.two")
    step("getxattr missing", os.getxattr, f, "user.none")
    step("listxattr", lambda: sorted(n for n in os.listxattr(f) if n.startswith("user.")))
    step("removexattr", os.removexattr, f, "user.one")
    step("listxattr after remove", lambda: sorted(n for n in os.listxattr(f)
                                                  if n.startswith("user.")))
    step("getxattr through symlink", os.getxattr, os.path.join(d, "abssym"), "user.none")
    # statfs: only what is the same on every file system
    step("statvfs", lambda: [os.statvfs(d).f_namemax, os.statvfs(d).f_bsize > 0])
    step("statvfs missing", os.statvfs, os.path.join(d, "missing"))

    def fstatvfs():
        fd = os.open(d, os.O_RDONLY)
        try:
            return os.fstatvfs(fd).f_namemax
        finally:
            os.close(fd)
    step("fstatvfs", fstatvfs)
    step("name too long", os.open, os.path.join(d, "n" * 256), os.O_WRONLY | os.O_CREAT, 0o644)


def section_mmap(d):
    f = os.path.join(d, "mapped")
    write(f, b"\0" * 8192)

    def write_map():
        fd = os.open(f, os.O_RDWR)
        try:
            with mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as m:
                m[0:6] = b"mapped"
                m[4096:4101] = b"page2"
                m.flush()
        finally:
            os.close(fd)
        data = read(f)
        return [data[:6], data[4096:4101], len(data), data.count(0)]
    step("mmap write, read back", write_map)

    def read_map():
        fd = os.open(f, os.O_RDWR)
        try:
            with mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ) as m:
                os.pwrite(fd, b"WRITTEN", 100)  # a write shows in the map
                return [m[100:107], m[0:6], len(m)]
        finally:
            os.close(fd)
    step("write, read in mmap", read_map)

    def private_map():
        fd = os.open(f, os.O_RDWR)
        try:
            with mmap.mmap(fd, 4096, mmap.MAP_PRIVATE) as m:
                m[0:6] = b"privat"
        finally:
            os.close(fd)
        return read(f)[:6]
    step("MAP_PRIVATE does not write", private_map)


def section_paths(d):
    sub = os.path.join(d, "sub")
    os.mkdir(sub)
    write(os.path.join(sub, "inner"), b"inner\n")
    step("stat with . and ..", st, os.path.join(d, "sub", ".", "..", "file"))
    step("stat sub/../sub/./inner", st, os.path.join(d, "sub", "..", "sub", ".", "inner"))
    step("stat DIR/..", lambda: kind(os.stat(os.path.join(d, "..")).st_mode))
    step("stat file/..", st, os.path.join(d, "file", ".."))
    step("stat trailing slash on file", st, os.path.join(d, "file") + "/")
    step("stat trailing slash on dir", st, sub + "/")
    step("stat double slashes", st, d + "//sub///inner")
    # relative paths after chdir
    step("chdir sub", os.chdir, sub)
    step("getcwd", lambda: rel(os.getcwd()))
    step("readlink /proc/self/cwd", rel_link, "/proc/self/cwd")
    step("relative read", lambda: show(read("inner")))
    step("relative ../file", lambda: show(read("../file")))
    step("relative ./../sub/inner", st, "./../sub/inner")
    step("relative create", write, "made-here", b"here\n")
    step("relative mkdir", os.mkdir, "rdir")
    step("relative rename", os.rename, "made-here", "rdir/moved")
    step("relative symlink", os.symlink, "../inner", "rdir/up")
    step("relative read through symlink", lambda: show(read("rdir/up")))
    step("relative listdir", lambda: sorted(os.listdir(".")))
    step("relative listdir ..", lambda: sorted(n for n in os.listdir("..")
                                                if n in ("sub", "file", "pre", "many")))
    step("realpath rdir/up", lambda: rel(os.path.realpath("rdir/up")))
    step("abspath", lambda: rel(os.path.abspath("rdir")))
    step("chdir rdir", os.chdir, "rdir")
    step("getcwd deeper", lambda: rel(os.getcwd()))
    step("chdir ..", os.chdir, "..")
    step("getcwd back", lambda: rel(os.getcwd()))
    step("chdir to a file", os.chdir, "inner")
    step("chdir missing", os.chdir, "missing")

    def proc_fd():
        fd = os.open("inner", os.O_RDONLY)
        fd2 = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            return [rel_link(f"/proc/self/fd/{fd}"), rel_link(f"/proc/self/fd/{fd2}"),
                    rel_link(f"/proc/{os.getpid()}/fd/{fd}")]
        finally:
            os.close(fd)
            os.close(fd2)
    step("readlink /proc/self/fd/N", proc_fd)

    # fd-relative calls
    dfd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
    try:
        step("openat", lambda: show(read("inner", dir_fd=dfd)))
        step("openat create", write, "at-file", b"at\n", dir_fd=dfd)
        step("mkdirat", os.mkdir, "at-dir", dir_fd=dfd)
        step("fstatat", st, "at-file", dir_fd=dfd)
        step("fstatat nofollow", st, "rdir/up", dir_fd=dfd, follow=False)
        step("fstatat ..", st, "../file", dir_fd=dfd)
        step("renameat", os.rename, "at-file", "at-dir/at-file", src_dir_fd=dfd, dst_dir_fd=dfd)
        step("readlinkat", os.readlink, "rdir/up", dir_fd=dfd)
        step("symlinkat", os.symlink, "at-dir", "at-link", dir_fd=dfd)
        step("linkat", os.link, "at-dir/at-file", "at-hard", src_dir_fd=dfd, dst_dir_fd=dfd)
        step("fchmodat", os.chmod, "at-hard", 0o600, dir_fd=dfd)
        step("utimensat at", os.utime, "at-hard", ns=(T1, T2), dir_fd=dfd)
        step("fstatat after", st, "at-dir/at-file", dir_fd=dfd, mtime=True)
        step("faccessat", os.access, "at-hard", os.R_OK, dir_fd=dfd)
        step("unlinkat", os.unlink, "at-hard", dir_fd=dfd)
        step("unlinkat dir (not empty)", os.rmdir, "at-dir", dir_fd=dfd)
        step("unlinkat file as dir", os.rmdir, "inner", dir_fd=dfd)
        step("listdir fd", lambda: sorted(os.listdir(dfd)))
        step("fstat dirfd", lambda: fmt(os.fstat(dfd)))
        step("AT_EMPTY_PATH fstatat", lambda: fmt(os.stat(dfd)))
        step("chdir /", os.chdir, "/")
        step("fchdir", os.fchdir, dfd)
        step("getcwd after fchdir", lambda: rel(os.getcwd()))
        step("relative after fchdir", lambda: show(read("at-dir/at-file")))
    finally:
        os.close(dfd)
    ofd = os.open(os.path.join(sub, "at-dir"), os.O_PATH)
    try:
        step("O_PATH fstat", lambda: fmt(os.fstat(ofd)))
        step("openat via O_PATH", lambda: show(read("at-file", dir_fd=ofd)))
        step("fchdir O_PATH", os.fchdir, ofd)
        step("getcwd O_PATH", lambda: rel(os.getcwd()))
    finally:
        os.close(ofd)
    os.chdir(d)


SECTIONS = ["pre", "files", "links", "rename", "dirs", "meta", "mmap", "paths"]


def main(argv):
    global BASE
    os.umask(0o022)
    args = argv[1:]
    while args[:1] == ["--skip"] and len(args) > 1:
        SKIP.update(args[1].split(","))
        args = args[2:]
    if len(args) == 2 and args[0] == "--prepare":
        prepare(args[1])
        return 0
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    BASE = d = os.path.realpath(args[0])
    out("start", rel(BASE))
    step("dir", lambda: kind(os.stat(d).st_mode))   # its mode differs: a pytest tmp dir is 0700
    prepare(d)
    out("prepared", "pre")
    for name in SECTIONS:
        if name in SKIP:
            out(f"section {name}", "skipped")
            continue
        try:
            globals()[f"section_{name}"](d)
        except Exception as exc:   # a step's set-up failed: say so, go on
            out(f"section {name} aborted", f"{type(exc).__name__}: {exc}")
        os.chdir("/")
    step("final listing", lambda: sorted(os.listdir(d)))
    out("end", "ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
