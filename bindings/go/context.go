package quicklane

/*
#include <stdlib.h>
#include "qlgo.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// HTTPError is an error with an HTTP status. Returned from a handler, it
// answers with that status and a JSON body {"detail": Message}, like the core's own errors.
type HTTPError struct {
	Code    int    // HTTP status, 200..599
	Message string // sent as {"detail": Message}
}

// Error implements the error interface.
func (e *HTTPError) Error() string { return strconv.Itoa(e.Code) + " " + e.Message }

// NewHTTPError returns an *HTTPError with the given status and message.
func NewHTTPError(code int, message string) *HTTPError {
	return &HTTPError{Code: code, Message: message}
}

// ErrResponded is returned by a second answer to the same request.
var ErrResponded = errors.New("quicklane: response already sent")

// Context is one request being handled and its response. It is valid only
// until the handler returns: do not keep it, or its strings' source, beyond
// that (values it returns are copies and may be kept).
type Context struct {
	srv  *server
	csrv *C.ql_server
	id   C.ql_req_id
	req  *C.ql_request
	info C.qlgo_info
	ctx  reqContext

	route *route
	bodyR *bodyReader // made by BodyReader; read by bodyReady under srv.mu
	sent  atomic.Bool // an answer went to the core (body readers may run elsewhere)

	respHeader http.Header
	responded  bool
	finished   bool
	streaming  bool          // the answer was started with respondStart and not ended yet
	drain      chan struct{} // a streamed answer's drain notices (made by respondStart; read by drained under srv.mu)
	sw         *StreamWriter // the native stream writer, flushed and ended by finish
	body       []byte
	query      url.Values
	header     http.Header
	httpReq    *http.Request
}

// reqContext is the request's context.Context: cancelled once, with the
// Done channel made only when someone asks for it (most handlers never do).
type reqContext struct {
	mu   sync.Mutex
	done chan struct{}
	err  error
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (r *reqContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (r *reqContext) Value(any) any               { return nil }

func (r *reqContext) Done() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		if r.err != nil {
			r.done = closedChan
		} else {
			r.done = make(chan struct{})
		}
	}
	return r.done
}

func (r *reqContext) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *reqContext) String() string { return "quicklane.requestContext" }

func (r *reqContext) cancel() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	r.err = context.Canceled
	if r.done != nil {
		close(r.done)
	}
}

func (c *Context) alive() bool { return !c.finished }

// Context returns the request's context, cancelled when the client goes away
// (or the server force-closes the connection) and when the handler returns.
func (c *Context) Context() context.Context { return &c.ctx }

// Method returns the request method ("GET"; "HEAD" for a HEAD answered by a
// GET route).
func (c *Context) Method() string {
	if !c.alive() {
		return ""
	}
	return gostr(c.info.method)
}

// Path returns the request path as sent, without the query (not decoded).
func (c *Context) Path() string {
	if !c.alive() {
		return ""
	}
	return gostr(c.info.path)
}

// RequestURI returns the raw request target (path and query) as sent.
func (c *Context) RequestURI() string {
	if !c.alive() {
		return ""
	}
	return gostr(c.info.target)
}

// Route returns the pattern of the route that matched, e.g. "/hello/{name}".
func (c *Context) Route() string {
	if !c.alive() {
		return ""
	}
	return gostr(c.info.route)
}

// ProtoMinor returns 0 for HTTP/1.0 and 1 for HTTP/1.1.
func (c *Context) ProtoMinor() int { return int(c.info.minor) }

// RemoteAddr returns the client's address as "ip:port".
func (c *Context) RemoteAddr() string {
	if !c.alive() {
		return ""
	}
	return net.JoinHostPort(gostr(c.info.ip), strconv.Itoa(int(c.info.port)))
}

// Param returns the percent-decoded path parameter name ("" when absent).
func (c *Context) Param(name string) string {
	if !c.alive() {
		return ""
	}
	n := int(c.info.nparams)
	if n <= C.QLGO_INLINE_PARAMS {
		for i := 0; i < n; i++ {
			if view(c.info.pnames[i]) == name {
				return gostr(c.info.pvalues[i])
			}
		}
		return ""
	}
	names, values := c.pairs(n, func(nm, vl *C.ql_str) { C.qlgo_params(c.req, nm, vl, C.size_t(n)) })
	for i := range names {
		if names[i] == name {
			return values[i]
		}
	}
	return ""
}

// pairs reads n name/value views through fill into Go strings.
func (c *Context) pairs(n int, fill func(names, values *C.ql_str)) ([]string, []string) {
	if n == 0 {
		return nil, nil
	}
	size := C.size_t(unsafe.Sizeof(C.ql_str{})) * C.size_t(n)
	mem := C.malloc(2 * size)
	defer C.free(mem)
	nm := unsafe.Slice((*C.ql_str)(mem), n)
	vl := unsafe.Slice((*C.ql_str)(unsafe.Add(mem, size)), n)
	fill(&nm[0], &vl[0])
	names, values := make([]string, n), make([]string, n)
	for i := 0; i < n; i++ {
		names[i], values[i] = gostr(nm[i]), gostr(vl[i])
	}
	return names, values
}

// Query returns the first value of the query parameter name (decoded; "+"
// is a space), or "".
func (c *Context) Query(name string) string { return c.QueryValues().Get(name) }

// QueryInt returns the query parameter name as an int in the grammar the
// core's "integer" parameters validate (digits, an optional sign, single
// underscores between digits, surrounding spaces), ok false when it is absent
// or not one. With the route's Params typing it, the core has answered 422
// already for a bad value.
func (c *Context) QueryInt(name string) (v int, ok bool) {
	s, present := c.firstQuery(name)
	if !present {
		return 0, false
	}
	n, err := strconv.ParseInt(coreNumber(s), 10, 64)
	return int(n), err == nil
}

// QueryFloat is QueryInt for "number" parameters (Python's float grammar: also
// inf, infinity and nan).
func (c *Context) QueryFloat(name string) (v float64, ok bool) {
	s, present := c.firstQuery(name)
	if !present {
		return 0, false
	}
	f, err := strconv.ParseFloat(coreNumber(s), 64)
	return f, err == nil
}

// QueryBool returns the query parameter name in the words the core's "boolean"
// parameters take: 1, on, t, true, y, yes (true) and 0, off, f, false, n, no
// (false), any case — not strconv.ParseBool's, which refuses yes/on.
func (c *Context) QueryBool(name string) (v bool, ok bool) {
	s, present := c.firstQuery(name)
	if !present {
		return false, false
	}
	switch strings.ToLower(s) {
	case "1", "on", "t", "true", "y", "yes":
		return true, true
	case "0", "off", "f", "false", "n", "no":
		return false, true
	}
	return false, false
}

func (c *Context) firstQuery(name string) (string, bool) {
	vs, ok := c.QueryValues()[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// coreNumber spells a value the core accepted as a number the way strconv reads
// it: spaces trimmed, underscores between digits dropped.
func coreNumber(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "_", "")
}

// QueryValues returns every query parameter, decoded, in a url.Values.
func (c *Context) QueryValues() url.Values {
	if c.query == nil {
		c.query = url.Values{}
		if c.alive() {
			n := int(c.info.nqueries)
			names, values := c.pairs(n, func(nm, vl *C.ql_str) { C.qlgo_queries(c.req, nm, vl, C.size_t(n)) })
			for i := range names {
				c.query[names[i]] = append(c.query[names[i]], values[i])
			}
		}
	}
	return c.query
}

// Header returns the first value of the request header name
// (case-insensitive), or "".
func (c *Context) Header(name string) string {
	return c.Headers().Get(name)
}

// Headers returns the request headers with canonical names.
func (c *Context) Headers() http.Header {
	if c.header == nil {
		c.header = http.Header{}
		if c.alive() {
			n := int(c.info.nheaders)
			names, values := c.pairs(n, func(nm, vl *C.ql_str) { C.qlgo_headers(c.req, nm, vl, C.size_t(n)) })
			for i := range names {
				k := http.CanonicalHeaderKey(names[i])
				c.header[k] = append(c.header[k], values[i])
			}
		}
	}
	return c.header
}

// Body returns a copy of the request body (the core has read it whole,
// within the configured limit). On a StreamBody route it reads what is left
// of the stream into memory (BodyReader reads it piece by piece instead); it
// is nil when that read fails (the client left, or the body crossed its
// limit and the core answered 413).
func (c *Context) Body() []byte {
	if c.body == nil {
		if !c.alive() {
			return nil
		}
		if c.streamed() {
			b, err := io.ReadAll(c.BodyReader())
			if err != nil {
				return nil
			}
			c.body = b
		} else {
			c.body = gobytes(c.info.body)
		}
	}
	return c.body
}

// ContentLength returns the declared Content-Length of the request body, -1
// for a chunked body (its length is known only at its end), 0 without one.
func (c *Context) ContentLength() int64 { return int64(c.info.content_length) }

func (c *Context) streamed() bool { return c.route != nil && c.route.rules.stream }

// BindJSON decodes the JSON body into v. A body that is not valid JSON for v
// gives an *HTTPError with status 400, so a handler may simply return it.
func (c *Context) BindJSON(v any) error {
	body := c.Body()
	if body == nil && c.streamed() && c.alive() {
		if err := c.body0().failure(); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
			}
			return NewHTTPError(http.StatusBadRequest, "request body: "+err.Error())
		}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return NewHTTPError(http.StatusBadRequest, "invalid JSON: "+err.Error())
	}
	return nil
}

// SetHeader sets a response header (sent with the answer). Content-Length,
// Transfer-Encoding, Date, Server and Connection belong to the core and are
// ignored.
func (c *Context) SetHeader(name, value string) {
	if c.respHeader == nil {
		c.respHeader = http.Header{}
	}
	c.respHeader.Set(name, value)
}

// AddHeader adds a response header value (for repeated headers such as
// Set-Cookie).
func (c *Context) AddHeader(name, value string) {
	if c.respHeader == nil {
		c.respHeader = http.Header{}
	}
	c.respHeader.Add(name, value)
}

// JSON answers with status code and v encoded as JSON.
func (c *Context) JSON(code int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Bytes(code, "application/json", b)
}

// String answers with status code and s as text/plain; charset=utf-8.
func (c *Context) String(code int, s string) error {
	return c.respond(code, "text/plain; charset=utf-8", c.respHeader, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// Bytes answers with status code, the given Content-Type and body b.
func (c *Context) Bytes(code int, contentType string, b []byte) error {
	return c.respond(code, contentType, c.respHeader, b)
}

// Data is Bytes under Gin's name.
func (c *Context) Data(code int, contentType string, b []byte) error {
	return c.Bytes(code, contentType, b)
}

// NoContent answers with status code and no body (e.g. 204).
func (c *Context) NoContent(code int) error { return c.respond(code, "", c.respHeader, nil) }

// Responded reports whether an answer was already sent.
func (c *Context) Responded() bool { return c.responded }

var coreHeaders = map[string]bool{
	"Content-Length": true, "Transfer-Encoding": true, "Date": true, "Server": true, "Connection": true,
}

// respond sends the one answer. A client that already left is not an error
// for the handler (its context is cancelled); a second answer is.
func (c *Context) respond(code int, contentType string, h http.Header, body []byte) error {
	return c.send(code, contentType, h, body, false)
}

// errClientGone ends a streamed answer whose client has left.
var errClientGone = errors.New("quicklane: the client has gone")

// respondStart sends the head of a streamed answer (and body as its first
// bytes); streamWrite adds bytes and streamEnd finishes it. finish ends a
// stream the handler left open.
func (c *Context) respondStart(code int, contentType string, h http.Header, body []byte) error {
	c.srv.mu.Lock()
	c.drain = make(chan struct{}, 1) // before the head: its drain notice may come at once
	c.srv.mu.Unlock()
	if err := c.send(code, contentType, h, body, true); err != nil {
		return err
	}
	c.streaming = true
	return nil
}

// A streamed answer waits (backpressure) while more than drainHigh bytes
// are accepted but not yet written to a slow client, until the core's drain
// notice (QL_EVENT_DRAIN, at QL_DRAIN_LOW) or the client leaving
// (QL_EVENT_ABORT, which cancels the context). drainRecheck bounds a wait,
// should a notice be missed.
const (
	drainHigh    = C.QL_DRAIN_HIGH
	drainRecheck = 500 * time.Millisecond
)

func (c *Context) streamWrite(p []byte) error {
	if !c.streaming {
		return ErrResponded
	}
	var buffered C.uint64_t
	var cerr *C.ql_error
	st := C.ql_respond_write(c.csrv, c.id, bytesData(p), C.size_t(len(p)), &buffered, &cerr)
	for st == C.QL_OK && buffered > drainHigh {
		select {
		case <-c.ctx.Done():
			return c.ctx.Err()
		case <-c.drain:
		case <-time.After(drainRecheck):
		}
		st = C.ql_respond_write(c.csrv, c.id, nil, 0, &buffered, &cerr)
	}
	if st == C.QL_OK {
		return nil
	}
	if st == C.QL_E_GONE {
		c.streaming = false // the request is freed: nothing to end
		if cerr != nil {
			C.ql_error_free(&cerr)
		}
		return errClientGone
	}
	return statusError(st, cerr)
}

func (c *Context) streamEnd() {
	if c.streaming {
		C.ql_respond_end(c.csrv, c.id, nil)
		c.streaming = false
	}
}

// streamAbort cuts a streamed answer (ql_respond_abort): what was written
// goes out, then the connection closes without the last chunk, so the
// client sees an incomplete message (a handler that failed mid-stream).
func (c *Context) streamAbort() {
	if c.streaming {
		C.ql_respond_abort(c.csrv, c.id, nil)
		c.streaming = false
	}
}

func (c *Context) send(code int, contentType string, h http.Header, body []byte, streamed bool) error {
	if c.responded || c.finished {
		return ErrResponded
	}
	if code < 200 || code > 599 {
		return errors.New("quicklane: status " + strconv.Itoa(code) + " out of range 200..599")
	}
	var hp headerPack
	for k, vs := range h {
		if coreHeaders[http.CanonicalHeaderKey(k)] {
			continue
		}
		if contentType != "" && http.CanonicalHeaderKey(k) == "Content-Type" {
			continue
		}
		for _, v := range vs {
			hp.add(k, v)
		}
	}
	hbuf, hl, nh := hp.args()
	var cerr *C.ql_error
	stream := C.int(0)
	if streamed {
		stream = 1
	}
	st := C.qlgo_respond(c.csrv, c.id, C.int(code), strData(contentType), C.size_t(len(contentType)),
		hbuf, hl, nh, bytesData(body), C.size_t(len(body)), stream, &cerr)
	switch st {
	case C.QL_OK, C.QL_E_GONE:
		if cerr != nil {
			C.ql_error_free(&cerr)
		}
		c.responded = true
		c.sent.Store(true)
		if st == C.QL_E_GONE && streamed {
			return errClientGone // freed: the caller must not stream on
		}
		return nil
	case C.QL_E_ALREADY_SENT:
		if cerr != nil {
			C.ql_error_free(&cerr)
		}
		c.responded = true
		c.sent.Store(true)
		return ErrResponded
	}
	return statusError(st, cerr)
}

// failInternal answers 500 with a JSON body when nothing was sent yet.
func (c *Context) failInternal() {
	if !c.responded && !c.finished {
		c.respHeader = nil
		if c.respond(500, "application/json", nil, []byte(`{"detail":"Internal Server Error"}`)) != nil {
			c.free()
		}
	}
}

// finish ends the request after the handler: a handler that returned without
// answering gets a 500; the request is released in every case.
func (c *Context) finish() {
	if c.bodyR != nil {
		c.bodyR.over.Store(true)
	}
	if c.sw != nil {
		c.sw.Close()
	}
	c.streamEnd()
	if !c.responded && !c.finished {
		c.srv.logf("quicklane: handler for %s %s returned without a response", c.Method(), c.Path())
		c.failInternal()
	}
	if !c.responded {
		c.free()
	}
	c.finished = true
}

// free releases a request that cannot be answered normally: a minimal 500
// always passes validation (or the request is gone).
func (c *Context) free() {
	C.qlgo_respond(c.csrv, c.id, 500, nil, 0, nil, nil, 0, nil, 0, 0, nil)
	c.responded = true
	c.sent.Store(true)
}
