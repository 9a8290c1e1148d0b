#include "request.hpp"

#include <unistd.h>

#include "worker.hpp"

namespace ql {

ql_req_id Request::id() const {
    return (static_cast<uint64_t>(worker->index) << 56) | (static_cast<uint64_t>(slot) << 32) |
           (generation() & 0xffffffffu);
}

void Request::close_file() {
    if (file_fd >= 0) ::close(file_fd);
    file_fd = -1;
    file_off = file_end = 0;
}

void Request::reset_for_reuse() {
    conn = nullptr;
    next = nullptr;
    ready = false;
    dispatched = false;
    keep_alive = true;
    upgrade = false;
    head_only = false;
    http_minor = 1;
    method_name = "";
    route = nullptr;
    tag = nullptr;
    rule_headers.clear();
    resp_status = 0;
    host_answered = false;
    t0_ns = 0;
    cache_key.clear();
    cache_lead = false;
    cache_wait = false;
    cached.reset();
    file.reset();
    close_file();
    // Large one-off buffers are given back; typical ones keep their capacity.
    if (arena.capacity() > 64 * 1024) std::string().swap(arena);
    else arena.clear();
    if (out_body.capacity() > 64 * 1024) std::string().swap(out_body);
    else out_body.clear();
    target = path = query = body = Span{};
    headers.clear();
    params.clear();
    queries.clear();
    head_bytes = 0;
    last_was_value = false;
    client_ip[0] = 0;
    client_ip_len = 0;
    client_port = 0;
    out_head.clear();
    body_ref = {};
    pending_status = 200;
    pending_type.clear();
    pending_headers.clear();
    ws_accept = false;
    ws_subprotocol.clear();
    ws_tag = nullptr;
    hijack.reset();
    ws_deflate = false;
    stream_mode = stream_end = stream_posted = false;
    stream_sized = stream_abort = stream_bare = false;
    stream_length = stream_total = 0;
    drain_armed.store(false, std::memory_order_relaxed);
    if (body_buf.capacity() > 64 * 1024) std::string().swap(body_buf);
    else body_buf.clear();
    body_rpos = 0;
    body_unread.store(0, std::memory_order_relaxed);
    body_paused.store(false, std::memory_order_relaxed);
    body_end = false;
    body_error = 0;
    body_armed = body_read_once = body_dropped = body_dropped_seen = false;
    body_stream = fifo_done = expect_continue = false;
    body_limit = body_seen = 0;
    content_length = 0;
    buffered_rpos = 0;
    stream_in.clear();
    stream_buffered.store(0, std::memory_order_relaxed);
    streaming = stream_done = head_sent = false;
    stream_out.clear();
    stream_out_data = inflight_data = 0;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool percent_decode(std::string_view in, bool plus_is_space, std::string &out) {
    out.clear();
    bool high = false;
    for (size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return false;
            int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
            if (h < 0 || l < 0) return false;
            c = static_cast<char>(h * 16 + l);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        high |= static_cast<unsigned char>(c) >= 0x80;
        out.push_back(c);
    }
    return !high || valid_utf8(out);
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
        if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
        if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
        if (x != y) return false;
    }
    return true;
}

std::string_view find_header(const Request &r, std::string_view name, bool *found) {
    for (const SpanPair &h : r.headers) {
        if (iequals(r.view(h.name), name)) {
            if (found) *found = true;
            return r.view(h.value);
        }
    }
    if (found) *found = false;
    return {};
}

}  // namespace ql
