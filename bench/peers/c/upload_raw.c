/* upload_raw — the ceiling of bench/run's upload scenario: a raw-socket HTTP/1.1
 * reader in plain C that does the least a server can do with an upload. One
 * thread, epoll (level-triggered), non-blocking sockets, one 256 KiB read
 * buffer for all connections. A request's head is kept (up to 8 KiB) only to
 * find its Content-Length; the body bytes are counted and dropped; at the end
 * it answers 200 {"bytes":N}, and the connection is kept for another request.
 * GET (any path, /ping for bench/run's start-up check) answers
 * {"message":"pong"}. No chunked bodies, no limits, no timeouts: not a server,
 * a measure of what reading the socket costs.
 *   PORT=8080 ./upload_raw
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX 8192

typedef struct {
    int in_body;
    uint64_t want, got; /* body bytes declared, counted */
    char head[HEAD_MAX];
    size_t head_len;
    int is_get;
} conn;

static char buf[256 * 1024];

static void answer(int fd, const char *body) {
    char out[256];
    int n = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    /* A few dozen bytes into an empty send buffer: one write does it. */
    if (write(fd, out, (size_t)n) != n) perror("write");
}

/* The head is complete (head[0..len) ends with CRLF CRLF): method, Content-Length. */
static int parse_head(conn *c) {
    c->head[c->head_len] = 0;
    c->is_get = !strncmp(c->head, "GET ", 4);
    c->want = 0;
    for (char *p = strstr(c->head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
        if (!strncasecmp(p + 2, "content-length:", 15)) c->want = strtoull(p + 17, NULL, 10);
    return 0;
}

static void finish(int fd, conn *c) {
    char body[64];
    if (c->is_get) snprintf(body, sizeof body, "{\"message\":\"pong\"}");
    else snprintf(body, sizeof body, "{\"bytes\":%" PRIu64 "}", c->got);
    answer(fd, body);
    c->in_body = 0, c->head_len = 0, c->got = 0;
}

/* Consumes bytes [p, p + n) of connection c; false when it must be closed. */
static int consume(int fd, conn *c, const char *p, size_t n) {
    while (n) {
        if (c->in_body) {
            uint64_t take = c->want - c->got < n ? c->want - c->got : n;
            c->got += take, p += take, n -= take;
            if (c->got == c->want) finish(fd, c);
            continue;
        }
        /* Head bytes, one at a time until CRLF CRLF (heads are small). */
        if (c->head_len == HEAD_MAX - 1) return 0;
        c->head[c->head_len++] = *p++, n--;
        if (c->head_len >= 4 && !memcmp(c->head + c->head_len - 4, "\r\n\r\n", 4)) {
            parse_head(c);
            c->in_body = 1, c->got = 0;
            if (c->want == 0) finish(fd, c);
        }
    }
    return 1;
}

int main(void) {
    const char *ps = getenv("PORT");
    int port = ps ? atoi(ps) : 8080, one = 1;
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1024) < 0) {
        perror("bind/listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    printf("upload_raw on http://127.0.0.1:%d\n", port);
    fflush(stdout);
    static conn *conns[65536];
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        for (int k = 0; k < n; k++) {
            int fd = evs[k].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= 65536) { close(c); continue; }
                    conns[c] = calloc(1, sizeof(conn));
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r <= 0 || !consume(fd, conns[fd], buf, (size_t)r)) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
                free(conns[fd]);
                conns[fd] = NULL;
            }
        }
    }
}
