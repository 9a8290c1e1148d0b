// Admission: the rate limit, then the API key.
#include "phases/phases.hpp"

#include <cstdio>

#include "params.hpp"
#include "response_writer.hpp"
#include "router.hpp"
#include "rules.hpp"
#include "server.hpp"
#include "worker.hpp"

namespace ql {

// Rate limit, then API key: false when answered here (429, 401, 403).
bool admit_phase(PhaseCtx &c, Request *r, const Route &route, const AppRules &app) {
    const RouteRules *own = route.rules.get();
    bool own_rate = own && own->rate.requests;
    const RateRule &rate = own_rate ? own->rate : app.rate;
    if (rate.requests) {
        std::string_view key;
        if (!rate.key_header.empty()) key = find_header(*r, rate.key_header);
        if (key.empty()) key = c.peer_ip;
        // One bucket per route for a route's own limit; one for the whole app otherwise.
        uint32_t scope = own_rate ? route.index : UINT32_MAX;
        RateLimiter::Verdict v = c.w.server.rate_limiter.take(scope, key, rate, c.w.now_ms());
        char h[160];
        int n = snprintf(h, sizeof h, "RateLimit-Limit: %u\r\nRateLimit-Remaining: %u\r\nRateLimit-Reset: %u\r\n",
                         rate.requests, v.remaining, v.reset_s);
        r->rule_headers.append(h, static_cast<size_t>(n));
        if (!v.allowed) {
            n = snprintf(h, sizeof h, "Retry-After: %u\r\n", v.retry_after_s);
            answer_error(c.out, r, 429, "Too Many Requests", {h, static_cast<size_t>(n)});
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
            answer_error(c.out, r, 401, "Not authenticated");
            return false;
        }
        if (!keys->accepts(cand)) {
            answer_error(c.out, r, 403, "Invalid API key");
            return false;
        }
    }
    return true;
}

}  // namespace ql
