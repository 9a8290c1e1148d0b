package quicklane

/*
#include "qlgo.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Rule is a native rule of one route, checked in the core before Go runs
// (a request it answers never reaches Go). See RateLimit and RequireAPIKey.
type Rule func(*routeRules)

type routeRules struct {
	max       int
	per       time.Duration
	keyHeader string
	apiKey    bool
	cacheTTL  time.Duration
	vary      []string
	body      string // JSON Schema of the body
	params    string // typed parameters (JSON)
	stream    bool   // StreamBody
	streamMax int64  // StreamBody's limit; 0 = the App's
	err       error
}

// RateLimit allows max requests per client IP in each period per (a token
// bucket refilled evenly); beyond it the core answers 429 with Retry-After.
// Answers carry RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset.
func RateLimit(max int, per time.Duration) Rule { return RateLimitBy("", max, per) }

// RateLimitBy is RateLimit counted per value of the request header (e.g.
// "X-Tenant"), or per client IP when the request has none.
func RateLimitBy(header string, max int, per time.Duration) Rule {
	return func(r *routeRules) {
		r.max, r.per, r.keyHeader = max, per, header
		if max <= 0 || max > 10_000_000 || per < time.Millisecond || per > 24*time.Hour {
			r.err = fmt.Errorf("quicklane: RateLimit(%d, %v): max must be 1..10000000 and per 1ms..24h", max, per)
		}
	}
}

// RequireAPIKey makes the route need one of the App's APIKeys: a request
// without one gets 401, one with a wrong key 403.
func RequireAPIKey() Rule { return func(r *routeRules) { r.apiKey = true } }

// Cache keeps the route's GET answers in the core for ttl, keyed by path and
// query (and the values of the vary headers): the handler runs once per key
// per ttl, and concurrent misses of one key wait for that one run. Only 2xx
// answers are stored; hits carry Age and Cache-Control.
func Cache(ttl time.Duration, vary ...string) Rule {
	return func(r *routeRules) {
		r.cacheTTL, r.vary = ttl, vary
		if ttl < time.Millisecond || ttl > 24*time.Hour {
			r.err = fmt.Errorf("quicklane: Cache(%v): ttl must be 1ms..24h", ttl)
		}
	}
}

// StreamBody makes the route's handler run as soon as the request head has
// arrived, with the body read as it comes through c.BodyReader (or
// r.Body under Handler) instead of buffered whole by the core. Memory stays
// bounded by the server's body window (WithBodyWindowBytes): the core stops
// reading the socket while the handler has not read what came. maxBytes is
// the route's limit (a declared Content-Length above it is 413 before the
// handler runs; a chunked body crossing it is 413, and the read returns
// *http.MaxBytesError); 0 means the App's WithMaxBodyBytes, none by default.
// It cannot be combined with Body, BodyStrict or BodySchema, which need the
// whole body.
func StreamBody(maxBytes int64) Rule {
	return func(r *routeRules) {
		r.stream, r.streamMax = true, maxBytes
		if maxBytes < 0 && r.err == nil {
			r.err = fmt.Errorf("quicklane: StreamBody(%d): the limit must not be negative", maxBytes)
		}
	}
}

func makeRules(rules []Rule) routeRules {
	var r routeRules
	for _, f := range rules {
		f(&r)
	}
	return r
}

func (r *routeRules) apply(app *C.ql_app, method, pattern string) error {
	if r.err != nil {
		return r.err
	}
	if r.max == 0 && !r.apiKey && r.cacheTTL == 0 && r.body == "" && r.params == "" && !r.stream {
		return nil
	}
	// One call sets every rule of the route (the core replaces them whole).
	var cerr *C.ql_error
	st := C.qlgo_route_rules(app, method, pattern, C.uint32_t(r.max), C.uint32_t(r.per.Milliseconds()),
		r.keyHeader, boolInt(r.apiKey), C.uint32_t(r.cacheTTL.Milliseconds()), strings.Join(r.vary, ", "), r.body, r.params,
		boolInt(r.stream), C.uint64_t(r.streamMax), &cerr)
	return statusError(st, cerr)
}

// CORS configures cross-origin requests, answered in the core: preflights
// natively, allow headers only for allowed origins.
type CORS struct {
	Origins     []string      // exact origins ("https://app.example"), or "*"
	Methods     []string      // default GET, HEAD, POST
	Headers     []string      // request headers allowed beyond the CORS-safelisted ones, or "*"
	Expose      []string      // Access-Control-Expose-Headers
	Credentials bool          // Access-Control-Allow-Credentials (not with "*")
	MaxAge      time.Duration // preflight cache; default 10 minutes
}

// CORS turns on CORS for the whole App. Bad settings come back from Start.
func (a *App) CORS(c CORS) {
	origins, methods := strings.Join(c.Origins, ", "), strings.Join(c.Methods, ", ")
	headers, expose := strings.Join(c.Headers, ", "), strings.Join(c.Expose, ", ")
	age := C.uint32_t(c.MaxAge / time.Second)
	a.addNative(func(app *C.ql_app) error {
		var cerr *C.ql_error
		st := C.qlgo_cors(app, origins, methods, headers, expose, boolInt(c.Credentials), age, &cerr)
		return statusError(st, cerr)
	})
}

// APIKeys sets the keys that routes with RequireAPIKey accept, read from the
// header (default "X-API-Key" when empty) or, when query is not empty, that
// query parameter. Keys are compared in constant time.
func (a *App) APIKeys(keys []string, header, query string) {
	joined := strings.Join(keys, "\n")
	if len(keys) == 0 {
		joined = ""
	}
	a.addNative(func(app *C.ql_app) error {
		var cerr *C.ql_error
		for _, k := range keys {
			if strings.ContainsAny(k, "\n") || k == "" {
				return errors.New("quicklane: an API key is empty or has a newline")
			}
		}
		st := C.qlgo_api_keys(app, header, query, joined, &cerr)
		return statusError(st, cerr)
	})
}

// RateLimit sets an App-wide limit for every route without its own: max
// requests per client IP (or per value of keyHeader when not empty) per period.
func (a *App) RateLimit(max int, per time.Duration, keyHeader string) {
	r := makeRules([]Rule{RateLimitBy(keyHeader, max, per)})
	a.addNative(func(app *C.ql_app) error {
		var cerr *C.ql_error
		if r.err != nil {
			return r.err
		}
		st := C.qlgo_rate_limit(app, C.uint32_t(max), C.uint32_t(per.Milliseconds()), keyHeader, &cerr)
		return statusError(st, cerr)
	})
}

// Metrics adds GET path answered natively with Prometheus metrics: requests
// by route and status, latency histograms, connections, bytes, and how many
// requests the core answered versus Go.
func (a *App) Metrics(path string) {
	a.addNative(func(app *C.ql_app) error {
		var cerr *C.ql_error
		st := C.qlgo_metrics(app, path, &cerr)
		return statusError(st, cerr)
	})
}

// StaticOptions tunes StaticDir; the zero value is the default.
type StaticOptions struct {
	MaxAge  time.Duration // Cache-Control: public, max-age; 0 = none
	NoGzip  bool          // never gzip
	Index   string        // file for folders; default "index.html"
	NoIndex bool          // no index file
}

// StaticDir serves folder under prefix ("/static/") from the core: ETag and
// Last-Modified (304), Range (206, 416), content types, gzip (a fresh .gz
// sibling, or compressed once), and no way out of the folder.
func (a *App) StaticDir(prefix, folder string, opts ...StaticOptions) {
	var o StaticOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	a.addNative(func(app *C.ql_app) error {
		var cerr *C.ql_error
		index, has := o.Index, o.Index != "" || o.NoIndex
		st := C.qlgo_static_dir(app, prefix, folder, C.uint32_t(o.MaxAge/time.Second), boolInt(!o.NoGzip), index,
			boolInt(has), &cerr)
		return statusError(st, cerr)
	})
}

// Compression gzips handler answers of at least minBytes (0 = 1024) when the
// client accepts gzip and the type is compressible; level 1..9 (0 = 6).
func (a *App) Compression(minBytes, level int) {
	a.addNative(func(app *C.ql_app) error {
		if minBytes < 0 || level < 0 {
			return errors.New("quicklane: Compression: minBytes and level must not be negative")
		}
		var cerr *C.ql_error
		st := C.ql_app_compression(app, 1, C.uint32_t(minBytes), C.uint32_t(level), &cerr)
		return statusError(st, cerr)
	})
}

// AccessLog writes one JSON line per answered request to stderr, from the core.
func (a *App) AccessLog(on bool) {
	a.addNative(func(app *C.ql_app) error {
		var cerr *C.ql_error
		st := C.ql_app_access_log(app, C.uint32_t(boolInt(on)), &cerr)
		return statusError(st, cerr)
	})
}

func (a *App) addNative(f func(*C.ql_app) error) {
	a.mu.Lock()
	a.native = append(a.native, f)
	a.mu.Unlock()
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
