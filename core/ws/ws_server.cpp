// The C ABI's WebSocket calls on a server (ql_ws_*, ql_server_publish) and
// the handler of a WebSocket route: any thread in, the owning loop does the
// work — at once when the caller is that loop, else through its queue.
#include <cstdio>
#include <cstring>

#include "request.hpp"
#include "response_writer.hpp"
#include "router.hpp"
#include "server.hpp"
#include "utf8.hpp"
#include "worker.hpp"
#include "ws/ws_handshake.hpp"
#include "ws/ws_hub.hpp"
#include "queue.hpp"
#include "ws/ws_route.hpp"

namespace ql {

namespace {
uint8_t opcode_of(uint32_t kind) {
    switch (kind) {
    case QL_WS_BINARY: return kWsBinary;
    case QL_WS_PING: return kWsPing;
    case QL_WS_PONG: return kWsPong;
    default: return kWsText;
    }
}

// `control`: a ping or pong may be sent (ql_ws_send), not published.
bool check_kind(uint32_t kind, const char *data, size_t len, std::string *err, bool control = false) {
    if (control && (kind == QL_WS_PING || kind == QL_WS_PONG)) {
        if (len > 125) {
            *err = "a ping or pong carries at most 125 bytes";
            return false;
        }
        return true;
    }
    if (kind != QL_WS_TEXT && kind != QL_WS_BINARY) {
        *err = control ? "kind must be QL_WS_TEXT, QL_WS_BINARY, QL_WS_PING or QL_WS_PONG"
                       : "kind must be QL_WS_TEXT or QL_WS_BINARY";
        return false;
    }
    if (kind == QL_WS_TEXT && !valid_utf8({data ? data : "", len})) {
        *err = "a text message must be valid UTF-8 (send it as QL_WS_BINARY)";
        return false;
    }
    return true;
}

Frame make_frame(uint8_t opcode, const char *data, size_t len) {
    auto f = std::make_shared<std::string>();
    ws_frame(*f, opcode, {data ? data : "", len});
    return f;
}

// The route's handler: the handshake checks, then the host's on_upgrade (or
// an accept of every well-formed upgrade).
void on_upgrade_request(void *user_data, ql_request *req) {
    auto *route = static_cast<std::shared_ptr<const WsRoute> *>(user_data);
    auto *r = reinterpret_cast<Request *>(req);
    Server &s = r->worker->server;
    std::string err;
    HandshakeCheck c = check_upgrade(*r);
    if (c.status) {
        std::string body = error_body(c.why);
        ql_response resp = QL_RESPONSE_INIT;
        resp.status = c.status;
        resp.content_type = "application/json";
        resp.content_type_len = 16;
        resp.headers = c.headers;
        resp.header_count = c.header_count;
        resp.body = body.data();
        resp.body_len = body.size();
        s.respond(r->id(), &resp, &err);
        return;
    }
    const ql_ws_behavior &b = (*route)->b;
    if ((*route)->queued)
        queue_on_request((*route)->queued.get(), req);  // the host accepts or refuses from its thread
    else if (b.on_upgrade)
        b.on_upgrade(b.user_data, req);
    else if (s.ws_accept(r->id(), nullptr, &err) != QL_OK)
        std::fprintf(stderr, "quicklane: WebSocket upgrade not accepted: %s\n", err.c_str());
}
}  // namespace

// A queued route's upgrade request whose client left before the host answered.
void on_upgrade_abort(void *user_data, ql_req_id id, void *tag) {
    auto *route = static_cast<std::shared_ptr<const WsRoute> *>(user_data);
    const ql_ws_behavior &b = (*route)->b;
    if ((*route)->queued)
        queue_on_abort((*route)->queued.get(), id, tag);
    else if (b.on_upgrade_gone)
        b.on_upgrade_gone(b.user_data, id, nullptr);
}

std::shared_ptr<HandlerRef> ws_route_handler(const std::shared_ptr<const WsRoute> &route) {
    auto ref = std::make_shared<HandlerRef>();
    ref->h.version = QL_HANDLER_VERSION;
    ref->h.on_request = on_upgrade_request;
    ref->h.on_abort = on_upgrade_abort;
    ref->h.user_data = new std::shared_ptr<const WsRoute>(route);
    ref->h.destroy = [](void *p) { delete static_cast<std::shared_ptr<const WsRoute> *>(p); };
    return ref;
}

ql_status Server::ws_accept(ql_req_id id, const ql_ws_accept_options *o, std::string *err) {
    Worker *w = nullptr;
    Request *r = find(id, &w, err);
    if (!r) return QL_E_GONE;
    if ((r->generation() & 0xffffffffu) != (id & 0xffffffffu)) {
        *err = "request is gone (already answered, or its client left)";
        return QL_E_GONE;
    }
    if (!r->route || !r->route->ws) {
        *err = "not the upgrade request of a WebSocket route (ql_app_ws)";
        return QL_E_INVALID;
    }
    std::string headers, sub;
    if (o && o->version >= 1) {
        if (o->header_count) {
            ql_response resp = QL_RESPONSE_INIT;
            resp.headers = o->headers;
            resp.header_count = o->header_count;
            std::string type;
            if (!render_response_fields(&resp, type, headers, err)) return QL_E_INVALID;
        }
        if (o->subprotocol_len) {
            sub.assign(o->subprotocol, o->subprotocol_len);
            // Only a protocol the client offered (RFC 6455 4.2.2).
            bool offered = false;
            for (const SpanPair &h : r->headers)
                if (iequals(r->view(h.name), "sec-websocket-protocol") && header_has_token(r->view(h.value), sub))
                    offered = true;
            if (!offered) {
                *err = "subprotocol '" + sub + "' was not offered by the client (Sec-WebSocket-Protocol)";
                return QL_E_INVALID;
            }
            headers.append("Sec-WebSocket-Protocol: ").append(sub).append("\r\n");
        }
    }
    DeflateParams dp;
    bool deflate = false;
    if (uint32_t mode = r->route->ws->b.compression) {
        // Every Sec-WebSocket-Extensions line, in order, is one list.
        std::string offers, resp;
        for (const SpanPair &h : r->headers)
            if (iequals(r->view(h.name), "sec-websocket-extensions")) offers.append(r->view(h.value)).append(",");
        deflate = negotiate_deflate(offers, mode, r->route->ws->window_bits, dp, resp);
        if (deflate) headers.append("Sec-WebSocket-Extensions: ").append(resp).append("\r\n");
    }
    bool gone = false;
    if (ql_status st = claim(r, id, &gone, err); st != QL_OK) return st;
    if (!gone) {
        r->ws_accept = true;
        r->ws_deflate = deflate;
        r->ws_deflate_params = dp;
        r->pending_status = 101;
        r->pending_headers.swap(headers);
        r->ws_subprotocol.swap(sub);
        r->ws_tag = o && o->version >= 1 ? o->tag : nullptr;
    }
    if (!w->hand(r, r->generation()) || gone) {
        *err = "the client has gone; the request was freed";
        return QL_E_GONE;
    }
    return QL_OK;
}

ql_status Server::hijack(ql_req_id id, std::shared_ptr<const WsRoute> route, void *tag, std::string *err) {
    Worker *w = nullptr;
    Request *r = find(id, &w, err);
    if (!r) return QL_E_GONE;
    if ((r->generation() & 0xffffffffu) != (id & 0xffffffffu)) {
        *err = "request is gone (already answered, or its client left)";
        return QL_E_GONE;
    }
    if (r->body_stream && !r->body_end) {
        *err = "the request's body is still arriving: hijack once it has been read";
        return QL_E_STATE;
    }
    bool gone = false;
    if (ql_status st = claim(r, id, &gone, err); st != QL_OK) return st;
    if (!gone) {
        r->ws_accept = true;
        r->hijack = std::move(route);
        r->ws_tag = tag;
    }
    if (!w->hand(r, r->generation()) || gone) {
        *err = "the client has gone; the request was freed";
        return QL_E_GONE;
    }
    return QL_OK;
}

WsSlot *Server::find_ws(ql_ws_id id, Worker **w, std::string *err) {
    uint32_t widx = static_cast<uint32_t>(id >> 56);
    uint32_t slot = static_cast<uint32_t>((id >> 32) & 0xffffff);
    WsSlot *s = widx < workers_.size() ? workers_[widx]->ws_hub().lookup(slot) : nullptr;
    if (!s || s->gen.load(std::memory_order_acquire) != static_cast<uint32_t>(id)) {
        *err = "the WebSocket is closed (or closing)";
        return nullptr;
    }
    *w = workers_[widx].get();
    return s;
}

ql_status Server::ws_send(ql_ws_id id, const char *data, size_t len, uint32_t kind, std::string *err) {
    if (!check_kind(kind, data, len, err, true)) return QL_E_INVALID;
    Worker *w = nullptr;
    WsSlot *s = find_ws(id, &w, err);
    if (!s) return QL_E_GONE;
    if (s->raw && kind > QL_WS_BINARY) {
        *err = "a hijacked connection has no pings (it speaks no WebSocket)";
        return QL_E_INVALID;
    }
    if (w->on_loop_thread()) {
        if (!s->conn) return QL_E_GONE;
        ql_status st = s->conn->send(opcode_of(kind), {data ? data : "", len});
        if (st == QL_E_GONE) *err = "the WebSocket is closed (or closing)";
        return st;
    }
    // A hijacked connection's bytes go as they are. Sized before any copy:
    // a dropped send costs none.
    char head[10];
    size_t size = s->raw ? len : len + ws_frame_head(head, opcode_of(kind), len);
    uint64_t b = s->buffered.load(std::memory_order_relaxed);
    if (b && b + size > s->max_backpressure) {
        WsOp op;
        op.kind = s->close_on_backpressure ? WsOp::Close : WsOp::ArmDrain;
        op.slot = s->index;
        op.gen = static_cast<uint32_t>(id);
        op.code = 1008;
        op.text = "too much data waiting for a slow client";
        w->post_ws(std::move(op));
        return QL_WS_DROPPED;
    }
    Frame f = s->raw ? std::make_shared<const std::string>(data ? data : "", len) : make_frame(opcode_of(kind), data, len);
    uint64_t after = s->buffered.fetch_add(f->size(), std::memory_order_relaxed) + f->size();
    // As on the loop: SENT at or under half the limit (no drain owed), else
    // QUEUED, and the loop arms the drain that answers it.
    bool queued = after > s->max_backpressure / 2;
    WsOp op;
    op.kind = WsOp::Send;
    op.slot = s->index;
    op.gen = static_cast<uint32_t>(id);
    op.code = queued ? 1 : 0;
    op.frame = std::move(f);
    if (!w->post_ws(std::move(op))) {
        *err = "the server has stopped";
        return QL_E_GONE;
    }
    return queued ? QL_WS_QUEUED : QL_WS_SENT;
}

ql_status Server::ws_close(ql_ws_id id, uint16_t code, std::string_view reason, std::string *err) {
    if (code != 0 && !valid_close_code(code)) {
        *err = "close code " + std::to_string(code) + " may not be sent (1000-1003, 1007-1014, 3000-4999, or 0)";
        return QL_E_INVALID;
    }
    if (reason.size() > 123 || !valid_utf8(reason)) {
        *err = "a close reason is valid UTF-8 of at most 123 bytes";
        return QL_E_INVALID;
    }
    if (code == 0) return ws_cut(id, err);
    Worker *w = nullptr;
    WsSlot *s = find_ws(id, &w, err);
    if (!s) return QL_E_GONE;
    if (w->on_loop_thread()) {
        if (!s->conn || !s->conn->close(code, reason)) {
            *err = "the WebSocket is closed (or closing)";
            return QL_E_GONE;
        }
        return QL_OK;
    }
    WsOp op;
    op.kind = WsOp::Close;
    op.slot = s->index;
    op.gen = static_cast<uint32_t>(id);
    op.code = code;
    op.text.assign(reason);
    if (!w->post_ws(std::move(op))) {
        *err = "the server has stopped";
        return QL_E_GONE;
    }
    return QL_OK;
}

// Code 0 of ql_ws_close: also a socket whose close handshake is under way
// (its id went stale for everything else when it started closing).
ql_status Server::ws_cut(ql_ws_id id, std::string *err) {
    uint32_t widx = static_cast<uint32_t>(id >> 56);
    uint32_t slot = static_cast<uint32_t>((id >> 32) & 0xffffff);
    WsSlot *s = widx < workers_.size() ? workers_[widx]->ws_hub().lookup(slot) : nullptr;
    uint32_t want = static_cast<uint32_t>(id);
    uint32_t g = s ? s->gen.load(std::memory_order_acquire) : 0;
    if (!s || (g != want && g != want + 1)) {  // open, or closing (retired once)
        *err = "the WebSocket is closed";
        return QL_E_GONE;
    }
    Worker *w = workers_[widx].get();
    if (w->on_loop_thread()) {
        if (!s->conn || s->conn->id() != id || !s->conn->cut()) {
            *err = "the WebSocket is closed";
            return QL_E_GONE;
        }
        return QL_OK;
    }
    WsOp op;
    op.kind = WsOp::Cut;
    op.slot = s->index;
    op.gen = want;
    if (!w->post_ws(std::move(op))) {
        *err = "the server has stopped";
        return QL_E_GONE;
    }
    return QL_OK;
}

ql_status Server::ws_buffered(ql_ws_id id, uint64_t *out, std::string *err) {
    Worker *w = nullptr;
    WsSlot *s = find_ws(id, &w, err);
    if (!s) return QL_E_GONE;
    if (out) *out = s->buffered.load(std::memory_order_relaxed);
    return QL_OK;
}

ql_status Server::ws_subscribe(ql_ws_id id, std::string_view topic, bool on, std::string *err) {
    Worker *w = nullptr;
    WsSlot *s = find_ws(id, &w, err);
    if (!s) return QL_E_GONE;
    if (s->raw) {
        *err = "a hijacked connection has no topics (it speaks no WebSocket)";
        return QL_E_INVALID;
    }
    if (w->on_loop_thread()) {
        if (!s->conn) return QL_E_GONE;
        if (on)
            w->ws_hub().subscribe(s->conn, topic);
        else
            w->ws_hub().unsubscribe(s->conn, topic);
        return QL_OK;
    }
    WsOp op;
    op.kind = on ? WsOp::Subscribe : WsOp::Unsubscribe;
    op.slot = s->index;
    op.gen = static_cast<uint32_t>(id);
    op.text.assign(topic);
    if (!w->post_ws(std::move(op))) {
        *err = "the server has stopped";
        return QL_E_GONE;
    }
    return QL_OK;
}

ql_status Server::publish(std::string_view topic, const char *data, size_t len, uint32_t kind, ql_ws_id exclude,
                          size_t *count, std::string *err) {
    if (!check_kind(kind, data, len, err)) return QL_E_INVALID;
    std::vector<uint32_t> loops;  // not static: a subscriber's callback may publish too
    size_t n = pubsub.targets(topic, exclude, loops);
    if (count) *count = n;
    if (n == 0) return QL_OK;
    Frame f = make_frame(opcode_of(kind), data, len);
    for (uint32_t i : loops) {
        Worker &w = *workers_[i];
        if (w.on_loop_thread()) {
            w.ws_hub().publish(topic, f, exclude);
            continue;
        }
        WsOp op;
        op.kind = WsOp::Publish;
        op.frame = f;
        op.text.assign(topic);
        op.exclude = exclude;
        w.post_ws(std::move(op));
    }
    return QL_OK;
}

}  // namespace ql
