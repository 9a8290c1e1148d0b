// HTTP/1.1 parsing: llhttp's callbacks build the request in its arena, and
// the checks llhttp 8 does not make (line breaks, folding, the request
// line's spaces, unknown methods, Host, Transfer-Encoding) refuse a head
// with the status RFC 9112 asks for.
#include "http1/http1.hpp"

#include <algorithm>
#include <cstring>

#include "queue.hpp"
#include "server.hpp"
#include "worker.hpp"

namespace ql {

namespace {
Http1 *self(llhttp_t *p) { return static_cast<Http1 *>(p->data); }

// Host = uri-host [ ":" port ] (RFC 9110 7.2): reg-name, IPv4 or IP-literal
// characters only; empty is allowed.
bool valid_host(std::string_view v) {
    for (unsigned char ch : v) {
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) continue;
        if (!std::strchr("-._~!$&'()*+,;=%:[]", ch) || ch == 0) return false;
    }
    return true;
}
}  // namespace

const llhttp_settings_t *Http1::settings() {
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

// ---- reading -----------------------------------------------------------

void Http1::on_data(const char *data, size_t len) {
    if (close_after_) return;
    t.touch();
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
        // Upgrade): bytes after it are not HTTP we will read. Behind an
        // upgrade they may be a WebSocket's first frames: kept for it.
        close_after_ = true;
        if (parser_.upgrade && tail_ && tail_->route) {  // a WebSocket's, or a hijacker's
            const char *pos = llhttp_get_error_pos(&parser_);
            if (pos && pos >= data && pos < data + len) upgrade_rest_.assign(pos, data + len - pos);
        }
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
    if (t.closing()) return;
    flush();
    update_reading();
}

bool Http1::head_limit(Request *r, size_t more) {
    r->head_bytes += static_cast<uint32_t>(more);
    if (r->head_bytes > w.server.limits().max_header_bytes) {
        refuse(431, "request header fields too large");
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
bool Http1::gap_ok(const char *to) {
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

int Http1::refuse(int status, const char *why) {
    pending_status_ = status;
    pending_msg_ = why;
    return HPE_USER;
}

bool Http1::refuse_head(const char *why) {
    refuse(400, why);
    return false;
}

bool Http1::note_span(const char *at, size_t len) {
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
int Http1::unknown_method(const char *from, const char *to) {
    for (const char *q = from; q < to; ++q) {
        if (*q == ' ') return method_tchars_ > 0 ? 501 : 400;
        if (!valid_token(std::string_view(q, 1)) || ++method_tchars_ > 1024) return 400;
    }
    return 0;
}

int Http1::cb_method(llhttp_t *p, const char *at, size_t len) {
    Http1 *c = self(p);
    c->method_seen_ += static_cast<uint32_t>(len);
    return c->note_span(at, len) ? 0 : HPE_USER;
}

int Http1::cb_version(llhttp_t *p, const char *at, size_t len) {
    Http1 *c = self(p);
    if (!c->note_span(at, len)) return HPE_USER;
    if (c->last_gap_ != 0 && c->last_gap_ != sizeof " HTTP/" - 1) {
        // One SP between target and version (RFC 9112 3); llhttp skips several.
        return c->refuse(400, "invalid request line");
    }
    return 0;
}

int Http1::cb_message_begin(llhttp_t *p) {
    Http1 *c = self(p);
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

int Http1::cb_url(llhttp_t *p, const char *at, size_t len) {
    Http1 *c = self(p);
    Request *r = c->parsing_;
    if (r->target.len + len > c->w.server.limits().max_url_bytes) {
        return c->refuse(414, "request target too long");
    }
    if (!c->head_limit(r, len) || !c->note_span(at, len)) return HPE_USER;
    if (r->target.len == 0 && c->last_gap_ != 1) {
        // One SP between method and target (RFC 9112 3); llhttp skips several.
        return c->refuse(400, "invalid request line");
    }
    if (std::memchr(at, '#', len)) {
        // A fragment is not part of a request target (RFC 9112 3.2).
        return c->refuse(400, "invalid character in request target");
    }
    if (r->target.len == 0) r->target.off = static_cast<uint32_t>(r->arena.size());
    r->arena.append(at, len);
    r->target.len += static_cast<uint32_t>(len);
    return 0;
}

int Http1::cb_header_field(llhttp_t *p, const char *at, size_t len) {
    Http1 *c = self(p);
    Request *r = c->parsing_;
    if (!c->head_limit(r, len) || !c->note_span(at, len)) return HPE_USER;
    // Trailer fields of a chunked body: checked and counted, never added to
    // the header fields (they would skip the checks made when the head ended).
    if (c->headers_done_) return 0;
    if (r->headers.empty() || r->last_was_value) {
        if (r->headers.size() >= c->w.server.limits().max_headers) {
            return c->refuse(431, "too many request header fields");
        }
        r->headers.push_back({{static_cast<uint32_t>(r->arena.size()), 0}, {0, 0}});
        r->last_was_value = false;
    }
    r->arena.append(at, len);
    r->headers.back().name.len += static_cast<uint32_t>(len);
    return 0;
}

int Http1::cb_header_value(llhttp_t *p, const char *at, size_t len) {
    Http1 *c = self(p);
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

int Http1::cb_headers_complete(llhttp_t *p) {
    Http1 *c = self(p);
    Request *r = c->parsing_;
    const Limits &lim = c->w.server.limits();
    if (p->http_major != 1) {
        return c->refuse(505, "HTTP version not supported");
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
            return c->refuse(400, "invalid header field name");
        }
        for (unsigned char ch : r->view(h.value)) {
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                return c->refuse(400, ch == '\r' || ch == '\n' ? "obsolete line folding is not allowed"
                                                           : "invalid character in header value");
            }
        }
        if (iequals(name, "host")) {
            ++hosts;
            if (!valid_host(r->view(h.value))) {
                return c->refuse(400, "invalid Host header");
            }
        } else if (iequals(name, "expect")) {
            expect = r->view(h.value);
        } else if (iequals(name, "transfer-encoding")) {
            // llhttp has checked that chunked is final; any other coding is
            // one we do not decode (RFC 9112 6.1 and 7: 501), and an HTTP/1.0
            // message with Transfer-Encoding has faulty framing (400).
            if (r->http_minor == 0) {
                return c->refuse(400, "Transfer-Encoding in an HTTP/1.0 request");
            }
            std::string_view v = r->view(h.value);
            while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
            if (!iequals(v, "chunked")) {
                std::string_view last = v.substr(v.rfind(',') == std::string_view::npos ? 0 : v.rfind(',') + 1);
                while (!last.empty() && (last.front() == ' ' || last.front() == '\t')) last.remove_prefix(1);
                bool final_chunked = iequals(last, "chunked");
                return final_chunked ? c->refuse(501, "unsupported transfer coding")
                                     : c->refuse(400, "chunked must be the final transfer coding");
            }
        }
    }
    if (r->http_minor == 1 && hosts == 0) {
        return c->refuse(400, "missing Host header");
    }
    if (hosts > 1) {
        return c->refuse(400, "duplicate Host header");
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
        return c->refuse(413, "request body too large");
    }
    if (!expect.empty()) {
        if (!iequals(expect, "100-continue")) {
            return c->refuse(417, "unsupported Expect value");
        }
        // A streamed body: 100 Continue when the host first reads it.
        if (streamed) r->expect_continue = r->http_minor == 1 && r->content_length != 0;
        // Interim answer only when nothing earlier is still owed on this
        // connection, so answers never leave out of order.
        else if (r->http_minor == 1 && !c->head_ && !c->writing_) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            int n = c->t.try_write(cont, sizeof cont - 1);
            if (n != static_cast<int>(sizeof cont - 1)) {
                // The socket buffer is empty here, so this only fails when the peer is gone.
                return c->refuse(400, "could not send 100 Continue");
            }
        }
    }
    c->headers_done_ = true;
    r->body = {static_cast<uint32_t>(r->arena.size()), 0};
    if (streamed) {
        r->body_stream = true;
        r->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade && !c->w.stopping();
        r->upgrade = p->upgrade;
        c->push(r);
        c->dispatch(r);  // answered natively, or handed to the host before its body
    }
    return 0;
}

int Http1::cb_body(llhttp_t *p, const char *at, size_t len) {
    Http1 *c = self(p);
    Request *r = c->parsing_;
    if (r->body_stream) return c->body_arrived(r, at, len) ? 0 : HPE_USER;
    if (r->body.len + len > c->w.server.limits().max_body_bytes) {
        return c->refuse(413, "request body too large");
    }
    r->arena.append(at, len);
    r->body.len += static_cast<uint32_t>(len);
    return 0;
}

// A chunk announced past the body limit is refused at once, not after the
// client has sent up to the limit (or stalled before it).
int Http1::cb_chunk_header(llhttp_t *p) {
    Http1 *c = self(p);
    Request *r = c->parsing_;
    if (r->body_stream) {
        if (!r->ready && r->body_limit && p->content_length > r->body_limit - r->body_seen) {
            return c->refuse(413, "request body too large");
        }
        return 0;
    }
    if (p->content_length > c->w.server.limits().max_body_bytes - r->body.len) {
        return c->refuse(413, "request body too large");
    }
    return 0;
}

int Http1::cb_message_complete(llhttp_t *p) {
    Http1 *c = self(p);
    Request *r = c->parsing_;
    if (c->span_seen_ && !c->gap_ok(c->buf_end_)) return HPE_USER;  // after trailers
    c->span_seen_ = false;
    c->parsing_ = nullptr;
    c->t.touch();
    if (r->body_stream) {
        bool keep = r->keep_alive && !c->w.stopping();
        c->body_ended(r);  // may free r
        return keep ? 0 : HPE_PAUSED;
    }
    r->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade && !c->w.stopping();
    r->upgrade = p->upgrade;
    c->push(r);
    c->dispatch(r);
    if (!r->keep_alive) return HPE_PAUSED;
    return 0;
}

}  // namespace ql
