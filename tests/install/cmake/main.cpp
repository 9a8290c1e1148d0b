// Installed-package check (C++, find_package): the installed headers compile (the C ABI and the
// header-only C++ wrapper); a server answers GET /ping over a raw socket.
#include <quicklane.h>
#include <quicklane.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace {

int fail(const char *what, ql_error *err) {
    std::fprintf(stderr, "cmake: %s failed: %s\n", what, err ? ql_error_message(err) : "(no error object)");
    ql_error_free(&err);
    return 1;
}

std::string fetch(uint16_t port) {
    std::string out;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return out;
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    const std::string req = "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 &&
        ::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size())) {
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
}

} // namespace

int main() {
    const std::string body = R"({"message":"pong"})";
    std::printf("quicklane %s (ABI %u)\n", ql_version(), static_cast<unsigned>(ql_abi_version()));
    ql_app *app = nullptr;
    ql_server *server = nullptr;
    ql_error *err = nullptr;
    if (ql_app_new(&app, &err) != QL_OK) return fail("ql_app_new", err);
    ql_response resp = QL_RESPONSE_INIT;
    resp.content_type = "application/json";
    resp.content_type_len = 16;
    resp.body = body.data();
    resp.body_len = body.size();
    if (ql_app_static(app, "GET", 3, "/ping", 5, &resp, &err) != QL_OK) return fail("ql_app_static", err);
    ql_server_options opts = QL_SERVER_OPTIONS_INIT;
    opts.workers = 1;
    if (ql_server_new(app, &opts, &server, &err) != QL_OK) return fail("ql_server_new", err);
    if (ql_server_start(server, &err) != QL_OK) return fail("ql_server_start", err);
    uint16_t port = ql_server_port(server);
    if (port == 0) return fail("ql_server_port", nullptr);
    std::string answer = fetch(port);
    if (answer.rfind("HTTP/1.1 200", 0) != 0 || answer.find(body) == std::string::npos) {
        std::fprintf(stderr, "cmake: unexpected answer:\n%s\n", answer.c_str());
        return 1;
    }
    if (ql_server_stop(server, 1000, &err) != QL_OK) return fail("ql_server_stop", err);
    ql_server_free(&server);
    ql_app_free(&app);
    std::printf("cmake: GET /ping -> 200 on port %u: ok\n", static_cast<unsigned>(port));
    return 0;
}
