// quicklane Node addon, WebSockets: ql_app_ws routes whose callbacks call JS
// directly (Node's loop is the core's loop), and the calls JS makes on
// sockets (send, ping/pong, close, subscribe, publish). The upgrade request
// gets a request slot like any request (addon.cc), answered by wsAccept or
// respond.
#include "addon.hpp"

namespace qlnode {
namespace {

// ---- WebSockets ------------------------------------------------------------------
//
// ql_app_ws routes whose callbacks call JS directly (this is the loop thread).
// JS names a socket by its entry in Instance::ws, kept in the socket's tag
// from on_open to on_close (the entry is released after JS saw the close, so
// JS never holds a number that names another socket). The upgrade request
// gets a request slot like any request, answered by wsAccept or respond.

struct WsRouteBox {
    Instance *inst;
    uint32_t id;
    bool text_as_buffer;  // text messages (and close reasons) reach JS as Buffers (the ws-shaped API)
};

uint32_t ws_slot_of(const ql_websocket *ws) {
    return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(ql_websocket_tag(ws))) - 1;
}

void ws_call(Instance *in, napi_ref fn, size_t argc, napi_value *argv) {
    if (fn) call_js(in, fn, argc, argv);
}

void ws_on_upgrade(void *ud, ql_request *req) {
    auto *route = static_cast<WsRouteBox *>(ud);
    Instance *in = route->inst;
    uint32_t slot = take_request(in, req);
    if (slot == kNoSlot) return;
    if (!in->ws_upgrade) finish_as_500(in, slot);
    else call_js_numbers(in, in->ws_upgrade, {double(route->id), double(slot)});
}

// The 101 went out. The accept's tag (a JS token for the data it gave, or 0)
// is replaced by the socket's entry; the upgrade request is readable (through
// a request slot) during the call only.
void ws_on_open(void *ud, ql_websocket *ws, const ql_request *req) {
    auto *route = static_cast<WsRouteBox *>(ud);
    Instance *in = route->inst;
    double token = static_cast<double>(reinterpret_cast<uintptr_t>(ql_websocket_tag(ws)));
    uint32_t s = in->ws_alloc(ql_websocket_server(ws), ql_websocket_id(ws));
    ql_websocket_set_tag(ws, reinterpret_cast<void *>(static_cast<uintptr_t>(s) + 1));
    if (in->tearing_down) return;
    uint32_t rs = in->alloc(const_cast<ql_request *>(req));
    napi_env env = in->env;
    napi_handle_scope hs;
    napi_open_handle_scope(env, &hs);
    napi_value argv[5];
    napi_create_uint32(env, route->id, &argv[0]);
    napi_create_uint32(env, s, &argv[1]);
    napi_create_uint32(env, rs, &argv[2]);
    napi_create_double(env, token, &argv[3]);
    ql_str sub = ql_websocket_subprotocol(ws);
    napi_create_string_utf8(env, sub.data, sub.len, &argv[4]);
    call_js(in, in->ws_open, 5, argv);
    napi_close_handle_scope(env, hs);
    in->release(rs);
}

napi_value ws_payload(napi_env env, const char *data, size_t len, bool as_buffer) {
    napi_value v;
    if (as_buffer) {
        void *out;
        napi_create_buffer_copy(env, len, data, &out, &v);
    } else {
        napi_create_string_utf8(env, data, len, &v);
    }
    return v;
}

void ws_on_message(void *ud, ql_websocket *ws, const char *data, size_t len, int binary) {
    auto *route = static_cast<WsRouteBox *>(ud);
    Instance *in = route->inst;
    uint32_t s = ws_slot_of(ws);
    if (in->tearing_down || !in->ws_live(s)) return;
    napi_env env = in->env;
    napi_handle_scope hs;
    napi_open_handle_scope(env, &hs);
    napi_value argv[3];
    napi_create_uint32(env, s, &argv[0]);
    argv[1] = ws_payload(env, data, len, binary || route->text_as_buffer);
    napi_get_boolean(env, binary != 0, &argv[2]);
    ws_call(in, in->ws_message, 3, argv);
    napi_close_handle_scope(env, hs);
}

void ws_on_drain(void *ud, ql_websocket *ws) {
    Instance *in = static_cast<WsRouteBox *>(ud)->inst;
    uint32_t s = ws_slot_of(ws);
    if (in->tearing_down || !in->ws_live(s)) return;
    if (in->ws_drain) call_js_numbers(in, in->ws_drain, {double(s)});
}

void ws_control(void *ud, ql_websocket *ws, const char *data, size_t len, bool ping) {
    Instance *in = static_cast<WsRouteBox *>(ud)->inst;
    uint32_t s = ws_slot_of(ws);
    if (in->tearing_down || !in->ws_live(s)) return;
    napi_handle_scope hs;
    napi_open_handle_scope(in->env, &hs);
    napi_value argv[2];
    napi_create_uint32(in->env, s, &argv[0]);
    argv[1] = ws_payload(in->env, data, len, true);
    ws_call(in, ping ? in->ws_ping : in->ws_pong, 2, argv);
    napi_close_handle_scope(in->env, hs);
}
void ws_on_ping(void *ud, ql_websocket *ws, const char *data, size_t len, int) { ws_control(ud, ws, data, len, true); }
void ws_on_pong(void *ud, ql_websocket *ws, const char *data, size_t len, int) { ws_control(ud, ws, data, len, false); }

// Exactly once per opened socket: JS is told, then the entry is free.
void ws_on_close(void *ud, ql_websocket *ws, uint16_t code, const char *reason, size_t len) {
    auto *route = static_cast<WsRouteBox *>(ud);
    Instance *in = route->inst;
    uint32_t s = ws_slot_of(ws);
    if (!in->ws_live(s)) return;
    ql_websocket_set_tag(ws, nullptr);
    if (!in->tearing_down) {
        napi_env env = in->env;
        napi_handle_scope hs;
        napi_open_handle_scope(env, &hs);
        napi_value argv[3];
        napi_create_uint32(env, s, &argv[0]);
        napi_create_uint32(env, code, &argv[1]);
        argv[2] = ws_payload(env, reason, len, route->text_as_buffer);
        ws_call(in, in->ws_close, 3, argv);
        napi_close_handle_scope(env, hs);
    }
    in->ws_release(s);
}

// An upgrade request that will never open (ql_ws_behavior v2): its client left
// before JS decided (tag NULL), or an accepted one lost its connection before
// the 101 went out (tag: the accept's token, or NULL when it gave no data).
// JS is told (gone(slot, -1) / gone(-1, token)) at once, so it drops the data
// kept for the open, and an undecided request is finished here: its slot and
// the core's request are freed without waiting for JS to decide.
void ws_on_upgrade_gone(void *ud, ql_req_id id, void *tag) {
    Instance *in = static_cast<WsRouteBox *>(ud)->inst;
    double token = static_cast<double>(reinterpret_cast<uintptr_t>(tag));
    uint32_t slot = kNoSlot;
    if (!tag) {
        // The core gives the id only: find its slot (a rare event).
        for (uint32_t i = 0; i < in->slots.size(); ++i) {
            if (in->slots[i].busy && in->slots[i].id == id) {
                slot = i;
                break;
            }
        }
        if (slot == kNoSlot) return;  // accepted without data: nothing is held
        in->slots[slot].aborted = true;
    }
    if (!in->tearing_down && in->ws_gone)
        call_js_numbers(in, in->ws_gone, {slot == kNoSlot ? -1.0 : double(slot), slot == kNoSlot ? token : -1.0});
    // JS has copied what it keeps of the request: finish it (QL_E_GONE: the
    // core frees it) unless JS decided meanwhile.
    if (slot != kNoSlot && in->live(slot) && in->slots[slot].id == id) finish_as_500(in, slot);
}

// wsInit(upgrade, open, message, drain, close, ping, pong, gone)
Napi::Value WsInit(const Napi::CallbackInfo &info) {
    Instance *in = inst_of(info);
    napi_env env = info.Env();
    napi_ref *refs[] = {&in->ws_upgrade, &in->ws_open, &in->ws_message, &in->ws_drain,
                        &in->ws_close, &in->ws_ping, &in->ws_pong, &in->ws_gone};
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; ++i) {
        if (*refs[i]) napi_delete_reference(env, *refs[i]);
        *refs[i] = nullptr;
        if (info[i].IsFunction()) napi_create_reference(env, info[i], 1, refs[i]);
    }
    return info.Env().Undefined();
}

// wsRoute(app, pattern, routeId, {textAsBuffer, upgrade, ping, pong, maxMessageBytes, maxBackpressure,
//         idleTimeoutMs, pingIntervalMs, closeOnBackpressure, compression, compressionWindowBits})
Napi::Value WsRoute(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    AppBox *box = info[0].As<Napi::External<AppBox>>().Data();
    std::string pattern = str_arg(info[1]);
    Napi::Object o = info[3].As<Napi::Object>();
    auto flag = [&](const char *k) { return o.Get(k).ToBoolean().Value(); };
    auto num = [&](const char *k) -> double {
        Napi::Value v = o.Get(k);
        return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0;
    };
    auto *route = new WsRouteBox{inst_of(info), info[2].As<Napi::Number>().Uint32Value(), flag("textAsBuffer")};
    ql_ws_behavior b = QL_WS_BEHAVIOR_INIT;
    b.on_upgrade = flag("upgrade") ? ws_on_upgrade : nullptr;
    b.on_upgrade_gone = flag("upgrade") ? ws_on_upgrade_gone : nullptr;  // callback routes decided by JS
    b.on_open = ws_on_open;
    b.on_message = ws_on_message;
    b.on_drain = ws_on_drain;
    b.on_close = ws_on_close;
    b.on_ping = flag("ping") ? ws_on_ping : nullptr;
    b.on_pong = flag("pong") ? ws_on_pong : nullptr;
    b.user_data = route;
    b.destroy = [](void *p) { delete static_cast<WsRouteBox *>(p); };
    b.max_message_bytes = static_cast<uint64_t>(num("maxMessageBytes"));
    b.max_backpressure = static_cast<uint64_t>(num("maxBackpressure"));
    b.idle_timeout_ms = static_cast<uint32_t>(num("idleTimeoutMs"));
    b.ping_interval_ms = static_cast<uint32_t>(num("pingIntervalMs"));
    b.close_on_backpressure = flag("closeOnBackpressure") ? 1 : 0;
    b.compression = static_cast<uint32_t>(num("compression"));
    b.compression_window_bits = static_cast<uint32_t>(num("compressionWindowBits"));
    ql_error *err = nullptr;
    ql_status st = ql_app_ws(box->app, pattern.data(), pattern.size(), &b, &err);
    if (st != QL_OK) {
        delete route;  // refused: the core never took it
        throw_ql(env, st, err);
    }
    return env.Undefined();
}

// The bytes of a string (UTF-8, into `scratch`), Buffer, TypedArray, DataView
// or ArrayBuffer. False for anything else.
bool bytes_of(napi_env env, napi_value v, std::string &scratch, const char **data, size_t *len) {
    napi_valuetype t;
    napi_typeof(env, v, &t);
    if (t == napi_string) {
        size_t n = 0;
        napi_get_value_string_utf8(env, v, nullptr, 0, &n);
        scratch.resize(n + 1);
        napi_get_value_string_utf8(env, v, scratch.data(), n + 1, &n);
        *data = scratch.data();
        *len = n;
        return true;
    }
    bool is = false;
    napi_is_typedarray(env, v, &is);
    if (is) {
        napi_typedarray_type type;
        size_t count;
        void *p;
        napi_value ab;
        size_t off;
        napi_get_typedarray_info(env, v, &type, &count, &p, &ab, &off);
        size_t el = 1;
        switch (type) {
        case napi_int16_array: case napi_uint16_array: el = 2; break;
        case napi_int32_array: case napi_uint32_array: case napi_float32_array: el = 4; break;
        case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: el = 8; break;
        default: el = 1;
        }
        *data = static_cast<const char *>(p);
        *len = count * el;
        return true;
    }
    napi_is_dataview(env, v, &is);
    if (is) {
        size_t n;
        void *p;
        napi_value ab;
        size_t off;
        napi_get_dataview_info(env, v, &n, &p, &ab, &off);
        *data = static_cast<const char *>(p);
        *len = n;
        return true;
    }
    napi_is_arraybuffer(env, v, &is);
    if (is) {
        void *p;
        size_t n;
        napi_get_arraybuffer_info(env, v, &p, &n);
        *data = static_cast<const char *>(p);
        *len = n;
        return true;
    }
    return false;
}

// The socket named by info[0], or nullptr once it closed.
WsEntry *ws_of(const Napi::CallbackInfo &info) { return inst_of(info)->ws_live(info[0].As<Napi::Number>().Uint32Value()); }

// wsAccept(reqSlot, protocol | undefined, [name, value, ...] | undefined, token) -> ql_status.
// QL_E_INVALID throws (the request stays unanswered); otherwise the slot is freed.
Napi::Value WsAccept(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    uint32_t i;
    Slot *s = slot_of(info, &i);
    if (!s) return Napi::Number::New(env, QL_E_GONE);
    ql_ws_accept_options o = QL_WS_ACCEPT_OPTIONS_INIT;
    std::string sub = str_arg(info[1]);
    o.subprotocol = sub.data();
    o.subprotocol_len = sub.size();
    std::vector<std::string> store;
    std::vector<ql_header> hdrs;
    if (info[2].IsArray()) {
        Napi::Array a = info[2].As<Napi::Array>();
        uint32_t n = a.Length();
        store.reserve(n);
        for (uint32_t k = 0; k < n; ++k) store.push_back(a.Get(k).ToString().Utf8Value());
        for (uint32_t k = 0; k + 1 < n; k += 2)
            hdrs.push_back(ql_header{store[k].data(), store[k].size(), store[k + 1].data(), store[k + 1].size()});
        o.headers = hdrs.data();
        o.header_count = hdrs.size();
    }
    double token = info[3].IsNumber() ? info[3].As<Napi::Number>().DoubleValue() : 0;
    o.tag = reinterpret_cast<void *>(static_cast<uintptr_t>(token));
    ql_server *srv = s->srv;
    ql_req_id id = s->id;
    ql_error *err = nullptr;
    // on_open may run inside this call (the 101 written at once): the slot is
    // freed first, as the request is finished by the accept.
    ql_status st = ql_ws_accept(srv, id, &o, &err);
    if (st == QL_E_INVALID) {
        throw_invalid(env, err, "invalid WebSocket accept", JsError::Type);
        return env.Undefined();
    }
    ql_error_free(&err);
    if (in->live(i) && in->slots[i].id == id) in->release(i);
    return Napi::Number::New(env, st);
}

// wsSend(ws, data, kind) -> the size in bytes when sent (QL_WS_SENT), -1 queued above
// the mark (QL_WS_QUEUED), -2 dropped (QL_WS_DROPPED), or QL_E_GONE (-6). kind:
// QL_WS_TEXT, QL_WS_BINARY, or QL_WS_PING / QL_WS_PONG (a control frame of at
// most 125 bytes, JS checks: data may be undefined; in order with the
// messages, never dropped). Throws for a text message that is not UTF-8, a
// longer control frame, or data of another type.
Napi::Value WsSend(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    WsEntry *e = ws_of(info);
    if (!e) return Napi::Number::New(env, QL_E_GONE);
    uint32_t kind = info[2].As<Napi::Number>().Uint32Value();
    bool control = kind == QL_WS_PING || kind == QL_WS_PONG;
    const char *data = "";
    size_t len = 0;
    if (!(control && info[1].IsUndefined()) && !bytes_of(env, info[1], in->scratch, &data, &len)) {
        Napi::TypeError::New(env, "quicklane: a WebSocket message is a string, a Buffer, a TypedArray, a DataView or an ArrayBuffer")
            .ThrowAsJavaScriptException();
        return env.Undefined();
    }
    ql_error *err = nullptr;
    ql_status st = ql_ws_send(e->srv, e->id, data, len, kind, &err);
    if (st == QL_E_INVALID) {
        throw_invalid(env, err, control ? "invalid ping or pong" : "invalid WebSocket message", JsError::Type);
        return env.Undefined();
    }
    ql_error_free(&err);
    double r = st == QL_WS_SENT ? static_cast<double>(len) : st == QL_WS_QUEUED ? -1 : st == QL_WS_DROPPED ? -2 : st;
    return Napi::Number::New(env, r);
}

// wsClose(ws, code, reason) -> ql_status (code 0: cut). Throws RangeError for a code or reason the core refuses.
Napi::Value WsClose(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    WsEntry *e = ws_of(info);
    if (!e) return Napi::Number::New(env, QL_E_GONE);
    uint32_t code = info[1].As<Napi::Number>().Uint32Value();
    const char *data = nullptr;
    size_t len = 0;
    std::string scratch;
    if (!info[2].IsUndefined() && !bytes_of(env, info[2], scratch, &data, &len)) {
        Napi::TypeError::New(env, "quicklane: a close reason is a string or a Buffer").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    ql_error *err = nullptr;
    ql_status st = ql_ws_close(e->srv, e->id, static_cast<uint16_t>(code), data, len, &err);
    if (st == QL_E_INVALID) {
        throw_invalid(env, err, "invalid close code or reason", JsError::Range);
        return env.Undefined();
    }
    ql_error_free(&err);
    return Napi::Number::New(env, st);
}

// wsBuffered(ws) -> bytes not yet taken by the kernel, or -1 once closed.
Napi::Value WsBuffered(const Napi::CallbackInfo &info) {
    WsEntry *e = ws_of(info);
    uint64_t n = 0;
    if (!e || ql_ws_buffered(e->srv, e->id, &n, nullptr) != QL_OK) return Napi::Number::New(info.Env(), -1);
    return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// wsSubscribe(ws, topic, on) -> ql_status
Napi::Value WsSubscribe(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    WsEntry *e = ws_of(info);
    if (!e) return Napi::Number::New(env, QL_E_GONE);
    std::string topic = str_arg(info[1]);
    ql_status st = info[2].ToBoolean().Value() ? ql_ws_subscribe(e->srv, e->id, topic.data(), topic.size(), nullptr)
                                               : ql_ws_unsubscribe(e->srv, e->id, topic.data(), topic.size(), nullptr);
    return Napi::Number::New(env, st);
}

// publish(server, topic, data, binary, excludeWs | -1) -> subscribers reached; throws for bad data.
Napi::Value Publish(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    ServerBox *box = info[0].As<Napi::External<ServerBox>>().Data();
    if (!box->srv) return Napi::Number::New(env, 0);
    std::string topic = str_arg(info[1]);
    const char *data = nullptr;
    size_t len = 0;
    if (!bytes_of(env, info[2], in->scratch, &data, &len)) {
        Napi::TypeError::New(env, "quicklane: a WebSocket message is a string, a Buffer, a TypedArray, a DataView or an ArrayBuffer")
            .ThrowAsJavaScriptException();
        return env.Undefined();
    }
    ql_ws_id exclude = 0;
    if (info[4].IsNumber()) {
        int64_t x = info[4].As<Napi::Number>().Int64Value();
        if (x >= 0) {
            WsEntry *e = in->ws_live(static_cast<uint32_t>(x));
            if (e && e->srv == box->srv) exclude = e->id;
        }
    }
    size_t count = 0;
    ql_error *err = nullptr;
    ql_status st = ql_server_publish(box->srv, topic.data(), topic.size(), data, len,
                                     info[3].ToBoolean().Value() ? QL_WS_BINARY : QL_WS_TEXT, exclude, &count, &err);
    if (st == QL_E_INVALID) {
        throw_invalid(env, err, "invalid published message", JsError::Type);
        return env.Undefined();
    }
    ql_error_free(&err);
    return Napi::Number::New(env, st == QL_OK ? static_cast<double>(count) : 0);
}

// liveHandles() -> { webSockets, requests }: entries held for JS (tests: no leak).
Napi::Value LiveHandles(const Napi::CallbackInfo &info) {
    Instance *in = inst_of(info);
    uint32_t reqs = 0;
    for (const Slot &s : in->slots) reqs += s.busy ? 1 : 0;
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("webSockets", Napi::Number::New(info.Env(), in->ws_count));
    o.Set("requests", Napi::Number::New(info.Env(), reqs));
    return o;
}

}  // namespace

void register_ws(Napi::Env env, Napi::Object exports, Instance *in) {
    export_fns(env, exports, in, {
        {"wsInit", WsInit},
        {"wsRoute", WsRoute},
        {"wsAccept", WsAccept},
        {"wsSend", WsSend},
        {"wsClose", WsClose},
        {"wsBuffered", WsBuffered},
        {"wsSubscribe", WsSubscribe},
        {"publish", Publish},
        {"liveHandles", LiveHandles},
    });
}

}  // namespace qlnode
