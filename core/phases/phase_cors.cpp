// CORS: preflights answered here, allow headers for allowed origins.
#include "phases/phases.hpp"

#include <cstring>

#include "response_writer.hpp"
#include "rules.hpp"

namespace ql {

// CORS (RFC 6454 origins, Fetch's preflight): a preflight is answered here,
// allowed or not (false); an actual request from an allowed origin gets its allow
// headers on whatever answers it; a foreign origin gets none.
bool cors_phase(PhaseCtx &c, Request *r, const CorsRules &rules) {
    bool has_origin = false;
    std::string_view origin = find_header(*r, "origin", &has_origin);
    if (!has_origin) return true;
    bool allowed = rules.origin_allowed(origin);
    bool preflight = false;
    std::string_view want = find_header(*r, "access-control-request-method", &preflight);
    if (preflight && std::strcmp(r->method_name, "OPTIONS") == 0) {
        std::string_view req_headers = find_header(*r, "access-control-request-headers");
        if (!allowed || !rules.method_allowed(want) || !rules.headers_allowed(req_headers)) {
            answer_error(c.out, r, 400, "Disallowed CORS request");
            return false;
        }
        rules.preflight_headers(origin, req_headers, r->rule_headers);
        r->out_body.clear();
        r->body_ref = {};
        r->head_only = true;
        c.out.ready_here(r, 204, {}, {}, 0);
        return false;
    }
    if (allowed) rules.actual_headers(origin, r->rule_headers);
    return true;
}

}  // namespace ql
