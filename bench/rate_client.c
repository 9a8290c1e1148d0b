/* rate_client — a constant-rate (open-loop) HTTP/1.1 load client for bench/run,
 * in the manner of wrk2: N keep-alive connections share a fixed total rate; the
 * k-th request of the run is *intended* at start + k / rate, and its latency is
 * measured from that intended time, not from when it was actually written. A
 * server that stalls therefore gets every request it delayed counted as late
 * (no coordinated omission), as a real client population would see it.
 *
 *   rate_client -r RATE -d SECONDS [-w WARMUP_S] [-c CONNS] [-p PATH] HOST PORT
 *
 * Prints key=value lines: target_rate, achieved_rate, sent, completed, errors,
 * late_starts, p50_us, p90_us, p99_us, p999_us, max_us, mean_us. Only requests
 * intended after the warmup are recorded. One request in flight per connection
 * (no pipelining); a connection whose previous answer is still pending sends
 * its next request as soon as that answer arrives, with the intended time kept.
 * Bounded: stops at WARMUP + SECONDS + 5 s whatever happens. Responses must
 * carry Content-Length (every server of the bench does). Plain C, Linux only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* Log-bucket histogram: values below 2^SUB_BITS µs exactly; above, 2^(SUB_BITS-1)
 * buckets per power of two (a bucket spans under 0.8 % of its value), up to 2^40 µs. */
#define SUB_BITS 8
#define SUB (1u << SUB_BITS)
#define NBUCKETS ((40 - SUB_BITS + 2) * SUB)
static uint64_t hist[NBUCKETS];
static uint64_t recorded, max_us, sum_us;

static unsigned bucket_of(uint64_t v) {
    if (v < SUB) return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* v in [2^e, 2^(e+1)), e >= SUB_BITS */
    unsigned shift = e - SUB_BITS + 1;               /* v >> shift in [SUB/2, SUB) */
    unsigned idx = shift * SUB + (unsigned)(v >> shift);
    return idx < NBUCKETS ? idx : NBUCKETS - 1;
}
static uint64_t value_of(unsigned idx) { /* the largest value of the bucket */
    if (idx < SUB) return idx;
    unsigned shift = idx / SUB, sub = idx % SUB;
    return ((uint64_t)sub << shift) + ((1ull << shift) - 1);
}
static void record(uint64_t us) {
    hist[bucket_of(us)]++, recorded++, sum_us += us;
    if (us > max_us) max_us = us;
}
static uint64_t percentile(double p) {
    if (!recorded) return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)recorded + 0.5), seen = 0;
    if (want < 1) want = 1;
    for (unsigned i = 0; i < NBUCKETS; i++)
        if ((seen += hist[i]) >= want) return value_of(i) < max_us ? value_of(i) : max_us;
    return max_us;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct {
    int fd;
    int busy;           /* a request is in flight */
    uint64_t intended;  /* intended send time of the request in flight (ns) */
    uint64_t next;      /* intended time of this connection's next request (ns) */
    char buf[65536];
    size_t len;
} conn;

static struct sockaddr_in addr;
static char request[1024];
static size_t request_len;
static int ep;
static uint64_t sent, completed, errors, late_starts, warm_end, start, last_done;

static int open_conn(conn *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(c->fd), c->fd = -1;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->len = 0, c->busy = 0;
    return 0;
}

static void reopen(conn *c) {
    if (c->fd >= 0) epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL), close(c->fd);
    c->fd = -1;
    if (open_conn(c) < 0) errors++;
}

static void send_req(conn *c, uint64_t now) {
    if (c->fd < 0 && open_conn(c) < 0) { /* count the intended request as an error */
        errors++;
        return;
    }
    if (now > c->next + 1000000) late_starts++; /* written > 1 ms after its intended time */
    ssize_t n = write(c->fd, request, request_len);
    if (n != (ssize_t)request_len) {
        errors++;
        reopen(c);
        return;
    }
    c->busy = 1, c->intended = c->next, sent++;
}

/* 1 when a whole response is in c->buf (and consumed), 0 when more is needed, -1 on a bad one. */
static int parse_response(conn *c, int *keep) {
    c->buf[c->len < sizeof c->buf ? c->len : sizeof c->buf - 1] = 0;
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) return c->len >= sizeof c->buf - 1 ? -1 : 0;
    size_t head = (size_t)(end - c->buf) + 4;
    long clen = -1;
    *keep = 1;
    for (char *line = strstr(c->buf, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        char *l = line + 2;
        if (!strncasecmp(l, "content-length:", 15)) clen = strtol(l + 15, NULL, 10);
        else if (!strncasecmp(l, "connection:", 11) && strcasestr(l, "close") && strcasestr(l, "close") < strstr(l, "\r\n"))
            *keep = 0;
    }
    if (clen < 0) return -1;
    if (c->len < head + (size_t)clen) return 0;
    int ok = !strncmp(c->buf, "HTTP/1.1 2", 10) || !strncmp(c->buf, "HTTP/1.0 2", 10);
    memmove(c->buf, c->buf + head + clen, c->len - head - (size_t)clen);
    c->len -= head + (size_t)clen;
    return ok ? 1 : -1;
}

int main(int argc, char **argv) {
    double rate = 1000, secs = 5, warm = 1;
    int nconns = 16, opt;
    const char *path = "/hello/x";
    while ((opt = getopt(argc, argv, "r:d:w:c:p:")) != -1) {
        switch (opt) {
        case 'r': rate = atof(optarg); break;
        case 'd': secs = atof(optarg); break;
        case 'w': warm = atof(optarg); break;
        case 'c': nconns = atoi(optarg); break;
        case 'p': path = optarg; break;
        default: goto usage;
        }
    }
    if (argc - optind != 2 || rate <= 0 || secs <= 0 || warm < 0 || nconns < 1 || nconns > 4096) {
    usage:
        fprintf(stderr, "usage: rate_client -r RATE -d SECONDS [-w WARMUP_S] [-c CONNS] [-p PATH] HOST PORT\n");
        return 2;
    }
    addr.sin_family = AF_INET, addr.sin_port = htons((uint16_t)atoi(argv[optind + 1]));
    if (inet_pton(AF_INET, argv[optind], &addr.sin_addr) != 1) goto usage;
    request_len = (size_t)snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s:%s\r\n\r\n", path,
                                   argv[optind], argv[optind + 1]);
    ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

    conn *conns = calloc((size_t)nconns, sizeof *conns);
    uint64_t interval = (uint64_t)(1e9 * nconns / rate); /* per connection */
    start = now_ns() + 20000000ull;                       /* connect first, then start the clock */
    for (int i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        if (open_conn(&conns[i]) < 0) {
            fprintf(stderr, "rate_client: cannot connect: %s\n", strerror(errno));
            return 1;
        }
        conns[i].next = start + (uint64_t)(1e9 * i / rate); /* staggered: the total is evenly spaced */
    }
    warm_end = start + (uint64_t)(warm * 1e9);
    uint64_t stop_sending = warm_end + (uint64_t)(secs * 1e9);
    uint64_t deadline = stop_sending + 5000000000ull;
    uint64_t measured_sent = 0, measured_done = 0;
    struct epoll_event evs[256];

    for (;;) {
        uint64_t now = now_ns(), earliest = UINT64_MAX;
        int pending = 0;
        for (int i = 0; i < nconns; i++) {
            conn *c = &conns[i];
            if (!c->busy && c->next < stop_sending && c->next <= now) {
                send_req(c, now);
                if (c->busy && c->intended >= warm_end) measured_sent++;
                if (!c->busy) c->next += interval; /* failed: move on, it was counted */
            }
            if (c->busy) pending = 1;
            else if (c->next < stop_sending && c->next < earliest) earliest = c->next;
        }
        if (!pending && earliest == UINT64_MAX) break; /* all sent and answered */
        if (now >= deadline) break;
        if (earliest != UINT64_MAX) {
            struct itimerspec its = {0};
            its.it_value.tv_sec = (time_t)(earliest / 1000000000ull);
            its.it_value.tv_nsec = (long)(earliest % 1000000000ull);
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
        int n = epoll_wait(ep, evs, 256, 100);
        now = now_ns();
        for (int k = 0; k < n; k++) {
            conn *c = evs[k].data.ptr;
            if (!c) { /* the timer */
                uint64_t x;
                (void)!read(tfd, &x, sizeof x);
                continue;
            }
            ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                if (c->busy) errors++, c->busy = 0, c->next += interval;
                reopen(c);
                continue;
            }
            c->len += (size_t)r;
            int keep = 1, got;
            while (c->busy && (got = parse_response(c, &keep)) != 0) {
                c->busy = 0;
                if (got < 0) {
                    errors++;
                    c->len = 0;
                } else {
                    completed++;
                    if (c->intended >= warm_end) record((now - c->intended) / 1000), measured_done++, last_done = now;
                }
                c->next += interval;
                if (!keep || got < 0) {
                    reopen(c);
                    break;
                }
            }
        }
    }
    /* Achieved rate over the time the measured requests really took: a server
     * that falls behind finishes after the sending window. */
    double measured_s = last_done > warm_end ? (double)(last_done - warm_end) / 1e9 : secs;
    if (measured_s < secs) measured_s = secs;
    printf("target_rate=%.0f\nconnections=%d\nwarmup_s=%.1f\nduration_s=%.1f\n", rate, nconns, warm, secs);
    printf("achieved_rate=%.0f\nsent=%llu\ncompleted=%llu\nmeasured=%llu\nerrors=%llu\nlate_starts=%llu\n",
           (double)measured_done / measured_s, (unsigned long long)sent, (unsigned long long)completed,
           (unsigned long long)measured_done, (unsigned long long)errors, (unsigned long long)late_starts);
    (void)measured_sent;
    printf("p50_us=%llu\np90_us=%llu\np99_us=%llu\np999_us=%llu\nmax_us=%llu\nmean_us=%.0f\n",
           (unsigned long long)percentile(50), (unsigned long long)percentile(90),
           (unsigned long long)percentile(99), (unsigned long long)percentile(99.9), (unsigned long long)max_us,
           recorded ? (double)sum_us / (double)recorded : 0.0);
    return 0;
}
