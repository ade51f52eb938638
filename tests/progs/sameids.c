/* Identity calls through libc, as a fake root's programs make them:
 * prints the ids before and after changes, and what a child spawned with
 * POSIX_SPAWN_RESETIDS and eaccess see.  argv[1]: a loop count. */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void ids(const char *when) {
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    printf("%s: uid=%d euid=%d gid=%d egid=%d res=%d,%d,%d resg=%d,%d,%d\n", when, (int)getuid(),
           (int)geteuid(), (int)getgid(), (int)getegid(), (int)r, (int)e, (int)s, (int)gr, (int)ge, (int)gs);
    fflush(stdout);
}

static void spawn_id(const char *when) {
    posix_spawnattr_t a;
    posix_spawnattr_init(&a);
    posix_spawnattr_setflags(&a, POSIX_SPAWN_RESETIDS);
    char *argv[] = {"id", NULL};
    pid_t pid;
    printf("%s spawn: ", when);
    fflush(stdout);
    if (posix_spawnp(&pid, "id", NULL, &a, argv, environ) == 0) waitpid(pid, NULL, 0);
    posix_spawnattr_destroy(&a);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 0, sum = 0;
    for (long i = 0; i < n; i++) sum += getuid() + geteuid() + getgid() + getegid();
    ids("start");
    printf("no-op changes: %d %d %d %d %d\n", setresuid(-1, geteuid(), -1), setresgid(-1, -1, getgid()),
           setuid(getuid()), setgid(getgid()), eaccess("/bin/sh", X_OK));
    spawn_id("start");
    int go[2];
    pipe(go);
    pid_t before = fork();
    if (before == 0) {   /* forked before the change: keeps the old ids */
        char c;
        close(go[1]);
        read(go[0], &c, 1);   /* until the parent has changed (it closes the pipe) */
        ids("child forked before");
        _exit(0);
    }
    close(go[0]);
    printf("change: %d\n", setresuid(-1, 1234, -1));
    ids("after");
    printf("eaccess: %d\n", eaccess("/bin/sh", X_OK));
    spawn_id("after");
    fflush(stdout);
    close(go[1]);
    waitpid(before, NULL, 0);
    return sum < 0;
}
