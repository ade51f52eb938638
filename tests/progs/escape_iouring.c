/* Escape attempt: io_uring performs opens, reads and writes without system
 * calls, out of the tracer's sight.  A view whose modules virtualize paths or
 * fds must refuse io_uring_setup, io_uring_enter and io_uring_register with
 * ENOSYS.  Prints:
 *   io_uring_setup RET ERRNO       (RET 1 for "a ring fd")
 *   io_uring_enter RET ERRNO       (fd -1: EBADF when not refused)
 *   io_uring_register RET ERRNO
 *   release R
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void)
{
    unsigned char params[120]; /* struct io_uring_params */
    memset(params, 0, sizeof params);
    errno = 0;
    long fd = syscall(425, 4, params);
    printf("io_uring_setup %ld %d\n", fd >= 0 ? 1 : fd, fd < 0 ? errno : 0);
    if (fd >= 0) close(fd);
    errno = 0;
    long r = syscall(426, -1, 0, 0, 0, NULL, 0);
    printf("io_uring_enter %ld %d\n", r, r < 0 ? errno : 0);
    errno = 0;
    r = syscall(427, -1, 0, NULL, 0);
    printf("io_uring_register %ld %d\n", r, r < 0 ? errno : 0);
    struct utsname u;
    uname(&u);
    printf("release %s\n", u.release);
    return 0;
}
