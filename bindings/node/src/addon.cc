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
#include <cstdio>
#include <cstring>

#include "addon.hpp"

namespace qlnode {

// Shared with ws.cc (addon.hpp).

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

void call_js_numbers(Instance *in, napi_ref fn_ref, std::initializer_list<double> args) {
    napi_handle_scope hs;
    napi_open_handle_scope(in->env, &hs);
    napi_value argv[4];
    size_t n = 0;
    for (double a : args)
        if (n < 4) napi_create_double(in->env, a, &argv[n++]);
    call_js(in, fn_ref, n, argv);
    napi_close_handle_scope(in->env, hs);
}

uint32_t take_request(Instance *in, ql_request *req) {
    uint32_t slot = in->alloc(req);
    ql_request_set_tag(req, reinterpret_cast<void *>(static_cast<uintptr_t>(slot) + 1));
    if (!in->tearing_down) return slot;
    finish_as_500(in, slot);  // JS is gone: nobody can answer
    return kNoSlot;
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

// Throws the core's message for QL_E_INVALID (bad head fields, more bytes than
// declared, a bad WebSocket message or accept): the request (or socket) stays
// as it was, JS decides.
void throw_invalid(Napi::Env env, ql_error *err, const char *what, JsError kind) {
    std::string msg = "quicklane: " + std::string(err ? ql_error_message(err) : what);
    ql_error_free(&err);
    Napi::Error e = kind == JsError::Type    ? Napi::TypeError::New(env, msg)
                    : kind == JsError::Range ? Napi::RangeError::New(env, msg)
                                             : Napi::Error::New(env, msg);
    e.Set("code", Napi::String::New(env, "QL_E_INVALID"));
    e.ThrowAsJavaScriptException();
}

namespace {

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

void on_request(void *ud, ql_request *req) {
    auto *route = static_cast<Route *>(ud);
    uint32_t slot = take_request(route->inst, req);
    if (slot != kNoSlot) call_js_numbers(route->inst, route->inst->dispatch, {double(route->id), double(slot)});
}

void on_abort(void *ud, ql_req_id id, void *tag) {
    auto *route = static_cast<Route *>(ud);
    Instance *in = route->inst;
    uint32_t slot = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(tag)) - 1;
    Slot *s = in->live(slot);
    if (!s || s->id != id) return;
    s->aborted = true;
    if (in->tearing_down) return;
    call_js_numbers(in, in->on_abort, {double(slot)});
}

// A streamed body of the request in `tag`'s slot can be read again (after a
// bodyRead that gave QL_E_AGAIN). May run inside the core's read callback.
void on_body(void *ud, ql_req_id id, void *tag) {
    auto *route = static_cast<Route *>(ud);
    Instance *in = route->inst;
    uint32_t slot = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(tag)) - 1;
    Slot *s = in->live(slot);
    if (!s || s->id != id || in->tearing_down || !in->on_body) return;
    call_js_numbers(in, in->on_body, {double(slot)});
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
    call_js_numbers(in, in->on_drain, {double(slot)});
}

void destroy_route(void *ud) { delete static_cast<Route *>(ud); }

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
    uint32_t i;
    Slot *s = slot_of(info, &i);
    if (!s) return Napi::Number::New(env, QL_E_GONE);
    ql_response r = QL_RESPONSE_INIT;
    std::vector<ql_header> hdrs;
    std::string type;
    fill_response(env, in, info, 1, r, hdrs, type);
    ql_error *err = nullptr;
    ql_status st = ql_respond(s->srv, s->id, &r, &err);
    if (st == QL_E_INVALID) {
        // Bad fields: the request stays unanswered and valid; JS reports it.
        throw_invalid(env, err, "invalid response");
        return env.Undefined();
    }
    ql_error_free(&err);
    if (st != QL_E_ALREADY_SENT) in->release(i);
    return Napi::Number::New(env, st);
}

// ---- streamed answers ------------------------------------------------------------

// respondStart(slot, status, contentType, headers, firstChunk, length) -> ql_status
// The head of a streamed answer, with the first bytes when given (one write:
// head and first chunk go out together). length >= 0: Content-Length (to HEAD,
// the head only); -1: chunked (close-delimited for HTTP/1.0). The core copies
// everything before it returns. Throws on bad fields (QL_E_INVALID; the
// request stays unanswered); QL_E_GONE frees the slot.
Napi::Value RespondStart(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Instance *in = inst_of(info);
    uint32_t i;
    Slot *s = slot_of(info, &i);
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
    uint32_t i;
    Slot *s = slot_of(info, &i);
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
    uint32_t i;
    Slot *s = slot_of(info, &i);
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
    uint32_t i;
    Slot *s = slot_of(info, &i);
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

    export_fns(env, exports, in, {
        {"init", Init},
        {"appNew", AppNew},
        {"route", AppRoute},
        {"static", AppStatic},
        {"routeRules", AppRouteRules},
        {"rateLimit", AppRateLimit},
        {"cors", AppCors},
        {"apiKeys", AppApiKeys},
        {"metrics", AppMetrics},
        {"accessLog", AppAccessLog},
        {"staticDir", AppStaticDir},
        {"compression", AppCompression},
        {"listen", Listen},
        {"port", Port},
        {"close", Close},
        {"free", Free},
        {"stats", Stats},
        {"respond", Respond},
        {"finish500", Finish500},
        {"respondStart", RespondStart},
        {"respondWrite", RespondWrite},
        {"respondEnd", RespondEnd},
        {"respondAbort", RespondAbort},
        {"method", ReqMethod},
        {"target", ReqTarget},
        {"path", ReqPath},
        {"route_", ReqRoute},
        {"queryString", ReqQueryString},
        {"ip", ReqIp},
        {"aborted", ReqAborted},
        {"params", ReqParams},
        {"query", ReqQuery},
        {"headers", ReqHeaders},
        {"header", ReqHeader},
        {"body", ReqBody},
        {"bodyText", ReqBodyText},
        {"bodyRead", BodyRead},
        {"bodyDrain", BodyDrain},
        {"contentLength", ReqContentLength},
    });
    register_ws(env, exports, in);
    exports.Set("version", Napi::String::New(env, ql_version()));
    exports.Set("abiVersion", Napi::Number::New(env, ql_abi_version()));
    exports.Set("uvVersion", Napi::String::New(env, uv_version_string()));
    exports.Set("reusePort", Napi::Boolean::New(env, kHasReusePort<ql_server_options>));
    exports.Set("drainHigh", Napi::Number::New(env, QL_DRAIN_HIGH));
    exports.Set("drainLow", Napi::Number::New(env, QL_DRAIN_LOW));
    return exports;
}

}  // namespace
}  // namespace qlnode

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return qlnode::InitModule(env, exports); }

NODE_API_MODULE(quicklane, InitAddon)
