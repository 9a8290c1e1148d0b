#include "connection.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstring>

#include "queue.hpp"
#include "response_writer.hpp"
#include "server.hpp"
#include "worker.hpp"

namespace ql {

namespace {
constexpr uint32_t kMaxBatch = 16;

Connection *self(llhttp_t *p) { return static_cast<Connection *>(p->data); }

bool find_path(std::string_view target, size_t &path_off, size_t &path_len) {
    if (!target.empty() && target[0] == '/') {
        path_off = 0;
    } else {
        // absolute-form (RFC 9112 3.2.2): skip "scheme://authority"
        size_t scheme = target.find("://");
        if (scheme == std::string_view::npos) return false;
        size_t slash = target.find('/', scheme + 3);
        if (slash == std::string_view::npos) return false;  // "http://host" alone: treated as bad here
        path_off = slash;
    }
    size_t q = target.find_first_of("?#", path_off);
    path_len = (q == std::string_view::npos ? target.size() : q) - path_off;
    return true;
}
}  // namespace

Connection::Connection(Worker &worker) : w(worker) {
    llhttp_init(&parser_, HTTP_REQUEST, settings());
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
        st.on_url = cb_url;
        st.on_version = cb_version;
        st.on_header_field = cb_header_field;
        st.on_header_value = cb_header_value;
        st.on_headers_complete = cb_headers_complete;
        st.on_body = cb_body;
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
    c->handle_data(buf->base, static_cast<size_t>(nread));
}

void Connection::handle_data(const char *data, size_t len) {
    if (closing_ || close_after_) return;
    last_activity_ = w.now_ms();
    in_read = true;
    buf_start_ = data;
    buf_end_ = data + len;
    // A value that ended inside the previous buffer cannot continue here.
    if (value_end_) value_end_ = reinterpret_cast<const char *>(1);
    queue_batch_begin();
    llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    queue_batch_end();
    for (size_t i = len > 3 ? len - 3 : 0; i < len; ++i) {
        hist_[0] = hist_[1];
        hist_[1] = hist_[2];
        hist_[2] = static_cast<unsigned char>(data[i]);
    }
    consumed_ += len;
    in_read = false;
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
        // A request that ends the connection (Connection: close, HTTP/1.0,
        // Upgrade): bytes after it are not HTTP we will read.
        close_after_ = true;
    } else if (err != HPE_OK) {
        int status = pending_status_;
        const char *msg = pending_msg_;
        if (!status) {
            switch (err) {
            case HPE_INVALID_VERSION: status = 505; msg = "HTTP version not supported"; break;
            case HPE_INVALID_METHOD: status = 400; msg = "invalid or unknown method"; break;
            default: status = 400; msg = llhttp_get_error_reason(&parser_); break;
            }
        }
        fail(status, msg ? msg : "malformed request");
    }
    if (closing_) return;
    flush();
    update_reading();
}

void Connection::update_reading() {
    if (closing_) return;
    bool want = !close_after_ && !w.stopping() && fifo_len_ < w.server.limits().max_pipeline;
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

int Connection::cb_message_begin(llhttp_t *p) {
    Connection *c = self(p);
    Request *r = c->w.acquire();
    r->conn = c;
    c->parsing_ = r;
    c->headers_done_ = false;
    c->head_start_ = c->w.now_ms();
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
    if (!c->head_limit(r, len)) return HPE_USER;
    if (r->target.len == 0) r->target.off = static_cast<uint32_t>(r->arena.size());
    r->arena.append(at, len);
    r->target.len += static_cast<uint32_t>(len);
    return 0;
}

// The byte at a stream offset: in the current read, or one of the 3 before it; -1 if unknown.
int Connection::byte_at(uint64_t off) const {
    if (off >= consumed_) {
        uint64_t i = off - consumed_;
        return i < static_cast<uint64_t>(buf_end_ - buf_start_) ? static_cast<unsigned char>(buf_start_[i]) : -1;
    }
    uint64_t back = consumed_ - off;
    return back <= 3 && back <= consumed_ ? hist_[3 - back] : -1;
}

// The request line ends like a field line: the bare-LF checks look at the
// bytes after the version as after a value.
int Connection::cb_version(llhttp_t *p, const char *at, size_t len) {
    Connection *c = self(p);
    c->line_end_ = c->offset(at + len);
    return 0;
}

int Connection::cb_header_field(llhttp_t *p, const char *at, size_t len) {
    Connection *c = self(p);
    Request *r = c->parsing_;
    if (!c->head_limit(r, len)) return HPE_USER;
    // Trailer fields of a chunked body: counted, never added to the header
    // fields (they would skip the checks made when the head ended).
    if (c->headers_done_) return 0;
    if ((r->headers.empty() || r->last_was_value) && !c->crlf_at(c->offset(at) - 2)) {
        // The line before this field ended in a bare LF (llhttp 8 accepts one after the request line).
        c->pending_status_ = 400;
        c->pending_msg_ = "bare LF is not allowed as a line terminator";
        return HPE_USER;
    }
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
    if (!c->head_limit(r, len)) return HPE_USER;
    if (c->headers_done_) return 0;  // a trailer field's value
    bool first = !r->last_was_value;
    if (first) {
        r->headers.back().value = {static_cast<uint32_t>(r->arena.size()), 0};
        r->last_was_value = true;
    } else if (at != c->value_end_ && !(at == c->buf_start_ && c->value_end_ == nullptr)) {
        // llhttp 8 hands an obs-fold continuation line over as more value.
        c->pending_status_ = 400;
        c->pending_msg_ = "obsolete line folding is not allowed";
        return HPE_USER;
    }
    // A value piece ending at the buffer's end continues at the next buffer's start.
    c->value_end_ = at + len == c->buf_end_ ? nullptr : at + len;
    // llhttp reports an empty value at the start of the next line, after its CRLF.
    c->line_end_ = c->offset(at + len) - (first && len == 0 ? 2 : 0);
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
    // The empty line ending the head must be CRLF too (llhttp 8 accepts a bare LF).
    if (!c->crlf_at(c->line_end_) || !c->crlf_at(c->line_end_ + 2)) {
        c->pending_status_ = 400;
        c->pending_msg_ = "bare LF is not allowed as a line terminator";
        return HPE_USER;
    }
    r->http_minor = p->http_minor;
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
        if (iequals(name, "host")) ++hosts;
        else if (iequals(name, "expect")) expect = r->view(h.value);
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
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > lim.max_body_bytes) {
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
        // Interim answer only when nothing earlier is still owed on this
        // connection, so answers never leave out of order.
        if (r->http_minor == 1 && !c->head_ && !c->writing_) {
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
    return 0;
}

int Connection::cb_body(llhttp_t *p, const char *at, size_t len) {
    Connection *c = self(p);
    Request *r = c->parsing_;
    if (r->body.len + len > c->w.server.limits().max_body_bytes) {
        c->pending_status_ = 413;
        c->pending_msg_ = "request body too large";
        return HPE_USER;
    }
    r->arena.append(at, len);
    r->body.len += static_cast<uint32_t>(len);
    return 0;
}

int Connection::cb_message_complete(llhttp_t *p) {
    Connection *c = self(p);
    Request *r = c->parsing_;
    c->parsing_ = nullptr;
    r->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade && !c->w.stopping();
    c->last_activity_ = c->w.now_ms();
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
    r->out_body = error_body(msg);
    r->body_ref = {};
    // An answer to HEAD carries no body bytes, errors (404, 405, 400) included.
    r->head_only = std::strcmp(r->method_name, "HEAD") == 0;
    HeadParams hp{status, "application/json", extra, r->out_body.size(), r->keep_alive, r->http_minor == 0, w.date};
    format_head(r->out_head, hp);
    r->ready = true;
}

void Connection::dispatch(Request *r) {
    Server &srv = w.server;
    srv.requests_total.fetch_add(1, std::memory_order_relaxed);
    std::string_view target = r->view(r->target);
    size_t poff = 0, plen = 0;
    if (!find_path(target, poff, plen)) {
        answer_error(r, 400, "invalid request target");
        return;
    }
    r->path = {r->target.off + static_cast<uint32_t>(poff), static_cast<uint32_t>(plen)};
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
    if (const StaticAnswer *a = m.route->answer.get()) {
        r->body_ref = a->body;
        if (!status_has_body(a->status)) r->head_only = true;
        HeadParams hp{a->status, a->content_type, a->extra_headers, a->body.size(), r->keep_alive,
                      r->http_minor == 0, w.date};
        format_head(r->out_head, hp);
        r->ready = true;
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
    std::memcpy(r->client_ip, peer_ip_, peer_ip_len_ + 1u);
    r->client_ip_len = peer_ip_len_;
    r->client_port = peer_port_;
    r->dispatched = true;
    srv.requests_in_flight.fetch_add(1, std::memory_order_relaxed);
    const ql_handler &h = m.route->handler->h;
    h.on_request(h.user_data, reinterpret_cast<ql_request *>(r));
}

void Connection::fail(int status, std::string_view msg) {
    Request *r = parsing_;
    parsing_ = nullptr;
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
        uv_buf_t bufs[kMaxBatch * 2];
        unsigned nb = 0;
        uint32_t n = 0;
        size_t total = 0;
        bool stream = false;
        for (Request *r = head_; r && r->ready && n < kMaxBatch; r = r->next, ++n) {
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
                complete(n);
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
        if (uv_write(&wreq_, stream_h, bufs + i, nb - i, on_write) != 0) {
            writing_ = 0;
            close();
        }
        return;
    }
    if (!closing_ && !head_ && (close_after_ || w.stopping())) close();
}

// The bytes of a streamed answer went out: finish it once its last chunk has.
void Connection::stream_written() {
    Request *r = head_;
    r->head_sent = true;
    r->out_body.clear();
    r->stream_buffered.fetch_sub(r->inflight_data, std::memory_order_relaxed);
    r->inflight_data = 0;
    if (r->stream_done && r->stream_out.empty()) complete(1);
}

void Connection::on_write(uv_write_t *req, int status) {
    auto *c = static_cast<Connection *>(req->data);
    uint32_t n = c->writing_;
    bool stream = c->writing_stream_;
    c->writing_ = 0;
    c->writing_stream_ = false;
    if (c->closing_) return;  // on_close releases what is left
    if (status < 0) {
        c->close();
        return;
    }
    c->last_activity_ = c->w.now_ms();
    if (stream)
        c->stream_written();
    else
        c->complete(n);
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
        r->conn = nullptr;
        w.release(r);
    }
    last_activity_ = w.now_ms();
}

// ---- closing -----------------------------------------------------------

void Connection::close() {
    if (closing_) return;
    closing_ = true;
    reading_ = false;
    uv_close(reinterpret_cast<uv_handle_t *>(&tcp_), on_close);
}

void Connection::detach(Request *r) {
    uint64_t old = r->state.fetch_or(RS_GONE, std::memory_order_acq_rel);
    r->conn = nullptr;
    if (r->ready || !r->dispatched) {
        w.release(r);
    } else if (!(old & RS_ANSWERED)) {
        // The host still owns it: tell it once; its ql_respond frees it.
        const ql_handler &h = r->route->handler->h;
        if (h.on_abort) h.on_abort(h.user_data, r->id(), r->tag);
    }
    // else: an answer is queued for the loop; on_answer frees it.
}

void Connection::on_close(uv_handle_t *h) {
    auto *c = static_cast<Connection *>(h->data);
    if (c->parsing_) {
        c->w.release(c->parsing_);
        c->parsing_ = nullptr;
    }
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
    update_reading();
    if (idle()) close();
}

void Connection::check_timeouts(uint64_t now) {
    if (closing_) return;
    const Limits &lim = w.server.limits();
    if (parsing_) {
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
}

}  // namespace ql
