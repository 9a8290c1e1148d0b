// The response cache: hits answered here, one leader per missing key.
#include "phases/phases.hpp"

#include <charconv>

#include "response_writer.hpp"
#include "rules.hpp"
#include "server.hpp"
#include "worker.hpp"

namespace ql {

// Response cache: false when answered from it or waiting on the leader.
bool cache_phase(PhaseCtx &c, Request *r, const RouteRules &rr) {
    std::string &key = r->cache_key;
    key.assign("GET ");
    key.append(r->view(r->target));
    for (const std::string &h : rr.cache_vary) {
        key.push_back('\n');
        key.append(h).push_back(':');
        key.append(find_header(*r, h));
    }
    Server &srv = c.w.server;
    uint64_t now = ResponseCache::now_ms();
    ResponseCache::Lookup l = srv.cache->lookup(key, now, srv.limits().handler_timeout_ms, r->id());
    switch (l.outcome) {
    case ResponseCache::Outcome::Hit: {
        const CachedAnswer &a = *l.answer;
        r->cached = std::move(l.answer);
        // The stored header lines go out as they are (the request holds the
        // entry); Age and the encoding's lines join the rules' own lines.
        char age[24];
        auto end = std::to_chars(age, age + sizeof age, elapsed_ms(now, a.stored_ms) / 1000).ptr;
        r->rule_headers.append("Age: ").append(age, end).append("\r\n");
        r->body_ref = Server::cached_body(a, *r, r->rule_headers);
        if (!status_has_body(a.status)) r->head_only = true;
        c.out.ready_here(r, a.status, a.content_type, a.headers, r->body_ref.size());
        return false;
    }
    case ResponseCache::Outcome::Wait:
        r->cache_wait = true;
        r->dispatched = true;
        r->dispatched_ms = c.w.now_ms();
        srv.requests_in_flight.fetch_add(1, std::memory_order_relaxed);
        return false;
    case ResponseCache::Outcome::Lead:
        r->cache_lead = true;
        return true;
    }
    return true;
}

}  // namespace ql
