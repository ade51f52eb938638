/* umvshim: stat calls of a fake-root view answered inside the program.
 *
 * Preloaded (LD_PRELOAD) into the programs `umview -0` starts; see
 * native/umvshm.h for what it shares with the C core and why.  Each libc
 * stat entry point here makes the call itself, through the gadget the
 * view's seccomp filters let through, and replaces the owner as the C
 * core's stat_fast would.  Whatever it cannot answer it sends the usual
 * way, a plain syscall that the filters trap: files with records (the
 * Bloom filter says maybe), views where another module serves stat calls,
 * a process the core does not list.  Statically linked programs, raw
 * syscalls and libc's internal calls (fts, nftw) never come here and are
 * answered by the core as before.
 *
 * Errors are the kernel's own: the call is made before any of the
 * caller's memory is touched, so a bad pointer gives EFAULT, not SIGSEGV.
 * Everything here is async-signal-safe: no locks, no allocation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "umvshm.h"

_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "x86_64: one struct stat");

#define EXPORT __attribute__((visibility("default")))

static const struct umv_shm *shm;
typedef long (*gadget_fn)(long nr, long a, long b, long c, long d, long e);
static gadget_fn gadget;

/* mov rax,rdi; mov rdi,rsi; mov rsi,rdx; mov rdx,rcx; mov r10,r8;
 * mov r8,r9; syscall; ret: the call returns to UMV_GADGET_IP (+20) */
static const unsigned char gadget_code[] = {
    0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x48, 0x89, 0xd6, 0x48, 0x89, 0xca,
    0x4d, 0x89, 0xc2, 0x4d, 0x89, 0xc8, 0x0f, 0x05, 0xc3,
};
_Static_assert(UMV_GADGET_IP - UMV_GADGET_ADDR == 20, "the syscall ends at byte 20");

__attribute__((constructor)) static void umv_shim_init(void) {
    const char *path = getenv("UMVIEW_SHM");
    if (!path) return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    void *m = mmap(NULL, sizeof *shm, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return;
    if (((const struct umv_shm *)m)->magic != UMV_SHM_MAGIC) {
        munmap(m, sizeof *shm);
        return;
    }
    void *g = mmap((void *)UMV_GADGET_ADDR, 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (g != (void *)UMV_GADGET_ADDR) {
        /* taken: something of the program lives there; stay out */
        if (g != MAP_FAILED) munmap(g, 4096);
        munmap(m, sizeof *shm);
        return;
    }
    memcpy(g, gadget_code, sizeof gadget_code);
    if (mprotect(g, 4096, PROT_READ | PROT_EXEC) < 0) {
        munmap(g, 4096);
        munmap(m, sizeof *shm);
        return;
    }
    gadget = (gadget_fn)g;
    shm = m;
}

/* The view's seven numbers when this process may answer its own stat
 * calls; 0 otherwise. */
static int view_cfg(uint32_t cfg[7]) {
    if (!shm) return 0;
    long pid = getpid();
    if (pid <= 0 || pid >= UMV_SHM_PIDS) return 0;
    unsigned v = __atomic_load_n(&shm->view_of[pid], __ATOMIC_ACQUIRE);
    if (v == 0 || v > UMV_MAX_VIEWS) return 0;
    const struct umv_shm_view *sv = &shm->view[v - 1];
    for (int tries = 0; tries < 1000; tries++) {
        uint32_t seq = __atomic_load_n(&sv->seq, __ATOMIC_ACQUIRE);
        if (seq & 1) continue;
        uint32_t on = __atomic_load_n(&sv->on, __ATOMIC_RELAXED);
        for (int i = 0; i < 7; i++) cfg[i] = __atomic_load_n(&sv->cfg[i], __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&sv->seq, __ATOMIC_RELAXED) == seq) return on != 0;
    }
    return 0;
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

static int do_fstatat(int dirfd, const char *path, struct stat *st, int flags) {
    uint32_t cfg[7];
    if (view_cfg(cfg)) {
        long r = gadget(SYS_newfstatat, dirfd, (long)path, (long)st, flags, 0);
        if (r < 0) return ret(r);
        uint32_t uid = st->st_uid, gid = st->st_gid;
        int how = owner(cfg, st->st_dev, st->st_ino, &uid, &gid);
        if (how >= 0) {
            st->st_uid = uid;
            st->st_gid = gid;
            return 0;
        }
    }
    return (int)syscall(SYS_newfstatat, dirfd, path, st, flags);
}

static int do_fstat(int fd, struct stat *st) {
    if (fd < 0) {   /* as glibc: AT_FDCWD must not stat the cwd */
        errno = EBADF;
        return -1;
    }
    return do_fstatat(fd, "", st, AT_EMPTY_PATH);
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
    }
    return (int)syscall(SYS_statx, dirfd, path, flags, mask, sx);
}
