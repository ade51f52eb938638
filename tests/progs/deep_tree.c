/* A chain of processes DEPTH deep (argv[1], default 200): each forks a child
 * that goes one level deeper, waits for it, prints its depth and exits with
 * the child's status plus one.  The root exits with DEPTH (mod 256) and the
 * depths come out deepest first. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int depth = argc > 1 ? atoi(argv[1]) : 200;
    int level = 0;
    for (;;) {
        if (level == depth) {
            printf("leaf %d\n", level);
            fflush(stdout);
            _exit(0);
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            _exit(250);
        }
        if (pid == 0) {
            level++;
            continue;
        }
        int status;
        if (waitpid(pid, &status, 0) != pid) {
            perror("waitpid");
            _exit(251);
        }
        if (!WIFEXITED(status)) {
            printf("level %d: child died of signal %d\n", level, WTERMSIG(status));
            fflush(stdout);
            _exit(252);
        }
        printf("level %d child status %d\n", level, WEXITSTATUS(status));
        fflush(stdout);
        _exit((WEXITSTATUS(status) + 1) & 0xff);
    }
}
