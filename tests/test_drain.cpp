// Graceful drain under load: a stop (the API, or SIGTERM to an example
// process) must answer every request a client finished sending before the
// stop, then close. Clients count: sent before the stop, answered, lost.
#include <doctest.h>
#include <quicklane.hpp>

#include "test_support.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace ql = quicklane;
using namespace std::chrono_literals;

extern char **environ;

namespace {

constexpr uint64_t kBeforeStop = 200;  // requests sent before each stop

struct Tally {
    std::atomic<uint64_t> before_sent{0};      // fully sent before the stop began
    std::atomic<uint64_t> before_answered{0};  // ... and answered with a whole response
    std::atomic<uint64_t> after_answered{0};
    std::atomic<uint64_t> bad{0};  // a response that was not the expected one
    std::mutex mu;
    std::vector<std::string> lost;  // what happened to requests sent before the stop
};

// One client: `reuse` keeps its connection alive, else a new one per request.
// Runs until its connection is refused after the stop, or its bounds.
void client_loop(uint16_t port, int id, bool reuse, const std::vector<std::string> &requests,
                 const std::atomic<bool> &stopped, Tally &t) {
    std::optional<qlt::Client> c;
    auto end = std::chrono::steady_clock::now() + 15s;
    for (int i = 0; i < 20000 && std::chrono::steady_clock::now() < end; ++i) {
        if (!c || !c->ok()) {
            c.emplace(port);
            if (!c->ok()) {
                if (stopped.load()) return;  // the listener is gone: done
                std::this_thread::sleep_for(1ms);
                continue;
            }
        }
        const std::string &req = requests[static_cast<size_t>(i + id) % requests.size()];
        bool sent = c->send(req);
        bool before = sent && !stopped.load();  // the whole request left before the stop
        if (before) ++t.before_sent;
        auto r = sent ? c->read_response(10000) : std::nullopt;
        if (r) {
            if (r->status != 200) ++t.bad;
            ++(before ? t.before_answered : t.after_answered);
            if (!reuse || r->connection_has("close")) c.reset();
        } else {
            if (before) {
                std::lock_guard lk(t.mu);
                t.lost.push_back("client " + std::to_string(id) + " request " + std::to_string(i) + ": " +
                                 c->error);
            }
            c.reset();
            if (stopped.load()) return;
        }
    }
}

struct Load {
    std::atomic<bool> stopped{false};
    Tally tally;
    std::vector<std::thread> threads;

    Load(uint16_t port, int keep_alive, int fresh, std::vector<std::string> requests) : reqs(std::move(requests)) {
        for (int i = 0; i < keep_alive + fresh; ++i)
            threads.emplace_back(client_loop, port, i, i < keep_alive, std::cref(reqs), std::cref(stopped),
                                 std::ref(tally));
    }
    void join() {
        for (auto &th : threads) th.join();
        threads.clear();
    }
    ~Load() {
        stopped = true;
        join();
    }
    void check() {
        std::lock_guard lk(tally.mu);
        MESSAGE("sent before the stop: ", tally.before_sent.load(), ", answered: ", tally.before_answered.load(),
                ", answered after: ", tally.after_answered.load());
        for (const auto &l : tally.lost) MESSAGE("lost: ", l);
        CHECK(tally.before_sent.load() >= kBeforeStop);
        CHECK(tally.lost.empty());
        CHECK(tally.before_answered.load() == tally.before_sent.load());
        CHECK(tally.bad.load() == 0);
    }
    std::vector<std::string> reqs;
};

}  // namespace

TEST_CASE("stop under load answers every request sent before it, slow handlers included") {
    ql::App app;
    app.static_route("GET", "/ping", ql::Response::json(R"({"message":"pong"})"));
    app.route("GET", "/hello/{name}", [](ql::Request &req) {
        return ql::Response::json(std::string(R"({"hello":")") + std::string(req.param("name").value_or("")) + "\"}");
    });
    // In flight when the stop comes: answered 20-60 ms later from other threads.
    std::mutex bag_mu;
    std::vector<std::thread> bag;
    std::atomic<uint64_t> slow_answers{0};
    app.route_async("GET", "/slow", [&](ql::Request &, ql::Responder res) {
        static thread_local std::minstd_rand rng{42};
        auto delay = std::chrono::milliseconds(20 + rng() % 40);
        std::lock_guard lk(bag_mu);
        bag.emplace_back([res, delay, &slow_answers]() mutable {
            std::this_thread::sleep_for(delay);
            if (res.send(ql::Response::text("slow")) == QL_OK) ++slow_answers;
        });
    });
    ql::Server server(app, {.host = "127.0.0.1", .port = 0, .workers = 2});
    server.start();
    {
        Load load(server.port(), 8, 3,
                  {qlt::request("GET", "/ping"), qlt::request("GET", "/slow"), qlt::request("GET", "/hello/x")});
        // A count, not a time: the stop comes once enough requests have been sent.
        REQUIRE(qlt::wait_until([&] { return load.tally.before_sent.load() >= kBeforeStop; }, 14000));
        load.stopped = true;
        server.stop(5000);
        load.join();
        load.check();
        CHECK(slow_answers.load() > 0);
        CHECK(server.stats().requests_in_flight == 0);
    }
    std::lock_guard lk(bag_mu);
    for (auto &th : bag) th.join();
}

TEST_CASE("stop closes idle keep-alive connections at once") {
    ql::App app;
    app.static_route("GET", "/ping", ql::Response::text("pong"));
    ql::Server server(app, {.host = "127.0.0.1", .port = 0, .workers = 1});
    server.start();
    std::vector<qlt::Client> idle;
    for (int i = 0; i < 20; ++i) {
        idle.emplace_back(server.port());
        REQUIRE(idle.back().send(qlt::request("GET", "/ping")));
        REQUIRE(idle.back().read_response());
    }
    server.stop(30000);  // would take 30 s if idle connections were waited for
    for (auto &c : idle) CHECK(c.wait_closed(1000));
}

#ifdef QL_EXAMPLE_C
TEST_CASE("SIGTERM to the C example under load: every request sent before it is answered, exit 0") {
    // A free port for the example (it takes $PORT).
    uint16_t port = 0;
    {
        ql::App probe_app;
        probe_app.static_route("GET", "/", ql::Response::text("x"));
        ql::Server probe(probe_app, {.host = "127.0.0.1", .port = 0, .workers = 1});
        probe.start();
        port = probe.port();
    }
    std::string port_env = "PORT=" + std::to_string(port);
    std::vector<char *> env;
    for (char **e = environ; *e; ++e)
        if (std::strncmp(*e, "PORT=", 5) != 0 && std::strncmp(*e, "WORKERS=", 8) != 0) env.push_back(*e);
    std::string workers_env = "WORKERS=2";
    env.push_back(port_env.data());
    env.push_back(workers_env.data());
    env.push_back(nullptr);
    const char *path = QL_EXAMPLE_C;
    char *argv[] = {const_cast<char *>(path), nullptr};
    pid_t pid = 0;
    REQUIRE(posix_spawn(&pid, path, nullptr, nullptr, argv, env.data()) == 0);
    bool up = qlt::wait_until([&] { return qlt::fetch(port, "GET", "/ping").has_value(); }, 5000);
    if (!up) kill(pid, SIGKILL);
    REQUIRE(up);
    std::string body(1024, 'a');
    std::string echo = "{\"data\":\"" + body + "\"}";
    {
        Load load(port, 8, 3,
                  {qlt::request("GET", "/ping"), qlt::request("GET", "/hello/world"),
                   qlt::request("POST", "/echo", echo, "Content-Type: application/json\r\n")});
        // A count, not a time: the stop comes once enough requests have been sent.
        REQUIRE(qlt::wait_until([&] { return load.tally.before_sent.load() >= kBeforeStop; }, 14000));
        load.stopped = true;
        REQUIRE(kill(pid, SIGTERM) == 0);
        load.join();
        load.check();
    }
    int status = 0;
    pid_t got = 0;
    qlt::wait_until([&] { return (got = waitpid(pid, &status, WNOHANG)) == pid; }, 10000);
    if (got != pid) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        FAIL("the example did not exit within 10 s of SIGTERM");
    }
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
#endif
