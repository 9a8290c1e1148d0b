// Streamed request bodies (ql_route_options.stream_body, ql_request_body_read)
// through the C++ wrapper: uploads hashed as they arrive, backpressure,
// limits, 100-continue, early answers, aborts.
#include "test_support.hpp"

#include <openssl/evp.h>

#include <fstream>

#include "quicklane.hpp"

using namespace qlt;
namespace q = quicklane;

namespace {

struct Sha256 {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    Sha256() { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
    ~Sha256() { EVP_MD_CTX_free(ctx); }
    void update(std::string_view s) { EVP_DigestUpdate(ctx, s.data(), s.size()); }
    std::string hex() {
        unsigned char md[32];
        unsigned int n = 0;
        EVP_DigestFinal_ex(ctx, md, &n);
        static const char *d = "0123456789abcdef";
        std::string out;
        for (unsigned i = 0; i < n; ++i) {
            out.push_back(d[md[i] >> 4]);
            out.push_back(d[md[i] & 15]);
        }
        return out;
    }
};

// Deterministic upload bytes, made a piece at a time (the client never holds the whole body).
std::string piece(size_t index, size_t len) {
    std::string s(len, '\0');
    uint32_t x = static_cast<uint32_t>(index * 2654435761u + 12345);
    for (size_t i = 0; i < len; ++i) {
        x = x * 1103515245u + 12345u;
        s[i] = static_cast<char>(x >> 24);
    }
    return s;
}

std::string expected_hash(size_t total, size_t chunk) {
    Sha256 h;
    for (size_t off = 0, i = 0; off < total; off += chunk, ++i) h.update(piece(i, std::min(chunk, total - off)));
    return h.hex();
}

long rss_kib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// Sends a body of `total` bytes in `chunk` pieces, Content-Length or chunked.
bool send_upload(Client &c, std::string_view path, size_t total, size_t chunk, bool chunked,
                 std::string_view extra = {}) {
    std::string head = "POST " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n" + std::string(extra);
    head += chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "Content-Length: " + std::to_string(total) + "\r\n\r\n";
    if (!c.send(head)) return false;
    for (size_t off = 0, i = 0; off < total; off += chunk, ++i) {
        std::string p = piece(i, std::min(chunk, total - off));
        if (chunked) {
            char hex[20];
            snprintf(hex, sizeof hex, "%zx\r\n", p.size());
            p = hex + p + "\r\n";
        }
        if (!c.send(p)) return false;
    }
    return !chunked || c.send("0\r\n\r\n");
}

// An app with POST /upload (route_stream: SHA-256 of the body) and GET /ping.
q::App upload_app(std::atomic<int> *errors = nullptr, std::atomic<int> *last_error = nullptr,
                  uint64_t limit = 0) {
    q::App app;
    app.route_stream(
        "POST", "/upload",
        [errors, last_error](q::Request &, q::Responder res) {
            auto h = std::make_shared<Sha256>();
            auto n = std::make_shared<size_t>(0);
            return q::BodySink{
                .on_data = [h, n](std::string_view d) { h->update(d), *n += d.size(); },
                .on_end = [h, n, res] { res.send(q::Response::text(h->hex() + " " + std::to_string(*n))); },
                .on_error =
                    [errors, last_error](q::Status st) {
                        if (errors) ++*errors;
                        if (last_error) *last_error = st;
                    },
            };
        },
        limit);
    app.get("/ping", [](q::Request &) { return q::Response::text("pong"); });
    return app;
}

}  // namespace

// 64 MiB in `make test`; `SOAK_MODE=upload make soak` sets QL_UPLOAD_MIB=1024.
static size_t upload_bytes() {
    const char *mib = std::getenv("QL_UPLOAD_MIB");
    return (mib ? std::strtoull(mib, nullptr, 10) : 64) << 20;
}

TEST_CASE("a 64 MiB upload, Content-Length and chunked, is hashed as it arrives with bounded memory") {
    q::App app = upload_app();
    q::Server srv(app, q::ServerOptions{.workers = 1});
    srv.start();
    const size_t total = upload_bytes(), chunk = 256 * 1024;
    const std::string want = expected_hash(total, chunk) + " " + std::to_string(total);
    for (bool chunked : {false, true}) {
        CAPTURE(chunked);
        long before = rss_kib();
        Client c(srv.port());
        REQUIRE(send_upload(c, "/upload", total, chunk, chunked));
        auto r = c.read_response(20000);
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->body == want);
        long grown = rss_kib() - before;
        CAPTURE(grown);
        CHECK(grown < 32 * 1024);
        // The connection goes on: the body was read to its end.
        REQUIRE(c.send("GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"));
        auto p = c.read_response();
        REQUIRE(p);
        CHECK(p->body == "pong");
    }
}

TEST_CASE("a slow reader pauses the connection: memory stays bounded by the window") {
    q::App app;
    std::atomic<size_t> got{0};
    std::vector<std::thread> readers;
    std::mutex mu;
    app.route_async("POST", "/slow", [&](q::Request &req, q::Responder res) {
        q::BodyReader body = req.body_reader();
        std::lock_guard lk(mu);
        readers.emplace_back([body, res, &got] {
            char buf[64 * 1024];
            Sha256 h;
            size_t n, total = 0;
            while ((n = body.read(buf, sizeof buf)) > 0) {
                h.update({buf, n});
                total += n;
                got = total;
                std::this_thread::sleep_for(std::chrono::microseconds(500));
            }
            res.send(q::Response::text(h.hex()));
        });
    });
    app.route_rules("POST", "/slow", q::RouteRules{.stream_body = true});
    q::Server srv(app, q::ServerOptions{.workers = 1, .body_window_bytes = 128 * 1024});
    srv.start();
    const size_t total = upload_bytes(), chunk = 64 * 1024;
    long before = rss_kib();
    Client c(srv.port());
    std::atomic<size_t> sent_when_half{0};
    std::thread sender([&] { REQUIRE(send_upload(c, "/slow", total, chunk, false)); });
    while (got < total / 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    long grown = rss_kib() - before;
    auto r = c.read_response(60000);
    sender.join();
    {
        std::lock_guard lk(mu);
        for (auto &t : readers) t.join();
    }
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == expected_hash(total, chunk));
    CAPTURE(grown);
    CHECK(grown < 32 * 1024);
}

TEST_CASE("a client that leaves mid-upload: one error for the host, no hang") {
    std::atomic<int> errors{0}, last{0};
    q::App app = upload_app(&errors, &last);
    // A threaded reader too: its blocking read ends with QL_E_GONE.
    std::atomic<int> reader_status{1};
    std::thread reader;
    app.route_async("POST", "/read", [&](q::Request &req, q::Responder res) {
        reader = std::thread([body = req.body_reader(), res, &reader_status] {
            char buf[4096];
            try {
                while (body.read(buf, sizeof buf) > 0) {
                }
                reader_status = 0;
            } catch (const q::Error &e) {
                reader_status = e.code();
            }
            res.send(q::Response::text("late"));
        });
    });
    app.route_rules("POST", "/read", q::RouteRules{.stream_body = true});
    q::Server srv(app, q::ServerOptions{.workers = 1});
    srv.start();
    {
        Client c(srv.port());
        REQUIRE(c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + piece(0, 5000)));
        sleep_ms(50);
        c.reset();
    }
    CHECK(wait_until([&] { return errors.load() == 1; }));
    sleep_ms(100);
    CHECK(errors.load() == 1);
    CHECK(last.load() == QL_E_GONE);
    {
        Client c(srv.port());
        REQUIRE(c.send("POST /read HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"));
        sleep_ms(50);
        c.reset();
    }
    CHECK(wait_until([&] { return reader_status.load() != 1; }));
    if (reader.joinable()) reader.join();
    CHECK(reader_status.load() == QL_E_GONE);
    CHECK(wait_until([&] { return srv.stats().requests_in_flight == 0; }));
}

TEST_CASE("answered before the body's end: a read past what arrived fails, never a clean end") {
    q::App app;
    std::atomic<int> status{1};  // 1: reading; 0: a clean end; else the error
    std::atomic<size_t> got{0};
    std::thread reader;
    app.route_async("POST", "/answered", [&](q::Request &req, q::Responder res) {
        reader = std::thread([body = req.body_reader(), res, &status, &got] {
            char buf[4096];
            try {
                while (got < 4096) got += body.read(buf, sizeof buf);
                res.send(q::Response::text("early"));
                while (size_t n = body.read(buf, sizeof buf)) got += n;
                status = 0;
            } catch (const q::Error &e) {
                status = e.code();
            }
        });
    });
    app.route_rules("POST", "/answered", q::RouteRules{.stream_body = true});
    app.get("/ping", [](q::Request &) { return q::Response::text("pong"); });
    q::Server srv(app, q::ServerOptions{.workers = 1});
    srv.start();
    const size_t total = 100 * 1024;
    Client c(srv.port());
    REQUIRE(c.send("POST /answered HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n" +
                   piece(0, 4096)));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == "early");
    sleep_ms(50);  // the reader waits for more
    REQUIRE(c.send(piece(1, total - 4096)));
    CHECK(wait_until([&] { return status.load() != 1; }));
    if (reader.joinable()) reader.join();
    CHECK(status.load() == QL_E_GONE);
    CHECK(got.load() == 4096);
    // The dropped rest was a short one: the connection goes on.
    REQUIRE(c.send("GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto p = c.read_response();
    REQUIRE(p);
    CHECK(p->body == "pong");
}

TEST_CASE("a client that leaves while its upload is paused is noticed before the handler timeout") {
    q::App app;
    std::mutex mu;
    std::vector<std::pair<q::BodyReader, q::Responder>> held;  // handlers that do not read (yet)
    std::atomic<int> aborted{0};
    app.route_async(
        "POST", "/held",
        [&](q::Request &req, q::Responder res) {
            std::lock_guard lk(mu);
            held.emplace_back(req.body_reader(), res);
        },
        [&](q::Responder res) {
            ++aborted;
            res.send(q::Response::text("gone"));  // frees it (QL_E_GONE)
        });
    app.route_rules("POST", "/held", q::RouteRules{.stream_body = true});
    q::Server srv(app, q::ServerOptions{.workers = 1, .handler_timeout_ms = 30000, .body_window_bytes = 64 * 1024});
    srv.start();
    auto t0 = std::chrono::steady_clock::now();
    auto secs = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

    // FIN with a declared length the queue cannot complete; a reset; a
    // chunked body without its end: each is one abort, in about a tick.
    // (A FIN is seen only once it arrived: a client whose unsent bytes
    // queue behind the paused window sends it after them, as TCP does.)
    {
        Client c(srv.port());
        REQUIRE(c.send("POST /held HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n" + piece(0, 100 * 1024)));
        sleep_ms(100);
        c.close();
    }
    CHECK(wait_until([&] { return aborted.load() == 1; }, 5000));
    {
        Client c(srv.port());
        REQUIRE(c.send("POST /held HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n" + piece(1, 300 * 1024)));
        sleep_ms(100);
        c.reset();
    }
    CHECK(wait_until([&] { return aborted.load() == 2; }, 5000));
    {
        Client c(srv.port());
        std::string chunk = piece(2, 40 * 1024);
        char hex[20];
        snprintf(hex, sizeof hex, "%zx\r\n", chunk.size());
        std::string body;
        for (int i = 0; i < 3; ++i) body += hex + chunk + "\r\n";
        REQUIRE(c.send("POST /held HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + body));
        sleep_ms(100);
        c.close();
    }
    CHECK(wait_until([&] { return aborted.load() == 3; }, 5000));
    CHECK(secs() < 15);  // well before the 30 s handler timeout

    // A paused handler that reads later gets its whole body.
    const size_t total = 200 * 1024;
    Client c(srv.port());
    REQUIRE(c.send("POST /held HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n" +
                   piece(0, total)));
    REQUIRE(wait_until([&] {
        std::lock_guard lk(mu);
        return held.size() == 4;
    }));
    sleep_ms(1500);  // more than a tick, paused all along
    CHECK(aborted.load() == 3);
    std::thread reader;
    {
        std::lock_guard lk(mu);
        reader = std::thread([body = held.back().first, res = held.back().second] {
            char buf[64 * 1024];
            Sha256 h;
            size_t n, got = 0;
            while ((n = body.read(buf, sizeof buf)) > 0) h.update({buf, n}), got += n;
            res.send(q::Response::text(h.hex() + " " + std::to_string(got)));
        });
    }
    auto r = c.read_response(10000);
    reader.join();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == expected_hash(total, total) + " " + std::to_string(total));
    CHECK(wait_until([&] { return srv.stats().requests_in_flight == 0; }));
}

TEST_CASE("Expect: 100-continue is answered on the first read, never when the handler refuses first") {
    q::App app;
    std::atomic<bool> may_read{false};
    std::thread reader;
    app.route_async("PUT", "/late", [&](q::Request &req, q::Responder res) {
        reader = std::thread([body = req.body_reader(), res, &may_read] {
            while (!may_read) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            res.send(q::Response::text(body.read_all()));
        });
    });
    app.route_rules("PUT", "/late", q::RouteRules{.stream_body = true});
    app.route_stream("PUT", "/refuse", [](q::Request &, q::Responder res) {
        res.send(q::Response{.status = 401, .content_type = "text/plain", .body = "no"});
        return q::BodySink{};
    });
    q::Server srv(app, q::ServerOptions{.workers = 1});
    srv.start();

    Client c(srv.port());
    REQUIRE(c.send("PUT /late HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
    CHECK(c.quiet_for(150));  // nothing before the handler reads
    may_read = true;
    auto cont = c.read_response();
    REQUIRE(cont);
    CHECK(cont->status == 100);
    REQUIRE(c.send("hello"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "hello");
    reader.join();

    // Refused before any read: the 401 comes, no 100, and the connection closes
    // (the client may or may not send the body now).
    Client d(srv.port());
    REQUIRE(d.send("PUT /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\nExpect: 100-continue\r\n\r\n"));
    auto e = d.read_response();
    REQUIRE(e);
    CHECK(e->status == 401);
    CHECK(e->connection_has("close"));
    CHECK(d.wait_closed());
}

TEST_CASE("an early answer: a short rest is dropped and the connection kept, a long one closes") {
    q::App app;
    app.route_stream("POST", "/early", [](q::Request &, q::Responder res) {
        res.send(q::Response{.status = 403, .content_type = "text/plain", .body = "forbidden"});
        return q::BodySink{};
    });
    app.get("/ping", [](q::Request &) { return q::Response::text("pong"); });
    app.get("/secret", [](q::Request &) { return q::Response::text("SECRET"); });
    q::Server srv(app, q::ServerOptions{.workers = 1});
    srv.start();

    // The body looks like a request: it is body bytes, never parsed as one.
    std::string smuggled = "GET /secret HTTP/1.1\r\nHost: t\r\n\r\n";
    std::string body = smuggled + std::string(100 * 1024 - smuggled.size(), 'x');
    Client c(srv.port());
    REQUIRE(c.send("POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 403);
    CHECK_FALSE(r->connection_has("close"));
    REQUIRE(c.send(body));
    REQUIRE(c.send("GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto p = c.read_response();
    REQUIRE(p);
    CHECK(p->body == "pong");
    CHECK(c.quiet_for(100));  // no answer from /secret

    // 20 MB declared: not worth reading; the answer says close and the
    // client reads it whole while it is still sending.
    Client d(srv.port());
    REQUIRE(d.send("POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: 20000000\r\n\r\n" + piece(0, 200000)));
    auto e = d.read_response();
    REQUIRE(e);
    CHECK(e->status == 403);
    CHECK(e->body == "forbidden");
    CHECK(e->connection_has("close"));
    CHECK(d.wait_closed());

    // Chunked, answered early: the rest is unknown, so the answer closes.
    Client f(srv.port());
    REQUIRE(f.send("POST /early HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"));
    auto g = f.read_response();
    REQUIRE(g);
    CHECK(g->status == 403);
    CHECK(g->connection_has("close"));
}

TEST_CASE("streamed-body limits: a declared length over it is 413 unread, a chunked body crossing it 413 + close") {
    std::atomic<int> errors{0}, last{0};
    q::App app = upload_app(&errors, &last, 1u << 20);
    std::atomic<int> calls{0};
    app.route_stream("POST", "/server-limit", [&](q::Request &, q::Responder res) {
        ++calls;
        return q::BodySink{.on_end = [res] { res.send(q::Response::text("ok")); }};
    });
    q::Server srv(app, q::ServerOptions{.workers = 1, .max_stream_body_bytes = 4u << 20});
    srv.start();

    Client a(srv.port());
    REQUIRE(a.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n"));
    auto r = a.read_response();
    REQUIRE(r);
    CHECK(r->status == 413);
    CHECK(r->body.find("request body too large") != std::string::npos);
    CHECK(errors.load() == 0);  // the handler never ran

    Client b(srv.port());
    (void)send_upload(b, "/upload", 3u << 20, 64 * 1024, true);  // the server may close before the end
    auto s = b.read_response();
    REQUIRE(s);
    CHECK(s->status == 413);
    CHECK(s->connection_has("close"));
    CHECK(b.wait_closed());
    CHECK(wait_until([&] { return errors.load() == 1; }));
    CHECK(last.load() == QL_E_TOO_LARGE);

    // The server-wide limit applies where the route sets none; under it, all is well.
    Client c(srv.port());
    REQUIRE(c.send("POST /server-limit HTTP/1.1\r\nHost: t\r\nContent-Length: 5000000\r\n\r\n"));
    auto t = c.read_response();
    REQUIRE(t);
    CHECK(t->status == 413);
    CHECK(calls.load() == 0);
    Client d(srv.port());
    REQUIRE(send_upload(d, "/server-limit", 3u << 20, 64 * 1024, false));
    auto u = d.read_response();
    REQUIRE(u);
    CHECK(u->status == 200);
    CHECK(wait_until([&] { return srv.stats().requests_in_flight == 0; }));
}

TEST_CASE("buffered routes keep their limit; body_reader reads a buffered body too") {
    q::App app;
    app.post("/buffered", [](q::Request &req) {
        std::string via_reader;
        // On the loop thread only non-waiting reads are allowed; a buffered body is all there.
        char buf[7];
        size_t n;
        while ((n = req.body_reader().read(buf, sizeof buf, 0)) > 0) via_reader.append(buf, n);
        return q::Response::text(via_reader + "|" + std::string(req.body()));
    });
    q::Server srv(app, q::ServerOptions{.workers = 1});
    srv.start();
    Client c(srv.port());
    REQUIRE(c.send("POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == "hello world|hello world");
    Client d(srv.port());
    REQUIRE(d.send("POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n"));
    auto e = d.read_response();
    REQUIRE(e);
    CHECK(e->status == 413);
}

TEST_CASE("a read that would wait on the loop thread is refused; bad stream options are refused") {
    q::App app;
    std::atomic<int> status{1};
    app.route_stream("POST", "/x", [&](q::Request &req, q::Responder res) {
        try {
            char b[4];
            req.body_reader().read(b, sizeof b, 100);
            status = 0;
        } catch (const q::Error &e) {
            status = e.code();
        }
        res.send(q::Response::text("done"));
        return q::BodySink{};
    });
    q::Server srv(app, q::ServerOptions{.workers = 1});
    srv.start();
    Client c(srv.port());
    REQUIRE(c.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(status.load() == QL_E_STATE);

    ql_app *a = nullptr;
    REQUIRE(ql_app_new(&a, nullptr) == QL_OK);
    REQUIRE(add_route(a, "POST", "/v", [](ql_request *req) { respond(req, 200, "text/plain", "x"); }) == QL_OK);
    ql_route_options o = QL_ROUTE_OPTIONS_INIT;
    o.stream_body = 1;
    o.body_schema = R"({"type":"object"})";
    o.body_schema_len = std::strlen(o.body_schema);
    Err err;
    CHECK(ql_app_route_options(a, "POST", 4, "/v", 2, &o, err.out()) == QL_E_INVALID);
    CHECK(err.message().find("body_schema") != std::string::npos);
    ql_route_options p = QL_ROUTE_OPTIONS_INIT;
    p.max_body_bytes = 10;
    CHECK(ql_app_route_options(a, "POST", 4, "/v", 2, &p, err.out()) == QL_E_INVALID);
    REQUIRE(add_static(a, "GET", "/s", 200, "text/plain", "s") == QL_OK);
    ql_route_options st = QL_ROUTE_OPTIONS_INIT;
    st.stream_body = 1;
    CHECK(ql_app_route_options(a, "GET", 3, "/s", 2, &st, err.out()) == QL_E_INVALID);
    // A v1 caller's struct (no stream fields) still works.
    ql_route_options v1;
    ql_route_options_init(&v1, 1);
    CHECK(ql_app_route_options(a, "POST", 4, "/v", 2, &v1, err.out()) == QL_OK);
    ql_server_options so = QL_SERVER_OPTIONS_INIT;
    so.body_window_bytes = 100;
    ql_server *s = nullptr;
    CHECK(ql_server_new(a, &so, &s, err.out()) == QL_E_INVALID);
    CHECK(err.message().find("body_window_bytes") != std::string::npos);
    ql_app_free(&a);
}

TEST_CASE("pipelined behind a streamed upload, answers keep their order") {
    q::App app = upload_app();
    q::Server srv(app, q::ServerOptions{.workers = 1});
    srv.start();
    Client c(srv.port());
    std::string body = piece(0, 300000);
    Sha256 h;
    h.update(body);
    REQUIRE(c.send("GET /ping HTTP/1.1\r\nHost: t\r\n\r\nPOST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body + "GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto a = c.read_response(), b = c.read_response(), d = c.read_response();
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(d);
    CHECK(a->body == "pong");
    CHECK(b->body == h.hex() + " 300000");
    CHECK(d->body == "pong");
}

TEST_CASE("two workers, 16 concurrent uploads (loop sinks and threaded readers), a small window: every body whole") {
    // Many pause/resume cycles per upload (a 16 KiB window) on both loops at
    // once, half read on the loop (route_stream), half by host threads
    // (body_reader): a lost resume would hang an upload, a lost or doubled
    // byte would change its hash.
    q::App app = upload_app();
    std::vector<std::thread> readers;
    std::mutex mu;
    app.route_async("POST", "/threaded", [&](q::Request &req, q::Responder res) {
        q::BodyReader body = req.body_reader();
        std::lock_guard lk(mu);
        readers.emplace_back([body, res, k = readers.size()] {
            std::vector<char> buf(7000 + (k % 5) * 3000);  // read sizes vary from reader to reader
            Sha256 h;
            size_t n, total = 0;
            while ((n = body.read(buf.data(), buf.size())) > 0) h.update({buf.data(), n}), total += n;
            res.send(q::Response::text(h.hex() + " " + std::to_string(total)));
        });
    });
    app.route_rules("POST", "/threaded", q::RouteRules{.stream_body = true});
    q::Server srv(app, q::ServerOptions{.workers = 2, .body_window_bytes = 16 * 1024});
    srv.start();
    constexpr int kClients = 16;
    std::vector<std::string> got(kClients), want(kClients);
    std::vector<std::thread> clients;
    for (int k = 0; k < kClients; ++k) {
        const size_t total = (3u << 20) + k * 37 * 1024 + k, chunk = 16 * 1024 + k * 1000;
        want[k] = expected_hash(total, chunk) + " " + std::to_string(total);
        clients.emplace_back([&, k, total, chunk] {
            Client c(srv.port());
            if (!send_upload(c, k % 2 ? "/threaded" : "/upload", total, chunk, k % 4 >= 2)) {
                got[k] = "send failed";
                return;
            }
            auto r = c.read_response(60000);
            got[k] = r ? std::to_string(r->status) + " " + r->body : "no answer";
        });
    }
    for (auto &t : clients) t.join();
    {
        std::lock_guard lk(mu);
        for (auto &t : readers) t.join();
    }
    for (int k = 0; k < kClients; ++k) {
        CAPTURE(k);
        CHECK(got[k] == "200 " + want[k]);
    }
}

TEST_CASE("C++ StreamWriter: SSE events, a sized answer, an abort") {
    q::App app;
    std::vector<std::thread> producers;
    std::mutex mu;
    app.route_async("GET", "/events", [&](q::Request &, q::Responder res) {
        std::lock_guard lk(mu);
        producers.emplace_back([res] {
            q::StreamWriter w = res.start(q::sse::head());
            w.write(q::sse::event("hello\nworld\r\nand\rmore", "greeting", "1"));
            w.write(q::sse::keep_alive());
            w.end();
        });
    });
    app.route_async("GET", "/sized", [](q::Request &, q::Responder res) {
        q::StreamWriter w = res.start(q::Response::text(""), 6);
        w.write("abc");
        w.write("def");
        w.end();
    });
    app.route_async("GET", "/broken", [](q::Request &, q::Responder res) {
        q::StreamWriter w = res.start(q::Response::text("partial"));
        w.abort();
    });
    q::Server srv(app, q::ServerOptions{.workers = 1});
    srv.start();
    Client c(srv.port());
    REQUIRE(c.send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->header("Content-Type") == std::optional<std::string>("text/event-stream"));
    CHECK(r->body == "event: greeting\nid: 1\ndata: hello\ndata: world\ndata: and\ndata: more\n\n: keep-alive\n\n");
    CHECK_THROWS_AS(q::sse::event("x", "a\nb"), q::Error);
    CHECK_THROWS_AS(q::sse::event("x", "", "1\r"), q::Error);
    CHECK(q::sse::event("a\r\n") == "data: a\ndata: \n\n");
    REQUIRE(c.send("GET /sized HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto s = c.read_response();
    REQUIRE(s);
    CHECK(s->header("Content-Length") == std::optional<std::string>("6"));
    CHECK(s->body == "abcdef");
    Client d(srv.port());
    REQUIRE(d.send("GET /broken HTTP/1.1\r\nHost: t\r\n\r\n"));
    CHECK(d.wait_closed());
    CHECK(d.buf.find("0\r\n\r\n") == std::string::npos);
    std::lock_guard lk(mu);
    for (auto &t : producers) t.join();
}
