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
#include <optional>
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

// Builds a ql_response over Python objects and calls fn with it.
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
            keep.emplace_back(pair[0]);
            keep.emplace_back(pair[1]);
            hs.push_back(ql_header{keep[2 * i].data, keep[2 * i].len, keep[2 * i + 1].data, keep[2 * i + 1].len});
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

    // Frees a request nobody will answer (its client left): QL_E_GONE or OK.
    int discard() {
        if (!req_) return QL_E_ALREADY_SENT;
        ql_response res = QL_RESPONSE_INIT;
        res.status = 503;
        ql_status st = ql_respond(server_, id_, &res, nullptr);
        req_ = nullptr;
        return st;
    }

private:
    const ql_request *live() const {
        if (!req_) throw py::value_error("quicklane: request data used after the request was answered");
        return req_;
    }
    ql_request *req_;
    ql_server *server_;
    ql_req_id id_;
    int route_;
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
        py::list out(n);
        for (size_t i = 0; i < n; ++i) {
            const ql_event &ev = events_[i];
            if (ev.kind == QL_EVENT_REQUEST)
                out[i] = py::cast(new NativeRequest(ev), py::return_value_policy::take_ownership);
            else
                out[i] = py::int_(ev.id);
        }
        return out;
    }

private:
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
    const quicklane::App &cpp() const { return app_; }

private:
    quicklane::App app_;
};

class Server {
public:
    Server(const App &app, const std::string &host, uint16_t port, uint32_t workers, py::dict limits) {
        quicklane::ServerOptions o;
        o.host = host;
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
            else throw py::value_error("unknown server option: " + k);
        }
        server_.emplace(app.cpp(), o);
    }
    void start() {
        py::gil_scoped_release nogil;
        // The loop threads inherit this mask: SIGINT/SIGTERM stay with Python.
        sigset_t set, old;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, &old);
        try {
            server_->start();
        } catch (...) {
            pthread_sigmask(SIG_SETMASK, &old, nullptr);
            throw;
        }
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
    uint16_t port() const { return server_ ? server_->port() : 0; }
    void stop(uint32_t timeout_ms) {
        if (!server_) return;
        py::gil_scoped_release nogil;
        server_->stop(timeout_ms);
    }
    py::dict stats() const {
        py::dict d;
        if (!server_) return d;
        auto s = server_->stats();
        d["connections_open"] = s.connections_open;
        d["connections_total"] = s.connections_total;
        d["requests_total"] = s.requests_total;
        d["requests_in_flight"] = s.requests_in_flight;
        return d;
    }
    // Frees the server; every request it held is gone afterwards.
    void close() {
        py::gil_scoped_release nogil;
        server_.reset();
    }

private:
    std::optional<quicklane::Server> server_;
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
        .def("discard", &NativeRequest::discard);

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
        .def("route_queue", &App::route_queue);

    py::class_<Server>(m, "Server")
        .def(py::init<const App &, const std::string &, uint16_t, uint32_t, py::dict>())
        .def("start", &Server::start)
        .def("port", &Server::port)
        .def("stop", &Server::stop)
        .def("stats", &Server::stats)
        .def("close", &Server::close);
}
