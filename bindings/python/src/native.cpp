// _native: the thin pybind11 layer of quicklane's Python binding.
//
// Only the C ABI (quicklane.h) and its header-only C++ wrapper are used.
// Requests reach Python through queued delivery: loop threads push events to a
// ql_queue and never touch the GIL; Python threads fetch them in batches with
// Queue.poll(), which releases the GIL while it waits.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <pthread.h>
#include <signal.h>

#include <quicklane.hpp>

#include <array>
#include <atomic>
#include <cstring>
#include <memory>
#include <shared_mutex>
#include <unordered_set>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

[[noreturn]] void raise_status(ql_status st, ql_error *err, const char *what) {
    std::string msg = err ? ql_error_message(err) : "";
    ql_status code = err ? ql_error_code(err) : st;
    ql_error_free(&err);
    if (msg.empty()) msg = std::string(what) + ": " + ql_status_name(st);
    throw quicklane::Error(code, msg);
}

// A view of str/bytes/bytearray/memoryview (or None) that lives as long as `obj`.
struct Bytes {
    const char *data = nullptr;
    size_t len = 0;
    py::buffer_info buf;  // keeps a buffer export alive when used
    explicit Bytes(const py::handle &obj) {
        PyObject *o = obj.ptr();
        if (o == Py_None) return;
        if (PyBytes_Check(o)) {
            data = PyBytes_AS_STRING(o);
            len = static_cast<size_t>(PyBytes_GET_SIZE(o));
        } else if (PyUnicode_Check(o)) {
            Py_ssize_t n = 0;
            data = PyUnicode_AsUTF8AndSize(o, &n);
            if (!data) throw py::error_already_set();
            len = static_cast<size_t>(n);
        } else {
            buf = py::reinterpret_borrow<py::buffer>(obj).request();
            data = static_cast<const char *>(buf.ptr);
            len = static_cast<size_t>(buf.size * buf.itemsize);
        }
    }
};

py::str to_str(ql_str s) {
    // Decoded params and queries are valid UTF-8 (checked by the core);
    // headers may carry obs-text: decode those as latin-1 like ASGI servers.
    PyObject *o = PyUnicode_DecodeUTF8(s.data, static_cast<Py_ssize_t>(s.len), "surrogateescape");
    if (!o) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(o);
}

py::str to_latin1(ql_str s) {
    PyObject *o = PyUnicode_DecodeLatin1(s.data, static_cast<Py_ssize_t>(s.len), nullptr);
    if (!o) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(o);
}

// ---- ASGI / WSGI helpers: built natively so a request crosses once ----------

PyObject *intern(const char *s) {
    PyObject *o = PyUnicode_InternFromString(s);
    if (!o) throw py::error_already_set();
    return o;  // immortal for our purposes: kept for the process's life
}

struct Keys {
    PyObject *type, *http_version, *method, *path, *raw_path, *query_string, *headers, *client, *state;
    PyObject *v10, *v11;
    PyObject *request_method, *script_name, *path_info, *query_string_w, *content_type_w, *content_length_w,
        *server_protocol, *remote_addr, *remote_port, *proto10, *proto11;
};

Keys &keys() {
    static Keys *k = [] {
        auto *x = new Keys;
        x->type = intern("type");
        x->http_version = intern("http_version");
        x->method = intern("method");
        x->path = intern("path");
        x->raw_path = intern("raw_path");
        x->query_string = intern("query_string");
        x->headers = intern("headers");
        x->client = intern("client");
        x->state = intern("state");
        x->v10 = intern("1.0");
        x->v11 = intern("1.1");
        x->request_method = intern("REQUEST_METHOD");
        x->script_name = intern("SCRIPT_NAME");
        x->path_info = intern("PATH_INFO");
        x->query_string_w = intern("QUERY_STRING");
        x->content_type_w = intern("CONTENT_TYPE");
        x->content_length_w = intern("CONTENT_LENGTH");
        x->server_protocol = intern("SERVER_PROTOCOL");
        x->remote_addr = intern("REMOTE_ADDR");
        x->remote_port = intern("REMOTE_PORT");
        x->proto10 = intern("HTTP/1.0");
        x->proto11 = intern("HTTP/1.1");
        return x;
    }();
    return *k;
}

// Common methods as interned str (no allocation per request).
PyObject *method_str(ql_str m) {
    static const char *names[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"};
    static PyObject *objs[7] = {};
    for (int i = 0; i < 7; ++i) {
        size_t n = std::strlen(names[i]);
        if (m.len == n && std::memcmp(m.data, names[i], n) == 0) {
            if (!objs[i]) objs[i] = intern(names[i]);
            Py_INCREF(objs[i]);
            return objs[i];
        }
    }
    PyObject *o = PyUnicode_DecodeLatin1(m.data, static_cast<Py_ssize_t>(m.len), nullptr);
    if (!o) throw py::error_already_set();
    return o;
}

// Common header names: their lower-case bytes (ASGI) and CGI key (WSGI), made once.
struct KnownHeader {
    const char *lower;
    PyObject *bytes = nullptr;
    PyObject *cgi = nullptr;
};

KnownHeader *known_headers(size_t &count) {
    static KnownHeader table[] = {
        {"host"}, {"user-agent"}, {"accept"}, {"accept-encoding"}, {"accept-language"}, {"content-type"},
        {"content-length"}, {"connection"}, {"cookie"}, {"authorization"}, {"origin"}, {"referer"},
        {"cache-control"}, {"x-forwarded-for"}, {"x-forwarded-proto"}, {"x-request-id"}, {"pragma"},
        {"upgrade-insecure-requests"}, {"if-none-match"}, {"if-modified-since"}, {"sec-fetch-mode"},
    };
    count = sizeof table / sizeof table[0];
    return table;
}

// Lower-cases name into buf (ASCII only; header names are tokens).
void lower_into(ql_str name, std::string &buf) {
    buf.resize(name.len);
    for (size_t i = 0; i < name.len; ++i) {
        char c = name.data[i];
        buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    }
}

KnownHeader *find_known(const std::string &lower) {
    size_t n = 0;
    KnownHeader *t = known_headers(n);
    for (size_t i = 0; i < n; ++i)
        if (lower.size() == std::strlen(t[i].lower) && std::memcmp(lower.data(), t[i].lower, lower.size()) == 0)
            return &t[i];
    return nullptr;
}

PyObject *new_bytes(const char *d, size_t n) {
    PyObject *o = PyBytes_FromStringAndSize(d, static_cast<Py_ssize_t>(n));
    if (!o) throw py::error_already_set();
    return o;
}

// ASGI header name: lower-case bytes (cached for common names).
PyObject *asgi_name(ql_str name) {
    static thread_local std::string buf;
    lower_into(name, buf);
    if (KnownHeader *k = find_known(buf)) {
        if (!k->bytes) k->bytes = new_bytes(k->lower, std::strlen(k->lower));
        Py_INCREF(k->bytes);
        return k->bytes;
    }
    return new_bytes(buf.data(), buf.size());
}

// CGI variable for a header ("HTTP_USER_AGENT", "CONTENT_TYPE"), as str.
PyObject *cgi_name(ql_str name) {
    static thread_local std::string buf, key;
    lower_into(name, buf);
    auto make = [](const std::string &lower, std::string &out) {
        out.clear();
        if (lower != "content-type" && lower != "content-length") out = "HTTP_";
        for (char c : lower) out.push_back(c == '-' ? '_' : (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c);
    };
    if (KnownHeader *k = find_known(buf)) {
        if (!k->cgi) {
            make(buf, key);
            k->cgi = intern(key.c_str());
        }
        Py_INCREF(k->cgi);
        return k->cgi;
    }
    make(buf, key);
    PyObject *o = PyUnicode_DecodeLatin1(key.data(), static_cast<Py_ssize_t>(key.size()), nullptr);
    if (!o) throw py::error_already_set();
    return o;
}

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decodes a path ('+' stays '+'); invalid escapes are kept as-is.
const std::string &unquote(ql_str s) {
    static thread_local std::string out;
    out.clear();
    out.reserve(s.len);
    for (size_t i = 0; i < s.len; ++i) {
        char c = s.data[i];
        if (c == '%' && i + 2 < s.len) {
            int h = hexval(s.data[i + 1]), l = hexval(s.data[i + 2]);
            if (h >= 0 && l >= 0) {
                out.push_back(static_cast<char>(h * 16 + l));
                i += 2;
                continue;
            }
        }
        out.push_back(c);
    }
    return out;
}

bool has_percent(ql_str s) { return std::memchr(s.data, '%', s.len) != nullptr; }

// Steals a new reference into the dict under key (borrowed).
void set_steal(PyObject *d, PyObject *key, PyObject *value) {
    if (!value) throw py::error_already_set();
    int r = PyDict_SetItem(d, key, value);
    Py_DECREF(value);
    if (r < 0) throw py::error_already_set();
}

bool iequals(const char *a, size_t an, const char *b) {
    size_t bn = std::strlen(b);
    if (an != bn) return false;
    for (size_t i = 0; i < an; ++i) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
        if (c != b[i]) return false;
    }
    return true;
}

// Headers the core writes itself: an app's copy is dropped (Content-Length is
// read to size HEAD answers and to choose between buffered and streamed).
bool core_owned(const char *n, size_t len) {
    switch (len) {
    case 4: return iequals(n, len, "date");
    case 6: return iequals(n, len, "server");
    case 10: return iequals(n, len, "connection") || iequals(n, len, "keep-alive");
    case 14: return iequals(n, len, "content-length");
    case 17: return iequals(n, len, "transfer-encoding");
    default: return false;
    }
}

// Builds a ql_response over Python objects and calls fn with it.
// (name, value) pairs of str or bytes (or None) as ql_header views, kept
// alive with this object.
struct HeaderPairs {
    std::vector<Bytes> keep;
    std::vector<ql_header> hs;
    explicit HeaderPairs(const py::handle &headers) {
        if (headers.is_none()) return;
        py::sequence seq = py::reinterpret_borrow<py::sequence>(headers);
        size_t n = seq.size();
        keep.reserve(2 * n);
        hs.reserve(n);
        for (size_t i = 0; i < n; ++i) {
            py::sequence pair = seq[i];
            if (pair.size() != 2) throw py::value_error("headers must be (name, value) pairs");
            keep.emplace_back(pair[0]);
            keep.emplace_back(pair[1]);
            hs.push_back(ql_header{keep[2 * i].data, keep[2 * i].len, keep[2 * i + 1].data, keep[2 * i + 1].len});
        }
    }
};

template <class Fn>
ql_status with_response(int status, const py::handle &content_type, const py::handle &headers,
                        const py::handle &body, Fn &&fn) {
    ql_response res = QL_RESPONSE_INIT;
    res.status = status;
    Bytes ctype(content_type);
    res.content_type = ctype.data;
    res.content_type_len = ctype.len;
    Bytes b(body);
    res.body = b.data;
    res.body_len = b.len;
    HeaderPairs h(headers);
    res.headers = h.hs.data();
    res.header_count = h.hs.size();
    return fn(&res);
}

// Like with_response, for headers given by an ASGI/WSGI app: pairs of
// bytes or str, core-owned names dropped; *content_length gets a declared
// Content-Length (or -1).
template <class Fn>
ql_status with_app_response(int status, const py::handle &headers, const char *body, size_t body_len,
                            int64_t *content_length, Fn &&fn) {
    ql_response res = QL_RESPONSE_INIT;
    res.status = status;
    res.body = body;
    res.body_len = body_len;
    *content_length = -1;
    std::vector<Bytes> keep;
    std::vector<ql_header> hs;
    if (!headers.is_none()) {
        py::sequence seq = py::reinterpret_borrow<py::sequence>(headers);
        size_t n = seq.size();
        keep.reserve(2 * n);
        hs.reserve(n);
        for (size_t i = 0; i < n; ++i) {
            py::sequence pair = seq[i];
            if (pair.size() != 2) throw py::value_error("headers must be (name, value) pairs");
            Bytes name(pair[0]);
            if (core_owned(name.data, name.len)) {
                if (name.len == 14) {
                    Bytes v(pair[1]);
                    int64_t x = 0;
                    bool ok = v.len > 0 && v.len < 19;
                    for (size_t j = 0; ok && j < v.len; ++j) {
                        if (v.data[j] < '0' || v.data[j] > '9') ok = false;
                        else x = x * 10 + (v.data[j] - '0');
                    }
                    if (ok) *content_length = x;
                }
                continue;
            }
            keep.push_back(std::move(name));
            keep.emplace_back(pair[1]);
            const Bytes &k = keep[keep.size() - 2], &v = keep.back();
            hs.push_back(ql_header{k.data, k.len, v.data, v.len});
        }
        res.headers = hs.data();
        res.header_count = hs.size();
    }
    return fn(&res);
}

// A queued request, borrowed from the core until respond() finishes it.
class NativeRequest {
public:
    NativeRequest(const ql_event &ev) : req_(ev.request), server_(ev.server), id_(ev.id),
        route_(static_cast<int>(reinterpret_cast<intptr_t>(ev.route_data)) - 1) {}

    int route() const { return route_; }
    uint64_t id() const { return id_; }
    bool finished() const { return req_ == nullptr; }

    py::str method() const { return to_str(ql_request_method(live())); }
    py::str path() const { return to_str(ql_request_path(live())); }
    py::str target() const { return to_str(ql_request_target(live())); }
    py::str query_string() const { return to_str(ql_request_query_string(live())); }
    py::str route_pattern() const { return to_str(ql_request_route(live())); }
    int http_minor() const { return ql_request_http_minor(live()); }
    py::bytes body() const {
        ql_str b = ql_request_body(live());
        return py::bytes(b.data, b.len);
    }
    py::dict params() const {
        const ql_request *r = live();
        py::dict d;
        size_t n = ql_request_param_count(r);
        for (size_t i = 0; i < n; ++i) {
            ql_str k{}, v{};
            if (ql_request_param_at(r, i, &k, &v)) d[to_str(k)] = to_str(v);
        }
        return d;
    }
    py::list query() const {
        const ql_request *r = live();
        py::list l;
        size_t n = ql_request_query_count(r);
        for (size_t i = 0; i < n; ++i) {
            ql_str k{}, v{};
            if (ql_request_query_at(r, i, &k, &v)) l.append(py::make_tuple(to_str(k), to_str(v)));
        }
        return l;
    }
    py::list headers() const {
        const ql_request *r = live();
        py::list l;
        size_t n = ql_request_header_count(r);
        for (size_t i = 0; i < n; ++i) {
            ql_str k{}, v{};
            if (ql_request_header_at(r, i, &k, &v)) l.append(py::make_tuple(to_latin1(k), to_latin1(v)));
        }
        return l;
    }
    py::object header(const std::string &name) const {
        ql_str v{};
        if (!ql_request_header(live(), name.data(), name.size(), &v)) return py::none();
        return to_latin1(v);
    }
    py::tuple client() const {
        const ql_request *r = live();
        return py::make_tuple(to_str(ql_request_client_ip(r)), ql_request_client_port(r));
    }

    // Finishes the request. Returns the ql_status (QL_OK, QL_E_GONE or
    // QL_E_ALREADY_SENT); raises ValueError for a response the core refuses
    // (the request then stays unanswered and readable).
    int respond(int status, const py::handle &content_type, const py::handle &headers, const py::handle &body) {
        if (!req_) return QL_E_ALREADY_SENT;
        ql_error *err = nullptr;
        ql_status st = with_response(status, content_type, headers, body, [&](const ql_response *res) {
            return ql_respond(server_, id_, res, &err);
        });
        if (st == QL_E_INVALID) {
            std::string msg = err ? ql_error_message(err) : "invalid response";
            ql_error_free(&err);
            throw py::value_error(msg);
        }
        ql_error_free(&err);
        req_ = nullptr;  // OK, GONE, ALREADY_SENT: the data is no longer ours
        return st;
    }

    // Accepts the upgrade request of a WebSocket route (ql_ws_accept): the
    // 101 goes out and a WS_OPEN event carrying `tag` follows on the queue.
    // Returns QL_OK or QL_E_GONE (client left; the request is freed);
    // raises ValueError when the core refuses the options (a subprotocol the
    // client did not offer, a bad header): the request then stays unanswered.
    int ws_accept(const py::handle &subprotocol, const py::handle &headers, intptr_t tag) {
        if (!req_) return QL_E_ALREADY_SENT;
        ql_ws_accept_options o = QL_WS_ACCEPT_OPTIONS_INIT;
        Bytes sub(subprotocol);
        o.subprotocol = sub.data;
        o.subprotocol_len = sub.len;
        o.tag = reinterpret_cast<void *>(tag);
        HeaderPairs h(headers);
        o.headers = h.hs.data();
        o.header_count = h.hs.size();
        ql_error *err = nullptr;
        ql_status st = ql_ws_accept(server_, id_, &o, &err);
        return finish_or_raise(st, err, true);
    }

    // A streamed body (stream_body routes), or the buffered one: bytes (b""
    // at the end), None when nothing is there yet (QL_E_AGAIN: a BODY event
    // follows on the route's queue), or the negative ql_status of a failure
    // (QL_E_GONE, QL_E_TOO_LARGE, QL_E_INVALID). Waits up to timeout_ms
    // without the GIL.
    py::object body_read(size_t cap, int32_t timeout_ms) {
        if (!req_) return py::int_(static_cast<int>(QL_E_GONE));
        if (cap == 0) cap = 1;
        if (cap > (size_t{16} << 20)) cap = size_t{16} << 20;
        PyObject *b = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(cap));
        if (!b) throw py::error_already_set();
        py::object out = py::reinterpret_steal<py::object>(b);
        size_t n = 0;
        ql_status st;
        if (timeout_ms != 0) {
            py::gil_scoped_release nogil;
            st = ql_request_body_read(server_, id_, PyBytes_AS_STRING(b), cap, timeout_ms, &n, nullptr);
        } else {
            st = ql_request_body_read(server_, id_, PyBytes_AS_STRING(b), cap, 0, &n, nullptr);
        }
        if (st == QL_E_AGAIN) return py::none();
        if (st != QL_OK) return py::int_(static_cast<int>(st));
        if (n != cap) {
            if (_PyBytes_Resize(&b, static_cast<Py_ssize_t>(n)) != 0) {
                out.release();
                throw py::error_already_set();
            }
            out.release();
            out = py::reinterpret_steal<py::object>(b);
        }
        return out;
    }
    // The declared Content-Length; -1 for a chunked body.
    int64_t content_length() const { return ql_request_content_length(live()); }

    size_t body_size() const { return ql_request_body(live()).len; }
    py::bytes body_part(size_t offset, size_t size) const {
        ql_str b = ql_request_body(live());
        if (offset > b.len) offset = b.len;
        if (size > b.len - offset) size = b.len - offset;
        return py::bytes(b.data + offset, size);
    }

    // The ASGI HTTP scope: a copy of `base` (the constant keys) plus this
    // request's keys, built in one crossing. `state` (when not empty) is
    // copied shallowly into scope["state"]; `root` prefixes path and raw_path.
    py::dict asgi_scope(const py::dict &base, const py::dict &state, const py::bytes &root) const {
        const ql_request *r = live();
        Keys &k = keys();
        PyObject *d = PyDict_Copy(base.ptr());
        if (!d) throw py::error_already_set();
        py::dict scope = py::reinterpret_steal<py::dict>(d);
        PyObject *v = ql_request_http_minor(r) == 1 ? k.v11 : k.v10;
        Py_INCREF(v);
        set_steal(d, k.http_version, v);
        set_steal(d, k.method, method_str(ql_request_method(r)));
        ql_str path = ql_request_path(r);
        char *rootp = nullptr;
        Py_ssize_t rootn = 0;
        PyBytes_AsStringAndSize(root.ptr(), &rootp, &rootn);
        const char *pd = path.data;
        size_t pn = path.len;
        std::string decoded;
        if (rootn > 0 || has_percent(path)) {
            decoded.assign(rootp, static_cast<size_t>(rootn));
            if (has_percent(path)) decoded += unquote(path);
            else decoded.append(path.data, path.len);
            pd = decoded.data();
            pn = decoded.size();
        }
        set_steal(d, k.path, PyUnicode_DecodeUTF8(pd, static_cast<Py_ssize_t>(pn), "replace"));
        if (rootn > 0) {
            std::string rp(rootp, static_cast<size_t>(rootn));
            rp.append(path.data, path.len);
            set_steal(d, k.raw_path, new_bytes(rp.data(), rp.size()));
        } else {
            set_steal(d, k.raw_path, new_bytes(path.data, path.len));
        }
        ql_str qs = ql_request_query_string(r);
        set_steal(d, k.query_string, new_bytes(qs.data, qs.len));
        size_t n = ql_request_header_count(r);
        PyObject *hl = PyList_New(static_cast<Py_ssize_t>(n));
        if (!hl) throw py::error_already_set();
        set_steal(d, k.headers, hl);  // the dict holds it; filled below
        for (size_t i = 0; i < n; ++i) {
            ql_str hk{}, hv{};
            ql_request_header_at(r, i, &hk, &hv);
            PyObject *name = asgi_name(hk);
            PyObject *val = PyBytes_FromStringAndSize(hv.data, static_cast<Py_ssize_t>(hv.len));
            if (!val) {
                Py_DECREF(name);
                throw py::error_already_set();
            }
            PyObject *t = PyTuple_New(2);
            if (!t) throw py::error_already_set();
            PyTuple_SET_ITEM(t, 0, name);
            PyTuple_SET_ITEM(t, 1, val);
            PyList_SET_ITEM(hl, static_cast<Py_ssize_t>(i), t);
        }
        ql_str ip = ql_request_client_ip(r);
        PyObject *host = PyUnicode_DecodeLatin1(ip.data, static_cast<Py_ssize_t>(ip.len), nullptr);
        if (!host) throw py::error_already_set();
        set_steal(d, k.client, Py_BuildValue("(Ni)", host, static_cast<int>(ql_request_client_port(r))));
        if (PyDict_GET_SIZE(state.ptr()) > 0) set_steal(d, k.state, PyDict_Copy(state.ptr()));
        return scope;
    }

    // The WSGI environ (PEP 3333): a copy of `base` plus this request's CGI
    // variables; str values are latin-1 ("bytes as str"), PATH_INFO decoded.
    py::dict wsgi_environ(const py::dict &base) const {
        const ql_request *r = live();
        Keys &k = keys();
        PyObject *d = PyDict_Copy(base.ptr());
        if (!d) throw py::error_already_set();
        py::dict env = py::reinterpret_steal<py::dict>(d);
        set_steal(d, k.request_method, method_str(ql_request_method(r)));
        ql_str path = ql_request_path(r);
        if (has_percent(path)) {
            const std::string &u = unquote(path);
            set_steal(d, k.path_info, PyUnicode_DecodeLatin1(u.data(), static_cast<Py_ssize_t>(u.size()), nullptr));
        } else {
            set_steal(d, k.path_info, PyUnicode_DecodeLatin1(path.data, static_cast<Py_ssize_t>(path.len), nullptr));
        }
        ql_str qs = ql_request_query_string(r);
        set_steal(d, k.query_string_w, PyUnicode_DecodeLatin1(qs.data, static_cast<Py_ssize_t>(qs.len), nullptr));
        PyObject *proto = ql_request_http_minor(r) == 1 ? k.proto11 : k.proto10;
        Py_INCREF(proto);
        set_steal(d, k.server_protocol, proto);
        size_t n = ql_request_header_count(r);
        for (size_t i = 0; i < n; ++i) {
            ql_str hk{}, hv{};
            ql_request_header_at(r, i, &hk, &hv);
            PyObject *key = cgi_name(hk);
            PyObject *val = PyUnicode_DecodeLatin1(hv.data, static_cast<Py_ssize_t>(hv.len), nullptr);
            if (!val) {
                Py_DECREF(key);
                throw py::error_already_set();
            }
            PyObject *old = PyDict_GetItemWithError(d, key);  // borrowed
            if (old && PyUnicode_Check(old) && PyUnicode_GET_LENGTH(old) > 0 &&
                PyUnicode_CompareWithASCIIString(key, "HTTP_HOST") != 0) {
                // Repeated header: values joined (cookies with "; ", others with ",").
                bool cookie = PyUnicode_CompareWithASCIIString(key, "HTTP_COOKIE") == 0;
                PyObject *sep = PyUnicode_FromString(cookie ? "; " : ",");
                PyObject *a = sep ? PyUnicode_Concat(old, sep) : nullptr;
                Py_XDECREF(sep);
                PyObject *joined = a ? PyUnicode_Concat(a, val) : nullptr;
                Py_XDECREF(a);
                Py_DECREF(val);
                val = joined;
            }
            if (!val) {
                Py_DECREF(key);
                throw py::error_already_set();
            }
            int rc = PyDict_SetItem(d, key, val);
            Py_DECREF(key);
            Py_DECREF(val);
            if (rc < 0) throw py::error_already_set();
        }
        ql_str ip = ql_request_client_ip(r);
        set_steal(d, k.remote_addr, PyUnicode_DecodeLatin1(ip.data, static_cast<Py_ssize_t>(ip.len), nullptr));
        set_steal(d, k.remote_port, PyUnicode_FromFormat("%d", static_cast<int>(ql_request_client_port(r))));
        return env;
    }

    // Answers with an app's status, headers ((name, value) pairs of bytes or
    // str, core-owned names dropped) and whole body. A HEAD answer keeps the
    // app's Content-Length. Returns the ql_status like respond().
    int respond_app(int status, const py::handle &headers, const py::handle &body) {
        if (!req_) return QL_E_ALREADY_SENT;
        if (streaming_) return QL_E_ALREADY_SENT;
        Bytes b(body);
        ql_error *err = nullptr;
        int64_t clen = -1;
        std::string filler;
        ql_str m = ql_request_method(req_);
        bool head = m.len == 4 && std::memcmp(m.data, "HEAD", 4) == 0;
        ql_status st = with_app_response(status, headers, b.data, b.len, &clen, [&](ql_response *res) {
            if (head && res->body_len == 0 && clen > 0 && clen <= (int64_t{64} << 20)) {
                // The core sizes Content-Length from the body and sends none for HEAD.
                filler.assign(static_cast<size_t>(clen), '\0');
                res->body = filler.data();
                res->body_len = filler.size();
            }
            return ql_respond(server_, id_, res, &err);
        });
        return finish_or_raise(st, err, true);
    }

    // Streamed answer: head (+ first bytes), then write()s, then end().
    int stream_start(int status, const py::handle &headers, const py::handle &body) {
        if (!req_) return QL_E_ALREADY_SENT;
        if (streaming_) return QL_E_ALREADY_SENT;
        Bytes b(body);
        ql_error *err = nullptr;
        int64_t clen = -1;
        ql_status st = with_app_response(status, headers, b.data, b.len, &clen, [&](ql_response *res) {
            // A declared Content-Length goes out as such (HEAD included), not chunked.
            return clen >= 0 ? ql_respond_start_sized(server_, id_, res, static_cast<uint64_t>(clen), &err)
                             : ql_respond_start(server_, id_, res, &err);
        });
        if (st == QL_OK) {
            streaming_ = true;
            ql_error_free(&err);
            return st;
        }
        return finish_or_raise(st, err, true);
    }
    // Adds bytes; returns the bytes buffered in the core (>= 0) or a status (< 0).
    int64_t stream_write(const py::handle &data) {
        if (!req_ || !streaming_) return QL_E_STATE;
        Bytes b(data);
        uint64_t buffered = 0;
        ql_status st;
        if (b.len >= 65536) {
            py::gil_scoped_release nogil;
            st = ql_respond_write(server_, id_, b.data, b.len, &buffered, nullptr);
        } else {
            st = ql_respond_write(server_, id_, b.data, b.len, &buffered, nullptr);
        }
        if (st == QL_E_GONE) req_ = nullptr;
        if (st != QL_OK) return st;
        return static_cast<int64_t>(buffered);
    }
    int stream_end() {
        if (!req_ || !streaming_) return QL_E_STATE;
        ql_status st = ql_respond_end(server_, id_, nullptr);
        req_ = nullptr;
        return st;
    }
    bool streaming() const { return streaming_; }

    // Cuts the request off (ql_respond_abort): a streamed answer ends without
    // its last chunk and the connection closes.
    int abort() {
        if (!req_) return QL_E_ALREADY_SENT;
        ql_status st = ql_respond_abort(server_, id_, nullptr);
        req_ = nullptr;
        return st;
    }

    // Frees a request nobody will answer (its client left): QL_E_GONE or OK.
    int discard() {
        if (!req_) return QL_E_ALREADY_SENT;
        if (streaming_) return stream_end();
        ql_response res = QL_RESPONSE_INIT;
        res.status = 503;
        ql_status st = ql_respond(server_, id_, &res, nullptr);
        req_ = nullptr;
        return st;
    }

private:
    int finish_or_raise(ql_status st, ql_error *err, bool) {
        if (st == QL_E_INVALID) {
            std::string msg = err ? ql_error_message(err) : "invalid response";
            ql_error_free(&err);
            throw py::value_error(msg);
        }
        ql_error_free(&err);
        req_ = nullptr;
        return st;
    }
    const ql_request *live() const {
        if (!req_) throw py::value_error("quicklane: request data used after the request was answered");
        return req_;
    }
    ql_request *req_;
    ql_server *server_;
    ql_req_id id_;
    int route_;
    bool streaming_ = false;
};

class Queue {
public:
    Queue() {
        ql_error *err = nullptr;
        ql_status st = ql_queue_new(&q_, &err);
        if (st != QL_OK) raise_status(st, err, "ql_queue_new");
    }
    ~Queue() { ql_queue_free(&q_); }
    ql_queue *native() const { return q_; }
    int fd() const { return ql_queue_fd(q_); }
    void close() { ql_queue_close(q_); }

private:
    ql_queue *q_ = nullptr;
};

// Sockets whose sender waits for a WS_DRAIN event. The core arms a drain
// after every send from another thread, so most DRAIN events find nobody
// waiting: the poller drops those without a Python object. Guarded by the GIL.
std::unordered_set<uint64_t> g_drain_wanted;

// Live native WebSocket objects, for the leak tests (ws_live()).
std::atomic<int64_t> g_live_messages{0};
std::atomic<int64_t> g_live_sockets{0};

// A WS_MESSAGE event kept until the handler receives it: its data stays in
// the core, and counts against the socket's inbound window, until then
// (ql_event_release is what lets the core read the socket again).
class WsMessage {
public:
    explicit WsMessage(const ql_event &ev) : ev_(ev) {
        ql_ws_event_info info = QL_WS_EVENT_INFO_INIT;
        if (ql_event_ws_info(&ev_, &info) == QL_OK) {
            data_ = info.data;
            len_ = info.len;
            binary_ = info.binary != 0;
        }
        g_live_messages.fetch_add(1, std::memory_order_relaxed);
    }
    WsMessage(const WsMessage &) = delete;
    WsMessage &operator=(const WsMessage &) = delete;
    ~WsMessage() {
        release();
        g_live_messages.fetch_sub(1, std::memory_order_relaxed);
    }
    bool binary() const { return binary_; }
    size_t size() const { return len_; }
    // The message as str (text) or bytes (binary); the event is given back.
    py::object take() {
        if (!ev_.request) throw py::value_error("quicklane: WebSocket message already taken");
        PyObject *o = binary_ ? PyBytes_FromStringAndSize(data_, static_cast<Py_ssize_t>(len_))
                              : PyUnicode_DecodeUTF8(data_, static_cast<Py_ssize_t>(len_), "surrogateescape");
        release();
        if (!o) throw py::error_already_set();
        return py::reinterpret_steal<py::object>(o);
    }
    void release() {
        if (ev_.request) ql_event_release(&ev_);
        data_ = nullptr;
        len_ = 0;
    }

private:
    ql_event ev_;
    const char *data_ = nullptr;
    size_t len_ = 0;
    bool binary_ = false;
};

// The server pointer shared by everything that may call it from any thread
// (WebSockets, publish): close() frees the server under the exclusive lock,
// so a late call finds NULL instead of freed memory.
struct ServerBox {
    std::shared_mutex mu;
    ql_server *server = nullptr;
};

constexpr int kWsDropped = -100;  // NativeWebSocket.send: over max_backpressure, not sent

// One open WebSocket (its ql_ws_id) on a server. Every call is thread-safe.
class NativeWebSocket {
public:
    NativeWebSocket(std::shared_ptr<ServerBox> box, uint64_t id) : box_(std::move(box)), id_(id) {
        g_live_sockets.fetch_add(1, std::memory_order_relaxed);
    }
    NativeWebSocket(const NativeWebSocket &) = delete;
    NativeWebSocket &operator=(const NativeWebSocket &) = delete;
    ~NativeWebSocket() {
        g_drain_wanted.erase(id_);
        g_live_sockets.fetch_sub(1, std::memory_order_relaxed);
    }
    uint64_t id() const { return id_; }

    // Sends one message (str: text, else binary when `binary`). Returns the
    // socket's unsent bytes after it (>= 0), kWsDropped when it was over its
    // max_backpressure (not sent), or QL_E_GONE once the socket is closing.
    int64_t send(const py::handle &data, bool binary) {
        Bytes b(data);
        uint32_t kind = binary ? QL_WS_BINARY : QL_WS_TEXT;
        ql_status st;
        uint64_t buffered = 0;
        ql_error *err = nullptr;
        {
            std::unique_ptr<py::gil_scoped_release> nogil;
            if (b.len >= 65536) nogil = std::make_unique<py::gil_scoped_release>();
            std::shared_lock lock(box_->mu);
            if (!box_->server) return QL_E_GONE;
            st = ql_ws_send(box_->server, id_, b.data, b.len, kind, &err);
            if (st >= 0 && st != QL_WS_DROPPED && ql_ws_buffered(box_->server, id_, &buffered, nullptr) != QL_OK)
                st = QL_E_GONE;
        }
        if (st == QL_E_INVALID) raise_value(err, "invalid message");
        ql_error_free(&err);
        if (st == QL_WS_DROPPED) return kWsDropped;
        if (st < 0) return st;
        return static_cast<int64_t>(buffered);
    }
    // Sends a ping (or a pong) frame of at most 125 bytes, in order with the
    // messages, whatever the backpressure (never dropped). QL_OK or
    // QL_E_GONE once the socket is closing; ValueError for a longer payload.
    int control(const py::handle &data, bool pong) {
        Bytes b(data);
        ql_error *err = nullptr;
        ql_status st;
        {
            std::shared_lock lock(box_->mu);
            if (!box_->server) return QL_E_GONE;
            st = ql_ws_send(box_->server, id_, b.data, b.len, pong ? QL_WS_PONG : QL_WS_PING, &err);
        }
        if (st == QL_E_INVALID) raise_value(err, "invalid control frame");
        ql_error_free(&err);
        return st < 0 ? st : QL_OK;
    }
    // Starts the close handshake (code 0: cut at once). QL_OK or QL_E_GONE;
    // ValueError for a code or reason that may not be sent.
    int close(uint16_t code, const py::handle &reason) {
        Bytes r(reason);
        ql_error *err = nullptr;
        ql_status st;
        {
            std::shared_lock lock(box_->mu);
            if (!box_->server) return QL_E_GONE;
            st = ql_ws_close(box_->server, id_, code, r.data, r.len, &err);
        }
        if (st == QL_E_INVALID) raise_value(err, "invalid close");
        ql_error_free(&err);
        return st;
    }
    // Unsent bytes, or QL_E_GONE.
    int64_t buffered() {
        uint64_t n = 0;
        std::shared_lock lock(box_->mu);
        if (!box_->server) return QL_E_GONE;
        ql_status st = ql_ws_buffered(box_->server, id_, &n, nullptr);
        return st == QL_OK ? static_cast<int64_t>(n) : st;
    }
    // While on, the socket's WS_DRAIN events reach Python (see g_drain_wanted).
    void want_drain(bool on) {
        if (on)
            g_drain_wanted.insert(id_);
        else
            g_drain_wanted.erase(id_);
    }
    int subscribe(const std::string &topic, bool on) {
        std::shared_lock lock(box_->mu);
        if (!box_->server) return QL_E_GONE;
        return on ? ql_ws_subscribe(box_->server, id_, topic.data(), topic.size(), nullptr)
                  : ql_ws_unsubscribe(box_->server, id_, topic.data(), topic.size(), nullptr);
    }

private:
    [[noreturn]] static void raise_value(ql_error *err, const char *what) {
        std::string msg = err ? ql_error_message(err) : what;
        ql_error_free(&err);
        throw py::value_error(msg);
    }
    std::shared_ptr<ServerBox> box_;
    uint64_t id_;
};

// Each poller thread uses its own Poller so the event buffers never race.
class Poller {
public:
    explicit Poller(Queue &q) : q_(q.native()) {}
    py::object poll(size_t max, int32_t timeout_ms) {
        if (max > events_.size()) max = events_.size();
        if (max == 0) max = 1;
        size_t n = 0;
        ql_status st;
        if (timeout_ms == 0) {
            st = ql_queue_poll(q_, events_.data(), max, 0, &n, nullptr);
        } else {
            py::gil_scoped_release nogil;
            st = ql_queue_poll(q_, events_.data(), max, timeout_ms, &n, nullptr);
        }
        if (st == QL_E_STATE) return py::none();
        py::list out;
        for (size_t i = 0; i < n; ++i) {
            ql_event &ev = events_[i];
            if (ev.kind == QL_EVENT_REQUEST) {
                out.append(py::cast(new NativeRequest(ev), py::return_value_policy::take_ownership));
            } else if (ev.kind == QL_EVENT_BODY || ev.kind == QL_EVENT_DRAIN) {
                // (kind, id): more of a streamed body can be read / a streamed answer drained
                out.append(py::make_tuple(static_cast<int>(ev.kind), ev.id));
            } else if (ev.kind >= QL_EVENT_WS_OPEN && ev.kind <= QL_EVENT_WS_CLOSE) {
                if (ev.kind == QL_EVENT_WS_DRAIN && !g_drain_wanted.count(ev.id)) {
                    ql_event_release(&ev);  // nobody waits for it
                    continue;
                }
                out.append(ws_event(ev));
            } else {
                out.append(py::int_(ev.id));  // an abort
            }
        }
        return out;
    }

private:
    // (kind, tag, x): OPEN x = the ql_ws_id, MESSAGE x = a WsMessage (kept
    // until received), DRAIN x = None, CLOSE x = (code, reason). Every event
    // but a message is given back here.
    static py::object ws_event(ql_event &ev) {
        ql_ws_event_info info = QL_WS_EVENT_INFO_INIT;
        if (ql_event_ws_info(&ev, &info) != QL_OK) {
            ql_event_release(&ev);
            return py::make_tuple(static_cast<int>(ev.kind), 0, py::none());
        }
        py::int_ tag(reinterpret_cast<intptr_t>(info.tag));
        int kind = static_cast<int>(ev.kind);
        if (ev.kind == QL_EVENT_WS_MESSAGE) {
            auto *m = new WsMessage(ev);
            ev.request = nullptr;  // the message object gives it back
            return py::make_tuple(kind, tag, py::cast(m, py::return_value_policy::take_ownership));
        }
        py::object x = py::none();
        if (ev.kind == QL_EVENT_WS_OPEN)
            x = py::int_(ev.id);
        else if (ev.kind == QL_EVENT_WS_CLOSE)
            x = py::make_tuple(static_cast<int>(info.code), to_str(ql_str{info.data, info.len}));
        ql_event_release(&ev);
        return py::make_tuple(kind, tag, x);
    }
    ql_queue *q_;  // the Queue object outlives its pollers (held by Python)
    std::array<ql_event, 256> events_{};
};

class App {
public:
    void static_route(const std::string &method, const std::string &pattern, int status,
                      const py::handle &content_type, const py::handle &headers, const py::handle &body) {
        ql_error *err = nullptr;
        ql_status st = with_response(status, content_type, headers, body, [&](const ql_response *res) {
            return ql_app_static(app_.native(), method.data(), method.size(), pattern.data(), pattern.size(),
                                 res, &err);
        });
        if (st != QL_OK) raise_status(st, err, "ql_app_static");
    }
    void route_queue(const std::string &method, const std::string &pattern, Queue &queue, int route) {
        ql_error *err = nullptr;
        void *data = reinterpret_cast<void *>(static_cast<intptr_t>(route) + 1);
        ql_status st = ql_app_route_queue(app_.native(), method.data(), method.size(), pattern.data(),
                                          pattern.size(), queue.native(), data, nullptr, &err);
        if (st != QL_OK) raise_status(st, err, "ql_app_route_queue");
    }
    // A queued WebSocket route: its upgrade requests and socket events go to `queue`.
    void ws_queue(const std::string &pattern, Queue &queue, int route, uint64_t max_message_bytes,
                  uint64_t max_backpressure, uint32_t idle_timeout_ms, uint32_t ping_interval_ms,
                  uint32_t compression, uint32_t window_bits, bool close_on_backpressure) {
        ql_ws_behavior b = QL_WS_BEHAVIOR_INIT;
        b.max_message_bytes = max_message_bytes;
        b.max_backpressure = max_backpressure;
        b.idle_timeout_ms = idle_timeout_ms;
        b.ping_interval_ms = ping_interval_ms;
        b.compression = compression;
        b.compression_window_bits = window_bits;
        b.close_on_backpressure = close_on_backpressure ? 1 : 0;
        ql_error *err = nullptr;
        void *data = reinterpret_cast<void *>(static_cast<intptr_t>(route) + 1);
        ql_status st = ql_app_ws_queue(app_.native(), pattern.data(), pattern.size(), &b, queue.native(), data,
                                       nullptr, &err);
        if (st != QL_OK) raise_status(st, err, "ql_app_ws_queue");
    }
    // Native rules: each raises NativeError with the core's message when refused.
    void route_rules(const std::string &method, const std::string &pattern, uint32_t rate_limit,
                     uint32_t rate_window_ms, const std::string &rate_key_header, bool require_api_key,
                     uint32_t cache_ttl_ms, const std::string &cache_vary, const std::string &body_schema,
                     const std::string &params_schema, bool stream_body, uint64_t max_body_bytes) {
        app_.route_rules(method, pattern,
                         {rate_limit, rate_window_ms, rate_key_header, require_api_key, cache_ttl_ms, cache_vary,
                          body_schema, params_schema, stream_body, max_body_bytes});
    }
    void cache_size(uint64_t max_bytes) { app_.cache_size(max_bytes); }
    void static_dir(const std::string &prefix, const std::string &folder, uint32_t max_age_s, bool gzip,
                    const std::string &index) {
        app_.static_dir(prefix, folder, max_age_s, gzip, index);
    }
    void compression(bool enabled, uint32_t min_bytes, uint32_t level) { app_.compression(enabled, min_bytes, level); }
    void rate_limit(uint32_t requests, uint32_t window_ms, const std::string &key_header) {
        app_.rate_limit(requests, window_ms, key_header);
    }
    void cors(const std::string &origins, const std::string &methods, const std::string &headers,
              const std::string &expose, bool credentials, uint32_t max_age_s) {
        app_.cors({origins, methods, headers, expose, credentials, max_age_s});
    }
    void api_keys(const std::vector<std::string> &keys, const std::string &header, const std::string &query) {
        app_.api_keys(keys, header, query);
    }
    void metrics(const std::string &pattern) { app_.metrics(pattern); }
    void access_log(bool enabled) { app_.access_log(enabled); }
    const quicklane::App &cpp() const { return app_; }

private:
    quicklane::App app_;
};

// The server, over the C ABI directly (the C++ wrapper's options predate
// reuse_port). Its pointer sits in a ServerBox shared with the WebSockets,
// since those and publish() may be called from any thread.
class Server {
public:
    Server(const App &app, const std::string &host, uint16_t port, uint32_t workers, py::dict limits)
        : box_(std::make_shared<ServerBox>()) {
        ql_server_options o = QL_SERVER_OPTIONS_INIT;
        host_ = host;
        if (!host_.empty()) {
            o.host = host_.data();
            o.host_len = host_.size();
        }
        o.port = port;
        o.workers = workers;
        for (auto item : limits) {
            std::string k = py::str(item.first);
            uint64_t v = item.second.cast<uint64_t>();
            if (k == "max_header_bytes") o.max_header_bytes = static_cast<uint32_t>(v);
            else if (k == "max_url_bytes") o.max_url_bytes = static_cast<uint32_t>(v);
            else if (k == "max_body_bytes") o.max_body_bytes = v;
            else if (k == "max_headers") o.max_headers = static_cast<uint32_t>(v);
            else if (k == "header_timeout_ms") o.header_timeout_ms = static_cast<uint32_t>(v);
            else if (k == "idle_timeout_ms") o.idle_timeout_ms = static_cast<uint32_t>(v);
            else if (k == "max_connections") o.max_connections = static_cast<uint32_t>(v);
            else if (k == "max_pipeline") o.max_pipeline = static_cast<uint32_t>(v);
            else if (k == "backlog") o.backlog = static_cast<uint32_t>(v);
            else if (k == "handler_timeout_ms") o.handler_timeout_ms = static_cast<uint32_t>(v);
            else if (k == "reuse_port") o.reuse_port = v ? 1 : 0;
            else if (k == "max_stream_body_bytes") o.max_stream_body_bytes = v;
            else if (k == "body_window_bytes") o.body_window_bytes = static_cast<uint32_t>(v);
            else throw py::value_error("unknown server option: " + k);
        }
        ql_error *err = nullptr;
        ql_status st = ql_server_new(app.cpp().native(), &o, &box_->server, &err);
        if (st != QL_OK) raise_status(st, err, "ql_server_new");
    }
    ~Server() { free_server(); }
    void start() {
        ql_server *server = box_->server;
        if (!server) throw quicklane::Error(QL_E_STATE, "quicklane: server closed");
        ql_status st;
        ql_error *err = nullptr;
        {
            py::gil_scoped_release nogil;
            // The loop threads inherit this mask: SIGINT/SIGTERM stay with Python.
            sigset_t set, old;
            sigemptyset(&set);
            sigaddset(&set, SIGINT);
            sigaddset(&set, SIGTERM);
            pthread_sigmask(SIG_BLOCK, &set, &old);
            st = ql_server_start(server, &err);
            pthread_sigmask(SIG_SETMASK, &old, nullptr);
        }
        if (st != QL_OK) raise_status(st, err, "ql_server_start");
    }
    uint16_t port() const { return box_->server ? ql_server_port(box_->server) : 0; }
    void stop(uint32_t timeout_ms) {
        ql_server *server = box_->server;
        if (!server) return;
        py::gil_scoped_release nogil;
        ql_server_stop(server, timeout_ms, nullptr);
    }
    py::dict stats() const {
        py::dict d;
        ql_server *server = box_->server;
        if (!server) return d;
        ql_server_stats s = QL_SERVER_STATS_INIT;
        if (ql_server_stats_get(server, &s, nullptr) != QL_OK) return d;
        d["connections_open"] = s.connections_open;
        d["connections_total"] = s.connections_total;
        d["requests_total"] = s.requests_total;
        d["requests_in_flight"] = s.requests_in_flight;
        return d;
    }
    // The open WebSocket `id` of this server (from a WS_OPEN event).
    NativeWebSocket *websocket(uint64_t id) { return new NativeWebSocket(box_, id); }
    // A message to every WebSocket subscribed to topic (str: text, else
    // binary), from any thread; returns how many subscribers it went to, or
    // -1 once the server is closed (or another failure). ValueError for a
    // text that is not UTF-8.
    int64_t publish(const std::string &topic, const py::handle &data, bool binary, uint64_t exclude) {
        Bytes b(data);
        size_t count = 0;
        ql_error *err = nullptr;
        ql_status st;
        {
            std::unique_ptr<py::gil_scoped_release> nogil;
            if (b.len >= 65536) nogil = std::make_unique<py::gil_scoped_release>();
            std::shared_lock lock(box_->mu);
            if (!box_->server) return -1;
            st = ql_server_publish(box_->server, topic.data(), topic.size(), b.data, b.len,
                                   binary ? QL_WS_BINARY : QL_WS_TEXT, exclude, &count, &err);
        }
        if (st == QL_E_INVALID) {
            std::string msg = err ? ql_error_message(err) : ql_status_name(st);
            ql_error_free(&err);
            throw py::value_error(msg);
        }
        ql_error_free(&err);
        return st == QL_OK ? static_cast<int64_t>(count) : -1;
    }
    // Frees the server; every request it held is gone afterwards.
    void close() {
        py::gil_scoped_release nogil;
        free_server();
    }

private:
    void free_server() {
        std::unique_lock lock(box_->mu);
        ql_server_free(&box_->server);
    }
    std::string host_;
    std::shared_ptr<ServerBox> box_;
};

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "quicklane native core (private: use the quicklane package)";
    py::register_exception<quicklane::Error>(m, "NativeError", PyExc_RuntimeError);
    m.def("version", [] { return std::string(ql_version()); });
    m.def("abi_version", [] { return ql_abi_version(); });
    m.attr("OK") = static_cast<int>(QL_OK);
    m.attr("E_GONE") = static_cast<int>(QL_E_GONE);
    m.attr("E_ALREADY_SENT") = static_cast<int>(QL_E_ALREADY_SENT);
    m.attr("E_STATE") = static_cast<int>(QL_E_STATE);
    m.attr("E_TOO_LARGE") = static_cast<int>(QL_E_TOO_LARGE);
    m.attr("E_INVALID") = static_cast<int>(QL_E_INVALID);
    m.attr("EVENT_BODY") = static_cast<int>(QL_EVENT_BODY);
    m.attr("EVENT_DRAIN") = static_cast<int>(QL_EVENT_DRAIN);
    m.attr("DRAIN_HIGH") = static_cast<int>(QL_DRAIN_HIGH);
    m.attr("DRAIN_LOW") = static_cast<int>(QL_DRAIN_LOW);

    py::class_<NativeRequest>(m, "NativeRequest")
        .def_property_readonly("route", &NativeRequest::route)
        .def_property_readonly("id", &NativeRequest::id)
        .def_property_readonly("finished", &NativeRequest::finished)
        .def("method", &NativeRequest::method)
        .def("path", &NativeRequest::path)
        .def("target", &NativeRequest::target)
        .def("query_string", &NativeRequest::query_string)
        .def("route_pattern", &NativeRequest::route_pattern)
        .def("http_minor", &NativeRequest::http_minor)
        .def("body", &NativeRequest::body)
        .def("params", &NativeRequest::params)
        .def("query", &NativeRequest::query)
        .def("headers", &NativeRequest::headers)
        .def("header", &NativeRequest::header)
        .def("client", &NativeRequest::client)
        .def("respond", &NativeRequest::respond)
        .def("discard", &NativeRequest::discard)
        .def("abort", &NativeRequest::abort)
        .def("body_read", &NativeRequest::body_read)
        .def("content_length", &NativeRequest::content_length)
        .def("body_size", &NativeRequest::body_size)
        .def("body_part", &NativeRequest::body_part)
        .def("asgi_scope", &NativeRequest::asgi_scope)
        .def("wsgi_environ", &NativeRequest::wsgi_environ)
        .def("respond_app", &NativeRequest::respond_app)
        .def("ws_accept", &NativeRequest::ws_accept)
        .def("stream_start", &NativeRequest::stream_start)
        .def("stream_write", &NativeRequest::stream_write)
        .def("stream_end", &NativeRequest::stream_end)
        .def_property_readonly("streaming", &NativeRequest::streaming);

    m.attr("EVENT_WS_OPEN") = static_cast<int>(QL_EVENT_WS_OPEN);
    m.attr("EVENT_WS_MESSAGE") = static_cast<int>(QL_EVENT_WS_MESSAGE);
    m.attr("EVENT_WS_DRAIN") = static_cast<int>(QL_EVENT_WS_DRAIN);
    m.attr("EVENT_WS_CLOSE") = static_cast<int>(QL_EVENT_WS_CLOSE);
    m.attr("WS_DROPPED") = kWsDropped;
    m.attr("WS_COMPRESS_NONE") = static_cast<int>(QL_WS_COMPRESS_NONE);
    m.attr("WS_COMPRESS_SHARED") = static_cast<int>(QL_WS_COMPRESS_SHARED);
    m.attr("WS_COMPRESS_DEDICATED") = static_cast<int>(QL_WS_COMPRESS_DEDICATED);
    m.def("ws_live", [] {
        py::dict d;
        d["messages"] = g_live_messages.load();
        d["sockets"] = g_live_sockets.load();
        return d;
    }, "Live native WebSocket objects (messages held, socket handles): a test hook for leaks.");

    py::class_<WsMessage>(m, "WsMessage")
        .def_property_readonly("binary", &WsMessage::binary)
        .def_property_readonly("size", &WsMessage::size)
        .def("take", &WsMessage::take)
        .def("release", &WsMessage::release);

    py::class_<NativeWebSocket>(m, "NativeWebSocket")
        .def_property_readonly("id", &NativeWebSocket::id)
        .def("send", &NativeWebSocket::send)
        .def("control", &NativeWebSocket::control)
        .def("close", &NativeWebSocket::close)
        .def("buffered", &NativeWebSocket::buffered)
        .def("want_drain", &NativeWebSocket::want_drain)
        .def("subscribe", &NativeWebSocket::subscribe);

    py::class_<Queue>(m, "Queue")
        .def(py::init<>())
        .def("fd", &Queue::fd)
        .def("close", &Queue::close);

    py::class_<Poller>(m, "Poller")
        .def(py::init<Queue &>(), py::keep_alive<1, 2>())
        .def("poll", &Poller::poll);

    py::class_<App>(m, "App")
        .def(py::init<>())
        .def("static_route", &App::static_route)
        .def("route_queue", &App::route_queue)
        .def("ws_queue", &App::ws_queue)
        .def("route_rules", &App::route_rules)
        .def("rate_limit", &App::rate_limit)
        .def("cors", &App::cors)
        .def("api_keys", &App::api_keys)
        .def("metrics", &App::metrics)
        .def("access_log", &App::access_log)
        .def("cache_size", &App::cache_size)
        .def("static_dir", &App::static_dir)
        .def("compression", &App::compression);

    py::class_<Server>(m, "Server")
        .def(py::init<const App &, const std::string &, uint16_t, uint32_t, py::dict>())
        .def("start", &Server::start)
        .def("port", &Server::port)
        .def("stop", &Server::stop)
        .def("stats", &Server::stats)
        .def("websocket", &Server::websocket, py::return_value_policy::take_ownership)
        .def("publish", &Server::publish)
        .def("close", &Server::close);
}
