// fuzz_request: bytes in -> a real connection of a real server -> response bytes out.
//
// The server runs on a libuv loop this file owns (ql_server_start_on_loop, one
// worker), so everything happens on one thread and is deterministic: the client
// end of a loopback TCP connection writes the input in pieces, and after each
// piece the loop runs once, so the server reads exactly that piece (parsing
// across reads is exercised). Then the client half-closes and the loop runs
// until the server closes the connection.
//
// Input layout: byte 0, bits 0-2 = number of split points n; the next n bytes
// are the sizes (1..256) of the first n pieces; the rest is the byte stream.
// Byte 0, bits 3-4 choose how the client ends: 0 = waits for every answer
// (held "late" requests are answered once the server is quiet), then resets;
// 1 = resets before the late answers (aborts); 2 = half-closes right after
// sending (the server treats it as a disconnect, so the last answer may be cut
// short); 3 = as 0. The client's receive buffer is small, so big answers
// (GET /big/...) go out through partial and queued writes.
//
// Invariants checked (not only crashes):
//  - every byte the server sends parses as a sequence of HTTP/1.x responses:
//    status line, well-formed header fields, consistent framing (one
//    Content-Length, or chunked, or close-delimited as the last answer), no
//    body for HEAD / 204 / 304, nothing after a "Connection: close" answer;
//  - no more final answers than requests (per an independent strict llhttp
//    parse of the same bytes, plus one error answer);
//  - no head with a line that starts with SP or HTAB (obs-fold: CRLF then SP
//    or HTAB before the empty line) is ever dispatched; it is a 4xx and close;
//  - a handler only sees requests that llhttp completed, in order, with valid
//    method, path, header names and values, Host rules, body length, UTF-8
//    parameters and query pairs;
//  - a handler's answer built from valid request data is accepted;
//  - an unanswered request is aborted at most once; late answers return OK or
//    QL_E_GONE (after an abort) and nothing else;
//  - after every input no connection and no request is left in the server,
//    and a fresh connection is still served (GET /ping).
#include "quicklane.h"
#include "model_utf8.hpp"

#include <arpa/inet.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

// What the server sent for the current input, shown when a check fails.
const std::string *g_out = nullptr;

[[noreturn]] void check_failed(const char *what, const char *file, int line) {
    std::fprintf(stderr, "fuzz_request: invariant failed at %s:%d: %s\n", file, line, what);
    if (g_out) {
        std::string e;
        for (unsigned char c : *g_out) {
            if (c == '\n') e += "\\n\n";
            else if (c == '\r') e += "\\r";
            else if (c < 0x20 || c >= 0x7f) { char b[8]; std::snprintf(b, sizeof b, "\\x%02x", c); e += b; }
            else e += static_cast<char>(c);
        }
        std::fprintf(stderr, "---- server sent (%zu bytes):\n%s\n----\n", g_out->size(), e.c_str());
    }
    std::abort();
}
#define FZ_CHECK(c)                                          \
    do {                                                     \
        if (!(c)) check_failed(#c, __FILE__, __LINE__);      \
    } while (0)

constexpr uint64_t kMaxBody = 4096;

std::string_view sv(ql_str s) { return s.data ? std::string_view(s.data, s.len) : std::string_view(); }

bool tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}
bool token(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s)
        if (!tchar(c)) return false;
    return true;
}
bool field_value_ok(std::string_view v) {
    for (unsigned char c : v)
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    return true;
}
bool ieq(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
        if (x >= 'A' && x <= 'Z') x += 32;
        if (y >= 'A' && y <= 'Z') y += 32;
        if (x != y) return false;
    }
    return true;
}


// ---- the independent parse of the request bytes ---------------------------

struct Msg {
    std::string method, url, body;
    int minor = 1;
    std::vector<std::pair<std::string, std::string>> headers;
    bool bare_lf = false;  // a line of the head ends in LF without CR
    bool folded = false;   // a line of the head starts with SP or HTAB (obs-fold)
    bool partial = false;  // a streamed body the handler did not read to its end
};

// True when a line of the head that starts at `from` (its request line) begins
// with SP or HTAB before the empty line that ends the head. Field values
// cannot hold an LF, so the first empty line is the head's end.
bool head_has_fold(const char *from, const char *end) {
    for (const char *c = from; c < end;) {
        const char *nl = static_cast<const char *>(std::memchr(c, '\n', static_cast<size_t>(end - c)));
        if (!nl || nl + 1 >= end) return false;
        const char *next = nl + 1;
        if (*next == ' ' || *next == '\t') return true;
        if (*next == '\n' || (*next == '\r' && next + 1 < end && next[1] == '\n')) return false;
        c = next;
    }
    return false;
}

std::string_view trim_ows(std::string_view v) {
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    return v;
}

struct Mirror {
    llhttp_t p;
    llhttp_settings_t s;
    std::vector<Msg> msgs;
    std::vector<Msg> heads;  // every complete head, its message complete or not (streamed routes)
    Msg cur;
    bool in_field = false, in_trailer = false, value_first = false;
    std::string_view input;
    const char *head_start = nullptr, *line_end = nullptr;

    static Mirror &of(llhttp_t *p) { return *static_cast<Mirror *>(p->data); }
    void run(std::string_view in) {
        llhttp_settings_init(&s);
        s.on_message_begin = [](llhttp_t *p) {
            of(p).cur = Msg{};
            of(p).in_field = false;
            of(p).in_trailer = false;
            of(p).head_start = of(p).line_end = nullptr;
            return 0;
        };
        s.on_url = [](llhttp_t *p, const char *at, size_t len) {
            if (of(p).cur.url.empty()) of(p).head_start = at;
            of(p).cur.url.append(at, len);
            return 0;
        };
        s.on_version = [](llhttp_t *p, const char *at, size_t len) {
            of(p).line_end = at + len;
            return 0;
        };
        // Field boundaries come from the *_complete callbacks, so an empty
        // value is still a field of its own.
        s.on_header_field = [](llhttp_t *p, const char *at, size_t len) {
            Mirror &m = of(p);
            if (m.in_trailer) return 0;  // trailer fields are not header fields
            if (!m.in_field) m.cur.headers.emplace_back(), m.in_field = true;
            m.cur.headers.back().first.append(at, len);
            return 0;
        };
        s.on_header_field_complete = [](llhttp_t *p) {
            Mirror &m = of(p);
            if (m.in_trailer) return 0;
            if (!m.in_field) m.cur.headers.emplace_back();
            m.in_field = false;
            m.value_first = true;
            return 0;
        };
        s.on_header_value = [](llhttp_t *p, const char *at, size_t len) {
            Mirror &m = of(p);
            if (m.in_trailer) return 0;
            // llhttp reports an empty value at the start of the next line, after its CRLF.
            m.line_end = m.value_first && len == 0 ? at - 2 : at + len;
            m.value_first = false;
            of(p).cur.headers.back().second.append(at, len);
            return 0;
        };
        s.on_body = [](llhttp_t *p, const char *at, size_t len) {
            of(p).cur.body.append(at, len);
            return 0;
        };
        s.on_headers_complete = [](llhttp_t *p) {
            Mirror &m = of(p);
            if (m.head_start && m.line_end) {
                // From the target to the empty line that ends the head.
                const char *end = std::min(m.line_end + 4, m.input.data() + m.input.size());
                for (const char *c = m.head_start; c < end; ++c)
                    if (*c == '\n' && (c == m.input.data() || c[-1] != '\r')) m.cur.bare_lf = true;
            }
            if (m.head_start) m.cur.folded = head_has_fold(m.head_start, m.input.data() + m.input.size());
            m.in_trailer = true;
            of(p).cur.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
            // The server's version rule (RFC 9112 2.3): major 1 only, 1.2 and up served as 1.1.
            if (p->http_major != 1) return -1;
            of(p).cur.minor = std::min<int>(p->http_minor, 1);
            of(p).heads.push_back(of(p).cur);
            return 0;
        };
        s.on_message_complete = [](llhttp_t *p) {
            of(p).msgs.push_back(std::move(of(p).cur));
            return llhttp_should_keep_alive(p) && !p->upgrade ? 0 : static_cast<int>(HPE_PAUSED);
        };
        llhttp_init(&p, HTTP_REQUEST, &s);
        p.lenient_flags |= LENIENT_VERSION;  // as the server: any x.y parses, the rule is above
        p.data = this;
        input = in;
        llhttp_execute(&p, in.data(), in.size());
    }
};

// ---- the server ------------------------------------------------------------

enum Kind : intptr_t { K_HELLO, K_ECHO, K_STREAM, K_FILES, K_DEFER, K_LATE, K_HDR, K_BIG, K_UPLOAD };

struct Harness {
    uv_loop_t loop;
    ql_server *server = nullptr;
    uint16_t port = 0;
    std::vector<Msg> seen;  // requests handed to handlers during this input
    std::vector<ql_req_id> deferred, late, aborted;
    ql_queue *queue = nullptr;                  // queued delivery (Python, Go)
    std::vector<ql_req_id> queue_gone, queue_aborted;
    // Streamed bodies being read (K_UPLOAD): id → index into `seen`.
    std::vector<std::pair<ql_req_id, size_t>> uploads;
};
Harness *H = nullptr;

void respond_or_die(ql_req_id id, const ql_response *r) {
    ql_error *err = nullptr;
    ql_status st = ql_respond(H->server, id, r, &err);
    if (st != QL_OK) std::fprintf(stderr, "ql_respond: %s\n", err ? ql_error_message(err) : "?");
    ql_error_free(&err);
    FZ_CHECK(st == QL_OK);
}

// Everything a handler may rely on about a request that reached it.
void check_request(ql_request *req, bool streamed = false) {
    std::string_view method = sv(ql_request_method(req)), path = sv(ql_request_path(req));
    FZ_CHECK(token(method));
    FZ_CHECK(!path.empty() && path[0] == '/');
    FZ_CHECK(path.find_first_of("?#") == std::string_view::npos);
    FZ_CHECK(!sv(ql_request_target(req)).empty());
    int minor = ql_request_http_minor(req);
    FZ_CHECK(minor == 0 || minor == 1);
    int hosts = 0, lengths = 0, te = 0;
    std::string_view cl;
    size_t nh = ql_request_header_count(req);
    for (size_t i = 0; i < nh; ++i) {
        ql_str n, v;
        FZ_CHECK(ql_request_header_at(req, i, &n, &v) == 1);
        std::string_view name = sv(n), value = sv(v);
        FZ_CHECK(token(name));
        FZ_CHECK(field_value_ok(value));
        FZ_CHECK(value.empty() || (value.back() != ' ' && value.back() != '\t'));
        FZ_CHECK(value.empty() || (value.front() != ' ' && value.front() != '\t'));
        if (ieq(name, "host")) ++hosts;
        if (ieq(name, "content-length")) ++lengths, cl = value;
        if (ieq(name, "transfer-encoding")) ++te;
    }
    FZ_CHECK(hosts <= 1);
    if (minor == 1) FZ_CHECK(hosts == 1);
    FZ_CHECK(lengths <= 1);
    FZ_CHECK(!(lengths && te));
    std::string_view body = sv(ql_request_body(req));
    FZ_CHECK(body.size() <= kMaxBody);
    if (streamed) {
        // Read as it arrives: the buffered view is empty; the length is checked at the end.
        FZ_CHECK(body.empty());
        int64_t declared = ql_request_content_length(req);
        FZ_CHECK(lengths ? declared >= 0 : te ? declared == -1 : declared == 0);
    } else if (lengths) {
        uint64_t n = 0;
        FZ_CHECK(!cl.empty());
        for (char c : cl) {
            FZ_CHECK(c >= '0' && c <= '9');
            n = n * 10 + static_cast<uint64_t>(c - '0');
            FZ_CHECK(n <= kMaxBody);
        }
        FZ_CHECK(body.size() == n);
    }
    if (!lengths && !te) FZ_CHECK(body.empty());
    size_t np = ql_request_param_count(req);
    FZ_CHECK(np <= 16);
    for (size_t i = 0; i < np; ++i) {
        ql_str n, v;
        FZ_CHECK(ql_request_param_at(req, i, &n, &v));
        FZ_CHECK(n.len > 0);
        FZ_CHECK(model_utf8(sv(v)));
    }
    size_t nq = ql_request_query_count(req);
    for (size_t i = 0; i < nq; ++i) {
        ql_str n, v;
        FZ_CHECK(ql_request_query_at(req, i, &n, &v));
        FZ_CHECK(model_utf8(sv(n)) && model_utf8(sv(v)));
    }
    Msg seen{std::string(method), std::string(sv(ql_request_target(req))), std::string(body), minor, {}};
    for (size_t i = 0; i < nh; ++i) {
        ql_str n, v;
        ql_request_header_at(req, i, &n, &v);
        seen.headers.emplace_back(std::string(sv(n)), std::string(sv(v)));
    }
    H->seen.push_back(std::move(seen));
}

int status_from_query(ql_request *req) {
    ql_str v;
    if (!ql_request_query(req, "status", 6, &v) || v.len != 3) return 200;
    int s = 0;
    for (size_t i = 0; i < 3; ++i) {
        if (v.data[i] < '0' || v.data[i] > '9') return 200;
        s = s * 10 + (v.data[i] - '0');
    }
    return s >= 200 && s <= 599 ? s : 200;
}

void pump_upload(ql_req_id id);

void on_request(void *ud, ql_request *req) {
    Kind kind = static_cast<Kind>(reinterpret_cast<intptr_t>(ud));
    check_request(req, kind == K_UPLOAD);
    ql_req_id id = ql_request_id(req);
    if (kind == K_UPLOAD) {
        ql_str x{nullptr, 0};
        ql_request_param_at(req, 0, nullptr, &x);
        H->seen.back().partial = true;
        if (x.len && x.data[0] == 'e') {
            // Answered before reading: the body is dropped (or the connection closes).
            ql_response r = QL_RESPONSE_INIT;
            r.status = 403;
            respond_or_die(id, &r);
            return;
        }
        H->seen.back().body.clear();
        H->uploads.emplace_back(id, H->seen.size() - 1);
        pump_upload(id);
        return;
    }
    ql_response r = QL_RESPONSE_INIT;
    ql_str v{nullptr, 0};
    switch (kind) {
    case K_UPLOAD:
        break;
    case K_HELLO:
        ql_request_param_at(req, 0, nullptr, &v);
        r.status = status_from_query(req);
        r.content_type = "application/json";
        r.content_type_len = 16;
        r.body = v.data;
        r.body_len = v.len;
        respond_or_die(id, &r);
        {
            // A second answer is refused, never sent.
            ql_error *err = nullptr;
            ql_status st = ql_respond(H->server, id, &r, &err);
            ql_error_free(&err);
            FZ_CHECK(st == QL_E_ALREADY_SENT || st == QL_E_GONE);
        }
        break;
    case K_ECHO: {
        ql_str b = ql_request_body(req);
        r.body = b.data;
        r.body_len = b.len;
        respond_or_die(id, &r);
        break;
    }
    case K_FILES:
        ql_request_param_at(req, 0, nullptr, &v);
        r.status = status_from_query(req);
        r.body = v.data;
        r.body_len = v.len;
        respond_or_die(id, &r);
        break;
    case K_STREAM: {
        ql_request_param_at(req, 0, nullptr, &v);
        r.status = status_from_query(req);
        r.content_type = "text/plain";
        r.content_type_len = 10;
        r.body = "start;";
        r.body_len = 6;
        ql_error *err = nullptr;
        FZ_CHECK(ql_respond_start(H->server, id, &r, &err) == QL_OK);
        // Long names stream big chunks (queued writes behind a small client buffer).
        static const std::string big(24 * 1024, 'b');
        for (size_t i = 0; i < v.len % 4; ++i) {
            std::string_view c = v.len > 8 ? std::string_view(big) : std::string_view(v.data, v.len);
            FZ_CHECK(ql_respond_write(H->server, id, c.data(), c.size(), nullptr, &err) == QL_OK);
        }
        FZ_CHECK(ql_respond_end(H->server, id, &err) == QL_OK);
        ql_status again = ql_respond_end(H->server, id, &err);
        FZ_CHECK(again == QL_E_STATE || again == QL_E_GONE);
        ql_error_free(&err);
        break;
    }
    case K_BIG: {
        static const std::string big(256 * 1024, 'x');
        ql_request_param_at(req, 0, nullptr, &v);
        r.body = big.data();
        r.body_len = std::min<size_t>(big.size(), v.len * 16 * 1024);
        respond_or_die(id, &r);
        break;
    }
    case K_DEFER:
        H->deferred.push_back(id);
        break;
    case K_LATE:
        H->late.push_back(id);
        break;
    case K_HDR: {
        // Valid request field values must make valid response fields.
        ql_header h{"X-Echo", 6, "", 0};
        if (ql_request_header(req, "x-echo", 6, &v)) h.value = v.data, h.value_len = v.len;
        ql_str t;
        if (ql_request_header(req, "x-type", 6, &t)) r.content_type = t.data, r.content_type_len = t.len;
        r.headers = &h;
        r.header_count = 1;
        respond_or_die(id, &r);
        break;
    }
    }
}

// Reads what a streamed body has (never waiting: this is the loop thread);
// at its end answers with the byte count.
void pump_upload(ql_req_id id) {
    auto it = std::find_if(H->uploads.begin(), H->uploads.end(), [&](auto &u) { return u.first == id; });
    if (it == H->uploads.end()) return;  // finished already (a stale notification)
    char buf[700];
    for (;;) {
        size_t n = 0;
        ql_status st = ql_request_body_read(H->server, id, buf, sizeof buf, 0, &n, nullptr);
        if (st == QL_OK && n) {
            FZ_CHECK(n <= sizeof buf);
            H->seen[it->second].body.append(buf, n);
            FZ_CHECK(H->seen[it->second].body.size() <= kMaxBody);
            continue;
        }
        if (st == QL_E_AGAIN) return;  // on_body calls back
        size_t idx = it->second;
        H->uploads.erase(it);
        if (st == QL_OK) {
            H->seen[idx].partial = false;  // the whole body: compared with llhttp's
            std::string count = std::to_string(H->seen[idx].body.size());
            ql_response r = QL_RESPONSE_INIT;
            r.body = count.data();
            r.body_len = count.size();
            respond_or_die(id, &r);
        } else {
            // Gone, too large or malformed: answered (QL_E_GONE) with the held ones.
            FZ_CHECK(st == QL_E_GONE || st == QL_E_TOO_LARGE || st == QL_E_INVALID);
            H->late.push_back(id);
        }
        return;
    }
}

void on_body(void *, ql_req_id id, void *) { pump_upload(id); }

void on_abort(void *, ql_req_id id, void *) {
    for (ql_req_id a : H->aborted) FZ_CHECK(a != id);  // at most one abort per request
    H->aborted.push_back(id);
    auto it = std::find_if(H->uploads.begin(), H->uploads.end(), [&](auto &u) { return u.first == id; });
    if (it != H->uploads.end()) {
        H->uploads.erase(it);
        H->late.push_back(id);  // answered (QL_E_GONE) with the held ones
    }
}

bool was_aborted(ql_req_id id) {
    for (ql_req_id a : H->aborted)
        if (a == id) return true;
    return false;
}

// Answers held requests; after an abort, the answer must say QL_E_GONE.
void answer(std::vector<ql_req_id> &ids) {
    for (ql_req_id id : ids) {
        ql_response r = QL_RESPONSE_INIT;
        r.body = "later";
        r.body_len = 5;
        ql_error *err = nullptr;
        bool aborted = was_aborted(id);
        ql_status st = ql_respond(H->server, id, &r, &err);
        ql_error_free(&err);
        FZ_CHECK(st == QL_OK || st == QL_E_GONE);
        FZ_CHECK(aborted == (st == QL_E_GONE));  // GONE exactly after an abort
    }
    ids.clear();
}

void must(ql_status st, ql_error *err) {
    if (st == QL_OK) return;
    std::fprintf(stderr, "fuzz_request setup: %s\n", err ? ql_error_message(err) : "?");
    std::abort();
}

void add_route(ql_app *app, const char *method, const char *pattern, Kind k) {
    ql_handler h = QL_HANDLER_INIT;
    h.on_request = on_request;
    h.on_abort = on_abort;
    h.on_body = on_body;
    h.user_data = reinterpret_cast<void *>(static_cast<intptr_t>(k));
    ql_error *err = nullptr;
    must(ql_app_route(app, method, std::strlen(method), pattern, std::strlen(pattern), &h, &err), err);
}

void add_static(ql_app *app, const char *method, const char *pattern, int status, const char *body) {
    ql_response r = QL_RESPONSE_INIT;
    r.status = status;
    r.content_type = "application/json";
    r.content_type_len = 16;
    r.body = body;
    r.body_len = std::strlen(body);
    ql_error *err = nullptr;
    must(ql_app_static(app, method, std::strlen(method), pattern, std::strlen(pattern), &r, &err), err);
}

void setup() {
    H = new Harness();
    if (uv_loop_init(&H->loop) != 0) std::abort();
    ql_app *app = nullptr;
    ql_error *err = nullptr;
    must(ql_app_new(&app, &err), err);
    add_static(app, "GET", "/ping", 200, "{\"message\":\"pong\"}");
    add_static(app, "GET", "/empty", 204, "");
    add_static(app, "GET", "/users/me", 200, "{\"me\":true}");
    add_static(app, "GET", "/assets/{file...}", 200, "asset");
    add_static(app, "POST", "/static/{x}", 201, "{\"created\":1}");
    add_route(app, "GET", "/hello/{name}", K_HELLO);
    add_route(app, "GET", "/users/{id}/posts/{post}", K_HELLO);
    add_route(app, "DELETE", "/users/{id}/posts/{post}", K_HELLO);
    add_route(app, "POST", "/echo", K_ECHO);
    add_route(app, "PUT", "/echo", K_ECHO);
    add_route(app, "GET", "/stream/{n}", K_STREAM);
    add_route(app, "GET", "/files/{path...}", K_FILES);
    add_route(app, "OPTIONS", "/{all...}", K_FILES);
    add_route(app, "GET", "/defer/{x}", K_DEFER);
    add_route(app, "POST", "/defer/{x}", K_DEFER);
    add_route(app, "GET", "/late/{x}", K_LATE);
    add_route(app, "GET", "/hdr", K_HDR);
    add_route(app, "GET", "/big/{n}", K_BIG);
    // Streamed bodies, read in small pieces as they arrive; a limit to cross.
    add_route(app, "POST", "/up/{x}", K_UPLOAD);
    add_route(app, "PUT", "/up/{x}", K_UPLOAD);
    for (const char *m : {"POST", "PUT"}) {
        ql_route_options ro = QL_ROUTE_OPTIONS_INIT;
        ro.stream_body = 1;
        ro.max_body_bytes = kMaxBody;
        must(ql_app_route_options(app, m, std::strlen(m), "/up/{x}", 7, &ro, &err), err);
    }
    must(ql_queue_new(&H->queue, &err), err);
    must(ql_app_route_queue(app, "GET", 3, "/q/{x}", 6, H->queue, H, nullptr, &err), err);
    must(ql_app_route_queue(app, "POST", 4, "/q/{x}", 6, H->queue, H, nullptr, &err), err);
    ql_server_options o = QL_SERVER_OPTIONS_INIT;
    o.workers = 1;
    o.max_header_bytes = 2048;
    o.max_url_bytes = 512;
    o.max_body_bytes = kMaxBody;
    o.max_headers = 16;
    o.max_pipeline = 4;
    must(ql_server_new(app, &o, &H->server, &err), err);
    ql_app_free(&app);
    must(ql_server_start_on_loop(H->server, &H->loop, &err), err);
    H->port = ql_server_port(H->server);
}

// ---- the client end ----------------------------------------------------------

void pump();

// A refused or failed connect is retried while the loop runs (the machine's
// ephemeral ports are shared); one that keeps failing is a finding.
int connect_client() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(H->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int last = 0;
    for (int attempt = 0; attempt < 200; ++attempt) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        FZ_CHECK(fd >= 0);
        int rcv = 4096;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
        if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (attempt > 0) std::fprintf(stderr, "fuzz_request: connect succeeded after %d retries (%s)\n", attempt, std::strerror(last));
            return fd;
        }
        last = errno;
        close(fd);
        pump();
        usleep(1000);
    }
    std::fprintf(stderr, "fuzz_request: connect: %s\n", std::strerror(last));
    check_failed("the server stopped accepting connections", __FILE__, __LINE__);
}

// Closes with a reset: the server has closed already, and the reset clears its
// TIME_WAIT, so millions of short connections do not pile up.
void close_client(int fd) {
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

// Reads what is there; eof once the server closed (FIN or reset).
bool read_avail(int fd, std::string &out) {
    char buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            out.append(buf, static_cast<size_t>(n));
            continue;
        }
        if (n == 0) return true;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
        if (errno == EINTR) continue;
        return true;  // ECONNRESET: the server closed with unread input
    }
}

// Takes queued requests and abort notices as a host thread would, and answers
// each request at once.
void poll_queue() {
    ql_event ev[16];
    for (;;) {
        size_t n = 0;
        ql_error *err = nullptr;
        FZ_CHECK(ql_queue_poll(H->queue, ev, 16, 0, &n, &err) == QL_OK);
        if (n == 0) return;
        for (size_t i = 0; i < n; ++i) {
            if (ev[i].kind == QL_EVENT_ABORT) {
                for (ql_req_id a : H->queue_aborted) FZ_CHECK(a != ev[i].id);
                H->queue_aborted.push_back(ev[i].id);
                continue;
            }
            FZ_CHECK(ev[i].kind == QL_EVENT_REQUEST);
            FZ_CHECK(ev[i].server == H->server && ev[i].route_data == H);
            check_request(ev[i].request);
            ql_response r = QL_RESPONSE_INIT;
            ql_str b = ql_request_body(ev[i].request);
            r.status = status_from_query(ev[i].request);
            r.body = b.data;
            r.body_len = b.len;
            ql_status st = ql_respond(H->server, ev[i].id, &r, &err);
            ql_error_free(&err);
            FZ_CHECK(st == QL_OK || st == QL_E_GONE);
            if (st == QL_E_GONE) H->queue_gone.push_back(ev[i].id);
        }
    }
}

void pump() {
    uv_run(&H->loop, UV_RUN_NOWAIT);
    poll_queue();
    answer(H->deferred);
}

// Runs the loop until the server is quiet (nothing new for a few turns) or has
// closed the connection; returns true once closed.
bool settle(int fd, std::string &out) {
    int quiet = 0;
    for (int i = 0; i < 5000; ++i) {
        size_t before = out.size();
        pump();
        bool eof = read_avail(fd, out);
        if (eof) {
            for (int k = 0; k < 4; ++k) pump();  // let the server finish its close callbacks
            return true;
        }
        quiet = out.size() == before && H->deferred.empty() ? quiet + 1 : 0;
        if (quiet >= 4) return false;
    }
    check_failed("the server kept sending for 5000 loop turns", __FILE__, __LINE__);
}

// ---- response checks ---------------------------------------------------------

struct Resp {
    int status = 0;
    bool close = false;
};

size_t find_crlf(std::string_view s, size_t from) { return s.find("\r\n", from); }

// Parses one response at `pos`; head_request: the answer carries no body.
// Returns false when `pos` is at the end. With `cut` (the client half-closed,
// so the server may have dropped the rest), a response that is incomplete at
// the end of the bytes ends the parse instead of failing it.
struct Cut {};
// head_request: 1 = the request was HEAD, 0 = it was not, 2 = unknown (the
// answer to a request llhttp did not complete).
bool parse_response(std::string_view s, size_t &pos, int head_request, bool eof, bool cut, Resp &out) {
    if (pos == s.size()) return false;
    std::string_view rest = s.substr(pos);
#define FZ_NEED(c)              \
    do {                        \
        if (cut && !(c)) throw Cut{}; \
        FZ_CHECK(c);            \
    } while (0)
    FZ_NEED(rest.size() >= 13);
    FZ_CHECK(rest.substr(0, 9) == "HTTP/1.1 " || rest.substr(0, 9) == "HTTP/1.0 ");
    for (int i = 9; i < 12; ++i) FZ_CHECK(rest[i] >= '0' && rest[i] <= '9');
    out.status = (rest[9] - '0') * 100 + (rest[10] - '0') * 10 + (rest[11] - '0');
    FZ_CHECK(out.status >= 100 && out.status <= 599);
    FZ_CHECK(rest[12] == ' ');
    size_t eol = find_crlf(rest, 0);
    FZ_NEED(eol != std::string_view::npos);
    FZ_CHECK(field_value_ok(rest.substr(13, eol - 13)));
    size_t p = eol + 2;
    int lengths = 0;
    bool chunked = false;
    uint64_t length = 0;
    out.close = false;
    for (;;) {
        size_t e = find_crlf(rest, p);
        FZ_NEED(e != std::string_view::npos);
        if (e == p) {
            p += 2;
            break;
        }
        std::string_view line = rest.substr(p, e - p);
        size_t colon = line.find(':');
        FZ_CHECK(colon != std::string_view::npos);
        std::string_view name = line.substr(0, colon), value = line.substr(colon + 1);
        FZ_CHECK(token(name));
        FZ_CHECK(field_value_ok(value));
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (ieq(name, "content-length")) {
            ++lengths;
            FZ_CHECK(!value.empty());
            for (char c : value) {
                FZ_CHECK(c >= '0' && c <= '9');
                length = length * 10 + static_cast<uint64_t>(c - '0');
            }
        } else if (ieq(name, "transfer-encoding")) {
            FZ_CHECK(value == "chunked");
            chunked = true;
        } else if (ieq(name, "connection")) {
            FZ_CHECK(value == "close" || value == "keep-alive");
            out.close = value == "close";
        }
        p = e + 2;
    }
    FZ_CHECK(lengths <= 1);
    FZ_CHECK(!(lengths && chunked));
    if (out.status < 200) {
        FZ_CHECK(out.status == 100);
        FZ_CHECK(!lengths && !chunked);
        pos += p;
        return true;
    }
    bool no_body = head_request == 1 || out.status == 204 || out.status == 304;
    if (out.status == 204 || out.status == 304) FZ_CHECK(!chunked);
    if (head_request == 2 && out.close && lengths && rest.size() == p) {
        // The error answer to a HEAD request that failed in its body: no body bytes.
    } else if (no_body) {
        // An error answer that ends the connection may still carry its body
        // when the request failed before its method was known.
        if (head_request && out.close && lengths && rest.size() - p == length) p += length;
    } else if (chunked) {
        for (;;) {
            size_t e = find_crlf(rest, p);
            FZ_NEED(e != std::string_view::npos);
            FZ_CHECK(e > p);
            uint64_t n = 0;
            for (size_t i = p; i < e; ++i) {
                char c = rest[i];
                int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                FZ_CHECK(d >= 0);
                n = n * 16 + static_cast<uint64_t>(d);
                FZ_CHECK(n < (1u << 30));
            }
            p = e + 2;
            if (n == 0) {
                FZ_NEED(rest.size() >= p + 2);
                FZ_CHECK(rest.substr(p, 2) == "\r\n");
                p += 2;
                break;
            }
            FZ_NEED(rest.size() >= p + n + 2);
            p += n;
            FZ_CHECK(rest.substr(p, 2) == "\r\n");
            p += 2;
        }
    } else if (lengths) {
        FZ_NEED(rest.size() - p >= length);
        p += length;
    } else {
        // Close-delimited (a streamed HTTP/1.0 answer): the last thing sent.
        FZ_CHECK(out.close);
        FZ_CHECK(eof);
        p = rest.size();
    }
    pos += p;
    return true;
#undef FZ_NEED
}

size_t check_responses(std::string_view out, const Mirror &m, bool cut, bool &last_close) {
    size_t pos = 0, finals = 0;
    bool closed = false;
    Resp r;
    for (;;) {
        FZ_CHECK(!closed || pos == out.size());  // nothing after "Connection: close"
        int head = finals < m.msgs.size() ? m.msgs[finals].method == "HEAD" : 2;
        try {
            if (!parse_response(out, pos, head, true, cut, r)) break;
        } catch (Cut) {
            break;
        }
        if (r.status == 100) continue;
        if (finals < m.msgs.size() && (m.msgs[finals].bare_lf || m.msgs[finals].folded))
            FZ_CHECK(r.status >= 400 && r.close);  // 400, or an earlier limit (414, 431)
        ++finals;
        closed = r.close;
    }
    last_close = closed;
    // One answer per complete request, plus at most one error answer.
    FZ_CHECK(finals <= m.msgs.size() + 1);
    return finals;
}

bool same_headers(const Msg &a, const Msg &b) {
    if (a.headers.size() != b.headers.size()) return false;
    for (size_t i = 0; i < a.headers.size(); ++i)
        if (a.headers[i].first != b.headers[i].first ||
            trim_ows(a.headers[i].second) != trim_ows(b.headers[i].second))
            return false;
    return true;
}

// Each request a handler saw is a distinct request llhttp completed, with the
// same method, target, version, fields and body. (Queued requests are seen when
// the queue is polled, so the order is not checked here; answers are in order.)
void check_seen(const Mirror &m) {
    std::vector<bool> used(m.msgs.size());
    for (const Msg &s : H->seen) {
        size_t j = 0;
        for (; j < m.msgs.size(); ++j)
            if (!used[j] && m.msgs[j].method == s.method && m.msgs[j].url == s.url &&
                (s.partial ? m.msgs[j].body.compare(0, s.body.size(), s.body) == 0 : m.msgs[j].body == s.body) &&
                m.msgs[j].minor == s.minor && same_headers(m.msgs[j], s))
                break;
        if (j == m.msgs.size() && s.partial) {
            // A streamed body's handler runs at the end of the head: its message
            // need not complete (a malformed or cut body), but its head must.
            size_t h = 0;
            for (; h < m.heads.size(); ++h)
                if (m.heads[h].method == s.method && m.heads[h].url == s.url && m.heads[h].minor == s.minor &&
                    same_headers(m.heads[h], s))
                    break;
            FZ_CHECK(h < m.heads.size());
            FZ_CHECK(!m.heads[h].bare_lf && !m.heads[h].folded);
            continue;
        }
        FZ_CHECK(j < m.msgs.size());
        FZ_CHECK(!m.msgs[j].bare_lf);  // bare LF is a 400, never a request
        FZ_CHECK(!m.msgs[j].folded);   // so is obs-fold, in any position
        used[j] = true;
    }
}

void check_idle() {
    ql_server_stats st = QL_SERVER_STATS_INIT;
    ql_error *err = nullptr;
    FZ_CHECK(ql_server_stats_get(H->server, &st, &err) == QL_OK);
    FZ_CHECK(st.connections_open == 0);
    FZ_CHECK(st.requests_in_flight == 0);
}

void probe() {
    int fd = connect_client();
    static const char req[] = "GET /ping HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
    FZ_CHECK(send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof req - 1));
    std::string out;
    FZ_CHECK(settle(fd, out));
    close_client(fd);
    FZ_CHECK(out.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    FZ_CHECK(out.size() > 18 && out.substr(out.size() - 18) == "{\"message\":\"pong\"}");
    check_idle();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!H) setup();
    if (size == 0) return 0;
    size_t nsplit = data[0] & 7;
    if (size < 1 + nsplit) return 0;
    std::vector<size_t> pieces;
    for (size_t i = 0; i < nsplit; ++i) pieces.push_back(static_cast<size_t>(data[1 + i]) + 1);
    std::string_view in(reinterpret_cast<const char *>(data) + 1 + nsplit, size - 1 - nsplit);

    Mirror m;
    m.run(in);
    H->seen.clear();
    H->aborted.clear();
    H->uploads.clear();
    H->queue_gone.clear();
    H->queue_aborted.clear();

    int fd = connect_client();
    pump();  // accept
    size_t off = 0, k = 0;
    std::string out;
    g_out = &out;
    while (off < in.size()) {
        size_t n = k < pieces.size() ? std::min(pieces[k++], in.size() - off) : in.size() - off;
        ssize_t w = send(fd, in.data() + off, n, MSG_NOSIGNAL);
        if (w <= 0) break;  // the server closed already
        off += static_cast<size_t>(w);
        pump();
        read_avail(fd, out);
    }
    int ending = (data[0] >> 3) & 3;
    if (ending == 2) shutdown(fd, SHUT_WR);
    bool eof = settle(fd, out);
    if (ending != 1) {
        // Held answers go out once the server is quiet; answering may let it
        // read (and hold) more, so repeat while there are any.
        for (int round = 0; !H->late.empty() && round < 64; ++round) {
            answer(H->late);
            eof = settle(fd, out) || eof;
        }
    }
    close_client(fd);
    for (int i = 0; i < 4; ++i) pump();
    answer(H->late);
    for (int i = 0; i < 4; ++i) pump();

    // A queued request answered GONE had exactly one abort notice, and every
    // notice was for a request still unanswered.
    std::sort(H->queue_gone.begin(), H->queue_gone.end());
    std::sort(H->queue_aborted.begin(), H->queue_aborted.end());
    FZ_CHECK(H->queue_gone == H->queue_aborted);

    bool last_close = false;
    size_t finals = check_responses(out, m, ending == 2, last_close);
    if (ending != 1 && ending != 2) {
        // A client that waited: the server closes only after an answer that
        // said so, and an open connection owes no answer to a complete request.
        // A streamed upload answered before its (incomplete) body ended is
        // owed its early answer too.
        bool early_tail = m.heads.size() == m.msgs.size() + 1 &&
                          m.heads.back().url.find("/up/e") != std::string::npos;
        if (eof) FZ_CHECK(finals >= 1 && last_close);
        else FZ_CHECK(finals == m.msgs.size() || (early_tail && finals == m.msgs.size() + 1));
    }
    check_seen(m);
    static const bool verbose = std::getenv("QL_FUZZ_VERBOSE") != nullptr;
    if (verbose)
        std::fprintf(stderr, "  requests (llhttp) %zu, handled %zu, answers %zu, aborted %zu, bytes out %zu\n",
                     m.msgs.size(), H->seen.size(), finals, H->aborted.size(), out.size());
    if (verbose && std::getenv("QL_FUZZ_VERBOSE")[0] == '2') std::fprintf(stderr, "%s\n", out.c_str());
    check_idle();
    g_out = nullptr;
    probe();
    return 0;
}
