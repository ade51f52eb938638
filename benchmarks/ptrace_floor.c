/* The floor for a trapped call on this machine: a minimal seccomp tracer.
 *
 *   ptrace_floor N [pin]
 *
 * Forks a child that installs a seccomp filter returning SECCOMP_RET_TRACE
 * for getppid (ALLOW for everything else), then calls syscall(SYS_getppid) N
 * times.  The parent PTRACE_SEIZEs it with PTRACE_O_TRACESECCOMP and, for
 * each seccomp stop, does a blocking waitpid() and a PTRACE_CONT, nothing
 * else.  With "pin", parent and child run on the lowest CPU allowed.  The
 * child prints "floor N NS_PER_CALL" (same format as microbench).
 *
 * This is what ARCHITECTURE.md section 2 calls "seccomp RET_TRACE stop +
 * PTRACE_CONT": the umview C core's trapped-and-resumed stop (microbench
 * under `umview -S`) should cost little more than this.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int install_filter(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s N [pin]\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    if (argc > 2 && !strcmp(argv[2], "pin")) {
        cpu_set_t s;
        sched_getaffinity(0, sizeof s, &s);
        int cpu = 0;
        while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &s))
            cpu++;
        CPU_ZERO(&s);
        CPU_SET(cpu, &s);
        sched_setaffinity(0, sizeof s, &s);   /* inherited by the child */
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        raise(SIGSTOP);                      /* wait for the tracer */
        if (install_filter() < 0) {
            perror("seccomp");
            _exit(1);
        }
        long warm = n / 20 < 100 ? 100 : n / 20;
        for (long i = 0; i < warm; i++)
            syscall(SYS_getppid);
        double t0 = now_ns();
        for (long i = 0; i < n; i++)
            syscall(SYS_getppid);
        double t1 = now_ns();
        printf("floor %ld %.1f\n", n, (t1 - t0) / n);
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, WSTOPPED);         /* the child's SIGSTOP */
    if (ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL) < 0) {
        perror("PTRACE_SEIZE");
        kill(pid, SIGKILL);
        return 1;
    }
    kill(pid, SIGCONT);
    for (;;) {
        if (waitpid(pid, &status, __WALL) < 0)
            return 1;
        if (WIFEXITED(status))
            return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
            return 128 + WTERMSIG(status);
        int sig = 0;
        if (WIFSTOPPED(status)) {
            int s = WSTOPSIG(status);
            if (s != SIGTRAP && (status >> 16) == 0 && s != SIGSTOP && s != SIGCONT)
                sig = s;                     /* signal-delivery stop: pass it on */
            if ((status >> 16) == PTRACE_EVENT_STOP) {
                ptrace(PTRACE_CONT, pid, 0, 0);   /* group-stop of SIGSTOP */
                continue;
            }
        }
        ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig);
    }
}
