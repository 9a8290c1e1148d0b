/*
 * idle_conns — holds N idle keep-alive connections open against an HTTP
 * server and measures how long a fresh client waits meanwhile.
 *
 *   idle_conns [-n N] [-p PATH] [-t TRIES] [-H HOLD_S] [-F FAILS] HOST PORT
 *
 * 1. Measures a fresh connection's `GET PATH` (connect → full response →
 *    close) TRIES times with no idle connections: baseline.
 * 2. Opens N connections one after another and sends one `GET PATH` on each,
 *    reading the whole response, so every connection is a real keep-alive
 *    connection that the server has accepted and served, and is now idle.
 * 3. Measures the fresh connection again, TRIES times, while the N are held.
 * 4. Prints `ready` and holds the connections until a line (or EOF) arrives
 *    on stdin, or HOLD_S seconds pass: the caller reads the server's RSS then.
 * 5. Sends one more `GET PATH` on every held connection to count how many the
 *    server still serves (reused_ok), closes everything and prints `done`.
 *
 * Output is key=value lines on stdout (times in microseconds). It always
 * finishes by itself: sockets have send/receive timeouts (2 s for fresh
 * requests, 5 s while opening, 1 s for the reuse check), opening stops after
 * 60 s (or after FAILS failed connections in a row, when -F is given: a
 * thread-per-connection server that has run out of threads makes every
 * further one wait out the 5 s timeout) and the reuse check after 15 s.
 * Exit status: 0 when it ran (whatever the server did), 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in g_addr;
static char g_req[512];
static size_t g_req_len;

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void set_timeouts(int fd, int seconds) {
    struct timeval tv = {seconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Connects a blocking socket (SO_SNDTIMEO bounds connect() on Linux). */
static int open_conn(int timeout_s) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    set_timeouts(fd, timeout_s);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&g_addr, sizeof g_addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one response (headers + Content-Length body). Returns the status
 * code, or -1 on error / closed / timeout. */
static int read_response(int fd) {
    char buf[8192];
    size_t have = 0;
    for (;;) {
        if (have == sizeof buf) return -1;
        ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        have += (size_t)r;
        char *end = memmem(buf, have, "\r\n\r\n", 4);
        if (!end) continue;
        size_t head_len = (size_t)(end - buf) + 4;
        int status = 0;
        if (have < 12 || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) return -1;
        long clen = 0;
        /* Find Content-Length, case-insensitively, inside the head. */
        for (char *line = memchr(buf, '\n', head_len); line && line < end; line = memchr(line + 1, '\n', (size_t)(end - line))) {
            if (strncasecmp(line + 1, "content-length:", 15) == 0) {
                clen = strtol(line + 16, NULL, 10);
                break;
            }
        }
        size_t want = head_len + (size_t)clen;
        while (have < want) {
            char sink[8192];
            size_t room = want - have < sizeof sink ? want - have : sizeof sink;
            r = recv(fd, sink, room, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return -1;
            have += (size_t)r;
        }
        return status;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One fresh client: connect, GET, read, close. Returns microseconds, or -1. */
static double fresh_request_us(void) {
    double t0 = now_us();
    int fd = open_conn(2);
    if (fd < 0) return -1;
    int st = -1;
    if (send_all(fd, g_req, g_req_len) == 0) st = read_response(fd);
    double t1 = now_us();
    close(fd);
    return st >= 200 && st < 300 ? t1 - t0 : -1;
}

static void measure_fresh(const char *prefix, int tries) {
    double *v = calloc((size_t)tries, sizeof *v);
    int ok = 0, failed = 0;
    for (int i = 0; i < tries; i++) {
        double us = fresh_request_us();
        if (us < 0) failed++;
        else v[ok++] = us;
        usleep(2000);
    }
    if (ok > 0) {
        qsort(v, (size_t)ok, sizeof *v, cmp_double);
        printf("%s_us_median=%.0f\n%s_us_min=%.0f\n%s_us_max=%.0f\n", prefix, v[ok / 2], prefix, v[0],
               prefix, v[ok - 1]);
    } else {
        printf("%s_us_median=NA\n", prefix);
    }
    printf("%s_failed=%d\n", prefix, failed);
    fflush(stdout);
    free(v);
}

static void usage(void) {
    fprintf(stderr, "usage: idle_conns [-n N] [-p PATH] [-t TRIES] [-H HOLD_S] HOST PORT\n");
    exit(2);
}

int main(int argc, char **argv) {
    int n = 5000, tries = 21, hold_s = 120, max_fails = 0, fails_in_row = 0;
    const char *path = "/ping";
    int opt;
    while ((opt = getopt(argc, argv, "n:p:t:H:F:")) != -1) {
        switch (opt) {
        case 'n': n = atoi(optarg); break;
        case 'p': path = optarg; break;
        case 't': tries = atoi(optarg); break;
        case 'H': hold_s = atoi(optarg); break;
        case 'F': max_fails = atoi(optarg); break;
        default: usage();
        }
    }
    if (argc - optind != 2 || n < 0 || tries < 1 || hold_s < 1) usage();
    const char *host = argv[optind];
    int port = atoi(argv[optind + 1]);

    memset(&g_addr, 0, sizeof g_addr);
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &g_addr.sin_addr) != 1) usage();
    g_req_len = (size_t)snprintf(g_req, sizeof g_req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", path,
                                 host, port);

    /* Raise the descriptor limit as far as the hard limit allows. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("nofile=%llu\n", (unsigned long long)rl.rlim_cur);
    if ((rlim_t)n + 64 > rl.rlim_cur) {
        n = (int)rl.rlim_cur - 64;
        printf("warning=conns_capped_by_nofile\n");
    }

    measure_fresh("baseline_fresh", tries);

    int *fds = calloc((size_t)(n > 0 ? n : 1), sizeof *fds);
    int opened = 0, connect_failed = 0, request_failed = 0;
    double t0 = now_us();
    double open_deadline = t0 + 60e6;
    int skipped = 0;
    for (int i = 0; i < n; i++) {
        if (now_us() > open_deadline || (max_fails > 0 && fails_in_row >= max_fails)) {
            skipped = n - i; /* a server that stalls must not stall us */
            break;
        }
        int fd = open_conn(5);
        if (fd < 0) {
            connect_failed++, fails_in_row++;
            continue;
        }
        int st = send_all(fd, g_req, g_req_len) == 0 ? read_response(fd) : -1;
        if (st < 200 || st >= 300) {
            request_failed++, fails_in_row++;
            close(fd);
            continue;
        }
        fds[opened++] = fd, fails_in_row = 0;
    }
    printf("requested=%d\nopened=%d\nconnect_failed=%d\nrequest_failed=%d\nskipped_after_deadline=%d\n"
           "open_seconds=%.3f\n",
           n, opened, connect_failed, request_failed, skipped, (now_us() - t0) / 1e6);
    fflush(stdout);

    /* Let the server settle its per-connection state before measuring. */
    usleep(200000);
    measure_fresh("fresh", tries);

    printf("ready\n");
    fflush(stdout);
    struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
    int pr = poll(&pfd, 1, hold_s * 1000);
    printf("released_by=%s\n", pr > 0 ? "stdin" : pr == 0 ? "hold_timeout" : "poll_error");

    /* Held connections the server closed meanwhile read as EOF here. */
    int reused_ok = 0;
    double reuse_deadline = now_us() + 15e6;
    for (int i = 0; i < opened; i++) {
        if (now_us() > reuse_deadline) break;
        set_timeouts(fds[i], 1);
        int st = send_all(fds[i], g_req, g_req_len) == 0 ? read_response(fds[i]) : -1;
        if (st >= 200 && st < 300) reused_ok++;
    }
    printf("reused_ok=%d\n", reused_ok);
    for (int i = 0; i < opened; i++) close(fds[i]);
    free(fds);
    printf("done\n");
    return 0;
}
