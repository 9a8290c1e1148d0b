// The C ABI door: converts types, catches every exception, returns statuses.
#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdlib>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "quicklane.h"
#include "capi_common.hpp"
#include "params.hpp"
#include "queue.hpp"
#include "schema.hpp"
#include "request.hpp"
#include "router.hpp"
#include "server.hpp"
#include "worker.hpp"

namespace {
using ql_capi::fail;
using ql_capi::guarded;

const ql::Request *R(const ql_request *r) { return reinterpret_cast<const ql::Request *>(r); }
ql_str S(std::string_view v) { return ql_str{v.data(), v.size()}; }
ql_str S(const ql::Request *r, ql::Span s) { return S(r->view(s)); }

int lookup(const ql::Request *r, const std::vector<ql::SpanPair> &v, const char *name, size_t len, ql_str *out,
           bool ci) {
    std::string_view n(name ? name : "", len);
    for (const auto &p : v) {
        std::string_view k = r->view(p.name);
        if (ci ? ql::iequals(k, n) : k == n) {
            if (out) *out = S(r, p.value);
            return 1;
        }
    }
    return 0;
}

int at(const ql::Request *r, const std::vector<ql::SpanPair> &v, size_t i, ql_str *name, ql_str *value) {
    if (i >= v.size()) return 0;
    if (name) *name = S(r, v[i].name);
    if (value) *value = S(r, v[i].value);
    return 1;
}

}  // namespace

extern "C" {

ql_status ql_error_code(const ql_error *e) { return e ? e->code : QL_OK; }
const char *ql_error_message(const ql_error *e) { return e ? e->message.c_str() : ""; }
void ql_error_free(ql_error **e) {
    if (e && *e) {
        delete *e;
        *e = nullptr;
    }
}

const char *ql_status_name(ql_status s) {
    switch (s) {
    case QL_OK: return "QL_OK";
    case QL_E_INVALID: return "QL_E_INVALID";
    case QL_E_NOMEM: return "QL_E_NOMEM";
    case QL_E_CONFLICT: return "QL_E_CONFLICT";
    case QL_E_STATE: return "QL_E_STATE";
    case QL_E_IO: return "QL_E_IO";
    case QL_E_GONE: return "QL_E_GONE";
    case QL_E_ALREADY_SENT: return "QL_E_ALREADY_SENT";
    case QL_E_INTERNAL: return "QL_E_INTERNAL";
    case QL_E_AGAIN: return "QL_E_AGAIN";
    case QL_E_TOO_LARGE: return "QL_E_TOO_LARGE";
    default: return "QL_E_UNKNOWN";
    }
}

const char *ql_version(void) { return QL_VERSION_STRING; }
uint32_t ql_abi_version(void) { return QL_ABI_VERSION; }

// The _init functions below write the whole struct: right while each struct
// has its first layout. Appending a field makes a caller built against the
// older header own a shorter struct, so its _init must then write only the
// caller's version, as ql_server_options_init does. These checks fail the
// build when a struct grows past its v1 layout (its last v1 field + padding).
#define QL_V1_LAYOUT(T, last)                                                                          \
    static_assert(sizeof(T) == (offsetof(T, last) + sizeof(T::last) + alignof(T) - 1) / alignof(T) * alignof(T), \
                  #T " grew: make its _init write only the caller's version (see ql_server_options_init)")
QL_V1_LAYOUT(ql_response, body_len);
QL_V1_LAYOUT(ql_server_stats, requests_in_flight);
QL_V1_LAYOUT(ql_static_dir_options, no_gzip);
QL_V1_LAYOUT(ql_cors_options, max_age_s);
#undef QL_V1_LAYOUT

void ql_response_init(ql_response *r, uint32_t version) {
    if (!r) return;
    ql_response d = QL_RESPONSE_INIT;
    d.version = version;
    *r = d;
}
void ql_handler_init(ql_handler *h, uint32_t version) {
    if (!h) return;
    ql_handler d = QL_HANDLER_INIT;
    d.version = version;
    std::memcpy(h, &d, version <= 1 ? offsetof(ql_handler, on_body) : sizeof d);
}
void ql_server_options_init(ql_server_options *o, uint32_t version) {
    if (!o) return;
    ql_server_options d = QL_SERVER_OPTIONS_INIT;
    d.version = version;
    // A caller built against an older header has a shorter struct: write
    // only the fields its version has.
    size_t n = version <= 1   ? offsetof(ql_server_options, reuse_port)
               : version == 2 ? offsetof(ql_server_options, handler_timeout_ms)
               : version == 3 ? offsetof(ql_server_options, max_stream_body_bytes)
                              : sizeof d;
    std::memcpy(o, &d, n);
}
void ql_server_stats_init(ql_server_stats *s, uint32_t version) {
    if (!s) return;
    ql_server_stats d = QL_SERVER_STATS_INIT;
    d.version = version;
    *s = d;
}

// ---- requests ----------------------------------------------------------

ql_req_id ql_request_id(const ql_request *r) { return R(r)->id(); }
ql_server *ql_request_server(const ql_request *r) {
    // Every ql::Server is created as a ql_server by ql_server_new.
    return static_cast<ql_server *>(&R(r)->worker->server);
}
ql_str ql_request_method(const ql_request *r) { return S(R(r)->method_name); }
ql_str ql_request_path(const ql_request *r) { return S(R(r), R(r)->path); }
ql_str ql_request_target(const ql_request *r) { return S(R(r), R(r)->target); }
ql_str ql_request_query_string(const ql_request *r) { return S(R(r), R(r)->query); }
ql_str ql_request_route(const ql_request *r) {
    return R(r)->route ? S(R(r)->route->pattern) : ql_str{"", 0};
}
int ql_request_http_minor(const ql_request *r) { return R(r)->http_minor; }
ql_str ql_request_body(const ql_request *r) { return S(R(r), R(r)->body); }

size_t ql_request_param_count(const ql_request *r) { return R(r)->params.size(); }
int ql_request_param_at(const ql_request *r, size_t i, ql_str *name, ql_str *value) {
    const auto &v = R(r)->params;
    if (i >= v.size()) return 0;
    if (name) *name = S(*v[i].name);
    if (value) *value = S(R(r), v[i].value);
    return 1;
}
int ql_request_param(const ql_request *r, const char *name, size_t len, ql_str *out) {
    std::string_view n(name ? name : "", len);
    for (const auto &p : R(r)->params) {
        if (*p.name == n) {
            if (out) *out = S(R(r), p.value);
            return 1;
        }
    }
    return 0;
}

size_t ql_request_query_count(const ql_request *r) { return R(r)->queries.size(); }
int ql_request_query_at(const ql_request *r, size_t i, ql_str *name, ql_str *value) {
    return at(R(r), R(r)->queries, i, name, value);
}
int ql_request_query(const ql_request *r, const char *name, size_t len, ql_str *out) {
    return lookup(R(r), R(r)->queries, name, len, out, false);
}

size_t ql_request_header_count(const ql_request *r) { return R(r)->headers.size(); }
int ql_request_header_at(const ql_request *r, size_t i, ql_str *name, ql_str *value) {
    return at(R(r), R(r)->headers, i, name, value);
}
int ql_request_header(const ql_request *r, const char *name, size_t len, ql_str *out) {
    return lookup(R(r), R(r)->headers, name, len, out, true);
}

ql_str ql_request_client_ip(const ql_request *r) { return ql_str{R(r)->client_ip, R(r)->client_ip_len}; }
uint16_t ql_request_client_port(const ql_request *r) { return R(r)->client_port; }
void ql_request_set_tag(ql_request *r, void *tag) { reinterpret_cast<ql::Request *>(r)->tag = tag; }
void *ql_request_tag(const ql_request *r) { return R(r)->tag; }

// ---- apps --------------------------------------------------------------

ql_status ql_app_new(ql_app **out, ql_error **err) {
    return guarded(err, [&](std::string &) -> ql_status {
        if (!out) return fail(err, QL_E_INVALID, "out_app is NULL");
        *out = new ql_app();
        return QL_OK;
    });
}

void ql_app_free(ql_app **app) {
    if (app && *app) {
        delete *app;
        *app = nullptr;
    }
}

ql_status ql_app_route(ql_app *app, const char *method, size_t method_len, const char *pattern, size_t pattern_len,
                       const ql_handler *handler, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!app || !handler || !handler->on_request || handler->version < 1)
            return fail(err, QL_E_INVALID, "app, handler and handler->on_request are required (use QL_HANDLER_INIT)");
        if ((!method && method_len) || (!pattern && pattern_len))
            return fail(err, QL_E_INVALID, "method or pattern is NULL");
        auto ref = std::make_shared<ql::HandlerRef>();
        ql_status st = app->router->add({method ? method : "", method_len}, {pattern ? pattern : "", pattern_len},
                                        ref, nullptr, &msg);
        if (st != QL_OK) return fail(err, st, msg);  // ref has no destroy yet: user_data stays the caller's
        // A caller built against an older header has a shorter struct.
        std::memcpy(&ref->h, handler, handler->version <= 1 ? offsetof(ql_handler, on_body) : sizeof(ql_handler));
        return QL_OK;
    });
}

ql_status ql_app_static(ql_app *app, const char *method, size_t method_len, const char *pattern, size_t pattern_len,
                        const ql_response *response, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!app) return fail(err, QL_E_INVALID, "app is NULL");
        if ((!method && method_len) || (!pattern && pattern_len))
            return fail(err, QL_E_INVALID, "method or pattern is NULL");
        auto a = std::make_shared<ql::StaticAnswer>();
        if (!ql::render_response_fields(response, a->content_type, a->extra_headers, &msg))
            return fail(err, QL_E_INVALID, msg);
        a->status = response->status;
        a->body.assign(response->body ? response->body : "", response->body_len);
        return app->router->add({method ? method : "", method_len}, {pattern ? pattern : "", pattern_len},
                                        nullptr, a, &msg);
    });
}

// ---- servers -----------------------------------------------------------

ql_status ql_server_new(const ql_app *app, const ql_server_options *options, ql_server **out, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!app || !out) return fail(err, QL_E_INVALID, "app and out_server are required");
        *out = nullptr;
        ql::Limits limits;
        if (!ql::limits_from_options(options, limits, &msg)) return fail(err, QL_E_INVALID, msg);
        for (const auto &r : app->router->routes())
            if (r->rules && r->rules->require_api_key && !app->router->app_rules->api_keys)
                return fail(err, QL_E_INVALID,
                            "route " + r->method + " " + r->pattern + " requires an API key, but no keys are set "
                            "(ql_app_api_keys)");
        std::shared_ptr<const ql::Router> snapshot = app->router->clone();
        *out = new ql_server(std::move(snapshot), std::move(limits));
        return QL_OK;
    });
}

ql_status ql_server_start(ql_server *s, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s) return fail(err, QL_E_INVALID, "server is NULL");
        return s->impl.start(&msg);
    });
}

ql_status ql_server_start_on_loop(ql_server *s, void *loop, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s || !loop) return fail(err, QL_E_INVALID, "server and uv_loop are required");
        return s->impl.start_on_loop(static_cast<uv_loop_t *>(loop), &msg);
    });
}

ql_status ql_server_stop_async(ql_server *s, uint32_t timeout_ms, ql_stopped_fn done, void *user_data,
                               ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s) return fail(err, QL_E_INVALID, "server is NULL");
        return s->impl.stop_async(timeout_ms, done, user_data, &msg);
    });
}

uint16_t ql_server_port(const ql_server *s) { return s ? s->impl.port() : 0; }

ql_status ql_server_stop(ql_server *s, uint32_t timeout_ms, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s) return fail(err, QL_E_INVALID, "server is NULL");
        return s->impl.stop(timeout_ms, &msg);
    });
}

void ql_server_free(ql_server **s) {
    if (s && *s) {
        if ((*s)->hosted() && (*s)->on_loop_thread()) {
            // On the host's loop: close without blocking it, free once closed.
            (*s)->delete_when_closed = [](ql::Server *srv) { delete static_cast<ql_server *>(srv); };
            std::string msg;
            if ((*s)->running()) (*s)->stop_async(0, nullptr, nullptr, &msg);
            *s = nullptr;
            return;
        }
        if ((*s)->on_loop_thread()) {
            // Freeing a server from its own handler would join the calling
            // thread: refuse loudly and leak rather than deadlock or crash.
            std::fprintf(stderr, "quicklane: ql_server_free called from a handler of that server; ignored\n");
            *s = nullptr;
            return;
        }
        try {
            delete *s;
        } catch (...) {
        }
        *s = nullptr;
    }
}

ql_status ql_request_body_read(ql_server *s, ql_req_id id, char *buf, size_t cap, int32_t timeout_ms,
                               size_t *out_len, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        size_t dummy = 0;
        if (!out_len) out_len = &dummy;
        *out_len = 0;
        if (!s || (!buf && cap)) return fail(err, QL_E_INVALID, "server and buf are required");
        ql_status st = s->impl.body_read(id, buf, cap, timeout_ms, out_len, &msg);
        if (st != QL_OK) return fail(err, st, msg);
        return QL_OK;
    });
}

int64_t ql_request_content_length(const ql_request *r) { return R(r)->content_length; }

ql_status ql_respond(ql_server *s, ql_req_id id, const ql_response *response, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s) return fail(err, QL_E_INVALID, "server is NULL");
        return s->impl.respond(id, response, &msg);
    });
}

ql_status ql_respond_start(ql_server *s, ql_req_id id, const ql_response *head, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s) return fail(err, QL_E_INVALID, "server is NULL");
        return s->impl.respond_start(id, head, &msg);
    });
}

ql_status ql_respond_write(ql_server *s, ql_req_id id, const char *data, size_t len, uint64_t *out_buffered,
                           ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s || (len && !data)) return fail(err, QL_E_INVALID, "server and data are required");
        return s->impl.respond_write(id, data, len, false, out_buffered, &msg);
    });
}

ql_status ql_respond_start_sized(ql_server *s, ql_req_id id, const ql_response *head, uint64_t content_length,
                                 ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s || !head || head->version < 1) return fail(err, QL_E_INVALID, "server and head are required");
        return s->impl.respond_start(id, head, &msg, static_cast<int64_t>(content_length));
    });
}

ql_status ql_respond_abort(ql_server *s, ql_req_id id, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s) return fail(err, QL_E_INVALID, "server is NULL");
        return s->impl.respond_abort(id, &msg);
    });
}

ql_status ql_respond_end(ql_server *s, ql_req_id id, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s) return fail(err, QL_E_INVALID, "server is NULL");
        return s->impl.respond_write(id, nullptr, 0, true, nullptr, &msg);
    });
}

ql_status ql_server_stats_get(const ql_server *s, ql_server_stats *stats, ql_error **err) {
    return guarded(err, [&](std::string &) -> ql_status {
        if (!s || !stats || stats->version < 1) return fail(err, QL_E_INVALID, "server and stats are required");
        s->impl.stats(stats);
        return QL_OK;
    });
}

// ---- queues ------------------------------------------------------------

ql_status ql_queue_new(ql_queue **out, ql_error **err) {
    return guarded(err, [&](std::string &) -> ql_status {
        if (!out) return fail(err, QL_E_INVALID, "out_queue is NULL");
        auto q = std::make_shared<ql::Queue>();
        if (!q->ok()) return fail(err, QL_E_IO, "eventfd failed");
        *out = new ql_queue{std::move(q)};
        return QL_OK;
    });
}

void ql_queue_close(ql_queue *q) {
    if (q) q->q->close();
}

void ql_queue_free(ql_queue **q) {
    if (q && *q) {
        delete *q;
        *q = nullptr;
    }
}

ql_status ql_queue_poll(ql_queue *q, ql_event *events, size_t max, int32_t timeout_ms, size_t *out_count,
                        ql_error **err) {
    return guarded(err, [&](std::string &) -> ql_status {
        if (out_count) *out_count = 0;
        if (!q || !out_count || (max && !events)) return fail(err, QL_E_INVALID, "queue, events and out_count are required");
        if (!q->q->poll(events, max, timeout_ms, out_count)) return fail(err, QL_E_STATE, "queue is closed");
        return QL_OK;
    });
}

int ql_queue_fd(const ql_queue *q) { return q ? q->q->fd() : -1; }

ql_status ql_app_route_queue(ql_app *app, const char *method, size_t method_len, const char *pattern,
                             size_t pattern_len, ql_queue *queue, void *route_data, ql_destroy_fn destroy,
                             ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!app || !queue) return fail(err, QL_E_INVALID, "app and queue are required");
        if ((!method && method_len) || (!pattern && pattern_len))
            return fail(err, QL_E_INVALID, "method or pattern is NULL");
        auto qr = new ql::QueueRoute{queue->q, route_data, nullptr};
        auto ref = std::make_shared<ql::HandlerRef>();
        ref->h.version = QL_HANDLER_VERSION;
        ref->h.on_request = ql::queue_on_request;
        ref->h.on_abort = ql::queue_on_abort;
        ref->h.on_body = ql::queue_on_body;
        ref->h.on_drain = ql::queue_on_drain;
        ref->h.user_data = qr;
        ref->h.destroy = ql::queue_route_destroy;
        ql_status st = app->router->add({method ? method : "", method_len}, {pattern ? pattern : "", pattern_len},
                                        ref, nullptr, &msg);
        if (st != QL_OK) return fail(err, st, msg);  // ref frees qr; route_data stays the caller's
        qr->destroy = destroy;
        return QL_OK;
    });
}

// ---- native rules ------------------------------------------------------

}  // extern "C"

namespace {

std::string_view view_of(const char *p, size_t n) { return p ? std::string_view(p, n) : std::string_view(); }

std::string_view trim_ws(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// "a, b,c" → {"a","b","c"}; false (with a message) on an empty item.
bool split_list(std::string_view s, const char *what, std::vector<std::string> &out, std::string &msg) {
    out.clear();
    while (true) {
        size_t comma = s.find(',');
        std::string_view item = trim_ws(s.substr(0, comma));
        if (item.empty()) {
            msg = std::string(what) + ": empty item in a comma-separated list";
            return false;
        }
        out.emplace_back(item);
        if (comma == std::string_view::npos) return true;
        s.remove_prefix(comma + 1);
    }
}

std::string join(const std::vector<std::string> &v) {
    std::string out;
    for (const auto &x : v) {
        if (!out.empty()) out.append(", ");
        out.append(x);
    }
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// scheme "://" host [":" port], as browsers serialize an Origin.
bool valid_origin(std::string_view o) {
    size_t sep = o.find("://");
    if (sep == std::string_view::npos || sep == 0) return false;
    for (char c : o.substr(0, sep))
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.')) return false;
    std::string_view rest = o.substr(sep + 3);
    if (rest.empty()) return false;
    for (unsigned char c : rest)
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == ',') return false;
    return true;
}

bool valid_rate(uint32_t requests, uint32_t window_ms, std::string_view key_header, std::string &msg) {
    if (requests > 10000000) {
        msg = "rate_limit = " + std::to_string(requests) + " is out of range [0, 10000000]";
        return false;
    }
    if (window_ms > 86400000) {
        msg = "rate_window_ms = " + std::to_string(window_ms) + " is out of range [1, 86400000]";
        return false;
    }
    if (!key_header.empty() && !ql::valid_token(key_header)) {
        msg = "rate_key_header \"" + std::string(key_header) + "\" is not a valid header name";
        return false;
    }
    return true;
}

}  // namespace

extern "C" {

void ql_route_options_init(ql_route_options *o, uint32_t version) {
    if (!o) return;
    ql_route_options d = QL_ROUTE_OPTIONS_INIT;
    d.version = version;
    std::memcpy(o, &d, version <= 1 ? offsetof(ql_route_options, stream_body) : sizeof d);
}

void ql_cors_options_init(ql_cors_options *o, uint32_t version) {
    if (!o) return;
    ql_cors_options d = QL_CORS_OPTIONS_INIT;
    d.version = version;
    *o = d;
}

ql_status ql_app_route_options(ql_app *app, const char *method, size_t method_len, const char *pattern,
                               size_t pattern_len, const ql_route_options *o, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!app || !o || o->version < 1)
            return fail(err, QL_E_INVALID, "app and options are required (use QL_ROUTE_OPTIONS_INIT)");
        std::string_view m = view_of(method, method_len), p = view_of(pattern, pattern_len);
        // A WebSocket route beside a plain GET route of the same pattern gets
        // the same rules (the path's rules, for its upgrades too).
        ql::Route *route = app->router->find_route(m, p);
        ql::Route *ws_route = app->router->find_route(m, p, true);
        if (!route) std::swap(route, ws_route);
        if (!route)
            return fail(err, QL_E_INVALID,
                        "no route " + std::string(m) + " " + std::string(p) + " (add the route before its options)");
        std::string_view key = view_of(o->rate_key_header, o->rate_key_header_len);
        if (!valid_rate(o->rate_limit, o->rate_window_ms, key, msg)) return fail(err, QL_E_INVALID, msg);
        auto rules = std::make_shared<ql::RouteRules>();
        rules->rate.requests = o->rate_limit;
        rules->rate.window_ms = o->rate_window_ms ? o->rate_window_ms : 60000;
        rules->rate.key_header = lower(key);
        rules->require_api_key = o->require_api_key != 0;
        if (o->cache_ttl_ms > 86400000)
            return fail(err, QL_E_INVALID,
                        "cache_ttl_ms = " + std::to_string(o->cache_ttl_ms) + " is out of range [0, 86400000]");
        if (o->cache_ttl_ms && route->answer)
            return fail(err, QL_E_INVALID, "a static route is already answered natively: it needs no cache");
        if (o->cache_ttl_ms && route->method != "GET")
            return fail(err, QL_E_INVALID, "only GET routes can be cached (HEAD is answered from GET)");
        rules->cache_ttl_ms = o->cache_ttl_ms;
        std::string_view vary = view_of(o->cache_vary, o->cache_vary_len);
        if (!vary.empty()) {
            if (!split_list(vary, "cache_vary", rules->cache_vary, msg)) return fail(err, QL_E_INVALID, msg);
            for (auto &h : rules->cache_vary) {
                if (!ql::valid_token(h)) return fail(err, QL_E_INVALID, "cache_vary: \"" + h + "\" is not a header name");
                h = lower(h);
            }
        }
        std::string_view schema = view_of(o->body_schema, o->body_schema_len);
        if (!schema.empty()) {
            std::string why;
            auto s = ql::Schema::compile(schema, &why);
            if (!s) return fail(err, QL_E_INVALID, "body_schema: " + why);
            rules->body_schema = std::move(s);
        }
        std::string_view params = view_of(o->params_schema, o->params_schema_len);
        if (!params.empty()) {
            std::string why;
            auto p = ql::ParamSpecs::compile(params, &why);
            if (!p) return fail(err, QL_E_INVALID, "params_schema: " + why);
            for (const auto &spec : p->specs()) {
                if (spec.in != ql::ParamIn::Path) continue;
                const auto &names = route->param_names;
                if (std::find(names.begin(), names.end(), spec.name) == names.end())
                    return fail(err, QL_E_INVALID, "params_schema: \"" + spec.name + "\" is not a parameter of " +
                                                       route->pattern);
            }
            rules->params = std::move(p);
        }
        if ((rules->body_schema || rules->params) && route->answer)
            return fail(err, QL_E_INVALID, "a static route has no handler to validate for");
        if (o->version >= 2 && o->stream_body) {
            if (!route->handler || route->dir || route->metrics)
                return fail(err, QL_E_INVALID, "stream_body needs a route with a handler");
            if (rules->body_schema)
                return fail(err, QL_E_INVALID,
                            "stream_body and body_schema exclude each other (validation needs the whole body)");
            if (rules->cache_ttl_ms) return fail(err, QL_E_INVALID, "a cached route cannot stream its body");
            rules->stream_body = true;
            rules->max_body_bytes = o->max_body_bytes;
        } else if (o->version >= 2 && o->max_body_bytes) {
            return fail(err, QL_E_INVALID, "max_body_bytes is the limit of a streamed body: set stream_body too");
        }
        if (ws_route) ws_route->rules = rules;
        route->rules = std::move(rules);
        return QL_OK;
    });
}

ql_status ql_app_rate_limit(ql_app *app, uint32_t requests, uint32_t window_ms, const char *key_header,
                            size_t key_header_len, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!app) return fail(err, QL_E_INVALID, "app is NULL");
        std::string_view key = view_of(key_header, key_header_len);
        if (!valid_rate(requests, window_ms, key, msg)) return fail(err, QL_E_INVALID, msg);
        auto rules = std::make_shared<ql::AppRules>(*app->router->app_rules);
        rules->rate.requests = requests;
        rules->rate.window_ms = window_ms ? window_ms : 60000;
        rules->rate.key_header = lower(key);
        app->router->app_rules = std::move(rules);
        return QL_OK;
    });
}

ql_status ql_app_cors(ql_app *app, const ql_cors_options *o, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!app) return fail(err, QL_E_INVALID, "app is NULL");
        auto rules = std::make_shared<ql::AppRules>(*app->router->app_rules);
        if (!o) {
            rules->cors.reset();
            app->router->app_rules = std::move(rules);
            return QL_OK;
        }
        if (o->version < 1) return fail(err, QL_E_INVALID, "options.version must be set (use QL_CORS_OPTIONS_INIT)");
        auto c = std::make_shared<ql::CorsRules>();
        std::string_view origins = view_of(o->origins, o->origins_len);
        if (origins.empty()) return fail(err, QL_E_INVALID, "cors origins: at least one origin (or \"*\") is required");
        if (!split_list(origins, "cors origins", c->origins, msg)) return fail(err, QL_E_INVALID, msg);
        for (const auto &x : c->origins) {
            if (x == "*") {
                c->any_origin = true;
            } else if (!valid_origin(x)) {
                return fail(err, QL_E_INVALID,
                            "cors origins: \"" + x + "\" is not an origin (scheme://host[:port], no path)");
            }
        }
        if (c->any_origin && c->origins.size() > 1)
            return fail(err, QL_E_INVALID, "cors origins: \"*\" cannot be combined with other origins");
        if (c->any_origin && o->credentials)
            return fail(err, QL_E_INVALID, "cors: credentials cannot be allowed for any origin (\"*\")");
        std::string_view methods = view_of(o->methods, o->methods_len);
        if (!split_list(methods.empty() ? "GET, HEAD, POST" : methods, "cors methods", c->methods, msg))
            return fail(err, QL_E_INVALID, msg);
        for (const auto &x : c->methods)
            if (!ql::valid_method_token(x)) return fail(err, QL_E_INVALID, "cors methods: \"" + x + "\" is not a method");
        c->methods_joined = join(c->methods);
        std::string_view headers = view_of(o->headers, o->headers_len);
        if (!headers.empty()) {
            if (!split_list(headers, "cors headers", c->headers, msg)) return fail(err, QL_E_INVALID, msg);
            for (auto &x : c->headers) {
                if (x == "*") {
                    c->any_header = true;
                } else if (!ql::valid_token(x)) {
                    return fail(err, QL_E_INVALID, "cors headers: \"" + x + "\" is not a header name");
                }
            }
            c->headers_joined = join(c->headers);
        }
        std::string_view expose = view_of(o->expose, o->expose_len);
        if (!expose.empty()) {
            std::vector<std::string> ex;
            if (!split_list(expose, "cors expose", ex, msg)) return fail(err, QL_E_INVALID, msg);
            for (const auto &x : ex)
                if (!ql::valid_token(x)) return fail(err, QL_E_INVALID, "cors expose: \"" + x + "\" is not a header name");
            c->expose = join(ex);
        }
        c->credentials = o->credentials != 0;
        if (o->max_age_s > 86400 * 365) return fail(err, QL_E_INVALID, "cors max_age_s is out of range [0, 31536000]");
        c->max_age_s = o->max_age_s ? o->max_age_s : 600;
        rules->cors = std::move(c);
        app->router->app_rules = std::move(rules);
        return QL_OK;
    });
}

ql_status ql_app_api_keys(ql_app *app, const char *header, size_t header_len, const char *query, size_t query_len,
                          const ql_str *keys, size_t key_count, ql_error **err) {
    return guarded(err, [&](std::string &) -> ql_status {
        if (!app) return fail(err, QL_E_INVALID, "app is NULL");
        if (!keys || key_count == 0) return fail(err, QL_E_INVALID, "api keys: at least one key is required");
        auto k = std::make_shared<ql::ApiKeys>();
        std::string_view h = view_of(header, header_len);
        if (!h.empty()) {
            if (!ql::valid_token(h)) return fail(err, QL_E_INVALID, "api keys: \"" + std::string(h) + "\" is not a header name");
            k->header = lower(h);
        }
        std::string_view q = view_of(query, query_len);
        if (!q.empty()) {
            for (unsigned char c : q)
                if (c <= 0x20 || c >= 0x7f || c == '&' || c == '=' || c == '#' || c == '%' || c == '+')
                    return fail(err, QL_E_INVALID, "api keys: query parameter name \"" + std::string(q) + "\" is not plain");
            k->query.assign(q);
        }
        for (size_t i = 0; i < key_count; ++i) {
            std::string_view key = view_of(keys[i].data, keys[i].len);
            if (key.empty() || key.size() > 1024)
                return fail(err, QL_E_INVALID, "api keys: key " + std::to_string(i) + " is empty or over 1024 bytes");
            for (unsigned char c : key)
                if (c <= 0x20 || c >= 0x7f)
                    return fail(err, QL_E_INVALID,
                                "api keys: key " + std::to_string(i) + " has a byte a header value cannot carry");
            k->keys.emplace_back(key);
        }
        auto rules = std::make_shared<ql::AppRules>(*app->router->app_rules);
        rules->api_keys = std::move(k);
        app->router->app_rules = std::move(rules);
        return QL_OK;
    });
}

ql_status ql_app_metrics(ql_app *app, const char *pattern, size_t pattern_len, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!app) return fail(err, QL_E_INVALID, "app is NULL");
        if (!pattern && pattern_len) return fail(err, QL_E_INVALID, "pattern is NULL");
        auto a = std::make_shared<ql::StaticAnswer>();  // placeholder: the route is answered by the core
        std::string_view p = view_of(pattern, pattern_len);
        ql_status st = app->router->add("GET", p, nullptr, a, &msg);
        if (st != QL_OK) return fail(err, st, msg);
        app->router->find_route("GET", p)->metrics = true;
        return QL_OK;
    });
}

ql_status ql_app_cache_size(ql_app *app, uint64_t max_bytes, ql_error **err) {
    return guarded(err, [&](std::string &) -> ql_status {
        if (!app) return fail(err, QL_E_INVALID, "app is NULL");
        if (max_bytes < 4096 || max_bytes > (64ull << 30))
            return fail(err, QL_E_INVALID, "cache max_bytes = " + std::to_string(max_bytes) +
                                               " is out of range [4096, 68719476736]");
        auto rules = std::make_shared<ql::AppRules>(*app->router->app_rules);
        rules->cache_max_bytes = max_bytes;
        app->router->app_rules = std::move(rules);
        return QL_OK;
    });
}

void ql_static_dir_options_init(ql_static_dir_options *o, uint32_t version) {
    if (!o) return;
    ql_static_dir_options d = QL_STATIC_DIR_OPTIONS_INIT;
    d.version = version;
    *o = d;
}

ql_status ql_app_static_dir(ql_app *app, const char *prefix, size_t prefix_len, const char *folder,
                            size_t folder_len, const ql_static_dir_options *o, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!app) return fail(err, QL_E_INVALID, "app is NULL");
        std::string_view p = view_of(prefix, prefix_len), f = view_of(folder, folder_len);
        if (p.size() < 1 || p.front() != '/' || p.back() != '/')
            return fail(err, QL_E_INVALID, "static dir prefix must start and end with \"/\" (e.g. \"/static/\")");
        if (p.find('{') != std::string_view::npos || p.find(':') != std::string_view::npos ||
            p.find('*') != std::string_view::npos)
            return fail(err, QL_E_INVALID, "static dir prefix cannot have parameters");
        std::string path(f);
        char resolved[PATH_MAX];
        struct stat st;
        if (path.empty() || !::realpath(path.c_str(), resolved) || ::stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode))
            return fail(err, QL_E_INVALID, "static dir \"" + path + "\" is not a folder");
        auto dir = std::make_shared<ql::StaticDir>();
        dir->root = resolved;
        if (dir->root.size() > 1 && dir->root.back() == '/') dir->root.pop_back();
        if (o) {
            if (o->version < 1) return fail(err, QL_E_INVALID, "options.version must be set (use QL_STATIC_DIR_OPTIONS_INIT)");
            if (o->index) {
                std::string_view idx = view_of(o->index, o->index_len);
                if (idx.find('/') != std::string_view::npos || idx == "." || idx == "..")
                    return fail(err, QL_E_INVALID, "static dir index must be a file name");
                dir->index.assign(idx);
            }
            dir->max_age_s = o->max_age_s;
            dir->gzip = !o->no_gzip;
        }
        std::string pattern(p);
        pattern.append("{path...}");
        auto a = std::make_shared<ql::StaticAnswer>();  // placeholder: the route is answered by the core
        ql_status st2 = app->router->add("GET", pattern, nullptr, a, &msg);
        if (st2 != QL_OK) return fail(err, st2, msg);
        app->router->find_route("GET", pattern)->dir = std::move(dir);
        return QL_OK;
    });
}

ql_status ql_app_compression(ql_app *app, uint32_t enabled, uint32_t min_bytes, uint32_t level, ql_error **err) {
    return guarded(err, [&](std::string &) -> ql_status {
        if (!app) return fail(err, QL_E_INVALID, "app is NULL");
        if (level > 9) return fail(err, QL_E_INVALID, "compression level = " + std::to_string(level) + " is out of range [1, 9]");
        auto rules = std::make_shared<ql::AppRules>(*app->router->app_rules);
        if (!enabled) {
            rules->compression.reset();
        } else {
            auto c = std::make_shared<ql::CompressionRules>();
            if (min_bytes) c->min_bytes = min_bytes;
            if (level) c->level = static_cast<int>(level);
            rules->compression = std::move(c);
        }
        app->router->app_rules = std::move(rules);
        return QL_OK;
    });
}

ql_status ql_app_access_log(ql_app *app, uint32_t enabled, ql_error **err) {
    return guarded(err, [&](std::string &) -> ql_status {
        if (!app) return fail(err, QL_E_INVALID, "app is NULL");
        auto rules = std::make_shared<ql::AppRules>(*app->router->app_rules);
        rules->access_log = enabled != 0;
        app->router->app_rules = std::move(rules);
        return QL_OK;
    });
}

}  // extern "C"
