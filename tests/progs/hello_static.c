/* A statically linked program (no dynamic loader, no libc.so): it prints,
 * forks, the child execs /bin/echo and then a second child re-execs this
 * program in "child" mode; the parent waits for each and reports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int run(char *const argv[])
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        execv(argv[0], argv);
        perror("execv");
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        exit(2);
    }
    return status;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        printf("static child says %s\n", argc > 2 ? argv[2] : "nothing");
        return 33;
    }
    printf("hello from a static program\n");
    char *echo[] = {"/bin/echo", "echo", "from", "exec", NULL};
    int st = run(echo);
    printf("echo: exited=%d status=%d\n", WIFEXITED(st), WEXITSTATUS(st));
    char *self[] = {"/proc/self/exe", "child", "hi", NULL};
    /* /proc/self/exe is resolved in the child, which is still this program */
    st = run(self);
    printf("self: exited=%d status=%d\n", WIFEXITED(st), WEXITSTATUS(st));
    return 0;
}
