#include "server.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <thread>

#include "response_writer.hpp"
#include "request.hpp"
#include "worker.hpp"

namespace ql {

bool limits_from_options(const ql_server_options *o, Limits &l, std::string *err) {
    unsigned hw = std::thread::hardware_concurrency();
    l.workers = hw ? std::min(hw, 256u) : 1;
    if (!o) return true;
    if (o->version < 1) {
        *err = "ql_server_options.version must be set (use QL_SERVER_OPTIONS_INIT)";
        return false;
    }
    if (o->host && o->host_len) l.host.assign(o->host, o->host_len);
    if (l.host.empty() || l.host.size() > 253) {
        *err = "host must be a non-empty address or name";
        return false;
    }
    l.port = o->port;
    auto pick = [](auto v, auto def) { return v ? v : def; };
    l.workers = pick(o->workers, l.workers);
    l.max_header_bytes = pick(o->max_header_bytes, l.max_header_bytes);
    l.max_url_bytes = pick(o->max_url_bytes, l.max_url_bytes);
    l.max_body_bytes = pick(o->max_body_bytes, l.max_body_bytes);
    l.max_headers = pick(o->max_headers, l.max_headers);
    l.header_timeout_ms = pick(o->header_timeout_ms, l.header_timeout_ms);
    l.idle_timeout_ms = pick(o->idle_timeout_ms, l.idle_timeout_ms);
    l.max_connections = pick(o->max_connections, l.max_connections);
    l.max_pipeline = pick(o->max_pipeline, l.max_pipeline);
    l.backlog = pick(o->backlog, l.backlog);
    if (o->version >= 2) l.reuse_port = o->reuse_port != 0;
    if (o->version >= 3) l.handler_timeout_ms = pick(o->handler_timeout_ms, l.handler_timeout_ms);
    if (o->version >= 4) {
        l.max_stream_body_bytes = o->max_stream_body_bytes;
        l.body_window_bytes = pick(o->body_window_bytes, l.body_window_bytes);
    }
    struct Check {
        const char *name;
        uint64_t v, lo, hi;
    } checks[] = {
        {"workers", l.workers, 1, 256},
        {"max_header_bytes", l.max_header_bytes, 256, 1u << 20},
        {"max_url_bytes", l.max_url_bytes, 16, 1u << 20},
        {"max_body_bytes", l.max_body_bytes, 1, 3ull << 30},
        {"max_headers", l.max_headers, 1, 10000},
        {"header_timeout_ms", l.header_timeout_ms, 10, 3600000},
        {"idle_timeout_ms", l.idle_timeout_ms, 10, 86400000},
        {"max_connections", l.max_connections, 1, 10000000},
        {"max_pipeline", l.max_pipeline, 1, 1024},
        {"backlog", l.backlog, 1, 65535},
        {"handler_timeout_ms", l.handler_timeout_ms, 10, 86400000},
        {"body_window_bytes", l.body_window_bytes, 4096, 64u << 20},
    };
    for (const Check &c : checks) {
        if (c.v < c.lo || c.v > c.hi) {
            *err = std::string(c.name) + " = " + std::to_string(c.v) + " is out of range [" + std::to_string(c.lo) +
                   ", " + std::to_string(c.hi) + "]";
            return false;
        }
    }
    // Bodies live in one request arena indexed by 32-bit offsets.
    if (l.max_body_bytes + l.max_header_bytes + 2ull * l.max_url_bytes >= (1ull << 32)) {
        *err = "max_body_bytes is out of range (must stay below 4 GiB with the header limits)";
        return false;
    }
    return true;
}

Server::Server(std::shared_ptr<const Router> router, Limits limits)
    : router_(std::move(router)), limits_(std::move(limits)) {
    for (const auto &r : router_->routes()) {
        if (r->metrics) metrics = std::make_unique<Metrics>(router_->size());
        if (r->dir && !files) files = std::make_unique<FileCache>(256ull << 20);
        if (r->rules && r->rules->cache_ttl_ms && !cache)
            cache = std::make_unique<ResponseCache>(router_->app_rules->cache_max_bytes);
        if (r->rules && r->rules->stream_body) streams = true;
    }
    observe = metrics || router_->app_rules->access_log;
}

void Server::render_metrics(std::string &out) const {
    out.clear();
    out.append("# HELP quicklane_requests_total Requests answered, by route and status.\n"
               "# TYPE quicklane_requests_total counter\n");
    const auto &routes = router_->routes();
    auto labels = [&](size_t i) {
        std::string l = "method=\"";
        if (i < routes.size()) {
            prom_label(l, routes[i]->method);
            l.append("\",route=\"");
            prom_label(l, routes[i]->pattern);
        } else {
            l.append("\",route=\"");  // no route: 404, 405 and malformed requests
        }
        l.push_back('"');
        return l;
    };
    for (size_t i = 0; i < metrics->routes.size(); ++i) {
        const Metrics::Route &m = *metrics->routes[i];
        for (size_t s = 0; s < Metrics::kStatusSlots; ++s) {
            uint32_t st = m.status[s].load(std::memory_order_acquire);
            if (!st) break;
            out.append("quicklane_requests_total{").append(labels(i)).append(",status=\"");
            out.append(std::to_string(st)).append("\"} ").append(std::to_string(m.count[s].load())).append("\n");
        }
    }
    out.append("# HELP quicklane_request_duration_seconds Time from the first byte of a request to its answer "
               "written.\n# TYPE quicklane_request_duration_seconds histogram\n");
    char num[32];
    for (size_t i = 0; i < metrics->routes.size(); ++i) {
        const Metrics::Route &m = *metrics->routes[i];
        uint64_t cum = 0;
        std::string l = labels(i);
        for (size_t b = 0; b <= Metrics::kBuckets.size(); ++b) {
            cum += m.hist[b].load(std::memory_order_relaxed);
            out.append("quicklane_request_duration_seconds_bucket{").append(l).append(",le=\"");
            if (b < Metrics::kBuckets.size()) {
                snprintf(num, sizeof num, "%g", Metrics::kBuckets[b]);
                out.append(num);
            } else {
                out.append("+Inf");
            }
            out.append("\"} ").append(std::to_string(cum)).append("\n");
        }
        snprintf(num, sizeof num, "%.6f", m.micros_sum.load() / 1e6);
        out.append("quicklane_request_duration_seconds_sum{").append(l).append("} ").append(num).append("\n");
        out.append("quicklane_request_duration_seconds_count{").append(l).append("} ").append(std::to_string(cum));
        out.append("\n");
    }
    auto gauge = [&](const char *name, const char *type, const char *help, uint64_t v) {
        out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ").append(name).append(" ");
        out.append(type).append("\n").append(name).append(" ").append(std::to_string(v)).append("\n");
    };
    gauge("quicklane_connections_open", "gauge", "Open client connections.", conns_open.load());
    gauge("quicklane_connections_total", "counter", "Accepted client connections.", conns_total.load());
    gauge("quicklane_requests_in_flight", "gauge", "Requests held by host handlers.", requests_in_flight.load());
    gauge("quicklane_bytes_received_total", "counter", "Bytes read from clients.", metrics->bytes_in.load());
    gauge("quicklane_bytes_sent_total", "counter", "Bytes written to clients.", metrics->bytes_out.load());
    gauge("quicklane_requests_native_total", "counter", "Requests answered by the core (static, rules, errors).",
          metrics->native_total.load());
    gauge("quicklane_requests_host_total", "counter", "Requests answered by host-language handlers.",
          metrics->host_total.load());
}

void Server::log_access(const Request &r, uint64_t micros) const {
    std::string line;
    line.reserve(256);
    auto str = [&line](std::string_view v) {
        line.push_back('"');
        for (unsigned char c : v) {
            if (c == '"' || c == '\\') {
                line.push_back('\\');
                line.push_back(static_cast<char>(c));
            } else if (c < 0x20) {
                char esc[8];
                snprintf(esc, sizeof esc, "\\u%04x", c);
                line.append(esc);
            } else {
                line.push_back(static_cast<char>(c));
            }
        }
        line.push_back('"');
    };
    line.append("{\"time\":");
    str(r.worker->date);
    line.append(",\"client\":");
    str({r.client_ip, r.client_ip_len});
    line.append(",\"method\":");
    str(r.method_name);
    line.append(",\"target\":");
    str(r.view(r.target));
    line.append(",\"route\":");
    str(r.route ? std::string_view(r.route->pattern) : std::string_view());
    line.append(",\"status\":").append(std::to_string(r.resp_status));
    char num[32];
    snprintf(num, sizeof num, "%.3f", micros / 1000.0);
    line.append(",\"duration_ms\":").append(num);
    line.append(",\"native\":").append(r.host_answered ? "false" : "true").append("}\n");
    fwrite(line.data(), 1, line.size(), stderr);  // one write per line (stderr is unbuffered)
}

Server::~Server() {
    std::string err;
    stop(5000, &err);
}

namespace {

struct sockaddr_storage with_port(const struct addrinfo *ai, uint16_t port) {
    struct sockaddr_storage ss;
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ss.ss_family == AF_INET)
        reinterpret_cast<struct sockaddr_in *>(&ss)->sin_port = htons(port);
    else
        reinterpret_cast<struct sockaddr_in6 *>(&ss)->sin6_port = htons(port);
    return ss;
}

int bind_socket(const struct addrinfo *ai, uint16_t port, uint32_t backlog, std::string *err) {
    int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_storage ss = with_port(ai, port);
    if (::bind(fd, reinterpret_cast<struct sockaddr *>(&ss), ai->ai_addrlen) != 0 ||
        ::listen(fd, static_cast<int>(backlog)) != 0) {
        *err = "cannot listen on port " + std::to_string(port) + ": " + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    return fd;
}

uint16_t bound_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<struct sockaddr *>(&ss), &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<struct sockaddr_in *>(&ss)->sin_port);
    return ntohs(reinterpret_cast<struct sockaddr_in6 *>(&ss)->sin6_port);
}

}  // namespace

ql_status Server::bind_all(uint32_t n, std::vector<int> &fds, uint16_t &port, std::string *err) {
    struct addrinfo hints {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    struct addrinfo *res = nullptr;
    int gai = ::getaddrinfo(limits_.host.c_str(), "0", &hints, &res);
    if (gai != 0 || !res) {
        *err = "cannot resolve host \"" + limits_.host + "\": " + gai_strerror(gai);
        return QL_E_IO;
    }
    port = limits_.port;
    if (port != 0 && !limits_.reuse_port) {
        // SO_REUSEPORT would let us silently share a port with another
        // server; a plain bind first tells us whether anyone listens there.
        int probe = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_storage ss = with_port(res, port);
        int rc = probe >= 0 ? ::bind(probe, reinterpret_cast<struct sockaddr *>(&ss), res->ai_addrlen) : -1;
        int e = errno;
        if (probe >= 0) ::close(probe);
        if (rc != 0) {
            *err = "cannot listen on " + limits_.host + ":" + std::to_string(port) + ": " + std::strerror(e);
            ::freeaddrinfo(res);
            return QL_E_IO;
        }
    }
    for (uint32_t i = 0; i < n; ++i) {
        int fd = bind_socket(res, port, limits_.backlog, err);
        if (fd < 0) {
            for (int f : fds) ::close(f);
            fds.clear();
            ::freeaddrinfo(res);
            return QL_E_IO;
        }
        if (port == 0) port = bound_port(fd);  // the other workers join this port
        fds.push_back(fd);
    }
    ::freeaddrinfo(res);
    return QL_OK;
}

ql_status Server::start(std::string *err) {
    std::lock_guard lk(lifecycle_);
    if (state_ != State::New) {
        *err = "server was already started; create a new server to serve again";
        return QL_E_STATE;
    }
    std::vector<int> fds;
    uint16_t port = 0;
    if (ql_status st = bind_all(limits_.workers, fds, port, err); st != QL_OK) return st;
    state_ = State::Running;
    // Every worker exists before the first thread runs: a running loop reads
    // workers_ (find, for any request id), so it must not grow meanwhile.
    workers_.reserve(limits_.workers);
    for (uint32_t i = 0; i < limits_.workers; ++i) workers_.push_back(std::make_unique<Worker>(*this, i));
    for (uint32_t i = 0; i < limits_.workers; ++i) {
        if (!workers_[i]->start(fds[i], err)) {
            for (uint32_t k = i + 1; k < fds.size(); ++k) ::close(fds[k]);
            for (auto &w : workers_) w->request_stop(0);
            for (auto &w : workers_) w->join();
            state_ = State::Stopped;
            return QL_E_IO;
        }
    }
    port_.store(port);
    return QL_OK;
}

ql_status Server::start_on_loop(uv_loop_t *loop, std::string *err) {
    std::lock_guard lk(lifecycle_);
    if (state_ != State::New) {
        *err = "server was already started; create a new server to serve again";
        return QL_E_STATE;
    }
    std::vector<int> fds;
    uint16_t port = 0;
    if (ql_status st = bind_all(1, fds, port, err); st != QL_OK) return st;
    hosted_ = true;
    state_ = State::Running;
    workers_.push_back(std::make_unique<Worker>(*this, 0));
    if (!workers_.back()->start_on(loop, fds[0], err)) {
        // The listener is closing on the host's loop; the worker stays until it has.
        state_ = State::Stopped;
        return QL_E_IO;
    }
    port_.store(port);
    return QL_OK;
}

ql_status Server::stop_async(uint32_t timeout_ms, ql_stopped_fn done, void *user_data, std::string *err) {
    std::lock_guard lk(lifecycle_);
    if (!hosted_) {
        *err = "ql_server_stop_async is for servers started with ql_server_start_on_loop; use ql_server_stop";
        return QL_E_STATE;
    }
    if (state_ != State::Running) {
        *err = "server is not running";
        return QL_E_STATE;
    }
    if (!workers_[0]->on_loop_thread()) {
        *err = "ql_server_stop_async must be called on the loop's thread";
        return QL_E_STATE;
    }
    done_ = done;
    done_data_ = user_data;
    workers_[0]->request_stop(timeout_ms);
    return QL_OK;
}

void Server::on_worker_closed() {
    state_ = State::Stopped;
    ql_stopped_fn done = done_;
    void *data = done_data_;
    done_ = nullptr;
    if (done) done(data);
    if (delete_when_closed) delete_when_closed(this);  // last: this is gone after
}

ql_status Server::stop(uint32_t timeout_ms, std::string *err) {
    std::lock_guard lk(lifecycle_);
    if (state_ == State::New) {
        state_ = State::Stopped;
        return QL_OK;
    }
    if (state_ == State::Stopped && !hosted_) return QL_OK;
    for (auto &w : workers_) {
        if (w->on_loop_thread()) {
            *err = "ql_server_stop must not be called from a handler (a loop thread)";
            return QL_E_STATE;
        }
    }
    for (auto &w : workers_) w->request_stop(timeout_ms);
    for (auto &w : workers_) w->join();  // host's loop: waits until its handles closed
    state_ = State::Stopped;
    (void)err;
    return QL_OK;
}

bool render_response_fields(const ql_response *r, std::string &type, std::string &headers, std::string *err) {
    if (!r || r->version < 1) {
        *err = "response is NULL or its version is not set (use QL_RESPONSE_INIT)";
        return false;
    }
    if (r->status < 200 || r->status > 599) {
        *err = "status " + std::to_string(r->status) + " is out of range [200, 599] for a final answer";
        return false;
    }
    if ((r->body_len && !r->body) || (r->header_count && !r->headers) || (r->content_type_len && !r->content_type)) {
        *err = "response has a length without data";
        return false;
    }
    auto bad_value = [](std::string_view v) {
        for (unsigned char c : v)
            if ((c < 0x20 && c != '\t') || c == 0x7f) return true;
        return false;
    };
    type.assign(r->content_type ? r->content_type : "", r->content_type_len);
    if (bad_value(type)) {
        *err = "content type contains control characters";
        return false;
    }
    headers.clear();
    for (size_t i = 0; i < r->header_count; ++i) {
        std::string_view n(r->headers[i].name ? r->headers[i].name : "", r->headers[i].name_len);
        std::string_view v(r->headers[i].value ? r->headers[i].value : "", r->headers[i].value_len);
        if (!valid_token(n) || n.size() > 256) {
            *err = "invalid header name \"" + std::string(n) + "\"";
            return false;
        }
        if (bad_value(v)) {
            *err = "header " + std::string(n) + " has a value with control characters (CR/LF are not allowed)";
            return false;
        }
        for (const char *reserved : {"content-length", "transfer-encoding", "connection", "date", "server"}) {
            if (iequals(n, reserved)) {
                *err = "header " + std::string(n) + " is written by the server and cannot be set";
                return false;
            }
        }
        if (iequals(n, "content-type")) {
            type.assign(v);
            continue;
        }
        headers.append(n);
        headers.append(": ");
        headers.append(v);
        headers.append("\r\n");
    }
    return true;
}

Request *Server::find(ql_req_id id, Worker **w, std::string *err) {
    uint32_t widx = static_cast<uint32_t>(id >> 56);
    uint32_t slot = static_cast<uint32_t>((id >> 32) & 0xffffff);
    Request *r = widx < workers_.size() ? workers_[widx]->lookup(slot) : nullptr;
    if (!r) *err = "unknown request id";
    else *w = workers_[widx].get();
    return r;
}

// Claims the one answer of a request (CAS on its state word). QL_OK means
// claimed, and *gone tells whether its client has already left (the loop
// then frees it); any other status means nothing was claimed.
ql_status Server::claim(Request *r, ql_req_id id, bool *gone, std::string *err) {
    uint64_t gen = id & 0xffffffffu;
    uint64_t s = r->state.load(std::memory_order_acquire);
    while (true) {
        if (((s >> 8) & 0xffffffffu) != gen) {
            *err = "request is gone (already answered, or its client left)";
            return QL_E_GONE;
        }
        if (s & RS_ANSWERED) {
            if (s & RS_GONE) {
                *err = "request is gone (its client left)";
                return QL_E_GONE;
            }
            *err = "request was already answered";
            return QL_E_ALREADY_SENT;
        }
        if (r->state.compare_exchange_weak(s, s | RS_ANSWERED, std::memory_order_acq_rel)) break;
    }
    *gone = (s & RS_GONE) != 0;
    return QL_OK;
}

ql_status Server::respond(ql_req_id id, const ql_response *resp, std::string *err) {
    return answer(id, resp, false, err);
}

ql_status Server::respond_start(ql_req_id id, const ql_response *head, std::string *err, int64_t length) {
    return answer(id, head, true, err, length);
}

// Cuts a request off (ql_respond_abort): the loop closes its connection.
ql_status Server::respond_abort(ql_req_id id, std::string *err) {
    Worker *w = nullptr;
    Request *r = find(id, &w, err);
    if (!r) return QL_E_GONE;
    uint64_t gen = 0;
    {
        std::lock_guard lk(r->stream_mu);
        uint64_t s = r->state.load(std::memory_order_acquire);
        if (((s >> 8) & 0xffffffffu) != (id & 0xffffffffu)) {
            *err = "request is gone (finished, or its client left)";
            return QL_E_GONE;
        }
        gen = s >> 8;
        if (r->stream_mode) {
            if (r->stream_end) {
                *err = "the streamed answer was already ended";
                return QL_E_STATE;
            }
        } else {
            bool gone = false;
            if (ql_status st = claim(r, id, &gone, err); st != QL_OK) return st;
            r->stream_mode = true;  // the loop sees a stream to cut
            r->stream_bare = true;  // with no head to send
        }
        r->stream_abort = true;
        r->stream_end = true;
        r->stream_posted = true;
    }
    if (!w->hand(r, gen)) {
        *err = "the server has stopped";
        return QL_E_GONE;
    }
    return QL_OK;
}

// The one answer of a request, whole or as the head of a stream.
ql_status Server::answer(ql_req_id id, const ql_response *resp, bool stream, std::string *err, int64_t length) {
    Worker *w = nullptr;
    Request *r = find(id, &w, err);
    if (!r) return QL_E_GONE;
    // Validate before claiming, so a bad response leaves the request unanswered.
    static thread_local std::string type, headers;
    if (!render_response_fields(resp, type, headers, err)) return QL_E_INVALID;
    if (length >= 0 && resp->body_len > static_cast<uint64_t>(length)) {
        *err = "the head's body is longer than the declared Content-Length";
        return QL_E_INVALID;
    }
    bool gone = false;
    if (ql_status st = claim(r, id, &gone, err); st != QL_OK) return st;
    // A cache leader's answer serves its waiters too, even when its own
    // client has gone (or its handler timed out).
    std::shared_ptr<const CachedAnswer> filled;
    if (r->cache_lead) filled = fill_cache(r, resp, stream, type, headers);
    static thread_local std::string gz;
    bool compressed = !gone && !stream && compress(r, resp, type, headers, gz, filled.get());
    if (!gone) {
        // This thread owns these fields until the loop takes the request;
        // a stream's are also read by ql_respond_write callers, under the lock.
        std::unique_lock lk(r->stream_mu, std::defer_lock);
        if (stream) lk.lock();
        r->pending_status = resp->status;
        r->pending_type.swap(type);
        r->pending_headers.swap(headers);
        if (stream) {
            r->stream_mode = true;
            r->stream_sized = length >= 0;
            r->stream_length = length >= 0 ? static_cast<uint64_t>(length) : 0;
            r->stream_total = resp->body_len;
            r->stream_in.assign(resp->body ? resp->body : "", resp->body_len);
            r->stream_buffered.store(resp->body_len, std::memory_order_relaxed);
            // A head with more than QL_DRAIN_HIGH bytes asks for a drain too.
            if (resp->body_len > QL_DRAIN_HIGH) r->drain_armed.store(true, std::memory_order_release);
            r->stream_posted = true;
        } else if (compressed) {
            r->out_body.swap(gz);
        } else {
            r->out_body.assign(resp->body ? resp->body : "", resp->body_len);
        }
    }
    // Gone: a plain, empty answer that the loop frees.
    if (!w->hand(r, r->generation()) || gone) {
        *err = "the client has gone; the request was freed";
        return QL_E_GONE;
    }
    return QL_OK;
}

ql_status Server::respond_write(ql_req_id id, const char *data, size_t len, bool end, uint64_t *buffered,
                                std::string *err) {
    Worker *w = nullptr;
    Request *r = find(id, &w, err);
    if (!r) return QL_E_GONE;
    uint64_t gen = 0;
    bool post;
    {
        std::lock_guard lk(r->stream_mu);
        uint64_t s = r->state.load(std::memory_order_acquire);
        if (((s >> 8) & 0xffffffffu) != (id & 0xffffffffu)) {
            *err = "request is gone (finished, or its client left)";
            return QL_E_GONE;
        }
        if (!r->stream_mode) {
            *err = "ql_respond_start was not called for this request";
            return QL_E_STATE;
        }
        if (r->stream_end) {
            *err = "the streamed answer was already ended";
            return QL_E_STATE;
        }
        if (r->stream_sized && len > r->stream_length - r->stream_total) {
            *err = "more bytes than the declared Content-Length (" + std::to_string(r->stream_length) + ")";
            return QL_E_INVALID;
        }
        r->stream_total += len;
        gen = s >> 8;
        if (len) r->stream_in.append(data, len);
        if (end) r->stream_end = true;
        uint64_t b = r->stream_buffered.fetch_add(len, std::memory_order_relaxed) + len;
        if (buffered) *buffered = b;
        if (b > QL_DRAIN_HIGH && !end) r->drain_armed.store(true, std::memory_order_release);
        post = !r->stream_posted || end;
        r->stream_posted = true;
    }
    if (!post) return QL_OK;
    // On the loop thread the bytes are written now, and a drain may already
    // have been told from inside this call: report what is left after it,
    // so the host does not wait for a drain that has passed.
    bool now = w->on_loop_thread();
    if (!w->hand(r, gen)) {
        *err = "the server has stopped";
        return QL_E_GONE;
    }
    if (now && buffered)
        *buffered = r->in_use && r->generation() == gen ? r->stream_buffered.load(std::memory_order_relaxed) : 0;
    return QL_OK;
}

namespace {

// Whether preformatted "Name: value\r\n" lines have a header of this name.
bool has_header_line(std::string_view lines, std::string_view name) {
    while (!lines.empty()) {
        size_t e = lines.find("\r\n");
        std::string_view line = lines.substr(0, e);
        size_t colon = line.find(':');
        if (colon != std::string_view::npos && iequals(line.substr(0, colon), name)) return true;
        if (e == std::string_view::npos) break;
        lines.remove_prefix(e + 2);
    }
    return false;
}

}  // namespace

// Whether the app compresses this answer for clients that accept gzip: above
// the threshold, a compressible type (never already-compressed ones), and no
// Content-Encoding of its own.
bool Server::compressible(const ql_response *resp, const std::string &type, const std::string &headers) const {
    const CompressionRules *c = router_->app_rules->compression.get();
    return c && resp->body_len >= c->min_bytes && status_has_body(resp->status) && compressible_type(type) &&
           !has_header_line(headers, "content-encoding");
}

// gzip for an answer the app compresses, when the client accepts it; the
// form just stored in the cache (filled) is reused. Runs on the answering thread.
bool Server::compress(Request *r, const ql_response *resp, const std::string &type, std::string &headers,
                      std::string &out, const CachedAnswer *filled) {
    if (r->head_only || !compressible(resp, type, headers) || !accepts_gzip(find_header(*r, "accept-encoding")))
        return false;
    if (filled && !filled->gz.empty()) {
        out = filled->gz;
    } else if (!gzip_compress({resp->body, resp->body_len}, router_->app_rules->compression->level, out) ||
               out.size() >= resp->body_len) {
        return false;
    }
    headers.append("Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
    return true;
}

std::string_view Server::cached_body(const CachedAnswer &a, const Request &r, std::string &headers) {
    if (a.gz.empty()) return a.body;
    if (!accepts_gzip(find_header(r, "accept-encoding"))) {
        headers.append("Vary: Accept-Encoding\r\n");
        return a.body;
    }
    headers.append("Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
    return a.gz;
}

std::shared_ptr<const CachedAnswer> Server::fill_cache(Request *r, const ql_response *resp, bool stream,
                                                       std::string &type, std::string &headers) {
    const RouteRules &rr = *r->route->rules;
    if (!has_header_line(headers, "cache-control")) headers.append("Cache-Control: max-age=").append(std::to_string(rr.cache_ttl_ms / 1000)).append("\r\n");
    auto a = std::make_shared<CachedAnswer>();
    bool cacheable = !stream && resp->status >= 200 && resp->status < 300;
    if (stream) {
        // Waiters cannot share a stream: they are told to retry.
        a->status = 503;
        a->content_type = "application/json";
        a->headers = "Retry-After: 0\r\n";
        a->body = error_body("the cached route answered with a stream; retry");
    } else {
        a->status = resp->status;
        a->content_type = type;
        a->headers = headers;
        a->body.assign(resp->body ? resp->body : "", resp->body_len);
        // Compressed once per fill, so hits cost no more with gzip than without.
        if (cacheable && compressible(resp, type, headers) &&
            (!gzip_compress(a->body, router_->app_rules->compression->level, a->gz) || a->gz.size() >= a->body.size()))
            a->gz.clear();
    }
    a->stored_ms = ResponseCache::now_ms();
    a->expires_ms = a->stored_ms + rr.cache_ttl_ms;
    std::shared_ptr<const CachedAnswer> shared = a;
    for (uint64_t waiter : cache->fill(r->cache_key, std::move(a), cacheable)) answer_cached(waiter, shared);
    return shared;
}

// Answers a request that waited on a cache entry with the leader's answer.
void Server::answer_cached(uint64_t id, const std::shared_ptr<const CachedAnswer> &a) {
    Worker *w = nullptr;
    std::string err;
    Request *r = find(id, &w, &err);
    if (!r) return;
    bool gone = false;
    if (claim(r, id, &gone, &err) != QL_OK) return;  // recycled: its client left
    if (!gone) {
        r->pending_status = a->status;
        r->pending_type = a->content_type;
        r->pending_headers = a->headers;
        r->out_body = cached_body(*a, *r, r->pending_headers);
    }
    w->hand(r, r->generation());
}

bool Server::on_loop_thread() const {
    for (const auto &w : workers_)
        if (w->on_loop_thread()) return true;
    return false;
}

void Server::stats(ql_server_stats *s) const {
    s->connections_open = conns_open.load();
    s->connections_total = conns_total.load();
    s->requests_total = requests_total.load();
    s->requests_in_flight = requests_in_flight.load();
}

}  // namespace ql
