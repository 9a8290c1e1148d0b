// Queued delivery (ql_queue_*) and servers on a host-owned loop (ql_server_start_on_loop).
#include <poll.h>
#include <uv.h>

#include <future>
#include <set>

#include "test_support.hpp"

using namespace qlt;

namespace {

// Built with append: g++ 12 -O3 reports a false -Wrestrict on "a" + s + "b".
std::string name_json(const std::string &name) {
    std::string s = "{\"name\":\"";
    s.append(name).append("\"}");
    return s;
}

struct QueueFixture {
    ql_queue *queue = nullptr;
    ql_app *app = nullptr;
    ql_server *server = nullptr;
    uint16_t port = 0;
    int route_tag = 7;

    explicit QueueFixture(uint32_t workers = 2) {
        REQUIRE(ql_queue_new(&queue, nullptr) == QL_OK);
        REQUIRE(ql_app_new(&app, nullptr) == QL_OK);
        REQUIRE(ql_app_route_queue(app, "GET", 3, "/q/{name}", 9, queue, &route_tag, nullptr, nullptr) == QL_OK);
        ql_server_options o = options(workers);
        REQUIRE(ql_server_new(app, &o, &server, nullptr) == QL_OK);
        REQUIRE(ql_server_start(server, nullptr) == QL_OK);
        port = ql_server_port(server);
    }
    ~QueueFixture() {
        ql_server_stop(server, 1000, nullptr);
        ql_queue_close(queue);
        ql_server_free(&server);
        ql_app_free(&app);
        ql_queue_free(&queue);
    }
};

// Answers every REQUEST event with {"name":...}; counts batches and aborts.
struct Poller {
    std::atomic<int> answered{0}, aborts{0}, batches{0}, gone{0};
    std::thread t;
    ql_queue *queue;
    explicit Poller(ql_queue *q) : queue(q) {
        t = std::thread([this, q] {
            ql_event ev[64];
            size_t n = 0;
            while (ql_queue_poll(q, ev, 64, -1, &n, nullptr) == QL_OK) {
                if (n) batches.fetch_add(1);
                for (size_t i = 0; i < n; ++i) {
                    if (ev[i].kind == QL_EVENT_ABORT) {
                        aborts.fetch_add(1);
                        continue;
                    }
                    ql_str name{};
                    ql_request_param(ev[i].request, "name", 4, &name);
                    std::string body = name_json(str(name));
                    CHECK(ev[i].route_data != nullptr);
                    if (str(name) == "slow") {
                        // answered later by the test
                        continue;
                    }
                    if (respond(ev[i].server, ev[i].id, 200, "application/json", body) == QL_OK)
                        answered.fetch_add(1);
                }
            }
        });
    }
    ~Poller() {
        ql_queue_close(queue);  // ends the poll loop
        t.join();
    }
};

}  // namespace

TEST_CASE("queued routes: batches polled by host threads, answered from them") {
    QueueFixture f;
    Poller p(f.queue);
    std::vector<std::thread> clients;
    std::atomic<int> ok{0};
    for (int c = 0; c < 4; ++c) {
        clients.emplace_back([&, c] {
            Client cl(f.port);
            for (int i = 0; i < 25; ++i) {
                std::string name = "n";
                name.append(std::to_string(c)).append("_").append(std::to_string(i));
                REQUIRE(cl.send(request("GET", "/q/" + name)));
                auto r = cl.read_final();
                if (r && r->status == 200 && r->body == name_json(name)) ok.fetch_add(1);
            }
        });
    }
    for (auto &t : clients) t.join();
    CHECK(ok.load() == 100);
    CHECK(p.answered.load() == 100);
    CHECK(p.batches.load() >= 1);
    CHECK(p.batches.load() <= 100);
}

TEST_CASE("queued routes: pipelined requests arrive as one batch") {
    QueueFixture f(1);
    std::string burst;
    for (int i = 0; i < 10; ++i) {
        std::string target = "/q/p";
        target.append(std::to_string(i));
        burst += request("GET", target);
    }
    Client cl(f.port);
    REQUIRE(cl.send(burst));
    ql_event ev[64];
    size_t total = 0, n = 0, polls = 0;
    auto deadline = Clock::now() + std::chrono::seconds(3);
    std::vector<ql_event> got;
    while (total < 10 && Clock::now() < deadline) {
        REQUIRE(ql_queue_poll(f.queue, ev, 64, 200, &n, nullptr) == QL_OK);
        if (n) ++polls;
        for (size_t i = 0; i < n; ++i) got.push_back(ev[i]);
        total += n;
    }
    REQUIRE(total == 10);
    CHECK(polls <= 2);  // one read of the socket, one burst, one crossing (two at worst)
    // answer in reverse order: the wire order must still be request order
    for (size_t i = got.size(); i-- > 0;) {
        ql_str name{};
        ql_request_param(got[i].request, "name", 4, &name);
        CHECK(respond(got[i].server, got[i].id, 200, "text/plain", str(name)) == QL_OK);
    }
    for (int i = 0; i < 10; ++i) {
        auto r = cl.read_final();
        REQUIRE(r);
        std::string want = "p";
        want.append(std::to_string(i));
        CHECK(r->body == want);
    }
}

TEST_CASE("queued routes: an aborted request becomes an ABORT event; its answer returns QL_E_GONE") {
    QueueFixture f(1);
    {
        Client cl(f.port);
        REQUIRE(cl.send(request("GET", "/q/slow")));
        ql_event ev[4];
        size_t n = 0;
        REQUIRE(ql_queue_poll(f.queue, ev, 4, 2000, &n, nullptr) == QL_OK);
        REQUIRE(n == 1);
        CHECK(ev[0].kind == QL_EVENT_REQUEST);
        ql_req_id id = ev[0].id;
        ql_server *srv = ev[0].server;
        ql_str name{};
        ql_request_param(ev[0].request, "name", 4, &name);
        cl.close();
        REQUIRE(ql_queue_poll(f.queue, ev, 4, 2000, &n, nullptr) == QL_OK);
        REQUIRE(n == 1);
        CHECK(ev[0].kind == QL_EVENT_ABORT);
        CHECK(ev[0].id == id);
        CHECK(*static_cast<int *>(ev[0].route_data) == 7);
        CHECK(str(name) == "slow");  // still valid after the abort, until answered
        CHECK(respond(srv, id, 200, "text/plain", "late") == QL_E_GONE);
    }
    auto r = fetch(f.port, "GET", "/q/x");  // nobody polls: answer it here
    (void)r;
}

TEST_CASE("queue fd is readable while events are pending; close ends polling") {
    ql_queue *q = nullptr;
    REQUIRE(ql_queue_new(&q, nullptr) == QL_OK);
    int fd = ql_queue_fd(q);
    REQUIRE(fd >= 0);
    struct pollfd pfd{fd, POLLIN, 0};
    CHECK(::poll(&pfd, 1, 0) == 0);
    ql_app *app = nullptr;
    REQUIRE(ql_app_new(&app, nullptr) == QL_OK);
    static int destroyed = 0;
    REQUIRE(ql_app_route_queue(app, "GET", 3, "/x", 2, q, &destroyed, [](void *d) { ++*static_cast<int *>(d); },
                               nullptr) == QL_OK);
    CHECK(ql_app_route_queue(app, "GET", 3, "/x", 2, q, nullptr, nullptr, nullptr) == QL_E_CONFLICT);
    ql_server_options o = options(1);
    ql_server *srv = nullptr;
    REQUIRE(ql_server_new(app, &o, &srv, nullptr) == QL_OK);
    REQUIRE(ql_server_start(srv, nullptr) == QL_OK);
    Client cl(ql_server_port(srv));
    REQUIRE(cl.send(request("GET", "/x")));
    CHECK(::poll(&pfd, 1, 3000) == 1);
    ql_event ev[2];
    size_t n = 0;
    REQUIRE(ql_queue_poll(q, ev, 2, 0, &n, nullptr) == QL_OK);
    REQUIRE(n == 1);
    CHECK(::poll(&pfd, 1, 0) == 0);  // drained: no longer readable
    CHECK(respond(ev[0].server, ev[0].id, 204, "", "") == QL_OK);
    auto r = cl.read_final();
    REQUIRE(r);
    CHECK(r->status == 204);
    CHECK(r->body.empty());
    std::thread waiter([&] {
        size_t m = 0;
        CHECK(ql_queue_poll(q, ev, 2, -1, &m, nullptr) == QL_E_STATE);
    });
    sleep_ms(50);
    ql_queue_close(q);
    waiter.join();
    ql_server_stop(srv, 1000, nullptr);
    ql_server_free(&srv);
    CHECK(destroyed == 0);
    ql_app_free(&app);
    CHECK(destroyed == 1);
    ql_queue_free(&q);
    CHECK(q == nullptr);
}

// ---- host-owned loop ----------------------------------------------------

namespace {

struct HostLoop {
    uv_loop_t loop;
    uv_async_t wake;
    std::thread t;
    std::mutex mu;
    std::vector<std::function<void()>> jobs;
    std::atomic<bool> quit{false};

    HostLoop() {
        uv_loop_init(&loop);
        uv_async_init(&loop, &wake, [](uv_async_t *a) {
            auto *h = static_cast<HostLoop *>(a->data);
            std::vector<std::function<void()>> js;
            {
                std::lock_guard lk(h->mu);
                js.swap(h->jobs);
            }
            for (auto &j : js) j();
            if (h->quit) uv_close(reinterpret_cast<uv_handle_t *>(&h->wake), nullptr);
        });
        wake.data = this;
        t = std::thread([this] { uv_run(&loop, UV_RUN_DEFAULT); });
    }
    // Runs fn on the loop's thread and waits for it.
    void run(std::function<void()> fn) {
        std::promise<void> done;
        {
            std::lock_guard lk(mu);
            jobs.push_back([&] {
                fn();
                done.set_value();
            });
        }
        uv_async_send(&wake);
        done.get_future().wait();
    }
    ~HostLoop() {
        quit = true;
        uv_async_send(&wake);
        t.join();
        CHECK(uv_loop_close(&loop) == 0);  // nothing of quicklane left on it
    }
};

}  // namespace

TEST_CASE("a server on a host-owned loop: handlers on that thread, async stop, then the loop is free") {
    HostLoop host;
    std::thread::id loop_thread;
    host.run([&] { loop_thread = std::this_thread::get_id(); });
    ql_app *app = nullptr;
    REQUIRE(ql_app_new(&app, nullptr) == QL_OK);
    std::atomic<bool> on_loop{true};
    REQUIRE(add_route(app, "GET", "/where/{x}", [&](ql_request *req) {
                if (std::this_thread::get_id() != loop_thread) on_loop = false;
                ql_str x{};
                ql_request_param(req, "x", 1, &x);
                respond(req, 200, "text/plain", str(x));
            }) == QL_OK);
    REQUIRE(add_static(app, "GET", "/ping", 200, "application/json", "{\"message\":\"pong\"}") == QL_OK);
    ql_server *srv = nullptr;
    ql_server_options o = options(4);  // ignored on a host loop
    REQUIRE(ql_server_new(app, &o, &srv, nullptr) == QL_OK);
    ql_status st = QL_E_INTERNAL;
    host.run([&] { st = ql_server_start_on_loop(srv, &host.loop, nullptr); });
    REQUIRE(st == QL_OK);
    uint16_t port = ql_server_port(srv);
    REQUIRE(port != 0);
    for (int i = 0; i < 20; ++i) {
        auto r = fetch(port, "GET", "/where/" + std::to_string(i));
        REQUIRE(r);
        CHECK(r->body == std::to_string(i));
    }
    auto pong = fetch(port, "GET", "/ping");
    REQUIRE(pong);
    CHECK(pong->body == "{\"message\":\"pong\"}");
    CHECK(on_loop.load());
    // a keep-alive connection is closed by the drain
    Client idle(port);
    REQUIRE(idle.send(request("GET", "/ping")));
    REQUIRE(idle.read_final());
    std::atomic<bool> stopped{false};
    CHECK(ql_server_stop_async(srv, 1000, nullptr, nullptr, nullptr) == QL_E_STATE);  // wrong thread
    host.run([&] {
        st = ql_server_stop_async(srv, 1000, [](void *d) { static_cast<std::atomic<bool> *>(d)->store(true); },
                                  &stopped, nullptr);
    });
    CHECK(st == QL_OK);
    CHECK(wait_until([&] { return stopped.load(); }));
    CHECK(idle.wait_closed(2000));
    ql_server_free(&srv);
    ql_app_free(&app);
}

TEST_CASE("host-owned loop: blocking stop from another thread, and free on the loop thread") {
    HostLoop host;
    ql_app *app = nullptr;
    REQUIRE(ql_app_new(&app, nullptr) == QL_OK);
    REQUIRE(add_static(app, "GET", "/ping", 200, "text/plain", "pong") == QL_OK);
    for (int round = 0; round < 2; ++round) {
        ql_server *srv = nullptr;
        REQUIRE(ql_server_new(app, nullptr, &srv, nullptr) == QL_OK);
        ql_status st = QL_E_INTERNAL;
        Err err;
        host.run([&] { st = ql_server_start_on_loop(srv, &host.loop, err.out()); });
        INFO("round ", round, ": ", err.message());
        REQUIRE(st == QL_OK);
        auto r = fetch(ql_server_port(srv), "GET", "/ping");
        REQUIRE(r);
        CHECK(r->body == "pong");
        if (round == 0) {
            CHECK(ql_server_stop(srv, 1000, nullptr) == QL_OK);  // waits for the loop to close our handles
            ql_server_free(&srv);
        } else {
            host.run([&] { ql_server_free(&srv); });  // released once its handles have closed
            CHECK(srv == nullptr);
        }
    }
    ql_app_free(&app);
}
