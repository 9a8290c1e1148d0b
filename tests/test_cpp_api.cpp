// The C++ wrapper (bindings/cpp/include/quicklane.hpp) against a real server
// on 127.0.0.1 with an ephemeral port; cpp-httplib is the client.
#include <doctest.h>
#include <quicklane.hpp>

// The raw HTTP/1.1 client of the C ABI tests; test_support.hpp also pulls in
// cpp-httplib when the target links it (Debian ships it as a split library).
#include "test_support.hpp"

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace ql = quicklane;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kInternalError = R"({"detail":"Internal Server Error"})";

ql::Server start(const ql::App& app, std::uint32_t workers = 2) {
    ql::Server server(app, {.host = "127.0.0.1", .port = 0, .workers = workers});
    server.start();
    REQUIRE(server.port() != 0);
    return server;
}

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct Reply {
    int status = 0;
    std::string body;
    HeaderList headers;

    std::optional<std::string> header(std::string_view name) const {
        for (const auto& [k, v] : headers)
            if (qlt::lower(k) == qlt::lower(std::string(name))) return v;
        return std::nullopt;
    }
};

// One request per call on a fresh connection: cpp-httplib when the test links
// it, the raw client otherwise.
class Http {
public:
    explicit Http(std::uint16_t port) : port_(port) {}

    std::optional<Reply> get(std::string_view target, const HeaderList& headers = {}) const {
        return send("GET", target, {}, {}, headers);
    }
    std::optional<Reply> post(std::string_view target, std::string_view body, std::string_view content_type) const {
        return send("POST", target, body, content_type, {});
    }

private:
    std::optional<Reply> send(std::string_view method, std::string_view target, std::string_view body,
                              std::string_view content_type, const HeaderList& headers) const {
#ifdef QL_TEST_HAVE_HTTPLIB
        httplib::Client cli("127.0.0.1", port_);
        cli.set_url_encode(false);  // send targets exactly as written
        cli.set_connection_timeout(2, 0);
        cli.set_read_timeout(5, 0);
        httplib::Headers hs;
        for (const auto& [k, v] : headers) hs.emplace(k, v);
        std::string path(target);
        auto res = method == "GET" ? cli.Get(path, hs)
                                   : cli.Post(path, hs, std::string(body), std::string(content_type));
        if (!res) return std::nullopt;
        Reply out{res->status, res->body, {}};
        for (const auto& [k, v] : res->headers) out.headers.emplace_back(k, v);
        return out;
#else
        std::string extra;
        if (!content_type.empty()) extra.append("Content-Type: ").append(content_type).append("\r\n");
        for (const auto& [k, v] : headers) extra.append(k).append(": ").append(v).append("\r\n");
        auto res = qlt::fetch(port_, method, target, body, extra);
        if (!res) return std::nullopt;
        return Reply{res->status, res->body, res->headers};
#endif
    }

    std::uint16_t port_;
};

Http client(const ql::Server& server) { return Http(server.port()); }

// "key=value" lines into a map.
std::map<std::string, std::string> parse_lines(const std::string& body) {
    std::map<std::string, std::string> out;
    std::size_t pos = 0;
    while (pos < body.size()) {
        std::size_t nl = body.find('\n', pos);
        if (nl == std::string::npos) nl = body.size();
        std::string line = body.substr(pos, nl - pos);
        std::size_t eq = line.find('=');
        if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
        pos = nl + 1;
    }
    return out;
}

// Threads started by handlers; joined before the server goes away.
struct ThreadBag {
    std::mutex mu;
    std::vector<std::thread> threads;
    template <class F>
    void spawn(F&& f) {
        std::lock_guard lock(mu);
        threads.emplace_back(std::forward<F>(f));
    }
    void join() {
        std::vector<std::thread> all;
        {
            std::lock_guard lock(mu);
            all.swap(threads);
        }
        for (auto& t : all) t.join();
    }
    ~ThreadBag() { join(); }
};

// Declared after the Server: joins the handler threads before the server goes.
struct JoinFirst {
    ThreadBag& bag;
    ~JoinFirst() { bag.join(); }
};

}  // namespace

TEST_CASE("version and status names") {
    CHECK(!ql::version().empty());
    CHECK(ql::abi_version() == QL_ABI_VERSION);
    CHECK(ql::status_name(QL_E_GONE) == "QL_E_GONE");
}

TEST_CASE("a sync lambda route sees method, path, params, query and headers") {
    ql::App app;
    app.get("/items/{id}", [](ql::Request& req) {
        std::string out;
        auto line = [&](std::string_view k, std::string_view v) {
            out.append(k).append("=").append(v).append("\n");
        };
        line("method", req.method());
        line("path", req.path());
        line("target", req.target());
        line("query_string", req.query_string());
        line("route", req.route());
        line("id", req.param("id").value_or("<none>"));
        line("nope", req.param("nope").value_or("<none>"));
        line("q", req.query("q").value_or("<none>"));
        line("n", req.query("n").value_or("<none>"));
        line("missing_query", req.query("missing").value_or("<none>"));
        line("token_lower", req.header("x-token").value_or("<none>"));
        line("token_upper", req.header("X-TOKEN").value_or("<none>"));
        line("missing_header", req.header("X-Missing").value_or("<none>"));
        line("params", std::to_string(req.params().size()));
        line("queries", std::to_string(req.queries().size()));
        for (auto [k, v] : req.queries()) line("query." + std::string(k), v);
        for (auto [k, v] : req.params()) line("param." + std::string(k), v);
        for (auto [k, v] : req.headers())
            if (k == "X-Token") line("header_listed", v);
        line("client_ip", req.client_ip());
        line("client_port_set", req.client_port() != 0 ? "yes" : "no");
        line("http_minor", std::to_string(req.http_minor()));
        line("body_empty", req.body().empty() ? "yes" : "no");
        return ql::Response::text(out);
    });
    app.post("/body", [](const ql::Request& req) {  // const Request& works too
        return ql::Response::text("got:" + std::string(req.body()));
    });

    ql::Server server = start(app);
    auto cli = client(server);

    auto res = cli.get("/items/a%20b?q=x+y&n=%31&q=second", {{"X-Token", "abc"}});
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->header("Content-Type") == "text/plain; charset=utf-8");
    auto v = parse_lines(res->body);
    CHECK(v["method"] == "GET");
    CHECK(v["path"] == "/items/a%20b");
    CHECK(v["target"] == "/items/a%20b?q=x+y&n=%31&q=second");
    CHECK(v["query_string"] == "q=x+y&n=%31&q=second");
    CHECK(v["route"] == "/items/{id}");
    CHECK(v["id"] == "a b");
    CHECK(v["nope"] == "<none>");
    CHECK(v["q"] == "x y");
    CHECK(v["n"] == "1");
    CHECK(v["missing_query"] == "<none>");
    CHECK(v["token_lower"] == "abc");
    CHECK(v["token_upper"] == "abc");
    CHECK(v["missing_header"] == "<none>");
    CHECK(v["params"] == "1");
    CHECK(v["queries"] == "3");
    CHECK(v["param.id"] == "a b");
    CHECK(v["query.n"] == "1");
    CHECK(v["header_listed"] == "abc");
    CHECK(v["client_ip"] == "127.0.0.1");
    CHECK(v["client_port_set"] == "yes");
    CHECK(v["http_minor"] == "1");
    CHECK(v["body_empty"] == "yes");

    auto posted = cli.post("/body", R"({"a":1})", "application/json");
    REQUIRE(posted);
    CHECK(posted->status == 200);
    CHECK(posted->body == R"(got:{"a":1})");
}

TEST_CASE("a static route is answered by the core") {
    ql::App app;
    app.static_route("GET", "/ping", ql::Response::json(R"({"message":"pong"})").header("X-Static", "1"));
    ql::Server server = start(app);
    auto cli = client(server);
    for (int i = 0; i < 3; ++i) {
        auto res = cli.get("/ping");
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body == R"({"message":"pong"})");
        CHECK(res->header("Content-Type") == "application/json");
        CHECK(res->header("X-Static") == "1");
    }
}

TEST_CASE("a Response carries a custom status, content type and headers") {
    ql::App app;
    app.post("/things", [](ql::Request&) {
        return ql::Response{.status = 201,
                            .content_type = "text/plain",
                            .headers = {{"X-Custom", "yes"}, {"Location", "/things/1"}},
                            .body = "made"};
    });
    app.get("/many", [](ql::Request&) {  // more headers than the no-allocation fast path
        ql::Response res = ql::Response::json("[]", 202);
        for (int i = 0; i < 12; ++i) res.header("X-H" + std::to_string(i), std::to_string(i * i));
        return res;
    });
    app.get("/empty", [](ql::Request&) { return ql::Response{.status = 204}; });

    ql::Server server = start(app);
    auto cli = client(server);

    auto res = cli.post("/things", "", "text/plain");
    REQUIRE(res);
    CHECK(res->status == 201);
    CHECK(res->body == "made");
    CHECK(res->header("Content-Type") == "text/plain");
    CHECK(res->header("X-Custom") == "yes");
    CHECK(res->header("Location") == "/things/1");

    auto many = cli.get("/many");
    REQUIRE(many);
    CHECK(many->status == 202);
    CHECK(many->body == "[]");
    for (int i = 0; i < 12; ++i)
        CHECK(many->header("X-H" + std::to_string(i)) == std::to_string(i * i));

    auto empty = cli.get("/empty");
    REQUIRE(empty);
    CHECK(empty->status == 204);
    CHECK(empty->body.empty());
    CHECK(!empty->header("Content-Type"));
}

TEST_CASE("a throwing handler answers 500 and the server keeps serving") {
    ql::App app;
    app.get("/boom", [](ql::Request&) -> ql::Response { throw std::runtime_error("boom (expected by the test)"); });
    app.get("/boom-int", [](ql::Request&) -> ql::Response { throw 42; });
    app.get("/bad-header", [](ql::Request&) {  // the core writes Content-Length itself: QL_E_INVALID
        return ql::Response::text("x").header("Content-Length", "1");
    });
    app.get("/bad-status", [](ql::Request&) { return ql::Response::text("x", 1000); });
    app.route_async("GET", "/invalid-then-fixed", [](ql::Request& req, ql::Responder res) {
        // QL_E_INVALID is thrown and leaves the request unanswered and readable.
        try {
            res.send(ql::Response{.status = 42});
            res.send(ql::Response::text("no exception", 500));
        } catch (const ql::Error& e) {
            bool invalid = e.code() == QL_E_INVALID;
            res.send(ql::Response::text(std::string(invalid ? "fixed:" : "wrong code:") + std::string(req.path())));
        }
    });
    app.route_async("GET", "/boom-async", [](ql::Request&, ql::Responder) {
        throw std::logic_error("async boom (expected by the test)");
    });
    app.route_async("GET", "/answered-then-throws", [](ql::Request&, ql::Responder res) {
        res.send(ql::Response::text("answered"));
        throw std::runtime_error("late boom (expected by the test)");
    });
    app.get("/ok", [](ql::Request&) { return ql::Response::text("ok"); });

    ql::Server server = start(app);
    auto cli = client(server);
    for (const char* path : {"/boom", "/boom-int", "/bad-header", "/bad-status", "/boom-async", "/boom"}) {
        CAPTURE(path);
        auto res = cli.get(path);
        REQUIRE(res);
        CHECK(res->status == 500);
        CHECK(res->body == kInternalError);
        CHECK(res->header("Content-Type") == "application/json");
        auto ok = cli.get("/ok");
        REQUIRE(ok);
        CHECK(ok->status == 200);
        CHECK(ok->body == "ok");
    }
    auto fixed = cli.get("/invalid-then-fixed");
    REQUIRE(fixed);
    CHECK(fixed->status == 200);
    CHECK(fixed->body == "fixed:/invalid-then-fixed");

    auto answered = cli.get("/answered-then-throws");
    REQUIRE(answered);
    CHECK(answered->status == 200);
    CHECK(answered->body == "answered");
}

TEST_CASE("route_async is answered later from another thread") {
    ThreadBag bag;
    ql::App app;
    app.route_async("POST", "/slow", [&](ql::Request& req, ql::Responder res) {
        // Request data stays valid until the answer, on any thread.
        bag.spawn([req, res] {
            std::this_thread::sleep_for(50ms);
            std::string body = "slow:" + std::string(req.body()) + ":" + std::string(req.path());
            CHECK(res.send(ql::Response::text(body, 202)) == QL_OK);
        });
    });
    ql::Server server = start(app);
    JoinFirst join_first{bag};

    std::vector<std::thread> clients;
    std::atomic<int> good{0};
    for (int i = 0; i < 4; ++i) {
        clients.emplace_back([&, i] {
            auto cli = client(server);
            auto res = cli.post("/slow", "n" + std::to_string(i), "text/plain");
            if (res && res->status == 202 && res->body == "slow:n" + std::to_string(i) + ":/slow") ++good;
        });
    }
    for (auto& t : clients) t.join();
    CHECK(good == 4);
    bag.join();
}

TEST_CASE("Responder::send twice: the second answer is refused, not fatal") {
    ThreadBag bag;
    std::promise<std::pair<ql::Status, ql::Status>> from_thread;
    std::promise<std::pair<ql::Status, ql::Status>> inline_sends;
    ql::App app;
    app.route_async("GET", "/twice-thread", [&](ql::Request&, ql::Responder res) {
        bag.spawn([&, res] {
            ql::Status a = res.send(ql::Response::text("first"));
            ql::Status b = res.send(ql::Response::text("second"));
            from_thread.set_value({a, b});
        });
    });
    app.route_async("GET", "/twice-inline", [&](ql::Request&, ql::Responder res) {
        ql::Status a = res.send(ql::Response::text("first"));
        ql::Status b = res.send(ql::Response::text("second"));
        inline_sends.set_value({a, b});
    });
    app.get("/ok", [](ql::Request&) { return ql::Response::text("ok"); });
    ql::Server server = start(app);
    JoinFirst join_first{bag};
    auto cli = client(server);

    for (auto* p : {&from_thread, &inline_sends}) {
        const char* path = p == &from_thread ? "/twice-thread" : "/twice-inline";
        CAPTURE(path);
        auto res = cli.get(path);
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body == "first");
        auto fut = p->get_future();
        REQUIRE(fut.wait_for(3s) == std::future_status::ready);
        auto [a, b] = fut.get();
        CHECK(a == QL_OK);
        CHECK((b == QL_E_ALREADY_SENT || b == QL_E_GONE));
    }
    // Still serving.
    auto ok = cli.get("/ok");
    REQUIRE(ok);
    CHECK(ok->body == "ok");
    bag.join();
}

TEST_CASE("an aborted request reaches on_abort and a late send returns QL_E_GONE") {
    std::promise<ql::Responder> held, aborted;
    std::atomic<int> abort_calls{0};
    ql::App app;
    app.route_async(
        "GET", "/hang", [&](ql::Request&, ql::Responder res) { held.set_value(res); },
        [&](ql::Responder res) {
            if (abort_calls++ == 0) aborted.set_value(res);
        });
    ql::Server server = start(app, 1);

    qlt::Client raw(server.port());
    REQUIRE(raw.ok());
    REQUIRE(raw.send(qlt::request("GET", "/hang")));
    auto held_f = held.get_future();
    REQUIRE(held_f.wait_for(3s) == std::future_status::ready);
    ql::Responder res = held_f.get();
    raw.reset();  // the client leaves (RST) before the answer

    auto aborted_f = aborted.get_future();
    REQUIRE(aborted_f.wait_for(3s) == std::future_status::ready);
    ql::Responder gone = aborted_f.get();
    CHECK(gone.id() == res.id());
    CHECK(gone.server() == server.native());
    CHECK(res.send(ql::Response::text("too late")) == QL_E_GONE);
    ql::Status again = res.send(ql::Response::text("again"));  // the request is freed by now
    CHECK((again == QL_E_GONE || again == QL_E_ALREADY_SENT));
    CHECK(abort_calls == 1);
}

TEST_CASE("stop aborts requests that were never answered") {
    std::promise<ql::Responder> held;
    std::promise<void> aborted;
    ql::App app;
    app.route_async(
        "GET", "/never", [&](ql::Request&, ql::Responder res) { held.set_value(res); },
        [&](ql::Responder) { aborted.set_value(); });
    ql::Server server = start(app, 1);

    qlt::Client raw(server.port());
    REQUIRE(raw.ok());
    REQUIRE(raw.send(qlt::request("GET", "/never")));
    auto held_f = held.get_future();
    REQUIRE(held_f.wait_for(3s) == std::future_status::ready);
    ql::Responder res = held_f.get();

    server.stop(100);
    auto aborted_f = aborted.get_future();
    CHECK(aborted_f.wait_for(3s) == std::future_status::ready);
    CHECK(res.send(ql::Response::text("after stop")) == QL_E_GONE);
    server.stop(100);  // safe to call twice
}

TEST_CASE("a conflicting route throws quicklane::Error with QL_E_CONFLICT") {
    auto kept = std::make_shared<int>(0);
    auto rejected = std::make_shared<int>(0);
    {
        ql::App app;
        app.get("/x/{id}", [kept](ql::Request&) { return ql::Response::text("first"); });
        try {
            app.get("/x/{id}", [rejected](ql::Request&) { return ql::Response::text("second"); });
            FAIL("no exception for a duplicate route");
        } catch (const ql::Error& e) {
            CHECK(e.code() == QL_E_CONFLICT);
            CHECK(std::string(e.what()).find("/x/{id}") != std::string::npos);
        }
        // The rejected handler was released exactly once (no leak, no double free).
        CHECK(rejected.use_count() == 1);

        app.static_route("GET", "/s", ql::Response::text("s"));
        CHECK_THROWS_AS(app.static_route("GET", "/s", ql::Response::text("again")), ql::Error);
        try {
            app.get("/s", [](ql::Request&) { return ql::Response::text("dup"); });
            FAIL("no exception for a route over a static route");
        } catch (const ql::Error& e) {
            CHECK(e.code() == QL_E_CONFLICT);
        }

        // The app is still usable after the failures.
        ql::Server server = start(app);
        auto cli = client(server);
        auto res = cli.get("/x/7");
        REQUIRE(res);
        CHECK(res->body == "first");
        CHECK(kept.use_count() > 1);
    }
    // App and Server gone: the route's handler was destroyed.
    CHECK(kept.use_count() == 1);
}

TEST_CASE("App and Server are move-only handles") {
    static_assert(!std::is_copy_constructible_v<ql::App>);
    static_assert(!std::is_copy_assignable_v<ql::App>);
    static_assert(std::is_nothrow_move_constructible_v<ql::App>);
    static_assert(std::is_nothrow_move_assignable_v<ql::App>);
    static_assert(!std::is_copy_constructible_v<ql::Server>);
    static_assert(!std::is_copy_assignable_v<ql::Server>);
    static_assert(std::is_nothrow_move_constructible_v<ql::Server>);
    static_assert(std::is_nothrow_move_assignable_v<ql::Server>);
    static_assert(std::is_trivially_copyable_v<ql::Responder>);

    ql::App a;
    a.get("/m", [](ql::Request&) { return ql::Response::text("moved"); });
    ql::App b(std::move(a));
    CHECK(!a);
    CHECK(b);
    try {
        a.get("/z", [](ql::Request&) { return ql::Response::text("z"); });
        FAIL("moved-from App accepted a route");
    } catch (const ql::Error& e) {
        CHECK(e.code() == QL_E_STATE);
    }
    CHECK_THROWS_AS(ql::Server{a}, ql::Error);

    ql::App c;
    c = std::move(b);  // move-assign over a live app
    CHECK(!b);
    CHECK(c.native() != nullptr);

    ql::Server s3(c, {.port = 0, .workers = 1});  // not started; replaced below
    {
        ql::Server s1(c, {.host = "127.0.0.1", .port = 0, .workers = 1});
        ql::Server s2(std::move(s1));
        CHECK(!s1);
        CHECK(s1.port() == 0);
        CHECK_THROWS_AS(s1.start(), ql::Error);
        s2.start();
        s3 = std::move(s2);
        CHECK(!s2);
    }
    { ql::App gone = std::move(c); }  // servers keep their own reference to the routes
    CHECK(!c);

    REQUIRE(s3.port() != 0);
    auto cli = client(s3);
    auto res = cli.get("/m");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body == "moved");

    auto stats = s3.stats();
    CHECK(stats.requests_total >= 1);
    s3.stop(1000);
}

TEST_CASE("a handler that never answers gets 503 after handler_timeout_ms; the connection goes on") {
    std::promise<ql::Responder> held, aborted;
    std::atomic<int> abort_calls{0};
    std::atomic<int> fast_calls{0};
    ql::App app;
    app.route_async(
        "GET", "/never", [&](ql::Request&, ql::Responder res) { held.set_value(res); },
        [&](ql::Responder res) {
            if (abort_calls++ == 0) aborted.set_value(res);
        });
    app.route("GET", "/fast", [&](ql::Request&) {
        ++fast_calls;
        return ql::Response::text("fast");
    });
    ql::Server server(app, {.host = "127.0.0.1", .port = 0, .workers = 1, .handler_timeout_ms = 200});
    server.start();

    qlt::Client raw(server.port());
    REQUIRE(raw.ok());
    // Pipelined: the fast answer waits behind the hung one, then both come in order.
    REQUIRE(raw.send(qlt::request("GET", "/never") + qlt::request("GET", "/fast")));
    auto first = raw.read_response(5000);
    REQUIRE(first);
    CHECK(first->status == 503);
    CHECK(first->body == R"({"detail":"handler timed out"})");
    auto second = raw.read_response(5000);
    REQUIRE(second);
    CHECK(second->status == 200);
    CHECK(second->body == "fast");
    CHECK(fast_calls == 1);

    // The host was told, and its late answer frees the request.
    auto aborted_f = aborted.get_future();
    REQUIRE(aborted_f.wait_for(3s) == std::future_status::ready);
    ql::Responder res = held.get_future().get();
    CHECK(aborted_f.get().id() == res.id());
    CHECK(res.send(ql::Response::text("too late")) == QL_E_GONE);
    CHECK(abort_calls == 1);

    // The same keep-alive connection still serves.
    REQUIRE(raw.send(qlt::request("GET", "/fast")));
    auto third = raw.read_response(5000);
    REQUIRE(third);
    CHECK(third->status == 200);
    CHECK(qlt::wait_until([&] { return server.stats().requests_in_flight == 0; }));
}

TEST_CASE("an answer before handler_timeout_ms is not replaced") {
    ql::App app;
    ThreadBag bag;
    app.route_async("GET", "/slow", [&](ql::Request&, ql::Responder res) {
        bag.spawn([res]() mutable {
            std::this_thread::sleep_for(50ms);
            res.send(ql::Response::text("slow but in time"));
        });
    });
    ql::Server server(app, {.host = "127.0.0.1", .port = 0, .workers = 1, .handler_timeout_ms = 2000});
    server.start();
    JoinFirst jf{bag};
    auto r = client(server).get("/slow");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "slow but in time");
}

TEST_CASE("handler_timeout_ms out of range is refused with a message") {
    ql::App app;
    app.route("GET", "/", [](ql::Request&) { return ql::Response::text("x"); });
    try {
        ql::Server server(app, {.handler_timeout_ms = 5});
        FAIL("expected quicklane::Error");
    } catch (const ql::Error& e) {
        CHECK(std::string(e.what()).find("handler_timeout_ms") != std::string::npos);
    }
}
