// Server: N worker loops sharing one port through SO_REUSEPORT, a frozen
// router snapshot, limits, and the thread-safe answer path (ql_respond).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <uv.h>

#include "quicklane.h"
#include "router.hpp"
#include "rules.hpp"
#include "static_files.hpp"
#include "ws/ws_hub.hpp"

namespace ql {

class Worker;
struct Request;

struct Limits {
    std::string host = "127.0.0.1";
    uint16_t port = 0;
    uint32_t workers = 1;
    uint32_t max_header_bytes = 16 * 1024;
    uint32_t max_url_bytes = 8 * 1024;
    uint64_t max_body_bytes = 1024 * 1024;
    uint32_t max_headers = 100;
    uint32_t header_timeout_ms = 30000;
    uint32_t idle_timeout_ms = 60000;
    uint32_t max_connections = 100000;
    uint32_t max_pipeline = 32;
    uint32_t backlog = 1024;
    bool reuse_port = false;  // share a fixed port across processes (options v2)
    uint32_t handler_timeout_ms = 60000;  // unanswered → 503 (options v3)
    uint64_t max_stream_body_bytes = 0;   // streamed bodies: 0 = no limit (options v4)
    uint32_t body_window_bytes = 256 * 1024;  // unread streamed bytes before reads pause (v4)
    // A paused streamed body is read on once its unread bytes fall under
    // this (hysteresis: each resume reads half a window or more).
    size_t body_resume_bytes() const { return body_window_bytes / 2; }
};

// Fills limits from options (0 = default); false + message when out of range.
bool limits_from_options(const ql_server_options *o, Limits &l, std::string *err);

class Server {
public:
    Server(std::shared_ptr<const Router> router, Limits limits);
    ~Server();

    ql_status start(std::string *err);
    ql_status start_on_loop(uv_loop_t *loop, std::string *err);
    ql_status stop(uint32_t timeout_ms, std::string *err);
    ql_status stop_async(uint32_t timeout_ms, ql_stopped_fn done, void *user_data, std::string *err);
    // Host-loop mode: the worker's last handle closed (called on that loop).
    void on_worker_closed();
    bool hosted() const { return hosted_; }
    bool running() const { return state_ == State::Running; }
    // Set by the C door for a free that must wait for the host's loop.
    void (*delete_when_closed)(Server *) = nullptr;
    uint16_t port() const { return port_.load(); }
    ql_status respond(ql_req_id id, const ql_response *resp, std::string *err);
    // length >= 0: a declared Content-Length instead of chunked framing.
    ql_status respond_start(ql_req_id id, const ql_response *head, std::string *err, int64_t length = -1);
    ql_status respond_abort(ql_req_id id, std::string *err);
    ql_status respond_write(ql_req_id id, const char *data, size_t len, bool end, uint64_t *buffered,
                            std::string *err);
    ql_status body_read(ql_req_id id, char *buf, size_t cap, int32_t timeout_ms, size_t *out_len,
                        std::string *err);
    void stats(ql_server_stats *s) const;
    bool on_loop_thread() const;

    const Router &router() const { return *router_; }
    const Limits &limits() const { return limits_; }
    uint32_t worker_count() const { return static_cast<uint32_t>(workers_.size()); }

    // WebSockets (ws/ws_server.cpp): the C ABI's ql_ws_* calls.
    ql_status ws_accept(ql_req_id id, const ql_ws_accept_options *o, std::string *err);
    // ql_request_hijack: `route` is the connection's own (raw, its host's callbacks or queue).
    ql_status hijack(ql_req_id id, std::shared_ptr<const WsRoute> route, void *tag, std::string *err);
    ql_status ws_send(ql_ws_id id, const char *data, size_t len, uint32_t kind, std::string *err);
    ql_status ws_close(ql_ws_id id, uint16_t code, std::string_view reason, std::string *err);
    ql_status ws_cut(ql_ws_id id, std::string *err);
    ql_status ws_buffered(ql_ws_id id, uint64_t *out, std::string *err);
    ql_status ws_subscribe(ql_ws_id id, std::string_view topic, bool on, std::string *err);
    ql_status publish(std::string_view topic, const char *data, size_t len, uint32_t kind, ql_ws_id exclude,
                      size_t *count, std::string *err);
    PubSub pubsub;

    // shared counters
    std::atomic<uint64_t> conns_open{0};
    std::atomic<uint64_t> conns_total{0};
    std::atomic<uint64_t> requests_total{0};
    std::atomic<uint64_t> requests_in_flight{0};

    // Native rules' per-server state.
    RateLimiter rate_limiter;
    std::unique_ptr<Metrics> metrics;  // set when the app has a metrics route
    std::unique_ptr<ResponseCache> cache;  // set when a route is cached
    std::unique_ptr<FileCache> files;      // set when a folder is mounted
    bool observe = false;              // metrics or access log: time each request
    bool streams = false;              // a route streams its body: routes are matched at the head
    void render_metrics(std::string &out) const;
    // A cached answer's body for this request: the gzip form when it has one
    // and the client accepts gzip (its headers get Content-Encoding), else
    // the identity. Either way an entry with a gzip form varies by encoding.
    static std::string_view cached_body(const CachedAnswer &a, const Request &r, std::string &headers);
    void log_access(const Request &r, uint64_t micros) const;

private:
    Request *find(ql_req_id id, Worker **w, std::string *err);
    WsSlot *find_ws(ql_ws_id id, Worker **w, std::string *err);
    ql_status claim(Request *r, ql_req_id id, bool *gone, std::string *err);
    ql_status answer(ql_req_id id, const ql_response *resp, bool stream, std::string *err, int64_t length = -1);
    std::shared_ptr<const CachedAnswer> fill_cache(Request *r, const ql_response *resp, bool stream,
                                                   std::string &type, std::string &headers);
    bool compressible(const ql_response *resp, const std::string &type, const std::string &headers) const;
    bool compress(Request *r, const ql_response *resp, const std::string &type, std::string &headers,
                  std::string &out, const CachedAnswer *filled);
    void answer_cached(uint64_t id, const std::shared_ptr<const CachedAnswer> &a);
    std::shared_ptr<const Router> router_;
    Limits limits_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::atomic<uint16_t> port_{0};
    ql_status bind_all(uint32_t n, std::vector<int> &fds, uint16_t &port, std::string *err);
    std::mutex lifecycle_;
    enum class State { New, Running, Stopped };
    std::atomic<State> state_{State::New};
    bool hosted_ = false;
    ql_stopped_fn done_ = nullptr;
    void *done_data_ = nullptr;
};

// Checks a ql_response and renders its headers; false + message when invalid.
bool render_response_fields(const ql_response *r, std::string &type, std::string &headers, std::string *err);

}  // namespace ql
