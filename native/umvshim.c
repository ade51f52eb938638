/* umvshim: calls of a view answered inside the program.
 *
 * Preloaded (LD_PRELOAD) into the programs a view starts when it has work
 * for it; see native/umvshm.h for what it shares with the C core and why.
 * Two jobs, each taken only where the core has published it:
 *
 * Stat calls of a fake-root view.  Each libc stat entry point here makes
 * the call itself, through the gadget the view's seccomp filters let
 * through, and replaces the owner as the C core's stat_fast would.
 * Whatever it cannot answer it sends the usual way, a plain syscall that
 * the filters trap: files with records (the Bloom filter says maybe), views
 * where another module serves stat calls, a process the core does not
 * list.
 *
 * Path calls of a vfs view that lead nowhere near a mount (see judge):
 * open, the stat family, access, readlink and the xattr reads are run
 * through the gadget, as the core would have resumed them; so is getcwd
 * when the cwd is outside every mount.
 *
 * Statically linked programs, raw syscalls and libc's internal calls
 * (opendir, fopen, fts, nftw) never come here and are answered by the core
 * as before.  Errors are the kernel's own: the caller's memory is touched
 * only after a call of the kernel read it (a bad pointer gives EFAULT, not
 * SIGSEGV).  Everything here is async-signal-safe: no locks, no
 * allocation; a signal handler that calls in while this thread is in the
 * middle of a judgement goes the usual way.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "umvshm.h"

_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "x86_64: one struct stat");

#define EXPORT __attribute__((visibility("default")))

static const struct umv_shm *shm;
/* This process's pid, kept in a page the kernel wipes in a child made
 * without CLONE_VM (MADV_WIPEONFORK): the shim asks for its view on nearly
 * every call, and getpid is a syscall (glibc keeps no copy).  Written only
 * by the constructor and by fork's child handler, never where 0 is read:
 * a vfork child shares the page, and must not leave its own pid in the
 * parent's.  0 (a child of _Fork or a raw clone): ask the kernel. */
static long *pid_page;
typedef long (*gadget_fn)(long nr, long a, long b, long c, long d, long e);
static gadget_fn gadget;
/* libc's, looked up as the shim loads (the exec and identity sections) */
static int (*next_execvpe)(const char *, char *const[], char *const[]);
static uid_t (*next_getuid)(void), (*next_geteuid)(void);
static gid_t (*next_getgid)(void), (*next_getegid)(void);
static int (*next_setuid)(uid_t), (*next_setgid)(gid_t);
static int (*next_setresuid)(uid_t, uid_t, uid_t), (*next_setresgid)(gid_t, gid_t, gid_t);
static int (*next_euidaccess)(const char *, int);
typedef int spawn_fn(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
                     char *const[], char *const[]);
static spawn_fn *next_posix_spawn, *next_posix_spawnp;
static int (*next_connect)(int, const struct sockaddr *, socklen_t);
static int (*next_getsockname)(int, struct sockaddr *, socklen_t *);
static int (*next_getpeername)(int, struct sockaddr *, socklen_t *);
static int (*next_dup)(int), (*next_dup2)(int, int), (*next_dup3)(int, int, int);
static int (*next_fcntl)(int, int, ...), (*next_fcntl64)(int, int, ...);
static ssize_t (*next_recvmsg)(int, struct msghdr *, int);
static int (*next_recvmmsg)(int, struct mmsghdr *, unsigned, int, struct timespec *);
/* libc's fn, or ENOSYS when it was not found; NEXT_SYS: or the raw call */
#define NEXT(fn, ...) (next_##fn ? next_##fn(__VA_ARGS__) : (errno = ENOSYS, -1))
#define NEXT_SYS(fn, ...) (next_##fn ? next_##fn(__VA_ARGS__) : syscall(SYS_##fn, ##__VA_ARGS__))

/* mov rax,rdi; mov rdi,rsi; mov rsi,rdx; mov rdx,rcx; mov r10,r8;
 * mov r8,r9; syscall; ret: the call returns to UMV_GADGET_IP (+20) */
static const unsigned char gadget_code[] = {
    0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x48, 0x89, 0xd6, 0x48, 0x89, 0xca,
    0x4d, 0x89, 0xc2, 0x4d, 0x89, 0xc8, 0x0f, 0x05, 0xc3,
};
_Static_assert(UMV_GADGET_IP - UMV_GADGET_ADDR == 20, "the syscall ends at byte 20");

static void forked(void) {
    if (pid_page) *pid_page = getpid();
}

__attribute__((constructor)) static void umv_shim_init(void) {
    next_execvpe = (int (*)(const char *, char *const[], char *const[]))dlsym(RTLD_NEXT, "execvpe");
    next_getuid = (uid_t (*)(void))dlsym(RTLD_NEXT, "getuid");
    next_geteuid = (uid_t (*)(void))dlsym(RTLD_NEXT, "geteuid");
    next_getgid = (gid_t (*)(void))dlsym(RTLD_NEXT, "getgid");
    next_getegid = (gid_t (*)(void))dlsym(RTLD_NEXT, "getegid");
    next_setuid = (int (*)(uid_t))dlsym(RTLD_NEXT, "setuid");
    next_setgid = (int (*)(gid_t))dlsym(RTLD_NEXT, "setgid");
    next_setresuid = (int (*)(uid_t, uid_t, uid_t))dlsym(RTLD_NEXT, "setresuid");
    next_setresgid = (int (*)(gid_t, gid_t, gid_t))dlsym(RTLD_NEXT, "setresgid");
    next_euidaccess = (int (*)(const char *, int))dlsym(RTLD_NEXT, "euidaccess");
    next_posix_spawn = (spawn_fn *)dlsym(RTLD_NEXT, "posix_spawn");
    next_posix_spawnp = (spawn_fn *)dlsym(RTLD_NEXT, "posix_spawnp");
    next_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    next_getsockname = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "getsockname");
    next_getpeername = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "getpeername");
    next_dup = (int (*)(int))dlsym(RTLD_NEXT, "dup");
    next_dup2 = (int (*)(int, int))dlsym(RTLD_NEXT, "dup2");
    next_dup3 = (int (*)(int, int, int))dlsym(RTLD_NEXT, "dup3");
    next_fcntl = (int (*)(int, int, ...))dlsym(RTLD_NEXT, "fcntl");
    next_fcntl64 = (int (*)(int, int, ...))dlsym(RTLD_NEXT, "fcntl64");
    next_recvmsg = (ssize_t (*)(int, struct msghdr *, int))dlsym(RTLD_NEXT, "recvmsg");
    next_recvmmsg = (int (*)(int, struct mmsghdr *, unsigned, int, struct timespec *))dlsym(RTLD_NEXT, "recvmmsg");
    const char *path = getenv("UMVIEW_SHM");
    if (!path) return;
    void *g = mmap((void *)UMV_GADGET_ADDR, 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (g != (void *)UMV_GADGET_ADDR) {
        /* taken: something of the program lives there; stay out */
        if (g != MAP_FAILED) munmap(g, 4096);
        return;
    }
    memcpy(g, gadget_code, sizeof gadget_code);
    if (mprotect(g, 4096, PROT_READ | PROT_EXEC) < 0) {
        munmap(g, 4096);
        return;
    }
    /* through the gadget: under the vfs, a path in /proc would otherwise
     * cost each program a call in Python as it starts */
    long fd = ((gadget_fn)g)(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC, 0, 0);
    void *m = fd < 0 ? MAP_FAILED : mmap(NULL, sizeof *shm, PROT_READ, MAP_SHARED, (int)fd, 0);
    if (fd >= 0) close((int)fd);
    if (m != MAP_FAILED && ((const struct umv_shm *)m)->magic != UMV_SHM_MAGIC) {
        munmap(m, sizeof *shm);
        m = MAP_FAILED;
    }
    if (m == MAP_FAILED) {
        munmap(g, 4096);
        return;
    }
    gadget = (gadget_fn)g;
    shm = m;
    void *pp = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pp != MAP_FAILED && madvise(pp, 4096, MADV_WIPEONFORK) == 0 &&
        pthread_atfork(NULL, NULL, forked) == 0) {
        pid_page = pp;
        *pid_page = getpid();
    } else if (pp != MAP_FAILED) {
        munmap(pp, 4096);
    }
}

/* This process's view, plus one, as the core lists it; 0: none known
 * (or no shared memory). */
static unsigned my_view(void) {
    if (!shm) return 0;
    long pid = pid_page ? __atomic_load_n(pid_page, __ATOMIC_RELAXED) : 0;
    if (!pid) pid = getpid();
    if (pid <= 0 || pid >= UMV_SHM_PIDS) return 0;
    unsigned v = __atomic_load_n(&shm->view_of[pid], __ATOMIC_ACQUIRE);
    return v > UMV_MAX_VIEWS ? 0 : v;
}

/* This process's view entry, read whole up to byte upto (the core
 * rewrites it under a sequence count); 0: no view known. */
#define ENTRY_IDS offsetof(struct umv_shm_view, nports)
_Static_assert(sizeof(struct umv_shm_view) % 4 == 0, "an entry is 32-bit words");
static int view_entry(struct umv_shm_view *out, size_t upto) {
    unsigned v = my_view();
    if (!v) return 0;
    const struct umv_shm_view *sv = &shm->view[v - 1];
    const uint32_t *w = (const uint32_t *)sv;
    uint32_t *o = (uint32_t *)out;
    for (int tries = 0; tries < 1000; tries++) {
        uint32_t seq = __atomic_load_n(&sv->seq, __ATOMIC_ACQUIRE);
        if (seq & 1) continue;
        for (size_t i = 0; i < upto / 4; i++) o[i] = __atomic_load_n(&w[i], __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&sv->seq, __ATOMIC_RELAXED) == seq) return 1;
    }
    return 0;
}

/* The view's seven numbers when this process may answer its own stat
 * calls; 0 otherwise. */
static int view_cfg(uint32_t cfg[7]) {
    struct umv_shm_view e;
    if (!view_entry(&e, ENTRY_IDS) || !e.on) return 0;
    memcpy(cfg, e.cfg, sizeof e.cfg);
    return 1;
}

/* The owner to show, as stat_fast in native/umvcore.c decides it: 1 done
 * (uid, gid set), 0 keep the kernel's, -1 ask the core (a listed file). */
static int owner(const uint32_t cfg[7], uint64_t dev, uint64_t ino, uint32_t *uid, uint32_t *gid) {
    uint32_t pos[2];
    umv_shm_bloom_pos(dev, ino, pos);
    int maybe = 1;
    for (int i = 0; i < 2; i++)
        maybe &= (__atomic_load_n(&shm->bloom[pos[i] / 64], __ATOMIC_ACQUIRE) >> (pos[i] % 64)) & 1;
    if (maybe) return -1;
    if (major(dev) == cfg[5] && minor(dev) == cfg[6]) return 0;
    if (!cfg[4] || *uid == cfg[2]) *uid = cfg[0];
    if (!cfg[4] || *gid == cfg[3]) *gid = cfg[1];
    return 1;
}

static int ret(long r) {
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* path calls outside every mount                                      */

/* What a thread keeps between calls.  cwd: its text (the cwd is the
 * process's, but keeping it per thread needs no lock); dir: the last
 * directory found free of symlinks; last: the last path a stat without
 * following found not to be a symlink; fdir, ffile: the paths of the last
 * directory fd and of the last other fd; odir: which layers of an overlay
 * have the last directory asked (overlay_held).  Each is good while dgen stays and
 * for CACHE_NS at most: changes made outside the view are not seen by
 * dgen, and the C core's own checks have the same window (docs/vfs.md). */
#define CACHE_NS 20000000L
/* Longer texts go the usual way: the per-thread state is static TLS of
 * every thread (threads with small stacks pay for it), so it stays small. */
#define TEXT 1024
struct kept {
    unsigned gen;
    long at;
    char text[TEXT];
};
/* The path of an open file, kept with what statx says the file is: the
 * number may be closed and reused behind our back (closedir), and the
 * mount id and inode tell.  And with what fd_trusted needs to trust it
 * without asking statx again. */
struct fdkept {
    struct kept k;
    int fd;
    uint64_t mnt, ino, dev;
    uint32_t fgen, seen;            /* fd_gen[fd] and seen_of[pid] then */
    long pid;
};
static __thread struct {
    int busy;
    unsigned pseq, pview;           /* whose prefixes `paths` holds */
    uint32_t plen;
    uint64_t calls[UMV_SHM_CALLS / 64];
    char paths[TEXT];
    struct kept cwd, dir, last;
    struct kept memo;               /* the last path text judged outside... */
    int memo_dirfd, memo_follow;    /* ...from where; its last name may be followed */
    struct fdkept fdir, ffile;      /* the last directory fd's path; another fd's */
    int novl, nover;                /* overlays and passes ('O', 'G' entries); overlays */
    struct kept odir;               /* an overlay's directory (upper path) */
    int odir_where;                 /* ...in which layers: 1 upper, 2 lower */
    unsigned plain_mode, last_mode; /* the mode of what a LAST_PLAIN judge saw; of `last` */
    const char *ovl_up, *ovl_low, *ovl_rest;  /* overlay_held's answer */
    int ovl_both;
    unsigned canon_gen;             /* canon is the last judged path's, from then */
    long canon_at;                  /* (0: another's, or none) */
    char canon[TEXT], base[TEXT];
} ts __attribute__((tls_model("initial-exec")));

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static int kept_ok(const struct kept *k, unsigned gen, long now) {
    return k->gen == gen && k->text[0] && now - k->at < CACHE_NS;
}

static void keep(struct kept *k, const char *text, size_t n, unsigned gen, long now) {
    memcpy(k->text, text, n + 1);
    k->gen = gen;
    k->at = now;
}

/* May this process run call nr itself when its path is outside?  Loads
 * the view's prefixes into ts (again only when the core changed them). */
static int path_on(long nr) {
    unsigned v = nr < 0 || nr >= UMV_SHM_CALLS ? 0 : my_view();
    if (!v) return 0;
    const struct umv_shm_paths *sp = &shm->vpaths[v - 1];
    uint32_t seq = __atomic_load_n(&sp->seq, __ATOMIC_ACQUIRE);
    if (seq & 1) return 0;
    if (seq != ts.pseq || v != ts.pview) {
        uint32_t len = __atomic_load_n(&sp->len, __ATOMIC_RELAXED);
        if (len > TEXT - 1) return 0;
        memcpy(ts.paths, sp->paths, len);
        memcpy(ts.calls, sp->calls, sizeof ts.calls);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&sp->seq, __ATOMIC_RELAXED) != seq) return 0;
        ts.paths[len] = 0;
        ts.plen = len;
        ts.novl = ts.nover = 0;
        for (const char *e = ts.paths; e < ts.paths + len; e += strlen(e) + 1) {
            ts.novl += e[0] == 'O' || e[0] == 'G';
            ts.nover += e[0] == 'O';
        }
        ts.pseq = seq;
        ts.pview = v;
        ts.memo.text[0] = 0;   /* judged against the old prefixes */
    }
    return ts.plen && (ts.calls[nr / 64] >> (nr % 64) & 1);
}

/* The deepest pass ('H' entry: a bind or tmpfs mount's host directory,
 * with nothing else of the view inside) that holds host path p. */
static const char *pass_of(const char *p) {
    const char *best = NULL;
    size_t blen = 0;
    for (const char *e = ts.paths; e < ts.paths + ts.plen; e += strlen(e) + 1) {
        size_t n = strlen(e + 1);
        if (e[0] == 'H' && n >= blen && umv_prefix_of(e + 1, n, p)) {
            best = e;
            blen = n;
        }
    }
    return best;
}

/* Is c (n bytes) the first component of entry e's path?  ("/" has none:
 * every path shares it.) */
static int shares_first(const char *e, const char *c, size_t n) {
    size_t m = umv_span(e + 2);
    return m == 0 || (m == n && !strncmp(e + 2, c, n));
}

/* Does no 'C' prefix have c (n bytes) as its first component?  (The
 * calls judged here only name files: a layer's are at their own paths in
 * the view, see UMV_NO_LAYERS.) */
static int first_outside(const char *c, size_t n) {
    for (const char *e = ts.paths; e < ts.paths + ts.plen; e += strlen(e) + 1)
        if (e[0] == 'C' && shares_first(e, c, n)) return 0;
    return 1;
}

/* A walk of canon stopped at a missing directory: could the view's have
 * gone on?  Not if no 'C' prefix shares its first component (make -j2 of
 * a project in /tmp with a bind source in /tmp looked for each tool in
 * missing directories of $PATH through the core). */
static int missing_outside(const char *canon) {
    return first_outside(canon + 1, umv_span(canon + 1)) &&
           !umv_in_paths(ts.paths, ts.plen, canon, UMV_NO_LAYERS);   /* an overlay's layer */
}

/* The same for every place a walk of base + "/" + path with ".." in it
 * passes: each top-level directory it enters. */
static int walk_outside(const char *base, const char *path) {
    int depth = 0;
    size_t len;
    for (const char *r = base, *next = path, *c; (c = umv_component(&r, &next, &len));) {
        if (len == 2 && c[0] == '.' && c[1] == '.') {
            if (depth) depth--;
        } else if (!(len == 1 && c[0] == '.')) {
            if (!depth && !first_outside(c, len)) return 0;
            depth++;
        }
    }
    return 1;
}

static long probe(int dirfd, const char *path, uint64_t flags) {
    struct open_how how = {flags | O_PATH | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS};
    long fd = gadget(SYS_openat2, dirfd, (long)path, (long)&how, sizeof how, 0);
    if (fd >= 0) syscall(SYS_close, (int)fd);
    return fd;
}

/* How the call treats the last component of its path. */
enum { LAST_KEPT,     /* not followed (lstat, readlink...) */
       LAST_PLAIN,    /* the caller saw it is not a symlink: remember that */
       LAST_FOLLOW }; /* followed: must not be a symlink */

/* Trusting a kept fd's path without a statx of the fd (two a file in tar
 * of a directory, 0.4 us each through the gadget: 5% of tar's time in a
 * bind view elsewhere).  The number can only lead to another file once a
 * new file is put at it; the ways a program does that:
 *   - an open: the shim's own (fd_new), or one the core sees (any call
 *     of the program that reaches the core bumps its process's count,
 *     umvshm.h seen_of: ld.so's and libc's own opens, a Go program's);
 *   - dup2, dup3, dup, fcntl F_DUPFD, fd passing (recvmsg): the wrappers
 *     below (fd_new; freopen's dup3 follows an open the core sees);
 *   - a socket, pipe, eventfd...: no directory, so the kernel's answer
 *     to a call made from it (ENOTDIR) is the view's anyway.
 * A kept path is trusted while the count of its number (fd_gen) and of
 * the process (seen_of) stay as they were when statx last proved it, in
 * the same process, for CACHE_NS at most, and only for calls that change
 * nothing (a read of the wrong file at worst; a change always asks
 * statx).  What still escapes: a new file put at the number by a raw
 * syscall the core does not trap (dup2, recvmsg, a fanotify event) after
 * the program closed the one kept, within those 20 ms; a process sharing
 * its fd table or its memory with another, or whose memory a vfork
 * child runs in, trusts nothing while that lasts (UMV_SEEN_SHARED). */
#define FD_GENS 1024
static uint32_t fd_gen[FD_GENS];

static void fd_new(long fd) {
    if (fd >= 0 && fd < FD_GENS) __atomic_add_fetch(&fd_gen[fd], 1, __ATOMIC_ACQ_REL);
}

/* the stamps as they are now (pid 0: none to trust by) */
static void fd_stamps(int fd, uint32_t *fgen, uint32_t *seen, long *pid) {
    *pid = pid_page ? __atomic_load_n(pid_page, __ATOMIC_RELAXED) : 0;
    *seen = *pid > 0 && *pid < UMV_SHM_PIDS ? __atomic_load_n(&shm->seen_of[*pid], __ATOMIC_ACQUIRE)
                                            : UMV_SEEN_SHARED;
    *fgen = fd >= 0 && fd < FD_GENS ? __atomic_load_n(&fd_gen[fd], __ATOMIC_ACQUIRE) : 0;
}

static int fd_trusted(const struct fdkept *k, int fd, unsigned gen, long now) {
    if (fd < 0 || fd >= FD_GENS || k->fd != fd || !kept_ok(&k->k, gen, now) || (k->seen & UMV_SEEN_SHARED))
        return 0;
    uint32_t fgen, seen;
    long pid;
    fd_stamps(fd, &fgen, &seen, &pid);
    return pid && pid == k->pid && fgen == k->fgen && seen == k->seen;
}

/* The path of open file fd from /proc/self/fd/N (3.6 us a call here, as
 * much as the call itself), kept in k; NULL: not known, or no path.
 * trust: the call changes nothing (fd_trusted). */
static const char *fd_path(int fd, struct fdkept *k, unsigned gen, long now, int trust) {
    if (trust && fd_trusted(k, fd, gen, now)) return k->k.text;
    struct statx sx;
    uint32_t fgen, seen;
    long pid;
    fd_stamps(fd, &fgen, &seen, &pid);   /* before the statx: a later change shows */
    if (fd < 0 || gadget(SYS_statx, fd, (long)"", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW,
                         STATX_INO | STATX_MNT_ID, (long)&sx) < 0 ||
        !(sx.stx_mask & STATX_MNT_ID))
        return NULL;
    uint64_t dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
    if (!(kept_ok(&k->k, gen, now) && k->fd == fd && k->mnt == sx.stx_mnt_id && k->ino == sx.stx_ino &&
          k->dev == dev)) {
        char link[32] = "/proc/self/fd/";
        int i = 14;
        char digits[12];
        int d = 0;
        for (unsigned f = (unsigned)fd; d == 0 || f; f /= 10) digits[d++] = (char)('0' + f % 10);
        while (d) link[i++] = digits[--d];
        link[i] = 0;
        long r = gadget(SYS_readlink, (long)link, (long)ts.base, sizeof ts.base - 1, 0, 0);
        if (r <= 0 || ts.base[0] != '/') return NULL;
        ts.base[r] = 0;
        keep(&k->k, ts.base, (size_t)r, gen, now);
        k->fd = fd;
        k->mnt = sx.stx_mnt_id;
        k->ino = sx.stx_ino;
        k->dev = dev;
    }
    k->fgen = fgen;
    k->seen = seen;
    k->pid = pid;
    return k->k.text;
}

/* The directory a relative walk from dirfd starts at, as a path (the
 * cwd's or the fd's, kept in ts while dgen stays); NULL: not known.
 * trust: as fd_path's. */
static const char *base_of(int dirfd, unsigned gen, long now, int trust) {
    if (dirfd == AT_FDCWD) {
        if (!kept_ok(&ts.cwd, gen, now)) {
            long r = gadget(SYS_getcwd, (long)ts.base, sizeof ts.base, 0, 0, 0);
            if (r <= 0 || ts.base[0] != '/') return NULL;
            keep(&ts.cwd, ts.base, strlen(ts.base), gen, now);
        }
        return ts.cwd.text;
    }
    return fd_path(dirfd, &ts.fdir, gen, now, trust);
}

/* Does what follows a name in a path ask for a directory ("/", "/.",
 * "/..", alone or before more)?  glibc's realpath then checks the name
 * with an access of "NAME/" instead of requiring that readlink said "no
 * symlink" (EINVAL). */
static int suffix_needs_dir(const char *end) {
    while (*end == '/') {
        while (*end == '/') end++;
        if (!*end) return 1;
        if (*end++ != '.') return 0;
        if (!*end || *end == '/' || (*end == '.' && (!end[1] || end[1] == '/'))) return 1;
    }
    return 0;
}

/* How walk_links treats a path. */
enum { WALK_LAST = 1,    /* a symlink last is followed too */
       WALK_GLIBC = 2 }; /* realpath's checks and errors, not the first stop's
                            (with WALK_LAST) */

/* The kernel's walk of (dirfd, path), one readlink a name, made here
 * through the gadget while every name it reaches is outside the view's
 * mounts, so that the host's answers are the view's.  Each name is judged
 * on its text before it is read: the text has no symlink (each one met
 * was replaced by its target), so it is where the kernel goes, and ".."
 * is its parent.  A name the walk cannot go past (missing, not a
 * directory, not searchable) ends it there, as it ends the kernel's, once
 * its text is judged: nothing of the view is at, under or above it.
 *   - realpath (WALK_GLIBC | WALK_LAST): glibc's walk.  gcc's driver
 *     resolves /usr/bin/cc -> /etc/alternatives/cc -> /usr/bin/gcc -> ...
 *     twice a run, 22 readlinks that would each go to the core (make -j2
 *     of 40 files: 924 of its 6,273 calls notified);
 *   - judge: a call whose walk met a symlink (merged /usr: /lib, /bin and
 *     /sbin are symlinks; gcc stats "/lib/x86_64-linux-gnu/12/." for its
 *     search directories, a call that went to Python through the core).
 * plain: the length of a canonical absolute path's directory part found
 * free of symlinks already (its names are not read again), or 0.
 * Returns the length of the resolved text in res (TEXT bytes), -errno
 * where the walk stopped (with the text of that name in res), or 0: the
 * core must see it (a name of the view's, a text too long). */
static long walk_links(int dirfd, const char *path, char *res, int how, size_t plain) {
    char rest[TEXT], link[TEXT];
    size_t w = 0, n = strlen(path);
    res[0] = 0;
    if (!n) return -ENOENT;
    if (n >= TEXT || !path_on(SYS_readlinkat) || !path_on(SYS_newfstatat)) return 0;
    memcpy(rest, path, n + 1);
    if (path[0] != '/') {
        const char *base = base_of(dirfd, __atomic_load_n(&shm->dgen, __ATOMIC_ACQUIRE), now_ns(), 0);
        if (!base || pass_of(base) || umv_in_paths(ts.paths, ts.plen, base, UMV_WALK_BASE)) return 0;
        w = strlen(base);
        if (w >= TEXT) return 0;
        memcpy(res, base, w + 1);
        if (w == 1) w = 0;   /* "/": names are added with their slash */
        res[w] = 0;
    }
    int links = 0;
    for (const char *r = rest;;) {
        while (*r == '/') r++;
        if (!*r) break;
        size_t len = umv_span(r);
        const char *end = r + len;
        if (len == 1 && r[0] == '.') {
            r = end;
            continue;
        }
        if (len == 2 && r[0] == '.' && r[1] == '.') {   /* res has no symlink: its parent is lexical */
            while (w && res[w - 1] != '/') w--;
            if (w) w--;
            res[w] = 0;
            r = end;
            continue;
        }
        size_t cw = w + 1 + len;
        if (cw + 2 > TEXT) return 0;
        res[w] = '/';
        memcpy(res + w + 1, r, len);
        res[cw] = 0;
        if (umv_in_paths(ts.paths, ts.plen, res, UMV_NO_LAYERS) || pass_of(res)) return 0;
        const char *more = end;
        while (*more == '/') more++;
        int last = !*more;
        if (last && !(how & WALK_LAST)) {
            w = cw;   /* kept as it is: judged on its text */
            break;
        }
        if (!links && cw <= plain && !last) {   /* the part seen free of symlinks */
            w = cw;
            r = end;
            continue;
        }
        long k = gadget(SYS_readlinkat, AT_FDCWD, (long)res, (long)link, TEXT - 1, 0);
        if (k >= 0) {
            if (++links > 40) return -ELOOP;
            size_t tail = strlen(end);
            if ((size_t)k + tail + 1 > TEXT) return 0;
            memmove(rest + k, end, tail + 1);   /* the link's target, then what followed it */
            memcpy(rest, link, (size_t)k);
            r = rest;
            if (k && link[0] == '/') w = 0;
            res[w] = 0;
            continue;
        }
        if (!(how & WALK_GLIBC)) {
            if (k != -EINVAL) return k;   /* the kernel's walk stops here too */
        } else if (suffix_needs_dir(end)) {
            /* glibc: faccessat(F_OK, AT_EACCESS) of "NAME/", which checks
             * what a stat of it checks, with the same ids */
            struct stat st;
            res[cw] = '/';
            res[cw + 1] = 0;
            long a = gadget(SYS_newfstatat, AT_FDCWD, (long)res, (long)&st, 0, 0);
            res[cw] = 0;
            if (a < 0) return a;
        } else if (k != -EINVAL) {
            return k;
        }
        w = cw;
        r = end;
    }
    if (!w) {
        res[0] = '/';
        res[1] = 0;
        w = 1;
    }
    return (long)w;
}

/* A walk that meets a symlink (ELOOP from a probe): followed here, name
 * by name; outside if every name it reaches is (walk_links).  Not for a
 * caller that holds the canonical text (it is not where the walk lands),
 * nor from below a pass (the core's pass_beneath). */
static int links_outside(int dirfd, const char *path, int last, int hold, const char *pass, size_t plain) {
    char res[TEXT];
    return !hold && !pass && walk_links(dirfd, path, res, last == LAST_FOLLOW ? WALK_LAST : 0, plain) != 0;
}

/* Does (dirfd, path) lead nowhere near the view's mounts, as the C core's
 * path_class would find (PATH_OUT)?  The same rules, in the program:
 *   - the walk must meet no symlink (RESOLVE_NO_SYMLINKS), so that the text
 *     made canonical (umv_canon) is where it lands; the directory part is
 *     checked by one openat2 and kept in ts.dir, the last component per
 *     `last`;
 *   - that text must not be at, under or above a 'C' prefix (a layer's
 *     names are the host's: UMV_NO_LAYERS), and a relative walk must not
 *     start at or under one or a layer, nor in a 'B' one (umv_in_paths,
 *     UMV_WALK_BASE); or, for a
 *     walk that starts below a pass's host directory (the core's
 *     PATH_PASS), it must stay below it;
 *   - a trailing slash, or "." or ".." last, ends on a directory the
 *     walk followed: judged as a followed last name;
 * The caller has made sure the kernel could read path (a call of its own
 * read it whole).  1: outside, 0: ask the core. */
static int judge_held(int dirfd, const char *path, int at_flags, int reads, int last, int hold) {
    if (!path || !path[0]) return reads && (at_flags & AT_EMPTY_PATH);
    if (ts.busy) return 0;
    ts.busy = 1;
    ts.canon_at = 0;
    int ok = 0;
    unsigned gen = __atomic_load_n(&shm->dgen, __ATOMIC_ACQUIRE);
    long now = now_ns();
    size_t n = strlen(path);
    const char *name = memrchr(path, '/', n);
    name = name ? name + 1 : path;
    const char *base = "", *pass = NULL;
    if (n >= TEXT) goto out;
    /* "d/", "d/." and "d/.." end on a directory the walk reached and
     * followed (gcc stats "DIR/." for each of its search directories):
     * their canonical text must be no symlink, as a followed last name */
    if (!*name || !strcmp(name, ".") || !strcmp(name, "..")) last = LAST_FOLLOW;
    /* The same text as the last call judged outside, from the same cwd
     * (dgen and the clock say it stayed): ls -l asks statx, lgetxattr and
     * getxattr of each name.  Not from a directory fd, whose number may
     * have been reused; a followed last name only if it was seen there
     * and no symlink (creations bump no dgen: a name missing then may be
     * a symlink now). */
    if (!hold && (path[0] == '/' || (dirfd == AT_FDCWD && ts.memo_dirfd == AT_FDCWD)) &&
        (last != LAST_FOLLOW || ts.memo_follow) && kept_ok(&ts.memo, gen, now) && !strcmp(ts.memo.text, path)) {
        ok = 1;
        goto out;
    }
    if (path[0] != '/') {
        base = base_of(dirfd, gen, now, reads);
        if (!base) goto out;
        pass = pass_of(base);
        if (!pass && umv_in_paths(ts.paths, ts.plen, base, UMV_WALK_BASE)) goto out;
    }
    int dotdot;
    size_t w = umv_canon(base, path, ts.canon, sizeof ts.canon, &dotdot);
    if (!w) goto out;
    if (pass) {
        /* from a directory below a pass: the kernel's walk is the view's as
         * long as it stays below (the core's pass_beneath) */
        if (!umv_prefix_of(pass + 1, strlen(pass + 1), ts.canon)) goto out;
    } else if (umv_in_paths(ts.paths, ts.plen, ts.canon, UMV_NO_LAYERS)) {
        goto out;
    }
    /* the directory part */
    if (dotdot) {
        /* the text no longer shows the walk: check the walk itself */
        size_t dn = (size_t)(name - path);
        memcpy(ts.base, path, dn);
        ts.base[dn] = 0;
        long r = probe(dirfd, dn ? ts.base : ".", O_DIRECTORY);
        if (r < 0) {
            /* missing before any symlink: as below, if nothing of the
             * view shares a top directory the walk enters (gcc's driver
             * stats "DIR/../../../x86_64-linux-gnu/12/." and the like) */
            ok = (r == -ENOENT && !pass && walk_outside(path[0] == '/' ? "" : base, path)) ||
                 (r == -ELOOP && links_outside(dirfd, path, last, hold, pass, 0));
            goto out;
        }
    } else {
        char *slash = strrchr(ts.canon, '/');
        size_t dn = slash == ts.canon ? 1 : (size_t)(slash - ts.canon);
        /* a walk with no symlink has none in any part of it either: the
         * kept directory answers for its parents (ls -R goes back up) */
        if (!(kept_ok(&ts.dir, gen, now) && umv_prefix_of(ts.canon, dn, ts.dir.text))) {
            char save = ts.canon[dn];
            ts.canon[dn] = 0;
            long r = probe(AT_FDCWD, ts.canon, O_DIRECTORY);
            if (r >= 0) keep(&ts.dir, ts.canon, dn, gen, now);  /* dn < TEXT */
            ts.canon[dn] = save;
            if (r < 0) {
                /* a directory on the way is missing, met before any symlink:
                 * the kernel's walk stops there, and so does the view's
                 * unless a mount lies below it (the core's lexical_class) */
                ok = (r == -ENOENT && !pass && missing_outside(ts.canon)) ||
                     (r == -ELOOP && links_outside(dirfd, path, last, hold, pass, 0));
                goto out;
            }
        }
    }
    int seen = 1;   /* the last name is there, and no symlink */
    if (last == LAST_PLAIN) {
        keep(&ts.last, ts.canon, w, gen, now);
        ts.last_mode = ts.plain_mode;
    } else if (last == LAST_FOLLOW && !(kept_ok(&ts.last, gen, now) && !strcmp(ts.last.text, ts.canon))) {
        long r = probe(AT_FDCWD, ts.canon, 0);
        if (r < 0 && r != -ENOENT) {
            /* a symlink last (ls -l's getxattr of each link): the walk to
             * its directory was found free of symlinks, follow it from there */
            ok = r == -ELOOP &&
                 links_outside(AT_FDCWD, ts.canon, last, hold, pass, (size_t)(strrchr(ts.canon, '/') - ts.canon));
            goto out;
        }
        seen = r >= 0;
    } else if (last == LAST_KEPT) {
        seen = 0;
    }
    keep(&ts.memo, path, n, gen, now);
    ts.memo_dirfd = path[0] == '/' ? -1 : dirfd;
    ts.memo_follow = seen;
    ts.canon_gen = gen;
    ts.canon_at = now;
    ok = 1;
out:
    ts.busy = ok && hold;   /* held: ts.canon is the caller's until it lets go */
    return ok;
}

static int judge(int dirfd, const char *path, int at_flags, int reads, int last) {
    return judge_held(dirfd, path, at_flags, reads, last, 0);
}

/* ------------------------------------------------------------------ */
/* reads in an overlay                                                 */

/* A cow mount with nothing deleted in it yet is an *overlay* (the C
 * core's overlay_class): a file under it is the upper layer's if the
 * upper layer has it, else the lower layer's.  A call that only reads it
 * (the stat family, access, readlink, the xattr reads, an open for
 * reading) can run on that host file, here, with the core's rules: what
 * follows the mount holds no '..', and the walk in each layer meets no
 * symlink (openat2 RESOLVE_NO_SYMLINKS on the host path, which the
 * module made canonical), so the view, which resolves symlinks across the
 * layers, could not land elsewhere.  A name neither layer has is missing
 * in the view too: nothing was deleted, so nothing of the lower layer is
 * hidden.  The core publishes each overlay as three entries: 'O' guest,
 * 'U' upper, 'L' lower; it takes them back (the module reclaims) before
 * the first deletion is recorded.  Changes, and what a symlink or '..'
 * makes unclear, go the usual way to the module. */
enum { OVL_NO, OVL_FILE, OVL_MISSING };

/* the caller is done with ts.canon */
static long ovl_done(long r) {
    ts.busy = 0;
    return r;
}

/* The entries of overlay e ('O'): its upper and lower layers; of pass e
 * ('G'): its host directory, as an upper layer with no lower one. */
static int ovl_layers(const char *e, const char **up, const char **low) {
    const char *end = ts.paths + ts.plen;
    const char *u = e + strlen(e) + 1;
    if (u >= end || u[0] != (e[0] == 'G' ? 'H' : 'U')) return 0;
    *up = u + 1;
    *low = NULL;
    if (e[0] == 'G') return 1;
    const char *l = u + strlen(u) + 1;
    if (l >= end || l[0] != 'L') return 0;
    *low = l + 1;
    return 1;
}

static int ovl_path(const char *layer, const char *rest) {
    size_t ln = strlen(layer), rn = strlen(rest);
    ts.canon_at = 0;
    if (ln + 1 + rn + 1 > sizeof ts.canon) return 0;
    memcpy(ts.canon, layer, ln);
    ts.canon[ln] = '/';
    memcpy(ts.canon + ln + 1, rest, rn + 1);
    return 1;
}

/* The directory part (dn bytes of rest) in layer, in ts.canon. */
static int ovl_dir(const char *layer, const char *rest, size_t dn) {
    if (!ovl_path(layer, rest)) return 0;
    ts.canon[strlen(layer) + 1 + dn] = 0;
    return 1;
}

/* Is host directory dir the listing that stands for guest directory g (a
 * 'V' entry, then 'W' g)? */
static int listing_of(const char *dir, const char *g) {
    const char *end = ts.paths + ts.plen;
    for (const char *e = ts.paths; e < end; e += strlen(e) + 1) {
        if (e[0] != 'V' || strcmp(e + 1, dir)) continue;
        const char *w = e + strlen(e) + 1;
        return w < end && w[0] == 'W' && !strcmp(w + 1, g);
    }
    return 0;
}

/* Where does (dirfd, path) lead in an overlay?  OVL_FILE: ts.canon is
 * its host path in the first layer that may have it; a call that finds
 * nothing there (ENOENT) tries the next layer's (ovl_next) when both have
 * its directory.  ts.busy stays set until the caller is done (ovl_done).
 * OVL_MISSING: no layer has its directory, so the view has no such file
 * either.  OVL_NO: not an overlay's, or unclear: ask the core.
 *
 * Which layers have a directory is kept for the last directory asked
 * (ts.odir), while dgen stays: the core bumps it whenever a module may
 * change files (shim_forget in umvcore.c), which is the only way the
 * view changes a layer. */
static int overlay_held(int dirfd, const char *path, int writes) {
    if (!ts.novl || !path || !path[0] || ts.busy) return OVL_NO;
    if (path[0] != '/' && !ts.nover) return OVL_NO;   /* a relative walk is judged as it is below a pass */
    ts.busy = 1;
    unsigned gen = 0;
    long now = 0;   /* read when first needed: most paths are no overlay's */
    const char *rest = NULL, *up = NULL, *low = NULL, *base = NULL;
    for (const char *e = ts.paths; !rest && e < ts.paths + ts.plen; e += strlen(e) + 1) {
        /* writes: passes only (an overlay's changes are the module's) */
        if ((e[0] != 'O' || writes) && e[0] != 'G') continue;
        if (!ovl_layers(e, &up, &low)) continue;
        size_t n = strlen(e + 1);
        if (path[0] == '/') {
            if (umv_prefix_of(e + 1, n, path)) rest = path + n;
            continue;
        }
        /* a walk from below a pass is judged as it is (judge: pass) */
        if (e[0] == 'G') continue;
        if (!base) {
            gen = __atomic_load_n(&shm->dgen, __ATOMIC_ACQUIRE);
            now = now_ns();
            if (!(base = base_of(dirfd, gen, now, !writes))) break;
        }
        /* relative to the overlay's root as the module shows it: its
         * listing directory (tar -C into a cow mount walks from there) */
        if (listing_of(base, e + 1)) {
            if (strlen(path) + 2 > sizeof ts.base) break;
            ts.base[0] = '/';
            strcpy(ts.base + 1, path);
            rest = ts.base;
            continue;
        }
        /* relative to a directory in one of its layers (a cwd or dirfd
         * opened there by the module or by this code) */
        n = strlen(up);
        if (!umv_prefix_of(up, n, base)) {
            n = strlen(low);
            if (!umv_prefix_of(low, n, base)) continue;
        }
        size_t bl = strlen(base + n);
        if (bl + 1 + strlen(path) + 1 > sizeof ts.base) break;
        memmove(ts.base, base + n, bl);   /* base may be ts.base itself */
        ts.base[bl] = '/';
        strcpy(ts.base + bl + 1, path);
        rest = ts.base;
    }
    if (!rest) goto no;
    if (!base) {
        gen = __atomic_load_n(&shm->dgen, __ATOMIC_ACQUIRE);
        now = now_ns();
    }
    while (*rest == '/') rest++;
    const char *name = rest, *c, *r = rest, *next = NULL;
    size_t len;
    while ((c = umv_component(&r, &next, &len))) {
        if (len == 2 && c[0] == '.' && c[1] == '.') goto no;
        name = c;
    }
    size_t rn = strlen(rest);
    /* a trailing slash, or "." last: the core's */
    if (rn && (rest[rn - 1] == '/' || !strcmp(name, "."))) goto no;
    ts.ovl_up = up;
    ts.ovl_low = low;
    ts.ovl_rest = rest;
    int where = low ? 3 : 1;   /* which layers have the directory: 1 upper, 2 lower */
    if (name > rest) {
        size_t dn = (size_t)(name - rest) - 1;   /* the directory part */
        if (!ovl_dir(up, rest, dn)) goto no;
        if (kept_ok(&ts.odir, gen, now) && !strcmp(ts.odir.text, ts.canon)) {
            where = ts.odir_where;
        } else {
            /* a symlink (ELOOP) or a file (ENOTDIR) on the way: the core's */
            long u = probe(AT_FDCWD, ts.canon, O_DIRECTORY), l = -ENOENT;
            if (low) l = ovl_dir(low, rest, dn) ? probe(AT_FDCWD, ts.canon, O_DIRECTORY) : -ENAMETOOLONG;
            if ((u < 0 && u != -ENOENT) || (l < 0 && l != -ENOENT)) goto no;
            where = (u >= 0) | (l >= 0) << 1;
            /* not a missing one: the shim's own mkdir (and the core's
             * answer to one below a pass) bump no count */
            if (where && ovl_dir(up, rest, dn)) {
                keep(&ts.odir, ts.canon, strlen(ts.canon), gen, now);
                ts.odir_where = where;
            }
        }
    }
    if (!where) {
        ts.busy = 0;
        return OVL_MISSING;
    }
    ts.ovl_both = where == 3;
    if (!ovl_path(where & 1 ? up : low, rest)) goto no;
    return OVL_FILE;
no:
    ts.busy = 0;
    return OVL_NO;
}

/* The next layer's path for the file, in ts.canon; 0: no next layer. */
static int ovl_next(void) {
    if (!ts.ovl_both) return 0;
    ts.ovl_both = 0;
    return ovl_path(ts.ovl_low, ts.ovl_rest);
}

/* The file's lstat, from the first layer that has it (left in ts.canon). */
static long ovl_lstat(struct stat *st) {
    long r;
    do r = gadget(SYS_newfstatat, AT_FDCWD, (long)ts.canon, (long)st, AT_SYMLINK_NOFOLLOW, 0);
    while (r == -ENOENT && ovl_next());
    return r;
}

/* Did a call that failed with -r read its path whole?  (Those errors come
 * from the walk or after it; others may come before the path is read.) */
static int walked(long r, int einval) {
    return r >= 0 || r == -ENOENT || r == -ENOTDIR || r == -EACCES || r == -ENODATA ||
           r == -EOPNOTSUPP || r == -EROFS || (einval && r == -EINVAL);
}

/* fstat's own text: its call is made as fstat, a number a view without
 * a fake root does not trap, so the kernel runs no filter for it (45 ns
 * of the 345 a newfstatat of "" costs through the gadget here; tar makes
 * two a file). */
static const char fd_only[] = "";

static long stat_call(int dirfd, const char *path, struct stat *st, int flags) {
    if (path == fd_only) return gadget(SYS_fstat, dirfd, (long)st, 0, 0, 0);
    return gadget(SYS_newfstatat, dirfd, (long)path, (long)st, flags, 0);
}

static int do_fstatat(int dirfd, const char *path, struct stat *st, int flags) {
    uint32_t cfg[7];
    if (view_cfg(cfg)) {
        long r = stat_call(dirfd, path, st, flags);
        if (r < 0) return ret(r);
        uint32_t uid = st->st_uid, gid = st->st_gid;
        int how = owner(cfg, st->st_dev, st->st_ino, &uid, &gid);
        if (how >= 0) {
            st->st_uid = uid;
            st->st_gid = gid;
            return 0;
        }
    } else if (path_on(SYS_newfstatat)) {
        /* without following: a symlink last, where the caller follows,
         * is the core's (the answers differ only then) */
        long r = stat_call(dirfd, path, st, flags | AT_SYMLINK_NOFOLLOW);
        int link = r >= 0 && S_ISLNK(st->st_mode), follow = !(flags & AT_SYMLINK_NOFOLLOW);
        if (walked(r, 0)) {
            int o = overlay_held(dirfd, path, 0);
            if (o == OVL_MISSING) return ret(-ENOENT);
            if (o == OVL_FILE) {
                r = ovl_done(ovl_lstat(st));
                /* a symlink followed: the view resolves it (the module) */
                if (!(follow && r >= 0 && S_ISLNK(st->st_mode))) return ret(r);
                return (int)syscall(SYS_newfstatat, dirfd, path, st, flags);
            }
            ts.plain_mode = st->st_mode;
            if (!(follow && link) && judge(dirfd, path, flags, 1, r >= 0 && !link ? LAST_PLAIN : LAST_KEPT))
                return ret(r);
            /* a symlink last, followed (gcc's driver stats /usr/bin/cc):
             * the judgement walks it from its directory */
            if (follow && link && judge(dirfd, path, flags, 1, LAST_FOLLOW))
                return ret(gadget(SYS_newfstatat, dirfd, (long)path, (long)st, flags, 0));
        }
    }
    return (int)syscall(SYS_newfstatat, dirfd, path, st, flags);
}

static int do_fstat(int fd, struct stat *st) {
    if (fd < 0) {   /* as glibc: AT_FDCWD must not stat the cwd */
        errno = EBADF;
        return -1;
    }
    return do_fstatat(fd, fd_only, st, AT_EMPTY_PATH);
}

EXPORT int stat(const char *path, struct stat *st) { return do_fstatat(AT_FDCWD, path, st, 0); }
EXPORT int stat64(const char *path, struct stat64 *st) { return do_fstatat(AT_FDCWD, path, (struct stat *)st, 0); }
EXPORT int lstat(const char *path, struct stat *st) { return do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW); }
EXPORT int lstat64(const char *path, struct stat64 *st) {
    return do_fstatat(AT_FDCWD, path, (struct stat *)st, AT_SYMLINK_NOFOLLOW);
}
EXPORT int fstat(int fd, struct stat *st) { return do_fstat(fd, st); }
EXPORT int fstat64(int fd, struct stat64 *st) { return do_fstat(fd, (struct stat *)st); }
EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags) {
    return do_fstatat(dirfd, path, st, flags);
}
EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags) {
    return do_fstatat(dirfd, path, (struct stat *)st, flags);
}

/* glibc < 2.33 programs call these; version 1 is x86_64's struct stat */
#define XSTAT(name, call)                                  \
    EXPORT int name {                                      \
        if (ver != 1) { errno = EINVAL; return -1; }       \
        return call;                                       \
    }
XSTAT(__xstat(int ver, const char *path, struct stat *st), do_fstatat(AT_FDCWD, path, st, 0))
XSTAT(__xstat64(int ver, const char *path, struct stat *st), do_fstatat(AT_FDCWD, path, st, 0))
XSTAT(__lxstat(int ver, const char *path, struct stat *st), do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW))
XSTAT(__lxstat64(int ver, const char *path, struct stat *st), do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW))
XSTAT(__fxstat(int ver, int fd, struct stat *st), do_fstat(fd, st))
XSTAT(__fxstat64(int ver, int fd, struct stat *st), do_fstat(fd, st))
XSTAT(__fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags), do_fstatat(dirfd, path, st, flags))
XSTAT(__fxstatat64(int ver, int dirfd, const char *path, struct stat *st, int flags), do_fstatat(dirfd, path, st, flags))

EXPORT int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *sx) {
    uint32_t cfg[7];
    if (view_cfg(cfg)) {
        long r = gadget(SYS_statx, dirfd, (long)path, flags, mask, (long)sx);
        if (r < 0) return ret(r);
        uint32_t uid = sx->stx_uid, gid = sx->stx_gid;
        int how = owner(cfg, makedev(sx->stx_dev_major, sx->stx_dev_minor), sx->stx_ino, &uid, &gid);
        if (how >= 0) {
            sx->stx_uid = uid;
            sx->stx_gid = gid;
            return 0;
        }
    } else if (path_on(SYS_statx)) {
        long r = gadget(SYS_statx, dirfd, (long)path, flags | AT_SYMLINK_NOFOLLOW, mask, (long)sx);
        int link = r >= 0 && S_ISLNK(sx->stx_mode), follow = !(flags & AT_SYMLINK_NOFOLLOW);
        if (walked(r, 0)) {
            int o = overlay_held(dirfd, path, 0);
            if (o == OVL_MISSING) return ret(-ENOENT);
            if (o == OVL_FILE) {
                do r = gadget(SYS_statx, AT_FDCWD, (long)ts.canon, flags | AT_SYMLINK_NOFOLLOW, mask, (long)sx);
                while (r == -ENOENT && ovl_next());
                ovl_done(0);
                if (!(follow && r >= 0 && S_ISLNK(sx->stx_mode))) return ret(r);
                return (int)syscall(SYS_statx, dirfd, path, flags, mask, sx);
            }
            ts.plain_mode = sx->stx_mode;
            if (!(follow && link) && judge(dirfd, path, flags, 1, r >= 0 && !link ? LAST_PLAIN : LAST_KEPT))
                return ret(r);
            if (follow && link && judge(dirfd, path, flags, 1, LAST_FOLLOW))
                return ret(gadget(SYS_statx, dirfd, (long)path, flags, mask, (long)sx));
        }
    }
    return (int)syscall(SYS_statx, dirfd, path, flags, mask, sx);
}

/* Calls that only read, with no variant that leaves a symlink last alone:
 * made first, judged after (the kernel read the path); a call the core
 * must see is made again the usual way. */
static long read_call(long nr, int dirfd, const char *path, int last, long a, long b, long c, long d) {
    if (path_on(nr)) {
        long r = gadget(nr, a, b, c, d, 0);
        if (walked(r, nr == SYS_readlinkat)) {
            int o = overlay_held(dirfd, path, 0);
            if (o == OVL_MISSING) return -ENOENT;
            if (o == OVL_FILE) {
                /* the path is the *at calls' second argument, the others'
                 * first; a call that follows a symlink last finds the
                 * layer by an lstat first (a symlink: the module's) */
                int at = nr == SYS_readlinkat || nr == SYS_faccessat;
                struct stat st;
                if (last != LAST_KEPT && ((r = ovl_lstat(&st)) < 0 || S_ISLNK(st.st_mode))) {
                    ovl_done(0);
                    if (r < 0) return r;
                    goto usual;
                }
                do r = gadget(nr, at ? AT_FDCWD : (long)ts.canon, at ? (long)ts.canon : b, c, d, 0);
                while (r == -ENOENT && ovl_next());
                return ovl_done(r);
            }
            if (judge(dirfd, path, 0, 1, last)) return r;
        }
    }
usual:;
    long r = syscall(nr, a, b, c, d);
    return r < 0 ? -errno : r;
}

static ssize_t sret(long r) {
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

EXPORT ssize_t readlink(const char *path, char *buf, size_t size) {
    return sret(read_call(SYS_readlinkat, AT_FDCWD, path, LAST_KEPT, AT_FDCWD, (long)path, (long)buf, (long)size));
}
EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size) {
    return sret(read_call(SYS_readlinkat, dirfd, path, LAST_KEPT, dirfd, (long)path, (long)buf, (long)size));
}
EXPORT int access(const char *path, int mode) {
    return (int)sret(read_call(SYS_faccessat, AT_FDCWD, path, LAST_FOLLOW, AT_FDCWD, (long)path, mode, 0));
}
EXPORT ssize_t getxattr(const char *path, const char *name, void *value, size_t size) {
    return sret(read_call(SYS_getxattr, AT_FDCWD, path, LAST_FOLLOW, (long)path, (long)name, (long)value, (long)size));
}
EXPORT ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size) {
    return sret(read_call(SYS_lgetxattr, AT_FDCWD, path, LAST_KEPT, (long)path, (long)name, (long)value, (long)size));
}
EXPORT ssize_t listxattr(const char *path, char *list, size_t size) {
    return sret(read_call(SYS_listxattr, AT_FDCWD, path, LAST_FOLLOW, (long)path, (long)list, (long)size, 0));
}
EXPORT ssize_t llistxattr(const char *path, char *list, size_t size) {
    return sret(read_call(SYS_llistxattr, AT_FDCWD, path, LAST_KEPT, (long)path, (long)list, (long)size, 0));
}

/* ------------------------------------------------------------------ */
/* calls that change a file, outside every mount or below a pass       */

/* Calls that make or change a name (mkdir, symlink, chmod, chown,
 * utimensat): judged first, after a statx of the path that asks for
 * nothing (the kernel reads the path; no side effect), then made through
 * the gadget, as the core would resume them.  None removes a name, so the
 * shim's caches stay true (umvshm.h: dgen).  tar -x makes five such calls
 * a file, each a round trip through the core's listener before. */
static long change_call(long nr, int dirfd, const char *path, int last, long a, long b, long c, long d,
                        long e) {
    if (path && path[0] && path_on(nr)) {
        struct statx sx;
        long r = gadget(SYS_statx, dirfd, (long)path, AT_SYMLINK_NOFOLLOW, 0, (long)&sx);
        if (walked(r, 0) && judge(dirfd, path, 0, 0, last)) return gadget(nr, a, b, c, d, e);
    }
    long r = syscall(nr, a, b, c, d, e);
    return r < 0 ? -errno : r;
}

/* Calls on an open file's own inode (fchmod, fchown, futimens): the
 * kernel's unless the file lies where the view protects it (a cow
 * mount's lower layer, a read-only bind's source), as the core's fd_class
 * decides: below a pass, or outside every prefix and layer. */
static long fd_call(long nr, int fd, long a, long b, long c, long d, long e) {
    if (path_on(nr) && !ts.busy) {
        ts.busy = 1;
        const char *p = fd_path(fd, &ts.ffile, __atomic_load_n(&shm->dgen, __ATOMIC_ACQUIRE), now_ns(), 0);
        int ok = p && (pass_of(p) || !umv_in_paths(ts.paths, ts.plen, p, 1));
        ts.busy = 0;
        if (ok) return gadget(nr, a, b, c, d, e);
    }
    long r = syscall(nr, a, b, c, d, e);
    return r < 0 ? -errno : r;
}

EXPORT int mkdir(const char *path, mode_t mode) {
    return (int)sret(change_call(SYS_mkdirat, AT_FDCWD, path, LAST_KEPT, AT_FDCWD, (long)path, mode, 0, 0));
}
EXPORT int mkdirat(int dirfd, const char *path, mode_t mode) {
    return (int)sret(change_call(SYS_mkdirat, dirfd, path, LAST_KEPT, dirfd, (long)path, mode, 0, 0));
}
EXPORT int symlink(const char *target, const char *path) {
    return (int)sret(change_call(SYS_symlinkat, AT_FDCWD, path, LAST_KEPT, (long)target, AT_FDCWD, (long)path, 0, 0));
}
EXPORT int symlinkat(const char *target, int dirfd, const char *path) {
    return (int)sret(change_call(SYS_symlinkat, dirfd, path, LAST_KEPT, (long)target, dirfd, (long)path, 0, 0));
}
EXPORT int chmod(const char *path, mode_t mode) {
    return (int)sret(change_call(SYS_fchmodat, AT_FDCWD, path, LAST_FOLLOW, AT_FDCWD, (long)path, mode, 0, 0));
}
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
EXPORT int fchmodat(int dirfd, const char *path, mode_t mode, int flags) {
    if (flags == AT_SYMLINK_NOFOLLOW) {
        /* fchmodat2 (Linux 6.6) takes the flag; glibc's way is an O_PATH
         * open and a chmod through /proc/self/fd/N, two calls the core
         * must judge (tar -x sets every directory's mode so) */
        long r = change_call(SYS_fchmodat2, dirfd, path, LAST_KEPT, dirfd, (long)path, mode, flags, 0);
        if (r != -ENOSYS) return (int)sret(r);
    }
    if (flags) {
        /* glibc's way */
        static int (*next)(int, const char *, mode_t, int);
        if (!next) next = (int (*)(int, const char *, mode_t, int))dlsym(RTLD_NEXT, "fchmodat");
        if (!next) {
            errno = ENOSYS;
            return -1;
        }
        return next(dirfd, path, mode, flags);
    }
    return (int)sret(change_call(SYS_fchmodat, dirfd, path, LAST_FOLLOW, dirfd, (long)path, mode, 0, 0));
}
static int do_fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags) {
    if (path && !path[0] && (flags & AT_EMPTY_PATH))
        return (int)sret(fd_call(SYS_fchownat, dirfd, dirfd, (long)path, (long)uid, (long)gid, flags));
    return (int)sret(change_call(SYS_fchownat, dirfd, path, flags & AT_SYMLINK_NOFOLLOW ? LAST_KEPT : LAST_FOLLOW,
                                 dirfd, (long)path, (long)uid, (long)gid, flags));
}
EXPORT int chown(const char *path, uid_t uid, gid_t gid) { return do_fchownat(AT_FDCWD, path, uid, gid, 0); }
EXPORT int lchown(const char *path, uid_t uid, gid_t gid) {
    return do_fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW);
}
EXPORT int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags) {
    return do_fchownat(dirfd, path, uid, gid, flags);
}
EXPORT int fchown(int fd, uid_t uid, gid_t gid) {
    return (int)sret(fd_call(SYS_fchown, fd, fd, (long)uid, (long)gid, 0, 0));
}
EXPORT int fchmod(int fd, mode_t mode) { return (int)sret(fd_call(SYS_fchmod, fd, fd, mode, 0, 0, 0)); }
EXPORT int utimensat(int dirfd, const char *path, const struct timespec times[2], int flags) {
    if (!path)   /* the fd's own file (futimens) */
        return (int)sret(fd_call(SYS_utimensat, dirfd, dirfd, 0, (long)times, flags, 0));
    return (int)sret(change_call(SYS_utimensat, dirfd, path, flags & AT_SYMLINK_NOFOLLOW ? LAST_KEPT : LAST_FOLLOW,
                                 dirfd, (long)path, (long)times, flags, 0));
}
EXPORT int futimens(int fd, const struct timespec times[2]) {
    return (int)sret(fd_call(SYS_utimensat, fd, fd, 0, (long)times, 0, 0));
}

/* realpath: glibc's walks the path one readlink at a time, from inside
 * libc (cc1 canonicalizes every header so: ~1,400 calls a compile, each a
 * round trip through the core).  A path outside every mount that exists
 * and meets no symlink is its own canonical text; the rest goes to libc's
 * realpath (whose readlinks the core and the vfs answer).  It reads the
 * path as glibc's does: a bad pointer faults here as it faults there. */
static char *(*next_realpath)(const char *, char *);

EXPORT char *realpath(const char *path, char *resolved) {
    if (!next_realpath) {
        next_realpath = (char *(*)(const char *, char *))dlsym(RTLD_NEXT, "realpath");
        if (!next_realpath) {
            errno = ENOSYS;
            return NULL;
        }
    }
    struct stat st;
    long r = path && path_on(SYS_newfstatat)
                 ? gadget(SYS_newfstatat, AT_FDCWD, (long)path, (long)&st, AT_SYMLINK_NOFOLLOW, 0) : -EINVAL;
    ts.plain_mode = st.st_mode;
    if (r == 0 && !S_ISLNK(st.st_mode) && judge_held(AT_FDCWD, path, 0, 1, LAST_PLAIN, 1)) {
        size_t n = strlen(ts.canon);
        char *out = resolved ? resolved : malloc(n + 1);
        if (out) memcpy(out, ts.canon, n + 1);
        ts.busy = 0;
        return out;
    }
    if (r == -ENOENT && judge(AT_FDCWD, path, 0, 1, LAST_KEPT)) {
        errno = ENOENT;   /* missing outside every mount, as the view sees it too */
        return NULL;
    }
    if (path && !ts.busy) {
        char res[TEXT];
        long w = walk_links(AT_FDCWD, path, res, WALK_GLIBC | WALK_LAST, 0);
        if (w > 0) {
            char *out = resolved ? resolved : malloc((size_t)w + 1);
            if (out) memcpy(out, res, (size_t)w + 1);
            return out;
        }
        if (w < 0) {
            if (resolved) strcpy(resolved, res);   /* as glibc: the part resolved */
            errno = (int)-w;
            return NULL;
        }
    }
    return next_realpath(path, resolved);
}

EXPORT char *canonicalize_file_name(const char *path) { return realpath(path, NULL); }

/* getcwd: the kernel's answer is the view's when the cwd is at or under no
 * mount, base or pass (a module that narrows its paths agrees to that for
 * getcwd too; see Claims.paths).  CPython asks for it on every import
 * whose path list has '' (-c, -m): ~70 round trips to Python a start. */
static char *(*next_getcwd)(char *, size_t);

static int cwd_outside(const char *p) {
    return p[0] == '/' && !pass_of(p) && !umv_in_paths(ts.paths, ts.plen, p, UMV_WALK_BASE);
}

EXPORT char *getcwd(char *buf, size_t size) {
    if (!next_getcwd) {
        next_getcwd = (char *(*)(char *, size_t))dlsym(RTLD_NEXT, "getcwd");
        if (!next_getcwd) {
            errno = ENOSYS;
            return NULL;
        }
    }
    if (path_on(SYS_getcwd) && !ts.busy) {
        ts.busy = 1;
        char *out = NULL;
        if (buf) {
            /* into the caller's buffer, as the kernel writes it (EFAULT,
             * ERANGE: the usual way, which answers for the view's text) */
            if (gadget(SYS_getcwd, (long)buf, (long)size, 0, 0, 0) > 0 && cwd_outside(buf)) out = buf;
        } else {
            long r = gadget(SYS_getcwd, (long)ts.base, sizeof ts.base, 0, 0, 0);
            /* as glibc: size 0 allocates what is needed, else size bytes */
            if (r > 0 && cwd_outside(ts.base) && (size == 0 || size >= (size_t)r)) {
                out = malloc(size ? size : (size_t)r);
                if (out) memcpy(out, ts.base, (size_t)r);
            }
        }
        ts.busy = 0;
        if (out) return out;
    }
    return next_getcwd(buf, size);
}

/* A directory just opened by the judged text in ts.canon, through a walk
 * with no symlink (openat2 RESOLVE_NO_SYMLINKS): that walk is kept as
 * ts.dir, and the text as the new fd's path, with what the statx before
 * the open found there (if the name was swapped in between, the fd's own
 * statx will not match, and fd_path reads its link as usual).  tar and
 * ls -R open each directory, then walk from it or name what is in it:
 * without this, a probe of the directory and a readlink of
 * /proc/self/fd/N follow each open. */
static void opened_dir(int fd, const struct statx *sx) {
    if (!ts.canon_at) return;   /* the memo answered: canon is not this path's */
    size_t n = strlen(ts.canon);
    keep(&ts.dir, ts.canon, n, ts.canon_gen, ts.canon_at);
    keep(&ts.fdir.k, ts.canon, n, ts.canon_gen, ts.canon_at);
    ts.fdir.fd = fd;
    ts.fdir.mnt = sx->stx_mnt_id;
    ts.fdir.ino = sx->stx_ino;
    ts.fdir.dev = makedev(sx->stx_dev_major, sx->stx_dev_minor);
    fd_stamps(fd, &ts.fdir.fgen, &ts.fdir.seen, &ts.fdir.pid);   /* after its fd_new */
}

/* open: it may create or truncate, so it is judged first, on a text
 * found readable (text_readable: a bad pointer goes the usual way, where
 * the kernel says EFAULT); the open itself is an openat2 that refuses
 * symlinks, so the kernel lands where the judged text says, or fails with
 * ELOOP and the open goes the usual way.  openat2 is stricter than openat
 * about flags and mode: those it refuses (EINVAL) go the usual way too.
 * Before, a statx of the path read it safely: tar of /usr/include made
 * 8,800 of them (a third of the calls the shim adds to tar's). */
static int readable(const void *p, size_t len);

/* Can the kernel read the NUL-ended text at p, shorter than TEXT?  A probe
 * per page it touches (readable). */
static int text_readable(const char *p) {
    uintptr_t a = (uintptr_t)p;
    for (size_t seen = 0; seen < TEXT; ) {
        size_t left = 4096 - (a & 4095);
        if (!readable((const void *)a, 1)) return 0;
        if (memchr((const void *)a, 0, left)) return 1;
        a += left;
        seen += left;
    }
    return 0;
}
/* as glibc's __OPEN_NEEDS_MODE (O_TMPFILE includes O_DIRECTORY) */
#define NEEDS_MODE(flags) (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE)

static int do_openat(int dirfd, const char *path, int flags, mode_t mode) {
    if (!NEEDS_MODE(flags)) mode = 0;
    if (path_on(SYS_openat) && text_readable(path)) {
        struct statx sx;
        long r;
        int reads = !(flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_PATH));
        /* below a pass, any open runs on the host's file; in an overlay,
         * an open for reading only of a regular file, or of a directory
         * one layer has, on that layer's */
        int o = flags & O_PATH ? OVL_NO : overlay_held(dirfd, path, !reads);
        if (o != OVL_NO) {
            /* what is there: no side effect (no FIFO waits, no device
             * opens); anything but a file or a missing name is the core's */
            r = gadget(SYS_statx, dirfd, (long)path, AT_SYMLINK_NOFOLLOW, STATX_TYPE, (long)&sx);
            if (!(r >= 0 || r == -ENOENT)) {
                if (o == OVL_FILE) ovl_done(0);
                return (int)syscall(SYS_openat, dirfd, path, flags, mode);
            }
        }
        if (o == OVL_MISSING) return (int)sret(-ENOENT);
        if (o == OVL_FILE && !reads) {
            struct open_how how = {(uint64_t)(unsigned)flags, mode & 07777, RESOLVE_NO_SYMLINKS};
            r = ovl_done(gadget(SYS_openat2, AT_FDCWD, (long)ts.canon, (long)&how, sizeof how, 0));
            fd_new(r);
            if (r != -ELOOP && r != -EINVAL) return (int)sret(r);
            return (int)syscall(SYS_openat, dirfd, path, flags, mode);
        }
        if (o == OVL_FILE) {
            struct stat st;
            r = ovl_lstat(&st);
            if (r == 0 && S_ISDIR(st.st_mode) && ts.ovl_both) {
                /* in the upper layer: a listing of the two if the lower
                 * one has it too */
                struct stat lst;
                r = ovl_next() ? gadget(SYS_newfstatat, AT_FDCWD, (long)ts.canon, (long)&lst,
                                        AT_SYMLINK_NOFOLLOW, 0) : 0;
                r = r == -ENOENT && ovl_path(ts.ovl_up, ts.ovl_rest) ? 0 : -EISDIR;
            }
            if (r == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
                struct open_how how = {(uint64_t)(unsigned)flags, 0, RESOLVE_NO_SYMLINKS};
                r = gadget(SYS_openat2, AT_FDCWD, (long)ts.canon, (long)&how, sizeof how, 0);
                fd_new(r);
            } else if (r == 0 || r == -EISDIR) {
                r = -ELOOP;   /* a symlink, a device, a listing: the module's */
            }
            ovl_done(0);
            if (r != -ELOOP && r != -EINVAL) return (int)sret(r);
            return (int)syscall(SYS_openat, dirfd, path, flags, mode);
        }
        if (judge(dirfd, path, 0, reads, LAST_KEPT)) {
            /* A directory opened is kept (opened_dir) with what a statx of
             * the new fd says, unless the stat this thread made last of
             * the same text saw no directory (tar stats each name, then
             * opens it): that statx, and none of the path before the open,
             * is all this costs over the call itself. */
            int file = ts.canon_at && kept_ok(&ts.last, ts.canon_gen, now_ns()) &&
                       !strcmp(ts.last.text, ts.canon) && !S_ISDIR(ts.last_mode);
            struct open_how how = {(uint64_t)(unsigned)flags, mode & 07777, RESOLVE_NO_SYMLINKS};
            r = gadget(SYS_openat2, dirfd, (long)path, (long)&how, sizeof how, 0);
            fd_new(r);
            if (r >= 0 && ts.canon_at && !file &&
                gadget(SYS_statx, r, (long)"", AT_EMPTY_PATH, STATX_TYPE | STATX_INO | STATX_MNT_ID, (long)&sx) == 0 &&
                S_ISDIR(sx.stx_mode) && (sx.stx_mask & STATX_MNT_ID))
                opened_dir((int)r, &sx);
            if (r != -ELOOP && r != -EINVAL) return (int)sret(r);
        }
    }
    return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

#define OPEN_MODE(flags, mode)                        \
    mode_t mode = 0;                                  \
    if (NEEDS_MODE(flags)) {                          \
        va_list ap;                                   \
        va_start(ap, flags);                          \
        mode = va_arg(ap, mode_t);                    \
        va_end(ap);                                   \
    }
EXPORT int open(const char *path, int flags, ...) {
    OPEN_MODE(flags, mode)
    return do_openat(AT_FDCWD, path, flags, mode);
}
EXPORT int open64(const char *path, int flags, ...) {
    OPEN_MODE(flags, mode)
    return do_openat(AT_FDCWD, path, flags, mode);
}
EXPORT int openat(int dirfd, const char *path, int flags, ...) {
    OPEN_MODE(flags, mode)
    return do_openat(dirfd, path, flags, mode);
}
EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
    OPEN_MODE(flags, mode)
    return do_openat(dirfd, path, flags, mode);
}
/* _FORTIFY_SOURCE's: they abort when a mode is needed, as glibc's do */
EXPORT int __open_2(const char *path, int flags) {
    if (NEEDS_MODE(flags)) abort();
    return do_openat(AT_FDCWD, path, flags, 0);
}
EXPORT int __open64_2(const char *path, int flags) {
    if (NEEDS_MODE(flags)) abort();
    return do_openat(AT_FDCWD, path, flags, 0);
}
EXPORT int __openat_2(int dirfd, const char *path, int flags) {
    if (NEEDS_MODE(flags)) abort();
    return do_openat(dirfd, path, flags, 0);
}
EXPORT int __openat64_2(int dirfd, const char *path, int flags) {
    if (NEEDS_MODE(flags)) abort();
    return do_openat(dirfd, path, flags, 0);
}

/* ------------------------------------------------------------------ */
/* connects to a mapped port                                           */

/* A port map alone (Claims.connect_map: no proxy, no policy) rewrites a
 * connect to an IPv4 loopback (or 0.0.0.0) address at a guest port into
 * one to its host port, and nothing else; the module answers getpeername
 * from the address (a local peer's host port shows as its guest port).
 * The rewrite needs no module: done here, the connect makes no stop,
 * where it made two (the call, and its end, where the program's
 * registers are put back), and sequential HTTP requests through a port
 * map ran at 1.8x native on this session's VM.  The call is the kernel's,
 * made through the gadget with a copy of the address. */

/* Can the kernel read these len bytes?  An rt_sigprocmask with no valid
 * `how` on 8 aligned bytes of each page they touch: the kernel copies the
 * set in before it looks at `how` (kernel/signal.c), so the call fails
 * with EFAULT if it cannot read them and EINVAL if it can, and changes no
 * mask.  So a bad pointer still gets EFAULT from the call, never a
 * SIGSEGV here.  88 ns a probe here, where a futex wait with no time to
 * wait (the probe before) took 350 ns: tar of /usr/include opens 8,800
 * files, each probed.  Through the gadget, which sets no errno. */
static int readable(const void *p, size_t len) {
    uintptr_t first = (uintptr_t)p, last = first + len - 1;
    for (uintptr_t a = first;; a = last) {
        uintptr_t w = a & ~(uintptr_t)7;
        /* (a NULL set is no probe: the call reads nothing and succeeds) */
        if (!w || gadget(SYS_rt_sigprocmask, -1, (long)w, 0, 8, 0) == -EFAULT) return 0;
        if (a == last || (a >> 12) == (last >> 12)) return 1;
    }
}

/* A SOCKS5 proxy without authentication (Claims.socks5: no port map, no
 * policy, no DNS of the view's own): a blocking connect of a TCP socket to
 * an address outside the direct networks is, for the module, a connect to
 * the proxy and the handshake on the program's socket, while the program's
 * thread waits.  Made here, it is what proxychains does, with no stop.
 * The rules are the module's (modules/umview_modules/net.py: connect,
 * socks5_handshake): the proxy in the socket's family (an IPv4 proxy
 * v4-mapped for an IPv6 socket; an IPv6 proxy for an IPv4 one:
 * ENETUNREACH), the proxy's refusals as errnos, a failed handshake leaves
 * the socket unconnected (connect AF_UNSPEC), the time limit is
 * proxy_timeout.  Non-blocking sockets (EINPROGRESS, SO_ERROR) stay the
 * module's.  getpeername shows the destination for the sockets connected
 * here, from a table of this process: a socket passed over exec or
 * SCM_RIGHTS shows the proxy's address instead (docs/net.md). */
#define SOCKS_PEERS 64
static struct socks_peer {
    uint64_t ino;                   /* 0: free; written last */
    socklen_t len;
    struct sockaddr_storage sa;
} socks_peers[SOCKS_PEERS];
static unsigned socks_next;

/* The socket's inode (sockfs numbers are not reused soon); 0: none. */
static uint64_t sock_ino(int fd) {
    struct stat st;
    return gadget(SYS_fstat, fd, (long)&st, 0, 0, 0) == 0 ? (uint64_t)st.st_ino : 0;
}

static void socks_remember(int fd, const struct sockaddr *sa, socklen_t len) {
    uint64_t ino = sock_ino(fd);
    if (!ino) return;
    struct socks_peer *p = &socks_peers[__atomic_fetch_add(&socks_next, 1, __ATOMIC_RELAXED) % SOCKS_PEERS];
    __atomic_store_n(&p->ino, 0, __ATOMIC_RELEASE);
    memset(&p->sa, 0, sizeof p->sa);
    memcpy(&p->sa, sa, len);
    if (sa->sa_family == AF_INET6) ((struct sockaddr_in6 *)&p->sa)->sin6_flowinfo = 0;
    else memset(((struct sockaddr_in *)&p->sa)->sin_zero, 0, 8);
    p->len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    __atomic_store_n(&p->ino, ino, __ATOMIC_RELEASE);
}

/* Is this IPv4 (a4) or IPv6 (a16) address in a direct network, or the
 * proxy itself (port)?  s: the view's socks words. */
static int socks_direct(const uint32_t *s, const uint8_t *a16, const uint8_t *a4, uint16_t port) {
    uint8_t proxy[16];
    memcpy(proxy, &s[4], 16);
    if (port == s[2] && ((s[1] == AF_INET && a4 && !memcmp(a4, proxy, 4)) ||
                         (s[1] == AF_INET6 && a16 && !memcmp(a16, proxy, 16))))
        return 1;
    for (uint32_t i = 0; i < s[8] && i < UMV_SHM_DIRECT; i++) {
        const uint32_t *d = &s[9 + 5 * i];
        unsigned fam = d[0] >> 8, bits = d[0] & 0xFF;
        const uint8_t *net = (const uint8_t *)&d[1], *a = fam == AF_INET ? a4 : a16;
        if (!a || bits > (fam == AF_INET ? 32u : 128u)) continue;
        unsigned whole = bits / 8, rest = bits % 8;
        if (memcmp(a, net, whole)) continue;
        if (rest && ((a[whole] ^ net[whole]) & (0xFF00 >> rest) & 0xFF)) continue;
        return 1;
    }
    return 0;
}

/* Wait until fd is ready (POLLIN or POLLOUT) or the deadline: 1, 0 on
 * timeout, -errno. */
static int socks_wait(int fd, short what, long deadline) {
    for (;;) {
        long left = (deadline - now_ns()) / 1000000;
        if (left <= 0) return 0;
        struct pollfd pf = {fd, what, 0};
        long r = gadget(SYS_poll, (long)&pf, 1, left, 0, 0);
        if (r == -EINTR) continue;
        if (r < 0) return (int)r;
        if (r > 0) return 1;
    }
}

/* Exactly n bytes from the proxy: 0, or the errno the program gets. */
static int socks_recv(int fd, uint8_t *buf, size_t n, long deadline) {
    while (n) {
        int w = socks_wait(fd, POLLIN, deadline);
        if (w == 0) return ETIMEDOUT;
        if (w < 0) return ECONNREFUSED;
        long r = gadget(SYS_recvfrom, fd, (long)buf, (long)n, MSG_DONTWAIT, 0);
        if (r == -EINTR || r == -EAGAIN) continue;
        if (r <= 0) return ECONNREFUSED;   /* closed, or an error: the proxy's failure */
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

static int socks_send(int fd, const uint8_t *buf, size_t n, long deadline) {
    while (n) {
        long r = gadget(SYS_sendto, fd, (long)buf, (long)n, MSG_DONTWAIT | MSG_NOSIGNAL, 0);
        if (r == -EINTR) continue;
        if (r == -EAGAIN) {
            int w = socks_wait(fd, POLLOUT, deadline);
            if (w == 0) return ETIMEDOUT;
            if (w < 0) return ECONNREFUSED;
            continue;
        }
        if (r < 0) return ECONNREFUSED;
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The handshake for a4 (IPv4, plain or v4-mapped) or a16 on port (network
 * order): 0, or the errno. */
static int socks_handshake(int fd, const uint8_t *a4, const uint8_t *a16, uint16_t nport, long deadline) {
    static const int reply_errno[9] = {0, ECONNREFUSED, ECONNREFUSED, ENETUNREACH, EHOSTUNREACH,
                                       ECONNREFUSED, ETIMEDOUT, ECONNREFUSED, ECONNREFUSED};
    uint8_t b[32];
    int e = socks_send(fd, (const uint8_t *)"\5\1\0", 3, deadline);
    if (!e) e = socks_recv(fd, b, 2, deadline);
    if (e) return e;
    if (b[0] != 5 || b[1] != 0) return ECONNREFUSED;   /* not SOCKS5, or none of our methods */
    size_t n = 4;
    memcpy(b, "\5\1\0", 3);
    if (a4) {
        b[3] = 1;
        memcpy(b + n, a4, 4);
        n += 4;
    } else {
        b[3] = 4;
        memcpy(b + n, a16, 16);
        n += 16;
    }
    memcpy(b + n, &nport, 2);
    n += 2;
    e = socks_send(fd, b, n, deadline);
    if (!e) e = socks_recv(fd, b, 4, deadline);
    if (e) return e;
    if (b[0] != 5) return ECONNREFUSED;
    if (b[1]) return b[1] < 9 ? reply_errno[b[1]] : ECONNREFUSED;
    /* the bound address: exactly its length, nothing of the stream after it */
    if (b[3] == 1) return socks_recv(fd, b, 6, deadline);
    if (b[3] == 4) return socks_recv(fd, b, 18, deadline);
    if (b[3] == 3) {
        e = socks_recv(fd, b, 1, deadline);
        return e ? e : socks_recv(fd, b + 1, (size_t)b[0] + 2, deadline);
    }
    return ECONNREFUSED;
}

/* 1: the connect was taken here (*ret its answer); 0: not ours to make. */
static int socks_connect(int fd, const struct sockaddr *addr, socklen_t len, const uint32_t *s, int *ret) {
    if (!s[0]) return 0;
    int type = 0, fl;
    socklen_t tl = sizeof type;
    sa_family_t fam = addr->sa_family;
    if ((fam == AF_INET && len < sizeof(struct sockaddr_in)) || (fam == AF_INET6 && len < 24) ||
        (fam != AF_INET && fam != AF_INET6))
        return 0;
    if (gadget(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, (long)&type, (long)&tl) < 0 || type != SOCK_STREAM ||
        (fl = (int)gadget(SYS_fcntl, fd, F_GETFL, 0, 0, 0)) < 0 || (fl & O_NONBLOCK))
        return 0;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    const uint8_t *a4 = NULL, *a16 = NULL;
    uint16_t nport;
    if (fam == AF_INET) {
        const struct sockaddr_in *in = (const void *)addr;
        a4 = (const uint8_t *)&in->sin_addr;
        nport = in->sin_port;
    } else {
        const struct sockaddr_in6 *in6 = (const void *)addr;
        a16 = (const uint8_t *)&in6->sin6_addr;
        if (!memcmp(a16, mapped, 12)) a4 = a16 + 12;
        nport = in6->sin6_port;
    }
    if (socks_direct(s, a16, a4, ntohs(nport))) return 0;
    /* the proxy in the socket's family */
    struct sockaddr_storage px;
    memset(&px, 0, sizeof px);
    socklen_t pl;
    if (fam == AF_INET) {
        if (s[1] != AF_INET) {
            *ret = (int)sret(-ENETUNREACH);
            return 1;
        }
        struct sockaddr_in *p = (void *)&px;
        p->sin_family = AF_INET;
        p->sin_port = htons((uint16_t)s[2]);
        memcpy(&p->sin_addr, &s[4], 4);
        pl = sizeof *p;
    } else {
        struct sockaddr_in6 *p = (void *)&px;
        p->sin6_family = AF_INET6;
        p->sin6_port = htons((uint16_t)s[2]);
        if (s[1] == AF_INET) {
            memcpy(&p->sin6_addr, mapped, 12);
            memcpy((uint8_t *)&p->sin6_addr + 12, &s[4], 4);
        } else {
            memcpy(&p->sin6_addr, &s[4], 16);
        }
        pl = sizeof *p;
    }
    long deadline = now_ns() + (long)s[3] * 1000000L;
    /* to the proxy without waiting (its time limit is ours, not TCP's),
     * the file's flag put back at once, as the module does */
    gadget(SYS_fcntl, fd, F_SETFL, fl | O_NONBLOCK, 0, 0);
    long r = gadget(SYS_connect, fd, (long)&px, pl, 0, 0);
    gadget(SYS_fcntl, fd, F_SETFL, fl, 0, 0);
    if (r == -EISCONN || r == -EALREADY)
        return 0;   /* connected, or connecting, before: the module knows what */
    if (r < 0 && r != -EINPROGRESS) {
        *ret = (int)sret(r);   /* refused at once: the proxy is down */
        return 1;
    }
    int e = 0;
    if (r == -EINPROGRESS) {
        int w = socks_wait(fd, POLLOUT, deadline), err = 0;
        socklen_t el = sizeof err;
        e = w == 0 ? ETIMEDOUT : w < 0 ? -w
            : gadget(SYS_getsockopt, fd, SOL_SOCKET, SO_ERROR, (long)&err, (long)&el) < 0 ? ECONNREFUSED : err;
    }
    if (!e) e = socks_handshake(fd, a4, a4 ? NULL : a16, nport, deadline);
    if (e) {
        struct sockaddr un = {AF_UNSPEC, {0}};
        gadget(SYS_connect, fd, (long)&un, sizeof un, 0, 0);   /* unconnected, as after a failed connect */
        *ret = (int)sret(-e);
        return 1;
    }
    socks_remember(fd, addr, len);
    *ret = 0;
    return 1;
}

EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len) {
    uint64_t ino = __atomic_load_n(&socks_next, __ATOMIC_RELAXED) && addr && len ? sock_ino(fd) : 0;
    for (int i = 0; ino && i < SOCKS_PEERS; i++) {
        struct socks_peer *p = &socks_peers[i];
        if (__atomic_load_n(&p->ino, __ATOMIC_ACQUIRE) != ino || !readable(len, sizeof *len)) continue;
        struct sockaddr_storage sa = p->sa;
        socklen_t sl = p->len, room = *len;
        if (__atomic_load_n(&p->ino, __ATOMIC_ACQUIRE) != ino) continue;
        /* the kernel's checks (connected still, the buffers), then ours */
        long r = gadget(SYS_getpeername, fd, (long)addr, (long)len, 0, 0);
        if (r < 0) return (int)sret(r);
        memcpy(addr, &sa, room < sl ? room : sl);
        *len = sl;
        return 0;
    }
    return (int)NEXT_SYS(getpeername, fd, addr, len);
}

/* The view's entry, read whole, when it has a network job for the shim
 * (a port map, a proxy); 0 otherwise, after one look at the two words
 * (most views have none, and connect and getsockname come here). */
static int net_entry(struct umv_shm_view *e) {
    unsigned v = my_view();
    if (!v) return 0;
    const struct umv_shm_view *sv = &shm->view[v - 1];
    if (!__atomic_load_n(&sv->nports, __ATOMIC_RELAXED) && !__atomic_load_n(&sv->socks[0], __ATOMIC_RELAXED))
        return 0;
    return view_entry(e, sizeof *e) && (e->nports || e->socks[0]);
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    struct umv_shm_view e;
    int ret;
    if (addr && len >= sizeof(struct sockaddr_in) && len <= sizeof(struct sockaddr_storage) &&
        net_entry(&e) && readable(addr, len)) {
        if (socks_connect(fd, addr, len, e.socks, &ret)) return ret;
        struct sockaddr_in in;
        memcpy(&in, addr, sizeof in);
        uint32_t a = ntohl(in.sin_addr.s_addr);
        if (in.sin_family == AF_INET && ((a >> 24) == 127 || a == 0)) {
            uint16_t port = ntohs(in.sin_port);
            for (uint32_t i = 0; i < e.nports && i < UMV_SHM_PORTS; i++) {
                if (e.ports[i] >> 16 != port) continue;
                struct sockaddr_storage copy;
                memcpy(&copy, addr, len);
                ((struct sockaddr_in *)&copy)->sin_port = htons((uint16_t)(e.ports[i] & 0xFFFF));
                return (int)sret(gadget(SYS_connect, fd, (long)&copy, len, 0, 0));
            }
        }
    }
    return (int)NEXT_SYS(connect, fd, addr, len);
}

/* The module's getsockname with a port map alone is the kernel's answer
 * with a mapped host port shown as its guest port (an http.server in the
 * view asks it of each connection it accepts): made here, once the
 * kernel has written the name (so the buffer is the program's to touch). */
EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len) {
    struct umv_shm_view e;
    if (!addr || !len || !net_entry(&e) || !e.nports)
        return (int)NEXT_SYS(getsockname, fd, addr, len);
    socklen_t room = 0;
    long r = readable(len, sizeof *len) ? (room = *len, gadget(SYS_getsockname, fd, (long)addr, (long)len, 0, 0))
                                        : -EFAULT;
    if (r < 0) return (int)sret(r);
    socklen_t written = room < *len ? room : *len;
    sa_family_t fam = written >= sizeof fam ? addr->sa_family : AF_UNSPEC;
    if (written >= 4 && (fam == AF_INET || fam == AF_INET6)) {
        uint16_t port = ntohs(((struct sockaddr_in *)addr)->sin_port);   /* the same place in both */
        for (uint32_t i = 0; i < e.nports && i < UMV_SHM_PORTS; i++)
            if ((e.ports[i] & 0xFFFF) == port) {
                ((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)(e.ports[i] >> 16));
                break;
            }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* identity calls of a fake root whose processes all have the same ids  */

/* While every process of the view has all its user ids uid and all its
 * group ids gid (Claims.same_ids: a fake root before any process changed
 * identity), getuid, geteuid, getgid and getegid are answered here, and
 * setuid, setgid, setresuid and setresgid succeed here when they would
 * change nothing.  make's children call getuid and setresuid(-1, 0, -1)
 * before each exec, the parent geteuid and getuid (make -j2 of the
 * benchmark: 336 of the 464 calls a fake root sent to Python).  A call
 * that changes something goes to the module, which turns this off before
 * the caller resumes (umv_view_set_ids); other processes keep their ids,
 * so what they read here stays true.  getresuid and getresgid write
 * through pointers, and stay the kernel's to check. */

static int same_ids(uint32_t ids[2]) {
    struct umv_shm_view e;
    if (!view_entry(&e, ENTRY_IDS) || !e.ids_on) return 0;
    ids[0] = e.ids[0];
    ids[1] = e.ids[1];
    return 1;
}

/* which: 0 the uid, 1 the gid */
static long same_id(int which) {
    uint32_t ids[2];
    return same_ids(ids) ? (long)ids[which] : -1;
}

/* Would setting these ids (-1: keep) change nothing? */
static int no_change(int which, const uint32_t *want, int n) {
    uint32_t ids[2];
    if (!same_ids(ids)) return 0;
    for (int i = 0; i < n; i++)
        if (want[i] != (uint32_t)-1 && want[i] != ids[which]) return 0;
    return 1;
}

/* libc's own callers of these are out of reach (internal names): make's
 * come from eaccess (euidaccess: getuid, geteuid, getgid, getegid each
 * time make looks for a program) and from posix_spawn with
 * POSIX_SPAWN_RESETIDS (getuid, setresuid, getgid, setresgid in each
 * child).  With the same ids everywhere both are what they would be
 * without the ids: eaccess is access (glibc's says so when the real and
 * effective ids agree), and resetting the effective ids to the real ones
 * changes nothing. */
EXPORT int eaccess(const char *path, int mode) {
    uint32_t ids[2];
    if (same_ids(ids)) return access(path, mode);
    /* Elsewhere glibc's own steps (io/euidaccess.c, 2.36), with the stat
     * and the access judged here: a stat first (its error is the answer;
     * F_OK asks no more), then, when the real and effective ids agree,
     * access.  make looks for each command in every directory of $PATH
     * this way.  Set-id callers get libc's, which stats again. */
    struct stat st;
    if (!path_on(SYS_newfstatat) || !path_on(SYS_faccessat)) return NEXT(euidaccess, path, mode);
    if (stat(path, &st)) return -1;
    mode &= R_OK | W_OK | X_OK;
    if (mode == F_OK) return 0;
    if (getuid() == geteuid() && getgid() == getegid()) return access(path, mode);
    return NEXT(euidaccess, path, mode);
}
EXPORT int euidaccess(const char *path, int mode) { return eaccess(path, mode); }

static const posix_spawnattr_t *no_resetids(const posix_spawnattr_t *attr, posix_spawnattr_t *copy) {
    short flags;
    uint32_t ids[2];
    if (!attr || posix_spawnattr_getflags(attr, &flags) || !(flags & POSIX_SPAWN_RESETIDS) || !same_ids(ids))
        return attr;
    *copy = *attr;   /* plain data: flags, process group, signal sets, scheduling */
    posix_spawnattr_setflags(copy, flags & ~POSIX_SPAWN_RESETIDS);
    return copy;
}
EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
    posix_spawnattr_t copy;
    return next_posix_spawn ? next_posix_spawn(pid, path, fa, no_resetids(attr, &copy), argv, envp) : ENOSYS;
}
EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
    posix_spawnattr_t copy;
    return next_posix_spawnp ? next_posix_spawnp(pid, file, fa, no_resetids(attr, &copy), argv, envp) : ENOSYS;
}

#define GET_ID(name, type, which)                                              \
    EXPORT type name(void) {                                                   \
        long id = same_id(which);                                              \
        return id >= 0 ? (type)id : (type)NEXT_SYS(name);                     \
    }
GET_ID(getuid, uid_t, 0)
GET_ID(geteuid, uid_t, 0)
GET_ID(getgid, gid_t, 1)
GET_ID(getegid, gid_t, 1)
EXPORT int setuid(uid_t uid) {
    uint32_t w[1] = {uid};
    /* -1 is EINVAL for setuid, not "keep" */
    return uid != (uid_t)-1 && no_change(0, w, 1) ? 0 : NEXT(setuid, uid);
}
EXPORT int setgid(gid_t gid) {
    uint32_t w[1] = {gid};
    return gid != (gid_t)-1 && no_change(1, w, 1) ? 0 : NEXT(setgid, gid);
}
EXPORT int setresuid(uid_t r, uid_t e, uid_t s) {
    uint32_t w[3] = {r, e, s};
    return no_change(0, w, 3) ? 0 : NEXT(setresuid, r, e, s);
}
EXPORT int setresgid(gid_t r, gid_t e, gid_t s) {
    uint32_t w[3] = {r, e, s};
    return no_change(1, w, 3) ? 0 : NEXT(setresgid, r, e, s);
}

/* ------------------------------------------------------------------ */
/* execvp: the $PATH entries that lack the file                        */

/* execvp and its kin try execve on each directory of $PATH in turn, and
 * all but the last fail with ENOENT: gcc's driver looks for `as` so, eight
 * misses per compile on this machine's $PATH (make -j2 of 40 files: 328 of
 * 455 execs).  Each miss is a stop where a module claims exec.  Here the
 * file is looked for first, and an entry that lacks it is passed over,
 * when the view would fail that execve as the kernel does, unseen:
 *   - the view's modules that claim exec all said Claims.exec_found (the
 *     C core resumes such a miss itself, exec_missing) and the stat calls
 *     are answered here (the gadget runs stat, and paths are the host's);
 *   - or the core resumes execve as it is when its path is outside every
 *     mount, and judge says this one is.
 * Whatever the entry holds otherwise goes to libc's execvpe with the full
 * path, which execs it (and runs a script without #! through /bin/sh, as
 * execvp does); its errors continue the search as glibc's do.  A file
 * made between the look and the search's end is missed, the window the
 * core's own check has.  The search runs in vfork children (gcc's
 * pex-unix): it uses the stack only, and libc's execvpe was looked up
 * when the shim was loaded. */
static int exec_skips(void) {
    struct umv_shm_view e;
    if (!view_entry(&e, ENTRY_IDS)) return 0;
    if ((e.flags & UMV_VIEW_EXEC_FOUND) && e.on) return 1;
    return path_on(SYS_execve) && path_on(SYS_newfstatat) ? 2 : 0;
}

/* Would execve(path) fail with ENOENT or ENOTDIR with no module to see it?
 * how: exec_skips(). */
static int exec_miss(const char *path, int how) {
    struct stat st;
    long r = gadget(SYS_newfstatat, AT_FDCWD, (long)path, (long)&st, 0, 0);
    if (r != -ENOENT && r != -ENOTDIR) return 0;
    return how == 1 || judge(AT_FDCWD, path, 0, 1, LAST_FOLLOW);
}

static int do_execvpe(const char *file, char *const argv[], char *const envp[]) {
    int how = file && *file && !strchr(file, '/') && next_execvpe ? exec_skips() : 0;
    if (!how) return NEXT(execvpe, file, argv, envp);
    /* glibc's __execvpe_common, the search */
    const char *path = getenv("PATH");
    if (!path) path = "/bin:/usr/bin";
    size_t flen = strnlen(file, NAME_MAX + 1) + 1, plen = strnlen(path, PATH_MAX - 1) + 1;
    if (flen > NAME_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char buf[PATH_MAX + NAME_MAX + 2];
    int eacces = 0, err = ENOENT;
    for (const char *p = path, *sub;; p = sub + 1) {
        sub = strchrnul(p, ':');
        if ((size_t)(sub - p) < plen) {
            /* an empty entry is the cwd: the name alone */
            size_t dl = (size_t)(sub - p);
            memcpy(buf, p, dl);
            if (dl) buf[dl++] = '/';
            memcpy(buf + dl, file, flen);
            if (exec_miss(buf, how)) {
                err = ENOENT;
            } else {
                next_execvpe(buf, argv, envp);
                err = errno;
                if (err == EACCES) eacces = 1;
                else if (err != ENOENT && err != ESTALE && err != ENOTDIR && err != ENODEV && err != ETIMEDOUT)
                    return -1;
            }
        }
        if (!*sub) break;
    }
    errno = eacces ? EACCES : err;
    return -1;
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
    return do_execvpe(file, argv, envp);
}
EXPORT int execvp(const char *file, char *const argv[]) { return do_execvpe(file, argv, environ); }
EXPORT int execlp(const char *file, const char *arg, ...) {
    /* glibc's: the arguments into an array on the stack */
    va_list ap;
    size_t n = 1;
    va_start(ap, arg);
    while (va_arg(ap, const char *)) n++;
    va_end(ap);
    const char *argv[n + 1];
    argv[0] = arg;
    va_start(ap, arg);
    for (size_t i = 1; i <= n; i++) argv[i] = va_arg(ap, const char *);
    va_end(ap);
    return do_execvpe(file, (char *const *)argv, environ);
}

/* ------------------------------------------------------------------ */
/* numbers given a new file by the program's own calls (fd_trusted)    */

EXPORT int dup(int fd) {
    int r = (int)NEXT_SYS(dup, fd);
    fd_new(r);
    return r;
}
EXPORT int dup2(int fd, int to) {
    int r = (int)NEXT_SYS(dup2, fd, to);
    fd_new(r);
    return r;
}
EXPORT int dup3(int fd, int to, int flags) {
    int r = (int)NEXT_SYS(dup3, fd, to, flags);
    fd_new(r);
    return r;
}
static int fcntl_as(int (*next)(int, int, ...), int fd, int cmd, va_list ap) {
    void *arg = va_arg(ap, void *);   /* as glibc: one argument, whatever cmd takes */
    int r = next ? next(fd, cmd, arg) : (int)syscall(SYS_fcntl, fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) fd_new(r);
    return r;
}
EXPORT int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    int r = fcntl_as(next_fcntl, fd, cmd, ap);
    va_end(ap);
    return r;
}
EXPORT int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    int r = fcntl_as(next_fcntl64 ? next_fcntl64 : next_fcntl, fd, cmd, ap);
    va_end(ap);
    return r;
}
/* the fds a message brought (SCM_RIGHTS) */
static void fds_received(struct msghdr *m) {
    if (!m || !m->msg_control) return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0)) continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, data + i * sizeof fd, sizeof fd);
            fd_new(fd);
        }
    }
}
EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int flags) {
    ssize_t r = NEXT_SYS(recvmsg, fd, m, flags);
    if (r >= 0) fds_received(m);
    return r;
}
EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned n, int flags, struct timespec *t) {
    int r = (int)NEXT_SYS(recvmmsg, fd, v, n, flags, t);
    for (int i = 0; i < r; i++) fds_received(&v[i].msg_hdr);
    return r;
}
/* ------------------------------------------------------------------ */
/* directory streams                                                   */

/* glibc's opendir and fdopendir open and fstat the directory from inside
 * libc, where the shim cannot see them: in a vfs view both calls stop in
 * the core (ls -lR /usr/share: 9,000 round trips of ~9 us).  So the shim
 * has directory streams of its own, as glibc's on x86_64 (a getdents64
 * buffer whose records are the struct dirent the caller gets): the open
 * is do_openat's, the fstat do_fstat's.  Every DIR the program holds
 * comes from here, so every function that takes one is here too;
 * glibc's own users of its streams (scandir, glob, fts, nftw) call its
 * internal names and never see ours.  getdents64 is a plain call: in a
 * view where listings are virtual the core answers it. */
#include <dirent.h>

struct __dirstream {
    int fd;                 /* closedir closes it, fdopendir's too */
    pthread_mutex_t lock;
    size_t size, offset;    /* bytes in buf; the next record */
    long filepos;           /* telldir: d_off of the last record returned */
    char buf[32768] __attribute__((aligned(8)));
};

static DIR *dir_for(int fd) {
    DIR *d = malloc(sizeof *d);
    if (!d) return NULL;
    d->fd = fd;
    pthread_mutex_init(&d->lock, NULL);
    d->size = d->offset = 0;
    d->filepos = 0;
    return d;
}

EXPORT DIR *opendir(const char *name) {
    int fd = do_openat(AT_FDCWD, name, O_RDONLY | O_NONBLOCK | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0) return NULL;
    DIR *d = dir_for(fd);
    if (!d) {
        int e = errno;
        syscall(SYS_close, fd);
        errno = e;
    }
    return d;
}

EXPORT DIR *fdopendir(int fd) {
    struct stat st;
    if (do_fstat(fd, &st) < 0) return NULL;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return NULL;
    }
    long flags = syscall(SYS_fcntl, fd, F_GETFL);
    if (flags < 0) return NULL;
    if ((flags & O_ACCMODE) == O_WRONLY) {
        errno = EINVAL;
        return NULL;
    }
    /* as glibc: the caller's descriptor is set close-on-exec */
    if (syscall(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC) < 0) return NULL;
    return dir_for(fd);
}

EXPORT int closedir(DIR *d) {
    DIR *volatile given = d;   /* declared nonnull: the check would go */
    if (!given) {
        errno = EINVAL;
        return -1;
    }
    int fd = d->fd;
    pthread_mutex_destroy(&d->lock);
    free(d);
    return (int)syscall(SYS_close, fd);
}

EXPORT int dirfd(DIR *d) { return d->fd; }

/* the next record, or NULL at the end (errno as it was) or on an error */
static struct dirent64 *next_entry(DIR *d) {
    struct dirent64 *dp;
    do {
        if (d->offset >= d->size) {
            int saved = errno;
            long n = syscall(SYS_getdents64, d->fd, d->buf, sizeof d->buf);
            if (n <= 0) {
                /* glibc: a directory removed while read ends with ENOENT */
                if (n == 0 || errno == ENOENT) errno = saved;
                return NULL;
            }
            d->size = (size_t)n;
            d->offset = 0;
        }
        dp = (struct dirent64 *)(d->buf + d->offset);
        d->offset += dp->d_reclen;
        d->filepos = dp->d_off;
    } while (dp->d_ino == 0);
    return dp;
}

EXPORT struct dirent64 *readdir64(DIR *d) {
    pthread_mutex_lock(&d->lock);
    struct dirent64 *dp = next_entry(d);
    pthread_mutex_unlock(&d->lock);
    return dp;
}

_Static_assert(sizeof(struct dirent) == sizeof(struct dirent64), "x86_64: one struct dirent");
EXPORT struct dirent *readdir(DIR *d) { return (struct dirent *)readdir64(d); }

static int next_entry_r(DIR *d, struct dirent64 *entry, struct dirent64 **result) {
    pthread_mutex_lock(&d->lock);
    int saved = errno, err = 0;
    errno = 0;
    struct dirent64 *dp = next_entry(d);
    if (dp) {
        size_t n = dp->d_reclen < sizeof *entry ? dp->d_reclen : sizeof *entry;
        memcpy(entry, dp, n);
        entry->d_reclen = (unsigned short)n;
        *result = entry;
    } else {
        err = errno;
        *result = NULL;
    }
    errno = saved;
    pthread_mutex_unlock(&d->lock);
    return err;
}

EXPORT int readdir64_r(DIR *d, struct dirent64 *entry, struct dirent64 **result) {
    return next_entry_r(d, entry, result);
}
EXPORT int readdir_r(DIR *d, struct dirent *entry, struct dirent **result) {
    return next_entry_r(d, (struct dirent64 *)entry, (struct dirent64 **)result);
}

EXPORT void seekdir(DIR *d, long pos) {
    pthread_mutex_lock(&d->lock);
    syscall(SYS_lseek, d->fd, pos, SEEK_SET);
    d->size = d->offset = 0;
    d->filepos = pos;
    pthread_mutex_unlock(&d->lock);
}

EXPORT void rewinddir(DIR *d) { seekdir(d, 0); }

EXPORT long telldir(DIR *d) {
    pthread_mutex_lock(&d->lock);
    long pos = d->filepos;
    pthread_mutex_unlock(&d->lock);
    return pos;
}
