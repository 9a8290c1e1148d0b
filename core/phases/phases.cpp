// The phase driver: routing, then every native rule in its order (see
// phases.hpp), then the host.
#include "phases/phases.hpp"

#include <cstring>

#include "params.hpp"
#include "response_writer.hpp"
#include "router.hpp"
#include "rules.hpp"
#include "server.hpp"
#include "worker.hpp"
#include "ws/ws_handshake.hpp"

namespace ql {

void answer_error(Answers &out, Request *r, int status, std::string_view msg, std::string_view extra) {
    answer_body(out, r, status, error_body(msg), extra);
}

// A JSON answer from the core.
void answer_body(Answers &out, Request *r, int status, std::string body, std::string_view extra) {
    r->out_body = std::move(body);
    r->body_ref = {};
    // An answer to HEAD carries no body bytes, errors (404, 405, 400) included.
    if (std::strcmp(r->method_name, "HEAD") == 0) r->head_only = true;
    out.ready_here(r, status, "application/json", extra, r->out_body.size());
}

void run_phases(PhaseCtx &c, Request *r) {
    Server &srv = c.w.server;
    // Decoded parameters and query pairs are never longer than the target, so
    // reserving that much now keeps every view into the arena valid below.
    r->arena.reserve(r->arena.size() + r->target.len + 16);
    const AppRules &rules = *srv.router().app_rules;
    if (rules.cors && !cors_phase(c, r, *rules.cors)) return;  // a preflight, answered here
    Match m;
    srv.router().match(r->method_name, r->view(r->path), m,
                       r->upgrade && header_has_token(find_header(*r, "upgrade"), "websocket"));
    if (m.kind == MatchKind::NotFound) {
        answer_error(c.out, r, 404, "Not Found");
        return;
    }
    if (m.kind == MatchKind::MethodNotAllowed) {
        std::string allow = "Allow: ";
        allow.append(m.allow);
        allow.append("\r\n");
        answer_error(c.out, r, 405, "Method Not Allowed", allow);
        return;
    }
    r->route = m.route;
    r->head_only = r->method_name[0] == 'H' && std::strcmp(r->method_name, "HEAD") == 0;
    if (!admit_phase(c, r, *m.route, rules)) return;  // limited or refused natively
    if (m.route->dir) {
        static_dir_phase(c, r, *m.route->dir, m.param_count ? m.params[m.param_count - 1].raw : std::string_view());
        return;
    }
    if (m.route->metrics) {
        srv.render_metrics(r->out_body);
        c.out.ready_here(r, 200, "text/plain; version=0.0.4; charset=utf-8", {}, r->out_body.size());
        return;
    }
    if (const StaticAnswer *a = m.route->answer.get()) {
        r->body_ref = a->body;
        if (!status_has_body(a->status)) r->head_only = true;
        c.out.ready_here(r, a->status, a->content_type, a->extra_headers, a->body.size());
        return;
    }
    static thread_local std::string tmp;
    for (size_t i = 0; i < m.param_count; ++i) {
        std::string_view raw = m.params[i].raw;
        if (!percent_decode(raw, false, tmp)) {
            answer_error(c.out, r, 400, "invalid percent-encoding or UTF-8 in path parameter");
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
            answer_error(c.out, r, 400, "invalid percent-encoding or UTF-8 in query string");
            return;
        }
        sp.name = r->append(tmp.data(), tmp.size());
        if (!percent_decode(v, true, tmp)) {
            answer_error(c.out, r, 400, "invalid percent-encoding or UTF-8 in query string");
            return;
        }
        sp.value = r->append(tmp.data(), tmp.size());
        r->queries.push_back(sp);
    }
    if (const RouteRules *rr = m.route->rules.get()) {
        if ((rr->params || rr->body_schema) && !validate_phase(c, r, *rr)) return;  // 400 or 422, answered here
        if (rr->cache_ttl_ms && srv.cache && (r->head_only || std::strcmp(r->method_name, "GET") == 0) &&
            !cache_phase(c, r, *rr))
            return;  // a hit, or waiting for the leader's answer
    }
    r->dispatched = true;
    r->dispatched_ms = c.w.now_ms();
    srv.requests_in_flight.fetch_add(1, std::memory_order_relaxed);
    const ql_handler &h = m.route->handler->h;
    h.on_request(h.user_data, reinterpret_cast<ql_request *>(r));
}

}  // namespace ql
