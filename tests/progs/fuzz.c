/* fuzz SEED COUNT: COUNT random system calls with garbage pointers, lengths,
 * flags and fds, drawn from a fixed set of SAFE calls whose arguments, however
 * wrong, can neither kill nor block this process nor change anything outside
 * it (no exit, kill, signals, mmap/munmap/brk/mprotect, fork, exec, sleeps,
 * no file writes except to /dev/null).  Prints one line per call:
 *     INDEX NAME RESULT ERRNO ARGS
 * where RESULT is the raw return value (normalized to 0 for calls whose
 * success value differs from run to run: pids, time, times) and ARGS names
 * the kind of each argument (never an address, which ASLR changes).
 *
 * sethostname/setdomainname are called ONLY with unreadable pointers and a
 * length whose low 32 bits are 1..64 or invalid, so that natively (as root)
 * they can only fail: a readable pointer would rename the host.
 *
 * Lines of the virtual syscall (0x7500) start with "V" (natively ENOSYS, in a
 * view some other error): the test compares everything else between a native
 * run and runs in views.  The last line, "R release R", is a plain uname at
 * the end (is the view still served?). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#define PAGE 4096
#define BUF_PAGES 16
#define NR_VSYS 0x7500
#define DEVNULL 100

static uint64_t rng;
static uint64_t next(void)
{ /* splitmix64 */
    uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static uint64_t below(uint64_t n) { return next() % n; }

static char *buf;   /* BUF_PAGES read-write pages ... */
static char *guard; /* ... followed by one PROT_NONE page */
static char *ro;    /* read-only pages holding strings */
static const char *strings[] = {
    "", "/", ".", "..", "/nonexistent/x", "/proc/self/exe", "/proc/self/cwd", "/etc/hostname",
    "/dev/null", "/proc/self/root", "/tmp", "relative/nonexistent", "/etc/passwd",
    /* requests for the virtual syscall: all malformed or unknown */
    "{\"op\":\"nosuch\"}", "[1,2]", "\"str\"", "{\"op\":5}", "{}", "null", "{\"op\":\"insmod\"}",
    "{\"op\":", "\xff\xfe",
};
#define NSTR (sizeof strings / sizeof *strings)
static char *str_at[NSTR + 1];
static char *longpath; /* PATH_MAX and more */

static char desc[256];
static int dlen;
static void tag(const char *t)
{
    dlen += snprintf(desc + dlen, sizeof desc - dlen, "%s%s", dlen ? "," : "", t);
}

/* any pointer: bad ones of many kinds, or into our own buffers */
static uint64_t ptr(void)
{
    switch (below(12)) {
    case 0: tag("null"); return 0;
    case 1: tag("one"); return 1;
    case 2: tag("low"); return below(0xF000);
    case 3: tag("kernel"); return 0xffffffff81000000ULL + below(1 << 20);
    case 4: tag("noncanon"); return 0x0000800000000000ULL + below(1ULL << 46);
    case 5: tag("minus1"); return (uint64_t)-1;
    case 6: tag("buf"); return (uint64_t)(buf + below(BUF_PAGES * PAGE - 1024));
    case 7: tag("bufend"); return (uint64_t)(guard - 1 - below(200));
    case 8: tag("ro"); return (uint64_t)(ro + below(PAGE));
    case 9: tag("none"); return (uint64_t)(guard + below(4000));
    case 10: tag("high"); return next() | (1ULL << 63);
    default: tag("str"); return (uint64_t)str_at[below(NSTR)];
    }
}

/* a pointer nothing can be read from (not even one byte) */
static uint64_t bad_ptr(void)
{
    switch (below(7)) {
    case 0: tag("null"); return 0;
    case 1: tag("one"); return 1;
    case 2: tag("low"); return below(0xF000);
    case 3: tag("kernel"); return 0xffffffff81000000ULL + below(1 << 20);
    case 4: tag("noncanon"); return 0x0000800000000000ULL + below(1ULL << 46);
    case 5: tag("none"); return (uint64_t)(guard + below(4000));
    default: tag("high"); return next() | (1ULL << 63);
    }
}

/* a path: one of the strings, the long one, or a bad pointer (never the
 * read-write buffer, whose contents differ between runs) */
static uint64_t path(void)
{
    switch (below(6)) {
    case 0: return bad_ptr();
    case 1: tag("long"); return (uint64_t)longpath;
    default: {
        int i = below(13);
        char t[16];
        snprintf(t, sizeof t, "s%d", i);
        tag(t);
        return (uint64_t)str_at[i];
    }
    }
}

static uint64_t len(void)
{
    static const uint64_t fixed[] = {0, 1, 2, 7, 8, 15, 16, 64, 65, 100, 390, 4096, 4097,
                                     65536, 1ULL << 20, (1ULL << 20) + 1, 1ULL << 31,
                                     1ULL << 32, (uint64_t)-1, 0x7fffffffffffffffULL};
    char t[32];
    uint64_t v = below(4) ? fixed[below(sizeof fixed / sizeof *fixed)] : next();
    snprintf(t, sizeof t, "l%llx", (unsigned long long)v);
    tag(t);
    return v;
}

/* an fd: invalid ones, /dev/null, and with `small` the low numbers that
 * should be closed in both runs (an fd leaked into the view shows here) */
static uint64_t fd(int small)
{
    static const int64_t fixed[] = {-1, DEVNULL, 500, 0x7fffffff, -100, 1 << 20};
    int64_t v;
    if (small && below(3) == 0)
        v = 3 + below(10);
    else
        v = below(5) ? fixed[below(sizeof fixed / sizeof *fixed)] : (int64_t)next();
    char t[32];
    snprintf(t, sizeof t, "f%lld", (long long)v);
    tag(t);
    return (uint64_t)v;
}

static uint64_t dirfd(void)
{
    return below(2) ? (tag("cwd"), (uint64_t)(int64_t)-100) : fd(1);
}

static uint64_t num(const int64_t *vals, int n)
{
    int64_t v = below(5) ? vals[below(n)] : (int64_t)next();
    char t[32];
    snprintf(t, sizeof t, "n%llx", (unsigned long long)v);
    tag(t);
    return (uint64_t)v;
}
#define NUM(...) ({ static const int64_t v_[] = {__VA_ARGS__}; num(v_, sizeof v_ / sizeof *v_); })

static uint64_t hostlen(void)
{ /* low 32 bits 1..64 (valid), or invalid; never 0 */
    uint64_t v;
    switch (below(4)) {
    case 0: v = 1 + below(64); break;
    case 1: v = (1ULL << 32) | (1 + below(64)); break; /* int 1..64 for the kernel */
    case 2: v = 65 + below(1000); break;
    default: v = (uint64_t)-1 - below(3); break;
    }
    char t[32];
    snprintf(t, sizeof t, "l%llx", (unsigned long long)v);
    tag(t);
    return v;
}

enum { NORMAL, SIGN_ONLY };

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fuzz SEED COUNT\n");
        return 2;
    }
    rng = strtoull(argv[1], NULL, 0);
    long count = strtol(argv[2], NULL, 0);

    char *area = mmap(NULL, (BUF_PAGES + 1) * PAGE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ro = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED || ro == MAP_FAILED) return 2;
    buf = area;
    guard = area + BUF_PAGES * PAGE;
    if (mprotect(guard, PAGE, PROT_NONE)) return 2;
    char *p = ro;
    for (unsigned i = 0; i < NSTR; i++) {
        str_at[i] = p;
        strcpy(p, strings[i]);
        p += strlen(strings[i]) + 1;
    }
    longpath = p;
    memset(longpath, 'a', 2 * PAGE + 100);
    longpath[0] = '/';
    longpath[2 * PAGE + 100] = 0;
    if (mprotect(ro, 4 * PAGE, PROT_READ)) return 2;
    int nullfd = open("/dev/null", O_RDWR);
    if (nullfd < 0 || dup2(nullfd, DEVNULL) != DEVNULL) return 2;
    close(nullfd);

    for (long i = 0; i < count; i++) {
        uint64_t a[6] = {0};
        long nr;
        const char *name;
        int mode = NORMAL, vsys = 0;
        dlen = 0;
        desc[0] = 0;
        switch (below(34)) {
        case 0: nr = SYS_uname; name = "uname"; a[0] = ptr(); break;
        case 1: nr = SYS_sethostname; name = "sethostname"; a[0] = bad_ptr(); a[1] = hostlen(); break;
        case 2: nr = SYS_setdomainname; name = "setdomainname"; a[0] = bad_ptr(); a[1] = hostlen(); break;
        case 3: case 4:
            nr = SYS_clock_gettime; name = "clock_gettime";
            a[0] = NUM(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, -1, -2, -6, 1LL << 32, (1LL << 32) | 1, 100);
            a[1] = ptr();
            break;
        case 5: nr = SYS_clock_getres; name = "clock_getres"; a[0] = NUM(0, 1, 5, 11, -1, 100); a[1] = ptr(); break;
        case 6: nr = SYS_gettimeofday; name = "gettimeofday"; a[0] = ptr(); a[1] = below(2) ? ptr() : 0; break;
        case 7: nr = SYS_time; name = "time"; a[0] = below(4) ? ptr() : 0; mode = SIGN_ONLY; break;
        case 8: nr = SYS_getcwd; name = "getcwd"; a[0] = ptr(); a[1] = len(); break;
        case 9: nr = SYS_fstat; name = "fstat"; a[0] = fd(1); a[1] = ptr(); break;
        case 10: case 11:
            nr = SYS_newfstatat; name = "newfstatat";
            a[0] = dirfd(); a[1] = path(); a[2] = ptr();
            a[3] = NUM(0, 0x100, 0x1000, 0x800, 0x1100, 0x400, -1);
            break;
        case 12:
            nr = SYS_statx; name = "statx";
            a[0] = dirfd(); a[1] = path(); a[2] = NUM(0, 0x100, 0x1000, 0x2000, 0x4000, 0x6000, -1);
            a[3] = NUM(0xfff, 0, 0x7ff, -1); a[4] = ptr();
            break;
        case 13: nr = SYS_read; name = "read"; a[0] = fd(0); a[1] = ptr(); a[2] = len(); break;
        case 14: nr = SYS_write; name = "write"; a[0] = fd(0); a[1] = ptr(); a[2] = len(); break;
        case 15: nr = SYS_lseek; name = "lseek"; a[0] = fd(1); a[1] = len(); a[2] = NUM(0, 1, 2, 3, 4, 5, -1); break;
        case 16: nr = SYS_fcntl; name = "fcntl"; a[0] = fd(1); a[1] = below(2) ? 1 : 3; break;
        case 17:
            nr = SYS_faccessat; name = "faccessat";
            a[0] = dirfd(); a[1] = path(); a[2] = NUM(0, 1, 2, 4, 7, 8, -1);
            break;
        case 18:
            nr = 439; name = "faccessat2";
            a[0] = dirfd(); a[1] = path(); a[2] = NUM(0, 1, 4, 7, 8);
            a[3] = NUM(0, 0x100, 0x200, 0x1000, 0x1300, -1);
            break;
        case 19: nr = SYS_readlinkat; name = "readlinkat"; a[0] = dirfd(); a[1] = path(); a[2] = ptr(); a[3] = len(); break;
        case 20: nr = SYS_getgroups; name = "getgroups"; a[0] = NUM(0, 1, 64, 65536, -1); a[1] = ptr(); break;
        case 21: nr = SYS_sysinfo; name = "sysinfo"; a[0] = ptr(); break;
        case 22: nr = SYS_getrusage; name = "getrusage"; a[0] = NUM(0, -1, -2, 1, 7); a[1] = ptr(); break;
        case 23: nr = SYS_times; name = "times"; a[0] = below(4) ? ptr() : 0; mode = SIGN_ONLY; break;
        case 24: nr = SYS_getrlimit; name = "getrlimit"; a[0] = NUM(0, 3, 7, 15, 16, 100, -1); a[1] = ptr(); break;
        case 25: nr = SYS_sched_getaffinity; name = "sched_getaffinity"; a[0] = 0; a[1] = len(); a[2] = ptr(); break;
        case 26: {
            static const long ids[] = {SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid, SYS_sched_yield};
            static const char *names[] = {"getuid", "geteuid", "getgid", "getegid", "sched_yield"};
            int k = below(5);
            nr = ids[k]; name = names[k];
            break;
        }
        case 27: {
            static const long ids[] = {SYS_getpid, SYS_getppid, SYS_gettid};
            static const char *names[] = {"getpid", "getppid", "gettid"};
            int k = below(3);
            nr = ids[k]; name = names[k]; mode = SIGN_ONLY;
            break;
        }
        case 28: nr = SYS_prctl; name = "prctl"; a[0] = below(2) ? 3 : 16; a[1] = ptr(); break;
        case 29: nr = SYS_getpriority; name = "getpriority"; a[0] = NUM(0, 1, 2, 3, -1); a[1] = NUM(0, 1, -1); break;
        case 30: {
            static const long ids[] = {337, 400, 423, 600, 1000, 0x7501, 0x7fff, 0x3fffffff};
            nr = ids[below(8)]; name = "unknown";
            for (int k = 0; k < 6; k++) a[k] = next();
            char t[32];
            snprintf(t, sizeof t, "nr%lx", nr);
            tag(t);
            break;
        }
        default: /* 31..33: the virtual syscall */
            nr = NR_VSYS; name = "vsys"; vsys = 1;
            if (below(2)) {
                int k = 13 + below(NSTR - 13);
                char t[16];
                snprintf(t, sizeof t, "s%d", k);
                tag(t);
                a[0] = (uint64_t)str_at[k];
                a[1] = below(3) ? strlen(strings[k]) : len();
            } else {
                a[0] = ptr();
                a[1] = len();
            }
            a[2] = ptr();
            a[3] = len();
            break;
        }
        errno = 0;
        long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        int e = r < 0 ? errno : 0;
        if (mode == SIGN_ONLY && r >= 0) r = 0;
        printf("%s%ld %s %ld %d %s\n", vsys ? "V" : "", i, name, r, e, desc);
    }
    struct utsname u;
    if (uname(&u) < 0) {
        perror("uname");
        return 1;
    }
    printf("R release %s\n", u.release);
    return 0;
}
