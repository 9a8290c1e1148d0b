/* upload_client — the load client of bench/run's upload scenario: CONNS
 * connections at once each POST one body with Content-Length, generated on the
 * fly (never held in memory: one 256 KiB pattern block is reused, the first 8
 * bytes of every block carry the block's number so no two blocks are alike),
 * then read the answer. The TOTAL is split over the connections (each sends
 * TOTAL / CONNS bytes, the first ones a byte more when it does not divide), so
 * every pass moves the same bytes whatever CONNS is.
 *
 *   upload_client -b TOTAL_BYTES [-c CONNS] [-m MIN_S] [-p PATH] [-t TIMEOUT_S] [-a] HOST PORT
 *   upload_client -b BYTES -D > body.bin     the body of one connection, to stdout
 *
 * A pass: every connection is opened, sends its body and gets its answer (then
 * is closed). With -m, passes follow one another (fresh connections each time)
 * until MIN_S seconds have gone by, so a fast server is measured over enough
 * time for its CPU ticks to mean something; at least one pass.
 * Prints key=value lines: conns, passes, bytes (sent in all), ok (answers with
 * status 200 whose JSON body names the right byte count as "bytes": N), errors,
 * wall_s (first connect to last answer), mib_s (bytes / 2^20 / wall_s),
 * conn_min_s and conn_max_s (a connection's connect-to-answer time within its
 * pass: fairness among them), status (the last pass's first answer's status)
 * and, with -a, answer= (that answer's body, for the harness's checks). Exit
 * status 0 when every connection got its 200, 1 otherwise (the passes stop at
 * the first failure). One thread, epoll, non-blocking sockets (writev of the
 * pattern); bounded by -t (default 120 s). Plain C, Linux only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (256u * 1024u)
#define MAX_CONNS 1024
#define IOV_BLOCKS 4 /* up to 1 MiB per writev */

static unsigned char pattern[BLOCK];

static void fill_pattern(void) {
    uint64_t x = 0x9E3779B97F4A7C15ull; /* xorshift64: fixed, so every run sends the same bytes */
    for (size_t i = 0; i < BLOCK; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(pattern + i, &x, 8);
    }
}

typedef struct {
    int fd;
    int state; /* 0 connecting/sending head+body, 1 reading the answer, 2 done */
    char head[256];
    size_t head_len, head_off;
    uint64_t body_len, body_off;
    uint64_t blk_no[IOV_BLOCKS]; /* the 8-byte block numbers the iovecs point at */
    char resp[8192];
    size_t resp_len;
    int status, ok;
    uint64_t t_done;
} conn;

static conn conns[MAX_CONNS];

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The iovecs of body bytes [off, off + up to IOV_BLOCKS blocks). */
static int body_iov(conn *c, struct iovec *iov) {
    int n = 0;
    uint64_t off = c->body_off;
    for (int b = 0; b < IOV_BLOCKS && off < c->body_len; b++) {
        uint64_t blk = off / BLOCK, pos = off % BLOCK, left = c->body_len - off;
        if (pos < 8) {
            c->blk_no[b] = blk;
            size_t l = 8 - pos;
            if (l > left) l = (size_t)left;
            iov[n].iov_base = (char *)&c->blk_no[b] + pos, iov[n++].iov_len = l;
            off += l, left -= l, pos = 8;
            if (!left) break;
        }
        size_t l = BLOCK - pos;
        if (l > left) l = (size_t)left;
        iov[n].iov_base = pattern + pos, iov[n++].iov_len = l;
        off += l;
    }
    return n;
}

static int dump(uint64_t bytes) { /* the body, exactly as a connection sends it */
    conn c = {.body_len = bytes};
    struct iovec iov[2 * IOV_BLOCKS];
    while (c.body_off < c.body_len) {
        int n = body_iov(&c, iov);
        for (int i = 0; i < n; i++) {
            if (fwrite(iov[i].iov_base, 1, iov[i].iov_len, stdout) != iov[i].iov_len) return 1;
            c.body_off += iov[i].iov_len;
        }
    }
    return fflush(stdout) ? 1 : 0;
}

/* The answer is complete: Content-Length bytes after the head, the last chunk
 * of a chunked one, or (with neither) the end of the stream (eof). */
static int answer_done(conn *c, int eof) {
    char *end = memmem(c->resp, c->resp_len, "\r\n\r\n", 4);
    if (!end) return eof ? -1 : 0;
    size_t hlen = (size_t)(end - c->resp) + 4;
    c->resp[c->resp_len < sizeof c->resp ? c->resp_len : sizeof c->resp - 1] = 0;
    if (sscanf(c->resp, "HTTP/1.%*d %d", &c->status) != 1) return -1;
    for (char *p = c->resp; p && p < end; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
        if (!strncasecmp(p, "content-length:", 15)) return c->resp_len >= hlen + strtoull(p + 15, NULL, 10) ? 1 : 0;
        if (!strncasecmp(p, "transfer-encoding:", 18)) return memmem(end, c->resp_len - (hlen - 4), "\r\n0\r\n\r\n", 7) || eof ? 1 : 0;
    }
    return eof ? 1 : 0;
}

static const char *answer_body(conn *c) {
    char *end = strstr(c->resp, "\r\n\r\n");
    return end ? end + 4 : "";
}

/* The N of "bytes": N in the answer's JSON body, or UINT64_MAX. */
static uint64_t answer_bytes(conn *c) {
    const char *p = strstr(answer_body(c), "\"bytes\"");
    if (!p) return UINT64_MAX;
    p += 7;
    while (*p == ' ' || *p == '\t') p++;
    if (*p++ != ':') return UINT64_MAX;
    while (*p == ' ' || *p == '\t') p++;
    if (*p < '0' || *p > '9') return UINT64_MAX;
    return strtoull(p, NULL, 10);
}

static void usage(void) {
    fprintf(stderr, "usage: upload_client -b TOTAL_BYTES [-c CONNS] [-m MIN_S] [-p PATH] [-t TIMEOUT_S] [-a] HOST PORT\n"
                    "       upload_client -b BYTES -D\n");
    exit(2);
}

/* One pass: every connection connects, sends its body, reads its answer.
 * Adds to *sent and the per-connection times; returns the failed connections. */
static int run_pass(const struct sockaddr_in *sa, const char *host, const char *port, const char *path, int nconns,
                    uint64_t total, uint64_t deadline, uint64_t *sent, double *cmin, double *cmax) {
    int ep = epoll_create1(0);
    uint64_t t0 = now_ns();
    int left = nconns, errors = 0;
    for (int i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        memset(c, 0, sizeof *c);
        c->body_len = total / (uint64_t)nconns + ((uint64_t)i < total % (uint64_t)nconns);
        c->head_len = (size_t)snprintf(c->head, sizeof c->head,
                                       "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/octet-stream\r\n"
                                       "Content-Length: %" PRIu64 "\r\n\r\n",
                                       path, host, port, c->body_len);
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (c->fd < 0 || (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) < 0 && errno != EINPROGRESS)) {
            perror("connect");
            exit(1);
        }
        struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    struct epoll_event evs[64];
    while (left > 0) {
        uint64_t now = now_ns();
        if (now >= deadline) {
            fprintf(stderr, "upload_client: timeout with %d connections unanswered\n", left);
            errors += left;
            break;
        }
        int n = epoll_wait(ep, evs, 64, (int)((deadline - now) / 1000000u) + 1);
        for (int k = 0; k < n; k++) {
            conn *c = &conns[evs[k].data.u32];
            if (c->state == 2) continue;
            int fail = 0;
            if (c->state == 0 && (evs[k].events & EPOLLOUT)) {
                struct iovec iov[2 * IOV_BLOCKS + 1];
                int ni = 0;
                if (c->head_off < c->head_len)
                    iov[ni].iov_base = c->head + c->head_off, iov[ni++].iov_len = c->head_len - c->head_off;
                ni += body_iov(c, iov + ni);
                ssize_t w = writev(c->fd, iov, ni);
                if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    if (errno != EPIPE && errno != ECONNRESET) perror("writev");
                    c->state = 1; /* an early answer may be there to read */
                    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[k].data.u32};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                } else if (w > 0) {
                    size_t hw = c->head_len - c->head_off;
                    if ((size_t)w <= hw) {
                        c->head_off += (size_t)w;
                    } else {
                        c->head_off = c->head_len;
                        c->body_off += (uint64_t)w - hw;
                    }
                    if (c->body_off == c->body_len) {
                        c->state = 1;
                        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[k].data.u32};
                        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                    }
                }
            }
            if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                int eof = 0;
                for (;;) {
                    if (c->resp_len == sizeof c->resp - 1) break;
                    ssize_t r = read(c->fd, c->resp + c->resp_len, sizeof c->resp - 1 - c->resp_len);
                    if (r > 0) c->resp_len += (size_t)r;
                    else if (r == 0 || (errno != EAGAIN && errno != EINTR)) { eof = 1; break; }
                    else break;
                }
                int d = answer_done(c, eof || c->resp_len == sizeof c->resp - 1);
                if (d < 0) fail = 1;
                if (d != 0) {
                    c->t_done = now_ns();
                    c->ok = !fail && c->status == 200 && c->body_off == c->body_len && answer_bytes(c) == c->body_len;
                    if (!c->ok) errors++;
                    c->state = 2;
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    left--;
                }
            }
        }
    }
    for (int i = 0; i < nconns; i++) {
        *sent += conns[i].body_off;
        if (conns[i].state != 2) {
            close(conns[i].fd);
            continue;
        }
        double s = (double)(conns[i].t_done - t0) / 1e9;
        if (s < *cmin) *cmin = s;
        if (s > *cmax) *cmax = s;
    }
    close(ep);
    return errors;
}

int main(int argc, char **argv) {
    uint64_t total = 0;
    int nconns = 1, timeout_s = 120, show = 0, dump_only = 0, opt;
    double min_s = 0;
    const char *path = "/upload";
    while ((opt = getopt(argc, argv, "b:c:p:m:t:aD")) != -1) {
        switch (opt) {
        case 'b': total = strtoull(optarg, NULL, 10); break;
        case 'c': nconns = atoi(optarg); break;
        case 'p': path = optarg; break;
        case 'm': min_s = atof(optarg); break;
        case 't': timeout_s = atoi(optarg); break;
        case 'a': show = 1; break;
        case 'D': dump_only = 1; break;
        default: usage();
        }
    }
    fill_pattern();
    if (dump_only) return dump(total);
    if (optind + 2 != argc || !total || nconns < 1 || nconns > MAX_CONNS || (uint64_t)nconns > total) usage();
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[optind + 1]))};
    if (inet_pton(AF_INET, argv[optind], &sa.sin_addr) != 1) usage();

    uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)timeout_s * 1000000000ull, sent = 0, now;
    double cmin = 1e18, cmax = 0;
    int errors = 0, passes = 0;
    do {
        errors += run_pass(&sa, argv[optind], argv[optind + 1], path, nconns, total, deadline, &sent, &cmin, &cmax);
        passes++;
        now = now_ns();
    } while (!errors && now < deadline && (double)(now - t0) / 1e9 < min_s);
    double wall = (double)(now - t0) / 1e9;
    printf("conns=%d\npasses=%d\nbytes=%" PRIu64 "\nok=%d\nerrors=%d\nwall_s=%.4f\nmib_s=%.1f\nconn_min_s=%.4f\n"
           "conn_max_s=%.4f\nstatus=%d\n",
           nconns, passes, sent, passes * nconns - errors, errors, wall, wall > 0 ? (double)sent / 1048576.0 / wall : 0.0,
           cmin < 1e18 ? cmin : 0.0, cmax, conns[0].status);
    if (show) {
        const char *b = conns[0].state == 2 ? answer_body(&conns[0]) : "";
        printf("answer=%.*s\n", (int)strcspn(b, "\r\n"), b);
    }
    return errors ? 1 : 0;
}
