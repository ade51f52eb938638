/* Escape attempt: clone3 keeps its flags in memory, where a seccomp filter
 * cannot see CLONE_UNTRACED; every view answers it ENOSYS and libc falls
 * back to clone.  Prints:
 *   clone3 RET ERRNO           (RET > 0 natively: a child was made)
 *   [child release R]          (natively only: the child's uname)
 *   thread ok                  (pthread_create, which tries clone3 first)
 *   spawn ok STATUS            (posix_spawn of /bin/true, likewise)
 *   release R
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_UNTRACED
#define CLONE_UNTRACED 0x00800000
#endif

extern char **environ;

static void *thread(void *arg)
{
    return arg;
}

int main(void)
{
    struct clone_args a;
    struct utsname u;
    memset(&a, 0, sizeof a);
    a.flags = CLONE_UNTRACED;
    a.exit_signal = SIGCHLD;
    fflush(stdout);
    errno = 0;
    long pid = syscall(435, &a, sizeof a);
    if (pid == 0) {
        uname(&u);
        printf("child release %s\n", u.release);
        fflush(stdout);
        _exit(0);
    }
    printf("clone3 %ld %d\n", pid > 0 ? 1 : pid, pid < 0 ? errno : 0);
    fflush(stdout);
    if (pid > 0) {
        int st;
        waitpid(pid, &st, 0);
    }
    pthread_t t;
    void *ret = NULL;
    if (pthread_create(&t, NULL, thread, (void *)42) || pthread_join(t, &ret) || ret != (void *)42) {
        printf("thread failed\n");
        return 1;
    }
    printf("thread ok\n");
    fflush(stdout);
    pid_t sp;
    char *argv[] = {"true", NULL};
    int e = posix_spawn(&sp, "/bin/true", NULL, NULL, argv, environ);
    int st = -1;
    if (e == 0) waitpid(sp, &st, 0);
    printf("spawn %s %d\n", e == 0 ? "ok" : strerror(e), st);
    uname(&u);
    printf("release %s\n", u.release);
    return 0;
}
