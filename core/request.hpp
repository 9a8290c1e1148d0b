// One HTTP request and, later, its response. Requests come from a per-worker
// pool and keep their buffers' capacity across reuse, so a steady-state
// request allocates nothing. All bytes of a request (target, headers, body,
// decoded params and query) live in its own arena, not in the connection, so
// the request outlives its client when a host still holds it.
#pragma once

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "quicklane.h"
#include "utf8.hpp"
#include "ws/ws_deflate.hpp"
#include "router.hpp"
#include "rules.hpp"
#include "static_files.hpp"

namespace ql {

class Worker;
class Http1;
struct WsRoute;

struct Span {
    uint32_t off = 0;
    uint32_t len = 0;
};

struct SpanPair {
    Span name;
    Span value;
};

struct ParamRef {
    const std::string *name;  // owned by the route (lives as long as the server)
    Span value;
};

// State word: generation << 8 | flags. The generation changes when a slot is
// reused, so a stale ql_req_id can never reach a newer request.
enum : uint64_t {
    RS_ANSWERED = 1,  // the host (or the core) has claimed the one answer
    RS_GONE = 2,      // the client left or the server stopped
};

struct Request {
    // identity (fixed for the slot's life)
    Worker *worker = nullptr;
    uint32_t slot = 0;
    std::atomic<uint64_t> state{0};

    // owned by the loop thread
    Http1 *conn = nullptr;  // its HTTP/1.1 connection (loop thread)
    Request *next = nullptr;  // FIFO of the connection, or free list
    bool ready = false;       // response bytes are in out_head/out_body
    bool dispatched = false;  // handed to a host handler
    uint64_t dispatched_ms = 0;  // loop time of the hand-off (handler timeout)
    bool keep_alive = true;
    bool upgrade = false;     // an Upgrade request (llhttp stopped after it)
    bool head_only = false;   // HEAD, 204, 304: no body bytes
    bool in_use = false;
    uint8_t http_minor = 1;
    const char *method_name = "";
    const Route *route = nullptr;
    void *tag = nullptr;
    // Native rules: headers they add to the answer (CORS, RateLimit-*), the
    // status that went out, who answered, and when the request began.
    std::string rule_headers;
    int resp_status = 0;
    bool host_answered = false;
    uint64_t t0_ns = 0;
    // Response cache: the key; leader (the host answers for every waiter) or
    // waiter (answered with the leader's answer); a hit's stored answer.
    std::string cache_key;
    bool cache_lead = false;
    bool cache_wait = false;
    std::shared_ptr<const CachedAnswer> cached;
    std::shared_ptr<const FileEntry> file;  // a static file being written
    // A file sent from disk (sendfile): the open file and the byte range
    // [file_off, file_end) still to send once the head has gone out.
    int file_fd = -1;
    uint64_t file_off = 0;
    uint64_t file_end = 0;

    // request bytes
    std::string arena;
    Span target, path, query, body;
    std::vector<SpanPair> headers;
    std::vector<ParamRef> params;
    std::vector<SpanPair> queries;
    uint32_t head_bytes = 0;
    bool last_was_value = false;
    char client_ip[46] = {0};
    uint8_t client_ip_len = 0;
    uint16_t client_port = 0;

    // response
    std::string out_head;
    std::string out_body;
    std::string_view body_ref;  // static answers point at the route's bytes
    // Filled by ql_respond (any thread) before the loop formats the head.
    int32_t pending_status = 200;
    std::string pending_type;
    std::string pending_headers;
    // A WebSocket upgrade accepted (ql_ws_accept): the 101 goes out, then the
    // connection switches protocol with these.
    bool ws_accept = false;
    std::string ws_subprotocol;
    void *ws_tag = nullptr;
    // ql_request_hijack: no answer; the connection becomes a raw byte stream
    // of this (per-connection) route once the answers before it went out.
    std::shared_ptr<const WsRoute> hijack;
    bool ws_deflate = false;  // permessage-deflate negotiated: ws_deflate_params
    DeflateParams ws_deflate_params;

    // Streaming answers (ql_respond_start / _write / _end). stream_mu guards
    // the host side (stream_*) and generation changes, so a host never
    // appends to a request the loop has recycled.
    std::mutex stream_mu;
    bool stream_mode = false;    // host: the answer is streamed
    bool stream_end = false;     // host: ql_respond_end was called
    bool stream_posted = false;  // host: the loop has been told about new bytes
    std::string stream_in;       // host: bytes not yet taken by the loop
    std::atomic<uint64_t> stream_buffered{0};  // taken or not, not yet written
    bool streaming = false;      // loop: head formatted for a streamed answer
    bool stream_done = false;    // loop: the last chunk is framed
    bool head_sent = false;      // loop: the head went out
    std::string stream_out;      // loop: framed bytes waiting for a write
    size_t stream_out_data = 0;  // loop: payload bytes in stream_out
    size_t inflight_data = 0;    // loop: payload bytes in the write under way
    bool stream_sized = false;   // host: a declared Content-Length (no chunked framing)
    uint64_t stream_length = 0;  // host: that length
    uint64_t stream_total = 0;   // host: payload bytes given so far
    bool stream_abort = false;   // host: ql_respond_abort: cut the connection
    bool stream_bare = false;    // host: aborted before any answer was started
    std::atomic<bool> drain_armed{false};  // a write left > QL_DRAIN_HIGH buffered

    // Streamed request bodies (routes with stream_body). The loop appends
    // what arrives to body_buf; hosts read it with ql_request_body_read from
    // any thread. stream_mu guards body_buf/body_rpos/body_end/body_error/
    // body_armed/body_read_once; body_cv wakes blocked readers.
    std::condition_variable body_cv;
    std::string body_buf;        // both: bytes from body_rpos on are unread
    size_t body_rpos = 0;
    std::atomic<size_t> body_unread{0};  // loop: the backpressure check
    // loop: reads are paused over this body (seq_cst with body_unread: a
    // host read that brings body_unread under half the window and sees it
    // set posts the resume; the loop re-checks body_unread after setting it).
    std::atomic<bool> body_paused{false};
    bool body_end = false;       // both: the whole body has arrived
    int32_t body_error = 0;      // both: QL_E_GONE / _TOO_LARGE / _INVALID once it failed
    bool body_armed = false;     // both: a read gave QL_E_AGAIN; notify once
    bool body_read_once = false; // both: the host has read (100-continue is owed then)
    bool body_dropped = false;   // both: bytes arrived after the answer and were dropped
    bool body_dropped_seen = false;  // loop: body_dropped has been set
    bool body_stream = false;    // loop: dispatched when the head was complete
    bool fifo_done = false;      // loop: answered and written while the body still came
    bool expect_continue = false;  // loop: Expect: 100-continue not answered yet
    uint64_t body_limit = 0;     // loop: 0 = none
    uint64_t body_seen = 0;      // loop: body bytes received
    int64_t content_length = 0;  // -1: chunked
    // A buffered body read through ql_request_body_read: how far (host side).
    size_t buffered_rpos = 0;

    uint64_t generation() const { return state.load(std::memory_order_acquire) >> 8; }
    ql_req_id id() const;

    std::string_view view(Span s) const { return {arena.data() + s.off, s.len}; }
    Span append(const char *p, size_t n) {
        Span s{static_cast<uint32_t>(arena.size()), static_cast<uint32_t>(n)};
        arena.append(p, n);
        return s;
    }
    void reset_for_reuse();
    void close_file();
    Request() = default;
    Request(const Request &) = delete;
    Request &operator=(const Request &) = delete;
    ~Request() { close_file(); }
};

// A streamed body failed (client gone, too large, malformed): readers get
// `code` (the first failure wins) and blocked ones wake. Any thread. True
// when a reader was waiting for on_body.
bool body_failed(Request &r, int32_t code);

// The value of a hex digit, or -1.
inline int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decoding into `out`; returns false on a bad escape or invalid UTF-8.
bool percent_decode(std::string_view in, bool plus_is_space, std::string &out);
bool iequals(std::string_view a, std::string_view b);
// s without the spaces and tabs around it (a header value's OWS).
std::string_view trim(std::string_view s);
// A request header's value by case-insensitive name (the first), or empty.
std::string_view find_header(const Request &r, std::string_view name, bool *found = nullptr);

}  // namespace ql
