/* Installed-package check (C, pkg-config): serve a static route on an ephemeral port, request it
 * over a raw socket, stop. Exits 0 only when the answer is a 200 with the expected body. */
#define _POSIX_C_SOURCE 200809L
#include <quicklane.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int fail(const char *what, ql_error *err) {
    fprintf(stderr, "c: %s failed: %s\n", what, err ? ql_error_message(err) : "(no error object)");
    ql_error_free(&err);
    return 1;
}

static int fetch(uint16_t port, char *out, size_t cap) {
    struct sockaddr_in a;
    struct timeval tv = {5, 0};
    const char *req = "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    size_t len = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || send(fd, req, strlen(req), 0) < 0) {
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
        if (len == cap - 1) break;
    }
    out[len] = '\0';
    close(fd);
    return (int)len;
}

int main(void) {
    static const char body[] = "{\"message\":\"pong\"}";
    ql_app *app = NULL;
    ql_server *server = NULL;
    ql_error *err = NULL;
    ql_response resp = QL_RESPONSE_INIT;
    ql_server_options opts = QL_SERVER_OPTIONS_INIT;
    char answer[4096];
    uint16_t port;

    printf("quicklane %s (ABI %u, header ABI %d)\n", ql_version(), (unsigned)ql_abi_version(), QL_ABI_VERSION);
    if (ql_abi_version() != QL_ABI_VERSION) return fail("ABI version check", NULL);
    if (ql_app_new(&app, &err) != QL_OK) return fail("ql_app_new", err);
    resp.content_type = "application/json";
    resp.content_type_len = strlen(resp.content_type);
    resp.body = body;
    resp.body_len = strlen(body);
    if (ql_app_static(app, "GET", 3, "/ping", 5, &resp, &err) != QL_OK) return fail("ql_app_static", err);
    opts.workers = 1;
    if (ql_server_new(app, &opts, &server, &err) != QL_OK) return fail("ql_server_new", err);
    if (ql_server_start(server, &err) != QL_OK) return fail("ql_server_start", err);
    port = ql_server_port(server);
    if (port == 0) return fail("ql_server_port", NULL);
    if (fetch(port, answer, sizeof answer) <= 0) return fail("request to /ping", NULL);
    if (strncmp(answer, "HTTP/1.1 200", 12) != 0 || strstr(answer, body) == NULL) {
        fprintf(stderr, "c: unexpected answer:\n%s\n", answer);
        return 1;
    }
    if (ql_server_stop(server, 1000, &err) != QL_OK) return fail("ql_server_stop", err);
    ql_server_free(&server);
    ql_app_free(&app);
    printf("c: GET /ping -> 200 on port %u: ok\n", (unsigned)port);
    return 0;
}
