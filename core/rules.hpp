// Native rules: the parts of an API that are answered (or decorated) in the
// core before a request would reach a host handler — CORS, API keys, rate
// limits, metrics, the access log. Configuration is immutable once a server
// snapshots the router; per-server state (buckets, counters) lives in
// RulesState, owned by the Server.
#pragma once

#include <array>
#include <list>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ql {

// Milliseconds from `then` to `now`, 0 when `now` is earlier. Several loops
// share buckets and cache entries, and each reads its clock at its own moment
// (uv_now is cached per loop iteration): another loop's stamp can be later
// than this loop's now. Unsigned wrap-around would read as ages of years.
inline uint64_t elapsed_ms(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

struct CorsRules {
    bool any_origin = false;
    std::vector<std::string> origins;        // exact, case-sensitive (RFC 6454 serialization)
    std::vector<std::string> methods;        // upper-case
    std::string methods_joined;              // "GET, POST"
    bool any_header = false;
    std::vector<std::string> headers;        // lower-case
    std::string headers_joined;
    std::string expose;                      // "X-A, X-B" or empty
    bool credentials = false;
    uint32_t max_age_s = 600;

    bool origin_allowed(std::string_view origin) const;
    bool method_allowed(std::string_view m) const;
    bool headers_allowed(std::string_view requested) const;  // Access-Control-Request-Headers
    // Headers for an actual (non-preflight) response from an allowed origin.
    void actual_headers(std::string_view origin, std::string &out) const;
    void preflight_headers(std::string_view origin, std::string_view req_headers, std::string &out) const;
};

struct ApiKeys {
    std::string header = "x-api-key";  // lower-case
    std::string query;                 // optional query parameter
    std::vector<std::string> keys;
    // Constant time in the candidate and every key: no early exit.
    bool accepts(std::string_view candidate) const;
};

struct RateRule {
    uint32_t requests = 0;     // bucket size; 0 = none
    uint32_t window_ms = 60000;
    std::string key_header;    // lower-case; empty = client IP
};

class Schema;
class ParamSpecs;

struct RouteRules {
    std::shared_ptr<const Schema> body_schema;   // JSON body → 400 (not JSON) / 422
    std::shared_ptr<const ParamSpecs> params;    // typed path/query parameters → 422
    RateRule rate;             // requests == 0: the app's default applies
    bool require_api_key = false;
    uint32_t cache_ttl_ms = 0;         // 0 = not cached
    std::vector<std::string> cache_vary;  // lower-case header names in the key
    bool stream_body = false;  // dispatched at the end of the head; body read as it comes
    uint64_t max_body_bytes = 0;  // a streamed body's limit; 0 = the server's
};

struct AppRules {
    std::shared_ptr<const CorsRules> cors;
    std::shared_ptr<const ApiKeys> api_keys;
    RateRule rate;             // default for every route without its own
    bool access_log = false;
    uint64_t cache_max_bytes = 64ull << 20;
    std::shared_ptr<const struct CompressionRules> compression;  // null: off
};

// A stored answer, shared by every hit that is still writing it.
struct CachedAnswer {
    int status = 200;
    std::string content_type;
    std::string headers;  // "Name: value\r\n" lines, Cache-Control included
    std::string body;
    std::string gz;  // its gzip form, when compression is on and it pays (else empty)
    uint64_t stored_ms = 0;
    uint64_t expires_ms = 0;
};

// The response cache of one server: key → answer, LRU-bounded by bytes.
// The first miss of a key becomes its leader (the host runs once); misses
// while the leader runs wait on the entry and get the leader's answer.
class ResponseCache {
public:
    explicit ResponseCache(uint64_t max_bytes) : max_bytes_(max_bytes) {}
    enum class Outcome { Hit, Wait, Lead };
    struct Lookup {
        Outcome outcome;
        std::shared_ptr<const CachedAnswer> answer;  // Hit
    };
    // waiter: the request id to answer when the leader's answer comes.
    Lookup lookup(const std::string &key, uint64_t now_ms, uint64_t pending_limit_ms, uint64_t waiter);
    // The leader's answer: stored when cacheable (ttl_ms), and the ids
    // waiting on it returned (to be answered with it) either way.
    std::vector<uint64_t> fill(const std::string &key, std::shared_ptr<CachedAnswer> answer, bool cacheable);
    uint64_t bytes() const;
    static uint64_t now_ms();

private:
    struct Entry {
        std::shared_ptr<const CachedAnswer> answer;  // null while pending
        uint64_t pending_since = 0;
        std::vector<uint64_t> waiters;
        std::list<std::string>::iterator lru;
        uint64_t size = 0;
    };
    void evict_locked();
    mutable std::mutex mu_;
    std::unordered_map<std::string, Entry> map_;
    std::list<std::string> lru_;  // front = most recent (stored entries only)
    uint64_t bytes_ = 0;
    uint64_t max_bytes_;
};

// Token buckets keyed by client (IP or header value), sharded by hash so
// loops rarely share a lock; bounded: full (idle) buckets are dropped first.
class RateLimiter {
public:
    explicit RateLimiter(size_t max_keys = 100000) : max_per_shard_(max_keys / kShards + 1) {}
    struct Verdict {
        bool allowed;
        uint32_t remaining;
        uint32_t reset_s;        // seconds until the bucket is full again
        uint32_t retry_after_s;  // seconds until one request is allowed (429)
    };
    Verdict take(uint32_t scope, std::string_view key, const RateRule &rule, uint64_t now_ms);

private:
    static constexpr size_t kShards = 16;
    struct Bucket {
        double tokens;
        uint64_t last_ms;
    };
    struct Shard {
        std::mutex mu;
        std::unordered_map<std::string, Bucket> map;
    };
    std::array<Shard, kShards> shards_;
    size_t max_per_shard_;
};

// Counters for /metrics: per route (index; the last slot is "no route"),
// by status, plus a latency histogram. Relaxed atomics: loops only add.
class Metrics {
public:
    static constexpr size_t kStatusSlots = 24;
    static constexpr std::array<double, 12> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1.0,  5.0};
    explicit Metrics(size_t routes);
    void record(size_t route, int status, uint64_t micros, bool native);
    struct Route {
        std::array<std::atomic<uint32_t>, kStatusSlots> status{};  // 0 = free slot
        std::array<std::atomic<uint64_t>, kStatusSlots> count{};
        std::array<std::atomic<uint64_t>, kBuckets.size() + 1> hist{};  // last = +Inf
        std::atomic<uint64_t> micros_sum{0};
    };
    std::vector<std::unique_ptr<Route>> routes;
    std::atomic<uint64_t> native_total{0}, host_total{0};
    std::atomic<uint64_t> bytes_in{0}, bytes_out{0};
};

// Escapes a Prometheus label value.
void prom_label(std::string &out, std::string_view v);

}  // namespace ql
