// WebSockets through the C++ API (quicklane_ws.hpp) against a real server on
// 127.0.0.1, with a raw-socket client (ws_client.hpp): the handshake and its
// refusals, framing both ways, control frames, the close handshake and its
// codes, limits, pub/sub across loops, sends from other threads, backpressure
// and server stop.
#include <doctest.h>
#include <quicklane.hpp>

#include "ws_client.hpp"

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ql = quicklane;
using qlt::WsClient;
using qlt::WsFrame;

namespace {

struct Closed {
    std::mutex mu;
    std::vector<std::pair<uint16_t, std::string>> seen;
    void add(uint16_t code, std::string_view reason) {
        std::lock_guard lk(mu);
        seen.emplace_back(code, std::string(reason));
    }
    size_t count() {
        std::lock_guard lk(mu);
        return seen.size();
    }
    std::pair<uint16_t, std::string> first() {
        std::lock_guard lk(mu);
        return seen.empty() ? std::pair<uint16_t, std::string>{0, ""} : seen.front();
    }
};

ql::Server start(const ql::App &app, std::uint32_t workers = 1) {
    ql::Server server(app, {.host = "127.0.0.1", .port = 0, .workers = workers});
    server.start();
    return server;
}

ql::WebSocketBehavior echo(Closed *closed = nullptr, std::uint64_t max_message = 0) {
    ql::WebSocketBehavior b;
    b.message = [](ql::WebSocket &ws, std::string_view m, bool binary) { ws.send(m, binary); };
    if (closed) b.close = [closed](ql::WebSocket &, std::uint16_t code, std::string_view r) { closed->add(code, r); };
    b.max_message_bytes = max_message;
    return b;
}

}  // namespace

TEST_CASE("handshake: 101 with the RFC's accept key, subprotocol and headers; refusals answered natively or by the host") {
    ql::App app;
    app.ws("/ws/echo", echo());
    ql::WebSocketBehavior guarded = echo();
    guarded.upgrade = [](const ql::Request &req) {
        ql::UpgradeAnswer a;
        if (req.header("authorization").value_or("") != "Bearer ok") {
            a.refuse = ql::Response::json(R"({"detail":"who are you"})", 401);
            return a;
        }
        a.subprotocol = "chat.v2";
        a.headers = {{"X-Room", "lobby"}};
        return a;
    };
    app.ws("/ws/guarded", guarded);
    auto server = start(app);

    {
        WsClient c(server.port());
        auto r = c.open("/ws/echo");
        REQUIRE(r);
        CHECK(r->status == 101);
        CHECK(r->header("Sec-WebSocket-Accept").value_or("") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        CHECK(qlt::lower(r->header("Upgrade").value_or("")) == "websocket");
        CHECK(r->connection_has("upgrade"));
    }
    {
        WsClient c(server.port());
        auto r = c.open("/ws/guarded", "Authorization: Bearer ok\r\nSec-WebSocket-Protocol: chat.v1, chat.v2\r\n");
        REQUIRE(r);
        CHECK(r->status == 101);
        CHECK(r->header("Sec-WebSocket-Protocol").value_or("") == "chat.v2");
        CHECK(r->header("X-Room").value_or("") == "lobby");
        CHECK(c.text("hi"));
        auto f = c.read();
        REQUIRE(f);
        CHECK(f->payload == "hi");
    }
    {
        WsClient c(server.port());
        auto r = c.open("/ws/guarded");
        REQUIRE(r);
        CHECK(r->status == 401);
        CHECK(r->body == R"({"detail":"who are you"})");
        CHECK(c.c.wait_closed());
    }
    // A plain GET of a WebSocket route: 426 with the Upgrade it needs.
    auto plain = qlt::fetch(server.port(), "GET", "/ws/echo");
    REQUIRE(plain);
    CHECK(plain->status == 426);
    CHECK(plain->header("Sec-WebSocket-Version").value_or("") == "13");
    {
        qlt::Client c(server.port());
        std::string req = qlt::upgrade_request("/ws/echo");
        req.replace(req.find("Version: 13"), 11, "Version: 8\r");
        req.erase(req.find("\r\r"), 1);
        c.send(req);
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 426);
        CHECK(r->header("Sec-WebSocket-Version").value_or("") == "13");
    }
    {
        qlt::Client c(server.port());
        c.send(qlt::upgrade_request("/ws/echo", {}, "short"));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 400);
        CHECK(r->body.find("Sec-WebSocket-Key") != std::string::npos);
    }
    {
        // No Connection: Upgrade.
        qlt::Client c(server.port());
        std::string req = qlt::upgrade_request("/ws/echo");
        req.replace(req.find("Connection: Upgrade"), 19, "Connection: keep-alive");
        c.send(req);
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 400);
    }
    // Unknown paths and wrong methods stay HTTP answers.
    auto nf = qlt::fetch(server.port(), "GET", "/ws/none");
    REQUIRE(nf);
    CHECK(nf->status == 404);
    auto post = qlt::fetch(server.port(), "POST", "/ws/echo", "x");
    REQUIRE(post);
    CHECK(post->status == 405);
}

TEST_CASE("echo: text and binary at 7-, 16- and 64-bit lengths, fragments with a ping between, bytes behind the upgrade") {
    ql::App app;
    app.ws("/ws/echo", echo());
    auto server = start(app);
    WsClient c(server.port());
    // The first frame travels in the upgrade request's packet.
    auto r = c.open("/ws/echo", {}, qlt::client_frame(1, "early"));
    REQUIRE(r);
    REQUIRE(r->status == 101);
    auto f = c.read();
    REQUIRE(f);
    CHECK(f->opcode == 1);
    CHECK(f->payload == "early");

    for (size_t n : {0u, 1u, 125u, 126u, 65535u, 65536u, 1u << 20}) {
        std::string m(n, 'x');
        for (size_t i = 0; i < n; ++i) m[i] = static_cast<char>(i * 31);
        CHECK(c.binary(m));
        auto e = c.read(5000);
        REQUIRE(e);
        CHECK(e->opcode == 2);
        CHECK(e->payload.size() == n);
        CHECK(e->payload == m);
    }
    // Fragments with a ping between them: the pong comes first, then the message.
    CHECK(c.send(1, "Hel", false));
    CHECK(c.send(9, "are you there"));
    CHECK(c.send(0, "lo, ", false));
    CHECK(c.send(0, "wörld"));
    auto pong = c.read();
    REQUIRE(pong);
    CHECK(pong->opcode == 10);
    CHECK(pong->payload == "are you there");
    auto whole = c.read();
    REQUIRE(whole);
    CHECK(whole->opcode == 1);
    CHECK(whole->payload == "Hello, wörld");
}

TEST_CASE("close handshake and failures: codes both ways, one close callback each") {
    Closed closed;
    ql::App app;
    app.ws("/ws/echo", echo(&closed, 1024));
    auto server = start(app);

    auto expect_close = [&](WsClient &c, uint16_t code) {
        auto f = c.read();
        REQUIRE(f);
        CHECK(f->opcode == 8);
        CHECK(f->close_code() == code);
        CHECK(c.c.wait_closed());
    };
    {
        WsClient c(server.port());
        REQUIRE(c.open("/ws/echo")->status == 101);
        CHECK(c.close(1000, "bye"));
        expect_close(c, 1000);
        REQUIRE(qlt::wait_until([&] { return closed.count() == 1; }));
        CHECK(closed.first().first == 1000);
        CHECK(closed.first().second == "bye");
    }
    struct Bad {
        const char *what;
        std::string bytes;
        uint16_t code;
    };
    std::string bad_utf8 = "\xce\xba\xe1\xbd";
    bad_utf8 += "\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80";  // a surrogate: invalid
    const Bad bad[] = {
        {"unmasked frame", qlt::client_frame(1, "x", true, false), 1002},
        {"reserved bits", qlt::client_frame(1, "x", true, true, 2), 1002},
        {"reserved opcode", qlt::client_frame(3, "x"), 1002},
        {"fragmented ping", qlt::client_frame(9, "x", false), 1002},
        {"continuation first", qlt::client_frame(0, "x"), 1002},
        {"invalid UTF-8", qlt::client_frame(1, bad_utf8), 1007},
        {"message over max_message_bytes", qlt::client_frame(2, std::string(2000, 'a')), 1009},
        {"invalid close code", qlt::client_frame(8, std::string("\x03\xed", 2)), 1002},
    };
    size_t before = closed.count();
    for (const Bad &b : bad) {
        INFO(b.what);
        WsClient c(server.port());
        REQUIRE(c.open("/ws/echo")->status == 101);
        CHECK(c.c.send(b.bytes));
        expect_close(c, b.code);
    }
    REQUIRE(qlt::wait_until([&] { return closed.count() == before + std::size(bad); }));
    {
        // A client that leaves without a close frame: 1006, once.
        WsClient c(server.port());
        REQUIRE(c.open("/ws/echo")->status == 101);
        c.c.close();
        REQUIRE(qlt::wait_until([&] { return closed.count() == before + std::size(bad) + 1; }));
        std::lock_guard lk(closed.mu);
        CHECK(closed.seen.back().first == 1006);
    }
}

TEST_CASE("sockets from any thread: send, close, stale ids; the server closes with its code") {
    Closed closed;
    std::mutex mu;
    std::vector<ql::WebSocket> open;
    ql::App app;
    ql::WebSocketBehavior b = echo(&closed);
    b.open = [&](ql::WebSocket &ws, const ql::Request &) {
        std::lock_guard lk(mu);
        open.push_back(ws);
    };
    app.ws("/ws/echo", b);
    auto server = start(app, 2);
    WsClient c(server.port());
    REQUIRE(c.open("/ws/echo")->status == 101);
    REQUIRE(qlt::wait_until([&] { std::lock_guard lk(mu); return open.size() == 1; }));
    ql::WebSocket ws = open[0];
    ql::SendStatus st = ql::SendStatus::Closed;
    std::thread([&] { st = ws.send("from a thread"); }).join();
    CHECK(st == ql::SendStatus::Sent);  // under half the limit: no drain owed
    auto f = c.read();
    REQUIRE(f);
    CHECK(f->payload == "from a thread");
    // Text must be UTF-8.
    CHECK_THROWS_AS(ws.send(std::string_view("\xff", 1)), ql::Error);
    CHECK(ws.send(std::string_view("\xff", 1), true) == ql::SendStatus::Sent);
    REQUIRE(c.read());
    // The host closes with its own code; the client answers; on_close once.
    std::thread([&] { CHECK(ws.close(4001, "kicked")); }).join();
    auto cf = c.read();
    REQUIRE(cf);
    CHECK(cf->opcode == 8);
    CHECK(cf->close_code() == 4001);
    CHECK(cf->payload.substr(2) == "kicked");
    CHECK(ws.send("late") == ql::SendStatus::Closed);
    CHECK_FALSE(ws.close());
    CHECK(c.close(4001));
    CHECK(c.c.wait_closed());
    REQUIRE(qlt::wait_until([&] { return closed.count() == 1; }));
    CHECK(closed.first().first == 4001);
    CHECK(ws.send("later") == ql::SendStatus::Closed);
    CHECK_FALSE(ws.subscribe("t"));
    CHECK(ws.buffered() == 0);
    // An id that never existed.
    CHECK(ql::WebSocket(server.native(), 0x0100000500000007ull).send("x") == ql::SendStatus::Closed);

    // Server stop: 1001 to every socket, then the connection ends.
    WsClient d(server.port());
    REQUIRE(d.open("/ws/echo")->status == 101);
    std::thread stopper([&] { server.stop(3000); });
    auto sf = d.read();
    REQUIRE(sf);
    CHECK(sf->opcode == 8);
    CHECK(sf->close_code() == 1001);
    CHECK(d.close(1001));
    CHECK(d.c.wait_closed());
    stopper.join();
}

TEST_CASE("pub/sub: topics across two loops, framed once, publish from any thread, exclude the sender") {
    std::atomic<int> opened{0};
    ql::App app;
    ql::WebSocketBehavior chat;
    chat.open = [&](ql::WebSocket &ws, const ql::Request &req) {
        ws.subscribe("room:" + std::string(req.param("room").value_or("")));
        ++opened;
    };
    chat.message = [](ql::WebSocket &ws, std::string_view m, bool) {
        // "!x": to the others only; else to everyone, sender included.
        if (!m.empty() && m[0] == '!')
            ws.publish("room:a", m.substr(1));
        else
            ql::publish(ws.server(), "room:a", m);
    };
    app.ws("/ws/chat/{room}", chat);
    auto server = start(app, 2);
    std::vector<std::unique_ptr<WsClient>> a, b;
    for (int i = 0; i < 40; ++i) {  // over both loops
        a.push_back(std::make_unique<WsClient>(server.port()));
        REQUIRE(a.back()->open("/ws/chat/a")->status == 101);
    }
    b.push_back(std::make_unique<WsClient>(server.port()));
    REQUIRE(b.back()->open("/ws/chat/b")->status == 101);
    REQUIRE(qlt::wait_until([&] { return opened == 41; }));
    CHECK(a[0]->text("hello all"));
    for (auto &c : a) {
        auto f = c->read();
        REQUIRE(f);
        CHECK(f->payload == "hello all");
    }
    CHECK(a[1]->text("!not me"));
    for (size_t i = 0; i < a.size(); ++i) {
        if (i == 1) continue;
        auto f = a[i]->read();
        REQUIRE(f);
        CHECK(f->payload == "not me");
    }
    // From a thread that is no loop: counts every subscriber.
    size_t n = 0;
    std::thread([&] { n = server.publish("room:a", "from outside"); }).join();
    CHECK(n == 40);
    for (auto &c : a) {
        auto f = c->read();
        REQUIRE(f);
        CHECK(f->payload == "from outside");
    }
    CHECK(server.publish("room:none", "x") == 0);
    // Room b heard none of it; a closed member leaves its topics.
    CHECK(b[0]->c.quiet_for(100));
    a[5]->c.close();
    REQUIRE(qlt::wait_until([&] { return server.publish("room:a", "after") == 39; }));
}

TEST_CASE("backpressure: a client that never reads gets drops past max_backpressure, then a drain once it reads") {
    std::atomic<int> drains{0};
    std::mutex mu;
    std::vector<ql::WebSocket> open;
    ql::App app;
    ql::WebSocketBehavior b;
    b.max_backpressure = 256 * 1024;
    b.open = [&](ql::WebSocket &ws, const ql::Request &) {
        std::lock_guard lk(mu);
        open.push_back(ws);
    };
    b.drain = [&](ql::WebSocket &) { ++drains; };
    app.ws("/ws/feed", b);
    auto server = start(app);
    WsClient c(server.port());
    int rcv = 128 * 1024;  // small, yet over the loopback MSS (a window under it stalls TCP)
    ::setsockopt(c.c.fd(), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    REQUIRE(c.open("/ws/feed")->status == 101);
    REQUIRE(qlt::wait_until([&] { std::lock_guard lk(mu); return open.size() == 1; }));
    ql::WebSocket ws = open[0];
    // From this (another) thread, under half the limit: SENT, and no drain is owed.
    CHECK(ws.send("hello", true) == ql::SendStatus::Sent);
    qlt::sleep_ms(50);
    CHECK(drains.load() == 0);
    std::string chunk(64 * 1024, 'z');
    int sent = 0, dropped = 0;
    for (int i = 0; i < 400 && dropped == 0; ++i) {
        ql::SendStatus st = ws.send(chunk, true);
        if (st == ql::SendStatus::Dropped) ++dropped;
        else ++sent;
        if (st == ql::SendStatus::Queued) qlt::sleep_ms(1);
    }
    CHECK(dropped == 1);
    // Memory stays near the limit: at most one message over it was buffered.
    qlt::sleep_ms(50);
    CHECK(ws.buffered() <= 256 * 1024 + chunk.size() + 16);
    // The client reads everything: a drain follows.
    auto hello = c.read(5000);
    REQUIRE(hello);
    CHECK(hello->payload == "hello");
    size_t got = 0;
    while (got < static_cast<size_t>(sent)) {
        auto f = c.read(5000);
        REQUIRE(f);
        CHECK(f->payload.size() == chunk.size());
        ++got;
    }
    REQUIRE(qlt::wait_until([&] { return drains.load() >= 1; }));
    CHECK(ws.send("again") != ql::SendStatus::Dropped);
}

namespace {

// A client's side of permessage-deflate: raw deflate with a sync flush, less its 00 00 FF FF.
struct ClientDeflate {
    z_stream z{};
    explicit ClientDeflate(int bits = 15) { deflateInit2(&z, 6, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY); }
    ~ClientDeflate() { deflateEnd(&z); }
    std::string operator()(std::string_view in, bool reset = true) {
        std::string out(deflateBound(&z, in.size()) + 64, '\0');
        z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
        z.avail_in = static_cast<uInt>(in.size());
        z.next_out = reinterpret_cast<Bytef *>(out.data());
        z.avail_out = static_cast<uInt>(out.size());
        deflate(&z, Z_SYNC_FLUSH);
        out.resize(out.size() - z.avail_out - 4);
        if (reset) deflateReset(&z);
        return out;
    }
};

std::string client_inflate(std::string_view in) {
    z_stream z{};
    inflateInit2(&z, -15);
    std::string src(in);
    src.append("\x00\x00\xff\xff", 4);
    std::string out(64 << 20, '\0');
    z.next_in = reinterpret_cast<Bytef *>(src.data());
    z.avail_in = static_cast<uInt>(src.size());
    z.next_out = reinterpret_cast<Bytef *>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    inflate(&z, Z_SYNC_FLUSH);
    out.resize(out.size() - z.avail_out);
    inflateEnd(&z);
    return out;
}

std::string compressed_frame(uint8_t opcode, const std::string &body) {
    std::string f = qlt::client_frame(opcode, body, true, true, 4);  // RSV1
    return f;
}

}  // namespace

TEST_CASE("permessage-deflate: negotiation (shared and dedicated), compressed echo both ways, bombs and bad data") {
    ql::App app;
    ql::WebSocketBehavior shared = echo(nullptr, 1 << 20);
    ql::WebSocketBehavior dedicated = shared;
    app.ws("/ws/plain", shared);
    ql::WebSocketBehavior s2 = shared;
    s2.compression = ql::Compression::Shared;
    app.ws("/ws/shared", s2);
    dedicated.compression = ql::Compression::Dedicated;
    dedicated.compression_window_bits = 10;
    app.ws("/ws/dedicated", dedicated);
    auto server = start(app, 2);

    auto extensions = [&](const char *path, const char *offer) {
        WsClient c(server.port());
        auto r = c.open(path, std::string("Sec-WebSocket-Extensions: ") + offer + "\r\n");
        REQUIRE(r);
        REQUIRE(r->status == 101);
        return r->header("Sec-WebSocket-Extensions").value_or("");
    };
    CHECK(extensions("/ws/plain", "permessage-deflate") == "");
    CHECK(extensions("/ws/shared", "permessage-deflate; client_max_window_bits") ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    CHECK(extensions("/ws/shared", "permessage-deflate; foo=1, permessage-deflate") ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    CHECK(extensions("/ws/shared", "x-webkit-deflate-frame") == "");
    CHECK(extensions("/ws/shared", "permessage-deflate; server_max_window_bits=8") == "");
    CHECK(extensions("/ws/shared", "permessage-deflate; server_max_window_bits=12") ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12");
    CHECK(extensions("/ws/dedicated", "permessage-deflate; client_max_window_bits") ==
          "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10");
    CHECK(extensions("/ws/dedicated", "permessage-deflate; client_no_context_takeover") ==
          "permessage-deflate; client_no_context_takeover; server_max_window_bits=10");

    std::string text;
    for (int i = 0; i < 4000; ++i) text += "line " + std::to_string(i % 97) + " of a chatty message; ";
    for (const char *path : {"/ws/shared", "/ws/dedicated"}) {
        INFO(path);
        WsClient c(server.port());
        REQUIRE(c.open(path, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")->status == 101);
        ClientDeflate z(10);
        for (int round = 0; round < 3; ++round) {
            // Compressed in (with the client's context kept on the dedicated route), compressed out.
            bool keep = std::string_view(path) == "/ws/dedicated";
            CHECK(c.c.send(compressed_frame(1, z(text, !keep))));
            auto f = c.read(5000);
            REQUIRE(f);
            CHECK(f->opcode == 1);
            CHECK(f->rsv1);
            CHECK(f->payload.size() < text.size() / 4);
            if (!keep) CHECK(client_inflate(f->payload) == text);
        }
        // An uncompressed message is fine too (and is answered compressed).
        CHECK(c.text("small"));
        auto f = c.read();
        REQUIRE(f);
        CHECK(f->rsv1);
    }
    {
        // A bomb: 64 MiB of zeros in ~64 KiB; max_message_bytes is 1 MiB.
        WsClient c(server.port());
        REQUIRE(c.open("/ws/shared", "Sec-WebSocket-Extensions: permessage-deflate\r\n")->status == 101);
        ClientDeflate z;
        CHECK(c.c.send(compressed_frame(2, z(std::string(64 << 20, '\0')))));
        auto f = c.read(5000);
        REQUIRE(f);
        CHECK(f->opcode == 8);
        CHECK(f->close_code() == 1009);
    }
    {
        WsClient c(server.port());
        REQUIRE(c.open("/ws/shared", "Sec-WebSocket-Extensions: permessage-deflate\r\n")->status == 101);
        CHECK(c.c.send(compressed_frame(2, "\xff\xff\xff\xff not deflate")));
        auto f = c.read();
        REQUIRE(f);
        CHECK(f->close_code() == 1007);
    }
    {
        // Text that is not UTF-8 once inflated.
        WsClient c(server.port());
        REQUIRE(c.open("/ws/shared", "Sec-WebSocket-Extensions: permessage-deflate\r\n")->status == 101);
        ClientDeflate z;
        CHECK(c.c.send(compressed_frame(1, z(std::string("ok \xc3\x28 no", 9)))));
        auto f = c.read();
        REQUIRE(f);
        CHECK(f->close_code() == 1007);
    }
    {
        // RSV1 without a negotiated extension is a protocol error.
        WsClient c(server.port());
        REQUIRE(c.open("/ws/plain", "Sec-WebSocket-Extensions: permessage-deflate\r\n")->status == 101);
        ClientDeflate z;
        CHECK(c.c.send(compressed_frame(1, z("hello"))));
        auto f = c.read();
        REQUIRE(f);
        CHECK(f->close_code() == 1002);
    }
}

TEST_CASE("queued WebSockets (Python/Go shape): upgrade as a request, events with the tag, inbound backpressure") {
    ql_queue *queue = nullptr;
    REQUIRE(ql_queue_new(&queue, nullptr) == QL_OK);
    ql::App app;
    ql_ws_behavior b = QL_WS_BEHAVIOR_INIT;
    b.max_backpressure = 256 * 1024;
    int route_tag = 7;
    // Callbacks are refused on a queued route.
    ql_ws_behavior bad = b;
    bad.on_message = [](void *, ql_websocket *, const char *, size_t, int) {};
    CHECK(ql_app_ws_queue(app.native(), "/ws/q", 5, &bad, queue, &route_tag, nullptr, nullptr) == QL_E_INVALID);
    REQUIRE(ql_app_ws_queue(app.native(), "/ws/q", 5, &b, queue, &route_tag, nullptr, nullptr) == QL_OK);
    auto server = start(app, 2);

    static int sock_tag = 42;
    std::atomic<bool> hold{false};  // the host stops taking messages
    std::atomic<int> opens{0}, messages{0}, closes{0};
    std::atomic<uint16_t> close_code{0};
    std::atomic<uint64_t> held_bytes{0};
    std::atomic<bool> stop{false};
    std::mutex held_mu;
    std::vector<ql_event> held;
    std::thread host([&] {
        ql_event evs[64];
        while (!stop) {
            size_t n = 0;
            if (ql_queue_poll(queue, evs, 64, 20, &n, nullptr) != QL_OK) break;
            for (size_t i = 0; i < n; ++i) {
                ql_event &e = evs[i];
                CHECK(e.route_data == &route_tag);
                if (e.kind == QL_EVENT_REQUEST) {
                    ql_str room{};
                    ql_request_query(e.request, "room", 4, &room);
                    ql_ws_accept_options o = QL_WS_ACCEPT_OPTIONS_INIT;
                    o.tag = &sock_tag;
                    CHECK(ql_ws_accept(e.server, e.id, &o, nullptr) == QL_OK);
                    continue;
                }
                ql_ws_event_info info = QL_WS_EVENT_INFO_INIT;
                REQUIRE(ql_event_ws_info(&e, &info) == QL_OK);
                CHECK(info.tag == &sock_tag);
                if (e.kind == QL_EVENT_WS_OPEN) ++opens;
                if (e.kind == QL_EVENT_WS_CLOSE) {
                    close_code = info.code;
                    ++closes;
                }
                if (e.kind == QL_EVENT_WS_MESSAGE) {
                    ++messages;
                    if (hold) {
                        held_bytes += info.len;
                        std::lock_guard lk(held_mu);
                        held.push_back(e);  // not released: the socket's window fills
                        continue;
                    }
                    ql_status st;
                    while ((st = ql_ws_send(e.server, e.id, info.data, info.len,
                                            info.binary ? QL_WS_BINARY : QL_WS_TEXT, nullptr)) == QL_WS_DROPPED)
                        qlt::sleep_ms(1);
                    CHECK(st >= 0);
                }
                ql_event_release(&e);
                CHECK(e.request == nullptr);
                ql_event_release(&e);  // twice: nothing
            }
        }
    });

    WsClient c(server.port());
    REQUIRE(c.open("/ws/q?room=x")->status == 101);
    REQUIRE(qlt::wait_until([&] { return opens == 1; }));
    CHECK(c.text("queued echo"));
    auto f = c.read();
    REQUIRE(f);
    CHECK(f->payload == "queued echo");

    // A host that takes nothing: the socket stops being read near the window.
    hold = true;
    const std::string chunk(64 * 1024, 'q');
    std::atomic<int> sent{0};
    std::thread sender([&] {
        for (int i = 0; i < 64; ++i) {
            if (!c.c.send(qlt::client_frame(2, chunk))) break;
            ++sent;
        }
    });
    qlt::sleep_ms(400);
    uint64_t at_pause = held_bytes.load();
    CHECK(at_pause >= 256 * 1024);
    CHECK(at_pause <= 256 * 1024 + 256 * 1024 + 2 * chunk.size());  // window + one read + a message
    CHECK(messages.load() < 64);
    // The host catches up: releases bring the rest, and the echoes are read as they come.
    std::atomic<size_t> echoed{0};
    std::thread reader([&] {
        while (echoed < 64) {
            auto e = c.read(5000);
            if (!e) break;
            if (e->payload.size() == chunk.size()) ++echoed;
        }
    });
    hold = false;
    {
        std::lock_guard lk(held_mu);
        for (ql_event &e : held) {
            ql_ws_event_info info = QL_WS_EVENT_INFO_INIT;
            REQUIRE(ql_event_ws_info(&e, &info) == QL_OK);
            // A real host waits for QL_EVENT_WS_DRAIN after a drop; here: retry.
            ql_status st;
            while ((st = ql_ws_send(e.server, e.id, info.data, info.len, QL_WS_BINARY, nullptr)) == QL_WS_DROPPED)
                qlt::sleep_ms(1);
            CHECK(st >= 0);
            ql_event_release(&e);
        }
        held.clear();
    }
    REQUIRE(qlt::wait_until([&] { return messages.load() == 65; }, 10000));
    sender.join();
    CHECK(sent.load() == 64);
    reader.join();
    CHECK(echoed.load() == 64);
    CHECK(c.close(1000));
    REQUIRE(qlt::wait_until([&] { return closes == 1; }));
    CHECK(close_code == 1000);
    stop = true;
    host.join();
    server.stop(2000);
    ql_queue_close(queue);
    ql_queue_free(&queue);
}

TEST_CASE("abuse: a 2 GiB announced frame, a ping flood from a client that never reads") {
    Closed closed;
    ql::App app;
    ql::WebSocketBehavior b = echo(&closed);
    b.max_backpressure = 64 * 1024;
    std::mutex mu;
    std::vector<ql::WebSocket> open;
    b.open = [&](ql::WebSocket &ws, const ql::Request &) {
        std::lock_guard lk(mu);
        open.push_back(ws);
    };
    app.ws("/ws/echo", b);
    auto server = start(app);
    {
        // The head announces 2 GiB: refused from the head (1009), before any payload.
        WsClient c(server.port());
        REQUIRE(c.open("/ws/echo")->status == 101);
        std::string head = "\x82\xff";
        for (int i = 7; i >= 0; --i) head.push_back(static_cast<char>((uint64_t(2) << 30) >> (8 * i)));
        head.append("\x01\x02\x03\x04", 4);
        CHECK(c.c.send(head));
        auto f = c.read();
        REQUIRE(f);
        CHECK(f->close_code() == 1009);
    }
    {
        // 120 000 pings of 125 bytes (16 MB, more than the kernel's buffers hold) from a client with
        // a small receive buffer that never reads: pongs stop at the socket's limit, the server
        // stays up and serves others.
        WsClient c(server.port());
        int rcv = 128 * 1024;
        ::setsockopt(c.c.fd(), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
        REQUIRE(c.open("/ws/echo")->status == 101);
        REQUIRE(qlt::wait_until([&] { std::lock_guard lk(mu); return open.size() == 2; }));
        std::string ping = qlt::client_frame(9, std::string(125, 'p'));
        std::string burst;
        for (int i = 0; i < 100; ++i) burst += ping;
        for (int i = 0; i < 1200; ++i) REQUIRE(c.c.send(burst));
        qlt::sleep_ms(100);
        ql::WebSocket flooder;
        {
            std::lock_guard lk(mu);
            flooder = open[1];
        }
        CHECK(flooder.buffered() <= 64 * 1024 + 256);
        WsClient other(server.port());
        REQUIRE(other.open("/ws/echo")->status == 101);
        CHECK(other.text("still here"));
        auto f = other.read();
        REQUIRE(f);
        CHECK(f->payload == "still here");
    }
}

TEST_CASE("event streams: SSE clients on the same topics as WebSockets, keep-alive comments, leaving") {
    ql::App app;
    ql::WebSocketBehavior chat;
    chat.open = [](ql::WebSocket &ws, const ql::Request &req) {
        ws.subscribe("room:" + std::string(req.param("room").value_or("")));
    };
    app.ws("/ws/chat/{room}", chat);
    app.event_stream("/events/{room}", "room:{room}, all", 1000);
    ql_event_stream_options none = QL_EVENT_STREAM_OPTIONS_INIT;
    CHECK(ql_app_event_stream(app.native(), "/nothing", 8, &none, nullptr) == QL_E_INVALID);
    auto server = start(app, 2);

    auto wait_for = [](qlt::Client &c, std::string_view what, int ms = 3000) {
        auto deadline = qlt::Clock::now() + std::chrono::milliseconds(ms);
        while (c.buf.find(what) == std::string::npos)
            if (c.fill(deadline) != qlt::Client::kData) return false;
        return true;
    };
    qlt::Client sse(server.port());
    REQUIRE(sse.send("GET /events/a HTTP/1.1\r\nHost: t\r\n\r\n"));
    REQUIRE(wait_for(sse, ": ok\n\n"));
    CHECK(sse.buf.find("HTTP/1.1 200") == 0);
    CHECK(qlt::lower(sse.buf).find("content-type: text/event-stream") != std::string::npos);
    CHECK(qlt::lower(sse.buf).find("transfer-encoding: chunked") != std::string::npos);
    WsClient ws(server.port());
    REQUIRE(ws.open("/ws/chat/a")->status == 101);
    // One publish reaches both kinds of subscriber; lines become data: lines.
    REQUIRE(qlt::wait_until([&] { return server.publish("room:a", "ping?") == 2; }));
    // Pings published while it subscribed may reach it too: read up to a marker.
    CHECK(server.publish("room:a", "sync") == 2);
    for (int i = 0; i < 100; ++i) {
        auto m = ws.read();
        REQUIRE(m);
        if (m->payload == "sync") break;
    }
    size_t n = server.publish("room:a", "hello\nworld\r\nagain");
    CHECK(n == 2);
    CHECK(wait_for(sse, "data: hello\ndata: world\ndata: again\n\n"));
    auto f = ws.read();
    REQUIRE(f);
    CHECK(f->payload == "hello\nworld\r\nagain");
    CHECK(server.publish("all", "to all") == 1);
    CHECK(wait_for(sse, "data: to all\n\n"));
    // Binary messages are not events.
    server.publish("room:a", "bin", true);
    // Keep-alive comments while nothing is published.
    CHECK(wait_for(sse, ": keep-alive\n\n", 3500));
    CHECK(sse.buf.find("bin") == std::string::npos);
    // HEAD gets the head only.
    auto head = qlt::fetch(server.port(), "HEAD", "/events/a");
    REQUIRE(head);
    CHECK(head->status == 200);
    // The client leaves: it is no subscriber any more.
    sse.close();
    REQUIRE(qlt::wait_until([&] { return server.publish("all", "x") == 0; }));
    // Server stop ends the streams of those still there.
    qlt::Client last(server.port());
    REQUIRE(last.send("GET /events/b HTTP/1.1\r\nHost: t\r\n\r\n"));
    REQUIRE(wait_for(last, ": ok\n\n"));
    server.stop(3000);
    CHECK(wait_for(last, "0\r\n\r\n"));
    CHECK(last.wait_closed());
}

TEST_CASE("a WebSocket route beside a GET route of the same pattern: upgrades to one, other requests to the other") {
    ql::App app;
    app.route("GET", "/{path...}", [](const ql::Request &req) {
        return ql::Response::json("{\"plain\":\"" + std::string(req.param("path").value_or("")) + "\"}");
    });
    app.route("POST", "/{path...}", [](const ql::Request &) { return ql::Response::json("{\"posted\":true}"); });
    app.ws("/{path...}", echo());
    app.ws("/only/ws", echo());
    // Per-route rules name the path: they reach its upgrades too (counted apart).
    app.route_rules("GET", "/{path...}", ql::RouteRules{.rate_limit = 3});
    auto server = start(app);

    auto plain = qlt::fetch(server.port(), "GET", "/a/b");
    REQUIRE(plain);
    CHECK(plain->status == 200);
    CHECK(plain->body == R"({"plain":"a/b"})");
    auto head = qlt::fetch(server.port(), "HEAD", "/a");
    REQUIRE(head);
    CHECK(head->status == 200);
    auto del = qlt::fetch(server.port(), "DELETE", "/a");
    REQUIRE(del);
    CHECK(del->status == 405);
    CHECK(del->header("Allow").value_or("") == "GET, HEAD, POST");  // GET once
    for (int i = 0; i < 3; ++i) {  // the rule's three upgrades (a count of their own), then 429
        WsClient c(server.port());
        auto r = c.open("/chat/x");
        REQUIRE(r);
        CHECK(r->status == 101);
        CHECK(c.text("over the catch-all"));
        auto f = c.read();
        REQUIRE(f);
        CHECK(f->payload == "over the catch-all");
    }
    {
        WsClient c(server.port());
        auto r = c.open("/chat/y");
        REQUIRE(r);
        CHECK(r->status == 429);
    }
    // A WebSocket route alone still answers a plain GET with 426.
    auto only = qlt::fetch(server.port(), "GET", "/only/ws");
    REQUIRE(only);
    CHECK(only->status == 426);

    ql::App twice;
    twice.ws("/w", echo());
    CHECK_THROWS_WITH_AS(twice.ws("/w", echo()), doctest::Contains("conflicts"), ql::Error);
}

namespace {
// A hijacking host (Go's http.Hijacker shape) over a queue: every request of
// its route is hijacked; it writes its own 101, echoes reads with a prefix,
// and closes with 1000 after "bye".
struct Hijacker {
    ql_queue *queue = nullptr;
    std::atomic<bool> stop{false};
    std::atomic<int> opens{0}, closes{0}, unopened{0}, subscribe_refused{0};
    std::atomic<uint16_t> last_code{0};
    std::thread th;
    int tag = 5;
    Hijacker() {
        REQUIRE(ql_queue_new(&queue, nullptr) == QL_OK);
        th = std::thread([this] { run(); });
    }
    ~Hijacker() {
        stop = true;
        th.join();
        ql_queue_free(&queue);
    }
    void run() {
        ql_event evs[32];
        while (!stop) {
            size_t n = 0;
            if (ql_queue_poll(queue, evs, 32, 20, &n, nullptr) != QL_OK) break;
            for (size_t i = 0; i < n; ++i) {
                ql_event &e = evs[i];
                if (e.kind == QL_EVENT_REQUEST) {
                    ql_hijack_options o = QL_HIJACK_OPTIONS_INIT;
                    o.queue = queue;
                    o.tag = &tag;
                    CHECK(ql_request_hijack(e.server, e.id, &o, nullptr) == QL_OK);
                    // Once hijacked, the request is no longer the host's to answer.
                    CHECK(ql_request_hijack(e.server, e.id, &o, nullptr) == QL_E_ALREADY_SENT);
                    continue;
                }
                ql_ws_event_info info = QL_WS_EVENT_INFO_INIT;
                if (ql_event_ws_info(&e, &info) != QL_OK) continue;
                CHECK(info.tag == &tag);
                if (e.kind == QL_EVENT_WS_OPEN) {
                    ++opens;
                    std::string hi = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-raw\r\nConnection: Upgrade\r\n\r\nhello\n";
                    CHECK(ql_ws_send(e.server, e.id, hi.data(), hi.size(), QL_WS_BINARY, nullptr) >= 0);
                    if (ql_ws_subscribe(e.server, e.id, "t", 1, nullptr) == QL_E_INVALID) ++subscribe_refused;
                } else if (e.kind == QL_EVENT_WS_MESSAGE) {
                    std::string got(info.data, info.len), out = ">" + got;
                    CHECK(ql_ws_send(e.server, e.id, out.data(), out.size(), QL_WS_BINARY, nullptr) >= 0);
                    if (got.find("bye") != std::string::npos) CHECK(ql_ws_close(e.server, e.id, 1000, "", 0, nullptr) == QL_OK);
                } else if (e.kind == QL_EVENT_WS_CLOSE) {
                    last_code = info.code;
                    if (e.id == 0) ++unopened;
                    ++closes;
                }
                ql_event_release(&e);
            }
        }
    }
};

// Reads until `want` is in c.buf (or the time is up).
bool read_until(qlt::Client &c, std::string_view want, int ms = 3000) {
    auto deadline = qlt::Clock::now() + std::chrono::milliseconds(ms);
    while (c.buf.find(want) == std::string::npos)
        if (c.fill(deadline) != qlt::Client::kData) return false;
    return true;
}
}  // namespace

TEST_CASE("hijack: a request's connection taken over as raw bytes (queue and callbacks), bytes behind it, closes") {
    Hijacker host;
    ql::App app;
    REQUIRE(ql_app_route_queue(app.native(), "GET", 3, "/raw", 4, host.queue, nullptr, nullptr, nullptr) == QL_OK);
    // The callback form, answering from the route's handler on the loop.
    static std::atomic<int> cb_closes{0};
    static ql_ws_behavior cb = QL_WS_BEHAVIOR_INIT;
    cb.on_open = [](void *, ql_websocket *ws, const ql_request *req) {
        CHECK(req != nullptr);
        ql_ws_send(ql_websocket_server(ws), ql_websocket_id(ws), "raw!", 4, QL_WS_BINARY, nullptr);
    };
    cb.on_message = [](void *, ql_websocket *ws, const char *d, size_t n, int binary) {
        CHECK(binary == 1);
        ql_ws_send(ql_websocket_server(ws), ql_websocket_id(ws), d, n, QL_WS_BINARY, nullptr);
    };
    cb.on_close = [](void *, ql_websocket *, uint16_t, const char *, size_t) { ++cb_closes; };
    ql_handler h = QL_HANDLER_INIT;
    h.on_request = [](void *, ql_request *req) {
        ql_hijack_options o = QL_HIJACK_OPTIONS_INIT;
        o.callbacks = &cb;
        CHECK(ql_request_hijack(ql_request_server(req), ql_request_id(req), &o, nullptr) == QL_OK);
    };
    REQUIRE(ql_app_route(app.native(), "GET", 3, "/cb", 3, &h, nullptr) == QL_OK);
    app.route("GET", "/plain", [](const ql::Request &) { return ql::Response::json("{}"); });
    auto server = start(app, 2);

    {  // an Upgrade request, with bytes behind it in the same packet
        qlt::Client c(server.port());
        c.send("GET /raw HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: x-raw\r\n\r\nearly");
        CHECK(read_until(c, "hello\n>early"));
        CHECK(c.buf.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0) == 0);
        c.send("more");
        CHECK(read_until(c, ">more"));
        c.send("bye");  // the host closes (1000) after answering
        CHECK(read_until(c, ">bye"));
        CHECK(c.wait_closed());
    }
    {  // a keep-alive GET without Upgrade; the peer ends it
        qlt::Client c(server.port());
        c.send("GET /raw HTTP/1.1\r\nHost: t\r\n\r\n");
        CHECK(read_until(c, "hello\n"));
        c.send("x");
        CHECK(read_until(c, ">x"));
        c.close();
    }
    for (int i = 0; i < 300 && host.closes < 2; ++i) qlt::sleep_ms(10);
    CHECK(host.opens == 2);
    CHECK(host.closes == 2);
    CHECK(host.last_code == 1006);  // the peer ended the second
    CHECK(host.subscribe_refused == 2);
    {  // pipelined behind a hijacked request: the connection ends, the host hears once (id 0)
        qlt::Client c(server.port());
        c.send("GET /raw HTTP/1.1\r\nHost: t\r\n\r\nGET /plain HTTP/1.1\r\nHost: t\r\n\r\n");
        CHECK(c.wait_closed());
        INFO(c.buf);
        for (int i = 0; i < 300 && host.unopened < 1; ++i) qlt::sleep_ms(10);
        CHECK(host.unopened == 1);
        CHECK(host.opens == 2);
    }
    {  // callbacks
        qlt::Client c(server.port());
        c.send("GET /cb HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n");
        CHECK(read_until(c, "raw!"));
        c.send("echo me");
        CHECK(read_until(c, "raw!echo me"));
        c.close();
        for (int i = 0; i < 300 && cb_closes < 1; ++i) qlt::sleep_ms(10);
        CHECK(cb_closes == 1);
    }
    // The other routes still answer as HTTP.
    auto plain = qlt::fetch(server.port(), "GET", "/plain");
    REQUIRE(plain);
    CHECK(plain->status == 200);
    // Bad options.
    ql_hijack_options none = QL_HIJACK_OPTIONS_INIT;
    ql_error *err = nullptr;
    CHECK(ql_request_hijack(server.native(), 1, &none, &err) == QL_E_INVALID);
    CHECK(std::string(ql_error_message(err)).find("queue or callbacks") != std::string::npos);
    ql_error_free(&err);
}

TEST_CASE("an upgrade the host is still deciding on: the client leaving is noticed (ABORT), though the socket is not read") {
    ql_queue *queue = nullptr;
    REQUIRE(ql_queue_new(&queue, nullptr) == QL_OK);
    ql::App app;
    ql_ws_behavior b = QL_WS_BEHAVIOR_INIT;
    REQUIRE(ql_app_ws_queue(app.native(), "/ws/q", 5, &b, queue, nullptr, nullptr, nullptr) == QL_OK);
    auto server = start(app);
    {
        qlt::Client c(server.port());
        c.send(qlt::upgrade_request("/ws/q"));
        ql_event ev{};
        size_t n = 0;
        REQUIRE(ql_queue_poll(queue, &ev, 1, 3000, &n, nullptr) == QL_OK);
        REQUIRE(n == 1);
        CHECK(ev.kind == QL_EVENT_REQUEST);
        c.close();  // the host has not decided yet
        ql_event ab{};
        REQUIRE(ql_queue_poll(queue, &ab, 1, 5000, &n, nullptr) == QL_OK);
        REQUIRE(n == 1);
        CHECK(ab.kind == QL_EVENT_ABORT);
        CHECK(ab.id == ev.id);
        CHECK(ql_ws_accept(ev.server, ev.id, nullptr, nullptr) == QL_E_GONE);
    }
    server.stop();
    ql_queue_free(&queue);
}

TEST_CASE("pings and pongs from the host (any thread), and on_upgrade_gone for a callback route's upgrade that never opens") {
    std::mutex mu;
    std::vector<ql::WebSocket> open;
    ql::App app;
    ql::WebSocketBehavior b = echo();
    b.open = [&](ql::WebSocket &ws, const ql::Request &) {
        CHECK(ws.ping("from the loop") == ql::SendStatus::Sent);
        std::lock_guard lk(mu);
        open.push_back(ws);
    };
    app.ws("/ws/echo", b);
    // A C route whose host never decides: its client leaves, then another one
    // is accepted and leaves before its 101 can go out.
    static std::atomic<int> gone_untagged{0}, gone_tagged{0};
    static std::atomic<ql_req_id> pending{0};
    static int accept_tag = 9;
    ql_ws_behavior slow = QL_WS_BEHAVIOR_INIT;
    slow.on_upgrade = [](void *, ql_request *req) { pending = ql_request_id(req); };
    slow.on_upgrade_gone = [](void *, ql_req_id id, void *tag) {
        CHECK(id != 0);
        if (tag == &accept_tag) ++gone_tagged;
        if (!tag) ++gone_untagged;
    };
    REQUIRE(ql_app_ws(app.native(), "/ws/slow", 8, &slow, nullptr) == QL_OK);
    auto server = start(app);

    WsClient c(server.port());
    REQUIRE(c.open("/ws/echo")->status == 101);
    REQUIRE(qlt::wait_until([&] { std::lock_guard lk(mu); return open.size() == 1; }));
    auto f = c.read();
    REQUIRE(f);
    CHECK(f->opcode == 9);
    CHECK(f->payload == "from the loop");
    ql::WebSocket ws = open[0];
    std::thread([&] { CHECK(ws.pong("unsolicited") == ql::SendStatus::Sent); }).join();
    f = c.read();
    REQUIRE(f);
    CHECK(f->opcode == 10);
    CHECK(f->payload == "unsolicited");
    CHECK_THROWS_AS(ws.ping(std::string(126, 'p')), ql::Error);
    // Not for publishing.
    CHECK(ql_server_publish(server.native(), "t", 1, "x", 1, QL_WS_PING, 0, nullptr, nullptr) == QL_E_INVALID);
    CHECK(c.text("still echoing"));
    f = c.read();
    REQUIRE(f);
    CHECK(f->payload == "still echoing");

    {  // the client leaves while the host decides
        qlt::Client s(server.port());
        s.send(qlt::upgrade_request("/ws/slow"));
        REQUIRE(qlt::wait_until([] { return pending.load() != 0; }));
        s.close();
        REQUIRE(qlt::wait_until([] { return gone_untagged.load() == 1; }, 5000));
        CHECK(ql_ws_accept(server.native(), pending, nullptr, nullptr) == QL_E_GONE);
    }
    {  // accepted, but the connection is gone before the 101 goes out
        pending = 0;
        qlt::Client s(server.port());
        s.send(qlt::upgrade_request("/ws/slow"));
        REQUIRE(qlt::wait_until([] { return pending.load() != 0; }));
        s.reset();
        qlt::sleep_ms(20);
        ql_ws_accept_options o = QL_WS_ACCEPT_OPTIONS_INIT;
        o.tag = &accept_tag;
        ql_status st = ql_ws_accept(server.native(), pending, &o, nullptr);
        // The tick may have seen the reset first (GONE, untagged), or the accept came first (tagged).
        if (st == QL_OK)
            CHECK(qlt::wait_until([] { return gone_tagged.load() == 1; }, 5000));
        else
            CHECK(qlt::wait_until([] { return gone_untagged.load() == 2; }, 5000));
    }
}

TEST_CASE("a close under way can still be cut (code 0); the close notice keeps its code; a closed id stays gone") {
    Closed closed;
    std::mutex mu;
    std::vector<ql::WebSocket> open;
    ql::App app;
    ql::WebSocketBehavior b = echo(&closed);
    b.open = [&](ql::WebSocket &ws, const ql::Request &) {
        std::lock_guard lk(mu);
        open.push_back(ws);
    };
    app.ws("/ws/echo", b);
    auto server = start(app);
    for (int round = 0; round < 2; ++round) {  // the second reuses the first's slot
        WsClient c(server.port());
        REQUIRE(c.open("/ws/echo")->status == 101);
        REQUIRE(qlt::wait_until([&] { std::lock_guard lk(mu); return open.size() == size_t(round + 1); }));
        ql::WebSocket ws = open.back();
        CHECK(ws.close(4002, "bye"));  // the client never answers it
        auto f = c.read();
        REQUIRE(f);
        CHECK(f->opcode == 8);
        CHECK_FALSE(ws.close(1000));  // a second handshake: refused (closing)
        auto t0 = qlt::Clock::now();
        CHECK(ws.close(0));  // from this (another) thread: handed to the loop
        CHECK(c.c.wait_closed(1500));  // well before the 2 s close timeout
        CHECK(qlt::Clock::now() - t0 < std::chrono::milliseconds(1500));
        REQUIRE(qlt::wait_until([&] { return closed.count() == size_t(round + 1); }));
        CHECK(closed.seen.back().first == 4002);
        CHECK_FALSE(ws.close(0));  // closed: gone
    }
}

TEST_CASE("shared GET/WebSocket pattern over two loops and many concurrent clients: one rate count per route, server-wide") {
    ql::App app;
    app.route("GET", "/{path...}", [](const ql::Request &) { return ql::Response::json("{\"plain\":true}"); });
    app.ws("/{path...}", echo());
    app.route_rules("GET", "/{path...}", ql::RouteRules{.rate_limit = 10});
    auto server = start(app, 2);
    std::atomic<int> upgraded{0}, up_limited{0}, plain_ok{0}, plain_limited{0}, other{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 30; ++i) {
        ts.emplace_back([&, i] {
            WsClient c(server.port());
            auto r = c.open("/room/" + std::to_string(i));
            if (r && r->status == 101) {
                std::string m = "m" + std::to_string(i);
                auto f = c.text(m) ? c.read() : std::nullopt;
                if (f && f->payload == m) ++upgraded;
                else ++other;
            } else if (r && r->status == 429) {
                ++up_limited;
            } else {
                ++other;
            }
        });
        ts.emplace_back([&, i] {
            auto r = qlt::fetch(server.port(), "GET", "/page/" + std::to_string(i));
            if (r && r->status == 200) ++plain_ok;
            else if (r && r->status == 429) ++plain_limited;
            else ++other;
        });
    }
    for (auto &t : ts) t.join();
    CHECK(other == 0);
    CHECK(upgraded == 10);  // across both loops, each route its own count
    CHECK(up_limited == 20);
    CHECK(plain_ok == 10);
    CHECK(plain_limited == 20);
}
