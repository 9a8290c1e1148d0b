package quicklane

import (
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StreamWriter is a streamed answer of a native handler (chunked, or
// close-delimited for HTTP/1.0): an io.Writer whose bytes go out as they
// are flushed. Writes are gathered up to 32 KiB between flushes. A write
// waits while more than 1 MiB is queued for a client that does not read
// (backpressure), so a producer never runs ahead of the socket; once the
// client has gone, writes fail and the request's context is cancelled.
//
// The handler need not Close it: returning ends the answer, and a handler
// that panics or returns an error after the first bytes went out cuts it
// (the client sees an incomplete message, as on net/http).
type StreamWriter struct {
	c      *Context
	mu     sync.Mutex // a keep-alive goroutine may write beside the handler
	buf    []byte
	err    error
	closed bool
	wrote  time.Time // last flush with bytes (keep-alive comments skip busy streams)
	stop   chan struct{}
}

// ErrStreamClosed is returned by writes to a StreamWriter after Close.
var ErrStreamClosed = errors.New("quicklane: the stream is closed")

// StreamWriter starts a streamed answer with status code and contentType
// (empty: application/octet-stream); headers set with SetHeader go with
// it. The head goes out at once.
func (c *Context) StreamWriter(code int, contentType string) (*StreamWriter, error) {
	if c.sw != nil || c.responded || c.finished {
		return nil, ErrResponded
	}
	if code < 200 || code > 599 {
		return nil, errors.New("quicklane: status " + strconv.Itoa(code) + " out of range 200..599")
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if err := c.respondStart(code, contentType, c.respHeader, nil); err != nil {
		return nil, err
	}
	c.sw = &StreamWriter{c: c}
	return c.sw, nil
}

// Write implements io.Writer.
func (w *StreamWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return 0, err
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= streamChunk {
		if err := w.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// WriteString implements io.StringWriter.
func (w *StreamWriter) WriteString(s string) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return 0, err
	}
	w.buf = append(w.buf, s...)
	if len(w.buf) >= streamChunk {
		if err := w.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(s), nil
}

// Flush sends what was written since the last flush, waiting while the
// client is too far behind.
func (w *StreamWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	return w.flushLocked()
}

// Close flushes and ends the answer (the last chunk). Later writes fail
// with ErrStreamClosed; a second Close does nothing.
func (w *StreamWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	if w.err == nil {
		w.err = w.flushLocked()
	}
	w.closed = true
	if w.stop != nil {
		close(w.stop)
	}
	w.c.streamEnd()
	if w.err == errClientGone {
		return nil // the context says it; ending is not the handler's failure
	}
	return w.err
}

// Abort cuts the answer: what was flushed goes out, then the connection
// closes without the last chunk, so the client knows the answer is broken.
func (w *StreamWriter) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cut()
}

func (w *StreamWriter) cut() {
	if w.closed {
		return
	}
	w.closed = true
	w.buf = nil
	if w.stop != nil {
		close(w.stop)
	}
	w.c.streamAbort()
}

func (w *StreamWriter) usable() error {
	if w.closed {
		return ErrStreamClosed
	}
	return w.err
}

func (w *StreamWriter) flushLocked() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.c.streamWrite(w.buf)
	w.buf = w.buf[:0]
	w.wrote = time.Now()
	if err != nil {
		w.err = err
	}
	return err
}

// failMidStream cuts a native stream whose handler failed (panic, error).
func (c *Context) failMidStream() {
	if c.sw != nil {
		c.sw.mu.Lock()
		c.sw.cut()
		c.sw.mu.Unlock()
	}
	c.streamAbort()
}

// Stream is Gin's c.Stream: it calls step until step returns false or the
// client leaves, flushing after each call, and reports whether the client
// left mid-stream. The answer is 200 with the Content-Type set by
// SetHeader (application/octet-stream by default).
func (c *Context) Stream(step func(w io.Writer) bool) bool {
	w := c.sw
	if w == nil {
		var err error
		if w, err = c.StreamWriter(200, c.respHeader.Get("Content-Type")); err != nil {
			return c.ctx.Err() != nil
		}
	}
	for {
		select {
		case <-c.ctx.Done():
			return true
		default:
		}
		more := step(w)
		if err := w.Flush(); err != nil {
			return errors.Is(err, errClientGone) || c.ctx.Err() != nil
		}
		if !more {
			return false
		}
	}
}

// ServerSentEvent is one text/event-stream message. Data is sent as is
// when it is a string or []byte, else as its JSON; line breaks in it (CR,
// LF or CRLF) become several data: lines, which the client joins back with
// "\n". Event and ID must not contain line breaks (nor ID a NUL); Retry,
// when above zero, tells the client its reconnection delay.
type ServerSentEvent struct {
	Event string
	ID    string
	Retry time.Duration
	Data  any
}

// EventStream starts a text/event-stream answer (Cache-Control: no-cache,
// X-Accel-Buffering: no, so proxies pass events at once). With ping above
// zero, a ": ping" comment goes out whenever ping passed without an event,
// so idle proxies and clients keep the connection; it stops at Close, at
// the handler's return, or when the client leaves.
func (c *Context) EventStream(ping time.Duration) (*StreamWriter, error) {
	if c.respHeader.Get("Cache-Control") == "" {
		c.SetHeader("Cache-Control", "no-cache")
	}
	c.SetHeader("X-Accel-Buffering", "no")
	w, err := c.StreamWriter(200, "text/event-stream")
	if err != nil {
		return nil, err
	}
	w.wrote = time.Now()
	if ping > 0 {
		w.stop = make(chan struct{})
		go w.keepAlive(ping, w.stop)
	}
	return w, nil
}

func (w *StreamWriter) keepAlive(every time.Duration, stop chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-w.c.ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		if w.usable() == nil && time.Since(w.wrote) >= every {
			w.buf = append(w.buf, ": ping\n\n"...)
			w.flushLocked()
		}
		w.mu.Unlock()
	}
}

// Event writes one server-sent event and flushes it.
func (w *StreamWriter) Event(ev ServerSentEvent) error {
	frame, err := appendEvent(nil, ev)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	w.buf = append(w.buf, frame...)
	return w.flushLocked()
}

// Comment writes an SSE comment (": text" lines, which clients ignore) and
// flushes it.
func (w *StreamWriter) Comment(text string) error {
	var frame []byte
	for _, line := range splitLines(text) {
		frame = append(append(append(frame, ": "...), line...), '\n')
	}
	frame = append(frame, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	w.buf = append(w.buf, frame...)
	return w.flushLocked()
}

// SSEvent is Gin's c.SSEvent: it sends one event named name (none when
// empty) with message as its data, starting a text/event-stream answer
// first if none was started.
func (c *Context) SSEvent(name string, message any) error {
	w := c.sw
	if w == nil {
		var err error
		if w, err = c.EventStream(0); err != nil {
			return err
		}
	}
	return w.Event(ServerSentEvent{Event: name, Data: message})
}

// appendEvent frames ev as text/event-stream (the WHATWG HTML grammar).
func appendEvent(b []byte, ev ServerSentEvent) ([]byte, error) {
	if strings.ContainsAny(ev.Event, "\r\n") {
		return nil, errors.New("quicklane: an SSE event name must not contain a line break")
	}
	if strings.ContainsAny(ev.ID, "\r\n\x00") {
		return nil, errors.New("quicklane: an SSE id must not contain a line break or NUL")
	}
	var data string
	switch d := ev.Data.(type) {
	case nil:
	case string:
		data = d
	case []byte:
		data = string(d)
	default:
		j, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		data = string(j)
	}
	if ev.Event != "" {
		b = append(append(append(b, "event: "...), ev.Event...), '\n')
	}
	if ev.ID != "" {
		b = append(append(append(b, "id: "...), ev.ID...), '\n')
	}
	if ev.Retry > 0 {
		b = append(strconv.AppendInt(append(b, "retry: "...), ev.Retry.Milliseconds(), 10), '\n')
	}
	if ev.Data != nil || (ev.Event == "" && ev.ID == "" && ev.Retry <= 0) {
		for _, line := range splitLines(data) {
			b = append(append(append(b, "data: "...), line...), '\n')
		}
	}
	return append(b, '\n'), nil
}

// splitLines splits s at CRLF, CR and LF (the event-stream line ends).
func splitLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Split(s, "\n")
}
