/* execvp, execvpe and execlp over $PATH: prints what each attempt gives
 * (an exec that works replaces a forked child, which prints its argv). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void try(const char *how, const char *file, const char *path) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)file, "from", (char *)how, NULL};
        char *envp[] = {"PATH=/bin:/usr/bin", "UMV_T=1", NULL};
        if (path) setenv("PATH", path, 1);
        else unsetenv("PATH");
        if (!strcmp(how, "execvp")) execvp(file, argv);
        else if (!strcmp(how, "execvpe")) execvpe(file, argv, envp);
        else execlp(file, file, "from", how, (char *)NULL);
        printf("%s %s [%s]: %s\n", how, file, path ? path : "(unset)", strerrorname_np(errno));
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "from")) {   /* exec'd: say so */
        printf("ran %s %s\n", argv[0], argv[2]);
        return 0;
    }
    const char *me = argv[1];   /* a directory holding this program as "found" */
    char *paths[6];
    asprintf(&paths[0], "/nope1:/nope2/x:/etc/passwd:%s", me);           /* misses, a file as a dir, then it */
    asprintf(&paths[1], "/nope1:%s/noexec:%s", me, me);                  /* not executable first: goes on */
    asprintf(&paths[2], "/nope1:%s/noexec", me);                        /* only that: EACCES */
    asprintf(&paths[3], "/nope1::/nope2");                              /* an empty entry: the cwd */
    paths[4] = "/nope1:/nope2";
    paths[5] = NULL;                                                    /* unset: /bin:/usr/bin */
    const char *hows[] = {"execvp", "execvpe", "execlp"};
    const char *files[] = {"found", "noshebang", "missing", "true"};
    for (int h = 0; h < 3; h++)
        for (int f = 0; f < 4; f++)
            for (int p = 0; p < 6; p++) try(hows[h], files[f], paths[p]);
    try("execvp", "", "/bin");
    return 0;
}
