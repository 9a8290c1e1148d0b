// HTTP/1.1 on a transport: the request FIFO, the request target's forms,
// answers in order (one vectored write, files by sendfile), timeouts and
// the close. Parsing: http1_parse.cpp; streamed bodies: http1_body.cpp.
#include "http1/http1.hpp"

#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "response_writer.hpp"
#include "server.hpp"
#include "worker.hpp"
#include "ws/ws_conn.hpp"
#include "ws/ws_hub.hpp"

namespace ql {

namespace {
constexpr uint32_t kMaxBatch = 16;

bool find_path(std::string_view target, size_t &path_off, size_t &path_len) {
    if (!target.empty() && target[0] == '/') {
        path_off = 0;
    } else {
        // absolute-form (RFC 9112 3.2.2): skip "scheme://authority"
        size_t scheme = target.find("://");
        if (scheme == std::string_view::npos) return false;
        size_t slash = target.find_first_of("/?", scheme + 3);
        if (slash == std::string_view::npos || target[slash] == '?') {
            // "http://host" or "http://host?q": the path is empty, which means "/"
            // (RFC 9112 3.2.2, RFC 3986 6.2.3).
            path_off = slash == std::string_view::npos ? target.size() : slash;
            path_len = 0;
            return true;
        }
        path_off = slash;
    }
    size_t q = target.find_first_of("?#", path_off);
    path_len = (q == std::string_view::npos ? target.size() : q) - path_off;
    return true;
}
}  // namespace

Http1::Http1(Transport &transport) : Protocol(transport), w(transport.w) {
    llhttp_init(&parser_, HTTP_REQUEST, settings());
    // Any HTTP/x.y is parsed; cb_headers_complete answers 505 to a major
    // other than 1 and serves 1.2 and up as 1.1 (RFC 9112 2.3).
    parser_.lenient_flags |= LENIENT_VERSION;
    parser_.data = this;
}

Http1::~Http1() = default;

void Http1::update_reading() {
    if (t.closing() || switched_) return;
    // Stopping: read on only while nothing is owed, so a request the client
    // sent before the stop is still served (with Connection: close), and no
    // request is read behind an answer that will close the connection.
    // A streamed body in progress is read on (stopping or not, pipeline full
    // or not) while its unread bytes stay under the window.
    Request *sb = parsing_ && parsing_->body_stream ? parsing_ : nullptr;
    bool want = !close_after_ && (sb || ((!w.stopping() || !head_) && fifo_len_ < w.server.limits().max_pipeline));
    bool paused = false;
    if (want && sb && !sb->ready && !sb->fifo_done) {
        // Pause at the window; once paused, resume only under half of it, so
        // each resume reads half a window or more (not the 32 KiB a host
        // read frees: a cross-thread wake each way per read otherwise).
        const Limits &lim = w.server.limits();
        const size_t low = lim.body_resume_bytes();
        if (sb->body_unread.load(std::memory_order_relaxed) >= (body_paused_ ? low : lim.body_window_bytes)) {
            sb->body_paused.store(true);
            paused = sb->body_unread.load() >= low;  // a read may have crossed under low before it saw the flag
        }
        if (!paused && sb->body_paused.load(std::memory_order_relaxed)) sb->body_paused.store(false);
    }
    if (paused) want = false;
    if (paused != body_paused_) {
        // Paused, the host is slow, not the client: the idle clock restarts on resume.
        if (paused) pause_start_ = w.now_ms();
        else t.touch();
        body_paused_ = paused;
    }
    if (lingering_) want = true;
    t.read(want);
}


// ---- dispatch ----------------------------------------------------------

void Http1::push(Request *r) {
    r->next = nullptr;
    if (tail_)
        tail_->next = r;
    else
        head_ = r;
    tail_ = r;
    ++fifo_len_;
}

// The request target's forms (RFC 9112 3.2), then the phases.
void Http1::dispatch(Request *r) {
    w.server.requests_total.fetch_add(1, std::memory_order_relaxed);
    std::string_view ip = t.peer_ip();
    std::memcpy(r->client_ip, ip.data(), ip.size());
    r->client_ip[ip.size()] = 0;
    r->client_ip_len = static_cast<uint8_t>(ip.size());
    r->client_port = t.peer_port();
    std::string_view target = r->view(r->target);
    size_t poff = 0, plen = 0;
    if (target == "*" && std::strcmp(r->method_name, "OPTIONS") == 0) {
        // asterisk-form: OPTIONS about the server as a whole (RFC 9112 3.2.4).
        r->out_body.clear();
        r->body_ref = {};
        r->path = r->target;  // "*" in the access log
        ready_here(r, 200, {}, {}, 0);
        return;
    }
    if (!find_path(target, poff, plen)) {
        r->keep_alive = false;  // malformed, not merely unroutable: close after the answer
        answer_error(r, 400, "invalid request target");
        return;
    }
    r->path = {r->target.off + static_cast<uint32_t>(poff), static_cast<uint32_t>(plen)};
    if (plen == 0) {  // absolute-form without a path: "/"
        r->path = {static_cast<uint32_t>(r->arena.size()), 1};
        r->arena.push_back('/');
    }
    size_t q = target.find('?', poff + plen);
    if (q != std::string_view::npos) {
        size_t end = target.find('#', q);
        if (end == std::string_view::npos) end = target.size();
        r->query = {r->target.off + static_cast<uint32_t>(q + 1), static_cast<uint32_t>(end - q - 1)};
    } else {
        r->query = {r->target.off + static_cast<uint32_t>(target.size()), 0};
    }
    PhaseCtx ctx{w, *this, ip};
    run_phases(ctx, r);
}

// The head of an answer made on the loop (its bytes are in out_body or
// body_ref): with the native rules' header lines, ready to be written.
void Http1::ready_here(Request *r, int status, std::string_view type, std::string_view headers, size_t length) {
    if (answer_closes(r)) r->keep_alive = false;
    HeadParams hp{status, type, headers, length, r->keep_alive, r->http_minor == 0, w.date};
    hp.rule_headers = r->rule_headers;
    format_head(r->out_head, hp);
    r->resp_status = status;
    r->ready = true;
}

void Http1::fail(int status, std::string_view msg) {
    Request *r = parsing_;
    parsing_ = nullptr;
    // A body may still be on its way: let the client read the answer.
    if (status == 413 || (r && r->body_stream)) linger_ = true;
    if (r && r->body_stream) {
        // Already in the FIFO and with the host: the host's reads fail, the
        // client gets this answer in the request's place when none was made.
        stream_failed(r, status, msg);
        close_after_ = true;
        return;
    }
    if (!r) {
        r = w.acquire();
        r->conn = this;
    }
    r->keep_alive = false;
    push(r);
    answer_error(r, status, msg);
    close_after_ = true;
}

// ---- writing -----------------------------------------------------------

void Http1::flush() {
    while (!t.closing() && !writing_ && !switched_) {
        if (head_ && head_->file_fd >= 0 && head_->head_sent) {
            // A file answer whose head went out: its bytes, from the file.
            if (!send_file(head_)) return;
            complete(1);
            continue;
        }
        uv_buf_t bufs[kMaxBatch * 2];
        unsigned nb = 0;
        uint32_t n = 0;
        bool stream = false;
        bool file = false;
        for (Request *r = head_; r && r->ready && n < kMaxBatch; r = r->next, ++n) {
            if (r->file_fd >= 0) {
                // A file sent from disk ends the batch: its head goes out with
                // the answers before it, then send_file writes its bytes.
                bufs[nb++] = uv_buf_init(r->out_head.data(), static_cast<unsigned>(r->out_head.size()));
                file = true;
                ++n;
                break;
            }
            if (r->streaming) {
                // A streamed answer goes alone, as far as it is framed; the
                // answers behind it wait for its last chunk.
                if (n > 0) break;
                stream = true;
                if (!r->head_sent) {
                    bufs[nb++] = uv_buf_init(r->out_head.data(), static_cast<unsigned>(r->out_head.size()));
                }
                r->out_body.swap(r->stream_out);  // out_body stays untouched until the write ends
                r->stream_out.clear();
                r->inflight_data = r->stream_out_data;
                r->stream_out_data = 0;
                if (!r->out_body.empty()) {
                    bufs[nb++] = uv_buf_init(r->out_body.data(), static_cast<unsigned>(r->out_body.size()));
                }
                n = 1;
                break;
            }
            if (!r->out_head.empty())  // empty: a hijacked request, nothing to say
                bufs[nb++] = uv_buf_init(r->out_head.data(), static_cast<unsigned>(r->out_head.size()));
            if (!r->head_only) {
                std::string_view b = r->body_ref.data() ? r->body_ref : std::string_view(r->out_body);
                if (!b.empty()) {
                    bufs[nb++] = uv_buf_init(const_cast<char *>(b.data()), static_cast<unsigned>(b.size()));
                }
            }
            if (!r->keep_alive) {
                ++n;
                break;  // nothing after a closing answer
            }
        }
        if (n == 0) break;
        if (nb == 0 && !stream) {  // hijacked requests only: nothing to write
            head_written(n, false);
            continue;
        }
        if (stream && nb == 0) {
            // Nothing new to write for the streamed answer at the head.
            if (head_->stream_done) {
                complete(1);
                continue;
            }
            break;
        }
        Transport::Sent sent = t.send(bufs, nb);
        if (sent == Transport::Sent::Failed) return;
        if (sent == Transport::Sent::All) {
            if (stream)
                stream_written();
            else
                head_written(n, file);
            continue;
        }
        // Queued: the buffers stay alive in the requests until on_written.
        writing_ = n;
        writing_stream_ = stream;
        writing_file_ = file;
        return;
    }
    if (switched_) return;  // a WebSocket runs on the transport now
    if (!t.closing() && !head_ && (close_after_ || w.stopping())) close_or_linger();
    if (const ql_handler *h = drain_h_) {
        drain_h_ = nullptr;
        h->on_drain(h->user_data, drain_id_, drain_tag_);  // a stale id only makes its writes QL_E_GONE
    }
}

// The bytes of a streamed answer went out: finish it once its last chunk has.
void Http1::stream_written() {
    Request *r = head_;
    r->head_sent = true;
    r->out_body.clear();
    uint64_t left = r->stream_buffered.fetch_sub(r->inflight_data, std::memory_order_relaxed) - r->inflight_data;
    r->inflight_data = 0;
    if (left <= QL_DRAIN_LOW && r->drain_armed.load(std::memory_order_acquire) &&
        r->drain_armed.exchange(false, std::memory_order_acq_rel) && r->route && r->route->handler &&
        r->route->handler->h.on_drain) {
        // Told at the end of flush, when a write from the callback is safe.
        drain_h_ = &r->route->handler->h;
        drain_id_ = r->id();
        drain_tag_ = r->tag;
    }
    if (r->stream_done && r->stream_out.empty()) complete(1);
}

// The answers before a file answer, and its head, went out (or, with
// file false, n whole answers).
void Http1::head_written(uint32_t n, bool file) {
    if (!file) {
        complete(n);
        return;
    }
    complete(n - 1);
    head_->head_sent = true;  // flush goes on with send_file
}

// Sends the rest of the file at the FIFO head: true once all of it is out.
// sendfile(2) moves the bytes while the socket takes them; when it is full
// (or after a fair share of the loop), one chunk is read and queued with
// uv_write, whose completion says the socket drained, and flush comes back.
bool Http1::send_file(Request *r) {
    int sock = t.fd();
    if (sock < 0) {
        close();
        return false;
    }
    constexpr uint64_t kShare = 4u << 20;  // bytes per turn before other connections
    constexpr size_t kChunk = 16 * 1024;  // copied only to learn when the socket drains
    uint64_t sent = 0;
    while (r->file_off < r->file_end && sent < kShare) {
        off_t off = static_cast<off_t>(r->file_off);
        size_t want = static_cast<size_t>(std::min<uint64_t>(r->file_end - r->file_off, kShare - sent));
        ssize_t k = ::sendfile(sock, r->file_fd, &off, want);
        if (k > 0) {
            r->file_off += static_cast<uint64_t>(k);
            sent += static_cast<uint64_t>(k);
            continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && errno == EAGAIN) break;
        // The client left (EPIPE, ECONNRESET), a read error, or the file
        // shrank under us (0): the promised length cannot be kept.
        if (k == 0) fprintf(stderr, "quicklane: a static file shrank while it was sent; connection closed\n");
        close();
        return false;
    }
    if (sent) {
        t.touch();
        t.count_out(sent);
    }
    if (r->file_off >= r->file_end) {
        r->close_file();
        return true;
    }
    size_t len = static_cast<size_t>(std::min<uint64_t>(r->file_end - r->file_off, kChunk));
    r->out_body.resize(len);
    ssize_t k;
    do k = ::pread(r->file_fd, r->out_body.data(), len, static_cast<off_t>(r->file_off));
    while (k < 0 && errno == EINTR);
    if (k <= 0) {
        if (k == 0) fprintf(stderr, "quicklane: a static file shrank while it was sent; connection closed\n");
        close();
        return false;
    }
    r->file_off += static_cast<uint64_t>(k);
    t.count_out(static_cast<uint64_t>(k));
    uv_buf_t b = uv_buf_init(r->out_body.data(), static_cast<unsigned>(k));
    if (t.queue(&b, 1)) {
        writing_ = 1;
        writing_file_ = true;
    }
    return false;
}

void Http1::on_written(int) {
    uint32_t n = writing_;
    bool stream = writing_stream_;
    bool file = writing_file_;
    writing_ = 0;
    writing_stream_ = false;
    writing_file_ = false;
    if (stream)
        stream_written();
    else if (file && head_ && head_->head_sent)
        ;  // a chunk of a file: flush sends the rest
    else
        head_written(n, file);
    flush();
    update_reading();
}

void Http1::complete(uint32_t n) {
    for (uint32_t i = 0; i < n && head_; ++i) {
        Request *r = head_;
        head_ = r->next;
        if (!head_) tail_ = nullptr;
        --fifo_len_;
        if (!r->keep_alive) close_after_ = true;
        if (w.server.observe) observe(r);
        if (r->ws_accept && !head_ && !t.closing()) {
            upgrade(r);  // the 101 went out: r is released there
            return;
        }
        if (r->hijack && !t.closing()) {
            // Requests came behind a hijacked one: the connection cannot be
            // handed over whole. It ends; the host hears of it on release.
            r->conn = nullptr;
            w.release(r);
            close();
            return;
        }
        if (r == parsing_) {
            // Answered before its body ended: the rest is dropped as it comes,
            // and the request is freed at the body's end (body_ended).
            r->fifo_done = true;
            continue;
        }
        r->conn = nullptr;
        w.release(r);
    }
    t.touch();
}

// ---- WebSocket upgrade ----------------------------------------------------

// The 101 of an accepted upgrade went out (the last request this protocol
// reads): the connection is a WebSocket's from here on.
void Http1::upgrade(Request *r) {
    WsHub &hub = w.ws_hub();
    WsSlot *slot = hub.acquire();
    if (!slot) {
        std::fprintf(stderr, "quicklane: too many WebSockets on one loop; connection closed\n");
        r->conn = nullptr;
        w.release(r);
        close();
        return;
    }
    switched_ = true;
    r->ws_accept = false;  // switched: its close notice is the WsConn's now
    auto *ws = r->hijack ? new WsConn(t, r->hijack, slot, {}, r->ws_tag, nullptr)
                         : new WsConn(t, r->route->ws, slot, std::move(r->ws_subprotocol), r->ws_tag,
                                      r->ws_deflate ? &r->ws_deflate_params : nullptr);
    t.switch_to(ws);  // this object is deleted once the current callback returns
    std::string early;
    early.swap(upgrade_rest_);
    r->conn = nullptr;
    ws->open(r, early);
    w.release(r);
    t.touch();
}

// ---- closing -----------------------------------------------------------

// An answer went out: count it for /metrics and log it when asked to.
void Http1::observe(Request *r) {
    Server &s = w.server;
    uint64_t micros = r->t0_ns ? (uv_hrtime() - r->t0_ns) / 1000 : 0;
    if (s.metrics)
        s.metrics->record(r->route ? r->route->index : s.router().size(), r->resp_status, micros, !r->host_answered);
    if (s.router().app_rules->access_log) s.log_access(*r, micros);
}

void Http1::detach(Request *r) {
    uint64_t old = r->state.fetch_or(RS_GONE, std::memory_order_acq_rel);
    if (r->body_stream) body_failed(*r, QL_E_GONE);
    r->conn = nullptr;
    // A streamed answer the host is still writing: it is told, like a host
    // whose client left before it answered, so a producer waiting for a
    // drain that will never come stops (its next write returns QL_E_GONE).
    bool writing = false;
    if ((old & RS_ANSWERED) && r->dispatched && r->route && r->route->handler) {
        std::lock_guard lk(r->stream_mu);
        writing = r->stream_mode && !r->stream_end;
    }
    const ql_handler *h = writing ? &r->route->handler->h : nullptr;
    ql_req_id id = r->id();
    void *tag = r->tag;
    if (r->ready || !r->dispatched) {
        w.release(r);
    } else if (!(old & RS_ANSWERED)) {
        abandon(r);
    }
    // else: an answer is queued for the loop; on_answer (on_stream) frees it.
    if (h && h->on_abort) h->on_abort(h->user_data, id, tag);  // after the release: its writes fail
}

// A dispatched request lost its client (or timed out): the host is told once
// and its ql_respond frees it; a cache waiter, which no host holds, is freed
// now (the cache's later answer finds a new generation and does nothing).
void Http1::abandon(Request *r) {
    if (r->cache_wait)
        w.release(r);
    else
        notify_abort(r);
}

void Http1::notify_abort(Request *r) {
    const ql_handler &h = r->route->handler->h;
    if (h.on_abort) h.on_abort(h.user_data, r->id(), r->tag);
}

// Handlers that held a request past handler_timeout_ms: the client gets a
// 503 in the request's place in the pipeline, and the request itself is
// abandoned like one whose client left, so the host may go on reading it
// until its (late) answer frees it.
void Http1::expire_handlers(uint64_t now) {
    const uint64_t limit = w.server.limits().handler_timeout_ms;
    Request *prev = nullptr;
    for (Request *r = head_; r; prev = r, r = r->next) {
        if (!r->dispatched || r->ready || now - r->dispatched_ms < limit) continue;
        if (r == parsing_) continue;  // its body still arrives: the clock starts at its end
        std::string path(r->view(r->path));
        const char *method = r->method_name;
        if (!replace_unanswered(r, 503, "handler timed out", r->keep_alive)) continue;
        std::fprintf(stderr, "quicklane: %s %s: no answer after %llu ms; sent 503\n", method, path.c_str(),
                     static_cast<unsigned long long>(limit));
        r = prev ? prev->next : head_;  // the stand-in
    }
}

// Puts a core answer (status, msg) in the FIFO in place of r, which nobody
// has answered yet, and abandons r like a request whose client left (the
// host is told; its late answer frees r). False when an answer is already on
// its way (nothing changes then).
bool Http1::replace_unanswered(Request *r, int status, std::string_view msg, bool keep_alive) {
    uint64_t s = r->state.load(std::memory_order_acquire);
    do {
        if (s & (RS_ANSWERED | RS_GONE)) return false;
    } while (!r->state.compare_exchange_weak(s, s | RS_GONE, std::memory_order_acq_rel));
    Request *prev = nullptr;
    for (Request *q = head_; q && q != r; q = q->next) prev = q;
    Request *e = w.acquire();
    e->conn = this;
    e->keep_alive = keep_alive;
    e->http_minor = r->http_minor;
    e->head_only = r->head_only;
    e->rule_headers = r->rule_headers;
    e->route = r->route;
    e->t0_ns = r->t0_ns;
    e->method_name = r->method_name;
    answer_error(e, status, msg);
    e->next = r->next;
    if (prev)
        prev->next = e;
    else
        head_ = e;
    if (tail_ == r) tail_ = e;
    r->conn = nullptr;
    r->next = nullptr;
    // A body still arriving is dropped from now on: its reader gets
    // QL_E_GONE (woken by the abort notice), never a wait that lasts.
    if (r->body_stream) body_failed(*r, QL_E_GONE);
    abandon(r);
    return true;
}

void Http1::on_closed() {
    // A streamed body's request is in the FIFO (detached below) unless its
    // answer was written already.
    if (parsing_ && !parsing_->body_stream) w.release(parsing_);
    else if (parsing_ && parsing_->fifo_done) body_abandoned(parsing_);
    parsing_ = nullptr;
    while (Request *r = head_) {
        head_ = r->next;
        detach(r);
    }
    tail_ = nullptr;
}

void Http1::drain() {
    if (lingering_ || (idle() && !t.bytes_pending())) {
        close();
        return;
    }
    update_reading();
}

void Http1::check_timeouts(uint64_t now) {
    if (t.closing()) return;
    const Limits &lim = w.server.limits();
    if (lingering_) {
        if (now - linger_start_ >= 2000) close();
        return;
    }
    if ((body_paused_ || (head_ && !t.reading())) && t.peer_left()) {
        // Not read (a paused body, or a request that ends the connection —
        // an upgrade the host is deciding on): the kernel says the client
        // left; as a read of its EOF would, this tells the host.
        close();
        return;
    }
    if (body_paused_ && now - pause_start_ >= lim.handler_timeout_ms) {
        // The host stopped reading a streamed body (and has not answered).
        fail(503, "handler timed out");
        flush();
        return;
    }
    if (head_) {
        expire_handlers(now);
        if (!writing_ && head_->ready) flush();
        if (t.closing()) return;
    }
    if (parsing_ && !body_paused_) {
        uint64_t limit = headers_done_ ? lim.idle_timeout_ms : lim.header_timeout_ms;
        uint64_t since = headers_done_ ? t.last_activity() : head_start_;
        if (now - since >= limit) {
            if (!head_) {
                fail(408, "request timeout");
                flush();
            } else {
                close();
            }
        }
        return;
    }
    if (!head_ && !writing_ && now - t.last_activity() >= lim.idle_timeout_ms) close();
    // A client that stopped reading a file answer: no progress for the idle
    // timeout closes the connection (and the file).
    else if (writing_file_ && now - t.last_activity() >= lim.idle_timeout_ms) close();
}

}  // namespace ql
