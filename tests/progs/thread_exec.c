/* A thread other than the leader execs: the kernel gives it the leader's
 * pid, and the tid it had vanishes with no exit of its own.  With "fork"
 * the program first forks, and the child (single-threaded, but made by a
 * threaded process, so with its parent's ptrace options) execs from its
 * only thread.  argv[1]: the command run by sh -c. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *cmd;

static void *run(void *arg) {
    (void)arg;
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    perror("execl");
    return NULL;
}

static void *noop(void *arg) {
    return arg;
}

static void threaded_exec(void) {
    pthread_t th;
    if (pthread_create(&th, NULL, run, NULL)) _exit(99);
    for (;;) pause();
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    cmd = argv[1];
    if (argc > 2 && !strcmp(argv[2], "fork")) {
        pthread_t th;
        if (pthread_create(&th, NULL, noop, NULL) || pthread_join(th, NULL)) return 96;
        pid_t pid = fork();
        if (pid == 0) run(NULL);
        int st;
        if (waitpid(pid, &st, 0) < 0) return 98;
        return WIFEXITED(st) ? WEXITSTATUS(st) + 10 : 97;
    }
    threaded_exec();
}
