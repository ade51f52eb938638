/* Per-call cost of one system call.
 *
 *   microbench CALL N      CALL = getppid | uname | clock_gettime
 *
 * Calls CALL N times in a loop (after a short warm-up) and prints one line:
 *   CALL N NS_PER_CALL
 * Every call enters the kernel: getppid and clock_gettime go through
 * syscall(2), so the vDSO is never used; uname(2) has no vDSO entry.
 * The loop is timed with CLOCK_MONOTONIC (two reads, whatever serves them).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s getppid|uname|clock_gettime N\n", argv[0]);
        return 2;
    }
    const char *call = argv[1];
    long n = atol(argv[2]);
    int which;
    if (!strcmp(call, "getppid"))
        which = 0;
    else if (!strcmp(call, "uname"))
        which = 1;
    else if (!strcmp(call, "clock_gettime"))
        which = 2;
    else {
        fprintf(stderr, "unknown call %s\n", call);
        return 2;
    }
    if (n <= 0)
        return 2;

    struct utsname u;
    struct timespec ts;
    long warm = n / 20 < 100 ? 100 : n / 20;
    double t0 = 0;
    for (long i = -warm; i < n; i++) {
        if (i == 0)
            t0 = now_ns();
        long r;
        switch (which) {
        case 0:
            r = syscall(SYS_getppid);
            break;
        case 1:
            r = uname(&u);
            break;
        default:
            r = syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts);
            break;
        }
        if (r < 0) {
            perror(call);
            return 1;
        }
    }
    double t1 = now_ns();
    printf("%s %ld %.1f\n", call, n, (t1 - t0) / n);
    return 0;
}
