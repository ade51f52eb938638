/* Every stat variant on the same files, by raw system calls (no libc
 * wrapper in the way: an LD_PRELOAD fake root cannot see these).
 * Built statically by tests/test_fakeroot.py.
 *
 *   statvariants FILE...   for each file and each variant, one line
 *                          "FILE VARIANT uid=U gid=G mode=M rdev=MAJ,MIN";
 *                          a fake root must print the same values for all.
 *   statvariants --edge    edge cases run in the current directory (which
 *                          holds f, d/g, l -> f, dl -> missing): errno or the
 *                          fields that do not depend on who runs the program
 *                          (no uid/gid), for a native/view comparison.
 *   statvariants --ids     the identity calls, set*id as root, and what a
 *                          child forked before and after a change inherits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

static long sc(long nr, long a, long b, long c, long d, long e) {
    long r = syscall(nr, a, b, c, d, e);
    return r < 0 ? -errno : r;
}

static void line(const char *file, const char *variant, long r, unsigned uid, unsigned gid,
                 unsigned mode, unsigned maj, unsigned min) {
    if (r < 0)
        printf("%s %s error=%s\n", file, variant, strerrorname_np(-r));
    else
        printf("%s %s uid=%u gid=%u mode=%o rdev=%u,%u\n", file, variant, uid, gid, mode, maj, min);
}

static void from_stat(const char *file, const char *variant, long r, struct stat *st) {
    line(file, variant, r, st->st_uid, st->st_gid, st->st_mode, major(st->st_rdev), minor(st->st_rdev));
}

static void from_statx(const char *file, const char *variant, long r, struct statx *sx) {
    line(file, variant, r, sx->stx_uid, sx->stx_gid, sx->stx_mode, sx->stx_rdev_major,
         sx->stx_rdev_minor);
}

static void variants(const char *file) {
    struct stat st;
    struct statx sx;
    char dir[4096], base[4096];
    const char *slash = strrchr(file, '/');
    if (slash) {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - file) ? (int)(slash - file) : 1, file);
        snprintf(base, sizeof base, "%s", slash + 1);
    } else {
        strcpy(dir, ".");
        snprintf(base, sizeof base, "%s", file);
    }
    int fd = open(file, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    int rfd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    int dfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);

    memset(&st, 0, sizeof st);
    from_stat(file, "stat", sc(SYS_stat, (long)file, (long)&st, 0, 0, 0), &st);
    memset(&st, 0, sizeof st);
    from_stat(file, "lstat", sc(SYS_lstat, (long)file, (long)&st, 0, 0, 0), &st);
    memset(&st, 0, sizeof st);
    from_stat(file, "fstat", sc(SYS_fstat, rfd, (long)&st, 0, 0, 0), &st);
    memset(&st, 0, sizeof st);
    from_stat(file, "fstat-opath", sc(SYS_fstat, fd, (long)&st, 0, 0, 0), &st);
    memset(&st, 0, sizeof st);
    from_stat(file, "fstatat", sc(SYS_newfstatat, AT_FDCWD, (long)file, (long)&st, 0, 0), &st);
    memset(&st, 0, sizeof st);
    from_stat(file, "fstatat-dirfd-nofollow",
              sc(SYS_newfstatat, dfd, (long)base, (long)&st, AT_SYMLINK_NOFOLLOW, 0), &st);
    memset(&st, 0, sizeof st);
    from_stat(file, "fstatat-empty-path", sc(SYS_newfstatat, fd, (long)"", (long)&st, AT_EMPTY_PATH, 0), &st);
    memset(&st, 0, sizeof st);
    from_stat(file, "fstatat-null-path", sc(SYS_newfstatat, rfd, 0, (long)&st, AT_EMPTY_PATH, 0), &st);
    memset(&st, 0, sizeof st);
    from_stat(file, "libc-stat", stat(file, &st) < 0 ? -errno : 0, &st);
    memset(&st, 0, sizeof st);
    from_stat(file, "libc-fstat", fstat(rfd, &st) < 0 ? -errno : 0, &st);
    memset(&sx, 0, sizeof sx);
    from_statx(file, "statx", sc(SYS_statx, AT_FDCWD, (long)file, 0, STATX_BASIC_STATS, (long)&sx), &sx);
    memset(&sx, 0, sizeof sx);
    from_statx(file, "statx-nofollow-all",
               sc(SYS_statx, AT_FDCWD, (long)file, AT_SYMLINK_NOFOLLOW, STATX_ALL, (long)&sx), &sx);
    memset(&sx, 0, sizeof sx);
    from_statx(file, "statx-empty-path", sc(SYS_statx, fd, (long)"", AT_EMPTY_PATH, STATX_BASIC_STATS, (long)&sx), &sx);
    memset(&sx, 0, sizeof sx);
    from_statx(file, "statx-dirfd", sc(SYS_statx, dfd, (long)base, 0, STATX_UID | STATX_GID | STATX_MODE, (long)&sx), &sx);
    close(fd);
    close(rfd);
    close(dfd);
}

/* ------------------------------------------------------------------ */

static void show_stat(const char *name, long r, struct stat *st, int stable) {
    if (r < 0) {
        printf("%s: %s\n", name, strerrorname_np(-r));
        return;
    }
    if (!stable) {  /* objects that differ from run to run: type and mode only */
        printf("%s: ok mode=%o\n", name, st->st_mode);
        return;
    }
    printf("%s: ok dev=%lx ino=%lu nlink=%lu mode=%o rdev=%lx size=%ld blksize=%ld blocks=%ld "
           "mtime=%ld.%09ld ctime=%ld.%09ld\n", name, (unsigned long)st->st_dev,
           (unsigned long)st->st_ino, (unsigned long)st->st_nlink, st->st_mode,
           (unsigned long)st->st_rdev, (long)st->st_size, (long)st->st_blksize, (long)st->st_blocks,
           (long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
}

static void show_statx(const char *name, long r, struct statx *s) {
    if (r < 0) {
        printf("%s: %s\n", name, strerrorname_np(-r));
        return;
    }
    printf("%s: ok mask=%x blksize=%u attr=%llx nlink=%u mode=%o ino=%llu size=%llu blocks=%llu "
           "amask=%llx btime=%lld.%09u ctime=%lld.%09u mtime=%lld.%09u rdev=%u,%u dev=%u,%u\n",
           name, s->stx_mask, s->stx_blksize, (unsigned long long)s->stx_attributes, s->stx_nlink,
           s->stx_mode, (unsigned long long)s->stx_ino, (unsigned long long)s->stx_size,
           (unsigned long long)s->stx_blocks, (unsigned long long)s->stx_attributes_mask,
           (long long)s->stx_btime.tv_sec, s->stx_btime.tv_nsec, (long long)s->stx_ctime.tv_sec,
           s->stx_ctime.tv_nsec, (long long)s->stx_mtime.tv_sec, s->stx_mtime.tv_nsec,
           s->stx_rdev_major, s->stx_rdev_minor, s->stx_dev_major, s->stx_dev_minor);
}

#define ST(name, stable, nr, a, b, c, d) do { struct stat st; memset(&st, 0x55, sizeof st); \
        show_stat(name, sc(nr, (long)(a), (long)(b), (long)(c), (long)(d), 0), &st, stable); } while (0)
#define SX(name, a, b, c, d) do { struct statx sx; memset(&sx, 0, sizeof sx); \
        show_statx(name, sc(SYS_statx, (long)(a), (long)(b), (long)(c), (long)(d), (long)&sx), &sx); } while (0)
#define ERR(name, expr) printf("%s: %s\n", name, (r = (expr)) < 0 ? strerrorname_np(-r) : "ok")

static int edge(void) {
    long r;
    int fd = open("f", O_RDONLY | O_CLOEXEC);
    int pfd = open("l", O_PATH | O_NOFOLLOW | O_CLOEXEC);
    int dfd = open("d", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    int pipefd[2];
    if (fd < 0 || pfd < 0 || dfd < 0 || pipe(pipefd) < 0) {
        perror("edge setup");
        return 1;
    }
    char longpath[5000];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = 0;
#define BUF (&st)  /* the stat buffer of the ST macro */

    ST("stat f", 1, SYS_stat, "f", BUF, 0, 0);
    ST("stat missing", 1, SYS_stat, "missing", BUF, 0, 0);
    ST("stat f/", 1, SYS_stat, "f/", BUF, 0, 0);
    ST("stat f/x", 1, SYS_stat, "f/x", BUF, 0, 0);
    ST("stat d/", 1, SYS_stat, "d/", BUF, 0, 0);
    ST("stat d/../f", 1, SYS_stat, "d/../f", BUF, 0, 0);
    ST("stat l", 1, SYS_stat, "l", BUF, 0, 0);
    ST("lstat l", 1, SYS_lstat, "l", BUF, 0, 0);
    ST("lstat l/", 1, SYS_lstat, "l/", BUF, 0, 0);
    ST("stat dl", 1, SYS_stat, "dl", BUF, 0, 0);
    ST("lstat dl", 1, SYS_lstat, "dl", BUF, 0, 0);
    ST("stat empty", 1, SYS_stat, "", BUF, 0, 0);
    ST("stat /", 1, SYS_stat, "/", BUF, 0, 0);
    ST("stat .", 1, SYS_stat, ".", BUF, 0, 0);
    ST("stat ..", 1, SYS_stat, "..", BUF, 0, 0);
    ST("stat bad path ptr", 1, SYS_stat, 1, BUF, 0, 0);
    ST("stat null path", 1, SYS_stat, 0, BUF, 0, 0);
    ST("stat bad buf", 1, SYS_stat, "f", 8, 0, 0);
    ST("stat missing bad buf", 1, SYS_stat, "missing", 8, 0, 0);
    ST("stat long path", 1, SYS_stat, longpath, BUF, 0, 0);
    ST("stat /proc/self/exe", 1, SYS_stat, "/proc/self/exe", BUF, 0, 0);
    ST("lstat /proc/self/exe", 0, SYS_lstat, "/proc/self/exe", BUF, 0, 0);
    ST("stat /proc/self/fd/3", 1, SYS_stat, "/proc/self/fd/3", BUF, 0, 0);
    ST("stat /dev/fd/3", 1, SYS_stat, "/dev/fd/3", BUF, 0, 0);
    ST("stat /dev/null", 1, SYS_stat, "/dev/null", BUF, 0, 0);
    ST("stat /etc/mtab", 0, SYS_stat, "/etc/mtab", BUF, 0, 0);
    ST("fstat f", 1, SYS_fstat, fd, BUF, 0, 0);
    ST("fstat opath l", 1, SYS_fstat, pfd, BUF, 0, 0);
    ST("fstat pipe", 0, SYS_fstat, pipefd[0], BUF, 0, 0);
    ST("fstat -1", 1, SYS_fstat, -1, BUF, 0, 0);
    ST("fstat 999", 1, SYS_fstat, 999, BUF, 0, 0);
    ST("fstat bad buf", 1, SYS_fstat, fd, 8, 0, 0);
    ST("fstatat cwd f", 1, SYS_newfstatat, AT_FDCWD, "f", BUF, 0);
    ST("fstatat dfd g", 1, SYS_newfstatat, dfd, "g", BUF, 0);
    ST("fstatat dfd ../l nofollow", 1, SYS_newfstatat, dfd, "../l", BUF, AT_SYMLINK_NOFOLLOW);
    ST("fstatat dfd /", 1, SYS_newfstatat, dfd, "/", BUF, 0);
    ST("fstatat badfd g", 1, SYS_newfstatat, 999, "g", BUF, 0);
    ST("fstatat badfd /", 1, SYS_newfstatat, 999, "/", BUF, 0);
    ST("fstatat -5 g", 1, SYS_newfstatat, -5, "g", BUF, 0);
    ST("fstatat filefd x", 1, SYS_newfstatat, fd, "x", BUF, 0);
    ST("fstatat cwd empty", 1, SYS_newfstatat, AT_FDCWD, "", BUF, 0);
    ST("fstatat cwd empty EMPTY", 1, SYS_newfstatat, AT_FDCWD, "", BUF, AT_EMPTY_PATH);
    ST("fstatat cwd null EMPTY", 1, SYS_newfstatat, AT_FDCWD, 0, BUF, AT_EMPTY_PATH);
    ST("fstatat cwd null", 1, SYS_newfstatat, AT_FDCWD, 0, BUF, 0);
    ST("fstatat fd empty EMPTY", 1, SYS_newfstatat, fd, "", BUF, AT_EMPTY_PATH);
    ST("fstatat fd null EMPTY", 1, SYS_newfstatat, fd, 0, BUF, AT_EMPTY_PATH);
    ST("fstatat opath-l empty EMPTY", 1, SYS_newfstatat, pfd, "", BUF, AT_EMPTY_PATH);
    ST("fstatat opath-l empty EMPTY|NOFOLLOW", 1, SYS_newfstatat, pfd, "", BUF,
       AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
    ST("fstatat pipe empty EMPTY", 0, SYS_newfstatat, pipefd[1], "", BUF, AT_EMPTY_PATH);
    ST("fstatat badfd empty EMPTY", 1, SYS_newfstatat, 999, "", BUF, AT_EMPTY_PATH);
    ST("fstatat bad flags", 1, SYS_newfstatat, AT_FDCWD, "f", BUF, 0x8000);
    ST("fstatat fd empty bad flags", 1, SYS_newfstatat, fd, "", BUF, AT_EMPTY_PATH | 0x8000);
    ST("fstatat fd empty both sync", 1, SYS_newfstatat, fd, "", BUF,
       AT_EMPTY_PATH | AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC);
    ST("fstatat sync flags", 1, SYS_newfstatat, AT_FDCWD, "f", BUF, AT_STATX_DONT_SYNC);
    ST("fstatat l nofollow", 1, SYS_newfstatat, AT_FDCWD, "l", BUF, AT_SYMLINK_NOFOLLOW);
    ST("fstatat bad buf", 1, SYS_newfstatat, AT_FDCWD, "f", 8, 0);
    SX("statx f basic", AT_FDCWD, "f", 0, STATX_BASIC_STATS);
    SX("statx f all", AT_FDCWD, "f", 0, STATX_ALL);
    SX("statx f mask 0", AT_FDCWD, "f", 0, 0);
    SX("statx f size only", AT_FDCWD, "f", 0, STATX_SIZE);
    SX("statx f btime", AT_FDCWD, "f", 0, STATX_BTIME);
    SX("statx f reserved mask", AT_FDCWD, "f", 0, 0x80000000u);
    SX("statx f both sync", AT_FDCWD, "f", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS);
    SX("statx f bad flags", AT_FDCWD, "f", 0x8000, STATX_BASIC_STATS);
    SX("statx l", AT_FDCWD, "l", 0, STATX_BASIC_STATS);
    SX("statx l nofollow", AT_FDCWD, "l", AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME);
    SX("statx dl", AT_FDCWD, "dl", 0, STATX_BASIC_STATS);
    SX("statx cwd empty", AT_FDCWD, "", 0, STATX_BASIC_STATS);
    SX("statx cwd empty EMPTY", AT_FDCWD, "", AT_EMPTY_PATH, STATX_BASIC_STATS);
    SX("statx fd empty EMPTY", fd, "", AT_EMPTY_PATH, STATX_ALL);
    SX("statx fd null EMPTY", fd, 0, AT_EMPTY_PATH, STATX_ALL);
    SX("statx fd empty bad flags", fd, "", AT_EMPTY_PATH | 0x8000, STATX_ALL);
    SX("statx fd empty reserved mask", fd, "", AT_EMPTY_PATH, 0x80000000u);
    SX("statx opath-l EMPTY|NOFOLLOW", pfd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_ALL);
    SX("statx dfd g", dfd, "g", 0, STATX_ALL);
    SX("statx badfd g", 999, "g", 0, STATX_ALL);
    SX("statx bad path ptr", AT_FDCWD, 1, 0, STATX_ALL);
    {
        long rr = sc(SYS_statx, AT_FDCWD, (long)"f", 0, STATX_ALL, 8);
        printf("statx bad buf: %s\n", rr < 0 ? strerrorname_np(-rr) : "ok");
    }
    /* the owner-changing calls, on cases that fail for everybody */
    ERR("chown missing", sc(SYS_chown, (long)"missing", 0, 0, 0, 0));
    ERR("chown f/x", sc(SYS_chown, (long)"f/x", 0, 0, 0, 0));
    ERR("chown empty", sc(SYS_chown, (long)"", 0, 0, 0, 0));
    ERR("chown bad ptr", sc(SYS_chown, 1, 0, 0, 0, 0));
    ERR("lchown missing", sc(SYS_lchown, (long)"missing", 0, 0, 0, 0));
    ERR("chown dl", sc(SYS_chown, (long)"dl", 0, 0, 0, 0));
    ERR("fchown -1", sc(SYS_fchown, -1, 0, 0, 0, 0));
    ERR("fchown 999", sc(SYS_fchown, 999, 0, 0, 0, 0));
    ERR("fchown opath", sc(SYS_fchown, pfd, 0, 0, 0, 0));
    ERR("fchownat bad flags", sc(SYS_fchownat, AT_FDCWD, (long)"f", 0, 0, 0x8000));
    ERR("fchownat badfd", sc(SYS_fchownat, 999, (long)"g", 0, 0, 0));
    ERR("fchownat empty", sc(SYS_fchownat, dfd, (long)"", 0, 0, 0));
    ERR("fchownat filefd x", sc(SYS_fchownat, fd, (long)"x", 0, 0, 0));
    ERR("chmod missing", sc(SYS_chmod, (long)"missing", 0644, 0, 0, 0));
    ERR("chmod f/", sc(SYS_chmod, (long)"f/", 0644, 0, 0, 0));
    ERR("chmod bad ptr", sc(SYS_chmod, 1, 0644, 0, 0, 0));
    ERR("fchmod -1", sc(SYS_fchmod, -1, 0644, 0, 0, 0));
    ERR("fchmod opath", sc(SYS_fchmod, pfd, 0644, 0, 0, 0));
    ERR("fchmodat badfd", sc(SYS_fchmodat, 999, (long)"g", 0644, 0, 0));
    ERR("fchmodat2 bad flags", sc(452, AT_FDCWD, (long)"f", 0644, 0x8000, 0));
    ERR("fchmodat2 l nofollow", sc(452, AT_FDCWD, (long)"l", 0777, AT_SYMLINK_NOFOLLOW, 0));
    ERR("fchmodat2 empty", sc(452, AT_FDCWD, (long)"", 0644, 0, 0));
    ERR("mknod missing/dev", sc(SYS_mknod, (long)"missing/dev", S_IFCHR | 0644, makedev(1, 3), 0, 0));
    ERR("mknod f exists", sc(SYS_mknod, (long)"f", S_IFCHR | 0644, makedev(1, 3), 0, 0));
    ERR("mknodat badfd", sc(SYS_mknodat, 999, (long)"dev", S_IFBLK | 0644, makedev(8, 0), 0));
    ERR("mknod bad type", sc(SYS_mknod, (long)"newnode", 0170000 | 0644, 0, 0, 0));
    if (chdir("d") < 0) return 1;
    ST("after chdir stat ../f", 1, SYS_stat, "../f", BUF, 0, 0);
    ST("after chdir fstatat cwd g", 1, SYS_newfstatat, AT_FDCWD, "g", BUF, 0);
    return 0;
}

/* ------------------------------------------------------------------ */

static void ids(const char *who) {
    uid_t r, e, s;
    gid_t rg, eg, sg;
    gid_t groups[64];
    syscall(SYS_getresuid, &r, &e, &s);
    syscall(SYS_getresgid, &rg, &eg, &sg);
    long n = syscall(SYS_getgroups, 64, groups);
    printf("%s: uid=%ld euid=%ld gid=%ld egid=%ld res=%u,%u,%u resg=%u,%u,%u groups=", who,
           syscall(SYS_getuid), syscall(SYS_geteuid), syscall(SYS_getgid), syscall(SYS_getegid),
           r, e, s, rg, eg, sg);
    for (long i = 0; i < n; i++) printf("%s%u", i ? "," : "", groups[i]);
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    long c = syscall(SYS_capget, &h, d);
    printf(" capget=%ld eff=%x%08x perm=%x%08x\n", c, d[1].effective, d[0].effective,
           d[1].permitted, d[0].permitted);
}

static int id_tests(void) {
    ids("start");
    int go[2];
    if (pipe(go) < 0) return 1;
    pid_t early = fork();
    if (early == 0) {  /* forked before the change: keeps root */
        char b;
        close(go[1]);
        if (read(go[0], &b, 1) != 1) _exit(1);
        ids("child forked before");
        _exit(0);
    }
    close(go[0]);
    gid_t g[3] = {30, 10, 20};
    printf("setgroups: %ld\n", sc(SYS_setgroups, 3, (long)g, 0, 0, 0));
    printf("getgroups(0): %ld\n", sc(SYS_getgroups, 0, 0, 0, 0, 0));
    printf("getgroups(1): %ld\n", sc(SYS_getgroups, 1, (long)g, 0, 0, 0));
    printf("setresgid: %ld\n", sc(SYS_setresgid, 100, 200, 300, 0, 0));
    printf("setresuid: %ld\n", sc(SYS_setresuid, 1000, 2000, 3000, 0, 0));
    ids("after setres");
    if (write(go[1], "x", 1) != 1) return 1;
    close(go[1]);
    waitpid(early, NULL, 0);
    pid_t late = fork();
    if (late == 0) {
        ids("child forked after");
        _exit(0);
    }
    waitpid(late, NULL, 0);
    printf("setuid(0) unprivileged: %ld\n", sc(SYS_setuid, 0, 0, 0, 0, 0));
    printf("seteuid(1000) via setreuid: %ld\n", sc(SYS_setreuid, -1, 1000, 0, 0, 0));
    printf("setfsuid(3000) returns %ld\n", sc(SYS_setfsuid, 3000, 0, 0, 0, 0));
    printf("setfsuid(-1) returns %ld\n", sc(SYS_setfsuid, -1, 0, 0, 0, 0));
    printf("setgroups unprivileged: %ld\n", sc(SYS_setgroups, 0, 0, 0, 0, 0));
    ids("end");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "--edge") == 0) return edge();
    if (argc > 1 && strcmp(argv[1], "--ids") == 0) return id_tests();
    for (int i = 1; i < argc; i++) variants(argv[i]);
    return 0;
}
