// cpp-httplib peer of the C and C++ examples (bench/run): the example contract
// on Debian's libcpp-httplib-dev, JSON with nlohmann_json (as the C++ example).
// cpp-httplib serves each connection on a pool thread; the pool gets
// HTTPLIB_THREADS threads (bench/run sets it to its wrk connection count plus
// 8, so every load connection has a thread), keep-alive is raised to match the
// other servers (the library's defaults close a connection after 5 requests or
// 5 idle seconds), and TCP_NODELAY is on (cpp-httplib writes the headers and
// the body separately). Everything runs on the one CPU bench/run pins it to.
//   PORT=8080 HTTPLIB_THREADS=72 ./httplib_server
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

static httplib::Server *server;

int main() {
    const char *p = std::getenv("PORT"), *t = std::getenv("HTTPLIB_THREADS");
    int port = p ? std::atoi(p) : 8080;
    size_t threads = t ? static_cast<size_t>(std::atoi(t)) : 72;
    httplib::Server svr;
    server = &svr;
    svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    svr.set_keep_alive_max_count(1000000);
    svr.set_keep_alive_timeout(300);
    svr.set_tcp_nodelay(true); // headers and body go out in two writes: without it, Nagle + delayed ACK cost 40 ms
    svr.Get("/ping", [](const httplib::Request &, httplib::Response &res) {
        res.set_content(R"({"message":"pong"})", "application/json");
    });
    svr.Get(R"(/hello/([^/]+))", [](const httplib::Request &req, httplib::Response &res) {
        res.set_content(nlohmann::json{{"hello", req.matches[1].str()}}.dump(), "application/json");
    });
    svr.Post("/echo", [](const httplib::Request &req, httplib::Response &res) {
        auto j = nlohmann::json::parse(req.body, nullptr, false);
        if (j.is_discarded()) {
            res.status = 400;
            res.set_content(R"({"detail":"invalid JSON"})", "application/json");
            return;
        }
        res.set_content(j.dump(), "application/json");
    });
    std::signal(SIGTERM, [](int) { server->stop(); });
    std::signal(SIGINT, [](int) { server->stop(); });
    std::printf("cpp-httplib on http://127.0.0.1:%d (%zu threads)\n", port, threads);
    std::fflush(stdout);
    return svr.listen("127.0.0.1", port) ? 0 : 1;
}
