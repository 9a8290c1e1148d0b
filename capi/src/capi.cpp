// The C ABI door: converts types, catches every exception, returns statuses.
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "quicklane.h"
#include "queue.hpp"
#include "request.hpp"
#include "router.hpp"
#include "server.hpp"
#include "worker.hpp"

struct ql_error {
    ql_status code;
    std::string message;
};

struct ql_app {
    std::unique_ptr<ql::Router> router = std::make_unique<ql::Router>();
};

struct ql_queue {
    std::shared_ptr<ql::Queue> q;
};

struct ql_server : ql::Server {
    ql_server(std::shared_ptr<const ql::Router> r, ql::Limits l) : ql::Server(std::move(r), std::move(l)) {}
    ql::Server &impl = *this;
};

namespace {

ql_status fail(ql_error **out, ql_status code, std::string msg) {
    if (out) {
        try {
            *out = new ql_error{code, std::move(msg)};
        } catch (...) {
            *out = nullptr;
        }
    }
    return code;
}

// Runs one C ABI call: catches every exception, and turns a failure the
// core reported through `msg` into the caller's error object.
template <class F>
ql_status guarded(ql_error **out, F &&f) {
    if (out) *out = nullptr;
    try {
        std::string msg;
        ql_status st = f(msg);
        if (st != QL_OK && out && !*out) fail(out, st, std::move(msg));
        return st;
    } catch (const std::bad_alloc &) {
        return fail(out, QL_E_NOMEM, "out of memory");
    } catch (const std::exception &e) {
        return fail(out, QL_E_INTERNAL, std::string("internal error: ") + e.what());
    } catch (...) {
        return fail(out, QL_E_INTERNAL, "internal error");
    }
}

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
    default: return "QL_E_UNKNOWN";
    }
}

const char *ql_version(void) { return QL_VERSION_STRING; }
uint32_t ql_abi_version(void) { return QL_ABI_VERSION; }

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
    *h = d;
}
void ql_server_options_init(ql_server_options *o, uint32_t version) {
    if (!o) return;
    ql_server_options d = QL_SERVER_OPTIONS_INIT;
    d.version = version;
    // A caller built against an older header has a shorter struct: write
    // only the fields its version has.
    size_t n = version <= 1   ? offsetof(ql_server_options, reuse_port)
               : version == 2 ? offsetof(ql_server_options, handler_timeout_ms)
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
        ref->h = *handler;
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
        ref->h.user_data = qr;
        ref->h.destroy = ql::queue_route_destroy;
        ql_status st = app->router->add({method ? method : "", method_len}, {pattern ? pattern : "", pattern_len},
                                        ref, nullptr, &msg);
        if (st != QL_OK) return fail(err, st, msg);  // ref frees qr; route_data stays the caller's
        qr->destroy = destroy;
        return QL_OK;
    });
}

}  // extern "C"
