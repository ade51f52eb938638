/* fdshare MODE HOST MNT: a directory fd number whose path the shim of
 * this process kept is given another directory by a process that shares
 * something with it, then a walk "../../x" is made from the number (MNT
 * is a directory below a bind mount's root, which the core opens for the
 * program without Python):
 *   clone: the parent keeps HOST's path for fd n; a child made by clone
 *     with CLONE_FILES (and not CLONE_VM) opens MNT and dup2s it onto n,
 *     in the table both use: the child's counts are its own copy's;
 *   vfork: n is MNT in the parent; a vfork child closes n, opens HOST
 *     (which lands at n in its own table) and makes the shim keep that,
 *     in the memory it shares with the parent.
 * Prints the size of n's "g", then of "../../x" or "missing". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    const char *host = argv[2], *mnt = argv[3];
    struct stat st;
    int n;
    if (!strcmp(argv[1], "clone")) {
        int go[2];
        char c = 0;
        n = open(host, O_RDONLY | O_DIRECTORY);
        if (n < 0 || pipe(go) < 0) return 3;
        long pid = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0);
        if (pid == 0) {
            if (read(go[0], &c, 1) != 1) _exit(1);   /* once the parent kept n's path */
            int m = open(mnt, O_RDONLY | O_DIRECTORY);
            _exit(m < 0 || dup2(m, n) != n || close(m) < 0);
        }
        /* kept with the counts as they are now, the child made */
        if (pid < 0 || fstatat(n, "f", &st, 0) < 0 || write(go[1], &c, 1) != 1) return 3;
        int status;
        if (waitpid((pid_t)pid, &status, 0) < 0 || status) return 4;
    } else {
        n = open(mnt, O_RDONLY | O_DIRECTORY);
        if (n < 0) return 3;
        pid_t pid = vfork();
        if (pid == 0) {
            close(n);
            int h = open(host, O_RDONLY | O_DIRECTORY);
            _exit(h != n || fstatat(h, "f", &st, 0) < 0);
        }
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || status) return 4;
    }
    /* both before any output: stdio's first fstat of stdout is a call
     * the core sees, after which nothing kept is trusted anyway */
    if (fstatat(n, "g", &st, 0) < 0) return 5;
    long g = (long)st.st_size;
    int x = fstatat(n, "../../x", &st, 0);
    if (x == 0)
        printf("%ld %ld\n", g, (long)st.st_size);
    else
        printf("%ld missing\n", g);
    return 0;
}
