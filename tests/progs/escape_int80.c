/* Escape attempt: i386 system calls (int $0x80) from a 64-bit process use
 * i386 numbers, which a filter written for x86_64 numbers would misread
 * (i386 122 = newuname, 20 = getpid).  In a view that virtualizes anything
 * they must fail with ENOSYS; natively they work.  Also tries the x32 ABI
 * number of uname (bit 30 set).  Prints:
 *   int80-uname RET RELEASE|-
 *   int80-getpid RET|-errno match 0|1
 *   x32-uname RET ERRNO
 *   release R        (x86_64 uname afterwards)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

static long int80(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("int $0x80"
                     : "=a"(ret)
                     : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(0L), "D"(0L)
                     : "memory", "r8", "r9", "r10", "r11");
    return ret;
}

int main(void)
{
    /* i386 pointers are 32 bits wide */
    char *buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (buf == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    long r = int80(122, (long)buf, 0, 0);
    printf("int80-uname %ld %s\n", r, r == 0 ? buf + 2 * 65 : "-");
    r = int80(20, 0, 0, 0);
    printf("int80-getpid %ld match %d\n", r < 0 ? r : 0, r == getpid());
    errno = 0;
    r = syscall(0x40000000L | SYS_uname, buf);
    printf("x32-uname %ld %d\n", r, r < 0 ? errno : 0);
    struct utsname u;
    if (uname(&u) < 0) {
        perror("uname");
        return 1;
    }
    printf("release %s\n", u.release);
    return 0;
}
