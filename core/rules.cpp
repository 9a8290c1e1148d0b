#include "rules.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>

#include "request.hpp"

namespace ql {

namespace {

bool safelisted_header(std::string_view h) {
    return iequals(h, "accept") || iequals(h, "accept-language") || iequals(h, "content-language") ||
           iequals(h, "content-type");
}

}  // namespace

// ---- CORS ----------------------------------------------------------------

bool CorsRules::origin_allowed(std::string_view origin) const {
    if (any_origin) return true;
    return std::find(origins.begin(), origins.end(), origin) != origins.end();
}

bool CorsRules::method_allowed(std::string_view m) const {
    return std::find(methods.begin(), methods.end(), m) != methods.end();
}

bool CorsRules::headers_allowed(std::string_view requested) const {
    if (any_header) return true;
    while (!requested.empty()) {
        size_t comma = requested.find(',');
        std::string_view h = trim(requested.substr(0, comma));
        requested = comma == std::string_view::npos ? std::string_view{} : requested.substr(comma + 1);
        if (h.empty() || safelisted_header(h)) continue;
        bool ok = false;
        for (const std::string &a : headers) ok |= iequals(a, h);
        if (!ok) return false;
    }
    return true;
}

void CorsRules::actual_headers(std::string_view origin, std::string &out) const {
    if (any_origin && !credentials) {
        out.append("Access-Control-Allow-Origin: *\r\n");
    } else {
        out.append("Access-Control-Allow-Origin: ").append(origin).append("\r\nVary: Origin\r\n");
    }
    if (credentials) out.append("Access-Control-Allow-Credentials: true\r\n");
    if (!expose.empty()) out.append("Access-Control-Expose-Headers: ").append(expose).append("\r\n");
}

void CorsRules::preflight_headers(std::string_view origin, std::string_view req_headers, std::string &out) const {
    if (any_origin && !credentials) {
        out.append("Access-Control-Allow-Origin: *\r\n");
    } else {
        out.append("Access-Control-Allow-Origin: ").append(origin).append("\r\n");
    }
    out.append("Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\n");
    out.append("Access-Control-Allow-Methods: ").append(methods_joined).append("\r\n");
    std::string_view allow = any_header ? trim(req_headers) : std::string_view(headers_joined);
    if (!allow.empty()) out.append("Access-Control-Allow-Headers: ").append(allow).append("\r\n");
    if (credentials) out.append("Access-Control-Allow-Credentials: true\r\n");
    out.append("Access-Control-Max-Age: ").append(std::to_string(max_age_s)).append("\r\n");
}

// ---- API keys ------------------------------------------------------------

bool ApiKeys::accepts(std::string_view cand) const {
    unsigned ok = 0;
    for (const std::string &k : keys) {
        size_t n = std::max(k.size(), cand.size());
        unsigned diff = k.size() != cand.size();
        for (size_t i = 0; i < n; ++i) {
            unsigned char a = i < k.size() ? static_cast<unsigned char>(k[i]) : 0;
            unsigned char b = i < cand.size() ? static_cast<unsigned char>(cand[i]) : 0;
            diff |= a ^ b;
        }
        ok |= diff == 0;
    }
    return ok != 0 && !cand.empty();
}

// ---- rate limits ---------------------------------------------------------

RateLimiter::Verdict RateLimiter::take(uint32_t scope, std::string_view key, const RateRule &rule, uint64_t now) {
    static thread_local std::string k;
    k.assign(reinterpret_cast<const char *>(&scope), sizeof scope);
    k.append(key);
    Shard &sh = shards_[std::hash<std::string>{}(k) % kShards];
    const double cap = rule.requests;
    const double per_ms = cap / rule.window_ms;
    std::lock_guard lk(sh.mu);
    auto it = sh.map.find(k);
    if (it == sh.map.end()) {
        if (sh.map.size() >= max_per_shard_) {
            // Drop buckets that have refilled: forgetting them changes nothing.
            for (auto i = sh.map.begin(); i != sh.map.end();) {
                if (i->second.tokens + elapsed_ms(now, i->second.last_ms) * per_ms >= cap)
                    i = sh.map.erase(i);
                else
                    ++i;
            }
            if (sh.map.size() >= max_per_shard_) sh.map.erase(sh.map.begin());
        }
        it = sh.map.emplace(k, Bucket{cap, now}).first;
    }
    Bucket &b = it->second;
    b.tokens = std::min(cap, b.tokens + elapsed_ms(now, b.last_ms) * per_ms);
    b.last_ms = std::max(b.last_ms, now);
    Verdict v{};
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
        v.allowed = true;
    }
    v.remaining = static_cast<uint32_t>(std::floor(b.tokens));
    v.reset_s = static_cast<uint32_t>(std::ceil((cap - b.tokens) / per_ms / 1000.0));
    v.retry_after_s = v.allowed ? 0 : std::max(1u, static_cast<uint32_t>(std::ceil((1.0 - b.tokens) / per_ms / 1000.0)));
    return v;
}

// ---- response cache --------------------------------------------------------

uint64_t ResponseCache::now_ms() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

ResponseCache::Lookup ResponseCache::lookup(const std::string &key, uint64_t now, uint64_t pending_limit,
                                            uint64_t waiter) {
    std::lock_guard lk(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) {
        Entry &e = it->second;
        if (e.answer) {
            if (now < e.answer->expires_ms) {
                lru_.splice(lru_.begin(), lru_, e.lru);
                return {Outcome::Hit, e.answer};
            }
            // Expired: this request leads the refresh.
            lru_.erase(e.lru);
            bytes_ -= e.size;
            e.answer.reset();
            e.size = 0;
            e.pending_since = now;
            return {Outcome::Lead, nullptr};
        }
        if (elapsed_ms(now, e.pending_since) < pending_limit) {
            e.waiters.push_back(waiter);
            return {Outcome::Wait, nullptr};
        }
        // The leader never answered (its handler timed out): lead anew. The
        // old waiters keep their own handler timeout.
        e.pending_since = now;
        return {Outcome::Lead, nullptr};
    }
    Entry &e = map_[key];
    e.pending_since = now;
    return {Outcome::Lead, nullptr};
}

std::vector<uint64_t> ResponseCache::fill(const std::string &key, std::shared_ptr<CachedAnswer> answer,
                                          bool cacheable) {
    std::lock_guard lk(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return {};
    Entry &e = it->second;
    std::vector<uint64_t> waiters;
    waiters.swap(e.waiters);
    if (e.answer) return waiters;  // a newer leader already stored one
    uint64_t size = key.size() + answer->body.size() + answer->headers.size() + answer->content_type.size() + 128;
    if (!cacheable || size > max_bytes_) {
        map_.erase(it);
        return waiters;
    }
    e.answer = std::move(answer);
    e.size = size;
    lru_.push_front(key);
    e.lru = lru_.begin();
    bytes_ += size;
    evict_locked();
    return waiters;
}

void ResponseCache::evict_locked() {
    while (bytes_ > max_bytes_ && !lru_.empty()) {
        auto it = map_.find(lru_.back());
        lru_.pop_back();
        if (it == map_.end()) continue;
        bytes_ -= it->second.size;
        if (it->second.waiters.empty()) {
            map_.erase(it);
        } else {  // keep the waiters' pending entry
            it->second.answer.reset();
            it->second.size = 0;
        }
    }
}

uint64_t ResponseCache::bytes() const {
    std::lock_guard lk(mu_);
    return bytes_;
}

// ---- metrics -------------------------------------------------------------

Metrics::Metrics(size_t n) {
    routes.reserve(n + 1);
    for (size_t i = 0; i <= n; ++i) routes.push_back(std::make_unique<Route>());
}

void Metrics::record(size_t route, int status, uint64_t micros, bool native) {
    (native ? native_total : host_total).fetch_add(1, std::memory_order_relaxed);
    Route &r = *routes[std::min(route, routes.size() - 1)];
    uint32_t s = static_cast<uint32_t>(status);
    for (size_t i = 0; i < kStatusSlots; ++i) {
        uint32_t cur = r.status[i].load(std::memory_order_acquire);
        if (cur == 0) {
            if (r.status[i].compare_exchange_strong(cur, s, std::memory_order_acq_rel) || cur == s) {
                r.count[i].fetch_add(1, std::memory_order_relaxed);
                break;
            }
            continue;
        }
        if (cur == s) {
            r.count[i].fetch_add(1, std::memory_order_relaxed);
            break;
        }
    }
    double secs = micros / 1e6;
    size_t b = 0;
    while (b < kBuckets.size() && secs > kBuckets[b]) ++b;
    r.hist[b].fetch_add(1, std::memory_order_relaxed);
    r.micros_sum.fetch_add(micros, std::memory_order_relaxed);
}

void prom_label(std::string &out, std::string_view v) {
    for (char c : v) {
        if (c == '\\' || c == '"') {
            out.push_back('\\');
            out.push_back(c);
        } else if (c == '\n') {
            out.append("\\n");
        } else {
            out.push_back(c);
        }
    }
}

}  // namespace ql
