// Helpers for the C ABI tests: a RAII server fixture, C handler glue, a timer thread for deferred
// answers and a raw-socket HTTP/1.1 client (poll()-bounded, parses Content-Length and chunked).
// Everything here talks to quicklane through quicklane.h only.
#pragma once

#include "quicklane.h"

#include <doctest.h>

#include <arpa/inet.h>
#include <cerrno>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

// Debian's cpp-httplib is split into a header and libcpp-httplib.so, so it is usable only when the
// test target links it (its pkg-config Cflags define CPPHTTPLIB_OPENSSL_SUPPORT). Without that the
// raw client below serves every request.
#if defined(QL_TEST_WITH_HTTPLIB) || defined(CPPHTTPLIB_OPENSSL_SUPPORT)
#include <httplib.h>
#define QL_TEST_HAVE_HTTPLIB 1
#endif

namespace qlt {

using Clock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;

inline std::string str(ql_str s) { return s.data ? std::string(s.data, s.len) : std::string(); }

inline std::string lower(std::string s) {
    for (auto &c : s) c = static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    return s;
}

inline std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return std::string(s);
}

// Splits "GET, HEAD ,POST" into trimmed tokens.
inline std::vector<std::string> split_list(std::string_view s) {
    std::vector<std::string> out;
    while (true) {
        auto pos = s.find(',');
        auto tok = trim(s.substr(0, pos));
        if (!tok.empty()) out.push_back(tok);
        if (pos == std::string_view::npos) break;
        s.remove_prefix(pos + 1);
    }
    return out;
}

// Polls `pred` every 2 ms until it holds or timeout_ms passes.
template <class F> bool wait_until(F pred, int timeout_ms = 3000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
        if (pred()) return true;
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

// The data of a gzip stream (CHECKs that it is one, whole).
inline std::string gunzip(const std::string &in) {
    z_stream zs{};
    REQUIRE(inflateInit2(&zs, 15 + 16) == Z_OK);
    std::string out(in.size() * 20 + 1024, '\0');
    zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef *>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    int rc = inflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    inflateEnd(&zs);
    CHECK(rc == Z_STREAM_END);
    return out;
}

inline void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Owns one ql_error*.
struct Err {
    ql_error *e = nullptr;
    Err() = default;
    Err(const Err &) = delete;
    Err &operator=(const Err &) = delete;
    ~Err() { ql_error_free(&e); }
    ql_error **out() {
        ql_error_free(&e);
        return &e;
    }
    std::string message() const {
        if (!e) return {};
        const char *m = ql_error_message(e);
        return m ? std::string(m) : std::string();
    }
    ql_status code() const { return e ? ql_error_code(e) : QL_OK; }
};

// ---------------------------------------------------------------------------------------------
// Handler glue: std::function behind the C callbacks (user_data + destroy).
// ---------------------------------------------------------------------------------------------

using RequestFn = std::function<void(ql_request *)>;
using AbortFn = std::function<void(ql_req_id, void *)>;

struct HandlerBox {
    RequestFn on_request;
    AbortFn on_abort;
    std::atomic<int> *destroyed = nullptr;
};

extern "C" inline void qlt_on_request(void *ud, ql_request *req) {
    static_cast<HandlerBox *>(ud)->on_request(req);
}
extern "C" inline void qlt_on_abort(void *ud, ql_req_id id, void *tag) {
    auto *box = static_cast<HandlerBox *>(ud);
    if (box->on_abort) box->on_abort(id, tag);
}
extern "C" inline void qlt_destroy(void *ud) {
    auto *box = static_cast<HandlerBox *>(ud);
    if (box->destroyed) box->destroyed->fetch_add(1);
    delete box;
}

inline ql_status add_route(ql_app *app, std::string_view method, std::string_view pattern, RequestFn fn,
                           AbortFn on_abort = {}, ql_error **err = nullptr,
                           std::atomic<int> *destroyed = nullptr) {
    // The header does not say whether a refused route releases user_data; handle both (never
    // twice): count destroy calls made during ql_app_route and release it here only if none was.
    std::atomic<int> during{0};
    auto *box = new HandlerBox{std::move(fn), std::move(on_abort), &during};
    ql_handler h = QL_HANDLER_INIT;
    h.on_request = qlt_on_request;
    h.on_abort = qlt_on_abort;
    h.user_data = box;
    h.destroy = qlt_destroy;
    ql_status st = ql_app_route(app, method.data(), method.size(), pattern.data(), pattern.size(), &h, err);
    if (st == QL_OK) {
        box->destroyed = destroyed; // route taken: the core owns it now and calls destroy later
    } else if (during.load() == 0) {
        delete box;
    }
    return st;
}

struct HeaderViews {
    std::vector<ql_header> v;
    explicit HeaderViews(const Headers &hs) {
        for (auto &h : hs) v.push_back(ql_header{h.first.data(), h.first.size(), h.second.data(), h.second.size()});
    }
};

inline ql_response make_response(int status, std::string_view ctype, std::string_view body, const HeaderViews &hv) {
    ql_response r = QL_RESPONSE_INIT;
    r.status = status;
    if (!ctype.empty()) {
        r.content_type = ctype.data();
        r.content_type_len = ctype.size();
    }
    r.headers = hv.v.empty() ? nullptr : hv.v.data();
    r.header_count = hv.v.size();
    r.body = body.data();
    r.body_len = body.size();
    return r;
}

inline ql_status add_static(ql_app *app, std::string_view method, std::string_view pattern, int status,
                            std::string_view ctype, std::string_view body, const Headers &headers = {},
                            ql_error **err = nullptr) {
    HeaderViews hv(headers);
    ql_response r = make_response(status, ctype, body, hv);
    return ql_app_static(app, method.data(), method.size(), pattern.data(), pattern.size(), &r, err);
}

inline ql_status respond(ql_server *srv, ql_req_id id, int status, std::string_view ctype, std::string_view body,
                         const Headers &headers = {}, ql_error **err = nullptr) {
    HeaderViews hv(headers);
    ql_response r = make_response(status, ctype, body, hv);
    return ql_respond(srv, id, &r, err);
}

inline ql_status respond(ql_request *req, int status, std::string_view ctype, std::string_view body,
                         const Headers &headers = {}) {
    return respond(ql_request_server(req), ql_request_id(req), status, ctype, body, headers);
}

// ---------------------------------------------------------------------------------------------
// Deferrer: one thread that runs tasks at a due time (answers "later, from another thread").
// ---------------------------------------------------------------------------------------------

class Deferrer {
  public:
    Deferrer() : thread_([this] { run(); }) {}
    Deferrer(const Deferrer &) = delete;
    Deferrer &operator=(const Deferrer &) = delete;
    ~Deferrer() { shutdown(); }

    void after(int ms, std::function<void()> fn) {
        {
            std::lock_guard<std::mutex> lk(mu_);
            tasks_.emplace(Clock::now() + std::chrono::milliseconds(ms), std::move(fn));
        }
        cv_.notify_one();
    }

    // Runs what is still queued right away, then joins.
    void shutdown() {
        {
            std::lock_guard<std::mutex> lk(mu_);
            if (stop_) return;
            stop_ = true;
        }
        cv_.notify_one();
        if (thread_.joinable()) thread_.join();
    }

  private:
    void run() {
        std::unique_lock<std::mutex> lk(mu_);
        while (true) {
            if (tasks_.empty()) {
                if (stop_) return;
                cv_.wait(lk);
                continue;
            }
            auto it = tasks_.begin();
            if (!stop_ && it->first > Clock::now()) {
                cv_.wait_until(lk, it->first);
                continue;
            }
            auto fn = std::move(it->second);
            tasks_.erase(it);
            lk.unlock();
            fn();
            lk.lock();
        }
    }

    std::mutex mu_;
    std::condition_variable cv_;
    std::multimap<Clock::time_point, std::function<void()>> tasks_;
    bool stop_ = false;
    std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// Server fixture
// ---------------------------------------------------------------------------------------------

inline ql_server_options options(uint32_t workers = 1) {
    ql_server_options o = QL_SERVER_OPTIONS_INIT;
    o.workers = workers;
    return o;
}

class Server {
  public:
    using Setup = std::function<void(ql_app *, Server &)>;

    // Builds an app with `setup`, creates a server with `opts` (host defaults to 127.0.0.1, port 0)
    // and starts it. REQUIREs success unless `expect_ok` is false.
    explicit Server(const Setup &setup, ql_server_options opts = options(), bool expect_ok = true) {
        REQUIRE(ql_app_new(&app, err.out()) == QL_OK);
        REQUIRE(app != nullptr);
        if (setup) setup(app, *this);
        new_status = ql_server_new(app, &opts, &server, err.out());
        if (new_status == QL_OK) start_status = ql_server_start(server, err.out());
        if (expect_ok) {
            INFO("ql_server_new/start: ", err.message());
            REQUIRE(new_status == QL_OK);
            REQUIRE(start_status == QL_OK);
        }
        if (server && start_status == QL_OK) port = ql_server_port(server);
        if (expect_ok) REQUIRE(port != 0);
    }
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;

    ~Server() {
        if (server) ql_server_stop(server, 2000, nullptr);
        defer.shutdown(); // late answers now get QL_E_GONE; the server object still exists
        ql_server_free(&server);
        ql_app_free(&app);
    }

    bool running() const { return server && start_status == QL_OK; }

    ql_server_stats stats() const {
        ql_server_stats s = QL_SERVER_STATS_INIT;
        ql_server_stats_get(server, &s, nullptr);
        return s;
    }

    ql_app *app = nullptr;
    ql_server *server = nullptr;
    uint16_t port = 0;
    ql_status new_status = QL_E_INTERNAL;
    ql_status start_status = QL_E_INTERNAL;
    Err err;
    Deferrer defer;
};

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 client
// ---------------------------------------------------------------------------------------------

struct Response {
    std::string version; // "HTTP/1.1"
    int status = 0;
    std::string reason;
    Headers headers;
    std::string body;
    bool chunked = false;

    std::optional<std::string> header(std::string_view name) const {
        auto n = lower(std::string(name));
        for (auto &h : headers)
            if (lower(h.first) == n) return h.second;
        return std::nullopt;
    }
    size_t header_count(std::string_view name) const {
        auto n = lower(std::string(name));
        size_t c = 0;
        for (auto &h : headers)
            if (lower(h.first) == n) ++c;
        return c;
    }
    bool has(std::string_view name) const { return header(name).has_value(); }
    // Connection header contains the token (case-insensitive).
    bool connection_has(std::string_view token) const {
        auto c = header("Connection");
        if (!c) return false;
        for (auto &t : split_list(*c))
            if (lower(t) == lower(std::string(token))) return true;
        return false;
    }
};

class Client {
  public:
    enum Fill { kData = 1, kEof = 0, kTimeout = -1, kError = -2 };

    explicit Client(uint16_t port, const char *host = "127.0.0.1") {
        bool v6 = std::strchr(host, ':') != nullptr;
        fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) {
            error = std::string("socket: ") + std::strerror(errno);
            return;
        }
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int rc;
        if (v6) {
            sockaddr_in6 a{};
            a.sin6_family = AF_INET6;
            a.sin6_port = htons(port);
            ::inet_pton(AF_INET6, host, &a.sin6_addr);
            rc = ::connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a);
        } else {
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            ::inet_pton(AF_INET, host, &a.sin_addr);
            rc = ::connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a);
        }
        if (rc != 0) {
            error = std::string("connect: ") + std::strerror(errno);
            ::close(fd_);
            fd_ = -1;
        }
    }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    Client(Client &&o) noexcept : buf(std::move(o.buf)), error(std::move(o.error)), fd_(o.fd_) { o.fd_ = -1; }
    ~Client() { close(); }

    bool ok() const { return fd_ >= 0; }
    int fd() const { return fd_; }

    uint16_t local_port() const {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        if (::getsockname(fd_, reinterpret_cast<sockaddr *>(&ss), &len) != 0) return 0;
        if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port);
        return ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
    }

    // Sends everything (MSG_NOSIGNAL). False when the peer is gone.
    bool send(std::string_view data) {
        while (!data.empty()) {
            ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) {
                    pollfd p{fd_, POLLOUT, 0};
                    ::poll(&p, 1, 1000);
                    continue;
                }
                error = std::string("send: ") + std::strerror(errno);
                return false;
            }
            data.remove_prefix(static_cast<size_t>(n));
        }
        return true;
    }

    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    // Closes with RST (SO_LINGER 0): the client is unambiguously gone.
    void reset() {
        if (fd_ < 0) return;
        linger lg{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close();
    }

    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

    // Reads once into buf, waiting until the deadline.
    Fill fill(Clock::time_point deadline) {
        while (true) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            if (left < 0) left = 0;
            pollfd p{fd_, POLLIN, 0};
            int pr = ::poll(&p, 1, static_cast<int>(left));
            if (pr < 0 && errno == EINTR) continue;
            if (pr == 0) return kTimeout;
            char tmp[16384];
            ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
            if (n > 0) {
                buf.append(tmp, static_cast<size_t>(n));
                return kData;
            }
            if (n == 0) return kEof;
            if (errno == EINTR || errno == EAGAIN) continue;
            if (errno == ECONNRESET) return kEof;
            error = std::string("recv: ") + std::strerror(errno);
            return kError;
        }
    }

    // Waits until the server closes the connection (EOF or RST). Bytes that arrive meanwhile are
    // kept in buf. True when closed within the timeout.
    bool wait_closed(int timeout_ms = 3000) {
        auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
        while (true) {
            auto f = fill(deadline);
            if (f == kEof || f == kError) return true;
            if (f == kTimeout) return false;
        }
    }

    // True when nothing arrives and the connection stays open for `ms`.
    bool quiet_for(int ms) {
        auto before = buf.size();
        auto deadline = Clock::now() + std::chrono::milliseconds(ms);
        auto f = fill(deadline);
        return f == kTimeout && buf.size() == before;
    }

    // Reads and parses one response (an interim 1xx too). `head`: the request was HEAD, so no body.
    std::optional<Response> read_response(int timeout_ms = 5000, bool head = false) {
        auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
        size_t end;
        while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
            auto f = fill(deadline);
            if (f != kData) return fail(f, "response head");
        }
        Response r;
        std::string_view headtxt(buf.data(), end);
        auto line_end = headtxt.find("\r\n");
        std::string_view status_line = headtxt.substr(0, line_end);
        // "HTTP/1.1 200 OK"
        auto sp1 = status_line.find(' ');
        if (sp1 == std::string_view::npos) {
            error = "bad status line: " + std::string(status_line);
            return std::nullopt;
        }
        r.version = std::string(status_line.substr(0, sp1));
        auto rest = status_line.substr(sp1 + 1);
        auto sp2 = rest.find(' ');
        std::string code(rest.substr(0, sp2));
        if (code.size() != 3 || !std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
            r.version.rfind("HTTP/", 0) != 0) {
            error = "bad status line: " + std::string(status_line);
            return std::nullopt;
        }
        r.status = std::stoi(code);
        if (sp2 != std::string_view::npos) r.reason = std::string(rest.substr(sp2 + 1));
        if (line_end != std::string_view::npos) {
            std::string_view hs = headtxt.substr(line_end + 2);
            while (!hs.empty()) {
                auto e = hs.find("\r\n");
                std::string_view line = hs.substr(0, e);
                auto colon = line.find(':');
                if (colon == std::string_view::npos) {
                    error = "bad header line: " + std::string(line);
                    return std::nullopt;
                }
                r.headers.emplace_back(std::string(line.substr(0, colon)), trim(line.substr(colon + 1)));
                if (e == std::string_view::npos) break;
                hs.remove_prefix(e + 2);
            }
        }
        buf.erase(0, end + 4);

        if (head || (r.status >= 100 && r.status < 200) || r.status == 204 || r.status == 304) return r;

        auto te = r.header("Transfer-Encoding");
        if (te && lower(*te).find("chunked") != std::string::npos) {
            r.chunked = true;
            while (true) {
                size_t le;
                while ((le = buf.find("\r\n")) == std::string::npos) {
                    auto f = fill(deadline);
                    if (f != kData) return fail(f, "chunk size");
                }
                std::string sizeline = buf.substr(0, le);
                auto semi = sizeline.find(';');
                if (semi != std::string::npos) sizeline.resize(semi);
                size_t n = 0;
                if (!parse_size(trim(sizeline), 16, n)) {
                    error = "bad chunk size line: " + sizeline;
                    return std::nullopt;
                }
                buf.erase(0, le + 2);
                if (n == 0) {
                    // trailers until an empty line
                    while (true) {
                        while ((le = buf.find("\r\n")) == std::string::npos) {
                            auto f = fill(deadline);
                            if (f != kData) return fail(f, "trailer");
                        }
                        bool empty = le == 0;
                        buf.erase(0, le + 2);
                        if (empty) return r;
                    }
                }
                while (buf.size() < n + 2) {
                    auto f = fill(deadline);
                    if (f != kData) return fail(f, "chunk data");
                }
                r.body.append(buf, 0, n);
                buf.erase(0, n + 2);
            }
        }
        auto cl = r.header("Content-Length");
        if (cl) {
            size_t n = 0;
            if (!parse_size(*cl, 10, n)) {
                error = "bad Content-Length: " + *cl;
                return std::nullopt;
            }
            while (buf.size() < n) {
                auto f = fill(deadline);
                if (f != kData) return fail(f, "body");
            }
            r.body = buf.substr(0, n);
            buf.erase(0, n);
            return r;
        }
        // Neither: the body runs until the connection closes.
        while (true) {
            auto f = fill(deadline);
            if (f == kEof) break;
            if (f != kData) return fail(f, "close-delimited body");
        }
        r.body = std::move(buf);
        buf.clear();
        return r;
    }

    // Reads the final response, skipping interim 1xx ones.
    std::optional<Response> read_final(int timeout_ms = 5000, bool head = false) {
        while (true) {
            auto r = read_response(timeout_ms, head);
            if (!r || r->status >= 200) return r;
        }
    }

    std::string buf;
    std::string error;

  private:
    // Digits only (no sign, no spaces), no overflow.
    static bool parse_size(const std::string &s, int base, size_t &out) {
        if (s.empty() || s.size() > 15) return false;
        size_t v = 0;
        for (char ch : s) {
            int d = (ch >= '0' && ch <= '9')                 ? ch - '0'
                    : (base == 16 && ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                    : (base == 16 && ch >= 'A' && ch <= 'F') ? ch - 'A' + 10
                                                             : -1;
            if (d < 0) return false;
            v = v * static_cast<size_t>(base) + static_cast<size_t>(d);
        }
        out = v;
        return true;
    }

    std::optional<Response> fail(Fill f, const char *what) {
        if (error.empty() || f != kError)
            error = std::string(f == kTimeout ? "timeout" : f == kEof ? "connection closed" : "error") +
                    " while reading " + what + (buf.empty() ? "" : "; buffered: " + buf.substr(0, 200));
        return std::nullopt;
    }

    int fd_ = -1;
};

// Builds a request. `extra` is raw header lines, each ending in \r\n.
inline std::string request(std::string_view method, std::string_view target, std::string_view body = {},
                           std::string_view extra = {}, bool with_length = true) {
    std::string r;
    r.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if (with_length && (!body.empty() || method == "POST" || method == "PUT"))
        r.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    r.append(extra).append("\r\n").append(body);
    return r;
}

// One request on a fresh connection.
inline std::optional<Response> fetch(uint16_t port, std::string_view method, std::string_view target,
                                     std::string_view body = {}, std::string_view extra = {},
                                     const char *host = "127.0.0.1") {
    Client c(port, host);
    if (!c.ok()) return std::nullopt;
    if (!c.send(request(method, target, body, extra))) return std::nullopt;
    return c.read_final(5000, method == "HEAD");
}

// Sends raw bytes on a fresh connection and reads one final response.
inline std::optional<Response> fetch_raw(uint16_t port, std::string_view raw, std::string *err = nullptr) {
    Client c(port);
    if (!c.ok() || !c.send(raw)) {
        if (err) *err = c.error;
        return std::nullopt;
    }
    auto r = c.read_final();
    if (!r && err) *err = c.error;
    return r;
}

} // namespace qlt
