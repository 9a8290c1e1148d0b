/*
 * quicklane.h — the one stable C ABI of quicklane.
 *
 * Every binding (C++, Python, Node, Go) and every C program calls only this
 * header. Rules that hold for every function below:
 *
 *  - Names are ql_<noun>_<verb>. Handles are opaque; every _new has a _free.
 *    Free functions take T** and set it to NULL, so calling them twice is safe.
 *  - Fallible functions return ql_status (QL_OK = 0, errors negative). When
 *    out_error is not NULL and a call fails, *out_error receives an error
 *    object that the caller owns and frees with ql_error_free(). Passing NULL
 *    for out_error is allowed: only the status comes back then.
 *  - Strings cross as (data, len) views and need not be NUL-terminated.
 *    Everything passed IN is copied before the call returns, unless stated.
 *  - Request data handed to a handler is borrowed: it stays valid until the
 *    request is finished by ql_respond() (any result but QL_E_INVALID, which
 *    leaves the request unanswered and valid).
 *  - Options structs carry `version` first and only ever grow at the end:
 *    initialise them with the _INIT macro or the _init() function.
 *  - No C++ exception and no abort() crosses this boundary.
 *
 * See docs/capi.md for the full ownership, lifetime and thread rules.
 */
#ifndef QUICKLANE_H
#define QUICKLANE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define QL_API __declspec(dllexport)
#else
#define QL_API __attribute__((visibility("default")))
#endif

/* Bumped when something is appended to this header. */
#define QL_ABI_VERSION 4

/* ------------------------------------------------------------------------ */
/* Status codes and errors                                                   */
/* ------------------------------------------------------------------------ */

typedef int32_t ql_status;

/* Values never change; new ones are appended. */
enum {
    QL_OK = 0,
    QL_E_INVALID = -1,      /* an argument or option is out of range          */
    QL_E_NOMEM = -2,        /* allocation failed                               */
    QL_E_CONFLICT = -3,     /* route conflicts with an existing route          */
    QL_E_STATE = -4,        /* call not allowed in the object's current state  */
    QL_E_IO = -5,           /* socket/bind/listen/thread failure               */
    QL_E_GONE = -6,         /* request no longer exists or its client has left */
    QL_E_ALREADY_SENT = -7, /* the request was already answered                */
    QL_E_INTERNAL = -8,     /* unexpected internal failure (a bug: report it)   */
    QL_E_AGAIN = -9,        /* nothing to read yet: a notification follows      */
    QL_E_TOO_LARGE = -10    /* the request body crossed its limit (413 sent)    */
};

typedef struct ql_error ql_error;

/* Status carried by the error. */
QL_API ql_status ql_error_code(const ql_error *error);
/* NUL-terminated message, owned by the error object. */
QL_API const char *ql_error_message(const ql_error *error);
/* Frees *error (if any) and sets it to NULL. */
QL_API void ql_error_free(ql_error **error);
/* Static name of a status ("QL_E_GONE"); never NULL. */
QL_API const char *ql_status_name(ql_status status);

/* Library version string, e.g. "0.1.0" (static storage). */
QL_API const char *ql_version(void);
/* QL_ABI_VERSION the library was built with. */
QL_API uint32_t ql_abi_version(void);

/* ------------------------------------------------------------------------ */
/* Common value types                                                        */
/* ------------------------------------------------------------------------ */

/* A borrowed string view. */
typedef struct ql_str {
    const char *data;
    size_t len;
} ql_str;

/* One HTTP header as two views. */
typedef struct ql_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} ql_header;

/* Names one request for its whole life (loop, slot and generation). A stale
 * id never aliases a newer request: using it returns QL_E_GONE. */
typedef uint64_t ql_req_id;

typedef void (*ql_destroy_fn)(void *user_data);

/* ------------------------------------------------------------------------ */
/* Responses                                                                 */
/* ------------------------------------------------------------------------ */

/* Describes one response. Used both for static routes and for ql_respond().
 * All memory it points to is copied by the call that takes it.
 * Content-Length, Transfer-Encoding, Date, Server and Connection are written
 * by the core; do not put them in `headers` (they are rejected with
 * QL_E_INVALID). A Content-Type in `headers` replaces content_type.
 * 204 and 304 answers are sent without body bytes. */
typedef struct ql_response {
    uint32_t version;
    int32_t status;             /* 200..599; default 200                       */
    const char *content_type;   /* optional (NULL = none)                      */
    size_t content_type_len;
    const ql_header *headers;   /* optional extra headers                      */
    size_t header_count;
    const char *body;           /* optional                                     */
    size_t body_len;
} ql_response;

#define QL_RESPONSE_VERSION 1
#define QL_RESPONSE_INIT {QL_RESPONSE_VERSION, 200, NULL, 0, NULL, 0, NULL, 0}
QL_API void ql_response_init(ql_response *response, uint32_t version);

/* ------------------------------------------------------------------------ */
/* Requests (borrowed handles given to handlers)                             */
/* ------------------------------------------------------------------------ */

typedef struct ql_request ql_request;
typedef struct ql_server ql_server;

/* All accessors are cheap, never fail and may be called from any thread, as
 * long as the request has not been finished with ql_respond(). Views stay
 * valid until then. */
QL_API ql_req_id ql_request_id(const ql_request *req);
/* The server that received the request (pass it to ql_respond). */
QL_API ql_server *ql_request_server(const ql_request *req);
QL_API ql_str ql_request_method(const ql_request *req);
/* Path without the query, as sent (not decoded). */
QL_API ql_str ql_request_path(const ql_request *req);
/* Raw request target (path and query), as sent. */
QL_API ql_str ql_request_target(const ql_request *req);
/* Raw query string without '?' (empty when none). */
QL_API ql_str ql_request_query_string(const ql_request *req);
/* The route pattern that matched, e.g. "/hello/{name}". */
QL_API ql_str ql_request_route(const ql_request *req);
/* HTTP minor version: 0 for HTTP/1.0, 1 for HTTP/1.1. */
QL_API int ql_request_http_minor(const ql_request *req);
QL_API ql_str ql_request_body(const ql_request *req);

/* Path parameters, percent-decoded. Lookup returns 1 and fills *out when
 * found, 0 otherwise. */
QL_API size_t ql_request_param_count(const ql_request *req);
QL_API int ql_request_param_at(const ql_request *req, size_t index, ql_str *name, ql_str *value);
QL_API int ql_request_param(const ql_request *req, const char *name, size_t name_len, ql_str *out);

/* Query parameters, percent-decoded ('+' is a space), in order. Lookup gives
 * the first value of a name. */
QL_API size_t ql_request_query_count(const ql_request *req);
QL_API int ql_request_query_at(const ql_request *req, size_t index, ql_str *name, ql_str *value);
QL_API int ql_request_query(const ql_request *req, const char *name, size_t name_len, ql_str *out);

/* Headers as received (names in their original case). Lookup is
 * case-insensitive and gives the first value. */
QL_API size_t ql_request_header_count(const ql_request *req);
QL_API int ql_request_header_at(const ql_request *req, size_t index, ql_str *name, ql_str *value);
QL_API int ql_request_header(const ql_request *req, const char *name, size_t name_len, ql_str *out);

/* Client address as text ("127.0.0.1", "::1") and port. */
QL_API ql_str ql_request_client_ip(const ql_request *req);
QL_API uint16_t ql_request_client_port(const ql_request *req);

/* A per-request pointer for the host (NULL at first). Handed back to the
 * route's on_abort callback. */
QL_API void ql_request_set_tag(ql_request *req, void *tag);
QL_API void *ql_request_tag(const ql_request *req);

/* ------------------------------------------------------------------------ */
/* Apps and routes                                                           */
/* ------------------------------------------------------------------------ */

typedef struct ql_app ql_app;

/* Called on the loop thread that owns the connection. The handler may answer
 * inside the call with ql_respond() (fast path), or keep the request id and
 * answer later from any thread. Every request must be finished exactly once
 * with ql_respond(). */
typedef void (*ql_handler_fn)(void *user_data, ql_request *req);
/* Called on the loop thread, at most once per request, when the client goes
 * away (or the server is force-stopped) before the request was answered. The
 * request data stays valid: the host must still call ql_respond() for it,
 * which then returns QL_E_GONE and frees it. */
typedef void (*ql_abort_fn)(void *user_data, ql_req_id id, void *tag);

typedef struct ql_handler {
    uint32_t version;
    ql_handler_fn on_request;   /* required                                  */
    ql_abort_fn on_abort;       /* optional                                  */
    void *user_data;            /* passed to both callbacks                  */
    ql_destroy_fn destroy;      /* optional: called once when no server or
                                   app uses the route any more               */
    /* Version 2. Streamed request bodies (ql_route_options.stream_body):
     * called on the loop thread, once, after a ql_request_body_read that
     * returned QL_E_AGAIN, when bytes, the end of the body or an error can
     * be read. When the request itself ends (its client left, the core
     * answered 413/400 or a timeout in its place) on_abort fires instead,
     * and reads then give the error. Same arguments as on_abort. Optional:
     * without it, read with a timeout on a thread of your own.               */
    ql_abort_fn on_body;
    /* Version 2. Streamed answers: called on the loop thread, once, after a
     * ql_respond_start or ql_respond_write left more than QL_DRAIN_HIGH bytes
     * buffered, when the buffered bytes fall to QL_DRAIN_LOW or below
     * (QL_EVENT_DRAIN for queued routes): write again. Optional. A write made
     * on the loop thread goes out at once, so this may run inside that
     * ql_respond_write; its *out_buffered is then what is left after it (wait
     * for a drain only while that is above QL_DRAIN_HIGH). A client that
     * leaves while a stream is still being written is told by on_abort
     * (QL_EVENT_ABORT) instead, and later writes return QL_E_GONE.          */
    ql_abort_fn on_drain;
} ql_handler;

#define QL_DRAIN_HIGH (1024 * 1024)
#define QL_DRAIN_LOW (256 * 1024)

#define QL_HANDLER_VERSION 2
#define QL_HANDLER_INIT {QL_HANDLER_VERSION, NULL, NULL, NULL, NULL, NULL, NULL}
QL_API void ql_handler_init(ql_handler *handler, uint32_t version);

QL_API ql_status ql_app_new(ql_app **out_app, ql_error **out_error);
/* Servers created from the app keep their own reference to its routes, so
 * the app may be freed while they run. */
QL_API void ql_app_free(ql_app **app);

/* Route patterns: exact segments ("/users/me"), parameters "{name}" or
 * ":name", and a trailing catch-all "{name...}" or "*name". Methods are
 * upper-case tokens ("GET", "POST", ...). A route that conflicts with an
 * existing one returns QL_E_CONFLICT with a message naming both.
 * Routes added after a server was created do not reach that server. */
QL_API ql_status ql_app_route(ql_app *app, const char *method, size_t method_len,
                              const char *pattern, size_t pattern_len,
                              const ql_handler *handler, ql_error **out_error);

/* A route answered entirely in the core with a fixed response: the host is
 * never called. The response is copied. */
QL_API ql_status ql_app_static(ql_app *app, const char *method, size_t method_len,
                               const char *pattern, size_t pattern_len,
                               const ql_response *response, ql_error **out_error);

/* ------------------------------------------------------------------------ */
/* Servers                                                                   */
/* ------------------------------------------------------------------------ */

/* Every limit has a default a user never has to set; 0 means "default". */
typedef struct ql_server_options {
    uint32_t version;
    const char *host;              /* default "127.0.0.1"; "::" / "::1" for IPv6 */
    size_t host_len;
    uint16_t port;                 /* 0 = ephemeral (see ql_server_port)     */
    uint32_t workers;              /* loops/threads; default = CPU cores     */
    uint32_t max_header_bytes;     /* target + header names and values; default 16 KiB → 431 */
    uint32_t max_url_bytes;        /* request target; default 8 KiB → 414    */
    uint64_t max_body_bytes;       /* default 1 MiB → 413                    */
    uint32_t max_headers;          /* header count; default 100 → 431        */
    uint32_t header_timeout_ms;    /* first byte to end of head; default 30000 → 408
                                      (a plain close when an earlier answer is owed) */
    uint32_t idle_timeout_ms;      /* keep-alive idle, and a stalled body (→ 408);
                                      default 60000                          */
    uint32_t max_connections;      /* whole server; default 100000           */
    uint32_t max_pipeline;         /* unanswered requests per connection; default 32 */
    uint32_t backlog;              /* listen backlog; default 1024           */
    /* Version 2. 1 = share a fixed port with other processes (or servers)
     * that also set it, through SO_REUSEPORT (same user only; the kernel
     * spreads connections among them): the "port already in use" check is
     * skipped. For node:cluster and other pre-fork hosts. Default 0.       */
    uint32_t reuse_port;
    /* Version 3. How long a handler may hold a request before answering
     * (ql_respond or ql_respond_start); then the client gets 503
     * {"detail":"handler timed out"}, the host gets the route's abort
     * notification, a line goes to stderr, and the host's late answer
     * returns QL_E_GONE (and frees the request, as after a client left).
     * Streamed answers, once started, are not limited. Default 60000.   */
    uint32_t handler_timeout_ms;
    /* Version 4. Streamed request bodies (ql_route_options.stream_body).
     * max_stream_body_bytes: the server-wide limit of a streamed body; a
     * declared Content-Length above it is 413 before a byte is read, a
     * chunked body crossing it is 413 and close. 0 = none (memory stays
     * bounded by the window anyway), as uvicorn and Go's net/http.
     * body_window_bytes: unread body bytes a request may hold before the
     * connection stops reading (backpressure); default 256 KiB, 4 KiB .. 64 MiB. */
    uint64_t max_stream_body_bytes;
    uint32_t body_window_bytes;
} ql_server_options;

#define QL_SERVER_OPTIONS_VERSION 4
#define QL_SERVER_OPTIONS_INIT {QL_SERVER_OPTIONS_VERSION, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
QL_API void ql_server_options_init(ql_server_options *options, uint32_t version);

/* Validates options (out-of-range values are refused here, with a message)
 * and snapshots the app's routes. options may be NULL for all defaults. */
QL_API ql_status ql_server_new(const ql_app *app, const ql_server_options *options,
                               ql_server **out_server, ql_error **out_error);

/* Binds and starts the worker loops; returns once every loop is listening.
 * A port that another socket listens on is QL_E_IO (the loops share the
 * port with SO_REUSEPORT among themselves only). A server runs at most once:
 * create a new one to serve again (a start that failed to bind may be
 * retried). */
QL_API ql_status ql_server_start(ql_server *server, ql_error **out_error);

/* The bound port (useful with port 0); 0 before start. */
QL_API uint16_t ql_server_port(const ql_server *server);

/* Graceful stop: stops accepting, closes idle keep-alive connections, lets
 * in-flight requests finish for up to timeout_ms, then closes the rest
 * (unanswered requests get their abort notification) and joins the loops.
 * Must not be called from a handler (a loop thread). Safe to call twice. */
QL_API ql_status ql_server_stop(ql_server *server, uint32_t timeout_ms, ql_error **out_error);

/* Stops (with a 5 s drain) if needed and frees everything. Ids of requests
 * that were never finished must not be used afterwards. Must not be called
 * from a handler of this server (it is then ignored, with a message). */
QL_API void ql_server_free(ql_server **server);

/* Finishes a request: answers it, or frees it when its client has left.
 * Thread-safe: callable from the handler (written at once) or later from any
 * thread (queued for the owning loop, which is woken once per burst).
 * The response is copied before the call returns.
 * Returns QL_OK, QL_E_GONE (client left or server stopped: the request is
 * freed; also for any later call with that id, and for unknown ids),
 * QL_E_ALREADY_SENT (a second answer while the first is still being
 * delivered; nothing happens) or QL_E_INVALID (bad response fields; the
 * request stays unanswered). */
QL_API ql_status ql_respond(ql_server *server, ql_req_id id, const ql_response *response,
                            ql_error **out_error);

/* Streamed answers (Transfer-Encoding: chunked; close-delimited for HTTP/1.0).
 * ql_respond_start sends the head (status, content type, headers; a body in
 * `head` becomes the first bytes) and claims the answer like ql_respond;
 * ql_respond_write adds bytes (copied); ql_respond_end sends the last chunk
 * and finishes the request. All three are thread-safe, like ql_respond.
 * Request data stays valid until ql_respond_end (or until a call returns
 * QL_E_GONE). Once the client has left, calls return QL_E_GONE and the
 * request is already freed: stop producing. After ql_respond_end, calls
 * return QL_E_STATE (last bytes still being written) or QL_E_GONE; a write
 * before ql_respond_start returns QL_E_STATE. Answers behind a streamed one on
 * the same connection wait for its end (pipelining order).
 * Backpressure: *out_buffered (optional) receives the bytes accepted but not
 * yet written to the socket; a producer should pause while it is above
 * QL_DRAIN_HIGH and write again at on_drain (QL_EVENT_DRAIN), or poll it
 * with a zero-length write. */
QL_API ql_status ql_respond_start(ql_server *server, ql_req_id id, const ql_response *head,
                                  ql_error **out_error);
QL_API ql_status ql_respond_write(ql_server *server, ql_req_id id, const char *data, size_t len,
                                  uint64_t *out_buffered, ql_error **out_error);
QL_API ql_status ql_respond_end(ql_server *server, ql_req_id id, ql_error **out_error);

/* Counters for tests and metrics. */
typedef struct ql_server_stats {
    uint32_t version;
    uint64_t connections_open;
    uint64_t connections_total;
    uint64_t requests_total;
    uint64_t requests_in_flight;  /* handed to handlers, not finished yet */
} ql_server_stats;

#define QL_SERVER_STATS_VERSION 1
#define QL_SERVER_STATS_INIT {QL_SERVER_STATS_VERSION, 0, 0, 0, 0}
QL_API void ql_server_stats_init(ql_server_stats *stats, uint32_t version);
QL_API ql_status ql_server_stats_get(const ql_server *server, ql_server_stats *stats,
                                     ql_error **out_error);

/* ------------------------------------------------------------------------ */
/* Running on a loop the host owns (Node)                                    */
/* ------------------------------------------------------------------------ */

/* Starts the server as one worker on a libuv loop the caller owns and runs
 * (a `uv_loop_t *`, e.g. Node's from napi_get_uv_event_loop), instead of on
 * threads of its own. Call it on that loop's thread; handlers then run on it.
 * The `workers` option is ignored (1). The library must have been built
 * against the same libuv the loop belongs to. Returns once listening. */
QL_API ql_status ql_server_start_on_loop(ql_server *server, void *uv_loop, ql_error **out_error);

typedef void (*ql_stopped_fn)(void *user_data);

/* Graceful stop of a server started with ql_server_start_on_loop, without
 * blocking the loop: call it on the loop's thread; `done` (optional) runs on
 * that thread once every connection and handle is closed. Draining works as
 * for ql_server_stop. ql_server_free on the loop's thread before `done` is
 * allowed: the memory is released once the handles have closed. */
QL_API ql_status ql_server_stop_async(ql_server *server, uint32_t timeout_ms, ql_stopped_fn done,
                                      void *user_data, ql_error **out_error);

/* ------------------------------------------------------------------------ */
/* Queued delivery (hosts with their own threads: Python, Go)                */
/* ------------------------------------------------------------------------ */

/* A queue collects the requests of the routes bound to it, and their abort
 * notices, for host threads that fetch them in batches with ql_queue_poll().
 * Loop threads never wait for a host lock: a push is a short mutex section.
 * One queue may serve many routes, apps and servers. */
typedef struct ql_queue ql_queue;

/* Values never change; new ones are appended. */
enum {
    QL_EVENT_REQUEST = 1, /* a request to answer with ql_respond(server, id)  */
    QL_EVENT_ABORT = 2,   /* the client of request `id` left; the request
                             must still be finished with ql_respond(), which
                             then returns QL_E_GONE. With several pollers an
                             ABORT may be seen before its REQUEST.           */
    QL_EVENT_BODY = 3,    /* a streamed body of request `id` can be read again
                             (after a ql_request_body_read gave QL_E_AGAIN)  */
    QL_EVENT_DRAIN = 4    /* a streamed answer of request `id` has drained to
                             QL_DRAIN_LOW buffered bytes (see on_drain)       */
};

typedef struct ql_event {
    uint32_t kind;          /* QL_EVENT_*                                      */
    ql_req_id id;
    ql_request *request;    /* REQUEST only: borrowed until ql_respond for id  */
    ql_server *server;      /* REQUEST only: the server to answer through      */
    void *route_data;       /* the value given to ql_app_route_queue           */
} ql_event;

QL_API ql_status ql_queue_new(ql_queue **out_queue, ql_error **out_error);
/* Wakes every waiting poller; polls then drain what is left and return
 * QL_E_STATE once the queue is closed and empty. Routes bound to a closed
 * queue still enqueue (nobody answers them: close a queue after stopping
 * its servers). */
QL_API void ql_queue_close(ql_queue *queue);
/* Releases the caller's reference; routes keep the queue alive as needed. */
QL_API void ql_queue_free(ql_queue **queue);

/* Waits up to timeout_ms (0: no wait, negative: forever) for at least one
 * event, then moves up to `max` events into `events` and stores how many in
 * *out_count (0 after a timeout). Thread-safe: many threads may poll one
 * queue. Returns QL_OK, or QL_E_STATE when the queue is closed and empty. */
QL_API ql_status ql_queue_poll(ql_queue *queue, ql_event *events, size_t max, int32_t timeout_ms,
                               size_t *out_count, ql_error **out_error);

/* A file descriptor (eventfd) that is readable while events may be pending,
 * for an event loop (asyncio add_reader, epoll). Read events with
 * ql_queue_poll(timeout 0) when it fires; do not read the fd yourself.
 * Owned by the queue. */
QL_API int ql_queue_fd(const ql_queue *queue);

/* Binds a route to a queue: its requests become QL_EVENT_REQUEST events
 * carrying route_data. `destroy` (optional) is called with route_data once
 * no app or server uses the route any more. Conflicts and bad patterns as
 * for ql_app_route. */
QL_API ql_status ql_app_route_queue(ql_app *app, const char *method, size_t method_len,
                                    const char *pattern, size_t pattern_len, ql_queue *queue,
                                    void *route_data, ql_destroy_fn destroy, ql_error **out_error);

/* ------------------------------------------------------------------------ */
/* Native rules: the fast path. Answered or decorated in the core, before    */
/* (and without) the host. Bad rules are refused here or at ql_server_new,   */
/* never at request time. Like routes, rules reach servers created later.    */
/* ------------------------------------------------------------------------ */

/* Per-route rules, set on a route added before with exactly this method and
 * pattern (by ql_app_route, ql_app_route_queue or ql_app_static). */
typedef struct ql_route_options {
    uint32_t version;
    uint32_t rate_limit;          /* token bucket of this many requests per client,
                                     refilled over rate_window_ms; over it: 429 with
                                     Retry-After. 0 = the app's default (ql_app_rate_limit).
                                     Answers carry RateLimit-Limit/-Remaining/-Reset. */
    uint32_t rate_window_ms;      /* default 60000; 1 .. 86400000                      */
    const char *rate_key_header;  /* count per this header's value (e.g. X-Tenant)     */
    size_t rate_key_header_len;   /* instead of per client IP (the IP when absent)     */
    uint32_t require_api_key;     /* 1 = one of the app's keys (ql_app_api_keys) must
                                     come with the request: missing → 401, wrong → 403 */
    uint32_t cache_ttl_ms;        /* > 0: GET/HEAD answers are cached this long, keyed by
                                     the request target (+ cache_vary headers). The host
                                     runs once per key per TTL; concurrent misses of one
                                     key wait for that one answer. Only 2xx answers are
                                     stored; hits carry Age, and Cache-Control: max-age
                                     unless the host set its own. 1 .. 86400000          */
    const char *cache_vary;       /* comma-separated request headers that are part of the */
    size_t cache_vary_len;        /* key (e.g. "Accept-Language"); default none           */
    const char *body_schema;      /* JSON Schema (2020-12 subset, see docs/capi.md) of the */
    size_t body_schema_len;       /* JSON body: not JSON → 400, invalid → 422 in FastAPI's
                                     shape {"detail":[{"type","loc","msg","input"}]}    */
    const char *params_schema;    /* typed path/query parameters, as JSON:               */
    size_t params_schema_len;     /* {"id":{"in":"path","type":"integer","minimum":1},
                                     "q":{"in":"query","required":true}} → 422          */
    /* Version 2. */
    uint32_t stream_body;         /* 1 = the handler is called once the head is complete;
                                     the body is read as it arrives with
                                     ql_request_body_read (not with body_schema)        */
    uint64_t max_body_bytes;      /* this route's limit of a streamed body; 0 = the
                                     server's max_stream_body_bytes                     */
} ql_route_options;

#define QL_ROUTE_OPTIONS_VERSION 2
#define QL_ROUTE_OPTIONS_INIT {QL_ROUTE_OPTIONS_VERSION, 0, 0, NULL, 0, 0, 0, NULL, 0, NULL, 0, NULL, 0, 0, 0}
QL_API void ql_route_options_init(ql_route_options *options, uint32_t version);

/* Replaces the rules of one route. QL_E_INVALID when no such route exists or
 * a field is out of range (with a message). */
QL_API ql_status ql_app_route_options(ql_app *app, const char *method, size_t method_len,
                                      const char *pattern, size_t pattern_len,
                                      const ql_route_options *options, ql_error **out_error);

/* The app-wide rate limit: one bucket per client across every route that
 * has no limit of its own. requests = 0 turns it off. key_header as in
 * ql_route_options (NULL = per client IP). */
QL_API ql_status ql_app_rate_limit(ql_app *app, uint32_t requests, uint32_t window_ms,
                                   const char *key_header, size_t key_header_len,
                                   ql_error **out_error);

/* A folder served by the core under a URL prefix ("/static/": GET and HEAD of
 * /static/<file path>): ETag and Last-Modified with If-None-Match /
 * If-Modified-Since → 304, a single Range → 206 (416 when unsatisfiable),
 * content types by extension, gzip for compressible types when the client
 * accepts it (a fresh <file>.gz sibling, else compressed once and kept).
 * Encoded slashes or backslashes, NUL, empty, "." and ".." segments, and
 * symlinks that resolve outside the folder answer 404 without touching the
 * disk outside it. Files up to 4 MiB stay in memory (re-read when their
 * size or mtime change); larger files of any size are sent from disk with
 * sendfile(2). */
typedef struct ql_static_dir_options {
    uint32_t version;
    const char *index;     /* file served for the folder itself and its subfolders; */
    size_t index_len;      /* default "index.html"; set index_len 0 and index "" → none */
    uint32_t max_age_s;    /* Cache-Control: public, max-age=N; 0 = none          */
    uint32_t no_gzip;      /* 1 = never gzip                                      */
} ql_static_dir_options;

#define QL_STATIC_DIR_OPTIONS_VERSION 1
#define QL_STATIC_DIR_OPTIONS_INIT {QL_STATIC_DIR_OPTIONS_VERSION, NULL, 0, 0, 0}
QL_API void ql_static_dir_options_init(ql_static_dir_options *options, uint32_t version);
/* prefix must start and end with "/"; folder must exist (resolved now). */
QL_API ql_status ql_app_static_dir(ql_app *app, const char *prefix, size_t prefix_len, const char *folder,
                                   size_t folder_len, const ql_static_dir_options *options,
                                   ql_error **out_error);

/* gzip for answers from handlers (not streams) of at least min_bytes
 * (default 1024) when the client accepts gzip and the content type is
 * compressible (text, JSON, XML, JavaScript, SVG, wasm); never when the
 * answer has its own Content-Encoding. level 1..9 (default 6; 0 = default).
 * enabled = 0 turns it off. */
QL_API ql_status ql_app_compression(ql_app *app, uint32_t enabled, uint32_t min_bytes, uint32_t level,
                                    ql_error **out_error);

/* The response cache's bound (LRU by bytes: bodies, headers, keys) for
 * servers created from this app; default 64 MiB; 4 KiB .. 64 GiB. */
QL_API ql_status ql_app_cache_size(ql_app *app, uint64_t max_bytes, ql_error **out_error);

/* CORS for the whole app. A preflight (OPTIONS with Origin and
 * Access-Control-Request-Method) is answered natively: 204 with the allow
 * headers, or 400 without them when the origin, method or a requested header
 * is not allowed. Other requests from an allowed origin get
 * Access-Control-Allow-Origin (and Vary: Origin) on whatever answers them;
 * a foreign origin gets no allow headers. options = NULL turns CORS off. */
typedef struct ql_cors_options {
    uint32_t version;
    const char *origins;   /* comma-separated exact origins ("https://app.example"), or "*" */
    size_t origins_len;
    const char *methods;   /* comma-separated; default "GET, HEAD, POST"           */
    size_t methods_len;
    const char *headers;   /* request headers allowed beyond the CORS-safelisted   */
    size_t headers_len;    /* ones, comma-separated, or "*"; default none          */
    const char *expose;    /* Access-Control-Expose-Headers; default none          */
    size_t expose_len;
    uint32_t credentials;  /* 1 = Access-Control-Allow-Credentials (not with "*")  */
    uint32_t max_age_s;    /* preflight cache; 0 = default 600                     */
} ql_cors_options;

#define QL_CORS_OPTIONS_VERSION 1
#define QL_CORS_OPTIONS_INIT {QL_CORS_OPTIONS_VERSION, NULL, 0, NULL, 0, NULL, 0, NULL, 0, 0, 0}
QL_API void ql_cors_options_init(ql_cors_options *options, uint32_t version);
QL_API ql_status ql_app_cors(ql_app *app, const ql_cors_options *options, ql_error **out_error);

/* API keys for routes with require_api_key: looked for in the header (default
 * "X-API-Key" when header is NULL), then, when query is given, in that query
 * parameter; compared in constant time. Replaces earlier keys. */
QL_API ql_status ql_app_api_keys(ql_app *app, const char *header, size_t header_len, const char *query,
                                 size_t query_len, const ql_str *keys, size_t key_count,
                                 ql_error **out_error);

/* A GET route answered natively with the server's metrics in Prometheus text
 * format: requests by route and status, a latency histogram per route, open
 * connections, bytes in and out, native- vs host-answered requests. */
QL_API ql_status ql_app_metrics(ql_app *app, const char *pattern, size_t pattern_len, ql_error **out_error);

/* 1 = one JSON line per answered request on stderr (time, client, method,
 * target, route, status, duration_ms, native). Default 0. */
QL_API ql_status ql_app_access_log(ql_app *app, uint32_t enabled, ql_error **out_error);

/* ------------------------------------------------------------------------ */
/* Streamed request bodies                                                   */
/* ------------------------------------------------------------------------ */

/* Reads the body of request `id` as it arrives: copies up to `cap` bytes into
 * `buf` and stores how many in *out_len. Thread-safe (any thread, one reader
 * at a time). On a route with stream_body the handler runs when the head is
 * complete; on other routes this reads the buffered body.
 *  - QL_OK with *out_len > 0: bytes; QL_OK with *out_len == 0: the body has
 *    ended (trailers are dropped).
 *  - QL_E_AGAIN: nothing buffered after waiting timeout_ms (0: no wait,
 *    negative: until something comes). After a QL_E_AGAIN the route's
 *    on_body (QL_EVENT_BODY for queued routes) fires once when a read would
 *    give something.
 *  - QL_E_GONE: the client left mid-body or the request is finished (the
 *    route's abort notice fires too), or the request was answered before its
 *    body was read and the rest was dropped (a read past what arrived before
 *    the answer never sees a clean end); QL_E_TOO_LARGE: the body crossed its
 *    limit and the core answered 413 (the host's answer then returns
 *    QL_E_GONE); QL_E_INVALID: the body was malformed (400 sent).
 * The first read of a request with `Expect: 100-continue` sends
 * "100 Continue", so a handler that answers without reading (401, 413)
 * never receives the upload. Unread bytes beyond body_window_bytes pause the
 * connection until the host has read below half of it; a paused client that resets or closes is
 * noticed within a second (its request is aborted). Answering before the body has ended is
 * allowed: the rest is read and dropped when it is short (up to 256 KiB
 * declared), else the answer carries Connection: close. */
QL_API ql_status ql_request_body_read(ql_server *server, ql_req_id id, char *buf, size_t cap, int32_t timeout_ms,
                                      size_t *out_len, ql_error **out_error);

/* A streamed answer with a declared length: like ql_respond_start, but the
 * head carries Content-Length: content_length and the bytes go out as they
 * are (no chunked framing; to HEAD, the head only). Writing more than
 * declared is QL_E_INVALID; ending with fewer closes the connection after
 * them, so the client sees an incomplete message. */
QL_API ql_status ql_respond_start_sized(ql_server *server, ql_req_id id, const ql_response *head,
                                        uint64_t content_length, ql_error **out_error);

/* Cuts request `id` off: a streamed answer ends without its last chunk (or
 * short of its declared length) and the connection closes, so the client
 * sees a broken message, never a complete one; an unanswered request's
 * connection closes without an answer. Finishes the request like
 * ql_respond_end. Thread-safe. QL_E_GONE when it is already finished. */
QL_API ql_status ql_respond_abort(ql_server *server, ql_req_id id, ql_error **out_error);

/* The declared Content-Length of a request body, or -1 when it is chunked
 * (unknown until its end); 0 when there is none. Loop-owned, read-only. */
QL_API int64_t ql_request_content_length(const ql_request *req);


/* ------------------------------------------------------------------------ */
/* WebSockets (RFC 6455) and pub/sub                                         */
/* ------------------------------------------------------------------------ */

/* Names one WebSocket for its whole life, like ql_req_id: a stale id never
 * aliases a newer socket; calls with it return QL_E_GONE. */
typedef uint64_t ql_ws_id;

/* A WebSocket as a callback sees it: borrowed, valid during the callback
 * only (keep its ql_websocket_id for later). */
typedef struct ql_websocket ql_websocket;

QL_API ql_ws_id ql_websocket_id(const ql_websocket *ws);
QL_API ql_server *ql_websocket_server(const ql_websocket *ws);
/* A host pointer kept with the socket (ql_ws_accept_options.tag, or set
 * here); the core never touches it. */
QL_API void ql_websocket_set_tag(ql_websocket *ws, void *tag);
QL_API void *ql_websocket_tag(const ql_websocket *ws);
/* The subprotocol the 101 answer chose (empty: none). */
QL_API ql_str ql_websocket_subprotocol(const ql_websocket *ws);

/* Called on the socket's loop thread. `upgrade` (on_open only) is the
 * upgrade request, readable during the call (path parameters, query,
 * headers, client address). `data` is borrowed for the call. */
typedef void (*ql_ws_open_fn)(void *user_data, ql_websocket *ws, const ql_request *upgrade);
typedef void (*ql_ws_message_fn)(void *user_data, ql_websocket *ws, const char *data, size_t len, int binary);
typedef void (*ql_ws_drain_fn)(void *user_data, ql_websocket *ws);
/* Exactly once per opened socket, whoever closed it, when its connection is
 * gone: `code` is the close code the client sent (1005: it sent none), the
 * code the core closed with (1001 server stopping or idle, 1002 protocol
 * error, 1007 invalid UTF-8, 1009 message too big), the host's own
 * (ql_ws_close), or 1006 when the connection ended without a close frame.
 * Sends from here on return QL_E_GONE. */
typedef void (*ql_ws_close_fn)(void *user_data, ql_websocket *ws, uint16_t code, const char *reason,
                               size_t reason_len);

typedef struct ql_ws_behavior {
    uint32_t version;
    /* Optional. The upgrade request, after the native rules and the
     * handshake checks (a malformed upgrade is answered 400 or 426 by the
     * core): accept it with ql_ws_accept, or refuse it with ql_respond (any
     * status and body; the connection then closes), now or later from any
     * thread. The request stays valid until then. NULL: every well-formed
     * upgrade is accepted. */
    ql_handler_fn on_upgrade;
    ql_ws_open_fn on_open;        /* optional */
    ql_ws_message_fn on_message;  /* optional: a whole message (text is valid UTF-8) */
    /* Optional: the socket's buffered bytes fell to half its max_backpressure
     * or below after a send returned QL_WS_QUEUED or QL_WS_DROPPED. */
    ql_ws_drain_fn on_drain;
    ql_ws_close_fn on_close;      /* optional */
    ql_ws_message_fn on_ping;     /* optional: the core answers pings itself */
    ql_ws_message_fn on_pong;     /* optional */
    void *user_data;              /* passed to every callback */
    ql_destroy_fn destroy;        /* optional: once no app or server uses the route */
    uint64_t max_message_bytes;   /* 0: 16 MiB; a bigger message closes with 1009 */
    uint64_t max_backpressure;    /* 0: 1 MiB of unsent bytes per socket; a send over it is dropped */
    uint32_t idle_timeout_ms;     /* 0: 120 s without a byte from the client closes (1001) */
    uint32_t ping_interval_ms;    /* 0: none; else the server pings a silent client this often */
    uint32_t close_on_backpressure; /* nonzero: a send over max_backpressure closes the socket (1008) */
    /* permessage-deflate (RFC 7692), when the client offers it: QL_WS_COMPRESS_*.
     * SHARED: no context takeover either way; one pair of zlib streams per loop
     * serves every socket (no zlib memory per socket), and a published message
     * is compressed once. DEDICATED: each socket keeps its contexts (better
     * ratios on similar messages) in two zlib streams of about
     * 2^(bits+2) + 2^(8+9) bytes (deflate, memLevel 8) and 2^bits + 7 KiB
     * (inflate): ~ 300 KB at 15 bits, ~ 140 KB at 9. Every message is sent
     * compressed once negotiated. */
    uint32_t compression;
    uint32_t compression_window_bits; /* DEDICATED: 9..15 (0: 15), ours and the most the client may use */
    /* Version 2 (ABI 4). Optional, callback routes: the upgrade request `id`
     * will never open — its client left before the host decided (tag NULL;
     * a later ql_ws_accept returns QL_E_GONE), or after ql_ws_accept and
     * before the 101 went out (the accept's tag). On the loop thread; at
     * most once per upgrade request, and never for one that opened. */
    void (*on_upgrade_gone)(void *user_data, ql_req_id id, void *tag);
} ql_ws_behavior;

/* Values never change; new ones are appended. */
enum { QL_WS_COMPRESS_NONE = 0, QL_WS_COMPRESS_SHARED = 1, QL_WS_COMPRESS_DEDICATED = 2 };

#define QL_WS_BEHAVIOR_VERSION 2
#define QL_WS_BEHAVIOR_INIT {QL_WS_BEHAVIOR_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, NULL}
QL_API void ql_ws_behavior_init(ql_ws_behavior *behavior, uint32_t version);

/* A WebSocket route: GET `pattern` upgrades to a WebSocket. Conflicts and bad
 * patterns as for ql_app_route; per-route rules (ql_app_route_options: rate
 * limits, API keys) apply to the upgrade request. It may share its pattern
 * with a plain GET route (an ASGI app's catch-all, say): WebSocket upgrades
 * then go to it and every other request to the GET route, and route options
 * given for "GET pattern" apply to both (each counts its own rate). Alone, it
 * answers a plain GET with 426. */
QL_API ql_status ql_app_ws(ql_app *app, const char *pattern, size_t pattern_len, const ql_ws_behavior *behavior,
                           ql_error **out_error);

typedef struct ql_ws_accept_options {
    uint32_t version;
    const char *subprotocol;      /* optional: one of the client's Sec-WebSocket-Protocol list */
    size_t subprotocol_len;
    const ql_header *headers;     /* optional extra headers of the 101 answer */
    size_t header_count;
    void *tag;                    /* ql_websocket_tag's first value */
} ql_ws_accept_options;

#define QL_WS_ACCEPT_OPTIONS_VERSION 1
#define QL_WS_ACCEPT_OPTIONS_INIT {QL_WS_ACCEPT_OPTIONS_VERSION, NULL, 0, NULL, 0, NULL}
QL_API void ql_ws_accept_options_init(ql_ws_accept_options *options, uint32_t version);

/* Accepts the upgrade request `id` of a WebSocket route (from on_upgrade,
 * now or later, any thread): the core answers 101 and on_open follows on
 * the loop thread. Finishes the request like ql_respond. QL_E_INVALID for a
 * request of another kind of route or a subprotocol the client did not
 * offer (the request stays unanswered then), QL_E_GONE when its client left. */
QL_API ql_status ql_ws_accept(ql_server *server, ql_req_id id, const ql_ws_accept_options *options,
                              ql_error **out_error);

/* Queued WebSockets, for hosts with their own threads (Python, Go): a route
 * bound to a queue. Its upgrade request arrives as QL_EVENT_REQUEST (accept
 * with ql_ws_accept — its tag comes back with every event of the socket — or
 * refuse with ql_respond), then the socket's events as below. For each WS
 * event, `id` is the ql_ws_id, `server` the server to call, `route_data` the
 * route's; read the rest with ql_event_ws_info, and give every WS event back
 * with ql_event_release once done with its data (any thread). Inbound
 * backpressure: a socket whose released-not-yet messages hold more than
 * max_backpressure bytes is not read until the host has released half of
 * them, so a slow host never grows the server's memory. `behavior` gives the
 * limits and compression; its callbacks must be NULL. An accepted upgrade
 * whose connection ends before its 101 went out still gets one
 * QL_EVENT_WS_CLOSE, with id 0 and code 1006 (its tag tells which). */
enum {
    QL_EVENT_WS_OPEN = 5,    /* the 101 went out: the socket is open */
    QL_EVENT_WS_MESSAGE = 6, /* a whole message (data, len, binary)  */
    QL_EVENT_WS_DRAIN = 7,   /* as on_drain                          */
    QL_EVENT_WS_CLOSE = 8    /* exactly once per opened socket (code, reason in data) */
};
QL_API ql_status ql_app_ws_queue(ql_app *app, const char *pattern, size_t pattern_len,
                                 const ql_ws_behavior *behavior, ql_queue *queue, void *route_data,
                                 ql_destroy_fn destroy, ql_error **out_error);

typedef struct ql_ws_event_info {
    uint32_t version;
    void *tag;          /* the socket's tag (ql_ws_accept_options.tag)              */
    const char *data;   /* MESSAGE: the message; CLOSE: the reason (valid until the
                           event is released)                                       */
    size_t len;
    int binary;         /* MESSAGE */
    uint16_t code;      /* CLOSE: as on_close's code                                */
} ql_ws_event_info;
#define QL_WS_EVENT_INFO_VERSION 1
#define QL_WS_EVENT_INFO_INIT {QL_WS_EVENT_INFO_VERSION, NULL, NULL, 0, 0, 0}
/* Fills *info for a WS event (QL_E_INVALID for other kinds or a released one). */
QL_API ql_status ql_event_ws_info(const ql_event *event, ql_ws_event_info *info);
/* Gives a WS event back (its data is freed; the socket may be read again);
 * does nothing for other kinds. Sets the event's request field to NULL. */
QL_API void ql_event_release(ql_event *event);

/* Takes the connection of request `id` over as a raw byte stream, as Go's
 * http.Hijacker does (any route, any thread, instead of answering it): the
 * core says nothing for it; once the answers to the requests before it went
 * out, the connection is the host's, under a ql_ws_id, with the WebSocket
 * calls and events minus the frames: QL_EVENT_WS_OPEN (or on_open, with the
 * request), then every read as a binary QL_EVENT_WS_MESSAGE (bytes that
 * came behind an Upgrade request first; release them as for a queued
 * WebSocket: the same inbound window), ql_ws_send writes bytes as given (use
 * QL_WS_BINARY; SENT/QUEUED/DROPPED and drains as for WebSockets),
 * ql_ws_close(code != 0) ends the connection once what was sent went out
 * (code 0: at once), and one QL_EVENT_WS_CLOSE: the host's code when it
 * closed, else 1006 (the peer ended, reset, idle timeout or server stop).
 * If the connection ends before it switches (the client left, or more
 * requests were pipelined behind this one), a queue still gets one
 * QL_EVENT_WS_CLOSE, with id 0 and code 1006. Topics are refused
 * (QL_E_INVALID). QL_E_STATE while the request's streamed body is still
 * arriving; QL_E_GONE once it has been answered or its client left. */
typedef struct ql_hijack_options {
    uint32_t version;
    ql_queue *queue;              /* its events go here, with route_data and tag... */
    void *route_data;
    /* ...or, without a queue, these callbacks on the loop thread: on_open,
     * on_message, on_drain, on_close and user_data (the rest must be NULL;
     * destroy is never called). */
    const ql_ws_behavior *callbacks;
    void *tag;                    /* the events' tag, ql_websocket_tag */
    uint64_t max_backpressure;    /* 0: 1 MiB of unsent bytes (and of unreleased read bytes) */
    uint32_t idle_timeout_ms;     /* 0: none; else the connection ends after so long without a byte */
} ql_hijack_options;
#define QL_HIJACK_OPTIONS_VERSION 1
#define QL_HIJACK_OPTIONS_INIT {QL_HIJACK_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, 0}
QL_API void ql_hijack_options_init(ql_hijack_options *options, uint32_t version);
QL_API ql_status ql_request_hijack(ql_server *server, ql_req_id id, const ql_hijack_options *options,
                                   ql_error **out_error);

/* Server-sent events fed by the same topics: GET `pattern` answers 200
 * text/event-stream natively and subscribes the client to `topics` — a
 * comma-separated list of topic templates where {name} stands for the path
 * parameter of that name ("room:{room}"). Every ql_server_publish of a text
 * message to one of them reaches the client as an event (each line of the
 * message a "data:" line; binary messages are not sent), with a comment every
 * keepalive_ms so proxies keep the stream open. The host is never called;
 * native rules apply to the request. The stream ends when the client leaves
 * or the server stops. A client over max_backpressure unsent bytes misses
 * messages (the others do not wait). */
typedef struct ql_event_stream_options {
    uint32_t version;
    const char *topics;
    size_t topics_len;
    uint32_t keepalive_ms;      /* 0: 15000 */
    uint64_t max_backpressure;  /* 0: 1 MiB */
} ql_event_stream_options;
#define QL_EVENT_STREAM_OPTIONS_VERSION 1
#define QL_EVENT_STREAM_OPTIONS_INIT {QL_EVENT_STREAM_OPTIONS_VERSION, NULL, 0, 0, 0}
QL_API void ql_event_stream_options_init(ql_event_stream_options *options, uint32_t version);
QL_API ql_status ql_app_event_stream(ql_app *app, const char *pattern, size_t pattern_len,
                                     const ql_event_stream_options *options, ql_error **out_error);

/* ql_ws_send's results (a non-negative ql_status). */
enum {
    QL_WS_SENT = 0,    /* accepted; the socket's unsent bytes are at most half its max_backpressure */
    QL_WS_QUEUED = 1,  /* accepted, above that mark: on_drain (QL_EVENT_WS_DRAIN) follows */
    QL_WS_DROPPED = 2  /* not sent: the socket is over its max_backpressure */
};
/* Values never change; new ones are appended. PING and PONG (ABI 4) are for
 * ql_ws_send only: a control frame of at most 125 bytes, in order with the
 * messages, never dropped nor compressed (a client answers a ping with a
 * pong: on_pong / nothing for queued routes). */
enum { QL_WS_TEXT = 0, QL_WS_BINARY = 1, QL_WS_PING = 2, QL_WS_PONG = 3 };

/* Sends one message. Thread-safe: on the loop thread it is framed behind the
 * socket's earlier messages and written at the end of the loop's iteration,
 * together with them (one write per socket for the echoes of one read, or
 * for a publish); from another thread it is copied and handed to the loop
 * (SENT or QUEUED by the same mark: a drain follows QUEUED only). A text message must be valid
 * UTF-8 (QL_E_INVALID otherwise). QL_E_GONE once the socket closes or is
 * closing. */
QL_API ql_status ql_ws_send(ql_server *server, ql_ws_id ws, const char *data, size_t len, uint32_t kind,
                            ql_error **out_error);
/* Starts the close handshake with `code` (1000, 1001, 1003, 1007-1014,
 * 3000-4999) and a UTF-8 reason (at most 123 bytes); on_close follows once
 * the client answered (or after 2 s). code 0 cuts the connection at once
 * (on_close gets 1006, or the code of a close handshake under way), a socket
 * already closing included. Thread-safe; QL_E_GONE when already closing (a
 * nonzero code) or closed. */
QL_API ql_status ql_ws_close(ql_server *server, ql_ws_id ws, uint16_t code, const char *reason, size_t reason_len,
                             ql_error **out_error);
/* Bytes sent to the socket and not yet taken by the kernel. Thread-safe. */
QL_API ql_status ql_ws_buffered(ql_server *server, ql_ws_id ws, uint64_t *out_bytes, ql_error **out_error);

/* Topics (exact strings) span every worker loop of the server. Thread-safe;
 * subscribing twice is one subscription. A socket leaves its topics when it
 * closes. */
QL_API ql_status ql_ws_subscribe(ql_server *server, ql_ws_id ws, const char *topic, size_t topic_len,
                                 ql_error **out_error);
QL_API ql_status ql_ws_unsubscribe(ql_server *server, ql_ws_id ws, const char *topic, size_t topic_len,
                                   ql_error **out_error);
/* Sends a message to every socket subscribed to `topic` (but `exclude`, when
 * not 0), from any thread: framed once, the same bytes written to each; a
 * subscriber over its max_backpressure misses it (the others do not wait).
 * *out_count (optional): the subscribers it was sent to. */
QL_API ql_status ql_server_publish(ql_server *server, const char *topic, size_t topic_len, const char *data,
                                   size_t len, uint32_t kind, ql_ws_id exclude, size_t *out_count,
                                   ql_error **out_error);

#ifdef __cplusplus
}
#endif

#endif /* QUICKLANE_H */
