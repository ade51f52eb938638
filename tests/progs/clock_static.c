/* Prints the wall clock read four ways, and the monotonic clocks, as a
 * statically linked program reads them (through the vDSO when it has one):
 *   realtime SEC coarse SEC tai SEC gettimeofday SEC time SEC monotonic SEC.NSEC boottime SEC.NSEC
 * Used by tests/test_misc.py: a view's time offset must move the first
 * five and leave the monotonic clocks alone. */
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

#ifndef CLOCK_TAI
#define CLOCK_TAI 11
#endif

int main(void)
{
    struct timespec rt, co, tai, mono, boot;
    struct timeval tv;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_BOOTTIME, &boot);
    if (clock_gettime(CLOCK_REALTIME, &rt) || clock_gettime(CLOCK_REALTIME_COARSE, &co) ||
        clock_gettime(CLOCK_TAI, &tai) || gettimeofday(&tv, NULL)) {
        perror("clock");
        return 1;
    }
    time_t t = time(NULL);
    printf("realtime %lld coarse %lld tai %lld gettimeofday %lld time %lld "
           "monotonic %lld.%09ld boottime %lld.%09ld\n",
           (long long)rt.tv_sec, (long long)co.tv_sec, (long long)tai.tv_sec,
           (long long)tv.tv_sec, (long long)t,
           (long long)mono.tv_sec, mono.tv_nsec, (long long)boot.tv_sec, boot.tv_nsec);
    return 0;
}
