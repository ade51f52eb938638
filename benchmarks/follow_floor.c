/* The floor for a process tree under ptrace: the least a tracer that
 * follows every process does.
 *
 *   follow_floor CMD [ARG...]
 *
 * Runs CMD with a seccomp filter that allows every call (so each call takes
 * the kernel's slow entry path, as in a view), PTRACE_SEIZEd with fork,
 * vfork and clone events and PTRACE_O_EXITKILL, and resumes every stop at
 * once: an event stop and a child's first stop with PTRACE_CONT, a
 * group-stop with PTRACE_LISTEN, a signal-delivery stop with the signal.
 * It looks at nothing: no registers, no memory, no tables.  Each new
 * process costs it three stops (the parent's fork event, the child's first
 * stop, the SIGCHLD the parent gets), as it costs umview; an empty view
 * should run a build no slower than this.  Exits with CMD's status (128+N
 * for a signal N).  With FLOOR_STOPS set in the environment, prints the
 * number of stops to stderr.
 */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CMD [ARG...]\n", argv[0]);
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
        struct sock_fprog prog = {1, allow};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
            _exit(126);
        /* stopped until the parent has seized us: the exec and all after
         * it are traced */
        raise(SIGSTOP);
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, WSTOPPED) < 0 || !WIFSTOPPED(status)) return 126;
    if (ptrace(PTRACE_SEIZE, pid, 0,
               PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL)) {
        perror("PTRACE_SEIZE");
        kill(pid, SIGKILL);
        return 126;
    }
    kill(pid, SIGCONT);
    int rc = 0;
    long stops = 0;
    for (;;) {
        pid_t t = waitpid(-1, &status, __WALL);
        if (t < 0) break;   /* ECHILD: every tracee is gone */
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            if (t == pid) rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            continue;
        }
        stops++;
        int sig = WSTOPSIG(status), event = status >> 16;
        if (event == PTRACE_EVENT_STOP) {
            /* a new child's first stop, or a group-stop: LISTEN keeps the
             * latter stopped as the kernel would without us */
            int group = sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
            ptrace(group ? PTRACE_LISTEN : PTRACE_CONT, t, 0, 0);
        } else {
            ptrace(PTRACE_CONT, t, 0, event ? 0 : sig);
        }
    }
    if (getenv("FLOOR_STOPS")) fprintf(stderr, "follow_floor: %ld stops\n", stops);
    return rc;
}
