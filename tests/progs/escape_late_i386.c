/* Escape attempt in a view that virtualizes nothing yet: there i386 calls
 * (int $0x80) are let through, among them i386 clone (120), whose
 * CLONE_UNTRACED flag no x86_64 rule sees.  A child made that way would not
 * be traced; when a module is loaded later (umview-insmod), it would stay
 * outside the view.  The parent makes such a child, loads misc with
 * release=late.1 (argv[1] is the umview-insmod command line, run by
 * system()), then lets the child call uname.  Prints:
 *   clone RET                 (RET 1: a child was made, else -errno)
 *   insmod STATUS
 *   parent release R
 *   child release R traced 0|1
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_UNTRACED
#define CLONE_UNTRACED 0x00800000
#endif

static long int80(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("int $0x80"
                     : "=a"(ret)
                     : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(0L), "D"(0L)
                     : "memory", "r8", "r9", "r10", "r11");
    return ret;
}

static int tracer_pid(void)
{
    char line[256];
    int pid = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "TracerPid: %d", &pid) == 1) break;
    fclose(f);
    return pid;
}

int main(int argc, char **argv)
{
    int go[2];
    struct utsname u;
    if (argc < 2 || pipe(go) < 0) return 2;
    fflush(stdout);
    long pid = int80(120, CLONE_UNTRACED | SIGCHLD, 0, 0);
    if (pid == 0) {
        char b;
        close(go[1]);
        if (read(go[0], &b, 1) != 1) _exit(1);
        uname(&u);
        printf("child release %s traced %d\n", u.release, tracer_pid() > 0);
        fflush(stdout);
        _exit(0);
    }
    close(go[0]);
    printf("clone %ld\n", pid > 0 ? 1 : pid);
    fflush(stdout);
    printf("insmod %d\n", system(argv[1]));
    uname(&u);
    printf("parent release %s\n", u.release);
    fflush(stdout);
    if (pid > 0) {
        int st;
        if (write(go[1], "g", 1) != 1) return 1;
        waitpid(pid, &st, 0);
    }
    return 0;
}
