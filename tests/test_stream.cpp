// Streamed answers: ql_respond_start / ql_respond_write / ql_respond_end.
#include "test_support.hpp"

using namespace qlt;

namespace {

// Reads what arrives on fd until `pred(buffer)` holds or the deadline passes.
bool read_until(int fd, std::string &buf, const std::function<bool(const std::string &)> &pred, int ms = 3000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(ms);
    while (!pred(buf)) {
        int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
        if (left <= 0) return false;
        struct pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, left) <= 0) continue;
        char tmp[65536];
        ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) return pred(buf);
        buf.append(tmp, static_cast<size_t>(n));
    }
    return true;
}

bool has(const std::string &buf, std::string_view s) { return buf.find(s) != std::string::npos; }

ql_response head(int status, std::string_view ctype, std::string_view first = {}) {
    ql_response r = QL_RESPONSE_INIT;
    r.status = status;
    r.content_type = ctype.data();
    r.content_type_len = ctype.size();
    r.body = first.data();
    r.body_len = first.size();
    return r;
}

// A server whose /stream route hands its request ids to the test.
struct StreamServer {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<ql_req_id> ids;
    ql_server *srv = nullptr;
    std::unique_ptr<Server> s;

    StreamServer() {
        s = std::make_unique<Server>([this](ql_app *app, Server &) {
            REQUIRE(add_route(app, "GET", "/stream", [this](ql_request *req) {
                        std::lock_guard lk(mu);
                        ids.push_back(ql_request_id(req));
                        cv.notify_all();
                    }) == QL_OK);
            REQUIRE(add_static(app, "GET", "/ping", 200, "text/plain", "pong") == QL_OK);
        });
        srv = s->server;
    }
    ql_req_id next_id() {
        std::unique_lock lk(mu);
        REQUIRE(cv.wait_for(lk, std::chrono::seconds(3), [&] { return !ids.empty(); }));
        ql_req_id id = ids.front();
        ids.erase(ids.begin());
        return id;
    }
};

}  // namespace

TEST_CASE("a streamed answer arrives chunk by chunk, from another thread") {
    StreamServer ss;
    Client cl(ss.s->port);
    REQUIRE(cl.send(request("GET", "/stream")));
    ql_req_id id = ss.next_id();
    std::string buf;
    std::thread producer([&] {
        ql_response h = head(200, "text/plain", "first;");
        CHECK(ql_respond_start(ss.srv, id, &h, nullptr) == QL_OK);
        CHECK(ql_respond_start(ss.srv, id, &h, nullptr) == QL_E_ALREADY_SENT);
        CHECK(respond(ss.srv, id, 200, "text/plain", "x") == QL_E_ALREADY_SENT);
        CHECK(ql_respond_write(ss.srv, id, "second;", 7, nullptr, nullptr) == QL_OK);
    });
    producer.join();
    // the head and the first chunks are there before the end
    REQUIRE(read_until(cl.fd(), buf, [](const std::string &b) { return has(b, "second;\r\n"); }));
    CHECK(has(buf, "HTTP/1.1 200 OK\r\n"));
    CHECK(has(buf, "Transfer-Encoding: chunked\r\n"));
    CHECK_FALSE(has(buf, "Content-Length"));
    // bytes handed over before the loop ran may share one chunk
    CHECK((has(buf, "6\r\nfirst;\r\n7\r\nsecond;\r\n") || has(buf, "d\r\nfirst;second;\r\n")));
    CHECK_FALSE(has(buf, "0\r\n\r\n"));
    std::thread([&] {
        CHECK(ql_respond_write(ss.srv, id, "third", 5, nullptr, nullptr) == QL_OK);
        CHECK(ql_respond_end(ss.srv, id, nullptr) == QL_OK);
    }).join();
    REQUIRE(read_until(cl.fd(), buf, [](const std::string &b) { return has(b, "0\r\n\r\n"); }));
    CHECK(has(buf, "5\r\nthird\r\n0\r\n\r\n"));
    // finished: the id is gone, the connection is kept alive and serves again
    // ended: QL_E_STATE while the last bytes are being written, QL_E_GONE once freed
    ql_status late = ql_respond_write(ss.srv, id, "late", 4, nullptr, nullptr);
    CHECK((late == QL_E_STATE || late == QL_E_GONE));
    late = ql_respond_end(ss.srv, id, nullptr);
    CHECK((late == QL_E_STATE || late == QL_E_GONE));
    REQUIRE(cl.send(request("GET", "/ping")));
    auto r = cl.read_final();
    REQUIRE(r);
    CHECK(r->body == "pong");
}

TEST_CASE("a streamed answer keeps pipelining order; the test client parses it as chunked") {
    StreamServer ss;
    Client cl(ss.s->port);
    REQUIRE(cl.send(request("GET", "/stream") + request("GET", "/ping")));
    ql_req_id id = ss.next_id();
    ql_response h = head(201, "application/x-ndjson");
    REQUIRE(ql_respond_start(ss.srv, id, &h, nullptr) == QL_OK);
    std::thread t([&] {
        for (int i = 0; i < 5; ++i) {
            std::string line = "{\"i\":" + std::to_string(i) + "}\n";
            CHECK(ql_respond_write(ss.srv, id, line.data(), line.size(), nullptr, nullptr) == QL_OK);
            sleep_ms(10);
        }
        CHECK(ql_respond_end(ss.srv, id, nullptr) == QL_OK);
    });
    auto first = cl.read_final();
    t.join();
    REQUIRE(first);
    CHECK(first->status == 201);
    CHECK(first->chunked);
    CHECK(first->body == "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n{\"i\":3}\n{\"i\":4}\n");
    auto second = cl.read_final();
    REQUIRE(second);
    CHECK(second->body == "pong");
}

TEST_CASE("streams: HTTP/1.0 is close-delimited, HEAD carries no body, misuse is refused") {
    StreamServer ss;
    {
        Client cl(ss.s->port);
        REQUIRE(cl.send("GET /stream HTTP/1.0\r\n\r\n"));
        ql_req_id id = ss.next_id();
        ql_response h = head(200, "text/plain", "old ");
        REQUIRE(ql_respond_start(ss.srv, id, &h, nullptr) == QL_OK);
        REQUIRE(ql_respond_write(ss.srv, id, "client", 6, nullptr, nullptr) == QL_OK);
        REQUIRE(ql_respond_end(ss.srv, id, nullptr) == QL_OK);
        std::string buf;
        read_until(cl.fd(), buf, [](const std::string &) { return false; }, 1500);  // until EOF
        CHECK(has(buf, "HTTP/1.0 200 OK\r\n"));
        CHECK(has(buf, "Connection: close\r\n"));
        CHECK_FALSE(has(buf, "chunked"));
        CHECK(buf.substr(buf.size() - 10) == "old client");
        CHECK(cl.wait_closed(2000));
    }
    {
        Client cl(ss.s->port);
        REQUIRE(cl.send(request("HEAD", "/stream") + request("GET", "/ping")));
        ql_req_id id = ss.next_id();
        CHECK(ql_respond_write(ss.srv, id, "x", 1, nullptr, nullptr) == QL_E_STATE);  // not started
        ql_response h = head(200, "text/plain", "no body for HEAD");
        REQUIRE(ql_respond_start(ss.srv, id, &h, nullptr) == QL_OK);
        REQUIRE(ql_respond_end(ss.srv, id, nullptr) == QL_OK);
        auto r = cl.read_final(3000, true);
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->body.empty());
        auto p = cl.read_final();
        REQUIRE(p);
        CHECK(p->body == "pong");
    }
}

TEST_CASE("streams: a client that leaves makes the next calls return QL_E_GONE; backpressure is visible") {
    StreamServer ss;
    {
        Client cl(ss.s->port);
        REQUIRE(cl.send(request("GET", "/stream")));
        ql_req_id id = ss.next_id();
        ql_response h = head(200, "application/octet-stream");
        REQUIRE(ql_respond_start(ss.srv, id, &h, nullptr) == QL_OK);
        // the client does not read: accepted-but-unwritten bytes pile up
        std::string block(64 * 1024, 'z');
        uint64_t buffered = 0, peak = 0;
        for (int i = 0; i < 160 && peak < (2u << 20); ++i) {
            REQUIRE(ql_respond_write(ss.srv, id, block.data(), block.size(), &buffered, nullptr) == QL_OK);
            peak = std::max(peak, buffered);
        }
        CHECK(peak >= (2u << 20));
        // reading drains it back to zero (the rest waits in kernel buffers)
        std::string buf;
        // (Read something first: on a loaded machine the kernel's growing
        // socket buffers may have taken the whole backlog already.)
        read_until(cl.fd(), buf, [&](const std::string &b) {
            ql_respond_write(ss.srv, id, nullptr, 0, &buffered, nullptr);
            return !b.empty() && buffered == 0;
        }, 5000);
        CHECK(buffered == 0);
        CHECK(!buf.empty());
        cl.close();
        ql_status st = QL_OK;
        REQUIRE(wait_until([&] {
            st = ql_respond_write(ss.srv, id, "x", 1, nullptr, nullptr);
            return st != QL_OK;
        }));
        CHECK(st == QL_E_GONE);
        CHECK(ql_respond_end(ss.srv, id, nullptr) == QL_E_GONE);
    }
    // the server is fine afterwards and nothing is left in flight
    auto r = fetch(ss.s->port, "GET", "/ping");
    REQUIRE(r);
    CHECK(r->body == "pong");
    CHECK(wait_until([&] { return ss.s->stats().requests_in_flight == 0; }));
}

TEST_CASE("a streamed answer with a declared length: Content-Length, no framing, too many bytes refused") {
    StreamServer ss;
    Client cl(ss.s->port);
    REQUIRE(cl.send(request("GET", "/stream")));
    ql_req_id id = ss.next_id();
    ql_response h = head(200, "text/plain", "0123");
    REQUIRE(ql_respond_start_sized(ss.srv, id, &h, 10, nullptr) == QL_OK);
    CHECK(ql_respond_write(ss.srv, id, "4567890", 7, nullptr, nullptr) == QL_E_INVALID);  // 11 > 10
    CHECK(ql_respond_write(ss.srv, id, "456789", 6, nullptr, nullptr) == QL_OK);
    CHECK(ql_respond_end(ss.srv, id, nullptr) == QL_OK);
    auto r = cl.read_final();
    REQUIRE(r);
    CHECK_FALSE(r->chunked);
    CHECK(r->header("Content-Length") == std::optional<std::string>("10"));
    CHECK(r->body == "0123456789");
    REQUIRE(cl.send(request("GET", "/ping")));  // kept alive
    auto p = cl.read_final();
    REQUIRE(p);
    CHECK(p->body == "pong");

    // HEAD: the length, no bytes.
    REQUIRE(cl.send(request("HEAD", "/stream")));
    id = ss.next_id();
    ql_response hh = head(200, "text/plain");
    REQUIRE(ql_respond_start_sized(ss.srv, id, &hh, 1234, nullptr) == QL_OK);
    CHECK(ql_respond_end(ss.srv, id, nullptr) == QL_OK);
    std::string buf;
    REQUIRE(read_until(cl.fd(), buf, [](const std::string &b) { return has(b, "\r\n\r\n"); }));
    CHECK(has(buf, "Content-Length: 1234\r\n"));
    CHECK(cl.quiet_for(100));

    // Ended short of its length: the bytes given, then the connection closes.
    Client c2(ss.s->port);
    REQUIRE(c2.send(request("GET", "/stream")));
    id = ss.next_id();
    REQUIRE(ql_respond_start_sized(ss.srv, id, &hh, 100, nullptr) == QL_OK);
    REQUIRE(ql_respond_write(ss.srv, id, "short", 5, nullptr, nullptr) == QL_OK);
    REQUIRE(ql_respond_end(ss.srv, id, nullptr) == QL_OK);
    CHECK(c2.wait_closed());
    CHECK(has(c2.buf, "Content-Length: 100\r\n"));
    CHECK(c2.buf.size() >= 5);
    CHECK(c2.buf.substr(c2.buf.size() - 5) == "short");
}

TEST_CASE("ql_respond_abort cuts a stream: no last chunk, the connection closes") {
    StreamServer ss;
    Client cl(ss.s->port);
    REQUIRE(cl.send(request("GET", "/stream")));
    ql_req_id id = ss.next_id();
    ql_response h = head(200, "text/plain", "part");
    REQUIRE(ql_respond_start(ss.srv, id, &h, nullptr) == QL_OK);
    std::string buf;
    REQUIRE(read_until(cl.fd(), buf, [](const std::string &b) { return has(b, "4\r\npart\r\n"); }));
    REQUIRE(ql_respond_abort(ss.srv, id, nullptr) == QL_OK);
    CHECK(cl.wait_closed());
    CHECK_FALSE(has(cl.buf + buf, "0\r\n\r\n"));
    ql_status late = ql_respond_write(ss.srv, id, "x", 1, nullptr, nullptr);
    CHECK((late == QL_E_STATE || late == QL_E_GONE));
    // An unanswered request: its connection closes without an answer.
    Client c2(ss.s->port);
    REQUIRE(c2.send(request("GET", "/stream")));
    id = ss.next_id();
    REQUIRE(ql_respond_abort(ss.srv, id, nullptr) == QL_OK);
    CHECK(c2.wait_closed());
    CHECK(c2.buf.empty());
    CHECK(wait_until([&] { return ss.s->stats().requests_in_flight == 0; }));
}

namespace {
std::atomic<int> g_drains{0};
std::atomic<ql_req_id> g_drain_id{0};
std::atomic<ql_req_id> g_req{0};
extern "C" void drain_req(void *, ql_request *req) { g_req = ql_request_id(req); }
extern "C" void drain_cb(void *, ql_req_id id, void *) {
    g_drain_id = id;
    ++g_drains;
}
}  // namespace

TEST_CASE("on_drain fires once the buffered bytes of a stream fall to QL_DRAIN_LOW") {
    Server s([](ql_app *app, Server &) {
        ql_handler h = QL_HANDLER_INIT;
        h.on_request = drain_req;
        h.on_drain = drain_cb;
        REQUIRE(ql_app_route(app, "GET", 3, "/big", 4, &h, nullptr) == QL_OK);
    });
    Client cl(s.port);
    REQUIRE(cl.send(request("GET", "/big")));
    REQUIRE(wait_until([&] { return g_req.load() != 0; }));
    ql_req_id id = g_req;
    ql_response h = head(200, "application/octet-stream");
    REQUIRE(ql_respond_start(s.server, id, &h, nullptr) == QL_OK);
    // More than the kernel's socket buffers take: the rest waits in the core.
    std::string block(32 * 1024 * 1024, 'z');
    uint64_t buffered = 0;
    REQUIRE(ql_respond_write(s.server, id, block.data(), block.size(), &buffered, nullptr) == QL_OK);
    CHECK(buffered > QL_DRAIN_HIGH);
    sleep_ms(100);
    CHECK(g_drains.load() == 0);  // the client reads nothing yet
    std::string got;
    bool drained = read_until(cl.fd(), got, [&](const std::string &) { return g_drains.load() > 0; }, 5000);
    INFO("read ", got.size());
    REQUIRE(drained);
    CHECK(g_drains.load() == 1);
    CHECK(g_drain_id.load() == id);
    REQUIRE(ql_respond_end(s.server, id, nullptr) == QL_OK);
    REQUIRE(read_until(cl.fd(), got, [](const std::string &b) { return has(b, "0\r\n\r\n"); }, 5000));
    CHECK(g_drains.load() == 1);
}

namespace {
std::atomic<int> g_aborts{0};
std::atomic<ql_req_id> g_abort_id{0};
extern "C" void abort_cb(void *, ql_req_id id, void *) {
    g_abort_id = id;
    ++g_aborts;
}
}  // namespace

TEST_CASE("streams: a head bigger than QL_DRAIN_HIGH asks for a drain; a client leaving mid-stream is told once") {
    g_req = 0;
    g_drains = 0;
    g_aborts = 0;
    Server s([](ql_app *app, Server &) {
        ql_handler h = QL_HANDLER_INIT;
        h.on_request = drain_req;
        h.on_drain = drain_cb;
        h.on_abort = abort_cb;
        REQUIRE(ql_app_route(app, "GET", 3, "/big", 4, &h, nullptr) == QL_OK);
    });
    std::string block(8 * 1024 * 1024, 'y');
    {
        Client cl(s.port);
        REQUIRE(cl.send(request("GET", "/big")));
        REQUIRE(wait_until([&] { return g_req.load() != 0; }));
        ql_req_id id = g_req;
        ql_response h = head(200, "application/octet-stream", block);
        REQUIRE(ql_respond_start(s.server, id, &h, nullptr) == QL_OK);
        std::string got;
        REQUIRE(read_until(cl.fd(), got, [&](const std::string &) { return g_drains.load() > 0; }, 5000));
        CHECK(g_drain_id.load() == id);
        CHECK(g_aborts.load() == 0);
        REQUIRE(ql_respond_end(s.server, id, nullptr) == QL_OK);
        REQUIRE(read_until(cl.fd(), got, [](const std::string &b) { return has(b, "0\r\n\r\n"); }, 5000));
    }
    CHECK(g_aborts.load() == 0);  // an ended stream is not aborted by the close
    g_req = 0;
    {
        Client cl(s.port);
        REQUIRE(cl.send(request("GET", "/big")));
        REQUIRE(wait_until([&] { return g_req.load() != 0; }));
        ql_req_id id = g_req;
        ql_response h = head(200, "application/octet-stream");
        REQUIRE(ql_respond_start(s.server, id, &h, nullptr) == QL_OK);
        uint64_t buffered = 0;
        REQUIRE(ql_respond_write(s.server, id, block.data(), block.size(), &buffered, nullptr) == QL_OK);
        CHECK(buffered > QL_DRAIN_HIGH);  // a producer now waits for a drain that never comes
        cl.close();
        REQUIRE(wait_until([&] { return g_aborts.load() > 0; }));
        CHECK(g_abort_id.load() == id);
        CHECK(ql_respond_write(s.server, id, "x", 1, nullptr, nullptr) == QL_E_GONE);
        CHECK(ql_respond_end(s.server, id, nullptr) == QL_E_GONE);
    }
    sleep_ms(50);
    CHECK(g_aborts.load() == 1);
    CHECK(wait_until([&] { return s.stats().requests_in_flight == 0; }));
}
