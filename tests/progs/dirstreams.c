/* Every function of the directory-stream API, on the directory argv[1]
 * (entries printed sorted, so that the output does not depend on the
 * order getdents64 gives): run natively and in a view, the outputs are
 * compared (tests/test_vfs_shim.py). */
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"   /* readdir_r */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the names left in the stream, sorted, on one line */
static int show(const char *tag, DIR *d) {
    char *names[4096];
    int n = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) && n < 4096) {
        char *s = malloc(strlen(e->d_name) + 8);
        sprintf(s, "%s/%d", e->d_name, e->d_type);
        names[n++] = s;
    }
    int err = errno;
    qsort(names, n, sizeof *names, cmp);
    printf("%s %d errno=%d:", tag, n, err);
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
    return n;
}

static void fails(const char *tag, DIR *d) {
    printf("%s %s\n", tag, d ? "opened" : strerror(errno));
    if (d) closedir(d);
}

int main(int argc, char **argv) {
    const char *dir = argv[1];
    DIR *d = opendir(dir);
    if (!d) {
        perror("opendir");
        return 1;
    }
    int total = show("all", d);
    rewinddir(d);
    struct stat st;
    printf("dirfd is a directory: %d, cloexec: %d\n", fstat(dirfd(d), &st) == 0 && S_ISDIR(st.st_mode),
           (fcntl(dirfd(d), F_GETFD) & FD_CLOEXEC) != 0);
    /* telldir/seekdir: remember the position after half the entries, read
     * the rest, go back and read the rest again */
    long pos = 0;
    for (int i = 0; i < total / 2; i++) {
        readdir(d);
        pos = telldir(d);
    }
    int rest = show("rest", d);
    seekdir(d, pos);
    printf("after seekdir the same rest: %d\n", show("again", d) == rest);
    rewinddir(d);
    struct dirent ent, *res;
    int n = 0, rc;
    while ((rc = readdir_r(d, &ent, &res)) == 0 && res) n++;
    printf("readdir_r %d rc=%d\n", n, rc);
    printf("closedir %d\n", closedir(d));
    /* fdopendir: the caller's descriptor, set close-on-exec, closed by closedir */
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    d = fdopendir(fd);
    printf("fdopendir %s, cloexec: %d\n", d ? "ok" : strerror(errno), (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    show("fd", d);
    closedir(d);
    printf("fd closed: %d\n", fcntl(fd, F_GETFD) < 0 && errno == EBADF);
    /* errors as glibc gives them */
    char path[4096];
    snprintf(path, sizeof path, "%s/missing", dir);
    fails("missing", opendir(path));
    fails("empty name", opendir(""));
    snprintf(path, sizeof path, "%s/file", dir);
    fails("a file", opendir(path));
    int ffd = open(path, O_RDONLY);
    fails("fdopendir of a file", fdopendir(ffd));
    close(ffd);
    fails("fdopendir of a bad fd", fdopendir(999));
    int wfd = open(path, O_WRONLY);
    fails("fdopendir write-only", fdopendir(wfd));
    DIR *volatile none = NULL;
    errno = 0;
    rc = closedir(none);
    printf("closedir NULL %d %s\n", rc, strerror(errno));
    return 0;
}
