/* Escape attempts against the hypervisor (by default our parent: the first
 * process of a view is a child of the hypervisor; a pid may be given
 * instead).  From inside a view each attempt must fail; run natively
 * against an ordinary process of ours, each succeeds (so the test shows the
 * refusals come from the view, not from the kernel).  Prints:
 *   target PID tasks N
 *   seize RET ERRNO                 ptrace(PTRACE_SEIZE, pid)
 *   seize-tasks OK/N ERRNO          the same on each thread (the tracer is a thread)
 *   attach RET ERRNO                ptrace(PTRACE_ATTACH, pid)
 *   vm_readv RET ERRNO              8 bytes at the bottom of its stack
 *   vm_writev RET ERRNO             the same 8 bytes written back (or zeros)
 *   vm_writev-tasks OK/N ERRNO      the same with each thread id as pid
 *   pidfd_open RET ERRNO            RET 1 for "a pidfd"
 *   pidfd_getfd RET ERRNO           its fd 0
 *   pidfd_getfd-threads OK/N ERRNO  through a PIDFD_THREAD pidfd of each thread
 *   alive
 *   release R                       our uname afterwards (the view still serves us)
 * ERRNO is 0 for success.  A successful ptrace is undone at once. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD 0x80 /* O_EXCL */
#endif

static int tasks[256], ntasks;

static unsigned long stack_bottom(int pid)
{
    char path[64], line[512];
    unsigned long lo = 0, hi;
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2) break;
    fclose(f);
    return lo;
}

static void list_tasks(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    struct dirent *e;
    if (!d) return;
    while ((e = readdir(d)) && ntasks < 256)
        if (e->d_name[0] != '.') tasks[ntasks++] = atoi(e->d_name);
    closedir(d);
}

/* we traced tid: take it out of the stop we caused and let it go */
static void undo(int tid, int interrupt)
{
    int st;
    if (interrupt) ptrace(PTRACE_INTERRUPT, tid, 0, 0);
    waitpid(tid, &st, __WALL);
    ptrace(PTRACE_DETACH, tid, 0, 0);
}

#define REPORT(name, r) printf("%s %ld %d\n", name, (long)(r), (r) < 0 ? errno : 0)

int main(int argc, char **argv)
{
    alarm(30); /* should an attempt succeed against the hypervisor, do not hang */
    int pid = argc > 1 ? atoi(argv[1]) : getppid();
    list_tasks(pid);
    printf("target %d tasks %d\n", pid, ntasks);
    fflush(stdout);

    errno = 0;
    long r = ptrace(PTRACE_SEIZE, pid, 0, 0);
    REPORT("seize", r);
    fflush(stdout);
    if (r == 0) undo(pid, 1);

    int ok = 0, err = 0;
    for (int i = 0; i < ntasks; i++) {
        errno = 0;
        if (ptrace(PTRACE_SEIZE, tasks[i], 0, 0) == 0) {
            ok++;
            undo(tasks[i], 1);
        } else {
            err = errno;
        }
    }
    printf("seize-tasks %d/%d %d\n", ok, ntasks, err);
    fflush(stdout);

    errno = 0;
    r = ptrace(PTRACE_ATTACH, pid, 0, 0);
    REPORT("attach", r);
    fflush(stdout);
    if (r == 0) undo(pid, 0);

    unsigned long addr = stack_bottom(pid);
    unsigned char data[8] = {0};
    struct iovec local = {data, sizeof data}, remote = {(void *)addr, sizeof data};
    errno = 0;
    r = syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0);
    REPORT("vm_readv", r);
    errno = 0;
    r = syscall(SYS_process_vm_writev, pid, &local, 1, &remote, 1, 0);
    REPORT("vm_writev", r);
    ok = err = 0;
    for (int i = 0; i < ntasks; i++) {
        errno = 0;
        if (syscall(SYS_process_vm_writev, tasks[i], &local, 1, &remote, 1, 0) == sizeof data)
            ok++;
        else
            err = errno;
    }
    printf("vm_writev-tasks %d/%d %d\n", ok, ntasks, err);
    fflush(stdout);

    errno = 0;
    long pfd = syscall(SYS_pidfd_open, pid, 0);
    printf("pidfd_open %ld %d\n", pfd >= 0 ? 1 : pfd, pfd < 0 ? errno : 0);
    if (pfd >= 0) {
        errno = 0;
        r = syscall(SYS_pidfd_getfd, pfd, 0, 0);
        printf("pidfd_getfd %ld %d\n", r >= 0 ? 1 : r, r < 0 ? errno : 0);
        if (r >= 0) close(r);
        close(pfd);
    } else {
        printf("pidfd_getfd - -\n");
    }
    ok = err = 0;
    for (int i = 0; i < ntasks; i++) {
        errno = 0;
        long tfd = syscall(SYS_pidfd_open, tasks[i], PIDFD_THREAD);
        if (tfd < 0) {
            err = errno;
            continue;
        }
        r = syscall(SYS_pidfd_getfd, tfd, 0, 0);
        if (r >= 0) {
            ok++;
            close(r);
        } else {
            err = errno;
        }
        close(tfd);
    }
    printf("pidfd_getfd-threads %d/%d %d\n", ok, ntasks, err);
    printf("alive\n");
    struct utsname u;
    if (uname(&u) < 0) {
        perror("uname");
        return 1;
    }
    printf("release %s\n", u.release);
    return 0;
}
