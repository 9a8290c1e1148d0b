// The C ABI's WebSocket door: ql_app_ws, ql_ws_*, ql_websocket_*,
// ql_server_publish. Checks arguments, then calls the core.
#include <cstddef>
#include <cstring>

#include "capi_common.hpp"
#include "worker.hpp"
#include "ws/event_stream.hpp"
#include "ws/ws_conn.hpp"
#include "ws/ws_route.hpp"

using ql_capi::fail;
using ql_capi::guarded;

namespace {
ql::WsConn *W(const ql_websocket *ws) { return reinterpret_cast<ql::WsConn *>(const_cast<ql_websocket *>(ws)); }
}  // namespace

extern "C" {

// A caller built against an older header has a shorter struct: only its
// version's fields are read or written.
static size_t behavior_size(uint32_t version) {
    return version >= 2 ? sizeof(ql_ws_behavior) : offsetof(ql_ws_behavior, on_upgrade_gone);
}

static ql_ws_behavior copy_behavior(const ql_ws_behavior *b) {
    ql_ws_behavior out = QL_WS_BEHAVIOR_INIT;
    std::memcpy(&out, b, behavior_size(b->version));
    return out;
}

void ql_ws_behavior_init(ql_ws_behavior *b, uint32_t version) {
    if (!b) return;
    ql_ws_behavior d = QL_WS_BEHAVIOR_INIT;
    d.version = version;
    std::memcpy(b, &d, behavior_size(version));
}

void ql_ws_accept_options_init(ql_ws_accept_options *o, uint32_t version) {
    if (!o) return;
    ql_ws_accept_options d = QL_WS_ACCEPT_OPTIONS_INIT;
    d.version = version;
    std::memcpy(o, &d, sizeof d);
}

static ql_status add_ws(ql_app *app, const char *pattern, size_t pattern_len, const ql_ws_behavior *b,
                        ql_queue *queue, void *route_data, ql_destroy_fn destroy, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!app || !b || b->version < 1)
            return fail(err, QL_E_INVALID, "app and behavior are required (use QL_WS_BEHAVIOR_INIT)");
        if (queue && (b->on_upgrade || b->on_open || b->on_message || b->on_drain || b->on_close || b->on_ping ||
                      b->on_pong || b->destroy || (b->version >= 2 && b->on_upgrade_gone)))
            return fail(err, QL_E_INVALID, "a queued WebSocket route takes no callbacks (its events come from the queue)");
        if (!pattern && pattern_len) return fail(err, QL_E_INVALID, "pattern is NULL");
        if (b->max_message_bytes > (uint64_t(1) << 40))
            return fail(err, QL_E_INVALID, "max_message_bytes is out of range (at most 1 TiB; 0 = 16 MiB)");
        if (b->idle_timeout_ms && b->idle_timeout_ms < 1000)
            return fail(err, QL_E_INVALID, "idle_timeout_ms is out of range (at least 1000; 0 = 120 s)");
        if (b->ping_interval_ms && b->ping_interval_ms < 1000)
            return fail(err, QL_E_INVALID, "ping_interval_ms is out of range (at least 1000; 0 = none)");
        if (b->compression > QL_WS_COMPRESS_DEDICATED)
            return fail(err, QL_E_INVALID, "compression must be QL_WS_COMPRESS_NONE, _SHARED or _DEDICATED");
        if (b->compression_window_bits && (b->compression_window_bits < 9 || b->compression_window_bits > 15))
            return fail(err, QL_E_INVALID, "compression_window_bits is out of range (9..15; 0 = 15)");
        auto route = std::make_shared<ql::WsRoute>();
        if (b->compression_window_bits) route->window_bits = static_cast<uint8_t>(b->compression_window_bits);
        if (b->max_message_bytes) route->max_message = b->max_message_bytes;
        if (b->max_backpressure) route->max_backpressure = b->max_backpressure;
        if (b->idle_timeout_ms) route->idle_timeout_ms = b->idle_timeout_ms;
        std::string_view pat(pattern ? pattern : "", pattern_len);
        if (queue) route->queued = std::make_unique<ql::QueueRoute>(ql::QueueRoute{queue->q, route_data, nullptr});
        // b is kept before add: the route's handler reads it once requests come.
        route->b = copy_behavior(b);
        route->b.destroy = nullptr;  // route has no destroy yet: user_data stays the caller's on failure
        ql_status st = app->router->add("GET", pat, ql::ws_route_handler(route), nullptr, &msg, route);
        if (st != QL_OK) return st;
        route->b.destroy = b->destroy;
        if (route->queued) route->queued->destroy = destroy;
        return QL_OK;
    });
}

ql_status ql_app_ws(ql_app *app, const char *pattern, size_t pattern_len, const ql_ws_behavior *b, ql_error **err) {
    return add_ws(app, pattern, pattern_len, b, nullptr, nullptr, nullptr, err);
}

ql_status ql_app_ws_queue(ql_app *app, const char *pattern, size_t pattern_len, const ql_ws_behavior *b,
                          ql_queue *queue, void *route_data, ql_destroy_fn destroy, ql_error **err) {
    if (!queue) return fail(err, QL_E_INVALID, "queue is NULL");
    return add_ws(app, pattern, pattern_len, b, queue, route_data, destroy, err);
}

void ql_hijack_options_init(ql_hijack_options *o, uint32_t version) {
    if (!o) return;
    ql_hijack_options d = QL_HIJACK_OPTIONS_INIT;
    d.version = version;
    *o = d;
}

ql_status ql_request_hijack(ql_server *server, ql_req_id id, const ql_hijack_options *o, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!server || !o || o->version < 1)
            return fail(err, QL_E_INVALID, "server and options are required (use QL_HIJACK_OPTIONS_INIT)");
        const ql_ws_behavior *cb = o->callbacks;
        if (!o->queue == !cb)
            return fail(err, QL_E_INVALID, "give a queue or callbacks (one of them) for the hijacked connection");
        if (cb && (cb->version < 1 || cb->on_upgrade || cb->on_ping || cb->on_pong ||
                   (cb->version >= 2 && cb->on_upgrade_gone)))
            return fail(err, QL_E_INVALID,
                        "hijack callbacks are on_open, on_message, on_drain and on_close (use QL_WS_BEHAVIOR_INIT)");
        if (o->idle_timeout_ms && o->idle_timeout_ms < 1000)
            return fail(err, QL_E_INVALID, "idle_timeout_ms is out of range (at least 1000; 0 = none)");
        auto route = std::make_shared<ql::WsRoute>();
        route->raw = true;
        if (cb) {
            route->b = copy_behavior(cb);
            route->b.destroy = nullptr;  // the host's user_data outlives the connection
        } else {
            route->queued = std::make_unique<ql::QueueRoute>(ql::QueueRoute{o->queue->q, o->route_data, nullptr});
        }
        if (o->max_backpressure) route->max_backpressure = o->max_backpressure;
        route->idle_timeout_ms = o->idle_timeout_ms ? o->idle_timeout_ms : UINT32_MAX;
        return server->impl.hijack(id, std::move(route), o->tag, &msg);
    });
}

static ql::WsEvent *ws_event(const ql_event *ev) {
    if (!ev || ev->kind < QL_EVENT_WS_OPEN || ev->kind > QL_EVENT_WS_CLOSE || !ev->request) return nullptr;
    auto *e = reinterpret_cast<ql::WsEvent *>(ev->request);
    return e->magic == ql::WsEvent::kMagic ? e : nullptr;
}

ql_status ql_event_ws_info(const ql_event *ev, ql_ws_event_info *info) {
    ql::WsEvent *e = ws_event(ev);
    if (!e || !info || info->version < 1) return QL_E_INVALID;
    info->tag = e->tag;
    info->data = e->data.data();
    info->len = e->data.size();
    info->binary = e->binary ? 1 : 0;
    info->code = e->code;
    return QL_OK;
}

void ql_event_release(ql_event *ev) {
    ql::WsEvent *e = ws_event(ev);
    if (!e) return;
    if (e->inbound && !e->data.empty()) e->inbound->release(e->data.size());
    e->magic = 0;
    delete e;
    ev->request = nullptr;
}

void ql_event_stream_options_init(ql_event_stream_options *o, uint32_t version) {
    if (!o) return;
    ql_event_stream_options d = QL_EVENT_STREAM_OPTIONS_INIT;
    d.version = version;
    std::memcpy(o, &d, sizeof d);
}

ql_status ql_app_event_stream(ql_app *app, const char *pattern, size_t pattern_len,
                              const ql_event_stream_options *o, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!app || !o || o->version < 1)
            return fail(err, QL_E_INVALID, "app and options are required (use QL_EVENT_STREAM_OPTIONS_INIT)");
        if ((!pattern && pattern_len) || (!o->topics && o->topics_len))
            return fail(err, QL_E_INVALID, "pattern or topics is NULL");
        if (o->keepalive_ms && o->keepalive_ms < 1000)
            return fail(err, QL_E_INVALID, "keepalive_ms is out of range (at least 1000; 0 = 15 s)");
        auto route = std::make_shared<ql::EventStreamRoute>();
        std::string_view list(o->topics ? o->topics : "", o->topics_len);
        while (!list.empty()) {
            size_t comma = list.find(',');
            std::string_view t = ql::trim(list.substr(0, comma));
            if (!t.empty()) route->topics.emplace_back(t);
            if (comma == std::string_view::npos) break;
            list.remove_prefix(comma + 1);
        }
        if (route->topics.empty()) return fail(err, QL_E_INVALID, "an event stream needs at least one topic");
        if (o->keepalive_ms) route->keepalive_ms = o->keepalive_ms;
        if (o->max_backpressure) route->max_backpressure = o->max_backpressure;
        return app->router->add("GET", {pattern ? pattern : "", pattern_len}, ql::event_stream_handler(route),
                                nullptr, &msg);
    });
}

ql_ws_id ql_websocket_id(const ql_websocket *ws) { return ws ? W(ws)->id() : 0; }
ql_server *ql_websocket_server(const ql_websocket *ws) {
    return ws ? static_cast<ql_server *>(&W(ws)->t.w.server) : nullptr;
}
void ql_websocket_set_tag(ql_websocket *ws, void *tag) {
    if (ws) W(ws)->tag = tag;
}
void *ql_websocket_tag(const ql_websocket *ws) { return ws ? W(ws)->tag : nullptr; }
ql_str ql_websocket_subprotocol(const ql_websocket *ws) {
    if (!ws) return ql_str{"", 0};
    std::string_view s = W(ws)->subprotocol();
    return ql_str{s.empty() ? "" : s.data(), s.size()};
}

ql_status ql_ws_accept(ql_server *s, ql_req_id id, const ql_ws_accept_options *o, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s) return fail(err, QL_E_INVALID, "server is NULL");
        if (o && o->subprotocol_len && !o->subprotocol) return fail(err, QL_E_INVALID, "subprotocol is NULL");
        return s->impl.ws_accept(id, o, &msg);
    });
}

ql_status ql_ws_send(ql_server *s, ql_ws_id ws, const char *data, size_t len, uint32_t kind, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s) return fail(err, QL_E_INVALID, "server is NULL");
        if (!data && len) return fail(err, QL_E_INVALID, "data is NULL");
        return s->impl.ws_send(ws, data, len, kind, &msg);
    });
}

ql_status ql_ws_close(ql_server *s, ql_ws_id ws, uint16_t code, const char *reason, size_t reason_len,
                      ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s) return fail(err, QL_E_INVALID, "server is NULL");
        if (!reason && reason_len) return fail(err, QL_E_INVALID, "reason is NULL");
        return s->impl.ws_close(ws, code, {reason ? reason : "", reason_len}, &msg);
    });
}

ql_status ql_ws_buffered(ql_server *s, ql_ws_id ws, uint64_t *out, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s) return fail(err, QL_E_INVALID, "server is NULL");
        return s->impl.ws_buffered(ws, out, &msg);
    });
}

static ql_status subscription(ql_server *s, ql_ws_id ws, const char *topic, size_t len, bool on, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (!s) return fail(err, QL_E_INVALID, "server is NULL");
        if (!topic && len) return fail(err, QL_E_INVALID, "topic is NULL");
        return s->impl.ws_subscribe(ws, {topic ? topic : "", len}, on, &msg);
    });
}

ql_status ql_ws_subscribe(ql_server *s, ql_ws_id ws, const char *topic, size_t len, ql_error **err) {
    return subscription(s, ws, topic, len, true, err);
}

ql_status ql_ws_unsubscribe(ql_server *s, ql_ws_id ws, const char *topic, size_t len, ql_error **err) {
    return subscription(s, ws, topic, len, false, err);
}

ql_status ql_server_publish(ql_server *s, const char *topic, size_t topic_len, const char *data, size_t len,
                            uint32_t kind, ql_ws_id exclude, size_t *out_count, ql_error **err) {
    return guarded(err, [&](std::string &msg) -> ql_status {
        if (out_count) *out_count = 0;
        if (!s) return fail(err, QL_E_INVALID, "server is NULL");
        if ((!topic && topic_len) || (!data && len)) return fail(err, QL_E_INVALID, "topic or data is NULL");
        return s->impl.publish({topic ? topic : "", topic_len}, data, len, kind, exclude, out_count, &msg);
    });
}

}  // extern "C"
