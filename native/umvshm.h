/* umvshm: what the C core shares with the shim (native/umvshim.c).
 *
 * Under a fake root most stat calls get the kernel's answer with the owner
 * replaced (Claims.stat_owner).  The C core does that at a seccomp
 * notification, which still costs a round trip through the hypervisor per
 * call (~6 µs bare here, ~15-40 µs under a parallel build).  Programs
 * linked against libc can be answered inside their own process instead:
 * `umview -0` preloads the shim, which makes the stat call itself and
 * replaces the owner, and goes through the notifier only for what it cannot
 * answer.  What it needs to know is in one memfd of the hypervisor that the
 * shim maps read-only (found as /proc/HVPID/fd/N in $UMVIEW_SHM):
 *
 *   - view_of[tgid]: the view of each traced process, plus one (0: not
 *     ours).  The tracer writes it when it first sees a process, before
 *     the process runs, when a process changes view, and when it ends.
 *   - view[v]: whether the view's stat calls may be answered in-process
 *     (one module serves them all, through Claims.stat_owner), and that
 *     module's seven numbers (StatOwner.config()), under a sequence count.
 *   - bloom: a Bloom filter of the (dev, ino) keys every module has listed
 *     (Module.stat_listed): those files have records the module must
 *     apply.  Bits are never cleared: a key dropped later, or a false
 *     positive, only sends that file's stats the slow way.
 *
 * Under the vfs, a path call whose path leads nowhere near a mount is
 * resumed by the C core as it is (path_fast): again a round trip per call
 * (~25-40 µs with both CPUs busy), for nothing.  The shim judges those
 * calls inside the program, with the same rules (umv_in_paths,
 * umv_canon below are the core's own), from:
 *
 *   - vpaths[v]: the view's path prefixes (umv_view_set_paths: 'C' entries,
 *     at, under or above which a path is the view's business, and 'B'
 *     ones, directories a relative walk must not start from, and 'D' ones,
 *     layers, the view's at and under, not above; then 'G' guest, 'H'
 *     host for each plain pass (a bind or tmpfs directory), and 'O' guest,
 *     'U' upper, 'L' lower for each overlay, a cow mount with nothing
 *     deleted yet, whose calls the shim may run on the host's or a
 *     layer's file) and the calls the shim may run itself, under a
 *     sequence count;
 *   - dgen: bumped by the core before any call of the view that could
 *     change what a path leads to (chdir, fchdir, chroot, rename, rmdir,
 *     unlink: a name must be removed before it can come back as a
 *     symlink), so the shim may keep the cwd, the last directory it found
 *     free of symlinks and the last name it saw is none (see umvshim.c).
 *
 * The shim's own calls must not be trapped again, so it makes them through
 * a small gadget at a fixed address, and the view's filters allow the calls
 * the shim makes (seccomp.py: gadget) when they return to UMV_GADGET_IP
 * (seccomp_data.instruction_pointer is the address after the `syscall`
 * instruction).  A program that jumps there on purpose sees the kernel's
 * owners, and files as they are outside the view: umview, like PRoot and
 * fakeroot, is not a sandbox (docs/design.md).
 */
#ifndef UMVSHM_H
#define UMVSHM_H
#include <stddef.h>
#include <stdint.h>
#include "umvcore.h"

#define UMV_SHM_MAGIC 0x346d687376756d75ULL   /* "umvshm4" */
#define UMV_SHM_PIDS 4194304                  /* PID_MAX_LIMIT on 64-bit */
#define UMV_SHM_BLOOM_BITS (1u << 24)         /* 2 MB: ~0.1% false hits at 500,000 keys */

_Static_assert(UMV_SHM_SOCKS_WORDS == 9 + 5 * UMV_SHM_DIRECT, "the SOCKS5 entry's words");

struct umv_shm_view {
    uint32_t seq;        /* odd while the core rewrites the entry */
    uint32_t on;         /* answer stat calls in-process */
    uint32_t cfg[7];     /* StatOwner.config() */
    uint32_t flags;      /* the view's UMV_VIEW_* flags (umvcore.h) */
    uint32_t ids_on;     /* umv_view_set_ids: ids[0] uid, ids[1] gid */
    uint32_t ids[2];
    uint32_t nports;     /* umv_view_set_net: pairs guest, host (host order) */
    uint32_t ports[UMV_SHM_PORTS];   /* guest << 16 | host */
    uint32_t socks[UMV_SHM_SOCKS_WORDS];   /* umv_view_set_net (addresses in network order) */
};

#define UMV_SHM_PATHS 4096                    /* bytes of prefixes a view may publish */

struct umv_shm_paths {
    uint32_t seq;        /* odd while the core rewrites the entry */
    uint32_t len;        /* bytes of paths; 0: the shim runs no path call */
    uint64_t calls[UMV_SHM_CALLS / 64];  /* the path calls it may run when outside */
    char paths[UMV_SHM_PATHS];           /* as umv_view_set_paths: "C/x\0B/y\0" */
};

struct umv_shm {
    uint64_t magic;
    uint32_t dgen;       /* see above */
    uint32_t pad;
    struct umv_shm_view view[UMV_MAX_VIEWS];
    struct umv_shm_paths vpaths[UMV_MAX_VIEWS];
    uint64_t bloom[UMV_SHM_BLOOM_BITS / 64];
    uint16_t view_of[UMV_SHM_PIDS];
    /* per process (tgid): bumped by the core at each call of it that the
     * core sees (a notification, a seccomp stop), before the call runs.
     * UMV_SEEN_SHARED is set while the process shares its fd table or its
     * memory with another running process (clone with CLONE_FILES or
     * CLONE_VM and no CLONE_THREAD), or a vfork child runs in its memory.
     * The shim trusts a kept directory fd's path only while its process's
     * count stays and the bit is clear (fd_trusted in umvshim.c): an fd a
     * call the core sees gives the program was given behind its back. */
    uint32_t seen_of[UMV_SHM_PIDS];
};
#define UMV_SEEN_SHARED 0x80000000u

/* the two Bloom positions of a key; dev as st_dev encodes it */
static inline void umv_shm_bloom_pos(uint64_t dev, uint64_t ino, uint32_t pos[2]) {
    uint64_t h = (ino ^ (dev * 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 31;
    pos[0] = (uint32_t)h & (UMV_SHM_BLOOM_BITS - 1);
    pos[1] = (uint32_t)(h >> 32) & (UMV_SHM_BLOOM_BITS - 1);
}

/* Is pre (n bytes) p itself or a directory above it? */
static inline int umv_prefix_of(const char *pre, size_t n, const char *p) {
    return (n == 1 && pre[0] == '/') ||
           (!__builtin_strncmp(p, pre, n) && (p[n] == 0 || p[n] == '/'));
}

/* Is canonical host path p the view's business: at, under or above a 'C'
 * prefix, at or under a 'D' one (a layer: a host directory a mount shows
 * elsewhere, whose parents the view shows as the host does) unless
 * UMV_NO_LAYERS is set, or, with bases set, in a 'B' one?  paths: len bytes of
 * NUL-ended entries, each a kind letter and a path.  bases = UMV_WALK_BASE
 * asks it of the directory a relative walk starts from: at or under a 'C'
 * prefix, or in a 'B' one.  Above a mount point is fine there: the
 * directory's own text is the view's, and where the walk lands is judged
 * on its canonical text after (a walk from /tmp into a bind's source
 * /tmp/src is caught then; before, every relative call made from /tmp went
 * to Python). */
#define UMV_WALK_BASE 2
/* UMV_NO_LAYERS: for a call that only names a file (the stat family, open,
 * mkdir, unlink, rename...; not chdir or exec, whose names the module
 * keeps), on an absolute text or one whose walk started outside every
 * layer.  A layer's files are at their own paths in the view as on the
 * host, so the kernel's walk is the view's: the text names them by their
 * host paths, and no cwd's or dirfd's name (which may be the mount's) is
 * in it.  make -j2 from a directory in /tmp with /tmp bound elsewhere sent
 * gcc's temporary files, 424 calls, to Python for nothing. */
#define UMV_NO_LAYERS 4
static inline int umv_in_paths(const char *paths, size_t len, const char *p, int bases) {
    size_t m = __builtin_strlen(p);
    int walk = bases & 3;
    for (const char *e = paths; e < paths + len; e += __builtin_strlen(e) + 1) {
        const char *pre = e + 1;
        size_t n = __builtin_strlen(pre);
        if (e[0] == 'B' && !walk) continue;
        if (e[0] == 'D' && (bases & UMV_NO_LAYERS)) continue;
        /* but an overlay's layers ('U', 'L': in the shim's copy only; the
         * core asks overlay_of) stay the view's: the shim keeps what they
         * hold, and only a call the core sees makes it forget (dgen) */
        int layer = e[0] == 'D' || ((e[0] == 'U' || e[0] == 'L') && (bases & UMV_NO_LAYERS));
        if (e[0] != 'B' && e[0] != 'C' && !layer) continue;
        if (umv_prefix_of(pre, n, p)) return 1;
        /* p holds a mount point */
        if (e[0] == 'C' && walk != UMV_WALK_BASE && umv_prefix_of(p, m, pre)) return 1;
    }
    return 0;
}

/* The length of the component c starts: up to a '/' or the end.  A loop,
 * not strcspn: glibc's sets up a table per call, which costs more than
 * the few bytes of a name (ls -lR in a vfs view spent 3% of its time in
 * __strcspn_sse42). */
static inline size_t umv_span(const char *c) {
    size_t n = 0;
    while (c[n] && c[n] != '/') n++;
    return n;
}

/* The next component of the path *r followed by *next (NULL: none), with
 * the slashes skipped: where it starts, its length in *len; NULL at the
 * end.  Both pointers move on. */
static inline const char *umv_component(const char **r, const char **next, size_t *len) {
    for (;;) {
        if (!**r) {
            if (!*next) return 0;
            *r = *next;
            *next = 0;
            continue;
        }
        while (**r == '/') (*r)++;
        if (!**r) continue;
        const char *c = *r;
        *len = umv_span(c);
        *r += *len;
        return c;
    }
}

/* The canonical text of absolute path a + "/" + b in canon (cap bytes):
 * "" and "." dropped, ".." with its parent.  It is where the kernel's walk
 * lands only when the walk meets no symlink (the caller checks that).
 * Returns its length, or 0 when it does not fit; *dotdot: a ".." was met. */
static inline size_t umv_canon(const char *a, const char *b, char *canon, size_t cap, int *dotdot) {
    size_t w = 0, len;
    *dotdot = 0;
    for (const char *r = a, *next = b, *c; (c = umv_component(&r, &next, &len));) {
        if (len == 2 && c[0] == '.' && c[1] == '.') {
            *dotdot = 1;
            while (w > 0 && canon[w - 1] != '/') w--;
            if (w > 0) w--;
        } else if (!(len == 1 && c[0] == '.')) {
            if (w + 1 + len + 1 > cap) return 0;
            canon[w++] = '/';
            __builtin_memcpy(canon + w, c, len);
            w += len;
        }
    }
    if (!w) canon[w++] = '/';
    canon[w] = 0;
    return w;
}

#endif
