#include "connection.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "params.hpp"
#include "queue.hpp"
#include "schema.hpp"
#include "response_writer.hpp"
#include "server.hpp"
#include "worker.hpp"

namespace ql {

namespace {
constexpr uint32_t kMaxBatch = 16;

Connection *self(llhttp_t *p) { return static_cast<Connection *>(p->data); }

// Host = uri-host [ ":" port ] (RFC 9110 7.2): reg-name, IPv4 or IP-literal
// characters only; empty is allowed.
bool valid_host(std::string_view v) {
    for (unsigned char ch : v) {
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) continue;
        if (!std::strchr("-._~!$&'()*+,;=%:[]", ch) || ch == 0) return false;
    }
    return true;
}

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

Connection::Connection(Worker &worker) : w(worker) {
    llhttp_init(&parser_, HTTP_REQUEST, settings());
    // Any HTTP/x.y is parsed; cb_headers_complete answers 505 to a major
    // other than 1 and serves 1.2 and up as 1.1 (RFC 9112 2.3).
    parser_.lenient_flags |= LENIENT_VERSION;
    parser_.data = this;
    tcp_.data = this;
    wreq_.data = this;
}

Connection::~Connection() = default;

const llhttp_settings_t *Connection::settings() {
    static const llhttp_settings_t s = [] {
        llhttp_settings_t st;
        llhttp_settings_init(&st);
        st.on_message_begin = cb_message_begin;
        st.on_method = cb_method;
        st.on_url = cb_url;
        st.on_version = cb_version;
        st.on_header_field = cb_header_field;
        st.on_header_value = cb_header_value;
        st.on_headers_complete = cb_headers_complete;
        st.on_body = cb_body;
        st.on_chunk_header = cb_chunk_header;
        st.on_message_complete = cb_message_complete;
        return st;
    }();
    return &s;
}

bool Connection::accept(uv_stream_t *listener) {
    uv_tcp_init(w.loop, &tcp_);
    if (uv_accept(listener, reinterpret_cast<uv_stream_t *>(&tcp_)) != 0) {
        uv_close(reinterpret_cast<uv_handle_t *>(&tcp_), on_close);
        closing_ = true;
        return false;
    }
    return accepted();
}

bool Connection::adopt(int fd) {
    uv_tcp_init(w.loop, &tcp_);
    if (uv_tcp_open(&tcp_, fd) != 0) {
        ::close(fd);
        uv_close(reinterpret_cast<uv_handle_t *>(&tcp_), on_close);
        closing_ = true;
        return false;
    }
    return accepted();
}

bool Connection::accepted() {
    uv_tcp_nodelay(&tcp_, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&tcp_, reinterpret_cast<struct sockaddr *>(&ss), &len) == 0) {
        if (ss.ss_family == AF_INET) {
            auto *a = reinterpret_cast<struct sockaddr_in *>(&ss);
            inet_ntop(AF_INET, &a->sin_addr, peer_ip_, sizeof peer_ip_);
            peer_port_ = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            auto *a = reinterpret_cast<struct sockaddr_in6 *>(&ss);
            inet_ntop(AF_INET6, &a->sin6_addr, peer_ip_, sizeof peer_ip_);
            peer_port_ = ntohs(a->sin6_port);
        }
        peer_ip_len_ = static_cast<uint8_t>(std::strlen(peer_ip_));
    }
    last_activity_ = w.now_ms();
    Server &s = w.server;
    counted_ = true;
    uint64_t open = s.conns_open.fetch_add(1) + 1;
    s.conns_total.fetch_add(1, std::memory_order_relaxed);
    if (open > s.limits().max_connections) {
        close();
        return false;
    }
    update_reading();
    return true;
}

// ---- reading -----------------------------------------------------------

void Connection::on_alloc(uv_handle_t *h, size_t, uv_buf_t *buf) {
    // One buffer per loop: read_cb consumes it fully (every byte is copied
    // into the request's arena) before the next allocation.
    auto *c = static_cast<Connection *>(h->data);
    buf->base = c->w.read_buffer();
    buf->len = Worker::kReadBufSize;
}

void Connection::on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    auto *c = static_cast<Connection *>(s->data);
    if (nread < 0) {
        // EOF or error: the client is gone (as Go's net/http, we treat a
        // half-close as a disconnect; unanswered requests are aborted).
        c->close();
        return;
    }
    if (nread == 0) return;
    if (c->w.server.metrics) c->w.server.metrics->bytes_in.fetch_add(static_cast<uint64_t>(nread), std::memory_order_relaxed);
    c->handle_data(buf->base, static_cast<size_t>(nread));
}

void Connection::handle_data(const char *data, size_t len) {
    if (closing_ || close_after_) return;
    last_activity_ = w.now_ms();
    if (method_tchars_ >= 0) {
        // llhttp stopped at an unknown method; read on to the SP after it.
        if (int status = unknown_method(data, data + len)) {
            fail(status, status == 501 ? "method not implemented" : "invalid method");
            flush();
        }
        return;
    }
    in_read = true;
    buf_start_ = data;
    buf_end_ = data + len;
    span_end_ = nullptr;
    queue_batch_begin();
    llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    queue_batch_end();
    in_read = false;
    // The read ended inside the line breaks of a head: check them now, the
    // buffer is reused for the next read.
    if (err == HPE_OK && parsing_ && span_seen_ && !gap_ok(buf_end_)) err = HPE_USER;
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
        // A request that ends the connection (Connection: close, HTTP/1.0,
        // Upgrade): bytes after it are not HTTP we will read.
        close_after_ = true;
    } else if (err != HPE_OK) {
        int status = pending_status_;
        const char *msg = pending_msg_;
        if (!status) {
            switch (err) {
            case HPE_INVALID_VERSION:
                // 505 only for a well-formed HTTP/x.y that is not 1.x; garbage
                // around or instead of the version is a syntax error.
                if (std::strcmp(llhttp_get_error_reason(&parser_), "Invalid HTTP version") == 0) {
                    status = 505;
                    msg = "HTTP version not supported";
                } else {
                    status = 400;
                    msg = llhttp_get_error_reason(&parser_);
                }
                break;
            case HPE_INVALID_METHOD: {
                // The bytes llhttp took before failing are method characters.
                const char *pos = llhttp_get_error_pos(&parser_);
                const char *start = parser_._span_pos0 ? static_cast<const char *>(parser_._span_pos0) : pos;
                if (!pos || pos < buf_start_ || pos > buf_end_ || start > pos) start = pos = buf_end_;
                method_tchars_ = static_cast<int32_t>(std::min<uint32_t>(method_seen_, 1024) + (pos - start));
                status = unknown_method(pos, buf_end_);
                msg = status == 501 ? "method not implemented" : "invalid method";
                break;
            }
            default: {
                status = 400;
                msg = llhttp_get_error_reason(&parser_);
                // llhttp refuses some folded lines itself (after the request
                // line, inside Content-Length): name the real fault.
                const char *pos = llhttp_get_error_pos(&parser_);
                if (parsing_ && span_seen_ && pos && pos >= buf_start_ && pos <= buf_end_ &&
                    !gap_ok(std::min(pos + 1, buf_end_)))
                    msg = pending_msg_;
                break;
            }
            }
        }
        if (status) fail(status, msg ? msg : "malformed request");
    }
    if (closing_) return;
    flush();
    update_reading();
}

void Connection::update_reading() {
    if (closing_) return;
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
        else last_activity_ = w.now_ms();
        body_paused_ = paused;
    }
    if (lingering_) want = true;
    if (want && !reading_) {
        if (uv_read_start(reinterpret_cast<uv_stream_t *>(&tcp_), on_alloc, on_read) == 0) reading_ = true;
    } else if (!want && reading_) {
        uv_read_stop(reinterpret_cast<uv_stream_t *>(&tcp_));
        reading_ = false;
    }
}

bool Connection::head_limit(Request *r, size_t more) {
    r->head_bytes += static_cast<uint32_t>(more);
    if (r->head_bytes > w.server.limits().max_header_bytes) {
        pending_status_ = 431;
        pending_msg_ = "request header fields too large";
        return false;
    }
    return true;
}

// Scans the bytes after the last span up to `to` (at most to the LF that ends
// the head or the trailers). Every line break of a head lies in these gaps, so
// the two line rules llhttp 8 does not hold are held here, in every position
// and across reads: each LF follows a CR (llhttp accepts a bare LF after the
// request line and as the empty line), and no line starts with SP or HTAB —
// obs-fold, which llhttp takes as more value, and which it never reports when
// the folded field's first line was empty (`Transfer-Encoding:` CRLF SP
// `chunked`). False (400 pending) when either is broken.
bool Connection::gap_ok(const char *to) {
    for (const char *q = span_end_ ? span_end_ : buf_start_; q < to && gap_lfs_ < 2; ++q) {
        ++gap_bytes_;
        if (*q == '\n') {
            if (gap_prev_ != '\r') return refuse_head("bare LF is not allowed as a line terminator");
            ++gap_lfs_;
        } else if ((*q == ' ' || *q == '\t') && gap_prev_ == '\n') {
            return refuse_head("obsolete line folding is not allowed");
        }
        gap_prev_ = *q;
    }
    span_end_ = to;
    return true;
}

bool Connection::refuse_head(const char *why) {
    pending_status_ = 400;
    pending_msg_ = why;
    return false;
}

bool Connection::note_span(const char *at, size_t len) {
    if (span_seen_ && !gap_ok(at)) return false;
    // A span that opens a line with whitespace is a folded line as well.
    if (span_seen_ && gap_prev_ == '\n' && len && (*at == ' ' || *at == '\t'))
        return refuse_head("obsolete line folding is not allowed");
    last_gap_ = span_seen_ ? gap_bytes_ : 1;
    span_seen_ = true;
    span_end_ = at + len;
    gap_bytes_ = 0;
    gap_lfs_ = 0;
    gap_prev_ = 0;
    return true;
}

// 501 for a token then SP, 400 for anything else, 0 while undecided.
int Connection::unknown_method(const char *from, const char *to) {
    for (const char *q = from; q < to; ++q) {
        if (*q == ' ') return method_tchars_ > 0 ? 501 : 400;
        if (!valid_token(std::string_view(q, 1)) || ++method_tchars_ > 1024) return 400;
    }
    return 0;
}

int Connection::cb_method(llhttp_t *p, const char *at, size_t len) {
    Connection *c = self(p);
    c->method_seen_ += static_cast<uint32_t>(len);
    return c->note_span(at, len) ? 0 : HPE_USER;
}

int Connection::cb_version(llhttp_t *p, const char *at, size_t len) {
    Connection *c = self(p);
    if (!c->note_span(at, len)) return HPE_USER;
    if (c->last_gap_ != 0 && c->last_gap_ != sizeof " HTTP/" - 1) {
        // One SP between target and version (RFC 9112 3); llhttp skips several.
        c->pending_status_ = 400;
        c->pending_msg_ = "invalid request line";
        return HPE_USER;
    }
    return 0;
}

int Connection::cb_message_begin(llhttp_t *p) {
    Connection *c = self(p);
    Request *r = c->w.acquire();
    r->conn = c;
    c->parsing_ = r;
    c->headers_done_ = false;
    c->span_seen_ = false;
    c->method_seen_ = 0;
    c->head_start_ = c->w.now_ms();
    if (c->w.server.observe) r->t0_ns = uv_hrtime();
    return 0;
}

int Connection::cb_url(llhttp_t *p, const char *at, size_t len) {
    Connection *c = self(p);
    Request *r = c->parsing_;
    if (r->target.len + len > c->w.server.limits().max_url_bytes) {
        c->pending_status_ = 414;
        c->pending_msg_ = "request target too long";
        return HPE_USER;
    }
    if (!c->head_limit(r, len) || !c->note_span(at, len)) return HPE_USER;
    if (r->target.len == 0 && c->last_gap_ != 1) {
        // One SP between method and target (RFC 9112 3); llhttp skips several.
        c->pending_status_ = 400;
        c->pending_msg_ = "invalid request line";
        return HPE_USER;
    }
    if (std::memchr(at, '#', len)) {
        // A fragment is not part of a request target (RFC 9112 3.2).
        c->pending_status_ = 400;
        c->pending_msg_ = "invalid character in request target";
        return HPE_USER;
    }
    if (r->target.len == 0) r->target.off = static_cast<uint32_t>(r->arena.size());
    r->arena.append(at, len);
    r->target.len += static_cast<uint32_t>(len);
    return 0;
}

int Connection::cb_header_field(llhttp_t *p, const char *at, size_t len) {
    Connection *c = self(p);
    Request *r = c->parsing_;
    if (!c->head_limit(r, len) || !c->note_span(at, len)) return HPE_USER;
    // Trailer fields of a chunked body: checked and counted, never added to
    // the header fields (they would skip the checks made when the head ended).
    if (c->headers_done_) return 0;
    if (r->headers.empty() || r->last_was_value) {
        if (r->headers.size() >= c->w.server.limits().max_headers) {
            c->pending_status_ = 431;
            c->pending_msg_ = "too many request header fields";
            return HPE_USER;
        }
        r->headers.push_back({{static_cast<uint32_t>(r->arena.size()), 0}, {0, 0}});
        r->last_was_value = false;
    }
    r->arena.append(at, len);
    r->headers.back().name.len += static_cast<uint32_t>(len);
    return 0;
}

int Connection::cb_header_value(llhttp_t *p, const char *at, size_t len) {
    Connection *c = self(p);
    Request *r = c->parsing_;
    if (!c->head_limit(r, len) || !c->note_span(at, len)) return HPE_USER;
    if (c->headers_done_) return 0;  // a trailer field's value
    if (!r->last_was_value) {
        r->headers.back().value = {static_cast<uint32_t>(r->arena.size()), 0};
        r->last_was_value = true;
    }
    r->arena.append(at, len);
    r->headers.back().value.len += static_cast<uint32_t>(len);
    return 0;
}

int Connection::cb_headers_complete(llhttp_t *p) {
    Connection *c = self(p);
    Request *r = c->parsing_;
    const Limits &lim = c->w.server.limits();
    if (p->http_major != 1) {
        c->pending_status_ = 505;
        c->pending_msg_ = "HTTP version not supported";
        return HPE_USER;
    }
    // The line breaks after the last span, the empty line included.
    if (!c->gap_ok(c->buf_end_)) return HPE_USER;
    c->span_seen_ = false;  // trailers start a new series of spans
    r->http_minor = std::min<uint8_t>(p->http_minor, 1);  // HTTP/1.2 and up: served as 1.1
    r->method_name = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    int hosts = 0;
    std::string_view expect;
    for (SpanPair &h : r->headers) {
        // A field value carries no trailing whitespace (RFC 9110 5.5).
        while (h.value.len && (r->arena[h.value.off + h.value.len - 1] == ' ' ||
                               r->arena[h.value.off + h.value.len - 1] == '\t'))
            --h.value.len;
        std::string_view name = r->view(h.name);
        // llhttp lets some of these through; RFC 9112 does not.
        if (!valid_token(name)) {
            c->pending_status_ = 400;
            c->pending_msg_ = "invalid header field name";
            return HPE_USER;
        }
        for (unsigned char ch : r->view(h.value)) {
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                c->pending_status_ = 400;
                c->pending_msg_ = ch == '\r' || ch == '\n' ? "obsolete line folding is not allowed"
                                                            : "invalid character in header value";
                return HPE_USER;
            }
        }
        if (iequals(name, "host")) {
            ++hosts;
            if (!valid_host(r->view(h.value))) {
                c->pending_status_ = 400;
                c->pending_msg_ = "invalid Host header";
                return HPE_USER;
            }
        } else if (iequals(name, "expect")) {
            expect = r->view(h.value);
        } else if (iequals(name, "transfer-encoding")) {
            // llhttp has checked that chunked is final; any other coding is
            // one we do not decode (RFC 9112 6.1 and 7: 501), and an HTTP/1.0
            // message with Transfer-Encoding has faulty framing (400).
            if (r->http_minor == 0) {
                c->pending_status_ = 400;
                c->pending_msg_ = "Transfer-Encoding in an HTTP/1.0 request";
                return HPE_USER;
            }
            std::string_view v = r->view(h.value);
            while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
            if (!iequals(v, "chunked")) {
                std::string_view last = v.substr(v.rfind(',') == std::string_view::npos ? 0 : v.rfind(',') + 1);
                while (!last.empty() && (last.front() == ' ' || last.front() == '\t')) last.remove_prefix(1);
                bool final_chunked = iequals(last, "chunked");
                c->pending_status_ = final_chunked ? 501 : 400;
                c->pending_msg_ = final_chunked ? "unsupported transfer coding" : "chunked must be the final transfer coding";
                return HPE_USER;
            }
        }
    }
    if (r->http_minor == 1 && hosts == 0) {
        c->pending_status_ = 400;
        c->pending_msg_ = "missing Host header";
        return HPE_USER;
    }
    if (hosts > 1) {
        c->pending_status_ = 400;
        c->pending_msg_ = "duplicate Host header";
        return HPE_USER;
    }
    r->content_length = (p->flags & F_CONTENT_LENGTH) ? static_cast<int64_t>(p->content_length)
                        : (p->flags & F_CHUNKED)      ? -1
                                                      : 0;
    // A route that streams its body is dispatched now, with its own limit.
    // A request without a body is dispatched at its end as any other (a
    // stream route reads its empty body through the same call).
    bool streamed = c->w.server.streams && r->content_length != 0 && c->stream_route(r);
    uint64_t limit = streamed ? r->body_limit : lim.max_body_bytes;
    if ((p->flags & F_CONTENT_LENGTH) && limit && p->content_length > limit) {
        c->pending_status_ = 413;
        c->pending_msg_ = "request body too large";
        return HPE_USER;
    }
    if (!expect.empty()) {
        if (!iequals(expect, "100-continue")) {
            c->pending_status_ = 417;
            c->pending_msg_ = "unsupported Expect value";
            return HPE_USER;
        }
        // A streamed body: 100 Continue when the host first reads it.
        if (streamed) r->expect_continue = r->http_minor == 1 && r->content_length != 0;
        // Interim answer only when nothing earlier is still owed on this
        // connection, so answers never leave out of order.
        else if (r->http_minor == 1 && !c->head_ && !c->writing_) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            uv_buf_t b = uv_buf_init(const_cast<char *>(cont), sizeof cont - 1);
            int n = uv_try_write(reinterpret_cast<uv_stream_t *>(&c->tcp_), &b, 1);
            if (n != static_cast<int>(sizeof cont - 1)) {
                // The socket buffer is empty here, so this only fails when the peer is gone.
                c->pending_status_ = 400;
                c->pending_msg_ = "could not send 100 Continue";
                return HPE_USER;
            }
        }
    }
    c->headers_done_ = true;
    r->body = {static_cast<uint32_t>(r->arena.size()), 0};
    if (streamed) {
        r->body_stream = true;
        r->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade && !c->w.stopping();
        c->push(r);
        c->dispatch(r);  // answered natively, or handed to the host before its body
    }
    return 0;
}

int Connection::cb_body(llhttp_t *p, const char *at, size_t len) {
    Connection *c = self(p);
    Request *r = c->parsing_;
    if (r->body_stream) return c->body_arrived(r, at, len) ? 0 : HPE_USER;
    if (r->body.len + len > c->w.server.limits().max_body_bytes) {
        c->pending_status_ = 413;
        c->pending_msg_ = "request body too large";
        return HPE_USER;
    }
    r->arena.append(at, len);
    r->body.len += static_cast<uint32_t>(len);
    return 0;
}

// A chunk announced past the body limit is refused at once, not after the
// client has sent up to the limit (or stalled before it).
int Connection::cb_chunk_header(llhttp_t *p) {
    Connection *c = self(p);
    Request *r = c->parsing_;
    if (r->body_stream) {
        if (!r->ready && r->body_limit && p->content_length > r->body_limit - r->body_seen) {
            c->pending_status_ = 413;
            c->pending_msg_ = "request body too large";
            return HPE_USER;
        }
        return 0;
    }
    if (p->content_length > c->w.server.limits().max_body_bytes - r->body.len) {
        c->pending_status_ = 413;
        c->pending_msg_ = "request body too large";
        return HPE_USER;
    }
    return 0;
}

int Connection::cb_message_complete(llhttp_t *p) {
    Connection *c = self(p);
    Request *r = c->parsing_;
    if (c->span_seen_ && !c->gap_ok(c->buf_end_)) return HPE_USER;  // after trailers
    c->span_seen_ = false;
    c->parsing_ = nullptr;
    c->last_activity_ = c->w.now_ms();
    if (r->body_stream) {
        bool keep = r->keep_alive && !c->w.stopping();
        c->body_ended(r);  // may free r
        return keep ? 0 : HPE_PAUSED;
    }
    r->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade && !c->w.stopping();
    c->push(r);
    c->dispatch(r);
    if (!r->keep_alive) return HPE_PAUSED;
    return 0;
}

// ---- dispatch ----------------------------------------------------------

void Connection::push(Request *r) {
    r->next = nullptr;
    if (tail_)
        tail_->next = r;
    else
        head_ = r;
    tail_ = r;
    ++fifo_len_;
}

void Connection::answer_error(Request *r, int status, std::string_view msg, std::string_view extra) {
    answer_body(r, status, error_body(msg), extra);
}

// A JSON answer from the core.
void Connection::answer_body(Request *r, int status, std::string body, std::string_view extra) {
    r->out_body = std::move(body);
    r->body_ref = {};
    // An answer to HEAD carries no body bytes, errors (404, 405, 400) included.
    if (std::strcmp(r->method_name, "HEAD") == 0) r->head_only = true;
    ready_here(r, status, "application/json", extra, r->out_body.size());
}

// The head of an answer made on the loop (its bytes are in out_body or
// body_ref): with the native rules' header lines, ready to be written.
void Connection::ready_here(Request *r, int status, std::string_view type, std::string_view headers, size_t length) {
    if (answer_closes(r)) r->keep_alive = false;
    HeadParams hp{status, type, headers, length, r->keep_alive, r->http_minor == 0, w.date};
    hp.rule_headers = r->rule_headers;
    format_head(r->out_head, hp);
    r->resp_status = status;
    r->ready = true;
}

void Connection::dispatch(Request *r) {
    Server &srv = w.server;
    srv.requests_total.fetch_add(1, std::memory_order_relaxed);
    std::memcpy(r->client_ip, peer_ip_, peer_ip_len_ + 1u);
    r->client_ip_len = peer_ip_len_;
    r->client_port = peer_port_;
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
    // Decoded parameters and query pairs are never longer than the target, so
    // reserving that much now keeps every view into the arena valid below.
    r->arena.reserve(r->arena.size() + r->target.len + 16);
    const AppRules &rules = *srv.router().app_rules;
    if (rules.cors && cors(r, *rules.cors)) return;  // a preflight, answered here
    Match m;
    srv.router().match(r->method_name, r->view(r->path), m);
    if (m.kind == MatchKind::NotFound) {
        answer_error(r, 404, "Not Found");
        return;
    }
    if (m.kind == MatchKind::MethodNotAllowed) {
        std::string allow = "Allow: ";
        allow.append(m.allow);
        allow.append("\r\n");
        answer_error(r, 405, "Method Not Allowed", allow);
        return;
    }
    r->route = m.route;
    r->head_only = r->method_name[0] == 'H' && std::strcmp(r->method_name, "HEAD") == 0;
    if (!admit(r, *m.route, rules)) return;  // limited or refused natively
    if (m.route->dir) {
        serve_file(r, *m.route->dir, m.param_count ? m.params[m.param_count - 1].raw : std::string_view());
        return;
    }
    if (m.route->metrics) {
        srv.render_metrics(r->out_body);
        ready_here(r, 200, "text/plain; version=0.0.4; charset=utf-8", {}, r->out_body.size());
        return;
    }
    if (const StaticAnswer *a = m.route->answer.get()) {
        r->body_ref = a->body;
        if (!status_has_body(a->status)) r->head_only = true;
        ready_here(r, a->status, a->content_type, a->extra_headers, a->body.size());
        return;
    }
    static thread_local std::string tmp;
    for (size_t i = 0; i < m.param_count; ++i) {
        std::string_view raw = m.params[i].raw;
        if (!percent_decode(raw, false, tmp)) {
            answer_error(r, 400, "invalid percent-encoding or UTF-8 in path parameter");
            return;
        }
        r->params.push_back({m.params[i].name, r->append(tmp.data(), tmp.size())});
    }
    std::string_view qs = r->view(r->query);
    while (!qs.empty()) {
        size_t amp = qs.find('&');
        std::string_view pair = qs.substr(0, amp);
        qs = amp == std::string_view::npos ? std::string_view{} : qs.substr(amp + 1);
        if (pair.empty()) continue;
        size_t eq = pair.find('=');
        std::string_view k = pair.substr(0, eq);
        std::string_view v = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        SpanPair sp;
        if (!percent_decode(k, true, tmp)) {
            answer_error(r, 400, "invalid percent-encoding or UTF-8 in query string");
            return;
        }
        sp.name = r->append(tmp.data(), tmp.size());
        if (!percent_decode(v, true, tmp)) {
            answer_error(r, 400, "invalid percent-encoding or UTF-8 in query string");
            return;
        }
        sp.value = r->append(tmp.data(), tmp.size());
        r->queries.push_back(sp);
    }
    if (const RouteRules *rr = m.route->rules.get()) {
        if ((rr->params || rr->body_schema) && !valid(r, *rr)) return;  // 400 or 422, answered here
        if (rr->cache_ttl_ms && srv.cache && (r->head_only || std::strcmp(r->method_name, "GET") == 0) &&
            cache_lookup(r, *rr))
            return;  // a hit, or waiting for the leader's answer
    }
    r->dispatched = true;
    r->dispatched_ms = w.now_ms();
    srv.requests_in_flight.fetch_add(1, std::memory_order_relaxed);
    const ql_handler &h = m.route->handler->h;
    h.on_request(h.user_data, reinterpret_cast<ql_request *>(r));
}

// CORS (RFC 6454 origins, Fetch's preflight): a preflight is answered here,
// allowed or not; an actual request from an allowed origin gets its allow
// headers on whatever answers it; a foreign origin gets none.
bool Connection::cors(Request *r, const CorsRules &c) {
    bool has_origin = false;
    std::string_view origin = find_header(*r, "origin", &has_origin);
    if (!has_origin) return false;
    bool allowed = c.origin_allowed(origin);
    bool preflight = false;
    std::string_view want = find_header(*r, "access-control-request-method", &preflight);
    if (preflight && std::strcmp(r->method_name, "OPTIONS") == 0) {
        std::string_view req_headers = find_header(*r, "access-control-request-headers");
        if (!allowed || !c.method_allowed(want) || !c.headers_allowed(req_headers)) {
            answer_error(r, 400, "Disallowed CORS request");
            return true;
        }
        c.preflight_headers(origin, req_headers, r->rule_headers);
        r->out_body.clear();
        r->body_ref = {};
        r->head_only = true;
        ready_here(r, 204, {}, {}, 0);
        return true;
    }
    if (allowed) c.actual_headers(origin, r->rule_headers);
    return false;
}

// Typed parameters, then the JSON body: false when answered here (FastAPI's
// shapes: 422 with every error of both, or 400 for a body that is not JSON).
bool Connection::valid(Request *r, const RouteRules &rr) {
    static thread_local std::vector<ValidationError> errors;
    static thread_local std::vector<ParamValue> path, query;
    errors.clear();
    if (rr.params) {
        path.clear();
        query.clear();
        for (const ParamRef &p : r->params) path.push_back({*p.name, r->view(p.value)});
        for (const SpanPair &q : r->queries) query.push_back({r->view(q.name), r->view(q.value)});
        rr.params->validate(path, query, errors);
    }
    if (rr.body_schema) {
        // No Content-Type, application/json or application/*+json: the body
        // is JSON. Any other type hands the schema the text, as FastAPI does.
        bool has_type = false;
        std::string_view type = find_header(*r, "content-type", &has_type);
        type = type.substr(0, type.find(';'));
        while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
        bool json = !has_type || iequals(type, "application/json") ||
                    (type.size() > 17 && iequals(type.substr(0, 12), "application/") &&
                     iequals(type.substr(type.size() - 5), "+json"));
        ValidationResult v = json ? rr.body_schema->validate(r->view(r->body))
                                  : rr.body_schema->validate_text(r->view(r->body));
        if (v.outcome == ValidationResult::Outcome::NotJson) {
            answer_body(r, 400, v.body());
            return false;
        }
        if (errors.empty()) errors.swap(v.errors);
        else for (auto &e : v.errors) errors.push_back(std::move(e));
    }
    if (errors.empty()) return true;
    answer_body(r, 422, render_detail(errors));
    return false;
}

// A file of a mounted folder: conditional (304), ranged (206/416), gzip
// (precompressed or cached) when the client accepts it.
void Connection::serve_file(Request *r, const StaticDir &dir, std::string_view raw_rest) {
    static thread_local std::string rel;
    if (!static_relative_path(raw_rest, rel)) {
        answer_error(r, 404, "Not Found");
        return;
    }
    int status = 404;
    int fd = -1;
    std::shared_ptr<const FileEntry> f = w.server.files->get(dir, rel, &status, &fd);
    if (!f) {
        answer_error(r, status, status == 404 ? "Not Found" : status == 403 ? "Forbidden" : "the file cannot be served");
        return;
    }
    r->file_fd = fd;  // owned by the request from here on
    bool gz = (!f->gz.empty() || !f->gz_path.empty()) && accepts_gzip(find_header(*r, "accept-encoding"));
    std::string etag = f->etag;
    if (gz) etag.insert(etag.size() - 1, "-gz");
    std::string &h = r->pending_headers;  // loop-owned: the request is not dispatched
    h.assign("ETag: ").append(etag).append("\r\nLast-Modified: ").append(f->last_modified);
    h.append("\r\nAccept-Ranges: bytes\r\n");
    if (!f->gz.empty() || !f->gz_path.empty()) h.append("Vary: Accept-Encoding\r\n");
    if (dir.max_age_s) h.append("Cache-Control: public, max-age=").append(std::to_string(dir.max_age_s)).append("\r\n");
    r->file = f;
    int code = 200;
    uint64_t size = gz ? (f->on_disk ? f->gz_size : f->gz.size()) : f->size;
    uint64_t first = 0, last = size ? size - 1 : 0;
    bool has_inm = false, has_ims = false;
    std::string_view inm = find_header(*r, "if-none-match", &has_inm);
    std::string_view ims = find_header(*r, "if-modified-since", &has_ims);
    bool not_modified = has_inm ? etag_matches(inm, etag) : has_ims && ims == f->last_modified;
    if (not_modified) {
        code = 304;
        r->head_only = true;
    } else if (bool has_range = false, has_if_range = false;
               !gz && (find_header(*r, "range", &has_range), has_range) &&
               (find_header(*r, "if-range", &has_if_range), !has_if_range ||
                if_range_matches(find_header(*r, "if-range"), etag, f->last_modified))) {
        int rv = parse_range(find_header(*r, "range"), f->size, first, last);
        if (rv < 0) {
            r->close_file();
            answer_error(r, 416, "Range Not Satisfiable", "Content-Range: bytes */" + std::to_string(f->size) + "\r\n");
            return;
        }
        if (rv > 0) {
            code = 206;
            h.append("Content-Range: bytes ")
                .append(std::to_string(first))
                .append("-")
                .append(std::to_string(last))
                .append("/")
                .append(std::to_string(f->size))
                .append("\r\n");
        }
    }
    if (gz && code != 304) h.append("Content-Encoding: gzip\r\n");
    uint64_t length = code == 304 || size == 0 ? 0 : last - first + 1;
    if (f->on_disk) {
        // Sent from the file after the head (flush, send_file).
        if (gz && !r->head_only) {
            r->close_file();
            r->file_fd = ::open(f->gz_path.c_str(), O_RDONLY | O_CLOEXEC);
            if (r->file_fd < 0) {
                answer_error(r, 500, "the file cannot be served");
                return;
            }
        }
        if (r->head_only || length == 0) {
            r->close_file();
        } else {
            r->file_off = first;
            r->file_end = first + length;
        }
        r->body_ref = std::string_view("", 0);  // no body bytes in memory
    } else {
        std::string_view body = gz ? std::string_view(f->gz) : std::string_view(f->body);
        r->body_ref = length ? body.substr(first, length) : std::string_view("", 0);
    }
    ready_here(r, code, f->type, h, static_cast<size_t>(length));
}

// Response cache: true when answered from it or waiting on the leader.
bool Connection::cache_lookup(Request *r, const RouteRules &rr) {
    std::string &key = r->cache_key;
    key.assign("GET ");
    key.append(r->view(r->target));
    for (const std::string &h : rr.cache_vary) {
        key.push_back('\n');
        key.append(h).push_back(':');
        key.append(find_header(*r, h));
    }
    Server &srv = w.server;
    uint64_t now = ResponseCache::now_ms();
    ResponseCache::Lookup l = srv.cache->lookup(key, now, srv.limits().handler_timeout_ms, r->id());
    switch (l.outcome) {
    case ResponseCache::Outcome::Hit: {
        const CachedAnswer &a = *l.answer;
        r->cached = std::move(l.answer);
        // The stored header lines go out as they are (the request holds the
        // entry); Age and the encoding's lines join the rules' own lines.
        char age[24];
        auto end = std::to_chars(age, age + sizeof age, elapsed_ms(now, a.stored_ms) / 1000).ptr;
        r->rule_headers.append("Age: ").append(age, end).append("\r\n");
        r->body_ref = Server::cached_body(a, *r, r->rule_headers);
        if (!status_has_body(a.status)) r->head_only = true;
        ready_here(r, a.status, a.content_type, a.headers, r->body_ref.size());
        return true;
    }
    case ResponseCache::Outcome::Wait:
        r->cache_wait = true;
        r->dispatched = true;
        r->dispatched_ms = w.now_ms();
        srv.requests_in_flight.fetch_add(1, std::memory_order_relaxed);
        return true;
    case ResponseCache::Outcome::Lead:
        r->cache_lead = true;
        return false;
    }
    return false;
}

// Rate limit, then API key: false when answered here (429, 401, 403).
bool Connection::admit(Request *r, const Route &route, const AppRules &app) {
    const RouteRules *own = route.rules.get();
    bool own_rate = own && own->rate.requests;
    const RateRule &rate = own_rate ? own->rate : app.rate;
    if (rate.requests) {
        std::string_view key;
        if (!rate.key_header.empty()) key = find_header(*r, rate.key_header);
        if (key.empty()) key = {peer_ip_, peer_ip_len_};
        // One bucket per route for a route's own limit; one for the whole app otherwise.
        uint32_t scope = own_rate ? route.index : UINT32_MAX;
        RateLimiter::Verdict v = w.server.rate_limiter.take(scope, key, rate, w.now_ms());
        char h[160];
        int n = snprintf(h, sizeof h, "RateLimit-Limit: %u\r\nRateLimit-Remaining: %u\r\nRateLimit-Reset: %u\r\n",
                         rate.requests, v.remaining, v.reset_s);
        r->rule_headers.append(h, static_cast<size_t>(n));
        if (!v.allowed) {
            n = snprintf(h, sizeof h, "Retry-After: %u\r\n", v.retry_after_s);
            answer_error(r, 429, "Too Many Requests", {h, static_cast<size_t>(n)});
            return false;
        }
    }
    if (own && own->require_api_key) {
        const ApiKeys *keys = app.api_keys.get();  // checked at ql_server_new: set when a route needs it
        bool found = false;
        std::string_view cand = keys ? find_header(*r, keys->header, &found) : std::string_view();
        static thread_local std::string decoded;
        if (!found && keys && !keys->query.empty()) {
            std::string_view qs = r->view(r->query);
            while (!qs.empty() && !found) {
                size_t amp = qs.find('&');
                std::string_view pair = qs.substr(0, amp);
                qs = amp == std::string_view::npos ? std::string_view{} : qs.substr(amp + 1);
                size_t eq = pair.find('=');
                if (eq == std::string_view::npos || pair.substr(0, eq) != keys->query) continue;
                found = percent_decode(pair.substr(eq + 1), true, decoded);
                cand = decoded;
            }
        }
        if (!found || cand.empty()) {
            answer_error(r, 401, "Not authenticated");
            return false;
        }
        if (!keys->accepts(cand)) {
            answer_error(r, 403, "Invalid API key");
            return false;
        }
    }
    return true;
}

void Connection::fail(int status, std::string_view msg) {
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

void Connection::flush() {
    while (!closing_ && !writing_) {
        if (head_ && head_->file_fd >= 0 && head_->head_sent) {
            // A file answer whose head went out: its bytes, from the file.
            if (!send_file(head_)) return;
            complete(1);
            continue;
        }
        uv_buf_t bufs[kMaxBatch * 2];
        unsigned nb = 0;
        uint32_t n = 0;
        size_t total = 0;
        bool stream = false;
        bool file = false;
        for (Request *r = head_; r && r->ready && n < kMaxBatch; r = r->next, ++n) {
            if (r->file_fd >= 0) {
                // A file sent from disk ends the batch: its head goes out with
                // the answers before it, then send_file writes its bytes.
                bufs[nb++] = uv_buf_init(r->out_head.data(), static_cast<unsigned>(r->out_head.size()));
                total += r->out_head.size();
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
                    total += r->out_head.size();
                }
                r->out_body.swap(r->stream_out);  // out_body stays untouched until the write ends
                r->stream_out.clear();
                r->inflight_data = r->stream_out_data;
                r->stream_out_data = 0;
                if (!r->out_body.empty()) {
                    bufs[nb++] = uv_buf_init(r->out_body.data(), static_cast<unsigned>(r->out_body.size()));
                    total += r->out_body.size();
                }
                n = 1;
                break;
            }
            bufs[nb++] = uv_buf_init(r->out_head.data(), static_cast<unsigned>(r->out_head.size()));
            total += r->out_head.size();
            if (!r->head_only) {
                std::string_view b = r->body_ref.data() ? r->body_ref : std::string_view(r->out_body);
                if (!b.empty()) {
                    bufs[nb++] = uv_buf_init(const_cast<char *>(b.data()), static_cast<unsigned>(b.size()));
                    total += b.size();
                }
            }
            if (!r->keep_alive) {
                ++n;
                break;  // nothing after a closing answer
            }
        }
        if (n == 0) break;
        if (stream && nb == 0) {
            // Nothing new to write for the streamed answer at the head.
            if (head_->stream_done) {
                complete(1);
                continue;
            }
            break;
        }
        auto *stream_h = reinterpret_cast<uv_stream_t *>(&tcp_);
        if (w.server.metrics) w.server.metrics->bytes_out.fetch_add(total, std::memory_order_relaxed);
        int written = uv_try_write(stream_h, bufs, nb);
        if (written == UV_EAGAIN || written == UV_ENOSYS) written = 0;
        if (written < 0) {
            close();
            return;
        }
        if (static_cast<size_t>(written) == total) {
            if (stream)
                stream_written();
            else
                head_written(n, file);
            continue;
        }
        // Partial: queue the rest; buffers stay alive in the requests until on_write.
        unsigned i = 0;
        size_t skip = static_cast<size_t>(written);
        while (skip >= bufs[i].len) skip -= bufs[i++].len;
        bufs[i].base += skip;
        bufs[i].len -= static_cast<unsigned>(skip);
        writing_ = n;
        writing_stream_ = stream;
        writing_file_ = file;
        if (uv_write(&wreq_, stream_h, bufs + i, nb - i, on_write) != 0) {
            writing_ = 0;
            close();
        }
        return;
    }
    if (!closing_ && !head_ && (close_after_ || w.stopping())) close_or_linger();
    if (const ql_handler *h = drain_h_) {
        drain_h_ = nullptr;
        h->on_drain(h->user_data, drain_id_, drain_tag_);  // a stale id only makes its writes QL_E_GONE
    }
}

// The bytes of a streamed answer went out: finish it once its last chunk has.
void Connection::stream_written() {
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
void Connection::head_written(uint32_t n, bool file) {
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
bool Connection::send_file(Request *r) {
    uv_os_fd_t sock;
    if (uv_fileno(reinterpret_cast<uv_handle_t *>(&tcp_), &sock) != 0) {
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
        last_activity_ = w.now_ms();
        if (w.server.metrics) w.server.metrics->bytes_out.fetch_add(sent, std::memory_order_relaxed);
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
    if (w.server.metrics) w.server.metrics->bytes_out.fetch_add(static_cast<uint64_t>(k), std::memory_order_relaxed);
    uv_buf_t b = uv_buf_init(r->out_body.data(), static_cast<unsigned>(k));
    writing_ = 1;
    writing_file_ = true;
    if (uv_write(&wreq_, reinterpret_cast<uv_stream_t *>(&tcp_), &b, 1, on_write) != 0) {
        writing_ = 0;
        writing_file_ = false;
        close();
    }
    return false;
}

void Connection::on_write(uv_write_t *req, int status) {
    auto *c = static_cast<Connection *>(req->data);
    uint32_t n = c->writing_;
    bool stream = c->writing_stream_;
    bool file = c->writing_file_;
    c->writing_ = 0;
    c->writing_stream_ = false;
    c->writing_file_ = false;
    if (c->closing_) return;  // on_close releases what is left
    if (status < 0) {
        c->close();
        return;
    }
    c->last_activity_ = c->w.now_ms();
    if (stream)
        c->stream_written();
    else if (file && c->head_ && c->head_->head_sent)
        ;  // a chunk of a file: flush sends the rest
    else
        c->head_written(n, file);
    c->flush();
    c->update_reading();
}

void Connection::complete(uint32_t n) {
    for (uint32_t i = 0; i < n && head_; ++i) {
        Request *r = head_;
        head_ = r->next;
        if (!head_) tail_ = nullptr;
        --fifo_len_;
        if (!r->keep_alive) close_after_ = true;
        if (w.server.observe) observe(r);
        if (r == parsing_) {
            // Answered before its body ended: the rest is dropped as it comes,
            // and the request is freed at the body's end (body_ended).
            r->fifo_done = true;
            continue;
        }
        r->conn = nullptr;
        w.release(r);
    }
    last_activity_ = w.now_ms();
}

// ---- closing -----------------------------------------------------------

// An answer went out: count it for /metrics and log it when asked to.
void Connection::observe(Request *r) {
    Server &s = w.server;
    uint64_t micros = r->t0_ns ? (uv_hrtime() - r->t0_ns) / 1000 : 0;
    if (s.metrics)
        s.metrics->record(r->route ? r->route->index : s.router().size(), r->resp_status, micros, !r->host_answered);
    if (s.router().app_rules->access_log) s.log_access(*r, micros);
}

void Connection::close() {
    if (closing_) return;
    closing_ = true;
    reading_ = false;
    uv_close(reinterpret_cast<uv_handle_t *>(&tcp_), on_close);
}

void Connection::detach(Request *r) {
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
void Connection::abandon(Request *r) {
    if (r->cache_wait)
        w.release(r);
    else
        notify_abort(r);
}

void Connection::notify_abort(Request *r) {
    const ql_handler &h = r->route->handler->h;
    if (h.on_abort) h.on_abort(h.user_data, r->id(), r->tag);
}

// Handlers that held a request past handler_timeout_ms: the client gets a
// 503 in the request's place in the pipeline, and the request itself is
// abandoned like one whose client left, so the host may go on reading it
// until its (late) answer frees it.
void Connection::expire_handlers(uint64_t now) {
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
bool Connection::replace_unanswered(Request *r, int status, std::string_view msg, bool keep_alive) {
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

void Connection::on_close(uv_handle_t *h) {
    auto *c = static_cast<Connection *>(h->data);
    // A streamed body's request is in the FIFO (detached below) unless its
    // answer was written already.
    if (c->parsing_ && !c->parsing_->body_stream) c->w.release(c->parsing_);
    else if (c->parsing_ && c->parsing_->fifo_done) c->body_abandoned(c->parsing_);
    c->parsing_ = nullptr;
    while (Request *r = c->head_) {
        c->head_ = r->next;
        c->detach(r);
    }
    c->tail_ = nullptr;
    if (c->counted_) c->w.server.conns_open.fetch_sub(1);
    c->w.remove_conn(c);
    delete c;
}

void Connection::drain() {
    if (lingering_ || (idle() && !bytes_pending())) {
        close();
        return;
    }
    update_reading();
}

// Bytes the client sent that we have not read yet (a request sent just
// before the stop): such a connection is served once more, not dropped.
bool Connection::bytes_pending() {
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t *>(&tcp_), &fd) != 0) return false;
    char b;
    return ::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

void Connection::check_timeouts(uint64_t now) {
    if (closing_) return;
    const Limits &lim = w.server.limits();
    if (lingering_) {
        if (now - linger_start_ >= 2000) close();
        return;
    }
    if (body_paused_ && paused_peer_left()) {
        close();  // as a read of its EOF would: the host is told
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
        if (closing_) return;
    }
    if (parsing_ && !body_paused_) {
        uint64_t limit = headers_done_ ? lim.idle_timeout_ms : lim.header_timeout_ms;
        uint64_t since = headers_done_ ? last_activity_ : head_start_;
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
    if (!head_ && !writing_ && now - last_activity_ >= lim.idle_timeout_ms) close();
    // A client that stopped reading a file answer: no progress for the idle
    // timeout closes the connection (and the file).
    else if (writing_file_ && now - last_activity_ >= lim.idle_timeout_ms) close();
}

}  // namespace ql
