// Phases: the native rules a parsed request passes through before (or
// instead of) a host. Each is its own unit with one entry point; run_phases
// (phases.cpp) routes the request and runs them in a fixed order:
//
//   cors (a preflight is answered) → route (404, 405) → admit (429, 401,
//   403) → static folder / metrics / static answer → path and query
//   decoding (400) → validate (400, 422) → cache (a hit, or wait for the
//   leader) → the host's handler
//
// A protocol hands a request whose head is complete (and whose path and
// query are found) to run_phases; a phase that answers does so through the
// protocol's Answers, which frames the answer for its wire.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "request.hpp"

namespace ql {

class Worker;
struct AppRules;
struct CorsRules;
struct Route;
struct RouteRules;
struct StaticDir;

class Answers {
public:
    // r's answer is made on the loop: its body bytes are in out_body or
    // body_ref, `headers` are extra header lines (each ending in CRLF).
    virtual void ready_here(Request *r, int status, std::string_view type, std::string_view headers,
                            size_t length) = 0;

protected:
    ~Answers() = default;
};

struct PhaseCtx {
    Worker &w;
    Answers &out;
    std::string_view peer_ip;  // the rate limit's default key
};

// The driver: routes r and runs the phases; the host gets what none answered.
void run_phases(PhaseCtx &c, Request *r);

// A JSON answer from the core ({"detail": msg} for errors).
void answer_body(Answers &out, Request *r, int status, std::string body, std::string_view extra = {});
void answer_error(Answers &out, Request *r, int status, std::string_view msg, std::string_view extra = {});

// Each phase: true when the request goes on, false when it was answered
// here (or, for the cache, waits for another request's answer).
bool cors_phase(PhaseCtx &c, Request *r, const CorsRules &rules);                       // phase_cors.cpp
bool admit_phase(PhaseCtx &c, Request *r, const Route &route, const AppRules &app);     // phase_admit.cpp
void static_dir_phase(PhaseCtx &c, Request *r, const StaticDir &dir, std::string_view raw_rest);  // phase_static.cpp; always answers
bool validate_phase(PhaseCtx &c, Request *r, const RouteRules &rr);                     // phase_validate.cpp
bool cache_phase(PhaseCtx &c, Request *r, const RouteRules &rr);                        // phase_cache.cpp

}  // namespace ql
