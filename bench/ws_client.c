/* ws_client — the WebSocket load client of bench/run: pipelined echo, room
 * fan-out and idle connections, over RFC 6455 frames it writes itself (masked,
 * as a client must) and reads from the server (unmasked, 7/16/64-bit lengths,
 * fragments, ping answered with pong, close answered and initiated).
 *
 *   ws_client -u ws://HOST:PORT/PATH [-c CONNS] [-m INFLIGHT] [-s SIZE] [-d SECONDS]
 *             [-w WARMUP_S] [-t THREADS] [--fanout N | --sub N] [--pub-path PATH] [--idle N]
 *
 * echo (default): CONNS connections each keep INFLIGHT binary messages of SIZE
 *   bytes in flight: INFLIGHT are sent at the start, one more per echo. The
 *   first 8 bytes of a payload are its send time (CLOCK_MONOTONIC ns), the next
 *   8 its sequence number on the connection, the rest a fixed pattern shifted
 *   by the sequence number; every echo must come back in order, as a binary
 *   message, byte for byte (the send times are kept too: latency is the echo's
 *   arrival minus that time). Prints: mode conns inflight size threads
 *   duration_s msgs msg_per_s mib_s (payload bytes echoed, one direction)
 *   p50_us p90_us p99_us p999_us max_us errors.
 * fanout (--fanout N, or --sub N): N subscribers join the room of -u (e.g.
 *   ws://127.0.0.1:8080/ws/chat/bench) and one publisher (-u, or the same host
 *   with --pub-path) sends text messages as fast as it can with at most
 *   INFLIGHT of its own not yet come back (the room sends every message to every
 *   member, sender included, as {"room":…,"from":n,"text":…}). The text is
 *   the send time in decimal, zero-padded to SIZE digits. Every delivery to a
 *   subscriber is checked (JSON fields, digits, times never going back) and
 *   timed from its send. Prints: mode subs inflight size threads duration_s
 *   published pub_per_s delivered delivered_per_s p50_us … max_us errors.
 * idle (--idle N): N connections are opened and held -d seconds doing nothing
 *   but answering pings; "ws_client: N open" goes to stderr when they all are
 *   (the caller reads the server's RSS then). Prints: mode opened held (still
 *   open at the end) seconds errors.
 *
 * Only what arrives between WARMUP_S and WARMUP_S + SECONDS after every
 * connection's handshake is counted; then each connection sends a close frame
 * and waits up to 1 s for the server's. Handshakes: at most 128 at once per
 * thread, 10 s in all; the status line must be 101 (Sec-WebSocket-Accept is not
 * checked). Exit status: 0 when every handshake succeeded and nothing was wrong
 * (errors=0), 1 otherwise (a message on stderr), 2 on bad usage. Bounded: an
 * alarm ends the process at 10 s + WARMUP_S + SECONDS + 15 s whatever happens.
 * Connections are spread over THREADS threads (default 1), one epoll loop each.
 * ws:// only (no TLS), no extensions. Plain C, Linux only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_MSG (64u << 20)     /* largest message accepted from the server */
#define MAX_SIZE (16u << 20)    /* largest -s */
#define HS_PARALLEL 128         /* handshakes in progress at once, per thread */
#define HS_TIMEOUT_NS 10000000000ull
#define CLOSE_GRACE_NS 1000000000ull
#define READ_CHUNK 65536

enum { M_ECHO, M_FANOUT, M_IDLE };
enum { R_ECHO, R_SUB, R_PUB, R_IDLE };
enum { S_NEW, S_CONNECTING, S_HANDSHAKE, S_OPEN, S_CLOSING, S_DONE };

/* Log-bucket histogram (as rate_client's): values below 2^SUB_BITS µs exactly;
 * above, 2^(SUB_BITS-1) buckets per power of two (under 0.8 % wide), up to 2^40 µs. */
#define SUB_BITS 8
#define SUB (1u << SUB_BITS)
#define NBUCKETS ((40 - SUB_BITS + 2) * SUB)
typedef struct {
    uint64_t b[NBUCKETS];
    uint64_t n, max;
} hist;

static unsigned bucket_of(uint64_t v) {
    if (v < SUB) return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = e - SUB_BITS + 1;
    unsigned idx = shift * SUB + (unsigned)(v >> shift);
    return idx < NBUCKETS ? idx : NBUCKETS - 1;
}
static uint64_t value_of(unsigned idx) { /* the largest value of the bucket */
    if (idx < SUB) return idx;
    unsigned shift = idx / SUB, sub = idx % SUB;
    return ((uint64_t)sub << shift) + ((1ull << shift) - 1);
}
static void record(hist *h, uint64_t ns) {
    uint64_t us = ns / 1000;
    h->b[bucket_of(us)]++, h->n++;
    if (us > h->max) h->max = us;
}
static uint64_t percentile(const hist *h, double p) {
    if (!h->n) return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)h->n + 0.5), seen = 0;
    if (want < 1) want = 1;
    for (unsigned i = 0; i < NBUCKETS; i++)
        if ((seen += h->b[i]) >= want) return value_of(i) < h->max ? value_of(i) : h->max;
    return h->max;
}

typedef struct {
    uint8_t *p;
    size_t off, len, cap; /* bytes [off, len) are pending */
} buf;

typedef struct {
    int fd, id, role, state, want_out;
    buf rb, wb;
    size_t need;        /* bytes the frame at rb.off needs in all (0: unknown) */
    buf msg;            /* a fragmented message being put together */
    int msg_op;         /* its opcode; 0: none */
    uint64_t sent, got; /* messages sent and come back (echo, publisher) */
    uint64_t *ring;     /* send times of the INFLIGHT last messages */
    uint64_t last_ts;   /* subscriber: the latest send time delivered */
    long from;          /* publisher: its member number, as the room says */
    uint64_t rng;
    uint64_t t_start;   /* when the handshake began */
} conn;

typedef struct {
    int id, ep, n, next, hs_busy, live;
    conn *c;
    hist h;
    uint64_t msgs, published, errors, hs_failed, opened, held;
    pthread_t th;
} worker;

static struct {
    int mode, conns, inflight, threads;
    size_t size;
    double duration, warmup;
    char host[256], port[16], path[1024], pub_path[1024];
} o = {.mode = M_ECHO, .conns = 64, .inflight = 8, .threads = 1, .size = 32, .duration = 5, .warmup = 1};

static struct sockaddr_storage addr;
static socklen_t addrlen;
static uint8_t *pattern; /* SIZE + 256 bytes: the body of echo message k is pattern + (k & 255) */
static pthread_barrier_t barrier;
static uint64_t t0, t_meas, t_end; /* set once every handshake is done */
static int hs_failed_all;
static int reports; /* error messages printed so far (the first 10 are) */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void report(const char *fmt, ...) {
    if (__atomic_fetch_add(&reports, 1, __ATOMIC_RELAXED) >= 10) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("ws_client: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static uint64_t rnd(conn *c) {
    uint64_t x = c->rng;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return c->rng = x;
}

static void reserve(buf *b, size_t n) { /* room for n more bytes after len */
    if (b->cap - b->len >= n) return;
    if (b->off) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off, b->off = 0;
        if (b->cap - b->len >= n) return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) cap *= 2;
    if (!(b->p = realloc(b->p, cap))) {
        fputs("ws_client: out of memory\n", stderr);
        exit(1);
    }
    b->cap = cap;
}

/* A client frame (FIN set, masked) of LEN payload bytes in c->wb: returns where
 * the payload goes; the caller writes it, then calls mask_frame(). */
static uint8_t *frame_begin(conn *c, int op, size_t len, uint8_t **key) {
    reserve(&c->wb, len + 14);
    uint8_t *h = c->wb.p + c->wb.len;
    size_t hl;
    h[0] = (uint8_t)(0x80 | op);
    if (len < 126) {
        h[1] = (uint8_t)(0x80 | len), hl = 2;
    } else if (len < 65536) {
        h[1] = 0x80 | 126, h[2] = (uint8_t)(len >> 8), h[3] = (uint8_t)len, hl = 4;
    } else {
        h[1] = 0x80 | 127, hl = 10;
        for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    uint32_t k = (uint32_t)(rnd(c) >> 16);
    memcpy(h + hl, &k, 4);
    *key = h + hl;
    c->wb.len += hl + 4 + len;
    return h + hl + 4;
}

static void mask_frame(uint8_t *p, size_t len, const uint8_t *key) {
    uint8_t k8[8];
    memcpy(k8, key, 4), memcpy(k8 + 4, key, 4);
    uint64_t k;
    memcpy(&k, k8, 8);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= k;
        memcpy(p + i, &v, 8);
    }
    for (; i < len; i++) p[i] ^= key[i & 3];
}

static void send_control(conn *c, int op, const uint8_t *data, size_t len) {
    uint8_t *key, *p = frame_begin(c, op, len, &key);
    memcpy(p, data, len);
    mask_frame(p, len, key);
}

static void send_echo(conn *c, uint64_t now) {
    uint64_t seq = c->sent++;
    c->ring[seq % (uint64_t)o.inflight] = now;
    uint8_t hdr[16], *key, *p = frame_begin(c, 2, o.size, &key);
    memcpy(hdr, &now, 8), memcpy(hdr + 8, &seq, 8);
    size_t h = o.size < 16 ? o.size : 16;
    memcpy(p, hdr, h);
    if (o.size > 16) memcpy(p + 16, pattern + (seq & 255) + 16, o.size - 16);
    mask_frame(p, o.size, key);
}

static void send_publish(conn *c, uint64_t now) {
    char text[64];
    int w = o.size < 40 ? (int)o.size : 40, n = snprintf(text, sizeof text, "%0*" PRIu64, w, now);
    size_t len = o.size > (size_t)n ? o.size : (size_t)n;
    c->ring[c->sent++ % (uint64_t)o.inflight] = now;
    uint8_t *key, *p = frame_begin(c, 1, len, &key);
    memset(p, '0', len - (size_t)n);
    memcpy(p + len - (size_t)n, text, (size_t)n);
    mask_frame(p, len, key);
}

static void set_out(worker *w, conn *c, int want) {
    if (want == c->want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
}

static void drop(worker *w, conn *c) {
    if (c->state == S_DONE || c->state == S_NEW) return;
    if (c->state == S_OPEN || c->state == S_CLOSING) w->live--;
    if (c->state == S_CONNECTING || c->state == S_HANDSHAKE) w->hs_busy--;
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = S_DONE;
    free(c->rb.p), free(c->wb.p), free(c->msg.p);
    c->rb = c->wb = c->msg = (buf){0};
}

static void fail(worker *w, conn *c, const char *fmt, ...) {
    char m[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    int hs = c->state == S_CONNECTING || c->state == S_HANDSHAKE || c->state == S_NEW;
    report("connection %d: %s", c->id, m);
    if (hs) w->hs_failed++;
    else w->errors++;
    drop(w, c);
}

static int flush(worker *w, conn *c) {
    while (c->wb.off < c->wb.len) {
        ssize_t r = write(c->fd, c->wb.p + c->wb.off, c->wb.len - c->wb.off);
        if (r > 0) c->wb.off += (size_t)r;
        else if (r < 0 && errno == EINTR) continue;
        else if (r < 0 && errno == EAGAIN) break;
        else {
            if (c->state == S_CLOSING) drop(w, c);
            else fail(w, c, "write: %s", strerror(errno));
            return -1;
        }
    }
    if (c->wb.off == c->wb.len) c->wb.off = c->wb.len = 0;
    set_out(w, c, c->wb.len > 0);
    return 0;
}

static void start_close(conn *c) {
    static const uint8_t code[2] = {0x03, 0xe8}; /* 1000 */
    send_control(c, 8, code, 2);
    c->state = S_CLOSING;
}

/* Where the value of "key" starts in a JSON object (after the colon), or NULL. */
static const char *json_value(const uint8_t *p, size_t len, const char *key) {
    const uint8_t *e = p + len, *k = memmem(p, len, key, strlen(key));
    if (!k) return NULL;
    k += strlen(key);
    while (k < e && (*k == ' ' || *k == '\t' || *k == '\n' || *k == '\r')) k++;
    if (k == e || *k++ != ':') return NULL;
    while (k < e && (*k == ' ' || *k == '\t' || *k == '\n' || *k == '\r')) k++;
    return k < e ? (const char *)k : NULL;
}

/* A room message {"room":…,"from":n,"text":"<digits>"}: its send time and member
 * number, or -1 when it is not one of ours. */
static int parse_room(const uint8_t *p, size_t len, uint64_t *ts, long *from) {
    const uint8_t *e = p + len;
    const char *v = json_value(p, len, "\"room\"");
    if (!v) return -1;
    if (!(v = json_value(p, len, "\"from\"")) || *v < '0' || *v > '9') return -1;
    *from = strtol(v, NULL, 10);
    if (!(v = json_value(p, len, "\"text\"")) || *v != '"') return -1;
    const uint8_t *d = (const uint8_t *)v + 1, *q = d;
    uint64_t t = 0;
    while (q < e && *q >= '0' && *q <= '9') t = t * 10 + (uint64_t)(*q++ - '0');
    if (q == e || *q != '"' || q == d) return -1;
    size_t digits = (size_t)(q - d);
    char tmp[32];
    size_t n = (size_t)snprintf(tmp, sizeof tmp, "%" PRIu64, t);
    if (digits != (o.size > n ? o.size : n)) return -1;
    *ts = t;
    return 0;
}

static int in_window(uint64_t now) { return now >= t_meas && now < t_end; }

/* A whole message from the server; returns -1 when the connection was dropped. */
static int on_message(worker *w, conn *c, int op, const uint8_t *p, size_t len, uint64_t now) {
    switch (c->role) {
    case R_ECHO: {
        if (c->got == c->sent) return fail(w, c, "a message came back that was never sent"), -1;
        uint64_t seq = c->got, ts = c->ring[seq % (uint64_t)o.inflight];
        uint8_t hdr[16];
        memcpy(hdr, &ts, 8), memcpy(hdr + 8, &seq, 8);
        size_t h = o.size < 16 ? o.size : 16;
        if (op != 2 || len != o.size || memcmp(p, hdr, h) ||
            (len > 16 && memcmp(p + 16, pattern + (seq & 255) + 16, len - 16)))
            return fail(w, c, "echo %" PRIu64 " differs from what was sent (opcode %d, %zu bytes, sent %zu)", seq, op,
                        len, o.size),
                   -1;
        c->got++;
        if (in_window(now)) w->msgs++, record(&w->h, now - ts);
        if (c->state == S_OPEN && now < t_end) send_echo(c, now);
        return 0;
    }
    case R_SUB:
    case R_PUB: {
        uint64_t ts;
        long from;
        if (op != 1 || parse_room(p, len, &ts, &from) < 0)
            return fail(w, c, "not a room message of ours: %.*s", (int)(len < 120 ? len : 120), (const char *)p), -1;
        if (c->role == R_SUB) {
            if (ts < c->last_ts || ts > now) return fail(w, c, "message time out of order"), -1;
            c->last_ts = ts;
            if (in_window(now)) w->msgs++, record(&w->h, now - ts);
            return 0;
        }
        if (c->got == c->sent || ts != c->ring[c->got % (uint64_t)o.inflight])
            return fail(w, c, "the publisher's own message %" PRIu64 " did not come back in order", c->got), -1;
        if (!c->got) c->from = from;
        else if (from != c->from) return fail(w, c, "the publisher's member number changed"), -1;
        c->got++;
        if (in_window(now)) w->published++;
        if (c->state == S_OPEN && now < t_end) send_publish(c, now);
        return 0;
    }
    default: return 0;
    }
}

static int on_control(worker *w, conn *c, int op, const uint8_t *p, size_t len) {
    if (op == 9) { /* ping */
        if (c->state == S_OPEN) send_control(c, 10, p, len);
        return 0;
    }
    if (op == 10) return 0; /* pong */
    /* close */
    if (c->state == S_CLOSING) return drop(w, c), -1;
    unsigned code = len >= 2 ? (unsigned)p[0] << 8 | p[1] : 1005;
    if (len >= 2) send_control(c, 8, p, 2);
    else send_control(c, 8, NULL, 0);
    flush(w, c);
    if (c->state == S_DONE) return -1;
    return fail(w, c, "the server closed the connection (code %u %.*s)", code, (int)(len > 2 ? len - 2 : 0),
                (const char *)p + 2),
           -1;
}

/* Every whole frame in c->rb; returns -1 when the connection was dropped. */
static int on_frames(worker *w, conn *c, uint64_t now) {
    for (;;) {
        uint8_t *p = c->rb.p + c->rb.off;
        size_t avail = c->rb.len - c->rb.off, hl = 2;
        if (avail < 2) break;
        int fin = p[0] & 0x80, op = p[0] & 0x0f;
        uint64_t len = p[1] & 0x7f;
        if (len == 126) {
            if (avail < 4) break;
            len = (uint64_t)p[2] << 8 | p[3], hl = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0, hl = 10;
            for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
        }
        if (p[0] & 0x70) return fail(w, c, "frame with RSV bits set"), -1;
        if (p[1] & 0x80) return fail(w, c, "masked frame from the server"), -1;
        if (len > MAX_MSG) return fail(w, c, "frame of %" PRIu64 " bytes", len), -1;
        if (avail < hl + len) {
            c->need = hl + (size_t)len;
            break;
        }
        c->need = 0;
        const uint8_t *pl = p + hl;
        c->rb.off += hl + (size_t)len;
        if (op >= 8) {
            if (!fin || len > 125 || (op != 8 && op != 9 && op != 10))
                return fail(w, c, "bad control frame (opcode %d)", op), -1;
            if (on_control(w, c, op, pl, (size_t)len) < 0) return -1;
        } else if (op == 0) {
            if (!c->msg_op) return fail(w, c, "continuation frame without a message"), -1;
            if (c->msg.len + len > MAX_MSG) return fail(w, c, "message over %u bytes", MAX_MSG), -1;
            reserve(&c->msg, (size_t)len);
            memcpy(c->msg.p + c->msg.len, pl, (size_t)len), c->msg.len += (size_t)len;
            if (fin) {
                int mop = c->msg_op;
                c->msg_op = 0;
                if (on_message(w, c, mop, c->msg.p, c->msg.len, now) < 0) return -1;
                c->msg.len = 0;
            }
        } else if (op == 1 || op == 2) {
            if (c->msg_op) return fail(w, c, "new message inside a fragmented one"), -1;
            if (fin) {
                if (on_message(w, c, op, pl, (size_t)len, now) < 0) return -1;
            } else {
                c->msg_op = op, c->msg.len = 0;
                reserve(&c->msg, (size_t)len);
                memcpy(c->msg.p, pl, (size_t)len), c->msg.len = (size_t)len;
            }
        } else {
            return fail(w, c, "unknown opcode %d", op), -1;
        }
    }
    if (c->rb.off == c->rb.len) c->rb.off = c->rb.len = 0;
    return 0;
}

static int on_handshake(worker *w, conn *c) {
    uint8_t *p = c->rb.p + c->rb.off;
    size_t avail = c->rb.len - c->rb.off;
    uint8_t *e = memmem(p, avail, "\r\n\r\n", 4);
    if (!e) {
        if (avail > 16384) return fail(w, c, "handshake answer over 16 KiB"), -1;
        return 1;
    }
    if (avail < 12 || memcmp(p, "HTTP/1.1 101", 12)) {
        size_t l = 0;
        while (l < avail && p[l] != '\r' && l < 120) l++;
        return fail(w, c, "handshake refused: %.*s (GET %s)", (int)l, (const char *)p,
                    c->role == R_PUB ? o.pub_path : o.path),
               -1;
    }
    c->rb.off += (size_t)(e + 4 - p);
    c->state = S_OPEN;
    w->hs_busy--, w->live++, w->opened++;
    return 0;
}

static void on_read(worker *w, conn *c) {
    for (int k = 0; k < 16; k++) {
        size_t want = READ_CHUNK;
        if (c->need > c->rb.len - c->rb.off && c->need - (c->rb.len - c->rb.off) > want)
            want = c->need - (c->rb.len - c->rb.off);
        reserve(&c->rb, want);
        size_t room = c->rb.cap - c->rb.len;
        ssize_t r = read(c->fd, c->rb.p + c->rb.len, room);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            if (c->state == S_CLOSING) drop(w, c);
            else if (c->state == S_HANDSHAKE) fail(w, c, "connection closed during the handshake");
            else fail(w, c, "connection closed by the server%s%s", r ? ": " : "", r ? strerror(errno) : "");
            return;
        }
        if (r < 0) {
            if (errno == EINTR) continue;
            return;
        }
        c->rb.len += (size_t)r;
        uint64_t now = now_ns();
        if (c->state == S_HANDSHAKE) {
            int h = on_handshake(w, c);
            if (h < 0) return;
            if (h > 0) continue;
        }
        if (on_frames(w, c, now) < 0) return;
        if ((size_t)r < room) return;
    }
}

static void on_event(worker *w, conn *c, uint32_t ev) {
    if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            fail(w, c, "connect: %s", strerror(err));
            return;
        }
        if (!(ev & EPOLLOUT)) return;
        c->state = S_HANDSHAKE;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        on_read(w, c);
        if (c->state == S_DONE) return;
    }
    if (c->wb.len) flush(w, c);
}

static void start_connect(worker *w, conn *c) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t k[18] = {0};
    char key[25];
    for (int i = 0; i < 16; i++) k[i] = (uint8_t)rnd(c);
    for (int i = 0, j = 0; i < 18; i += 3) { /* 16 bytes: 5 whole groups, then 1 byte and "==" */
        uint32_t v = (uint32_t)k[i] << 16 | (uint32_t)k[i + 1] << 8 | k[i + 2];
        key[j++] = b64[v >> 18], key[j++] = b64[v >> 12 & 63], key[j++] = b64[v >> 6 & 63], key[j++] = b64[v & 63];
    }
    key[22] = key[23] = '=', key[24] = 0;
    int v6 = strchr(o.host, ':') != NULL;
    c->t_start = now_ns();
    c->state = S_CONNECTING;
    w->hs_busy++;
    reserve(&c->wb, 2048);
    c->wb.len = (size_t)snprintf((char *)c->wb.p, c->wb.cap,
                                 "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                                 c->role == R_PUB ? o.pub_path : o.path, v6 ? "[" : "", o.host, v6 ? "]" : "", o.port, key);
    c->fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        c->state = S_NEW, w->hs_busy--, w->hs_failed++;
        report("socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, addrlen) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(c->fd);
        c->state = S_NEW, w->hs_busy--, w->hs_failed++;
        report("connect: %s", strerror(e));
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->want_out = 1;
}

static void poll_once(worker *w, int timeout_ms) {
    struct epoll_event evs[256];
    int n = epoll_wait(w->ep, evs, 256, timeout_ms);
    for (int i = 0; i < n; i++) on_event(w, evs[i].data.ptr, evs[i].events);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    /* 1. Every handshake, HS_PARALLEL at a time. */
    uint64_t hs_deadline = now_ns() + HS_TIMEOUT_NS;
    for (;;) {
        while (w->next < w->n && w->hs_busy < HS_PARALLEL) start_connect(w, &w->c[w->next++]);
        if (w->next == w->n && !w->hs_busy) break;
        uint64_t now = now_ns();
        if (now >= hs_deadline) {
            for (int i = 0; i < w->n; i++)
                if (w->c[i].state == S_CONNECTING || w->c[i].state == S_HANDSHAKE)
                    fail(w, &w->c[i], "no handshake answer within %llu s", HS_TIMEOUT_NS / 1000000000ull);
            w->hs_failed += (uint64_t)(w->n - w->next);
            break;
        }
        poll_once(w, 100);
    }
    __atomic_fetch_add(&hs_failed_all, (int)w->hs_failed, __ATOMIC_RELAXED);
    if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD) {
        t0 = now_ns();
        t_meas = t0 + (uint64_t)(o.warmup * 1e9);
        t_end = t_meas + (uint64_t)(o.duration * 1e9);
        if (o.mode == M_IDLE) {
            t_meas = t0, t_end = t0 + (uint64_t)(o.duration * 1e9);
            fprintf(stderr, "ws_client: %d open, idle for %g s\n", o.conns - hs_failed_all, o.duration);
        } else if (hs_failed_all) {
            t_end = 0; /* nothing to measure: close at once */
        }
    }
    pthread_barrier_wait(&barrier);

    /* 2. The run: start the pipelines, then follow them until t_end. */
    uint64_t now = now_ns();
    for (int i = 0; i < w->n; i++) {
        conn *c = &w->c[i];
        if (c->state != S_OPEN || now >= t_end) continue;
        for (int k = 0; k < o.inflight && (c->role == R_ECHO || c->role == R_PUB); k++)
            c->role == R_ECHO ? send_echo(c, now) : send_publish(c, now);
        if (c->wb.len) flush(w, c);
    }
    while (w->live && (now = now_ns()) < t_end) {
        uint64_t left = (t_end - now) / 1000000u + 1;
        poll_once(w, left < 100 ? (int)left : 100);
    }
    w->held = (uint64_t)w->live;

    /* 3. Close: a close frame each, the server's answer or 1 s. */
    for (int i = 0; i < w->n; i++) {
        conn *c = &w->c[i];
        if (c->state != S_OPEN) continue;
        start_close(c);
        flush(w, c);
    }
    uint64_t grace = now_ns() + CLOSE_GRACE_NS;
    while (w->live && (now = now_ns()) < grace) poll_once(w, (int)((grace - now) / 1000000u) + 1);
    for (int i = 0; i < w->n; i++) drop(w, &w->c[i]);
    return NULL;
}

static void on_alarm(int sig) {
    (void)sig;
    static const char m[] = "ws_client: gave up (the run overran its time bound)\n";
    if (write(2, m, sizeof m - 1)) {}
    _exit(1);
}

static void usage(void) {
    fprintf(stderr,
            "usage: ws_client -u ws://HOST:PORT/PATH [-c CONNS] [-m INFLIGHT] [-s SIZE] [-d SECONDS] [-w WARMUP_S]\n"
            "                 [-t THREADS] [--fanout N | --sub N] [--pub-path PATH] [--idle N]\n");
    exit(2);
}

static int parse_url(const char *u) {
    if (strncmp(u, "ws://", 5)) return -1;
    u += 5;
    const char *slash = strchr(u, '/'), *hend = slash ? slash : u + strlen(u), *colon = NULL;
    snprintf(o.path, sizeof o.path, "%s", slash ? slash : "/");
    if (*u == '[') { /* [v6]:port */
        const char *rb = memchr(u, ']', (size_t)(hend - u));
        if (!rb) return -1;
        snprintf(o.host, sizeof o.host, "%.*s", (int)(rb - u - 1), u + 1);
        colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(u, ':', (size_t)(hend - u));
        snprintf(o.host, sizeof o.host, "%.*s", (int)((colon ? colon : hend) - u), u);
    }
    snprintf(o.port, sizeof o.port, "%.*s", colon ? (int)(hend - colon - 1) : 2, colon ? colon + 1 : "80");
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(o.host, o.port, &hints, &res)) return -1;
    memcpy(&addr, res->ai_addr, res->ai_addrlen);
    addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int main(int argc, char **argv) {
    static const struct option lo[] = {{"fanout", required_argument, 0, 'F'}, {"sub", required_argument, 0, 'F'},
                                       {"pub-path", required_argument, 0, 'P'}, {"idle", required_argument, 0, 'I'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *url = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "u:c:m:s:d:w:t:h", lo, NULL)) != -1) {
        switch (opt) {
        case 'u': url = optarg; break;
        case 'c': o.conns = atoi(optarg); break;
        case 'm': o.inflight = atoi(optarg); break;
        case 's': o.size = (size_t)strtoull(optarg, NULL, 10); break;
        case 'd': o.duration = atof(optarg); break;
        case 'w': o.warmup = atof(optarg); break;
        case 't': o.threads = atoi(optarg); break;
        case 'F': o.mode = M_FANOUT, o.conns = atoi(optarg); break;
        case 'I': o.mode = M_IDLE, o.conns = atoi(optarg); break;
        case 'P': snprintf(o.pub_path, sizeof o.pub_path, "%s", optarg); break;
        default: usage();
        }
    }
    if (!url || optind != argc || o.conns < 1 || o.inflight < 1 || o.size < 1 || o.size > MAX_SIZE ||
        o.duration <= 0 || o.duration > 3600 || o.warmup < 0 || o.warmup > 600 || o.threads < 1 || o.threads > 256)
        usage();
    if (parse_url(url) < 0) {
        fprintf(stderr, "ws_client: cannot use %s (ws://HOST[:PORT]/PATH, a host that resolves)\n", url);
        return 2;
    }
    if (!o.pub_path[0]) snprintf(o.pub_path, sizeof o.pub_path, "%s", o.path);
    if (o.mode == M_IDLE) o.warmup = 0;
    int total = o.conns + (o.mode == M_FANOUT);
    if (o.threads > total) o.threads = total;

    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)total + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)(HS_TIMEOUT_NS / 1000000000ull + o.warmup + o.duration + 15));

    pattern = malloc(o.size + 256);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < o.size + 256; i++) x ^= x << 13, x ^= x >> 7, x ^= x << 17, pattern[i] = (uint8_t)(x >> 24);

    worker *ws = calloc((size_t)o.threads, sizeof *ws);
    conn *cs = calloc((size_t)total, sizeof *cs);
    uint64_t *rings = calloc((size_t)total * (size_t)o.inflight, sizeof *rings);
    if (!pattern || !ws || !cs || !rings) return fputs("ws_client: out of memory\n", stderr), 1;
    /* The publisher is the last connection of thread 0; each thread's connections are contiguous. */
    for (int t = 0, first = 0; t < o.threads; t++) {
        worker *w = &ws[t];
        w->id = t, w->ep = epoll_create1(0), w->c = cs + first;
        w->n = o.conns / o.threads + (t < o.conns % o.threads) + (t == 0 && o.mode == M_FANOUT);
        first += w->n;
    }
    for (int t = 0, i = 0; t < o.threads; t++)
        for (int k = 0; k < ws[t].n; k++, i++) {
            conn *c = &cs[i];
            c->id = i, c->fd = -1, c->ring = rings + (size_t)i * (size_t)o.inflight;
            c->rng = 0x2545F4914F6CDD1Dull ^ (now_ns() * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)(i + 1) << 32);
            c->role = o.mode == M_ECHO ? R_ECHO : o.mode == M_IDLE ? R_IDLE : R_SUB;
            if (t == 0 && o.mode == M_FANOUT && k == ws[0].n - 1) c->role = R_PUB;
        }
    pthread_barrier_init(&barrier, NULL, (unsigned)o.threads);
    for (int t = 1; t < o.threads; t++) pthread_create(&ws[t].th, NULL, worker_main, &ws[t]);
    worker_main(&ws[0]);
    for (int t = 1; t < o.threads; t++) pthread_join(ws[t].th, NULL);

    hist *h = &ws[0].h;
    uint64_t msgs = 0, published = 0, errors = 0, hs_failed = 0, opened = 0, held = 0;
    for (int t = 0; t < o.threads; t++) {
        worker *w = &ws[t];
        msgs += w->msgs, published += w->published, errors += w->errors, hs_failed += w->hs_failed;
        opened += w->opened, held += w->held;
        if (t) {
            for (unsigned i = 0; i < NBUCKETS; i++) h->b[i] += w->h.b[i];
            h->n += w->h.n;
            if (w->h.max > h->max) h->max = w->h.max;
        }
    }
    if (hs_failed && o.mode != M_IDLE) {
        fprintf(stderr, "ws_client: %" PRIu64 " of %d handshakes failed (%s)\n", hs_failed, total, url);
        return 1;
    }
    double d = o.duration;
    if (o.mode == M_ECHO)
        printf("mode=echo conns=%d inflight=%d size=%zu threads=%d duration_s=%.3f msgs=%" PRIu64
               " msg_per_s=%.0f mib_s=%.2f",
               o.conns, o.inflight, o.size, o.threads, d, msgs, (double)msgs / d,
               (double)msgs * (double)o.size / 1048576.0 / d);
    else if (o.mode == M_FANOUT)
        printf("mode=fanout subs=%d inflight=%d size=%zu threads=%d duration_s=%.3f published=%" PRIu64
               " pub_per_s=%.0f delivered=%" PRIu64 " delivered_per_s=%.0f",
               o.conns, o.inflight, o.size, o.threads, d, published, (double)published / d, msgs, (double)msgs / d);
    else
        printf("mode=idle opened=%" PRIu64 " held=%" PRIu64 " seconds=%.3f errors=%" PRIu64 "\n", opened, held, d,
               errors + hs_failed);
    if (o.mode != M_IDLE)
        printf(" p50_us=%" PRIu64 " p90_us=%" PRIu64 " p99_us=%" PRIu64 " p999_us=%" PRIu64 " max_us=%" PRIu64
               " errors=%" PRIu64 "\n",
               percentile(h, 50), percentile(h, 90), percentile(h, 99), percentile(h, 99.9), h->max, errors);
    if (o.mode != M_IDLE && !msgs && !errors) {
        fputs("ws_client: nothing came back in the measured time\n", stderr);
        return 1;
    }
    return errors || hs_failed ? 1 : 0;
}
