// Shared by the Node addon's translation units: addon.cc (apps, servers,
// requests and answers) and ws.cc (WebSockets). Everything here is private to
// the addon (hidden visibility); only the C ABI (quicklane.h) is used.
#pragma once

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "quicklane.h"

namespace qlnode {

constexpr uint32_t kNoSlot = 0xffffffffu;

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

// Takes the head of a free list threaded through v's next_free (or appends
// an entry): its index.
template <class T>
uint32_t take_entry(std::vector<T> &v, uint32_t &free_head) {
    if (free_head == kNoSlot) {
        v.emplace_back();
        return static_cast<uint32_t>(v.size() - 1);
    }
    uint32_t i = free_head;
    free_head = v[i].next_free;
    return i;
}

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
        uint32_t i = take_entry(slots, free_head);
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
             ws_ping = nullptr, ws_pong = nullptr, ws_gone = nullptr;
    uint32_t ws_alloc(ql_server *srv, ql_ws_id id) {
        uint32_t i = take_entry(ws, ws_free);
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

// Throws the core's error as a JS Error with code = ql_status_name(st).
void throw_ql(napi_env env, ql_status st, ql_error *err);
// Throws the core's message for QL_E_INVALID (code "QL_E_INVALID"), or `what`
// when it gave none, as an Error, a TypeError or a RangeError.
enum class JsError { Error, Type, Range };
void throw_invalid(Napi::Env env, ql_error *err, const char *what, JsError kind = JsError::Error);
// Calls a JS function from a libuv callback (handle scope + callback scope).
void call_js(Instance *in, napi_ref fn_ref, size_t argc, napi_value *argv);
// call_js with numbers (a route id, a slot, ...) inside a handle scope: the
// core's notices to JS.
void call_js_numbers(Instance *in, napi_ref fn_ref, std::initializer_list<double> args);
// A request handed to a JS route: its slot (kept as the request's tag), or
// kNoSlot when JS is gone (the request was answered 500).
uint32_t take_request(Instance *in, ql_request *req);
// Answers a request JS cannot answer with a 500 (or frees one whose client
// left) and releases its slot.
void finish_as_500(Instance *in, uint32_t slot);

inline Instance *inst_of(const Napi::CallbackInfo &info) { return static_cast<Instance *>(info.Data()); }

inline std::string str_arg(const Napi::Value &v) {
    return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

inline Napi::Value make_str(napi_env env, ql_str s) {
    napi_value v;
    napi_create_string_utf8(env, s.data, s.len, &v);
    return Napi::Value(env, v);
}

// The request slot named by info[0] (its index in *index), or nullptr once
// the request is finished.
inline Slot *slot_of(const Napi::CallbackInfo &info, uint32_t *index) {
    *index = info[0].As<Napi::Number>().Uint32Value();
    return inst_of(info)->live(*index);
}

// Sets exports[name] = a JS function calling cb, with `in` as its data.
inline void export_fns(Napi::Env env, Napi::Object exports, Instance *in,
                       std::initializer_list<std::pair<const char *, Napi::Function::Callback>> fns) {
    for (const auto &[name, cb] : fns) exports.Set(name, Napi::Function::New(env, cb, name, in));
}

// The WebSocket functions (ws.cc): wsInit, wsRoute, wsAccept, wsSend, ...
void register_ws(Napi::Env env, Napi::Object exports, Instance *in);

}  // namespace qlnode
