/* Calls that never fail with EINTR natively (stat, open of a regular
 * file, access, readlink), made in a loop while a fast timer interrupts
 * them with a handler installed without SA_RESTART.  Prints how many
 * signals came and how many calls failed, by errno.
 * usage: eintr FILE LINK COUNT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t signals;
static void on_alarm(int sig) { (void)sig; signals++; }

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;  /* no SA_RESTART: an interrupted slow call says EINTR */
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 300}, {0, 300}};
    setitimer(ITIMER_REAL, &it, NULL);
    int n = atoi(argv[3]), eintr = 0, other = 0;
    char buf[256];
    struct stat st;
    for (int i = 0; i < n; i++) {
        int rc[4];
        rc[0] = stat(argv[1], &st);
        int fd = open(argv[1], O_RDONLY);
        rc[1] = fd;
        if (fd >= 0) close(fd);
        rc[2] = access(argv[1], R_OK);
        rc[3] = (int)readlink(argv[2], buf, sizeof buf);
        for (int k = 0; k < 4; k++)
            if (rc[k] < 0) { if (errno == EINTR) eintr++; else other++; }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("signals %s, EINTR %d, other errors %d\n", signals > 10 ? "many" : "few", eintr, other);
    return 0;
}
