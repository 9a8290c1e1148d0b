// Server: N worker loops sharing one port through SO_REUSEPORT, a frozen
// router snapshot, limits, and the thread-safe answer path (ql_respond).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "quicklane.h"
#include "router.hpp"

namespace ql {

class Worker;

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
};

// Fills limits from options (0 = default); false + message when out of range.
bool limits_from_options(const ql_server_options *o, Limits &l, std::string *err);

class Server {
public:
    Server(std::shared_ptr<const Router> router, Limits limits);
    ~Server();

    ql_status start(std::string *err);
    ql_status stop(uint32_t timeout_ms, std::string *err);
    uint16_t port() const { return port_.load(); }
    ql_status respond(ql_req_id id, const ql_response *resp, std::string *err);
    void stats(ql_server_stats *s) const;
    bool on_loop_thread() const;

    const Router &router() const { return *router_; }
    const Limits &limits() const { return limits_; }

    // shared counters
    std::atomic<uint64_t> conns_open{0};
    std::atomic<uint64_t> conns_total{0};
    std::atomic<uint64_t> requests_total{0};
    std::atomic<uint64_t> requests_in_flight{0};

private:
    std::shared_ptr<const Router> router_;
    Limits limits_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::atomic<uint16_t> port_{0};
    std::mutex lifecycle_;
    enum class State { New, Running, Stopped } state_ = State::New;
};

// Checks a ql_response and renders its headers; false + message when invalid.
bool render_response_fields(const ql_response *r, std::string &type, std::string &headers, std::string *err);

}  // namespace ql
