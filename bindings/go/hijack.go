package quicklane

/*
#include "qlgo.h"

// Takes request id's connection over; its events come to q with tag.
static inline ql_status qlgo_hijack(ql_server *s, ql_req_id id, ql_queue *q, uintptr_t tag, ql_error **err) {
	ql_hijack_options o = QL_HIJACK_OPTIONS_INIT;
	o.queue = q;
	o.tag = (void *)tag;
	return ql_request_hijack(s, id, &o, err);
}
*/
import "C"

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// hijackConn is a connection taken over from the core (http.Hijacker): a
// net.Conn whose reads are the bytes the core read (held in the core until
// read, so a reader that stops makes the core stop reading) and whose
// writes go out through the core's socket, with the same backpressure as
// WebSocket writes.
type hijackConn struct {
	sock
	local, remote net.Addr

	rmu sync.Mutex // one Read at a time
	wmu sync.Mutex // writes go out whole, in order

	dmu           sync.Mutex
	readDeadline  time.Time
	writeDeadline time.Time
}

var _ net.Conn = (*hijackConn)(nil)

// hijack takes c's connection over. It waits until the answers before it
// went out and the connection is the host's.
func (c *Context) hijack() (*hijackConn, error) {
	if c.responded || c.finished {
		return nil, http.ErrHijacked
	}
	s := c.srv
	h := &hijackConn{sock: s.newSock(c.csrv, 0)}
	h.remote = tcpAddr(c.RemoteAddr())
	h.local = &net.TCPAddr{IP: net.ParseIP(s.host), Port: s.port}
	h.register()
	var cerr *C.ql_error
	st := C.qlgo_hijack(c.csrv, c.id, s.queue, C.uintptr_t(h.key), &cerr)
	if st != C.QL_OK {
		h.unregister()
		if st == C.QL_E_GONE {
			if cerr != nil {
				C.ql_error_free(&cerr)
			}
			return nil, net.ErrClosed
		}
		return nil, statusError(st, cerr)
	}
	c.responded = true
	c.sent.Store(true)
	s.hijacked.Store(h, struct{}{})
	if !h.waitOpen() {
		h.finish(0)
		s.hijacked.Delete(h)
		return nil, errors.New("quicklane: the connection ended before it was taken over")
	}
	return h, nil
}

func tcpAddr(hostport string) net.Addr {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return &net.TCPAddr{}
	}
	p, _ := strconv.Atoi(port)
	return &net.TCPAddr{IP: net.ParseIP(host), Port: p}
}

// Read implements net.Conn: it waits for bytes, the peer's end (io.EOF),
// Close (net.ErrClosed) or the read deadline (os.ErrDeadlineExceeded).
func (h *hijackConn) Read(p []byte) (int, error) {
	h.rmu.Lock()
	defer h.rmu.Unlock()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		h.mu.Lock()
		if h.done {
			h.mu.Unlock()
			return 0, h.opError("read", net.ErrClosed)
		}
		if len(h.inbox) > 0 {
			if len(p) == 0 {
				h.mu.Unlock()
				return 0, nil
			}
			m := &h.inbox[0]
			n := copy(p, unsafe.Slice((*byte)(m.data), m.len)[h.off:])
			h.off += n
			if h.off == m.len {
				m.release()
				h.inbox[0] = wsMessage{}
				h.inbox = h.inbox[1:]
				if len(h.inbox) == 0 {
					h.inbox = nil
				}
				h.off = 0
			}
			h.mu.Unlock()
			return n, nil
		}
		if h.state == wsClosed || h.state == wsAbandoned {
			h.mu.Unlock()
			return 0, io.EOF
		}
		h.mu.Unlock()
		var dl <-chan time.Time
		h.dmu.Lock()
		d := h.readDeadline
		h.dmu.Unlock()
		if !d.IsZero() {
			wait := time.Until(d)
			if wait <= 0 {
				return 0, h.opError("read", os.ErrDeadlineExceeded)
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			dl = timer.C
		}
		select {
		case <-h.wake:
		case <-dl:
		}
	}
}

// Write implements net.Conn: the bytes are copied and go out in order; it
// waits while more than 1 MiB waits for the peer (until half of it went
// out), the connection ends, or the write deadline passes.
func (h *hijackConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	deadline := func() (<-chan time.Time, bool) {
		h.dmu.Lock()
		d := h.writeDeadline
		h.dmu.Unlock()
		if d.IsZero() {
			return nil, false
		}
		wait := time.Until(d)
		if wait <= 0 {
			return nil, true
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		return timer.C, false
	}
	if _, passed := deadline(); passed {
		return 0, h.opError("write", os.ErrDeadlineExceeded)
	}
	// In pieces of a quarter of the core's limit: each is copied once and
	// fits as soon as the socket drained to half.
	written := 0
	for written < len(p) {
		n := min(len(p)-written, hijackPiece)
		if err := h.sendBlocking(C.QL_WS_BINARY, p[written:written+n], deadline); err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
			case errors.Is(err, ErrCloseSent), errors.Is(err, ErrWSClosed) && h.isDone():
				err = net.ErrClosed
			default: // the peer ended or reset
				err = syscall.EPIPE
			}
			return written, h.opError("write", err)
		}
		written += n
	}
	return written, nil
}

const hijackPiece = defaultBackpressure / 4

func (h *hijackConn) isDone() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.done
}

func (h *hijackConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: h.local, Addr: h.remote, Err: err}
}

// Close implements net.Conn: what was written goes out, then the
// connection closes. Blocked reads and writes return net.ErrClosed.
func (h *hijackConn) Close() error {
	h.mu.Lock()
	if h.done {
		h.mu.Unlock()
		return h.opError("close", net.ErrClosed)
	}
	open := h.state == wsOpen && !h.closeSent
	h.closeSent = true
	h.mu.Unlock()
	if open && h.enter() {
		C.qlgo_ws_close(h.csrv, h.id, CloseNormalClosure, "", nil)
		h.leave()
	}
	h.finish(0)
	h.srv.hijacked.Delete(h)
	h.signal()
	return nil
}

func (h *hijackConn) LocalAddr() net.Addr  { return h.local }
func (h *hijackConn) RemoteAddr() net.Addr { return h.remote }

// SetDeadline implements net.Conn.
func (h *hijackConn) SetDeadline(t time.Time) error {
	h.dmu.Lock()
	h.readDeadline, h.writeDeadline = t, t
	h.dmu.Unlock()
	h.signal()
	h.drainWake()
	return nil
}

// SetReadDeadline implements net.Conn.
func (h *hijackConn) SetReadDeadline(t time.Time) error {
	h.dmu.Lock()
	h.readDeadline = t
	h.dmu.Unlock()
	h.signal() // a blocked Read looks again
	return nil
}

// SetWriteDeadline implements net.Conn.
func (h *hijackConn) SetWriteDeadline(t time.Time) error {
	h.dmu.Lock()
	h.writeDeadline = t
	h.dmu.Unlock()
	h.drainWake()
	return nil
}

// drainWake makes a write blocked on backpressure look again (at its
// deadline).
func (h *hijackConn) drainWake() { h.drained() }

// hijackRelease gives back what hijacked connections still hold once the
// server has stopped (their owners may never read or close them).
func (s *server) hijackRelease() {
	s.hijacked.Range(func(k, _ any) bool {
		s.hijacked.Delete(k)
		k.(*hijackConn).finish(0)
		return true
	})
}

// Hijack implements http.Hijacker: the handler takes the connection over
// (gorilla/websocket's and coder/websocket's servers do). The core answers
// nothing for the request; a 101 given to WriteHeader before (as
// coder/websocket does) goes out first, with the headers set then. Bytes
// the client sent behind the request come through the net.Conn's first
// reads (the bufio.Reader holds none at first). After Hijack, the
// ResponseWriter's writes return http.ErrHijacked.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.streaming || w.c.responded {
		return nil, nil, errors.New("quicklane: Hijack after the response started")
	}
	h, err := w.c.hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	if w.info101 != nil {
		if _, err := h.Write(w.info101); err != nil {
			h.Close()
			return nil, nil, err
		}
		w.info101 = nil
	}
	return h, bufio.NewReadWriter(bufio.NewReader(h), bufio.NewWriter(h)), nil
}

// switchingHead formats the 101 of WriteHeader(101) with the headers set.
func switchingHead(h http.Header) []byte {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	h.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}
