/* timer FILE CMD [ARG...]: runs CMD and writes its wall seconds to FILE
 * (not to stderr, which is CMD's).  The benchmarks put it inside a mode
 * (`umview -- timer ...`), so that the time is the program's own, without
 * the mode's start and end.  Exits with CMD's status (128+N for signal N). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
    struct timespec a, b;
    int st;
    if (argc < 3) return 2;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t p = fork();
    if (p == 0) {
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    if (p < 0 || waitpid(p, &st, 0) < 0) return 2;
    clock_gettime(CLOCK_MONOTONIC, &b);
    FILE *f = fopen(argv[1], "w");
    if (f) {
        fprintf(f, "%.6f\n", (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
        fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
