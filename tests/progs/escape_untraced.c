/* Escape attempt: a child made with clone(CLONE_UNTRACED) would not be
 * followed by the tracer and would run outside the view.  The core clears
 * the flag, so the child must still be traced and still see the view's
 * uname.  Prints:
 *   clone ok
 *   child release R traced 0|1
 *   parent release R
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_UNTRACED
#define CLONE_UNTRACED 0x00800000
#endif

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

int main(void)
{
    struct utsname u;
    fflush(stdout);
    /* raw clone: child_stack 0 = the child runs on a copy of our stack */
    long pid = syscall(SYS_clone, (unsigned long)(CLONE_UNTRACED | SIGCHLD), 0L, 0L, 0L, 0L);
    if (pid < 0) {
        printf("clone failed %d\n", -1);
        perror("clone");
        return 1;
    }
    if (pid == 0) {
        if (uname(&u) < 0) {
            perror("uname");
            _exit(1);
        }
        printf("child release %s traced %d\n", u.release, tracer_pid() > 0);
        fflush(stdout);
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
        printf("child failed\n");
        return 1;
    }
    if (uname(&u) < 0) {
        perror("uname");
        return 1;
    }
    printf("parent release %s\n", u.release);
    return 0;
}
