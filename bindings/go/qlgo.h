/* qlgo.h: small C helpers of the Go binding (cgo preambles include it).
 * One crossing per operation; Go memory passed to them is only read during
 * the call (quicklane copies it) and never kept. */
#ifndef QLGO_H
#define QLGO_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <quicklane.h>

// Everything the Go side reads about a request in one crossing. The views
// point into the core's request (C memory) and stay valid until ql_respond.
#define QLGO_INLINE_PARAMS 8
typedef struct {
	ql_str method, path, target, query, body, route, ip;
	int64_t content_length; // -1: chunked
	uint16_t port;
	int minor;
	size_t nparams, nheaders, nqueries;
	ql_str pnames[QLGO_INLINE_PARAMS];
	ql_str pvalues[QLGO_INLINE_PARAMS];
	ql_ws_event_info ws; // WS events: tag, data (valid until released), binary, code
} qlgo_info;

static inline void qlgo_info_get(const ql_request *r, qlgo_info *o) {
	o->method = ql_request_method(r);
	o->path = ql_request_path(r);
	o->target = ql_request_target(r);
	o->query = ql_request_query_string(r);
	o->body = ql_request_body(r);
	o->route = ql_request_route(r);
	o->ip = ql_request_client_ip(r);
	o->content_length = ql_request_content_length(r);
	o->port = ql_request_client_port(r);
	o->minor = ql_request_http_minor(r);
	o->nparams = ql_request_param_count(r);
	o->nheaders = ql_request_header_count(r);
	o->nqueries = ql_request_query_count(r);
	for (size_t i = 0; i < o->nparams && i < QLGO_INLINE_PARAMS; i++)
		ql_request_param_at(r, i, &o->pnames[i], &o->pvalues[i]);
}

// Fills names/values (C arrays of n entries, owned by the caller).
static inline void qlgo_headers(const ql_request *r, ql_str *names, ql_str *values, size_t n) {
	for (size_t i = 0; i < n; i++) ql_request_header_at(r, i, &names[i], &values[i]);
}
static inline void qlgo_queries(const ql_request *r, ql_str *names, ql_str *values, size_t n) {
	for (size_t i = 0; i < n; i++) ql_request_query_at(r, i, &names[i], &values[i]);
}
static inline void qlgo_params(const ql_request *r, ql_str *names, ql_str *values, size_t n) {
	for (size_t i = 0; i < n; i++) ql_request_param_at(r, i, &names[i], &values[i]);
}

// Route data crosses as an integer (a cgo.Handle), never as a Go pointer.
static inline ql_status qlgo_route_queue(ql_app *app, _GoString_ method, _GoString_ pattern,
                                  ql_queue *q, uintptr_t data, ql_error **err) {
	return ql_app_route_queue(app, _GoStringPtr(method), _GoStringLen(method),
	                          _GoStringPtr(pattern), _GoStringLen(pattern), q,
	                          (void *)data, NULL, err);
}

// Header views over hbuf (names and values back to back; hlens their
// lengths: name, value, name, value, ...): in `stack` when nh <= cap, else
// malloc'ed (free it when it is not `stack`); NULL when out of memory.
static inline ql_header *qlgo_pack_headers(ql_header *stack, size_t cap, const char *hbuf, const size_t *hlens,
                                      size_t nh) {
	ql_header *h = stack;
	if (nh > cap) {
		h = (ql_header *)malloc(nh * sizeof(ql_header));
		if (!h) return NULL;
	}
	size_t off = 0;
	for (size_t i = 0; i < nh; i++) {
		h[i].name = hbuf + off; h[i].name_len = hlens[2 * i]; off += hlens[2 * i];
		h[i].value = hbuf + off; h[i].value_len = hlens[2 * i + 1]; off += hlens[2 * i + 1];
	}
	return h;
}

// One response in one crossing. hbuf holds the header names and values back
// to back; hlens their lengths (name, value, name, value, ...). Everything is
// copied by ql_respond before this returns; nothing is retained. With stream
// set, the head (and body as the first bytes) starts a streamed answer
// (ql_respond_start) that ql_respond_write / ql_respond_end continue.
static inline ql_status qlgo_respond(ql_server *s, ql_req_id id, int status,
                              const char *ct, size_t ctlen,
                              const char *hbuf, const size_t *hlens, size_t nh,
                              const char *body, size_t blen, int stream, ql_error **err) {
	ql_header stackh[32];
	ql_header *h = qlgo_pack_headers(stackh, 32, hbuf, hlens, nh);
	if (!h) return QL_E_NOMEM;
	ql_response res = QL_RESPONSE_INIT;
	res.status = status;
	res.content_type = ctlen ? ct : NULL;
	res.content_type_len = ctlen;
	res.headers = nh ? h : NULL;
	res.header_count = nh;
	res.body = blen ? body : NULL;
	res.body_len = blen;
	ql_status st = stream ? ql_respond_start(s, id, &res, err) : ql_respond(s, id, &res, err);
	if (h != stackh) free(h);
	return st;
}

static inline ql_status qlgo_static(ql_app *app, _GoString_ method, _GoString_ pattern, int status,
                             _GoString_ ct, const char *body, size_t blen, ql_error **err) {
	ql_response res = QL_RESPONSE_INIT;
	res.status = status;
	res.content_type = _GoStringLen(ct) ? _GoStringPtr(ct) : NULL;
	res.content_type_len = _GoStringLen(ct);
	res.body = blen ? body : NULL;
	res.body_len = blen;
	return ql_app_static(app, _GoStringPtr(method), _GoStringLen(method),
	                     _GoStringPtr(pattern), _GoStringLen(pattern), &res, err);
}

static inline ql_status qlgo_server_new(ql_app *app, _GoString_ host, uint16_t port, uint32_t workers,
                                 uint64_t max_body, uint32_t handler_timeout_ms,
                                 uint64_t max_stream_body, uint32_t body_window,
                                 ql_server **out, ql_error **err) {
	ql_server_options o = QL_SERVER_OPTIONS_INIT;
	o.host = _GoStringLen(host) ? _GoStringPtr(host) : NULL;
	o.host_len = _GoStringLen(host);
	o.port = port;
	o.workers = workers;
	o.max_body_bytes = max_body;
	o.handler_timeout_ms = handler_timeout_ms;
	o.max_stream_body_bytes = max_stream_body;
	o.body_window_bytes = body_window;
	return ql_server_new(app, &o, out, err);
}

// Polls a batch and reads every request's info in the same crossing.
static inline ql_status qlgo_poll(ql_queue *q, ql_event *evs, qlgo_info *infos, size_t max,
                                  int32_t timeout_ms, size_t *n) {
	ql_status st = ql_queue_poll(q, evs, max, timeout_ms, n, NULL);
	if (st != QL_OK) return st;
	for (size_t i = 0; i < *n; i++) {
		if (evs[i].kind == QL_EVENT_REQUEST) {
			qlgo_info_get(evs[i].request, &infos[i]);
		} else if (evs[i].kind >= QL_EVENT_WS_OPEN && evs[i].kind <= QL_EVENT_WS_CLOSE) {
			ql_ws_event_info w = QL_WS_EVENT_INFO_INIT;
			ql_event_ws_info(&evs[i], &w);
			infos[i].ws = w;
		}
	}
	return st;
}

// A streamed (or buffered) body read that never waits: QL_E_AGAIN is followed
// by a QL_EVENT_BODY on the route's queue. buf is Go memory, written during
// the call only.
static inline ql_status qlgo_body_read(ql_server *s, ql_req_id id, char *buf, size_t cap, size_t *n) {
	return ql_request_body_read(s, id, buf, cap, 0, n, NULL);
}

static inline uintptr_t qlgo_event_route(const ql_event *e) { return (uintptr_t)e->route_data; }

// ---- WebSockets ----

static inline ql_status qlgo_ws_queue(ql_app *app, _GoString_ pattern, uint64_t max_message, uint64_t max_backpressure,
                                      uint32_t idle_ms, uint32_t ping_ms, uint32_t compression, uint32_t window_bits,
                                      ql_queue *q, uintptr_t data, ql_error **err) {
	ql_ws_behavior b = QL_WS_BEHAVIOR_INIT;
	b.max_message_bytes = max_message;
	b.max_backpressure = max_backpressure;
	b.idle_timeout_ms = idle_ms;
	b.ping_interval_ms = ping_ms;
	b.compression = compression;
	b.compression_window_bits = window_bits;
	return ql_app_ws_queue(app, _GoStringPtr(pattern), _GoStringLen(pattern), &b, q, (void *)data, NULL, err);
}

// Accepts an upgrade; tag (an integer key, never a Go pointer) comes back
// with every event of the socket. Headers as in qlgo_respond.
static inline ql_status qlgo_ws_accept(ql_server *s, ql_req_id id, _GoString_ sub, const char *hbuf,
                                       const size_t *hlens, size_t nh, uintptr_t tag, ql_error **err) {
	ql_header stackh[16];
	ql_header *h = qlgo_pack_headers(stackh, 16, hbuf, hlens, nh);
	if (!h) return QL_E_NOMEM;
	ql_ws_accept_options o = QL_WS_ACCEPT_OPTIONS_INIT;
	o.subprotocol = _GoStringLen(sub) ? _GoStringPtr(sub) : NULL;
	o.subprotocol_len = _GoStringLen(sub);
	o.headers = nh ? h : NULL;
	o.header_count = nh;
	o.tag = (void *)tag;
	ql_status st = ql_ws_accept(s, id, &o, err);
	if (h != stackh) free(h);
	return st;
}

// Gives a WS event back by its request field (kept as an integer by Go).
static inline void qlgo_ws_release(uintptr_t request, uint32_t kind) {
	ql_event e;
	memset(&e, 0, sizeof e);
	e.kind = kind;
	e.request = (ql_request *)request;
	ql_event_release(&e);
}

static inline ql_status qlgo_ws_send(ql_server *s, ql_ws_id id, const char *data, size_t len, uint32_t kind,
                                     ql_error **err) {
	return ql_ws_send(s, id, data, len, kind, err);
}

static inline ql_status qlgo_ws_close(ql_server *s, ql_ws_id id, uint16_t code, _GoString_ reason, ql_error **err) {
	return ql_ws_close(s, id, code, _GoStringPtr(reason), _GoStringLen(reason), err);
}

static inline ql_status qlgo_ws_sub(ql_server *s, ql_ws_id id, _GoString_ topic, int on, ql_error **err) {
	return on ? ql_ws_subscribe(s, id, _GoStringPtr(topic), _GoStringLen(topic), err)
	          : ql_ws_unsubscribe(s, id, _GoStringPtr(topic), _GoStringLen(topic), err);
}

static inline ql_status qlgo_publish(ql_server *s, _GoString_ topic, const char *data, size_t len, uint32_t kind,
                                     ql_ws_id exclude, size_t *count, ql_error **err) {
	return ql_server_publish(s, _GoStringPtr(topic), _GoStringLen(topic), data, len, kind, exclude, count, err);
}
// ---- native rules ----

static inline ql_status qlgo_route_rules(ql_app *app, _GoString_ method, _GoString_ pattern, uint32_t max,
                                         uint32_t window_ms, _GoString_ key, int api_key, uint32_t cache_ttl_ms,
                                         _GoString_ vary, _GoString_ body_schema, _GoString_ params,
                                         int stream_body, uint64_t max_stream_body, ql_error **err) {
	ql_route_options o = QL_ROUTE_OPTIONS_INIT;
	o.rate_limit = max;
	o.rate_window_ms = window_ms;
	o.rate_key_header = _GoStringPtr(key);
	o.rate_key_header_len = _GoStringLen(key);
	o.require_api_key = api_key != 0;
	o.cache_ttl_ms = cache_ttl_ms;
	o.cache_vary = _GoStringPtr(vary);
	o.cache_vary_len = _GoStringLen(vary);
	o.body_schema = _GoStringPtr(body_schema);
	o.body_schema_len = _GoStringLen(body_schema);
	o.params_schema = _GoStringPtr(params);
	o.params_schema_len = _GoStringLen(params);
	o.stream_body = stream_body != 0;
	o.max_body_bytes = max_stream_body;
	return ql_app_route_options(app, _GoStringPtr(method), _GoStringLen(method), _GoStringPtr(pattern),
	                            _GoStringLen(pattern), &o, err);
}

static inline ql_status qlgo_rate_limit(ql_app *app, uint32_t max, uint32_t window_ms, _GoString_ key,
                                        ql_error **err) {
	return ql_app_rate_limit(app, max, window_ms, _GoStringPtr(key), _GoStringLen(key), err);
}

static inline ql_status qlgo_cors(ql_app *app, _GoString_ origins, _GoString_ methods, _GoString_ headers,
                                  _GoString_ expose, int credentials, uint32_t max_age_s, ql_error **err) {
	ql_cors_options o = QL_CORS_OPTIONS_INIT;
	o.origins = _GoStringPtr(origins);
	o.origins_len = _GoStringLen(origins);
	o.methods = _GoStringPtr(methods);
	o.methods_len = _GoStringLen(methods);
	o.headers = _GoStringPtr(headers);
	o.headers_len = _GoStringLen(headers);
	o.expose = _GoStringPtr(expose);
	o.expose_len = _GoStringLen(expose);
	o.credentials = credentials != 0;
	o.max_age_s = max_age_s;
	return ql_app_cors(app, &o, err);
}

// keys: newline-separated (a key cannot contain control characters).
static inline ql_status qlgo_api_keys(ql_app *app, _GoString_ header, _GoString_ query, _GoString_ keys,
                                      ql_error **err) {
	const char *p = _GoStringPtr(keys);
	size_t len = _GoStringLen(keys), n = len ? 1 : 0;
	for (size_t i = 0; i < len; i++) n += p[i] == '\n';
	ql_str *v = (ql_str *)calloc(n ? n : 1, sizeof(ql_str));
	if (!v) return ql_app_api_keys(app, NULL, 0, NULL, 0, NULL, 0, err);
	size_t k = 0, start = 0;
	for (size_t i = 0; i <= len && n; i++) {
		if (i == len || p[i] == '\n') {
			v[k].data = p + start;
			v[k].len = i - start;
			k++;
			start = i + 1;
		}
	}
	ql_status st = ql_app_api_keys(app, _GoStringPtr(header), _GoStringLen(header), _GoStringPtr(query),
	                               _GoStringLen(query), v, n, err);
	free(v);
	return st;
}

static inline ql_status qlgo_static_dir(ql_app *app, _GoString_ prefix, _GoString_ folder, uint32_t max_age_s,
                                        int gzip, _GoString_ index, int has_index, ql_error **err) {
	ql_static_dir_options o = QL_STATIC_DIR_OPTIONS_INIT;
	o.max_age_s = max_age_s;
	o.no_gzip = !gzip;
	if (has_index) {
		o.index = _GoStringLen(index) ? _GoStringPtr(index) : "";
		o.index_len = _GoStringLen(index);
	}
	return ql_app_static_dir(app, _GoStringPtr(prefix), _GoStringLen(prefix), _GoStringPtr(folder),
	                         _GoStringLen(folder), &o, err);
}

static inline ql_status qlgo_metrics(ql_app *app, _GoString_ pattern, ql_error **err) {
	return ql_app_metrics(app, _GoStringPtr(pattern), _GoStringLen(pattern), err);
}

#endif
