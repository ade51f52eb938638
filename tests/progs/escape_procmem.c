/* Escape attempt through /proc/PID/mem of the hypervisor (by default our
 * parent; a pid may be given): the file reads and writes another process's
 * memory like process_vm_readv/writev.  Only reads are attempted (a write
 * that got through would corrupt the hypervisor).  Prints:
 *   target PID
 *   mem-open RET ERRNO        open("/proc/PID/mem", O_RDONLY); RET 1 = an fd
 *   mem-read RET ERRNO        pread of 8 bytes at the bottom of its stack
 *   mem-open-rw RET ERRNO     open(O_RDWR) (closed at once, nothing written)
 *   release R */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int pid = argc > 1 ? atoi(argv[1]) : getppid();
    char path[64], line[512];
    unsigned long lo = 0, hi;
    printf("target %d\n", pid);
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2) break;
    if (f) fclose(f);
    snprintf(path, sizeof path, "/proc/%d/mem", pid);
    errno = 0;
    int fd = open(path, O_RDONLY);
    printf("mem-open %d %d\n", fd >= 0 ? 1 : fd, fd < 0 ? errno : 0);
    unsigned char data[8];
    errno = 0;
    long r = fd >= 0 ? pread(fd, data, sizeof data, (off_t)lo) : -1;
    printf("mem-read %ld %d\n", r, r < 0 ? errno : 0);
    if (fd >= 0) close(fd);
    errno = 0;
    fd = open(path, O_RDWR);
    printf("mem-open-rw %d %d\n", fd >= 0 ? 1 : fd, fd < 0 ? errno : 0);
    if (fd >= 0) close(fd);
    struct utsname u;
    uname(&u);
    printf("release %s\n", u.release);
    return 0;
}
