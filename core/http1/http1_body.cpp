// Streamed request bodies: routes with stream_body are dispatched once their
// head is complete; body bytes then flow through a per-request buffer that
// hosts read with ql_request_body_read from any thread.
//
//  loop (Http1)                             host (Server::body_read)
//  cb_body → body_arrived: append, wake  →   copy out, compact
//  update_reading: pause at the window   ←   crossed under half the window: post kBodyRead
//  body_consumed: resume, 100 Continue   ←   first read of an Expect: 100-continue
//  body_ended / body_failed: wake, notify
//
// Everything shared lives under Request::stream_mu. The loop never waits on a
// host: it takes that mutex only to append or to mark an end.
#include <chrono>
#include <cstring>

#include "http1/http1.hpp"
#include "server.hpp"
#include "worker.hpp"

namespace ql {

namespace {
// Declared bytes still to come that are read and dropped after an early
// answer; more than this (or an unknown chunked rest) closes instead, as
// Go's net/http does.
constexpr uint64_t kDiscardBytes = 256 * 1024;

// The route's on_body (QL_EVENT_BODY for queued routes), for a reader that
// was told QL_E_AGAIN.
void notify_body(Request *r) {
    if (!r->route || !r->route->handler) return;
    const ql_handler &h = r->route->handler->h;
    if (h.on_body) h.on_body(h.user_data, r->id(), r->tag);
}

// Something a reader waits for happened: mark() records it under stream_mu,
// a reader blocked in body_read wakes, and the result tells whether a reader
// was told QL_E_AGAIN (it is owed an on_body).
template <class Mark>
bool wake_reader(Request &r, Mark mark) {
    bool armed;
    {
        std::lock_guard lk(r.stream_mu);
        mark();
        armed = r.body_armed;
        r.body_armed = false;
    }
    r.body_cv.notify_all();
    return armed;
}
}  // namespace

bool body_failed(Request &r, int32_t code) {
    return wake_reader(r, [&] {
        if (!r.body_error) r.body_error = code;
    });
}

void Http1::body_abandoned(Request *r) {
    // Answered and written, its body unfinished: a reader still waiting is
    // told (it reads QL_E_GONE) before the request is freed.
    if (body_failed(*r, QL_E_GONE)) notify_body(r);
    r->conn = nullptr;
    w.release(r);
}

// At the end of the head: does the matched route stream its body? Sets the
// request up for it (limit, flags); the request is dispatched right after.
bool Http1::stream_route(Request *r) {
    std::string_view target = r->view(r->target);
    size_t off = 0;
    if (target.empty()) return false;
    if (target[0] != '/') {
        size_t scheme = target.find("://");
        if (scheme == std::string_view::npos) return false;
        off = target.find_first_of("/?", scheme + 3);
        if (off == std::string_view::npos || target[off] == '?') return false;  // "/" streams only when routed so
    }
    size_t end = target.find_first_of("?#", off);
    std::string_view path = target.substr(off, end == std::string_view::npos ? std::string_view::npos : end - off);
    Match m;
    w.server.router().match(r->method_name, path, m);
    if (m.kind != MatchKind::Found || !m.route->rules || !m.route->rules->stream_body) return false;
    uint64_t own = m.route->rules->max_body_bytes;
    r->body_limit = own ? own : w.server.limits().max_stream_body_bytes;
    return true;
}

// Body bytes of a streamed request: buffered for the host, or dropped once
// it has been answered. False (413 pending) past the limit.
bool Http1::body_arrived(Request *r, const char *at, size_t len) {
    r->body_seen += len;
    if (r->ready || r->fifo_done || (r->state.load(std::memory_order_acquire) & (RS_ANSWERED | RS_GONE))) {
        // Answered (or abandoned): the rest is dropped, and a reader that
        // reaches the end of what it was given is told so, not given a clean
        // end (the first drop wakes one that waits).
        if (len && !r->body_dropped_seen) {
            r->body_dropped_seen = true;
            if (wake_reader(*r, [&] { r->body_dropped = true; })) notify_body(r);
        }
        return true;
    }
    if (r->body_limit && r->body_seen > r->body_limit) {
        refuse(413, "request body too large");
        return false;
    }
    if (wake_reader(*r, [&] {
            r->body_buf.append(at, len);
            r->body_unread.fetch_add(len, std::memory_order_relaxed);
        }))
        notify_body(r);
    return true;
}

// The whole streamed body has arrived (parsing_ is already cleared).
void Http1::body_ended(Request *r) {
    if (r->fifo_done) {
        // Its answer went out before the body ended; a reader still waiting
        // reads the end.
        if (wake_reader(*r, [&] { r->body_end = true; })) notify_body(r);
        r->conn = nullptr;
        w.release(r);
        return;
    }
    r->dispatched_ms = w.now_ms();  // the handler timeout counts from here
    r->expect_continue = false;      // every byte is here: nothing to invite
    if (wake_reader(*r, [&] { r->body_end = true; })) notify_body(r);
}

// The body broke (too large, malformed, stalled host): readers get the
// error; the client gets `status` in the request's place unless an answer is
// already made or on its way (then that one goes out and the connection
// closes).
void Http1::stream_failed(Request *r, int status, std::string_view msg) {
    if (r->fifo_done) {
        body_abandoned(r);
        return;
    }
    bool armed = body_failed(*r, status == 413 ? QL_E_TOO_LARGE : status == 400 ? QL_E_INVALID : QL_E_GONE);
    if (r->ready || !replace_unanswered(r, status, msg, false)) {
        // Answered already: that answer goes out, and a waiting reader reads the error.
        r->keep_alive = false;
        if (armed) notify_body(r);
    }
    // else r is abandoned: its abort notice has told the host.
}

bool Http1::answer_closes(Request *r) {
    if (!r->body_stream || parsing_ != r) return false;  // its body has ended
    // 100 Continue never went out: the client may or may not send the body.
    if (r->expect_continue) return true;
    if (r->content_length < 0) return true;  // chunked: the rest is unknown
    return parser_.content_length > kDiscardBytes;
}

void Http1::body_consumed(Request *r) {
    if (r->conn != this || t.closing()) return;
    if (r->expect_continue) send_continue(r);
    if (!in_read) update_reading();
}

// The interim answer, when it can still go out in order: the request is at
// the FIFO head, unanswered, and nothing is being written.
void Http1::send_continue(Request *r) {
    r->expect_continue = false;
    if (head_ != r || writing_ || r->ready || parsing_ != r) return;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    // An empty socket buffer takes 25 bytes; the client otherwise sends after its own wait.
    t.try_write(cont, sizeof cont - 1);
}

void Http1::close_or_linger() {
    if (lingering_) return;
    if (linger_ || (parsing_ && parsing_->body_stream)) linger();
    else close();
}

// Closing while the client still sends its body would reset the connection
// and could destroy the answer before the client reads it. Instead the write
// side is shut (the client sees the end of the answer) and what still comes
// is read and dropped, until the client closes or 2 s pass.
void Http1::linger() {
    lingering_ = true;
    linger_start_ = w.now_ms();
    if (t.shutdown()) update_reading();
}

// ---- the host side -----------------------------------------------------

ql_status Server::body_read(ql_req_id id, char *buf, size_t cap, int32_t timeout_ms, size_t *out_len,
                            std::string *err) {
    *out_len = 0;
    Worker *w = nullptr;
    Request *r = find(id, &w, err);
    if (!r) return QL_E_GONE;
    if (timeout_ms != 0 && w->on_loop_thread()) {
        *err = "a read that waits would block the loop that receives the body: read with timeout 0 and "
               "wait for on_body";
        return QL_E_STATE;
    }
    const uint64_t gen = id & 0xffffffffu;
    auto same = [&] { return ((r->state.load(std::memory_order_acquire) >> 8) & 0xffffffffu) == gen; };
    std::unique_lock lk(r->stream_mu);
    if (!same()) {
        *err = "request is gone (finished, or its client left)";
        return QL_E_GONE;
    }
    const uint64_t full_gen = r->generation();
    if (!r->body_stream) {
        // A buffered body, read through the same call.
        std::string_view b = r->view(r->body);
        size_t n = std::min(cap, b.size() - std::min(b.size(), r->buffered_rpos));
        if (n) std::memcpy(buf, b.data() + r->buffered_rpos, n);
        r->buffered_rpos += n;
        *out_len = n;
        return QL_OK;
    }
    bool post = !r->body_read_once && r->expect_continue;
    r->body_read_once = true;
    auto readable = [&] { return r->body_rpos < r->body_buf.size() || r->body_end || r->body_error || !same(); };
    if (!readable() && timeout_ms != 0) {
        if (post) {
            // 100 Continue first, or the client never sends what we wait for.
            lk.unlock();
            w->hand(r, full_gen, Worker::kBodyRead);
            post = false;
            lk.lock();
        }
        if (timeout_ms < 0)
            r->body_cv.wait(lk, readable);
        else
            r->body_cv.wait_for(lk, std::chrono::milliseconds(timeout_ms), readable);
    }
    ql_status st = QL_OK;
    const size_t low = limits_.body_resume_bytes();
    if (!same()) {
        *err = "request is gone (finished, or its client left)";
        return QL_E_GONE;
    } else if (size_t avail = r->body_buf.size() - r->body_rpos; avail && cap) {
        size_t n = std::min(cap, avail);
        std::memcpy(buf, r->body_buf.data() + r->body_rpos, n);
        r->body_rpos += n;
        size_t before = r->body_unread.fetch_sub(n);
        if (r->body_rpos == r->body_buf.size()) {
            r->body_buf.clear();
            r->body_rpos = 0;
        } else if (r->body_rpos >= 64 * 1024 && r->body_rpos * 2 >= r->body_buf.size()) {
            r->body_buf.erase(0, r->body_rpos);
            r->body_rpos = 0;
        }
        *out_len = n;
        // Under half the window, the loop's resume point (update_reading):
        // a paused loop is told.
        if (before >= low && before - n < low && r->body_paused.load()) post = true;
    } else if (avail) {
        // cap == 0: nothing copied, bytes are waiting.
    } else if (r->body_dropped && !r->body_error) {
        // The request was answered before its body was read to the end: the
        // rest is dropped, so what was read is not the whole body.
        st = QL_E_GONE;
        *err = "the request was answered before its body was read: the rest of the body was dropped";
    } else if (r->body_end) {
        // QL_OK with 0 bytes: the end.
    } else if (r->body_error) {
        st = r->body_error;
        *err = st == QL_E_TOO_LARGE ? "request body too large (413 was sent)"
               : st == QL_E_INVALID ? "malformed request body (400 was sent)"
                                    : "the client left before the body ended";
    } else {
        r->body_armed = true;
        *err = "no body bytes yet";
        st = QL_E_AGAIN;
    }
    lk.unlock();
    if (post) w->hand(r, full_gen, Worker::kBodyRead);
    return st;
}

}  // namespace ql
