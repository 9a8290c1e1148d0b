/* quicklane from C: the example contract over the C ABI. JSON without a DOM: /hello's is written
 * by hand, /echo's body is checked and compacted in one pass by json_helper.c (beside). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <quicklane.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_helper.h"

static void reply(ql_request *req, int status, const char *body, size_t len) {
    ql_response res = QL_RESPONSE_INIT;
    res.status = status, res.content_type = "application/json", res.content_type_len = 16;
    res.body = body, res.body_len = len;
    ql_respond(ql_request_server(req), ql_request_id(req), &res, NULL); /* copies the body */
}

static const char out_of_memory[] = "{\"detail\":\"out of memory\"}";

static void hello(void *user_data, ql_request *req) { /* JSON built by hand: one small buffer */
    ql_str name = {"", 0};
    (void)user_data, ql_request_param(req, "name", 4, &name);
    char *body = malloc(name.len * 6 + 16), *o = body; /* worst case: every byte as \u00XX */
    if (!body) { reply(req, 500, out_of_memory, sizeof out_of_memory - 1); return; }
    memcpy(o, "{\"hello\":\"", 10), o += 10;
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.data[i];
        if (c == '"' || c == '\\') *o++ = '\\', *o++ = (char)c;
        else if (c < 0x20) o += sprintf(o, "\\u%04x", c);
        else *o++ = (char)c;
    }
    memcpy(o, "\"}", 2), o += 2;
    reply(req, 200, body, (size_t)(o - body));
    free(body);
}

static void echo(void *user_data, ql_request *req) { /* the body as sent, less its whitespace */
    ql_str in = ql_request_body(req);
    json_error err;
    char *out = malloc(in.len + 1), detail[sizeof err.message + 16];
    (void)user_data;
    if (!out) { reply(req, 500, out_of_memory, sizeof out_of_memory - 1); return; }
    size_t n = json_minify(in.data, in.len, out, &err);
    if (n != JSON_INVALID) {
        reply(req, 200, out, n);
    } else { /* the message needs no escaping (json_helper.h) */
        n = (size_t)snprintf(detail, sizeof detail, "{\"detail\":\"%s\"}", err.message);
        reply(req, 400, detail, n);
    }
    free(out);
}

int main(void) {
    sigset_t sigs; /* blocked before the loops start, so they inherit the mask */
    int sig;
    sigemptyset(&sigs), sigaddset(&sigs, SIGINT), sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    ql_app *app = NULL;
    ql_server *server = NULL;
    ql_error *err = NULL;
    ql_response pong = QL_RESPONSE_INIT;
    pong.content_type = "application/json", pong.content_type_len = 16;
    pong.body = "{\"message\":\"pong\"}", pong.body_len = strlen(pong.body);
    ql_handler on_hello = QL_HANDLER_INIT, on_echo = QL_HANDLER_INIT;
    on_hello.on_request = hello, on_echo.on_request = echo;
    ql_server_options opts = QL_SERVER_OPTIONS_INIT;
    opts.port = (uint16_t)(getenv("PORT") ? atoi(getenv("PORT")) : 8080);
    opts.workers = (uint32_t)(getenv("WORKERS") ? atoi(getenv("WORKERS")) : 0);
    if (ql_app_new(&app, &err) || ql_app_static(app, "GET", 3, "/ping", 5, &pong, &err) ||
        ql_app_route(app, "GET", 3, "/hello/{name}", 13, &on_hello, &err) ||
        ql_app_route(app, "POST", 4, "/echo", 5, &on_echo, &err) ||
        ql_server_new(app, &opts, &server, &err) || ql_server_start(server, &err)) {
        fprintf(stderr, "quicklane: %s\n", err ? ql_error_message(err) : "startup failed");
        ql_error_free(&err), ql_server_free(&server), ql_app_free(&app);
        return 1;
    }
    printf("quicklane listening on http://127.0.0.1:%u\n", (unsigned)ql_server_port(server));
    fflush(stdout), sigwait(&sigs, &sig);
    ql_server_stop(server, 5000, NULL), ql_server_free(&server), ql_app_free(&app);
    return 0;
}
