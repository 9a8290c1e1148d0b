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
    memcpy(o, "{\"hello\":", 9), o += 9;
    o += json_string(name.data, name.len, o);
    *o++ = '}';
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

/* GET /ws/echo: each message back as it came (text as text, binary as binary). */
static void ws_echo(void *user_data, ql_websocket *ws, const char *data, size_t len, int binary) {
    (void)user_data;
    ql_ws_send(ql_websocket_server(ws), ql_websocket_id(ws), data, len, binary ? QL_WS_BINARY : QL_WS_TEXT, NULL);
}

/* GET /ws/chat/{room}: members get numbers in their room's order (rooms span every loop, so the
 * count is shared), and each text message goes to the room's topic as
 * {"room": ..., "from": n, "text": ...}, sender included. */
typedef struct room { struct room *next; unsigned members; size_t len; char name[]; } room;
typedef struct member { unsigned n; size_t room_len; char room[]; } member;
static pthread_mutex_t rooms_mu = PTHREAD_MUTEX_INITIALIZER;
static room *rooms; /* a few rooms: a list is enough; freed at exit */

static unsigned join(const char *name, size_t len) {
    pthread_mutex_lock(&rooms_mu);
    room *r = rooms;
    while (r && !(r->len == len && memcmp(r->name, name, len) == 0)) r = r->next;
    if (!r && (r = malloc(sizeof *r + len))) {
        r->next = rooms, r->members = 0, r->len = len, memcpy(r->name, name, len);
        rooms = r;
    }
    unsigned n = r ? ++r->members : 0;
    pthread_mutex_unlock(&rooms_mu);
    return n;
}

static void chat_open(void *user_data, ql_websocket *ws, const ql_request *upgrade) {
    ql_str name = {"", 0};
    (void)user_data, ql_request_param(upgrade, "room", 4, &name);
    member *m = malloc(sizeof *m + name.len);
    if (!m) { ql_ws_close(ql_websocket_server(ws), ql_websocket_id(ws), 1011, "out of memory", 13, NULL); return; }
    m->n = join(name.data, name.len), m->room_len = name.len, memcpy(m->room, name.data, name.len);
    ql_websocket_set_tag(ws, m);
    ql_ws_subscribe(ql_websocket_server(ws), ql_websocket_id(ws), m->room, m->room_len, NULL);
}

static void chat_message(void *user_data, ql_websocket *ws, const char *data, size_t len, int binary) {
    member *m = ql_websocket_tag(ws);
    (void)user_data;
    if (!m) return;
    if (binary) { /* the room speaks JSON text */
        ql_ws_close(ql_websocket_server(ws), ql_websocket_id(ws), 1003, "text messages only", 18, NULL);
        return;
    }
    char *out = malloc(6 * (len + m->room_len) + 64), *o = out;
    if (!out) return;
    memcpy(o, "{\"room\":", 8), o += 8;
    o += json_string(m->room, m->room_len, o);
    o += sprintf(o, ",\"from\":%u,\"text\":", m->n);
    o += json_string(data, len, o);
    *o++ = '}';
    ql_server_publish(ql_websocket_server(ws), m->room, m->room_len, out, (size_t)(o - out), QL_WS_TEXT, 0, NULL, NULL);
    free(out);
}

static void chat_close(void *user_data, ql_websocket *ws, uint16_t code, const char *reason, size_t len) {
    (void)user_data, (void)code, (void)reason, (void)len;
    free(ql_websocket_tag(ws));
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
    ql_ws_behavior echo_ws = QL_WS_BEHAVIOR_INIT, chat_ws = QL_WS_BEHAVIOR_INIT;
    echo_ws.on_message = ws_echo, echo_ws.compression = QL_WS_COMPRESS_SHARED;
    chat_ws.on_open = chat_open, chat_ws.on_message = chat_message, chat_ws.on_close = chat_close;
    ql_server_options opts = QL_SERVER_OPTIONS_INIT;
    opts.port = (uint16_t)(getenv("PORT") ? atoi(getenv("PORT")) : 8080);
    opts.workers = (uint32_t)(getenv("WORKERS") ? atoi(getenv("WORKERS")) : 0);
    if (ql_app_new(&app, &err) || ql_app_static(app, "GET", 3, "/ping", 5, &pong, &err) ||
        ql_app_route(app, "GET", 3, "/hello/{name}", 13, &on_hello, &err) ||
        ql_app_route(app, "POST", 4, "/echo", 5, &on_echo, &err) ||
        ql_app_ws(app, "/ws/echo", 8, &echo_ws, &err) || ql_app_ws(app, "/ws/chat/{room}", 15, &chat_ws, &err) ||
        ql_server_new(app, &opts, &server, &err) || ql_server_start(server, &err)) {
        fprintf(stderr, "quicklane: %s\n", err ? ql_error_message(err) : "startup failed");
        ql_error_free(&err), ql_server_free(&server), ql_app_free(&app);
        return 1;
    }
    printf("quicklane listening on http://127.0.0.1:%u\n", (unsigned)ql_server_port(server));
    fflush(stdout), sigwait(&sigs, &sig);
    ql_server_stop(server, 5000, NULL), ql_server_free(&server), ql_app_free(&app);
    while (rooms) { room *next = rooms->next; free(rooms); rooms = next; }
    return 0;
}
