package quicklane

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Handler mounts any net/http handler (http.ServeMux, a Gin engine, a chi
// router) on a quicklane route: the core parses and routes, and h sees an
// *http.Request and http.ResponseWriter as net/http documents them:
//
//	app.Any("/{path...}", quicklane.Handler(mux)) // or Mount(app, mux)
//
// The request carries Method, URL, RequestURI, Proto, Header, Host, Body,
// ContentLength (-1 for a chunked body) and TransferEncoding, RemoteAddr and
// a Context cancelled when the client goes away.
//
// r.Body is Context.BodyReader: on a route with the StreamBody rule (every
// route of Mount and ListenAndServe has it) it is a live stream, as on
// net/http: io.Copy(file, r.Body) holds at most the core's body window in
// memory, http.MaxBytesReader returns *http.MaxBytesError, a body over the
// server's limit (WithMaxBodyBytes; none by default) fails with
// *http.MaxBytesError after the core answered 413, a client that leaves
// mid-upload makes the read fail with ErrBodyIncomplete (an
// io.ErrUnexpectedEOF), "Expect: 100-continue" is answered at the first
// read, and a handler may Close the body or answer without reading it. On a
// route without StreamBody, the core buffers the body first (up to
// WithMaxBodyBytes, default 1 MiB) and r.Body reads that copy.
//
// The response is buffered and sent in one piece when ServeHTTP returns,
// unless the handler calls Flush (http.Flusher or http.ResponseController):
// then the head and what was written so far go out at once, and later
// writes stream as chunks (each Flush, or every 32 KiB), with backpressure
// towards a slow client. Content-Type is sniffed when unset, as net/http
// does. The ResponseWriter is an http.Hijacker (also through
// http.ResponseController): WebSocket servers such as gorilla/websocket and
// coder/websocket take the connection over and run unchanged; a
// WriteHeader(101) before Hijack goes out first. Trailers and other 1xx
// informational answers are not supported (1xx codes other than 101 are
// ignored).
func Handler(h http.Handler) HandlerFunc {
	return func(c *Context) error {
		r, err := c.httpRequest()
		if err != nil {
			return NewHTTPError(http.StatusBadRequest, err.Error())
		}
		w := &responseWriter{header: http.Header{}, c: c}
		h.ServeHTTP(w, r)
		return w.finish(c)
	}
}

// ListenAndServe serves h on addr behind quicklane's native front, like
// http.ListenAndServe: every path and the methods in AnyMethods (HEAD comes
// from GET) reach h, with streamed request bodies (see Mount). It blocks; it
// returns the error that stopped the server from starting.
func ListenAndServe(addr string, h http.Handler, opts ...Option) error {
	return Mount(New(opts...), h).Listen(addr)
}

// Mount routes every path ("/{path...}", which also matches "/") and the
// methods in AnyMethods of app to h, and returns app. Other routes of app, such as native Static ones,
// keep precedence: the core prefers exact segments, then parameters, then
// the catch-all. The routes have the StreamBody rule: r.Body streams, within
// the App's WithMaxBodyBytes when set (none by default, as net/http).
func Mount(app *App, h http.Handler) *App {
	hf := Handler(h)
	for _, m := range AnyMethods {
		app.Handle(m, "/{path...}", hf, StreamBody(0))
	}
	return app
}

// Request returns the request as an *http.Request (see Handler for what it
// carries), built on the first call. Its context is Context(). It is nil when
// the target cannot be parsed as a URL.
func (c *Context) Request() *http.Request {
	if c.httpReq == nil {
		c.httpReq, _ = c.httpRequest()
	}
	return c.httpReq
}

// httpRequest builds a net/http request from the native one.
func (c *Context) httpRequest() (*http.Request, error) {
	target := c.RequestURI()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, err
	}
	hdr := c.Headers().Clone()
	host := hdr.Get("Host")
	hdr.Del("Host")
	length := c.ContentLength()
	minor := c.ProtoMinor()
	r := &http.Request{
		Method:        c.Method(),
		URL:           u,
		Proto:         "HTTP/1." + strconv.Itoa(minor),
		ProtoMajor:    1,
		ProtoMinor:    minor,
		Header:        hdr,
		Host:          host,
		Body:          http.NoBody,
		ContentLength: length,
		RemoteAddr:    c.RemoteAddr(),
		RequestURI:    target,
		Close:         minor == 0 && !strings.EqualFold(hdr.Get("Connection"), "keep-alive"),
	}
	if length != 0 {
		r.Body = c.body0()
	}
	if length < 0 {
		r.TransferEncoding = []string{"chunked"}
	}
	return r.WithContext(c.Context()), nil
}

// responseWriter buffers one net/http response.
type responseWriter struct {
	header      http.Header
	status      int
	wroteHeader bool
	buf         bytes.Buffer
	c           *Context
	streaming   bool  // Flush started a streamed answer
	err         error // the stream failed (client gone): later writes fail
	hijacked    bool
	info101     []byte // a 101 given to WriteHeader, sent at Hijack
}

// streamChunk is how much a streamed answer buffers between flushes.
const streamChunk = 32 << 10

// Header implements http.ResponseWriter.
func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter. A 101 waits for Hijack (it
// goes out first on the connection taken over); other informational (1xx)
// codes are ignored; the first final code wins.
func (w *responseWriter) WriteHeader(code int) {
	if w.hijacked {
		return
	}
	if code == http.StatusSwitchingProtocols && !w.wroteHeader {
		w.info101 = switchingHead(w.header)
		return
	}
	if w.wroteHeader || (code >= 100 && code < 200) {
		return
	}
	w.wroteHeader = true
	w.status = code
}

// Write implements http.ResponseWriter: buffered until the handler returns
// or flushes; once streaming, sent every 32 KiB.
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	n, _ := w.buf.Write(p)
	if w.streaming && w.buf.Len() >= streamChunk {
		w.Flush()
	}
	return n, w.err
}

// WriteString implements io.StringWriter.
func (w *responseWriter) WriteString(s string) (int, error) {
	return w.Write([]byte(s))
}

// Flush implements http.Flusher: the first call sends the head and what was
// written so far; later calls send what was written since, as chunks.
func (w *responseWriter) Flush() {
	if w.hijacked {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return
	}
	if !w.streaming {
		contentType, body := w.head()
		w.err = w.c.respondStart(w.status, contentType, w.header, body)
		w.streaming = w.err == nil
		w.buf.Reset()
		return
	}
	if w.buf.Len() > 0 {
		w.err = w.c.streamWrite(w.buf.Bytes())
		w.buf.Reset()
	}
}

// FlushError is Flush returning the stream's error (a client gone), for
// http.ResponseController.Flush.
func (w *responseWriter) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	w.Flush()
	return w.err
}

// head picks the Content-Type (sniffed when unset, as net/http does) and
// the body bytes a status may carry.
func (w *responseWriter) head() (string, []byte) {
	body := w.buf.Bytes()
	ct, hasCT := w.header["Content-Type"]
	contentType := ""
	if hasCT && len(ct) > 0 {
		contentType = ct[0]
	} else if !hasCT && len(body) > 0 {
		contentType = http.DetectContentType(body)
	}
	if w.status == http.StatusNoContent || w.status == http.StatusNotModified {
		body = nil
	}
	return contentType, body
}

func (w *responseWriter) finish(c *Context) error {
	if w.hijacked {
		return nil // the connection is the handler's
	}
	if !w.wroteHeader {
		w.status = http.StatusOK
	}
	if w.streaming {
		w.Flush()
		c.streamEnd()
		if w.err == errClientGone {
			return nil // the context was cancelled; nothing to report
		}
		return w.err
	}
	contentType, body := w.head()
	return c.respond(w.status, contentType, w.header, body)
}
