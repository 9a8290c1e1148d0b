package quicklane

/*
#include "qlgo.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// ErrBodyIncomplete is returned by a read of a request body whose client
// left before the body ended (or whose request the core ended: a handler
// timeout, a forced shutdown). It wraps io.ErrUnexpectedEOF, as net/http's
// body reports a truncated upload: errors.Is(err, io.ErrUnexpectedEOF) holds.
var ErrBodyIncomplete = fmt.Errorf("quicklane: the request body ended early (the client left): %w", io.ErrUnexpectedEOF)

// ErrBodyMalformed is returned by a read of a request body that broke its
// framing (a bad chunk); the core has answered 400 and closes the
// connection.
var ErrBodyMalformed = errors.New("quicklane: malformed request body (the core answered 400)")

// errBodyAfterAnswer ends a streamed body whose end came after the answer
// had started: the core drops what arrives once a request is answered, so
// that end may hide a cut (it is reported only when the declared length
// proves the body whole).
var errBodyAfterAnswer = fmt.Errorf("quicklane: the request body ended after the answer started, its rest "+
	"was dropped: read the body before answering (or flushing): %w", io.ErrUnexpectedEOF)

// bodyWakeup bounds a wait for QL_EVENT_BODY: the read is tried again after
// it even without the event, so a lost notification costs latency, not a hang.
const bodyWakeup = time.Second

// bodyReader reads a request body through ql_request_body_read without ever
// blocking a thread in C: a read that finds nothing (QL_E_AGAIN) waits for
// the QL_EVENT_BODY the core then queues, the request's cancellation, or
// bodyWakeup. One per request; reads are serialised, as the core asks.
type bodyReader struct {
	c     *Context
	limit int64         // the streamed body's limit, for *http.MaxBytesError
	ready chan struct{} // QL_EVENT_BODY arrived (capacity 1)

	closed atomic.Bool // Close was called
	over   atomic.Bool // the handler returned: the request may be freed

	mu    sync.Mutex // serialises reads; guards err, got and timer
	err   error      // sticky: io.EOF or the failure
	got   int64      // bytes read
	timer *time.Timer
}

// BodyReader returns the request body as an io.Reader (also an io.Closer).
// On a StreamBody route it reads the body as it arrives: a Read waits for
// bytes without holding an OS thread, returns io.EOF at the end, and fails
// with *http.MaxBytesError when the body crosses its limit (the core has
// answered 413), ErrBodyIncomplete when the client left, ErrBodyMalformed
// for a broken chunked body. The first Read of a request with
// "Expect: 100-continue" makes the core send "100 Continue", so a handler
// that answers without reading never receives the upload. On other routes
// it reads the body the core buffered. Answering before the end is allowed:
// the core drops a short rest, or closes the connection; read the body
// before answering (net/http asks the same before the head is flushed): what
// arrives once the answer has started (c.String, or Flush under Handler) is
// dropped by the core, and a read that reaches an end it cannot prove
// whole, or a read once the answer went out, fails with an error wrapping
// io.ErrUnexpectedEOF. Reads after Close or after the handler returned give
// http.ErrBodyReadAfterClose. Every call returns the same reader.
func (c *Context) BodyReader() io.Reader { return c.body0() }

func (c *Context) body0() *bodyReader {
	if c.bodyR == nil {
		b := &bodyReader{c: c, ready: make(chan struct{}, 1)}
		if c.route != nil && c.route.rules.stream {
			b.limit = c.route.rules.streamMax
			if b.limit == 0 {
				b.limit = max(c.srv.app.maxBody, 0)
			}
		}
		if c.finished {
			b.over.Store(true)
		}
		c.srv.mu.Lock() // bodyReady reads c.bodyR on a poller goroutine
		c.bodyR = b
		c.srv.mu.Unlock()
	}
	return c.bodyR
}

// Read implements io.Reader.
func (b *bodyReader) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cancelled := false
	for {
		if b.closed.Load() || b.over.Load() {
			return 0, http.ErrBodyReadAfterClose
		}
		if b.err != nil {
			return 0, b.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		var n C.size_t
		st := C.qlgo_body_read(b.c.csrv, b.c.id, (*C.char)(unsafe.Pointer(&p[0])), C.size_t(len(p)), &n)
		switch st {
		case C.QL_OK:
			if n == 0 {
				b.err = io.EOF
				if length := b.c.ContentLength(); b.c.streamed() && b.c.sent.Load() && (length < 0 || b.got < length) {
					b.err = errBodyAfterAnswer
				}
				return 0, b.err
			}
			b.got += int64(n)
			return int(n), nil
		case C.QL_E_AGAIN:
			if cancelled {
				// Cancelled (client gone, handler timeout) and still nothing:
				// the core will not deliver more to this request.
				b.err = ErrBodyIncomplete
				continue
			}
			cancelled = b.wait()
		case C.QL_E_TOO_LARGE:
			b.err = &http.MaxBytesError{Limit: b.limit}
		case C.QL_E_INVALID:
			b.err = ErrBodyMalformed
		case C.QL_E_GONE:
			if b.c.sent.Load() {
				// Our answer went out before the body was read: the core
				// dropped the rest (or freed the request with the answer).
				b.err = errBodyAfterAnswer
				continue
			}
			b.err = ErrBodyIncomplete
		default:
			b.err = statusError(st, nil)
		}
	}
}

// wait blocks until the core says the body can be read again, the request
// is cancelled (true), Close is called, or bodyWakeup passes.
func (b *bodyReader) wait() (cancelled bool) {
	if b.timer == nil {
		b.timer = time.NewTimer(bodyWakeup)
	} else {
		b.timer.Reset(bodyWakeup)
	}
	select {
	case <-b.ready:
	case <-b.c.ctx.Done():
		cancelled = true
	case <-b.timer.C:
		return false
	}
	if !b.timer.Stop() {
		select { // drain a tick that fired meanwhile (pre-Go 1.23 timers)
		case <-b.timer.C:
		default:
		}
	}
	return cancelled
}

// Close implements io.Closer: later reads fail with
// http.ErrBodyReadAfterClose. The unread rest is the core's to drop (or to
// close the connection over); it is never read into Go.
func (b *bodyReader) Close() error {
	if !b.closed.Swap(true) {
		select { // wake a read waiting on another goroutine
		case b.ready <- struct{}{}:
		default:
		}
	}
	return nil
}

// failure is the error that ended the body, or nil.
func (b *bodyReader) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == io.EOF {
		return nil
	}
	return b.err
}
