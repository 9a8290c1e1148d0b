// quicklane.hpp — header-only C++20 wrapper over the quicklane C ABI.
//
// Only "quicklane.h" is used: this file adds RAII handles, lambdas as
// handlers, std::string_view accessors and exceptions, and no behaviour of its
// own. Routing, limits and HTTP all live in the core.
//
//   int main() {
//       quicklane::block_signals();           // first: threads started later inherit the mask
//       quicklane::App app;
//       app.static_route("GET", "/ping", quicklane::Response::json(R"({"message":"pong"})"));
//       app.get("/hello/{name}", [](quicklane::Request& req) {
//           return quicklane::Response::text("hello " + std::string(req.param("name").value_or("")));
//       });
//       app.route_async("POST", "/slow", [](quicklane::Request&, quicklane::Responder res) {
//           std::thread([res] { res.send(quicklane::Response::text("done")); }).detach();
//       });
//       quicklane::Server server(app, {.port = 8080});
//       server.start();
//       quicklane::wait_for_signal();          // SIGINT or SIGTERM
//       server.stop(5000);                     // graceful: drains in-flight requests
//   }
//
// Errors of the C ABI are thrown as quicklane::Error (code() is the ql_status).
// No exception ever crosses into the C ABI: an exception that escapes a handler
// is logged to stderr and answered with 500 {"detail":"Internal Server Error"}
// when the request was not answered yet.
#ifndef QUICKLANE_HPP
#define QUICKLANE_HPP

#include "quicklane.h"

#include <pthread.h>
#include <signal.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace quicklane {

using Status = ql_status;
using RequestId = ql_req_id;
using StringPairs = std::vector<std::pair<std::string_view, std::string_view>>;

// Library version string of the loaded shared library, e.g. "0.1.0".
inline std::string_view version() noexcept { return ql_version(); }
// QL_ABI_VERSION the loaded library was built with (compare with QL_ABI_VERSION).
inline std::uint32_t abi_version() noexcept { return ql_abi_version(); }
// Static name of a status, e.g. "QL_E_GONE".
inline std::string_view status_name(Status status) noexcept { return ql_status_name(status); }

// An error reported by the C ABI.
class Error : public std::runtime_error {
public:
    Error(Status code, const std::string& message) : std::runtime_error(message), code_(code) {}
    Status code() const noexcept { return code_; }

private:
    Status code_;
};

namespace detail {

// Owns a ql_error* filled by a C call; frees it on every path.
struct ErrorSlot {
    ql_error* ptr = nullptr;
    ErrorSlot() = default;
    ErrorSlot(const ErrorSlot&) = delete;
    ErrorSlot& operator=(const ErrorSlot&) = delete;
    ~ErrorSlot() { ql_error_free(&ptr); }
    ql_error** out() noexcept { return &ptr; }
    std::string message() const {
        const char* m = ptr ? ql_error_message(ptr) : nullptr;
        return m ? std::string(m) : std::string();
    }
};

[[noreturn]] inline void raise(Status status, const ErrorSlot& err, const char* what) {
    Status code = err.ptr ? ql_error_code(err.ptr) : status;
    std::string msg = err.message();
    if (msg.empty()) msg = std::string(what) + ": " + ql_status_name(status);
    throw Error(code, msg);
}

inline void check(Status status, const ErrorSlot& err, const char* what) {
    if (status != QL_OK) raise(status, err, what);
}

inline std::string_view view(ql_str s) noexcept { return {s.data, s.len}; }

inline void log_error(const char* what, const std::string& method, const std::string& pattern,
                const char* detail) noexcept {
    std::fprintf(stderr, "quicklane: %s %s %s: %s\n", what, method.c_str(), pattern.c_str(),
                 detail ? detail : "");
}

// Answers 500 unless the request was answered already (then ql_respond just
// reports ALREADY_SENT/GONE and does nothing).
inline void respond_internal_error(ql_server* server, ql_req_id id) noexcept {
    static constexpr std::string_view body = R"({"detail":"Internal Server Error"})";
    static constexpr std::string_view ctype = "application/json";
    ql_response res = QL_RESPONSE_INIT;
    res.status = 500;
    res.content_type = ctype.data();
    res.content_type_len = ctype.size();
    res.body = body.data();
    res.body_len = body.size();
    ql_respond(server, id, &res, nullptr);
}

}  // namespace detail

// A response value. An aggregate, so designated initializers work:
//   Response{.status = 201, .content_type = "text/plain", .body = "made"}
// status is 200..599. Content-Length, Transfer-Encoding, Date, Server and
// Connection are written by the core and must not appear in `headers` (such a
// response is refused with QL_E_INVALID); a Content-Type there replaces
// content_type. 204 and 304 go out without body bytes.
struct Response {
    int status = 200;
    // The {} initializers keep designated initializers clean under -Wextra.
    std::string content_type{};  // empty: no Content-Type header
    std::vector<std::pair<std::string, std::string>> headers{};
    std::string body{};

    static Response json(std::string body, int status = 200) {
        return Response{status, "application/json", {}, std::move(body)};
    }
    static Response text(std::string body, int status = 200) {
        return Response{status, "text/plain; charset=utf-8", {}, std::move(body)};
    }
    Response& header(std::string name, std::string value) & {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
    Response&& header(std::string name, std::string value) && {
        headers.emplace_back(std::move(name), std::move(value));
        return std::move(*this);
    }
};

namespace detail {

// Calls fn with a ql_response viewing r. Up to 8 headers need no allocation.
template <class Fn>
decltype(auto) with_c_response(const Response& r, Fn&& fn) {
    ql_response res = QL_RESPONSE_INIT;
    res.status = r.status;
    if (!r.content_type.empty()) {
        res.content_type = r.content_type.data();
        res.content_type_len = r.content_type.size();
    }
    res.body = r.body.data();
    res.body_len = r.body.size();
    std::array<ql_header, 8> small{};
    std::vector<ql_header> large;
    ql_header* hs = small.data();
    if (r.headers.size() > small.size()) {
        large.resize(r.headers.size());
        hs = large.data();
    }
    for (std::size_t i = 0; i < r.headers.size(); ++i) {
        const auto& [name, value] = r.headers[i];
        hs[i] = ql_header{name.data(), name.size(), value.data(), value.size()};
    }
    res.headers = r.headers.empty() ? nullptr : hs;
    res.header_count = r.headers.size();
    return fn(static_cast<const ql_response*>(&res));
}

}  // namespace detail

// Answers one request, from any thread. Copyable and cheap (a server pointer
// and a request id). Use it only while the Server that received the request
// is alive.
class Responder {
public:
    Responder() noexcept = default;
    Responder(ql_server* server, RequestId id) noexcept : server_(server), id_(id) {}

    // Finishes the request. Returns QL_OK; QL_E_GONE when the client left or
    // the server stopped (the request is freed) and for any later call; or
    // QL_E_ALREADY_SENT for a second answer while the first is still being
    // delivered (nothing happens). Throws Error for anything else, notably
    // QL_E_INVALID (bad response fields; the request stays unanswered).
    Status send(const Response& response) const {
        if (!server_) throw Error(QL_E_STATE, "quicklane: send on an empty Responder");
        detail::ErrorSlot err;
        Status st = detail::with_c_response(response, [&](const ql_response* res) {
            return ql_respond(server_, id_, res, err.out());
        });
        if (st != QL_OK && st != QL_E_GONE && st != QL_E_ALREADY_SENT) detail::raise(st, err, "ql_respond");
        return st;
    }

    // A streamed answer (see StreamWriter): the head goes out now, chunked,
    // or with Content-Length when `length` is given.
    class StreamWriter start(const Response& head, std::optional<std::uint64_t> length = std::nullopt) const;

    RequestId id() const noexcept { return id_; }
    ql_server* server() const noexcept { return server_; }
    explicit operator bool() const noexcept { return server_ != nullptr; }

private:
    ql_server* server_ = nullptr;
    RequestId id_ = 0;
};

// Writes a streamed answer from any thread. write() returns false once the
// client has left (stop producing). buffered() is what the core holds for the
// socket: pause while it is above QL_DRAIN_HIGH. end() finishes the answer;
// abort() cuts it (no last chunk: the client sees a broken message).
class StreamWriter {
public:
    StreamWriter(ql_server* server, RequestId id) noexcept : server_(server), id_(id) {}
    bool write(std::string_view data) {
        detail::ErrorSlot err;
        Status st = ql_respond_write(server_, id_, data.data(), data.size(), &buffered_, err.out());
        if (st == QL_E_GONE) return false;
        if (st != QL_OK) detail::raise(st, err, "ql_respond_write");
        return true;
    }
    bool end() {
        Status st = ql_respond_end(server_, id_, nullptr);
        return st == QL_OK;
    }
    void abort() noexcept { ql_respond_abort(server_, id_, nullptr); }
    std::uint64_t buffered() const noexcept { return buffered_; }

private:
    ql_server* server_;
    RequestId id_;
    std::uint64_t buffered_ = 0;
};

inline StreamWriter Responder::start(const Response& head, std::optional<std::uint64_t> length) const {
    if (!server_) throw Error(QL_E_STATE, "quicklane: start on an empty Responder");
    detail::ErrorSlot err;
    Status st = detail::with_c_response(head, [&](const ql_response* res) {
        return length ? ql_respond_start_sized(server_, id_, res, *length, err.out())
                      : ql_respond_start(server_, id_, res, err.out());
    });
    if (st != QL_OK && st != QL_E_GONE) detail::raise(st, err, "ql_respond_start");
    return StreamWriter(server_, id_);
}

// Server-sent events framing (text/event-stream): one event; multi-line data
// becomes several data: lines. keep_alive() is a comment line that keeps
// proxies from closing an idle stream.
namespace sse {
// One text/event-stream event. CR, LF and CRLF in data each end a line
// (several data: lines, which the client joins with "\n"); a line break in
// event or id (or a NUL in id) throws Error(QL_E_INVALID), never a second field.
inline std::string event(std::string_view data, std::string_view event = {}, std::string_view id = {}) {
    if (event.find_first_of("\r\n") != std::string_view::npos)
        throw Error(QL_E_INVALID, "quicklane: an SSE event name must not contain a line break");
    if (id.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
        throw Error(QL_E_INVALID, "quicklane: an SSE id must not contain a line break or NUL");
    std::string out;
    if (!event.empty()) out.append("event: ").append(event).append("\n");
    if (!id.empty()) out.append("id: ").append(id).append("\n");
    while (true) {
        std::size_t nl = data.find_first_of("\r\n");
        out.append("data: ").append(data.substr(0, nl)).append("\n");
        if (nl == std::string_view::npos) break;
        data.remove_prefix(nl + (data[nl] == '\r' && nl + 1 < data.size() && data[nl + 1] == '\n' ? 2 : 1));
    }
    out.append("\n");
    return out;
}
inline std::string keep_alive() { return ": keep-alive\n\n"; }
inline Response head() {
    return Response{200, "text/event-stream", {{"Cache-Control", "no-cache"}}, {}};
}
}  // namespace sse

// Reads a request body as it arrives (routes with RouteRules::stream_body, or
// App::route_stream), on any thread but the loop that received it: a read
// that waits there would stall the very loop that brings the bytes in. On
// other routes it reads the buffered body. Copyable (a server pointer and an
// id); use it only until the request is answered.
class BodyReader {
public:
    BodyReader() noexcept = default;
    BodyReader(ql_server* server, RequestId id) noexcept : server_(server), id_(id) {}

    // Copies up to `cap` bytes, waiting up to timeout_ms (-1: until bytes or
    // the end come); returns how many, 0 at the end of the body. Throws
    // Error: QL_E_GONE (the client left), QL_E_TOO_LARGE (over the limit; 413
    // was sent), QL_E_INVALID (malformed chunked body; 400 was sent),
    // QL_E_AGAIN (nothing within timeout_ms), QL_E_STATE (on the loop thread
    // with a timeout).
    std::size_t read(char* buf, std::size_t cap, std::int32_t timeout_ms = -1) const {
        std::size_t n = 0;
        detail::ErrorSlot err;
        Status st = ql_request_body_read(server_, id_, buf, cap, timeout_ms, &n, err.out());
        if (st != QL_OK) detail::raise(st, err, "ql_request_body_read");
        return n;
    }

    // The rest of the body, at most max_bytes (more: Error QL_E_TOO_LARGE).
    std::string read_all(std::size_t max_bytes = SIZE_MAX) const {
        std::string out;
        char buf[64 * 1024];
        while (std::size_t n = read(buf, sizeof buf)) {
            if (out.size() + n > max_bytes) throw Error(QL_E_TOO_LARGE, "quicklane: body larger than read_all's max_bytes");
            out.append(buf, n);
        }
        return out;
    }

private:
    ql_server* server_ = nullptr;
    RequestId id_ = 0;
};

// A view over a request handed to a handler. Copies are cheap and all views
// stay valid, on any thread, until the request is answered (Responder::send or
// the return of a sync handler). Copy what you keep beyond that.
class Request {
public:
    explicit Request(ql_request* req) noexcept : req_(req) {}

    std::string_view method() const noexcept { return detail::view(ql_request_method(req_)); }
    // Path without the query, as sent (not decoded).
    std::string_view path() const noexcept { return detail::view(ql_request_path(req_)); }
    // Raw target (path and query), as sent.
    std::string_view target() const noexcept { return detail::view(ql_request_target(req_)); }
    // Raw query string without '?'.
    std::string_view query_string() const noexcept { return detail::view(ql_request_query_string(req_)); }
    // Pattern of the matched route, e.g. "/hello/{name}".
    std::string_view route() const noexcept { return detail::view(ql_request_route(req_)); }
    std::string_view body() const noexcept { return detail::view(ql_request_body(req_)); }

    // Path parameter, percent-decoded.
    std::optional<std::string_view> param(std::string_view name) const noexcept {
        return lookup(ql_request_param, name);
    }
    // First query parameter of that name, percent-decoded ('+' is a space).
    std::optional<std::string_view> query(std::string_view name) const noexcept {
        return lookup(ql_request_query, name);
    }
    // First header of that name; case-insensitive.
    std::optional<std::string_view> header(std::string_view name) const noexcept {
        return lookup(ql_request_header, name);
    }

    StringPairs params() const { return list(ql_request_param_count, ql_request_param_at); }
    StringPairs queries() const { return list(ql_request_query_count, ql_request_query_at); }
    // Headers as received, names in their original case.
    StringPairs headers() const { return list(ql_request_header_count, ql_request_header_at); }

    std::string_view client_ip() const noexcept { return detail::view(ql_request_client_ip(req_)); }
    std::uint16_t client_port() const noexcept { return ql_request_client_port(req_); }
    RequestId id() const noexcept { return ql_request_id(req_); }
    // 0 for HTTP/1.0, 1 for HTTP/1.1.
    int http_minor() const noexcept { return ql_request_http_minor(req_); }

    // A Responder for this request (the same one route_async handlers get).
    Responder responder() const noexcept { return Responder(ql_request_server(req_), id()); }
    // Reads the body as it arrives (see BodyReader).
    BodyReader body_reader() const noexcept { return BodyReader(ql_request_server(req_), id()); }
    // The declared Content-Length; nullopt for a chunked body.
    std::optional<std::uint64_t> content_length() const noexcept {
        std::int64_t n = ql_request_content_length(req_);
        if (n < 0) return std::nullopt;
        return static_cast<std::uint64_t>(n);
    }
    ql_request* native() const noexcept { return req_; }

private:
    using LookupFn = int (*)(const ql_request*, const char*, std::size_t, ql_str*);
    using CountFn = std::size_t (*)(const ql_request*);
    using AtFn = int (*)(const ql_request*, std::size_t, ql_str*, ql_str*);

    std::optional<std::string_view> lookup(LookupFn fn, std::string_view name) const noexcept {
        ql_str out{nullptr, 0};
        if (!fn(req_, name.data(), name.size(), &out)) return std::nullopt;
        return detail::view(out);
    }
    StringPairs list(CountFn count, AtFn at) const {
        StringPairs items;
        std::size_t n = count(req_);
        items.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            ql_str name{nullptr, 0}, value{nullptr, 0};
            if (at(req_, i, &name, &value)) items.emplace_back(detail::view(name), detail::view(value));
        }
        return items;
    }

    ql_request* req_;
};

// Sync handler: the returned Response answers the request.
using Handler = std::function<Response(Request&)>;
// Deferred handler: answer now or later, from any thread, with res.send(...).
// Every request must be finished exactly once, even after an abort (send then
// returns QL_E_GONE and frees the request data).
using AsyncHandler = std::function<void(Request&, Responder)>;
// Called on the loop thread, at most once per request, when the client left
// (or the server was force-stopped) before the request was answered. The
// Responder names the aborted request; its send() returns QL_E_GONE.
using AbortHandler = std::function<void(Responder)>;

// What a route_stream handler returns: callbacks that receive the body on the
// loop thread as it arrives. on_end runs once the whole body has arrived;
// on_error instead when it cannot (QL_E_GONE: the client left; QL_E_TOO_LARGE:
// over the route's limit, 413 sent; QL_E_INVALID: malformed, 400 sent) — the
// request is finished for you then. Answer with the Responder whenever you
// like, before the end too (the rest of the body is then dropped).
struct BodySink {
    std::function<void(std::string_view)> on_data{};
    std::function<void()> on_end{};
    std::function<void(Status)> on_error{};
};
using StreamHandler = std::function<BodySink(Request&, Responder)>;

namespace detail {

struct RouteBase {
    std::string method;
    std::string pattern;
};

struct SyncRoute : RouteBase {
    Handler fn;

    static void on_request(void* user_data, ql_request* req) noexcept {
        auto* self = static_cast<SyncRoute*>(user_data);
        ql_server* server = ql_request_server(req);
        ql_req_id id = ql_request_id(req);
        try {
            Request request(req);
            Response response = self->fn(request);
            ErrorSlot err;
            Status st = with_c_response(response, [&](const ql_response* res) {
                return ql_respond(server, id, res, err.out());
            });
            if (st == QL_OK || st == QL_E_GONE || st == QL_E_ALREADY_SENT) return;
            std::string msg = err.message();
            log_error("invalid response from", self->method, self->pattern, msg.c_str());
        } catch (const std::exception& e) {
            log_error("exception in handler", self->method, self->pattern, e.what());
        } catch (...) {
            log_error("exception in handler", self->method, self->pattern, "unknown exception");
        }
        respond_internal_error(server, id);
    }
};

struct AsyncRoute : RouteBase {
    AsyncHandler fn;
    AbortHandler abort;

    static void on_request(void* user_data, ql_request* req) noexcept {
        auto* self = static_cast<AsyncRoute*>(user_data);
        ql_server* server = ql_request_server(req);
        ql_req_id id = ql_request_id(req);
        // The tag carries the server to on_abort, which only gets (id, tag).
        ql_request_set_tag(req, server);
        try {
            Request request(req);
            self->fn(request, Responder(server, id));
            return;
        } catch (const std::exception& e) {
            log_error("exception in handler", self->method, self->pattern, e.what());
        } catch (...) {
            log_error("exception in handler", self->method, self->pattern, "unknown exception");
        }
        respond_internal_error(server, id);
    }

    static void on_abort(void* user_data, ql_req_id id, void* tag) noexcept {
        auto* self = static_cast<AsyncRoute*>(user_data);
        if (!self->abort) return;
        try {
            self->abort(Responder(static_cast<ql_server*>(tag), id));
        } catch (const std::exception& e) {
            log_error("exception in on_abort of", self->method, self->pattern, e.what());
        } catch (...) {
            log_error("exception in on_abort of", self->method, self->pattern, "unknown exception");
        }
    }
};

// route_stream: the handler runs when the head is complete and returns a
// sink; the body is pumped into it with non-blocking reads, again on each
// on_body notification. Requests whose body is still coming are kept here by
// id (callbacks come from every loop thread).
struct StreamRoute : RouteBase {
    StreamHandler fn;
    struct Live {
        BodySink sink;
        Responder res;
    };
    std::mutex mu;
    std::unordered_map<ql_req_id, std::shared_ptr<Live>> live;

    std::shared_ptr<Live> find(ql_req_id id, bool take) {
        std::lock_guard lk(mu);
        auto it = live.find(id);
        if (it == live.end()) return nullptr;
        std::shared_ptr<Live> l = it->second;
        if (take) live.erase(it);
        return l;
    }

    static void on_request(void* user_data, ql_request* req) noexcept {
        auto* self = static_cast<StreamRoute*>(user_data);
        ql_server* server = ql_request_server(req);
        ql_req_id id = ql_request_id(req);
        ql_request_set_tag(req, server);
        try {
            Request request(req);
            auto l = std::make_shared<Live>(Live{self->fn(request, Responder(server, id)), Responder(server, id)});
            {
                std::lock_guard lk(self->mu);
                self->live.emplace(id, std::move(l));
            }
            self->pump(server, id);
            return;
        } catch (const std::exception& e) {
            log_error("exception in handler", self->method, self->pattern, e.what());
        } catch (...) {
            log_error("exception in handler", self->method, self->pattern, "unknown exception");
        }
        self->find(id, true);
        respond_internal_error(server, id);
    }

    void pump(ql_server* server, ql_req_id id) noexcept {
        std::shared_ptr<Live> l = find(id, false);
        if (!l) return;
        static thread_local char buf[64 * 1024];
        try {
            while (true) {
                std::size_t n = 0;
                Status st = ql_request_body_read(server, id, buf, sizeof buf, 0, &n, nullptr);
                if (st == QL_OK && n) {
                    if (l->sink.on_data) l->sink.on_data(std::string_view(buf, n));
                    continue;
                }
                if (st == QL_E_AGAIN) return;  // on_body calls back
                if (!find(id, true)) return;  // finished meanwhile (on_abort)
                if (st == QL_OK) {
                    if (l->sink.on_end) l->sink.on_end();
                    return;
                }
                fail(*l, st, server, id);
                return;
            }
        } catch (const std::exception& e) {
            log_error("exception in body callback of", method, pattern, e.what());
        } catch (...) {
            log_error("exception in body callback of", method, pattern, "unknown exception");
        }
        if (find(id, true)) respond_internal_error(server, id);
    }

    void fail(Live& l, Status st, ql_server* server, ql_req_id id) noexcept {
        try {
            if (l.sink.on_error) l.sink.on_error(st);
        } catch (...) {
            log_error("exception in on_error of", method, pattern, "");
        }
        respond_internal_error(server, id);  // frees it: the core has answered or the client left
    }

    static void on_body(void* user_data, ql_req_id id, void* tag) noexcept {
        static_cast<StreamRoute*>(user_data)->pump(static_cast<ql_server*>(tag), id);
    }

    static void on_abort(void* user_data, ql_req_id id, void* tag) noexcept {
        auto* self = static_cast<StreamRoute*>(user_data);
        std::shared_ptr<Live> l = self->find(id, true);
        if (!l) return;
        // Why: the rest of the body is moot; its last read says (gone, too large, malformed).
        auto* server = static_cast<ql_server*>(tag);
        static thread_local char buf[64 * 1024];
        std::size_t n = 0;
        Status st;
        do st = ql_request_body_read(server, id, buf, sizeof buf, 0, &n, nullptr);
        while (st == QL_OK && n);
        self->fail(*l, st == QL_OK || st == QL_E_AGAIN ? QL_E_GONE : st, server, id);
    }
};

// The header does not say whether a failed ql_app_route calls `destroy`.
// Registration records a synchronous destroy here, so the route object is
// freed exactly once either way.
struct Registration {
    void* route = nullptr;
    bool destroyed = false;
};
inline thread_local Registration* current_registration = nullptr;

template <class T>
void destroy_route(void* user_data) noexcept {
    if (current_registration && current_registration->route == user_data)
        current_registration->destroyed = true;
    delete static_cast<T*>(user_data);
}

}  // namespace detail

}  // namespace quicklane

#include "quicklane_ws.hpp"  // WebSocket, WebSocketBehavior (needs Request and Response above)

namespace quicklane {

// Native rules of one route (see ql_route_options).
struct RouteRules {
    std::uint32_t rate_limit = 0;      // requests per window per client; 0 = the app's default
    std::uint32_t rate_window_ms = 0;  // default 60000
    std::string rate_key_header{};     // count per this header's value instead of the client IP
    bool require_api_key = false;
    std::uint32_t cache_ttl_ms = 0;    // > 0: GET answers cached natively this long
    std::string cache_vary{};          // headers in the cache key, comma-separated
    std::string body_schema{};         // JSON Schema of the JSON body → 400 / 422
    std::string params_schema{};       // typed path/query parameters (JSON) → 422
    // The handler runs when the head is complete; read the body with
    // Request::body_reader() (route_stream sets this for you).
    bool stream_body = false;
    std::uint64_t max_body_bytes = 0;  // a streamed body's limit; 0 = the server's
};

// CORS for the app (see ql_cors_options); lists are comma-separated.
struct Cors {
    std::string origins;            // exact origins, or "*"
    std::string methods{};          // default "GET, HEAD, POST"
    std::string headers{};          // allowed request headers, or "*"
    std::string expose{};
    bool credentials = false;
    std::uint32_t max_age_s = 0;    // default 600
};

// Routes, declared before a Server is created from the app (routes added later
// do not reach existing servers). Move-only.
class App {
public:
    App() {
        detail::ErrorSlot err;
        detail::check(ql_app_new(&app_, err.out()), err, "ql_app_new");
    }
    ~App() { ql_app_free(&app_); }
    App(App&& other) noexcept : app_(std::exchange(other.app_, nullptr)), streamed_(std::move(other.streamed_)) {}
    App& operator=(App&& other) noexcept {
        if (this != &other) {
            ql_app_free(&app_);
            app_ = std::exchange(other.app_, nullptr);
            streamed_ = std::move(other.streamed_);
        }
        return *this;
    }
    App(const App&) = delete;
    App& operator=(const App&) = delete;

    // Patterns: "/users/me", "/users/{id}" or "/users/:id", trailing catch-all
    // "/files/{path...}" or "/files/*path". Throws Error (QL_E_CONFLICT for a
    // route that conflicts with an existing one, QL_E_INVALID for a bad one).
    App& route(std::string_view method, std::string_view pattern, Handler handler) {
        auto route = std::make_unique<detail::SyncRoute>();
        route->fn = std::move(handler);
        return add(method, pattern, std::move(route), &detail::SyncRoute::on_request, nullptr);
    }

    App& route_async(std::string_view method, std::string_view pattern, AsyncHandler handler) {
        return route_async(method, pattern, std::move(handler), nullptr);
    }

    App& route_async(std::string_view method, std::string_view pattern, AsyncHandler handler,
                     AbortHandler on_abort) {
        auto route = std::make_unique<detail::AsyncRoute>();
        route->fn = std::move(handler);
        route->abort = std::move(on_abort);
        ql_abort_fn abort_fn = route->abort ? &detail::AsyncRoute::on_abort : nullptr;
        return add(method, pattern, std::move(route), &detail::AsyncRoute::on_request, abort_fn);
    }

    // The body arrives as a stream: `handler` runs when the head is complete
    // and returns a BodySink whose callbacks get the body on the loop thread
    // as it comes (memory stays bounded by the server's body window).
    // max_body_bytes: this route's limit (0 = the server's max_stream_body_bytes,
    // none by default); over it the client gets 413.
    App& route_stream(std::string_view method, std::string_view pattern, StreamHandler handler,
                      std::uint64_t max_body_bytes = 0) {
        auto route = std::make_unique<detail::StreamRoute>();
        route->fn = std::move(handler);
        add(method, pattern, std::move(route), &detail::StreamRoute::on_request, &detail::StreamRoute::on_abort,
            &detail::StreamRoute::on_body);
        streamed_[std::string(method) + ' ' + std::string(pattern)] = max_body_bytes;
        return route_rules(method, pattern, RouteRules{});
    }

    // Answered entirely in the core; no C++ runs per request.
    App& static_route(std::string_view method, std::string_view pattern, const Response& response) {
        detail::ErrorSlot err;
        Status st = detail::with_c_response(response, [&](const ql_response* res) {
            return ql_app_static(native_checked(), method.data(), method.size(), pattern.data(),
                                 pattern.size(), res, err.out());
        });
        detail::check(st, err, "ql_app_static");
        return *this;
    }

    // ---- native rules (the fast path) -------------------------------------

    // Rate limit and API-key requirement of a route added before.
    App& route_rules(std::string_view method, std::string_view pattern, const RouteRules& rules) {
        ql_route_options o = QL_ROUTE_OPTIONS_INIT;
        o.rate_limit = rules.rate_limit;
        o.rate_window_ms = rules.rate_window_ms;
        o.rate_key_header = rules.rate_key_header.data();
        o.rate_key_header_len = rules.rate_key_header.size();
        o.require_api_key = rules.require_api_key ? 1 : 0;
        o.cache_ttl_ms = rules.cache_ttl_ms;
        o.cache_vary = rules.cache_vary.data();
        o.cache_vary_len = rules.cache_vary.size();
        o.body_schema = rules.body_schema.data();
        o.body_schema_len = rules.body_schema.size();
        o.params_schema = rules.params_schema.data();
        o.params_schema_len = rules.params_schema.size();
        o.stream_body = rules.stream_body ? 1 : 0;
        o.max_body_bytes = rules.max_body_bytes;
        // route_stream's routes keep streaming whatever other rules are set.
        if (auto it = streamed_.find(std::string(method) + ' ' + std::string(pattern)); it != streamed_.end()) {
            o.stream_body = 1;
            if (!o.max_body_bytes) o.max_body_bytes = it->second;
        }
        detail::ErrorSlot err;
        detail::check(ql_app_route_options(native_checked(), method.data(), method.size(), pattern.data(),
                                           pattern.size(), &o, err.out()),
                      err, "ql_app_route_options");
        return *this;
    }

    // App-wide rate limit (requests per window per client); 0 turns it off.
    App& rate_limit(std::uint32_t requests, std::uint32_t window_ms = 60000, std::string_view key_header = {}) {
        detail::ErrorSlot err;
        detail::check(ql_app_rate_limit(native_checked(), requests, window_ms, key_header.data(), key_header.size(),
                                        err.out()),
                      err, "ql_app_rate_limit");
        return *this;
    }

    App& cors(const Cors& c) {
        ql_cors_options o = QL_CORS_OPTIONS_INIT;
        o.origins = c.origins.data();
        o.origins_len = c.origins.size();
        o.methods = c.methods.data();
        o.methods_len = c.methods.size();
        o.headers = c.headers.data();
        o.headers_len = c.headers.size();
        o.expose = c.expose.data();
        o.expose_len = c.expose.size();
        o.credentials = c.credentials ? 1 : 0;
        o.max_age_s = c.max_age_s;
        detail::ErrorSlot err;
        detail::check(ql_app_cors(native_checked(), &o, err.out()), err, "ql_app_cors");
        return *this;
    }

    // Keys for routes with require_api_key, in `header` (default X-API-Key)
    // or the `query` parameter when given.
    App& api_keys(const std::vector<std::string>& keys, std::string_view header = {}, std::string_view query = {}) {
        std::vector<ql_str> v;
        v.reserve(keys.size());
        for (const auto& k : keys) v.push_back({k.data(), k.size()});
        detail::ErrorSlot err;
        detail::check(ql_app_api_keys(native_checked(), header.data(), header.size(), query.data(), query.size(),
                                      v.data(), v.size(), err.out()),
                      err, "ql_app_api_keys");
        return *this;
    }

    // GET `pattern` answers the server's metrics (Prometheus text), natively.
    App& metrics(std::string_view pattern = "/metrics") {
        detail::ErrorSlot err;
        detail::check(ql_app_metrics(native_checked(), pattern.data(), pattern.size(), err.out()), err,
                      "ql_app_metrics");
        return *this;
    }

    // Serves `folder` under `prefix` ("/static/") natively: ETag/304, Range/206,
    // gzip, content types, no way out of the folder.
    App& static_dir(std::string_view prefix, std::string_view folder, std::uint32_t max_age_s = 0,
                    bool gzip = true, std::optional<std::string> index = std::nullopt) {
        ql_static_dir_options o = QL_STATIC_DIR_OPTIONS_INIT;
        o.max_age_s = max_age_s;
        o.no_gzip = gzip ? 0 : 1;
        if (index) {
            o.index = index->c_str();
            o.index_len = index->size();
        }
        detail::ErrorSlot err;
        detail::check(ql_app_static_dir(native_checked(), prefix.data(), prefix.size(), folder.data(), folder.size(),
                                        &o, err.out()),
                      err, "ql_app_static_dir");
        return *this;
    }

    // gzip for handler answers of at least min_bytes when the client accepts it.
    App& compression(bool enabled = true, std::uint32_t min_bytes = 1024, std::uint32_t level = 6) {
        detail::ErrorSlot err;
        detail::check(ql_app_compression(native_checked(), enabled ? 1 : 0, min_bytes, level, err.out()), err,
                      "ql_app_compression");
        return *this;
    }

    // The response cache's bound in bytes (default 64 MiB).
    App& cache_size(std::uint64_t max_bytes) {
        detail::ErrorSlot err;
        detail::check(ql_app_cache_size(native_checked(), max_bytes, err.out()), err, "ql_app_cache_size");
        return *this;
    }

    App& access_log(bool enabled = true) {
        detail::ErrorSlot err;
        detail::check(ql_app_access_log(native_checked(), enabled ? 1 : 0, err.out()), err, "ql_app_access_log");
        return *this;
    }

    // Server-sent events fed by pub/sub: GET pattern streams every text message
    // published to `topics` (comma-separated templates, "room:{room}"), answered
    // natively (see ql_app_event_stream).
    App& event_stream(std::string_view pattern, std::string_view topics, std::uint32_t keepalive_ms = 0) {
        ql_event_stream_options o = QL_EVENT_STREAM_OPTIONS_INIT;
        o.topics = topics.data();
        o.topics_len = topics.size();
        o.keepalive_ms = keepalive_ms;
        detail::ErrorSlot err;
        detail::check(ql_app_event_stream(native_checked(), pattern.data(), pattern.size(), &o, err.out()), err,
                      "ql_app_event_stream");
        return *this;
    }

    // A WebSocket route: GET pattern upgrades (see WebSocketBehavior).
    App& ws(std::string_view pattern, WebSocketBehavior behavior) {
        detail::add_ws(native_checked(), pattern, std::move(behavior));
        return *this;
    }

    App& get(std::string_view pattern, Handler h) { return route("GET", pattern, std::move(h)); }
    App& post(std::string_view pattern, Handler h) { return route("POST", pattern, std::move(h)); }
    App& put(std::string_view pattern, Handler h) { return route("PUT", pattern, std::move(h)); }
    App& del(std::string_view pattern, Handler h) { return route("DELETE", pattern, std::move(h)); }
    App& patch(std::string_view pattern, Handler h) { return route("PATCH", pattern, std::move(h)); }

    ql_app* native() const noexcept { return app_; }
    explicit operator bool() const noexcept { return app_ != nullptr; }

private:
    ql_app* native_checked() const {
        if (!app_) throw Error(QL_E_STATE, "quicklane: use of a moved-from App");
        return app_;
    }

    template <class T>
    App& add(std::string_view method, std::string_view pattern, std::unique_ptr<T> route,
             ql_handler_fn on_request, ql_abort_fn on_abort, ql_abort_fn on_body = nullptr) {
        ql_app* app = native_checked();
        route->method.assign(method);
        route->pattern.assign(pattern);
        ql_handler h = QL_HANDLER_INIT;
        h.on_request = on_request;
        h.on_abort = on_abort;
        h.on_body = on_body;
        h.user_data = route.get();
        h.destroy = &detail::destroy_route<T>;

        detail::ErrorSlot err;
        detail::Registration reg{route.get(), false};
        detail::Registration* outer = std::exchange(detail::current_registration, &reg);
        Status st = ql_app_route(app, method.data(), method.size(), pattern.data(), pattern.size(), &h,
                                 err.out());
        detail::current_registration = outer;
        if (st == QL_OK || reg.destroyed) (void)route.release();  // the core owns it (or freed it)
        detail::check(st, err, "ql_app_route");
        return *this;
    }

    ql_app* app_ = nullptr;
    std::map<std::string, std::uint64_t> streamed_;  // "METHOD pattern" of route_stream routes → limit
};

// Mirrors ql_server_options; 0 (or an empty host) means the library default.
struct ServerOptions {
    std::string host{};             // default "127.0.0.1"; "::" / "::1" for IPv6
    std::uint16_t port = 0;         // 0 = ephemeral (see Server::port)
    std::uint32_t workers = 0;      // loops/threads; default = CPU cores
    std::uint32_t max_header_bytes = 0;
    std::uint32_t max_url_bytes = 0;
    std::uint64_t max_body_bytes = 0;
    std::uint32_t max_headers = 0;
    std::uint32_t header_timeout_ms = 0;
    std::uint32_t idle_timeout_ms = 0;
    std::uint32_t max_connections = 0;
    std::uint32_t max_pipeline = 0;
    std::uint32_t backlog = 0;
    bool reuse_port = false;              // share a fixed port with other processes
    std::uint32_t handler_timeout_ms = 0; // unanswered → 503; default 60000
    std::uint64_t max_stream_body_bytes = 0;  // streamed bodies' limit; 0 = none
    std::uint32_t body_window_bytes = 0;      // unread streamed bytes before reads pause; default 256 KiB
};

struct ServerStats {
    std::uint64_t connections_open = 0;
    std::uint64_t connections_total = 0;
    std::uint64_t requests_total = 0;
    std::uint64_t requests_in_flight = 0;
};

// A server over a snapshot of an App's routes (the App may be destroyed
// afterwards). Move-only; the destructor stops (5 s drain) and frees it.
class Server {
public:
    explicit Server(const App& app, const ServerOptions& options = {}) {
        if (!app.native()) throw Error(QL_E_STATE, "quicklane: Server from a moved-from App");
        ql_server_options o = QL_SERVER_OPTIONS_INIT;
        if (!options.host.empty()) {
            o.host = options.host.data();
            o.host_len = options.host.size();
        }
        o.port = options.port;
        o.workers = options.workers;
        o.max_header_bytes = options.max_header_bytes;
        o.max_url_bytes = options.max_url_bytes;
        o.max_body_bytes = options.max_body_bytes;
        o.max_headers = options.max_headers;
        o.header_timeout_ms = options.header_timeout_ms;
        o.idle_timeout_ms = options.idle_timeout_ms;
        o.max_connections = options.max_connections;
        o.max_pipeline = options.max_pipeline;
        o.backlog = options.backlog;
        o.reuse_port = options.reuse_port ? 1 : 0;
        o.handler_timeout_ms = options.handler_timeout_ms;
        o.max_stream_body_bytes = options.max_stream_body_bytes;
        o.body_window_bytes = options.body_window_bytes;
        detail::ErrorSlot err;
        detail::check(ql_server_new(app.native(), &o, &server_, err.out()), err, "ql_server_new");
    }
    ~Server() { ql_server_free(&server_); }
    Server(Server&& other) noexcept : server_(std::exchange(other.server_, nullptr)) {}
    Server& operator=(Server&& other) noexcept {
        if (this != &other) {
            ql_server_free(&server_);
            server_ = std::exchange(other.server_, nullptr);
        }
        return *this;
    }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and starts the loops; returns once every loop listens. Once only.
    void start() {
        detail::ErrorSlot err;
        detail::check(ql_server_start(native_checked(), err.out()), err, "ql_server_start");
    }

    // Bound port (useful with port 0); 0 before start.
    std::uint16_t port() const noexcept { return server_ ? ql_server_port(server_) : 0; }

    // Graceful stop: in-flight requests get up to timeout_ms, the rest are
    // aborted. Never call it from a handler. Safe to call twice.
    void stop(std::uint32_t timeout_ms = 5000) {
        detail::ErrorSlot err;
        detail::check(ql_server_stop(native_checked(), timeout_ms, err.out()), err, "ql_server_stop");
    }

    ServerStats stats() const {
        ql_server_stats s = QL_SERVER_STATS_INIT;
        detail::ErrorSlot err;
        detail::check(ql_server_stats_get(native_checked(), &s, err.out()), err, "ql_server_stats_get");
        return {s.connections_open, s.connections_total, s.requests_total, s.requests_in_flight};
    }

    // A message to every WebSocket subscribed to topic, from any thread;
    // returns how many.
    std::size_t publish(std::string_view topic, std::string_view data, bool binary = false) const {
        return quicklane::publish(native_checked(), topic, data, binary);
    }

    ql_server* native() const noexcept { return server_; }
    explicit operator bool() const noexcept { return server_ != nullptr; }

private:
    ql_server* native_checked() const {
        if (!server_) throw Error(QL_E_STATE, "quicklane: use of a moved-from Server");
        return server_;
    }

    ql_server* server_ = nullptr;
};

// Signals: block SIGINT and SIGTERM in the main thread before any thread
// starts (call block_signals() first thing in main), so every worker loop
// inherits the mask and the signal stays pending for wait_for_signal(), which
// sleeps in sigwait() until one arrives and returns its number:
//
//   quicklane::block_signals();
//   ... build the App, start the Server ...
//   quicklane::wait_for_signal();
//   server.stop();
inline sigset_t shutdown_signals() noexcept {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

inline void block_signals() noexcept {
    sigset_t set = shutdown_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

inline int wait_for_signal() noexcept {
    sigset_t set = shutdown_signals();
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    return sig;
}

}  // namespace quicklane

#endif  // QUICKLANE_HPP
