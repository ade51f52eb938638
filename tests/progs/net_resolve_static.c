/* Name resolution for the net module's proxy_dns tests (a static binary:
 * no libc wrapper to preload, like a Go program).
 *
 *   net_resolve_static [-n] NAME PORT [REQUEST]
 *       getaddrinfo(NAME, PORT, AF_INET), then connect to the first address
 *       (-n: non-blocking: EINPROGRESS, poll for POLLOUT, SO_ERROR), send
 *       REQUEST (\n becomes \r\n) and copy the answer.
 *   net_resolve_static -u NAME     an A query by hand, as musl's resolver
 *       sends it: an unconnected UDP socket, sendto() the first name server
 *       of /etc/resolv.conf (127.0.0.1 if none), recvfrom(), and the answer
 *       counts only if it comes from that server's address and port 53.
 *   net_resolve_static -t NAME     the same query over TCP.
 *   net_resolve_static -m NAME     as -u, with sendmmsg() and recvmsg().
 *
 * Prints "resolved ADDR" (or "resolve ERROR"), then for -u/-m "source OK"
 * or "source WRONG ADDR PORT"; for a connect "connect OK" or "connect
 * ENAME", "peer ADDR PORT", then the answer. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *ename(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

static struct in_addr name_server(void) {
    struct in_addr a;
    inet_pton(AF_INET, "127.0.0.1", &a);
    FILE *f = fopen("/etc/resolv.conf", "re");
    char line[512], ip[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, " nameserver %255s", ip) == 1 && inet_pton(AF_INET, ip, &a) == 1) break;
    if (f) fclose(f);
    return a;
}

static size_t build_query(unsigned char *q, const char *name) {
    size_t n = 0;
    memcpy(q, "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
    n = 12;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        q[n++] = (unsigned char)len;
        memcpy(q + n, p, len);
        n += len;
        p += len + (dot ? 1 : 0);
    }
    q[n++] = 0;
    memcpy(q + n, "\x00\x01\x00\x01", 4); /* A, IN */
    return n + 4;
}

/* The first A record of an answer to build_query's query. */
static int parse_answer(const unsigned char *a, size_t n, size_t qlen, struct in_addr *out) {
    if (n < 12 || a[0] != 0x12 || a[1] != 0x34 || !(a[2] & 0x80) || (a[3] & 0x0f)) return -1;
    int ancount = a[6] << 8 | a[7];
    size_t pos = qlen;
    for (int i = 0; i < ancount && pos < n; i++) {
        if ((a[pos] & 0xc0) == 0xc0) pos += 2;
        else { while (pos < n && a[pos]) pos += a[pos] + 1; pos++; }
        if (pos + 10 > n) return -1;
        int type = a[pos] << 8 | a[pos + 1], rdlen = a[pos + 8] << 8 | a[pos + 9];
        pos += 10;
        if (type == 1 && rdlen == 4 && pos + 4 <= n) {
            memcpy(out, a + pos, 4);
            return 0;
        }
        pos += rdlen;
    }
    return -1;
}

static int by_hand(char mode, const char *name) {
    unsigned char q[512], a[1024];
    size_t qlen = build_query(q, name);
    struct sockaddr_in ns = {.sin_family = AF_INET, .sin_port = htons(53), .sin_addr = name_server()};
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t got;
    int fd = socket(AF_INET, mode == 't' ? SOCK_STREAM : SOCK_DGRAM, 0);
    if (mode == 't') {
        if (connect(fd, (struct sockaddr *)&ns, sizeof ns) < 0) {
            printf("connect %s\n", ename(errno));
            return 1;
        }
        unsigned char msg[514];
        msg[0] = qlen >> 8;
        msg[1] = qlen & 0xff;
        memcpy(msg + 2, q, qlen);
        if (write(fd, msg, qlen + 2) != (ssize_t)qlen + 2) return 1;
        size_t have = 0;
        while (have < 2 || have < 2 + (size_t)(a[0] << 8 | a[1])) {
            ssize_t r = read(fd, a + have, sizeof a - have);
            if (r <= 0) { printf("resolve ERROR\n"); return 1; }
            have += r;
        }
        memmove(a, a + 2, have - 2);
        got = have - 2;
    } else {
        if (mode == 'm') {
            struct iovec iov = {q, qlen};
            struct mmsghdr mm = {.msg_hdr = {.msg_name = &ns, .msg_namelen = sizeof ns,
                                             .msg_iov = &iov, .msg_iovlen = 1}};
            int sent = sendmmsg(fd, &mm, 1, 0);
            if (sent != 1 || mm.msg_len != qlen) {
                printf("sendmmsg %d %u %s\n", sent, mm.msg_len, sent < 0 ? ename(errno) : "");
                return 1;
            }
        } else if (sendto(fd, q, qlen, 0, (struct sockaddr *)&ns, sizeof ns) < 0) {
            printf("sendto %s\n", ename(errno));
            return 1;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 20000) != 1) { printf("resolve TIMEOUT\n"); return 1; }
        if (mode == 'm') {
            struct iovec iov = {a, sizeof a};
            struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
            got = recvmsg(fd, &mh, 0);
            fl = mh.msg_namelen;
        } else {
            got = recvfrom(fd, a, sizeof a, 0, (struct sockaddr *)&from, &fl);
        }
    }
    struct in_addr addr;
    if (got < 0 || parse_answer(a, got, qlen, &addr) < 0) {
        printf("resolve ERROR\n");
        return 1;
    }
    printf("resolved %s\n", inet_ntoa(addr));
    if (mode != 't') {
        if (fl == sizeof from && from.sin_family == AF_INET && from.sin_port == htons(53) &&
            from.sin_addr.s_addr == ns.sin_addr.s_addr)
            printf("source OK\n");
        else
            printf("source WRONG %s %d\n", inet_ntoa(from.sin_addr), ntohs(from.sin_port));
    }
    return 0;
}

int main(int argc, char **argv) {
    int nonblock = 0, i = 1;
    char mode = 0;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-n")) nonblock = 1;
        else mode = argv[i][1];
    }
    if (mode) {
        if (argc - i < 1) return 2;
        return by_hand(mode, argv[i]);
    }
    if (argc - i < 2) {
        fprintf(stderr, "usage: %s [-n|-u|-t|-m] NAME [PORT [REQUEST]]\n", argv[0]);
        return 2;
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(argv[i], argv[i + 1], &hints, &res);
    if (rc) {
        printf("resolve %s\n", gai_strerror(rc));
        return 1;
    }
    struct sockaddr_in *sa = (struct sockaddr_in *)res->ai_addr;
    printf("resolved %s\n", inet_ntoa(sa->sin_addr));
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    rc = connect(fd, res->ai_addr, res->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS && nonblock) {
        printf("connect EINPROGRESS\n");
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
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) == 0)
        printf("peer %s %d\n", inet_ntoa(peer.sin_addr), ntohs(peer.sin_port));
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
