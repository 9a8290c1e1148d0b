// quicklane Node addon: the core runs on Node's own libuv loop
// (napi_get_uv_event_loop) through ql_server_start_on_loop, and JS handlers
// are called directly from the core's handler callback on the main thread.
//
// Only the C ABI (quicklane.h) is used. The core, the C door and llhttp are
// compiled into this addon with hidden visibility; every uv_* symbol resolves
// from the node binary, so there is exactly one libuv in the process.
//
// Requests are handed to JS as small integers ("slots") into a per-env table
// that holds the borrowed ql_request*; JS reads request data lazily through
// accessors below, which stay valid until the request is answered (or its
// server is freed). Handlers run inside napi_make_callback, so promises and
// microtasks run after each call, as for any Node I/O callback.
#define NAPI_VERSION 8
#include <napi.h>
#include <uv.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include "quicklane.h"

namespace {

constexpr uint32_t kNoSlot = 0xffffffffu;

// ql_server_options.reuse_port is the proposed append (see docs/node.md);
// detected at compile time so the addon builds against either header.
template <class T>
constexpr bool kHasReusePort = requires(T x) { x.reuse_port; };
template <class T>
bool set_reuse_port(T &o) {
    if constexpr (kHasReusePort<T>) {
        o.reuse_port = 1;
        return true;
    } else {
        (void)o;
        return false;
    }
}

struct Slot {
    ql_request *req = nullptr;
    ql_server *srv = nullptr;
    ql_req_id id = 0;
    uint32_t next_free = kNoSlot;
    bool busy = false;
    bool aborted = false;
    bool streaming = false;  // a streamed answer was started (ql_respond_start)
};

struct ServerBox;

struct WsEntry {
    ql_server *srv = nullptr;
    ql_ws_id id = 0;
    uint32_t next_free = kNoSlot;
    bool busy = false;
};

// Per Node environment (main thread or a worker_thread): context-aware.
struct Instance {
    napi_env env = nullptr;
    uv_loop_t *loop = nullptr;
    napi_ref dispatch = nullptr;   // (routeId, slot) => void
    napi_ref on_abort = nullptr;   // (slot) => void
    napi_ref on_body = nullptr;    // (slot) => void: a streamed body can be read again
    napi_ref on_drain = nullptr;   // (slot) => void: a streamed answer fell to QL_DRAIN_LOW
    napi_ref resource = nullptr;
    napi_async_context async_ctx = nullptr;
    std::vector<Slot> slots;
    uint32_t free_head = kNoSlot;
    std::string scratch;  // reused for string bodies
    std::vector<char> body_buf;  // reused by bodyRead / bodyDrain (streamed bodies)
    std::vector<std::string> hdr_store;
    // The slot respondWrite is writing: a drain notice the core gives during
    // that very call (its flush wrote everything) is folded into the result
    // instead of re-entering JS.
    uint32_t writing_slot = kNoSlot;
    bool drained_in_write = false;
    // Servers of this env. A box is deleted once its server is freed AND its
    // JS External was finalized (whichever comes last).
    std::unordered_set<ServerBox *> servers;
    // Env teardown (worker_thread exit, process exit): servers still running
    // are stopped without JS, and Node waits (async cleanup hook) until their
    // handles are closed, so its loop closes cleanly.
    bool tearing_down = false;
    napi_async_cleanup_hook_handle teardown_hook = nullptr;
    uint32_t teardown_pending = 0;
    uv_timer_t teardown_timer;
    bool teardown_timer_live = false;
    bool data_released = false;  // Node released the instance data during teardown

    uint32_t alloc(ql_request *req) {
        uint32_t i;
        if (free_head != kNoSlot) {
            i = free_head;
            free_head = slots[i].next_free;
        } else {
            i = static_cast<uint32_t>(slots.size());
            slots.emplace_back();
        }
        Slot &s = slots[i];
        s.req = req;
        s.srv = ql_request_server(req);
        s.id = ql_request_id(req);
        s.busy = true;
        s.aborted = false;
        s.streaming = false;
        return i;
    }
    void release(uint32_t i) {
        Slot &s = slots[i];
        s.busy = false;
        s.streaming = false;
        s.req = nullptr;
        s.srv = nullptr;
        s.next_free = free_head;
        free_head = i;
    }
    Slot *live(uint32_t i) { return i < slots.size() && slots[i].busy ? &slots[i] : nullptr; }

    // WebSockets: JS names a socket by a small integer (its entry here), kept
    // as the socket's tag (entry + 1) from on_open to on_close.
    std::vector<WsEntry> ws;
    uint32_t ws_free = kNoSlot;
    uint32_t ws_count = 0;
    napi_ref ws_upgrade = nullptr, ws_open = nullptr, ws_message = nullptr, ws_drain = nullptr, ws_close = nullptr,
             ws_ping = nullptr, ws_pong = nullptr;
    uint32_t ws_alloc(ql_server *srv, ql_ws_id id) {
        uint32_t i;
        if (ws_free != kNoSlot) {
            i = ws_free;
            ws_free = ws[i].next_free;
        } else {
            i = static_cast<uint32_t>(ws.size());
            ws.emplace_back();
        }
        ws[i].srv = srv;
        ws[i].id = id;
        ws[i].busy = true;
        ++ws_count;
        return i;
    }
    void ws_release(uint32_t i) {
        WsEntry &e = ws[i];
        if (!e.busy) return;
        e.busy = false;
        e.srv = nullptr;
        e.id = 0;
        e.next_free = ws_free;
        ws_free = i;
        --ws_count;
    }
    WsEntry *ws_live(uint32_t i) { return i < ws.size() && ws[i].busy ? &ws[i] : nullptr; }
};

struct Route {
    Instance *inst;
    uint32_t id;
};

struct AppBox {
    ql_app *app = nullptr;
};

struct ServerBox {
    Instance *inst = nullptr;
    ql_server *srv = nullptr;
    napi_ref on_closed = nullptr;
    bool stopping = false;  // stop_async called
    bool stopped = false;   // its handles are closed (done ran)
    bool js_alive = true;   // the External has not been finalized
};

// Finishes requests still held for this server (their clients are gone) so
// their slots are free, then frees the server. Only once its handles closed,
// or before it started. Returns the slots released.
std::vector<uint32_t> free_server(ServerBox *box) {
    std::vector<uint32_t> killed;
    Instance *in = box->inst;
    if (!box->srv) return killed;
    for (uint32_t i = 0; i < in->slots.size(); ++i) {
        Slot &s = in->slots[i];
        if (!s.busy || s.srv != box->srv) continue;
        if (s.streaming) {
            ql_respond_abort(s.srv, s.id, nullptr);  // a started stream is cut, never ended clean
        } else {
            ql_response r = QL_RESPONSE_INIT;
            r.status = 503;
            ql_respond(s.srv, s.id, &r, nullptr);
        }
        in->release(i);
        killed.push_back(i);
    }
    // Sockets are closed (and told) before the stop completes; entries left
    // here would name a freed server.
    for (uint32_t i = 0; i < in->ws.size(); ++i)
        if (in->ws[i].busy && in->ws[i].srv == box->srv) in->ws_release(i);
    ql_server_free(&box->srv);
    if (!box->js_alive) {
        in->servers.erase(box);
        delete box;
    }
    return killed;
}

void throw_ql(napi_env env, ql_status st, ql_error *err) {
    std::string msg = err ? ql_error_message(err) : "";
    if (msg.empty()) msg = ql_status_name(st);
    ql_error_free(&err);
    Napi::Error e = Napi::Error::New(env, "quicklane: " + msg);
    e.Set("code", Napi::String::New(env, ql_status_name(st)));
    e.ThrowAsJavaScriptException();
}

// Calls a JS function from a libuv callback: handle scope + callback scope
// (microtasks and nextTicks run when it returns). An exception escaping the
// JS side is reported like any uncaught exception in Node.
void call_js(Instance *in, napi_ref fn_ref, size_t argc, napi_value *argv) {
    napi_env env = in->env;
    napi_value fn, recv, result;
    napi_get_reference_value(env, fn_ref, &fn);
    napi_get_global(env, &recv);  // napi_make_callback wants an object receiver
    napi_status st = napi_make_callback(env, in->async_ctx, recv, fn, argc, argv, &result);
    if (st == napi_pending_exception) {
        napi_value exc;
        napi_get_and_clear_last_exception(env, &exc);
        napi_fatal_exception(env, exc);
    } else if (st != napi_ok) {
        std::fprintf(stderr, "quicklane: napi_make_callback failed (%d)\n", static_cast<int>(st));
    }
}

void finish_as_500(Instance *in, uint32_t slot) {
    Slot *s = in->live(slot);
    if (!s) return;
    static const char body[] = "{\"detail\":\"Internal Server Error\"}";
    ql_response r = QL_RESPONSE_INIT;
    r.status = 500;
    r.content_type = "application/json";
    r.content_type_len = 16;
    r.body = body;
    r.body_len = sizeof body - 1;
    ql_respond(s->srv, s->id, &r, nullptr);
    in->release(slot);
}

void on_request(void *ud, ql_request *req) {
    auto *route = static_cast<Route *>(ud);
    Instance *in = route->inst;
    uint32_t slot = in->alloc(req);
    ql_request_set_tag(req, reinterpret_cast<void *>(static_cast<uintptr_t>(slot) + 1));
    if (in->tearing_down) {  // JS is gone: nobody can answer
        finish_as_500(in, slot);
        return;
    }
    napi_handle_scope hs;
    napi_open_handle_scope(in->env, &hs);
    napi_value argv[2];
    napi_create_uint32(in->env, route->id, &argv[0]);
    napi_create_uint32(in->env, slot, &argv[1]);
    call_js(in, in->dispatch, 2, argv);
    napi_close_handle_scope(in->env, hs);
}

void on_abort(void *ud, ql_req_id id, void *tag) {
    auto *route = static_cast<Route *>(ud);
    Instance *in = route->inst;
    uint32_t slot = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(tag)) - 1;
    Slot *s = in->live(slot);
    if (!s || s->id != id) return;
    s->aborted = true;
    if (in->tearing_down) return;
    napi_handle_scope hs;
    napi_open_handle_scope(in->env, &hs);
    napi_value argv[1];
    napi_create_uint32(in->env, slot, &argv[0]);
    call_js(in, in->on_abort, 1, argv);
    napi_close_handle_scope(in->env, hs);
}

// A streamed body of the request in `tag`'s slot can be read again (after a
// bodyRead that gave QL_E_AGAIN). May run inside the core's read callback.
void on_body(void *ud, ql_req_id id, void *tag) {
    auto *route = static_cast<Route *>(ud);
    Instance *in = route->inst;
    uint32_t slot = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(tag)) - 1;
    Slot *s = in->live(slot);
    if (!s || s->id != id || in->tearing_down || !in->on_body) return;
    napi_handle_scope hs;
    napi_open_handle_scope(in->env, &hs);
    napi_value argv[1];
    napi_create_uint32(in->env, slot, &argv[0]);
    call_js(in, in->on_body, 1, argv);
    napi_close_handle_scope(in->env, hs);
}

// A streamed answer of the request in `tag`'s slot fell to QL_DRAIN_LOW
// buffered bytes after a write left it above QL_DRAIN_HIGH. Runs at the end of
// the core's flush: from a write callback, or inside a native call of JS (a
// respondWrite of this slot: folded into its result; of another request on
// the connection: JS defers its reaction to a later tick).
void on_drain(void *ud, ql_req_id id, void *tag) {
    auto *route = static_cast<Route *>(ud);
    Instance *in = route->inst;
    uint32_t slot = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(tag)) - 1;
    Slot *s = in->live(slot);
    if (!s || s->id != id || in->tearing_down || !in->on_drain) return;
    if (slot == in->writing_slot) {
        in->drained_in_write = true;
        return;
    }
    napi_handle_scope hs;
    napi_open_handle_scope(in->env, &hs);
    napi_value argv[1];
    napi_create_uint32(in->env, slot, &argv[0]);
    call_js(in, in->on_drain, 1, argv);
    napi_close_handle_scope(in->env, hs);
}

void destroy_route(void *ud) { delete static_cast<Route *>(ud); }

Instance *inst_of(const Napi::CallbackInfo &info) { return static_cast<Instance *>(info.Data()); }

std::string str_arg(const Napi::Value &v) { return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string(); }

Slot *slot_arg(const Napi::CallbackInfo &info) {
    Instance *in = inst_of(info);
    uint32_t i = info[0].As<Napi::Number>().Uint32Value();
    Slot *s = in->live(i);
    if (!s) {
        Napi::Error::New(info.Env(),
                         "quicklane: request data is no longer available (the response was sent or the server closed)")
            .ThrowAsJavaScriptException();
    }
    return s;
}

Napi::Value make_str(napi_env env, ql_str s) {
    napi_value v;
    napi_create_string_utf8(env, s.data, s.len, &v);
    return Napi::Value(env, v);
}

// ---- setup -----------------------------------------------------------------

Napi::Value Init(const Napi::CallbackInfo &info) {
    Instance *in = inst_of(info);
    napi_env env = info.Env();
    if (in->dispatch) napi_delete_reference(env, in->dispatch);
    if (in->on_abort) napi_delete_reference(env, in->on_abort);
    if (in->on_body) napi_delete_reference(env, in->on_body);
    if (in->on_drain) napi_delete_reference(env, in->on_drain);
    in->on_drain = nullptr;
    napi_create_reference(env, info[0], 1, &in->dispatch);
    napi_create_reference(env, info[1], 1, &in->on_abort);
    napi_create_reference(env, info[2], 1, &in->on_body);
    if (info.Length() > 3 && info[3].IsFunction()) napi_create_reference(env, info[3], 1, &in->on_drain);
    return info.Env().Undefined();
}

Napi::Value AppNew(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    auto *box = new AppBox();
    ql_error *err = nullptr;
    ql_status st = ql_app_new(&box->app, &err);
    if (st != QL_OK) {
        delete box;
        throw_ql(env, st, err);
        return env.Undefined();
    }
    return Napi::External<AppBox>::New(env, box, [](Napi::Env, AppBox *b) {
        ql_app_free(&b->app);
        delete b;
    });
}

// route(app, method, pattern, routeId)
Napi::Value AppRoute(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    AppBox *box = info[0].As<Napi::External<AppBox>>().Data();
    std::string method = str_arg(info[1]), pattern = str_arg(info[2]);
    auto *route = new Route{inst_of(info), info[3].As<Napi::Number>().Uint32Value()};
    ql_handler h = QL_HANDLER_INIT;
    h.on_request = on_request;
    h.on_abort = on_abort;
    h.on_body = on_body;  // only ever called after a bodyRead gave QL_E_AGAIN (streamed routes)
    h.on_drain = on_drain;  // only ever called after a respondWrite went over QL_DRAIN_HIGH
    h.user_data = route;
    h.destroy = destroy_route;
    ql_error *err = nullptr;
    ql_status st = ql_app_route(box->app, method.data(), method.size(), pattern.data(), pattern.size(), &h, &err);
    if (st != QL_OK) {
        // Refused routes are not kept: destroy is not called for them.
        delete route;
        throw_ql(env, st, err);
    }
    return env.Undefined();
}

// Fills a response from (status, contentType, headers [n, v, ...], body).
bool fill_response(Napi::Env env, Instance *in, const Napi::CallbackInfo &info, size_t at, ql_response &r,
                   std::vector<ql_header> &hdrs, std::string &type) {
    r.status = info[at].As<Napi::Number>().Int32Value();
    if (info[at + 1].IsString()) {
        type = info[at + 1].As<Napi::String>().Utf8Value();
        r.content_type = type.data();
        r.content_type_len = type.size();
    }
    hdrs.clear();
    in->hdr_store.clear();
    if (info[at + 2].IsArray()) {
        Napi::Array a = info[at + 2].As<Napi::Array>();
        uint32_t n = a.Length();
        in->hdr_store.reserve(n);
        for (uint32_t i = 0; i < n; ++i) in->hdr_store.push_back(a.Get(i).ToString().Utf8Value());
        for (uint32_t i = 0; i + 1 < n; i += 2) {
            const std::string &k = in->hdr_store[i], &v = in->hdr_store[i + 1];
            hdrs.push_back(ql_header{k.data(), k.size(), v.data(), v.size()});
        }
        r.headers = hdrs.data();
        r.header_count = hdrs.size();
    }
    Napi::Value body = info[at + 3];
    if (body.IsString()) {
        size_t len = 0;
        napi_get_value_string_utf8(env, body, nullptr, 0, &len);
        in->scratch.resize(len + 1);
        napi_get_value_string_utf8(env, body, in->scratch.data(), len + 1, &len);
        r.body = in->scratch.data();
        r.body_len = len;
    } else if (body.IsTypedArray()) {
        Napi::TypedArray ta = body.As<Napi::TypedArray>();
        r.body = static_cast<const char *>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
        r.body_len = ta.ByteLength();
    } else if (body.IsArrayBuffer()) {
        Napi::ArrayBuffer ab = body.As<Napi::ArrayBuffer>();
        r.body = static_cast<const char *>(ab.Data());
        r.body_len = ab.ByteLength();
    }
    return true;
}

// static(app, method, pattern, status, contentType, headers, body)
Napi::Value AppStatic(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    AppBox *box = info[0].As<Napi::External<AppBox>>().Data();
    std::string method = str_arg(info[1]), pattern = str_arg(info[2]), type;
    ql_response r = QL_RESPONSE_INIT;
    std::vector<ql_header> hdrs;
    fill_response(env, inst_of(info), info, 3, r, hdrs, type);
    ql_error *err = nullptr;
    ql_status st = ql_app_static(box->app, method.data(), method.size(), pattern.data(), pattern.size(), &r, &err);
    if (st != QL_OK) throw_ql(env, st, err);
    return env.Undefined();
}

// ---- native rules --------------------------------------------------------------

// routeRules(app, method, pattern, max, windowMs, keyHeader, apiKey, cacheTtlMs, cacheVary, bodySchema, paramsSchema,
//            streamBody, maxBodyBytes)
// The options replace the route's rules whole: every caller passes stream_body.
Napi::Value AppRouteRules(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    AppBox *box = info[0].As<Napi::External<AppBox>>().Data();
    std::string method = str_arg(info[1]), pattern = str_arg(info[2]), key = str_arg(info[5]);
    ql_route_options o = QL_ROUTE_OPTIONS_INIT;
    o.rate_limit = info[3].As<Napi::Number>().Uint32Value();
    o.rate_window_ms = info[4].As<Napi::Number>().Uint32Value();
    o.rate_key_header = key.data();
    o.rate_key_header_len = key.size();
    o.require_api_key = info[6].ToBoolean().Value() ? 1 : 0;
    std::string vary = str_arg(info[8]);
    o.cache_ttl_ms = info[7].IsNumber() ? info[7].As<Napi::Number>().Uint32Value() : 0;
    o.cache_vary = vary.data();
    o.cache_vary_len = vary.size();
    std::string body_schema = str_arg(info[9]), params_schema = str_arg(info[10]);
    o.body_schema = body_schema.data();
    o.body_schema_len = body_schema.size();
    o.params_schema = params_schema.data();
    o.params_schema_len = params_schema.size();
    o.stream_body = info[11].ToBoolean().Value() ? 1 : 0;
    o.max_body_bytes = info[12].IsNumber() ? static_cast<uint64_t>(info[12].As<Napi::Number>().Int64Value()) : 0;
    ql_error *err = nullptr;
    ql_status st = ql_app_route_options(box->app, method.data(), method.size(), pattern.data(), pattern.size(), &o, &err);
    if (st != QL_OK) throw_ql(env, st, err);
    return env.Undefined();
}

// rateLimit(app, max, windowMs, keyHeader)
Napi::Value AppRateLimit(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    AppBox *box = info[0].As<Napi::External<AppBox>>().Data();
    std::string key = str_arg(info[3]);
    ql_error *err = nullptr;
    ql_status st = ql_app_rate_limit(box->app, info[1].As<Napi::Number>().Uint32Value(),
                                     info[2].As<Napi::Number>().Uint32Value(), key.data(), key.size(), &err);
    if (st != QL_OK) throw_ql(env, st, err);
    return env.Undefined();
}

// cors(app, origins, methods, headers, expose, credentials, maxAge)
Napi::Value AppCors(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    AppBox *box = info[0].As<Napi::External<AppBox>>().Data();
    std::string origins = str_arg(info[1]), methods = str_arg(info[2]), headers = str_arg(info[3]),
                expose = str_arg(info[4]);
    ql_cors_options o = QL_CORS_OPTIONS_INIT;
    o.origins = origins.data();
    o.origins_len = origins.size();
    o.methods = methods.data();
    o.methods_len = methods.size();
    o.headers = headers.data();
    o.headers_len = headers.size();
    o.expose = expose.data();
    o.expose_len = expose.size();
    o.credentials = info[5].ToBoolean().Value() ? 1 : 0;
    o.max_age_s = info[6].As<Napi::Number>().Uint32Value();
    ql_error *err = nullptr;
    ql_status st = ql_app_cors(box->app, &o, &err);
    if (st != QL_OK) throw_ql(env, st, err);
    return env.Undefined();
}

// apiKeys(app, [keys], header, query)
Napi::Value AppApiKeys(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    AppBox *box = info[0].As<Napi::External<AppBox>>().Data();
    Napi::Array arr = info[1].As<Napi::Array>();
    std::vector<std::string> keys;
    for (uint32_t i = 0; i < arr.Length(); ++i) keys.push_back(str_arg(arr.Get(i)));
    std::vector<ql_str> v;
    for (const auto &k : keys) v.push_back({k.data(), k.size()});
    std::string header = str_arg(info[2]), query = str_arg(info[3]);
    ql_error *err = nullptr;
    ql_status st = ql_app_api_keys(box->app, header.data(), header.size(), query.data(), query.size(), v.data(),
                                   v.size(), &err);
    if (st != QL_OK) throw_ql(env, st, err);
    return env.Undefined();
}

// metrics(app, pattern)
Napi::Value AppMetrics(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    AppBox *box = info[0].As<Napi::External<AppBox>>().Data();
    std::string pattern = str_arg(info[1]);
    ql_error *err = nullptr;
    ql_status st = ql_app_metrics(box->app, pattern.data(), pattern.size(), &err);
    if (st != QL_OK) throw_ql(env, st, err);
    return env.Undefined();
}

// staticDir(app, prefix, folder, maxAgeS, gzip, index | undefined)
Napi::Value AppStaticDir(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    AppBox *box = info[0].As<Napi::External<AppBox>>().Data();
    std::string prefix = str_arg(info[1]), folder = str_arg(info[2]), index = str_arg(info[5]);
    ql_static_dir_options o = QL_STATIC_DIR_OPTIONS_INIT;
    o.max_age_s = info[3].As<Napi::Number>().Uint32Value();
    o.no_gzip = info[4].ToBoolean().Value() ? 0 : 1;
    if (info[5].IsString()) {
        o.index = index.c_str();
        o.index_len = index.size();
    }
    ql_error *err = nullptr;
    ql_status st = ql_app_static_dir(box->app, prefix.data(), prefix.size(), folder.data(), folder.size(), &o, &err);
    if (st != QL_OK) throw_ql(env, st, err);
    return env.Undefined();
}

// compression(app, enabled, minBytes, level)
Napi::Value AppCompression(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    AppBox *box = info[0].As<Napi::External<AppBox>>().Data();
    ql_error *err = nullptr;
    ql_status st = ql_app_compression(box->app, info[1].ToBoolean().Value() ? 1 : 0,
                                      info[2].As<Napi::Number>().Uint32Value(),
                                      info[3].As<Napi::Number>().Uint32Value(), &err);
    if (st != QL_OK) throw_ql(env, st, err);
    return env.Undefined();
}

// accessLog(app, enabled)
Napi::Value AppAccessLog(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    AppBox *box = info[0].As<Napi::External<AppBox>>().Data();
    ql_error *err = nullptr;
    ql_status st = ql_app_access_log(box->app, info[1].ToBoolean().Value() ? 1 : 0, &err);
    if (st != QL_OK) throw_ql(env, st, err);
    return env.Undefined();
}

// ---- servers -----------------------------------------------------------------

// listen(app, host, port, {maxBodyBytes, ..., reusePort}) -> External<ServerBox>
Napi::Value Listen(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    AppBox *app = info[0].As<Napi::External<AppBox>>().Data();
    std::string host = str_arg(info[1]);
    ql_server_options o = QL_SERVER_OPTIONS_INIT;
    if (!host.empty()) {
        o.host = host.data();
        o.host_len = host.size();
    }
    o.port = static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value());
    bool want_reuse = false;
    if (info[3].IsObject()) {
        Napi::Object opt = info[3].As<Napi::Object>();
        auto u32 = [&](const char *k, uint32_t &dst) {
            Napi::Value v = opt.Get(k);
            if (v.IsNumber()) dst = v.As<Napi::Number>().Uint32Value();
        };
        u32("maxHeaderBytes", o.max_header_bytes);
        u32("maxUrlBytes", o.max_url_bytes);
        u32("maxHeaders", o.max_headers);
        u32("headerTimeoutMs", o.header_timeout_ms);
        u32("idleTimeoutMs", o.idle_timeout_ms);
        u32("maxConnections", o.max_connections);
        u32("maxPipeline", o.max_pipeline);
        u32("backlog", o.backlog);
        u32("handlerTimeoutMs", o.handler_timeout_ms);
        u32("bodyWindowBytes", o.body_window_bytes);
        auto u64 = [&](const char *k, uint64_t &dst) {
            Napi::Value v = opt.Get(k);
            if (v.IsNumber()) dst = static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
        };
        u64("maxBodyBytes", o.max_body_bytes);
        u64("maxStreamBodyBytes", o.max_stream_body_bytes);
        want_reuse = opt.Get("reusePort").ToBoolean().Value();
    }
    if (want_reuse) {
        // Appended to ql_server_options by the "reuse_port" proposal; used
        // when the header this addon is built against has it.
        if (!set_reuse_port(o)) {
            Napi::Error::New(env, "quicklane: reusePort is not supported by this build of the core")
                .ThrowAsJavaScriptException();
            return env.Undefined();
        }
    }
    auto *box = new ServerBox();
    box->inst = in;
    ql_error *err = nullptr;
    ql_status st = ql_server_new(app->app, &o, &box->srv, &err);
    if (st == QL_OK) st = ql_server_start_on_loop(box->srv, in->loop, &err);
    if (st != QL_OK) {
        // A failed start may leave a listener closing on the loop: free on
        // the loop thread releases the server once that handle has closed.
        ql_server_free(&box->srv);
        delete box;
        throw_ql(env, st, err);
        return env.Undefined();
    }
    // The JS App keeps this External alive until close() has freed the server.
    in->servers.insert(box);
    // JS keeps the External alive while the server runs (index.js holds
    // listening apps), so a finalizer with a live server only happens at env
    // teardown, which the cleanup hook handles.
    return Napi::External<ServerBox>::New(env, box, [](Napi::Env, ServerBox *b) {
        b->js_alive = false;
        if (!b->srv) {
            b->inst->servers.erase(b);
            delete b;
        }
    });
}

Napi::Value Port(const Napi::CallbackInfo &info) {
    ServerBox *box = info[0].As<Napi::External<ServerBox>>().Data();
    return Napi::Number::New(info.Env(), box->srv ? ql_server_port(box->srv) : 0);
}

void teardown_step(Instance *in);

void on_stopped(void *ud) {
    auto *box = static_cast<ServerBox *>(ud);
    box->stopped = true;
    Instance *in = box->inst;
    if (in->tearing_down) {
        // Inside the core's close callback: free from a timer callback.
        teardown_step(in);
        return;
    }
    napi_ref cb = box->on_closed;
    box->on_closed = nullptr;
    if (!cb) return;
    napi_env env = box->inst->env;
    napi_handle_scope hs;
    napi_open_handle_scope(env, &hs);
    call_js(box->inst, cb, 0, nullptr);
    napi_delete_reference(env, cb);
    napi_close_handle_scope(env, hs);
}

// close(server, timeoutMs, cb): graceful stop on the loop; cb runs once every
// handle is closed. JS then calls free() from a later tick.
Napi::Value Close(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    ServerBox *box = info[0].As<Napi::External<ServerBox>>().Data();
    if (!box->srv || box->stopping) return Napi::Boolean::New(env, false);
    uint32_t timeout = info[1].As<Napi::Number>().Uint32Value();
    napi_create_reference(env, info[2], 1, &box->on_closed);
    ql_error *err = nullptr;
    ql_status st = ql_server_stop_async(box->srv, timeout, on_stopped, box, &err);
    if (st != QL_OK) {
        napi_delete_reference(env, box->on_closed);
        box->on_closed = nullptr;
        throw_ql(env, st, err);
        return env.Undefined();
    }
    box->stopping = true;
    return Napi::Boolean::New(env, true);
}

// free(server) -> [slots]: finishes requests that JS still holds (their
// clients are gone: the stop aborted them), frees the server, and returns the
// slots so JS can mark those requests as gone.
Napi::Value Free(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    ServerBox *box = info[0].As<Napi::External<ServerBox>>().Data();
    (void)in;
    Napi::Array killed = Napi::Array::New(env);
    uint32_t k = 0;
    for (uint32_t slot : free_server(box)) killed.Set(k++, Napi::Number::New(env, slot));
    return killed;
}

Napi::Value Stats(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    ServerBox *box = info[0].As<Napi::External<ServerBox>>().Data();
    Napi::Object o = Napi::Object::New(env);
    ql_server_stats s = QL_SERVER_STATS_INIT;
    if (box->srv && ql_server_stats_get(box->srv, &s, nullptr) == QL_OK) {
        o.Set("connectionsOpen", Napi::Number::New(env, double(s.connections_open)));
        o.Set("connectionsTotal", Napi::Number::New(env, double(s.connections_total)));
        o.Set("requestsTotal", Napi::Number::New(env, double(s.requests_total)));
        o.Set("requestsInFlight", Napi::Number::New(env, double(s.requests_in_flight)));
    }
    return o;
}

// ---- answering -----------------------------------------------------------------

// respond(slot, status, contentType, headers, body) -> ql_status
Napi::Value Respond(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    uint32_t i = info[0].As<Napi::Number>().Uint32Value();
    Slot *s = in->live(i);
    if (!s) return Napi::Number::New(env, QL_E_GONE);
    ql_response r = QL_RESPONSE_INIT;
    std::vector<ql_header> hdrs;
    std::string type;
    fill_response(env, in, info, 1, r, hdrs, type);
    ql_error *err = nullptr;
    ql_status st = ql_respond(s->srv, s->id, &r, &err);
    if (st == QL_E_INVALID) {
        // Bad fields: the request stays unanswered and valid; JS reports it.
        std::string msg = err ? ql_error_message(err) : "invalid response";
        ql_error_free(&err);
        Napi::Error::New(env, "quicklane: " + msg).ThrowAsJavaScriptException();
        return env.Undefined();
    }
    ql_error_free(&err);
    if (st != QL_E_ALREADY_SENT) in->release(i);
    return Napi::Number::New(env, st);
}

// ---- streamed answers ------------------------------------------------------------

// Throws the core's message for QL_E_INVALID (bad head fields, more bytes than
// declared): the request stays as it was, JS decides.
void throw_invalid(Napi::Env env, ql_error *err, const char *what) {
    std::string msg = err ? ql_error_message(err) : what;
    ql_error_free(&err);
    Napi::Error e = Napi::Error::New(env, "quicklane: " + msg);
    e.Set("code", Napi::String::New(env, "QL_E_INVALID"));
    e.ThrowAsJavaScriptException();
}

// respondStart(slot, status, contentType, headers, firstChunk, length) -> ql_status
// The head of a streamed answer, with the first bytes when given (one write:
// head and first chunk go out together). length >= 0: Content-Length (to HEAD,
// the head only); -1: chunked (close-delimited for HTTP/1.0). The core copies
// everything before it returns. Throws on bad fields (QL_E_INVALID; the
// request stays unanswered); QL_E_GONE frees the slot.
Napi::Value RespondStart(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    uint32_t i = info[0].As<Napi::Number>().Uint32Value();
    Slot *s = in->live(i);
    if (!s) return Napi::Number::New(env, QL_E_GONE);
    ql_response r = QL_RESPONSE_INIT;
    std::vector<ql_header> hdrs;
    std::string type;
    fill_response(env, in, info, 1, r, hdrs, type);
    double length = info[5].IsNumber() ? info[5].As<Napi::Number>().DoubleValue() : -1;
    ql_error *err = nullptr;
    ql_status st = length >= 0 ? ql_respond_start_sized(s->srv, s->id, &r, static_cast<uint64_t>(length), &err)
                               : ql_respond_start(s->srv, s->id, &r, &err);
    if (st == QL_E_INVALID) {
        throw_invalid(env, err, "invalid streamed response head");
        return env.Undefined();
    }
    ql_error_free(&err);
    if (st == QL_OK)
        s->streaming = true;
    else if (st != QL_E_ALREADY_SENT)
        in->release(i);
    return Napi::Number::New(env, st);
}

// respondWrite(slot, Buffer | string) -> 0 (QL_OK), 1 (QL_OK, and the core now
// holds more than QL_DRAIN_HIGH bytes for the socket: wait for onDrain(slot)),
// or a negative ql_status: QL_E_GONE (the client left; the slot is freed: stop
// producing), QL_E_STATE (not started / already ended), QL_E_INVALID (more
// than the declared Content-Length; nothing was written). The bytes are
// copied by the core before it returns; a zero-length write only reports.
Napi::Value RespondWrite(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    uint32_t i = info[0].As<Napi::Number>().Uint32Value();
    Slot *s = in->live(i);
    if (!s) return Napi::Number::New(env, QL_E_GONE);
    const char *data = nullptr;
    size_t len = 0;
    Napi::Value chunk = info[1];
    if (chunk.IsString()) {
        napi_get_value_string_utf8(env, chunk, nullptr, 0, &len);
        in->scratch.resize(len + 1);
        napi_get_value_string_utf8(env, chunk, in->scratch.data(), len + 1, &len);
        data = in->scratch.data();
    } else if (chunk.IsTypedArray()) {
        Napi::TypedArray ta = chunk.As<Napi::TypedArray>();
        data = static_cast<const char *>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
        len = ta.ByteLength();
    } else if (chunk.IsArrayBuffer()) {
        Napi::ArrayBuffer ab = chunk.As<Napi::ArrayBuffer>();
        data = static_cast<const char *>(ab.Data());
        len = ab.ByteLength();
    }
    uint64_t buffered = 0;
    in->writing_slot = i;
    in->drained_in_write = false;
    ql_status st = ql_respond_write(s->srv, s->id, data, len, &buffered, nullptr);
    in->writing_slot = kNoSlot;
    if (st == QL_E_GONE) {
        in->release(i);
        return Napi::Number::New(env, st);
    }
    if (st != QL_OK) return Napi::Number::New(env, st);
    return Napi::Number::New(env, buffered > QL_DRAIN_HIGH && !in->drained_in_write ? 1 : 0);
}

// respondEnd(slot) -> ql_status: the last chunk (a sized answer short of its
// length closes the connection: the client sees it broken). Frees the slot.
Napi::Value RespondEnd(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    uint32_t i = info[0].As<Napi::Number>().Uint32Value();
    Slot *s = in->live(i);
    if (!s) return Napi::Number::New(env, QL_E_GONE);
    ql_status st = ql_respond_end(s->srv, s->id, nullptr);
    in->release(i);  // QL_OK, QL_E_GONE; QL_E_STATE only for an answer that was already ended
    return Napi::Number::New(env, st);
}

// respondAbort(slot) -> ql_status: cuts the answer (no last chunk, the
// connection closes; unanswered: closes without an answer). Frees the slot.
Napi::Value RespondAbort(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    uint32_t i = info[0].As<Napi::Number>().Uint32Value();
    Slot *s = in->live(i);
    if (!s) return Napi::Number::New(env, QL_E_GONE);
    ql_status st = ql_respond_abort(s->srv, s->id, nullptr);
    in->release(i);
    return Napi::Number::New(env, st);
}

// finishError(slot): last-resort 500 when JS could not build an answer.
Napi::Value Finish500(const Napi::CallbackInfo &info) {
    finish_as_500(inst_of(info), info[0].As<Napi::Number>().Uint32Value());
    return info.Env().Undefined();
}

// ---- request accessors (valid until answered) ---------------------------------

Napi::Value ReqMethod(const Napi::CallbackInfo &info) {
    Slot *s = slot_arg(info);
    return s ? make_str(info.Env(), ql_request_method(s->req)) : info.Env().Undefined();
}
Napi::Value ReqTarget(const Napi::CallbackInfo &info) {
    Slot *s = slot_arg(info);
    return s ? make_str(info.Env(), ql_request_target(s->req)) : info.Env().Undefined();
}
Napi::Value ReqPath(const Napi::CallbackInfo &info) {
    Slot *s = slot_arg(info);
    return s ? make_str(info.Env(), ql_request_path(s->req)) : info.Env().Undefined();
}
Napi::Value ReqRoute(const Napi::CallbackInfo &info) {
    Slot *s = slot_arg(info);
    return s ? make_str(info.Env(), ql_request_route(s->req)) : info.Env().Undefined();
}
Napi::Value ReqQueryString(const Napi::CallbackInfo &info) {
    Slot *s = slot_arg(info);
    return s ? make_str(info.Env(), ql_request_query_string(s->req)) : info.Env().Undefined();
}
Napi::Value ReqIp(const Napi::CallbackInfo &info) {
    Slot *s = slot_arg(info);
    return s ? make_str(info.Env(), ql_request_client_ip(s->req)) : info.Env().Undefined();
}
Napi::Value ReqAborted(const Napi::CallbackInfo &info) {
    Instance *in = inst_of(info);
    Slot *s = in->live(info[0].As<Napi::Number>().Uint32Value());
    return Napi::Boolean::New(info.Env(), !s || s->aborted);
}

Napi::Value ReqParams(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Slot *s = slot_arg(info);
    if (!s) return env.Undefined();
    Napi::Object o = Napi::Object::New(env);
    size_t n = ql_request_param_count(s->req);
    for (size_t i = 0; i < n; ++i) {
        ql_str k, v;
        if (ql_request_param_at(s->req, i, &k, &v)) o.Set(make_str(env, k), make_str(env, v));
    }
    return o;
}

// Flat [name, value, ...] arrays: JS folds repeats (query → arrays).
Napi::Value ReqQuery(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Slot *s = slot_arg(info);
    if (!s) return env.Undefined();
    size_t n = ql_request_query_count(s->req);
    Napi::Array a = Napi::Array::New(env, n * 2);
    for (size_t i = 0; i < n; ++i) {
        ql_str k, v;
        ql_request_query_at(s->req, i, &k, &v);
        a.Set(uint32_t(2 * i), make_str(env, k));
        a.Set(uint32_t(2 * i + 1), make_str(env, v));
    }
    return a;
}

// Header names lower-cased (ASCII tokens); values as latin1, like node:http.
Napi::Value ReqHeaders(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Slot *s = slot_arg(info);
    if (!s) return env.Undefined();
    size_t n = ql_request_header_count(s->req);
    Napi::Array a = Napi::Array::New(env, n * 2);
    char lower[256];
    for (size_t i = 0; i < n; ++i) {
        ql_str k, v;
        ql_request_header_at(s->req, i, &k, &v);
        size_t kl = k.len < sizeof lower ? k.len : sizeof lower;
        for (size_t j = 0; j < kl; ++j) {
            char c = k.data[j];
            lower[j] = (c >= 'A' && c <= 'Z') ? char(c + 32) : c;
        }
        napi_value name, value;
        napi_create_string_latin1(env, lower, kl, &name);
        napi_create_string_latin1(env, v.data, v.len, &value);
        a.Set(uint32_t(2 * i), Napi::Value(env, name));
        a.Set(uint32_t(2 * i + 1), Napi::Value(env, value));
    }
    return a;
}

Napi::Value ReqHeader(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Slot *s = slot_arg(info);
    if (!s) return env.Undefined();
    std::string name = str_arg(info[1]);
    ql_str v;
    if (!ql_request_header(s->req, name.data(), name.size(), &v)) return env.Undefined();
    napi_value value;
    napi_create_string_latin1(env, v.data, v.len, &value);
    return Napi::Value(env, value);
}

// A copy of the body (the borrowed bytes go away once answered).
Napi::Value ReqBody(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Slot *s = slot_arg(info);
    if (!s) return env.Undefined();
    ql_str b = ql_request_body(s->req);
    return Napi::Buffer<char>::Copy(env, b.data, b.len);
}

// The body decoded as UTF-8 text (for json()).
Napi::Value ReqBodyText(const Napi::CallbackInfo &info) {
    Slot *s = slot_arg(info);
    return s ? make_str(info.Env(), ql_request_body(s->req)) : info.Env().Undefined();
}

// ---- streamed request bodies ----------------------------------------------------

// bodyRead(slot, max) -> Buffer | null | status: non-blocking reads (timeout 0:
// this is the loop thread) until `max` bytes, QL_E_AGAIN, the end or an error.
// Bytes come first; a later call reports what stopped the loop (the end and
// errors stay readable until the request is finished). null = the body ended;
// QL_E_AGAIN = nothing yet, on_body follows; QL_E_GONE / QL_E_TOO_LARGE /
// QL_E_INVALID = failed (the core has answered, or the client left).
Napi::Value BodyRead(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    Slot *s = in->live(info[0].As<Napi::Number>().Uint32Value());
    if (!s) return Napi::Number::New(env, QL_E_GONE);
    size_t cap = info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
    cap = cap < 4096 ? 4096 : cap > (1u << 20) ? (1u << 20) : cap;
    if (in->body_buf.size() < cap) in->body_buf.resize(cap);
    size_t got = 0;
    ql_status st = QL_OK;
    while (got < cap) {
        size_t n = 0;
        st = ql_request_body_read(s->srv, s->id, in->body_buf.data() + got, cap - got, 0, &n, nullptr);
        if (st != QL_OK || n == 0) break;
        got += n;
    }
    if (got) return Napi::Buffer<char>::Copy(env, in->body_buf.data(), got);
    if (st == QL_OK) return env.Null();
    return Napi::Number::New(env, st);
}

// bodyDrain(slot) -> status: after an abort notice, drops what is buffered and
// says why the body stopped: QL_OK (it had ended), QL_E_AGAIN (the client left
// mid-body: the core has nothing more), or the body's error.
Napi::Value BodyDrain(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    Slot *s = in->live(info[0].As<Napi::Number>().Uint32Value());
    if (!s) return Napi::Number::New(env, QL_E_GONE);
    if (in->body_buf.size() < 65536) in->body_buf.resize(65536);
    ql_status st;
    size_t n = 0;
    do st = ql_request_body_read(s->srv, s->id, in->body_buf.data(), in->body_buf.size(), 0, &n, nullptr);
    while (st == QL_OK && n);
    return Napi::Number::New(env, st);
}

// The declared Content-Length; -1 when chunked, 0 when there is no body.
Napi::Value ReqContentLength(const Napi::CallbackInfo &info) {
    Slot *s = slot_arg(info);
    return s ? Napi::Number::New(info.Env(), double(ql_request_content_length(s->req))) : info.Env().Undefined();
}

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
    uint32_t slot = in->alloc(req);
    ql_request_set_tag(req, reinterpret_cast<void *>(static_cast<uintptr_t>(slot) + 1));
    if (in->tearing_down || !in->ws_upgrade) {
        finish_as_500(in, slot);
        return;
    }
    napi_handle_scope hs;
    napi_open_handle_scope(in->env, &hs);
    napi_value argv[2];
    napi_create_uint32(in->env, route->id, &argv[0]);
    napi_create_uint32(in->env, slot, &argv[1]);
    call_js(in, in->ws_upgrade, 2, argv);
    napi_close_handle_scope(in->env, hs);
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
    napi_handle_scope hs;
    napi_open_handle_scope(in->env, &hs);
    napi_value argv[1];
    napi_create_uint32(in->env, s, &argv[0]);
    ws_call(in, in->ws_drain, 1, argv);
    napi_close_handle_scope(in->env, hs);
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

// wsInit(upgrade, open, message, drain, close, ping, pong)
Napi::Value WsInit(const Napi::CallbackInfo &info) {
    Instance *in = inst_of(info);
    napi_env env = info.Env();
    napi_ref *refs[] = {&in->ws_upgrade, &in->ws_open, &in->ws_message, &in->ws_drain,
                        &in->ws_close, &in->ws_ping, &in->ws_pong};
    for (size_t i = 0; i < 7; ++i) {
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

void throw_type(Napi::Env env, ql_error *err, const char *what) {
    std::string msg = err ? ql_error_message(err) : what;
    ql_error_free(&err);
    Napi::TypeError e = Napi::TypeError::New(env, "quicklane: " + msg);
    e.Set("code", Napi::String::New(env, "QL_E_INVALID"));
    e.ThrowAsJavaScriptException();
}

// wsAccept(reqSlot, protocol | undefined, [name, value, ...] | undefined, token) -> ql_status.
// QL_E_INVALID throws (the request stays unanswered); otherwise the slot is freed.
Napi::Value WsAccept(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    uint32_t i = info[0].As<Napi::Number>().Uint32Value();
    Slot *s = in->live(i);
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
        throw_type(env, err, "invalid WebSocket accept");
        return env.Undefined();
    }
    ql_error_free(&err);
    if (in->live(i) && in->slots[i].id == id) in->release(i);
    return Napi::Number::New(env, st);
}

// wsSend(ws, data, binary) -> the message's size in bytes when sent (QL_WS_SENT), -1
// queued above the mark (QL_WS_QUEUED), -2 dropped (QL_WS_DROPPED), or QL_E_GONE (-6);
// throws for a text message that is not UTF-8 (or data of another type).
Napi::Value WsSend(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    WsEntry *e = in->ws_live(info[0].As<Napi::Number>().Uint32Value());
    if (!e) return Napi::Number::New(env, QL_E_GONE);
    const char *data = nullptr;
    size_t len = 0;
    if (!bytes_of(env, info[1], in->scratch, &data, &len)) {
        Napi::TypeError::New(env, "quicklane: a WebSocket message is a string, a Buffer, a TypedArray, a DataView or an ArrayBuffer")
            .ThrowAsJavaScriptException();
        return env.Undefined();
    }
    ql_error *err = nullptr;
    ql_status st = ql_ws_send(e->srv, e->id, data, len, info[2].ToBoolean().Value() ? QL_WS_BINARY : QL_WS_TEXT, &err);
    if (st == QL_E_INVALID) {
        throw_type(env, err, "invalid WebSocket message");
        return env.Undefined();
    }
    ql_error_free(&err);
    double r = st == QL_WS_SENT ? static_cast<double>(len) : st == QL_WS_QUEUED ? -1 : st == QL_WS_DROPPED ? -2 : st;
    return Napi::Number::New(env, r);
}

// wsClose(ws, code, reason) -> ql_status (code 0: cut). Throws RangeError for a code or reason the core refuses.
Napi::Value WsClose(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    WsEntry *e = in->ws_live(info[0].As<Napi::Number>().Uint32Value());
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
        std::string msg = err ? ql_error_message(err) : "invalid close code or reason";
        ql_error_free(&err);
        Napi::RangeError::New(env, "quicklane: " + msg).ThrowAsJavaScriptException();
        return env.Undefined();
    }
    ql_error_free(&err);
    return Napi::Number::New(env, st);
}

// wsBuffered(ws) -> bytes not yet taken by the kernel, or -1 once closed.
Napi::Value WsBuffered(const Napi::CallbackInfo &info) {
    Instance *in = inst_of(info);
    WsEntry *e = in->ws_live(info[0].As<Napi::Number>().Uint32Value());
    uint64_t n = 0;
    if (!e || ql_ws_buffered(e->srv, e->id, &n, nullptr) != QL_OK) return Napi::Number::New(info.Env(), -1);
    return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// wsSubscribe(ws, topic, on) -> ql_status
Napi::Value WsSubscribe(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    WsEntry *e = in->ws_live(info[0].As<Napi::Number>().Uint32Value());
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
        throw_type(env, err, "invalid published message");
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

// Frees every stopped server; when none is left running, lets Node go on.
void teardown_step(Instance *in) {
    if (!in->teardown_timer_live) {
        uv_timer_init(in->loop, &in->teardown_timer);
        in->teardown_timer.data = in;
        in->teardown_timer_live = true;
    }
    uv_timer_start(
        &in->teardown_timer,
        [](uv_timer_t *t) {
            auto *in = static_cast<Instance *>(t->data);
            std::vector<ServerBox *> boxes(in->servers.begin(), in->servers.end());
            bool running = false;
            for (ServerBox *b : boxes) {
                if (b->srv && b->stopped)
                    free_server(b);
                else if (b->srv)
                    running = true;
            }
            if (running) return;  // the next on_stopped restarts the timer
            uv_close(reinterpret_cast<uv_handle_t *>(t), [](uv_handle_t *h) {
                auto *in = static_cast<Instance *>(h->data);
                in->teardown_timer_live = false;
                napi_async_cleanup_hook_handle hook = in->teardown_hook;
                in->teardown_hook = nullptr;
                bool release = in->data_released;
                if (hook) napi_remove_async_cleanup_hook(hook);
                if (release) delete in;
            });
        },
        0, 0);
}

void on_env_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
    auto *in = static_cast<Instance *>(arg);
    in->tearing_down = true;
    bool any = false;
    for (ServerBox *b : in->servers) {
        if (!b->srv) continue;
        any = true;
        // A close() in progress finishes here too (its JS callback is skipped).
        if (!b->stopping && !b->stopped) {
            b->stopping = true;
            if (ql_server_stop_async(b->srv, 0, on_stopped, b, nullptr) != QL_OK) b->stopped = true;
        }
    }
    if (!any) {
        napi_remove_async_cleanup_hook(handle);
        return;
    }
    in->teardown_hook = handle;
    teardown_step(in);
}

void cleanup_instance(napi_env env, void *data, void *) {
    auto *in = static_cast<Instance *>(data);
    if (in->async_ctx) napi_async_destroy(env, in->async_ctx);
    in->async_ctx = nullptr;
    if (in->teardown_hook) {
        in->data_released = true;  // servers are still closing: freed by the hook
        return;
    }
    delete in;
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
    auto *in = new Instance();
    in->env = env;
    uv_loop_t *loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    in->loop = loop;
    napi_value resource = Napi::Object::New(env), name = Napi::String::New(env, "quicklane.request");
    napi_async_init(env, resource, name, &in->async_ctx);
    napi_set_instance_data(env, in, cleanup_instance, nullptr);
    napi_add_async_cleanup_hook(env, on_env_teardown, in, nullptr);

    auto fn = [&](const char *n, Napi::Function::Callback cb) {
        exports.Set(n, Napi::Function::New(env, cb, n, in));
    };
    fn("init", Init);
    fn("appNew", AppNew);
    fn("route", AppRoute);
    fn("static", AppStatic);
    fn("routeRules", AppRouteRules);
    fn("rateLimit", AppRateLimit);
    fn("cors", AppCors);
    fn("apiKeys", AppApiKeys);
    fn("metrics", AppMetrics);
    fn("accessLog", AppAccessLog);
    fn("staticDir", AppStaticDir);
    fn("compression", AppCompression);
    fn("listen", Listen);
    fn("port", Port);
    fn("close", Close);
    fn("free", Free);
    fn("stats", Stats);
    fn("respond", Respond);
    fn("finish500", Finish500);
    fn("respondStart", RespondStart);
    fn("respondWrite", RespondWrite);
    fn("respondEnd", RespondEnd);
    fn("respondAbort", RespondAbort);
    fn("method", ReqMethod);
    fn("target", ReqTarget);
    fn("path", ReqPath);
    fn("route_", ReqRoute);
    fn("queryString", ReqQueryString);
    fn("ip", ReqIp);
    fn("aborted", ReqAborted);
    fn("params", ReqParams);
    fn("query", ReqQuery);
    fn("headers", ReqHeaders);
    fn("header", ReqHeader);
    fn("body", ReqBody);
    fn("bodyText", ReqBodyText);
    fn("bodyRead", BodyRead);
    fn("bodyDrain", BodyDrain);
    fn("contentLength", ReqContentLength);
    fn("wsInit", WsInit);
    fn("wsRoute", WsRoute);
    fn("wsAccept", WsAccept);
    fn("wsSend", WsSend);
    fn("wsClose", WsClose);
    fn("wsBuffered", WsBuffered);
    fn("wsSubscribe", WsSubscribe);
    fn("publish", Publish);
    fn("liveHandles", LiveHandles);
    exports.Set("version", Napi::String::New(env, ql_version()));
    exports.Set("abiVersion", Napi::Number::New(env, ql_abi_version()));
    exports.Set("uvVersion", Napi::String::New(env, uv_version_string()));
    exports.Set("reusePort", Napi::Boolean::New(env, kHasReusePort<ql_server_options>));
    exports.Set("drainHigh", Napi::Number::New(env, QL_DRAIN_HIGH));
    exports.Set("drainLow", Napi::Number::New(env, QL_DRAIN_LOW));
    return exports;
}

}  // namespace

NODE_API_MODULE(quicklane, InitModule)
