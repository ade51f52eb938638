/* A static TCP client for the net module's tests (no libc wrapper to
 * preload, like a Go program).
 *
 *   net_client_static [-n] [-b] HOST PORT [REQUEST]
 *     -n   non-blocking connect: EINPROGRESS, poll for POLLOUT, SO_ERROR
 *     -b   bind HOST:PORT and listen instead; print getsockname
 *     -r   pass connect a sockaddr that lies in a read-only page
 *
 * Prints "connect OK" or "connect ENAME", then "peer ADDR PORT", then sends
 * REQUEST (\n is turned into \r\n) and copies the answer to stdout (at most
 * 64 KiB, 20 s).  Exit status 0 when connected, 1 otherwise. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *ename(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

static void show(const char *what, struct sockaddr_storage *ss) {
    char buf[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s->sin_addr, buf, sizeof buf);
        port = ntohs(s->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof buf);
        port = ntohs(s->sin6_port);
    }
    printf("%s %s %d\n", what, buf, port);
}

int main(int argc, char **argv) {
    int nonblock = 0, listen_mode = 0, readonly = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-n")) nonblock = 1;
        else if (!strcmp(argv[i], "-b")) listen_mode = 1;
        else if (!strcmp(argv[i], "-r")) readonly = 1;
    }
    if (argc - i < 2) {
        fprintf(stderr, "usage: %s [-n] [-b] HOST PORT [REQUEST]\n", argv[0]);
        return 2;
    }
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    int port = atoi(argv[i + 1]);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, argv[i], &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        len = sizeof *s4;
    } else if (inet_pton(AF_INET6, argv[i], &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        len = sizeof *s6;
    } else {
        fprintf(stderr, "bad address %s\n", argv[i]);
        return 2;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) {
        printf("socket %s\n", ename(errno));
        return 1;
    }
    if (listen_mode) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
            printf("bind %s\n", ename(errno));
            return 1;
        }
        if (listen(fd, 1) < 0) {
            printf("listen %s\n", ename(errno));
            return 1;
        }
        struct sockaddr_storage me;
        socklen_t ml = sizeof me;
        getsockname(fd, (struct sockaddr *)&me, &ml);
        printf("bind OK\n");
        show("local", &me);
        return 0;
    }
    struct sockaddr *to = (struct sockaddr *)&ss;
    if (readonly) {
        void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED) return 2;
        memcpy(page, &ss, len);
        mprotect(page, 4096, PROT_READ);
        to = page;
    }
    int rc = connect(fd, to, len);
    if (readonly && memcmp(to, &ss, len) != 0) {
        printf("sockaddr changed\n");
        return 1;
    }
    if (rc < 0 && errno == EINPROGRESS && nonblock) {
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, 20000) != 1) {
            printf("connect ETIMEDOUT(poll)\n");
            return 1;
        }
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) errno = err;
        rc = err ? -1 : 0;
    }
    if (rc < 0) {
        printf("connect %s\n", ename(errno));
        return 1;
    }
    printf("connect OK\n");
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) == 0) show("peer", &peer);
    fflush(stdout);
    if (argc - i >= 3) {
        char req[4096];
        size_t n = 0;
        for (const char *c = argv[i + 2]; *c && n < sizeof req - 2; c++) {
            if (*c == '\n') req[n++] = '\r';
            req[n++] = *c;
        }
        for (size_t off = 0; off < n;) {
            ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EAGAIN) {
                struct pollfd p = {fd, POLLOUT, 0};
                poll(&p, 1, 20000);
                continue;
            }
            if (w <= 0) break;
            off += w;
        }
        char buf[4096];
        size_t total = 0;
        while (total < 65536) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 20000) != 1) break;
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0) break;
            fwrite(buf, 1, r, stdout);
            total += r;
        }
    }
    return 0;
}
