package quicklane

/*
#include "qlgo.h"
*/
import "C"

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Message types, with gorilla/websocket's names and values (RFC 6455
// opcodes).
const (
	TextMessage   = 1
	BinaryMessage = 2
	CloseMessage  = 8
	PingMessage   = 9
	PongMessage   = 10
)

// Close codes (RFC 6455 7.4.1), with gorilla/websocket's names.
const (
	CloseNormalClosure           = 1000
	CloseGoingAway               = 1001
	CloseProtocolError           = 1002
	CloseUnsupportedData         = 1003
	CloseNoStatusReceived        = 1005
	CloseAbnormalClosure         = 1006
	CloseInvalidFramePayloadData = 1007
	ClosePolicyViolation         = 1008
	CloseMessageTooBig           = 1009
	CloseMandatoryExtension      = 1010
	CloseInternalServerErr       = 1011
	CloseServiceRestart          = 1012
	CloseTryAgainLater           = 1013
	CloseTLSHandshake            = 1015
)

// CloseError is the error ReadMessage (and later calls) return once the
// socket has closed: Code is the close code the client sent
// (CloseNoStatusReceived when it sent none), the code the core closed with
// (1001 server stopping or idle, 1002 protocol error, 1007 invalid UTF-8,
// 1009 message too big), the handler's own (Close), or
// CloseAbnormalClosure when the connection ended without a close frame.
// It has gorilla/websocket's shape.
type CloseError struct {
	Code int
	Text string
}

// Error implements the error interface.
func (e *CloseError) Error() string {
	s := "websocket: close " + strconv.Itoa(e.Code)
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// IsCloseError reports whether err is a *CloseError with one of codes.
func IsCloseError(err error, codes ...int) bool {
	var e *CloseError
	if errors.As(err, &e) {
		for _, c := range codes {
			if e.Code == c {
				return true
			}
		}
	}
	return false
}

// IsUnexpectedCloseError reports whether err is a *CloseError whose code is
// not one of expected.
func IsUnexpectedCloseError(err error, expected ...int) bool {
	var e *CloseError
	if errors.As(err, &e) {
		for _, c := range expected {
			if e.Code == c {
				return false
			}
		}
		return true
	}
	return false
}

// ErrCloseSent is returned by writes after the handler closed the socket
// (Close, or a CloseMessage).
var ErrCloseSent = errors.New("websocket: close sent")

// ErrWSClosed is returned by calls on a socket that has closed when its
// close code is not known (yet), and on a WSConn whose handler has returned.
var ErrWSClosed = errors.New("quicklane: the WebSocket is closed")

// ErrNotServing is returned by App.Publish while the app is not serving.
var ErrNotServing = errors.New("quicklane: the app is not serving")

// errInvalidControlFrame is gorilla/websocket's error for a ping, pong or
// close payload over 125 bytes (or a control write of another type).
var errInvalidControlFrame = errors.New("websocket: invalid control frame")

// FormatCloseMessage formats a close code and text as a close message's
// payload (gorilla/websocket's helper), for WriteMessage(CloseMessage, ...).
func FormatCloseMessage(closeCode int, text string) []byte {
	if closeCode == CloseNoStatusReceived {
		return []byte{}
	}
	buf := make([]byte, 2+len(text))
	binary.BigEndian.PutUint16(buf, uint16(closeCode))
	copy(buf[2:], text)
	return buf
}

// WSHandlerFunc serves one WebSocket, on its own goroutine, from the open
// socket to its end. When it returns, the socket is closed with 1000 (1011
// when it returned an error other than the socket's own *CloseError, and the
// error is logged); a panic is logged and closes with 1011.
type WSHandlerFunc func(c *WSConn) error

// WSOption configures a WebSocket route (see App.WS).
type WSOption func(*wsOptions)

// WSCompression is a permessage-deflate mode (RFC 7692) of WSCompress.
type WSCompression int

const (
	// CompressNone: messages are never compressed (the default).
	CompressNone WSCompression = 0
	// CompressShared: no context takeover either way; one pair of zlib
	// streams per native loop serves every socket (no zlib memory per
	// socket), and a published message is compressed once.
	CompressShared WSCompression = 1
	// CompressDedicated: each socket keeps its own contexts (better ratios
	// on similar messages, about 300 KB per socket at 15 window bits).
	CompressDedicated WSCompression = 2
)

type wsOptions struct {
	maxMessage      int64
	maxBackpressure int64
	idle            time.Duration
	ping            time.Duration
	compression     WSCompression
	windowBits      int
	subprotocols    []string
	upgrade         func(c *Context, a *WSAccept) error
	rules           []Rule
	err             error
}

func (o *wsOptions) fail(format string, args ...any) {
	if o.err == nil {
		o.err = fmt.Errorf("quicklane: "+format, args...)
	}
}

// WSMaxMessageBytes sets the largest message the socket accepts (a bigger
// one closes it with 1009). Default 16 MiB; 1 byte .. 1 TiB.
func WSMaxMessageBytes(n int64) WSOption {
	return func(o *wsOptions) {
		if n < 1 || n > 1<<40 {
			o.fail("WSMaxMessageBytes(%d): must be 1 .. 1 TiB", n)
		}
		o.maxMessage = n
	}
}

// WSMaxBackpressure sets how many bytes may wait for a slow client before
// WriteMessage blocks (it resumes once half of them are written), and how
// many bytes of received messages ReadMessage may leave unread before the
// core stops reading the socket. Default 1 MiB; 1 KiB .. 1 TiB.
func WSMaxBackpressure(n int64) WSOption {
	return func(o *wsOptions) {
		if n < 1<<10 || n > 1<<40 {
			o.fail("WSMaxBackpressure(%d): must be 1 KiB .. 1 TiB", n)
		}
		o.maxBackpressure = n
	}
}

// WSIdleTimeout closes a socket (1001) that received nothing for d.
// Default 120 s; at least 1 s.
func WSIdleTimeout(d time.Duration) WSOption {
	return func(o *wsOptions) {
		if d < time.Second || d.Milliseconds() > 1<<32-1 {
			o.fail("WSIdleTimeout(%v): must be 1s .. 49 days", d)
		}
		o.idle = d
	}
}

// WSPingInterval makes the core ping a client that has been silent for d
// (its pong keeps the socket from going idle). Default none; at least 1 s.
func WSPingInterval(d time.Duration) WSOption {
	return func(o *wsOptions) {
		if d < time.Second || d.Milliseconds() > 1<<32-1 {
			o.fail("WSPingInterval(%v): must be 1s .. 49 days", d)
		}
		o.ping = d
	}
}

// WSCompress turns permessage-deflate on when the client offers it.
// windowBits (CompressDedicated only) is 9..15, or 0 for 15.
func WSCompress(mode WSCompression, windowBits int) WSOption {
	return func(o *wsOptions) {
		switch {
		case mode < CompressNone || mode > CompressDedicated:
			o.fail("WSCompress(%d, %d): mode must be CompressNone, CompressShared or CompressDedicated", mode, windowBits)
		case windowBits != 0 && (windowBits < 9 || windowBits > 15):
			o.fail("WSCompress(%d, %d): windowBits must be 9..15 (0: 15)", mode, windowBits)
		case windowBits != 0 && mode != CompressDedicated:
			o.fail("WSCompress(%d, %d): windowBits needs CompressDedicated", mode, windowBits)
		}
		o.compression, o.windowBits = mode, windowBits
	}
}

// WSSubprotocols lists the subprotocols the server speaks, in order of
// preference: the first one the client offers (Sec-WebSocket-Protocol) is
// chosen, as gorilla/websocket's Upgrader.Subprotocols does. A client that
// offers none of them gets no subprotocol (WSUpgrade may refuse it).
func WSSubprotocols(protocols ...string) WSOption {
	return func(o *wsOptions) { o.subprotocols = append([]string(nil), protocols...) }
}

// WSAccept is what the 101 answer will carry; WSUpgrade may change it.
type WSAccept struct {
	// Offered lists the subprotocols the client offered, in its order.
	Offered []string
	// Subprotocol is the one chosen (from WSSubprotocols, or "" for none);
	// it must be one of Offered.
	Subprotocol string
	// Header holds extra headers of the 101 answer (e.g. Set-Cookie).
	Header http.Header
}

// WSUpgrade sets a hook that runs on the upgrade request before the socket
// is accepted (after the core's native rules and handshake checks). It may
// read the request through c (Param, Query, Header, RemoteAddr), and:
//   - refuse: answer with c (c.JSON(401, ...), c.String(403, ...)), or
//     return an error (an *HTTPError gives its status and {"detail": ...};
//     another error gives 500 and is logged); the connection then closes;
//   - accept: return nil, after changing a (the subprotocol, headers of
//     the 101).
func WSUpgrade(hook func(c *Context, a *WSAccept) error) WSOption {
	return func(o *wsOptions) { o.upgrade = hook }
}

// WSRules applies native rules (RateLimit, RequireAPIKey) to the upgrade
// request: the core answers it (429, 401, 403) before Go sees it.
func WSRules(rules ...Rule) WSOption {
	return func(o *wsOptions) { o.rules = append(o.rules, rules...) }
}

type wsRoute struct {
	handler WSHandlerFunc
	opts    wsOptions
	err     error
}

// WS registers a WebSocket route: a GET of pattern (with "{name}"
// parameters, as Handle) that asks to upgrade is answered 101 by the core,
// and h then serves the socket on a goroutine of its own:
//
//	app.WS("/ws/chat/{room}", func(c *quicklane.WSConn) error {
//		room := "room:" + c.Param("room")
//		if err := c.Subscribe(room); err != nil {
//			return err
//		}
//		for {
//			_, msg, err := c.ReadMessage()
//			if err != nil {
//				return err // the client left: a *CloseError
//			}
//			if _, err := app.Publish(room, quicklane.TextMessage, msg); err != nil {
//				return err
//			}
//		}
//	})
//
// A GET without an upgrade gets 426 and a malformed upgrade 400, from the
// core. Framing, masking, fragmentation, UTF-8 checks of text, pings and
// the close handshake are the core's (it passes the Autobahn test suite);
// Go sees whole messages. Bad options are reported by Start.
func (a *App) WS(pattern string, h WSHandlerFunc, opts ...WSOption) {
	r := &wsRoute{handler: h}
	for _, o := range opts {
		o(&r.opts)
	}
	r.err = r.opts.err
	if h == nil && r.err == nil {
		r.err = errors.New("quicklane: WS " + pattern + ": nil handler")
	}
	a.add(route{kind: routeWS, method: "GET", pattern: pattern, ws: r, rules: makeRules(r.opts.rules)})
}

// Publish sends a message (TextMessage or BinaryMessage) to every socket
// subscribed to topic, on every native loop, from any goroutine: it is
// framed once and the same bytes are written to each subscriber; one that
// is too far behind (over its WSMaxBackpressure) misses it, the others do
// not wait. It returns how many subscribers it was sent to.
func (a *App) Publish(topic string, messageType int, data []byte) (int, error) {
	s := a.serving()
	if s == nil {
		return 0, ErrNotServing
	}
	return s.publish(topic, messageType, data, 0)
}

func wsKind(messageType int, data []byte) (C.uint32_t, error) {
	switch messageType {
	case TextMessage:
		if !utf8.Valid(data) {
			return 0, errors.New("quicklane: a text message must be valid UTF-8 (send it as BinaryMessage)")
		}
		return C.QL_WS_TEXT, nil
	case BinaryMessage:
		return C.QL_WS_BINARY, nil
	}
	return 0, fmt.Errorf("quicklane: message type %d: want TextMessage or BinaryMessage", messageType)
}

func (s *server) publish(topic string, messageType int, data []byte, exclude C.ql_ws_id) (int, error) {
	kind, err := wsKind(messageType, data)
	if err != nil {
		return 0, err
	}
	s.liveMu.RLock()
	defer s.liveMu.RUnlock()
	if s.freed {
		return 0, ErrNotServing
	}
	var n C.size_t
	var cerr *C.ql_error
	st := C.qlgo_publish(s.csrv, topic, bytesData(data), C.size_t(len(data)), kind, exclude, &n, &cerr)
	if err := statusError(st, cerr); err != nil {
		return 0, err
	}
	return int(n), nil
}

// WSConn is one open WebSocket. Its methods may be called from any
// goroutine while its handler runs (ReadMessage from one at a time);
// after the handler returns they fail with ErrWSClosed.
type WSConn struct {
	sock

	// The upgrade request, copied before the accept freed it.
	params      []string // name, value, ...
	header      http.Header
	query       url.Values
	path, uri   string
	remoteAddr  string
	subprotocol string
}

// sock is a socket of the core (a WebSocket, or a hijacked connection) as
// the Go side follows it: its events, unread messages and close.
type sock struct {
	srv  *server
	csrv *C.ql_server
	key  uintptr
	id   C.ql_ws_id // set before opened is closed
	ctx  reqContext

	opened chan struct{}
	wake   chan struct{} // a message or the close arrived, or a deadline moved (capacity 1)

	mu        sync.Mutex
	state     wsState
	inbox     []wsMessage // messages not read yet (still held from the core)
	off       int         // bytes of inbox[0] already read (hijacked connections)
	closeErr  *CloseError // the close, once it came
	closeSent bool
	done      bool // nobody reads any more: messages are released as they come
	drainSeq  uint64
	drainWait chan struct{} // closed at the next drain (made by a blocked writer)
	limit     uint64        // the socket's max_backpressure
}

// defaultBackpressure is the core's max_backpressure when none is given.
const defaultBackpressure = 1 << 20

func (s *server) newSock(csrv *C.ql_server, limit int64) sock {
	if limit <= 0 {
		limit = defaultBackpressure
	}
	return sock{srv: s, csrv: csrv, opened: make(chan struct{}), wake: make(chan struct{}, 1), limit: uint64(limit)}
}

// register makes the socket findable by its events' tag.
func (c *sock) register() {
	c.key = c.srv.wsKey.Add(1)
	c.srv.wsConns.Store(c.key, c)
	c.srv.wsCount.Add(1)
}

func (c *sock) unregister() {
	if _, ok := c.srv.wsConns.LoadAndDelete(c.key); ok {
		c.srv.wsCount.Add(-1)
	}
}

type wsState int

const (
	wsPending   wsState = iota // accepted, the 101 not out yet
	wsOpen                     // open
	wsClosed                   // its close event came
	wsAbandoned                // never opened (client left before the 101, or the server stopped)
)

// wsMessage is one received message, held from the core until read.
type wsMessage struct {
	request uintptr // the event's request field, for ql_event_release
	data    unsafe.Pointer
	len     int
	binary  bool
}

func (m *wsMessage) release() { C.qlgo_ws_release(C.uintptr_t(m.request), C.QL_EVENT_WS_MESSAGE) }

// Context returns the socket's context: cancelled once it has closed (or
// the handler returned).
func (c *WSConn) Context() context.Context { return &c.ctx }

// Param returns the percent-decoded path parameter name of the upgrade
// request ("" when absent).
func (c *WSConn) Param(name string) string {
	for i := 0; i+1 < len(c.params); i += 2 {
		if c.params[i] == name {
			return c.params[i+1]
		}
	}
	return ""
}

// Query returns the first value of the upgrade request's query parameter
// name (decoded), or "".
func (c *WSConn) Query(name string) string { return c.query.Get(name) }

// QueryValues returns the upgrade request's query parameters.
func (c *WSConn) QueryValues() url.Values { return c.query }

// Header returns the first value of the upgrade request's header name.
func (c *WSConn) Header(name string) string { return c.header.Get(name) }

// Headers returns the upgrade request's headers (canonical names).
func (c *WSConn) Headers() http.Header { return c.header }

// Path returns the upgrade request's path (as sent, not decoded).
func (c *WSConn) Path() string { return c.path }

// RequestURI returns the upgrade request's target (path and query).
func (c *WSConn) RequestURI() string { return c.uri }

// RemoteAddr returns the client's address as "ip:port".
func (c *WSConn) RemoteAddr() string { return c.remoteAddr }

// Subprotocol returns the subprotocol of the 101 answer ("" for none).
func (c *WSConn) Subprotocol() string { return c.subprotocol }

// ReadMessage waits for the next message and returns its type
// (TextMessage or BinaryMessage) and a copy of its bytes. Once the socket
// has closed and every message before the close was read, it returns a
// *CloseError. Messages are whole (the core joins fragments; text is valid
// UTF-8). A message left unread holds its bytes in the core, and the core
// stops reading a socket whose unread messages pass WSMaxBackpressure.
func (c *WSConn) ReadMessage() (messageType int, p []byte, err error) {
	for {
		c.mu.Lock()
		if c.done {
			c.mu.Unlock()
			return 0, nil, ErrWSClosed
		}
		if len(c.inbox) > 0 {
			m := c.inbox[0]
			c.inbox[0] = wsMessage{}
			c.inbox = c.inbox[1:]
			if len(c.inbox) == 0 {
				c.inbox = nil
			}
			// Copied and released under mu: the handler's return (done)
			// releases what is left, never this one twice.
			p = C.GoBytes(m.data, C.int(m.len))
			m.release()
			c.mu.Unlock()
			if m.binary {
				return BinaryMessage, p, nil
			}
			return TextMessage, p, nil
		}
		if c.state == wsClosed || c.state == wsAbandoned {
			err := c.closedErr()
			c.mu.Unlock()
			return 0, nil, err
		}
		c.mu.Unlock()
		<-c.wake
	}
}

// ReadJSON reads the next message and decodes it as JSON into v.
func (c *WSConn) ReadJSON(v any) error {
	_, p, err := c.ReadMessage()
	if err != nil {
		return err
	}
	return json.Unmarshal(p, v)
}

// closedErr is the error of a closed socket (c.mu held).
func (c *sock) closedErr() error {
	if c.closeErr != nil {
		return c.closeErr
	}
	if c.closeSent {
		return ErrCloseSent
	}
	return ErrWSClosed
}

// writeErr is the error of a write to a closed socket (c.mu held):
// ErrCloseSent after the handler's own close, as gorilla/websocket.
func (c *sock) writeErr() error {
	if c.closeSent {
		return ErrCloseSent
	}
	return c.closedErr()
}

// unwritable is the error of a write to a socket that is closing or closed,
// nil while it is open (c.mu held). The core would still take a send from
// another thread (it is checked on the loop): the close is known here first.
func (c *sock) unwritable() error {
	if c.closeSent || c.state != wsOpen || c.done {
		return c.writeErr()
	}
	return nil
}

// wsDrainRecheck bounds a wait for the drain notice, should it be missed.
const wsDrainRecheck = 250 * time.Millisecond

// WriteMessage sends one message: TextMessage (valid UTF-8) or
// BinaryMessage; PingMessage or PongMessage sends that control frame as
// WriteControl does; CloseMessage with a payload from FormatCloseMessage
// closes the socket like Close. It may be called from many goroutines at
// once (the messages go out whole, in the order of the calls). The bytes are
// copied before it returns.
//
// Backpressure: while more than WSMaxBackpressure bytes (default 1 MiB)
// wait for a client that does not read, WriteMessage blocks until the core
// has written half of them, or the socket closes (it then returns the
// *CloseError), so a fast producer never grows the server's memory. Pings
// and pongs never block nor get dropped.
func (c *WSConn) WriteMessage(messageType int, data []byte) error {
	switch messageType {
	case CloseMessage:
		return c.writeClose(data)
	case PingMessage, PongMessage:
		return c.writePingPong(messageType, data)
	}
	kind, err := wsKind(messageType, data)
	if err != nil {
		return err
	}
	return c.sendBlocking(kind, data, nil)
}

// sendBlocking sends one message, waiting while the socket is over its
// max_backpressure; deadline (optional) gives the channel of a timer that
// ends the wait with os.ErrDeadlineExceeded (nil: no deadline).
func (c *sock) sendBlocking(kind C.uint32_t, data []byte, deadline func() (<-chan time.Time, bool)) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	wait := func(ch <-chan struct{}, d time.Duration) error {
		var dl <-chan time.Time
		if deadline != nil {
			var passed bool
			if dl, passed = deadline(); passed {
				return os.ErrDeadlineExceeded
			}
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ch:
		case <-timer.C:
		case <-c.ctx.Done():
		case <-dl:
		}
		return nil
	}
	frame := uint64(len(data)) + 14 // at most, with its head
	for {
		c.mu.Lock()
		seq := c.drainSeq
		if err := c.unwritable(); err != nil {
			c.mu.Unlock()
			return err
		}
		c.mu.Unlock()
		st, err := c.send(kind, data)
		if err != nil {
			return err
		}
		if st != C.QL_WS_DROPPED {
			return nil
		}
		// Over the mark: wait for the core's drain notice (armed by the
		// dropped send, at half the limit), the close, the deadline or a
		// recheck.
		c.mu.Lock()
		if c.drainSeq == seq {
			if c.drainWait == nil {
				c.drainWait = make(chan struct{})
			}
			ch := c.drainWait
			c.mu.Unlock()
			if err := wait(ch, wsDrainRecheck); err != nil {
				return err
			}
		} else {
			c.mu.Unlock()
		}
		// A message bigger than half the limit may not fit yet: the core
		// takes it once it fits or nothing waits. Look before sending it
		// again (each try copies it), without another drain to wait for.
		for pause := 2 * time.Millisecond; frame > c.limit/2 && c.ctx.Err() == nil; pause = min(2*pause, 100*time.Millisecond) {
			b, ok := c.buffered()
			if !ok || b == 0 || b+frame <= c.limit {
				break
			}
			if err := wait(nil, pause); err != nil {
				return err
			}
		}
	}
}

// buffered is ql_ws_buffered; ok false when the socket is gone.
func (c *sock) buffered() (uint64, bool) {
	if !c.enter() {
		return 0, false
	}
	var n C.uint64_t
	st := C.ql_ws_buffered(c.csrv, c.id, &n, nil)
	c.leave()
	return uint64(n), st == C.QL_OK
}

// WriteJSON sends v encoded as JSON in a text message.
func (c *WSConn) WriteJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.WriteMessage(TextMessage, b)
}

// WriteControl sends a control message, as gorilla/websocket's:
// PingMessage or PongMessage with at most 125 bytes of application data
// (the frame goes out in order after the messages written before it, never
// dropped nor compressed), or CloseMessage with a payload from
// FormatCloseMessage, which closes the socket like Close (code and
// reason). A longer payload or another type returns an error ("websocket:
// invalid control frame"). The core answers the client's pings itself (a
// queued route sees no pings nor pongs) and, with WSPingInterval, pings
// silent clients. The deadline is not needed: a control frame never waits.
func (c *WSConn) WriteControl(messageType int, data []byte, deadline time.Time) error {
	switch messageType {
	case CloseMessage:
		return c.writeClose(data)
	case PingMessage, PongMessage:
		return c.writePingPong(messageType, data)
	}
	return errInvalidControlFrame
}

// writePingPong sends a ping or pong frame: the core takes it whatever the
// socket's backpressure (QL_WS_SENT or QL_WS_QUEUED, never DROPPED).
func (c *WSConn) writePingPong(messageType int, data []byte) error {
	if len(data) > 125 {
		return errInvalidControlFrame
	}
	kind := C.uint32_t(C.QL_WS_PING)
	if messageType == PongMessage {
		kind = C.QL_WS_PONG
	}
	c.mu.Lock()
	err := c.unwritable()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = c.send(kind, data)
	return err
}

func (c *WSConn) writeClose(payload []byte) error {
	if len(payload) > 125 {
		return errInvalidControlFrame
	}
	if len(payload) == 0 {
		return c.Close(CloseNormalClosure, "")
	}
	if len(payload) < 2 {
		return errors.New("quicklane: a close payload is a 2-byte code and a reason")
	}
	return c.Close(int(binary.BigEndian.Uint16(payload)), string(payload[2:]))
}

// enter guards a native call on the socket: false when the handler has
// returned or the server is gone (c.srv.liveMu is then not held).
func (c *sock) enter() bool {
	c.srv.liveMu.RLock()
	if c.srv.freed {
		c.srv.liveMu.RUnlock()
		return false
	}
	return true
}

func (c *sock) leave() { c.srv.liveMu.RUnlock() }

// send makes one ql_ws_send: its non-negative result, or the error.
func (c *sock) send(kind C.uint32_t, data []byte) (C.ql_status, error) {
	if !c.enter() {
		return 0, ErrWSClosed
	}
	var cerr *C.ql_error
	st := C.qlgo_ws_send(c.csrv, c.id, bytesData(data), C.size_t(len(data)), kind, &cerr)
	c.leave()
	if st >= 0 {
		return st, nil
	}
	return st, c.callError(st, cerr)
}

// callError turns a failed call into the socket's error: QL_E_GONE is the
// close (or ErrCloseSent).
func (c *sock) callError(st C.ql_status, cerr *C.ql_error) error {
	if st != C.QL_E_GONE {
		return statusError(st, cerr)
	}
	if cerr != nil {
		C.ql_error_free(&cerr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeErr()
}

// Close starts the close handshake with code (1000, 1001, 1003, 1007-1014,
// 3000-4999) and a UTF-8 reason of at most 123 bytes. Messages that came
// before the client's answer can still be read; then ReadMessage returns
// the *CloseError. Later writes return ErrCloseSent. Closing a socket that
// is already closing returns its close error.
func (c *WSConn) Close(code int, reason string) error {
	if code < 1000 || code > 4999 {
		return fmt.Errorf("quicklane: close code %d: must be 1000, 1001, 1003, 1007-1014 or 3000-4999", code)
	}
	if !c.enter() {
		return ErrWSClosed
	}
	var cerr *C.ql_error
	st := C.qlgo_ws_close(c.csrv, c.id, C.uint16_t(code), reason, &cerr)
	c.leave()
	if st == C.QL_OK {
		c.mu.Lock()
		c.closeSent = true
		c.mu.Unlock()
		return nil
	}
	return c.callError(st, cerr)
}

// Subscribe adds the socket to topic (an exact string): every Publish to it
// reaches the socket, from any goroutine or socket. Subscribing twice is
// one subscription; a socket leaves its topics when it closes. It takes
// effect on the socket's loop right after the call.
func (c *WSConn) Subscribe(topic string) error { return c.sub(topic, 1) }

// Unsubscribe removes the socket from topic.
func (c *WSConn) Unsubscribe(topic string) error { return c.sub(topic, 0) }

func (c *WSConn) sub(topic string, on C.int) error {
	if !c.enter() {
		return ErrWSClosed
	}
	var cerr *C.ql_error
	st := C.qlgo_ws_sub(c.csrv, c.id, topic, on, &cerr)
	c.leave()
	if st == C.QL_OK {
		return nil
	}
	return c.callError(st, cerr)
}

// Publish sends a message to every other socket subscribed to topic (this
// one excluded, subscribed or not); App.Publish includes everyone. It
// returns how many subscribers it was sent to.
func (c *WSConn) Publish(topic string, messageType int, data []byte) (int, error) {
	return c.srv.publish(topic, messageType, data, c.id)
}

// BufferedAmount returns the bytes sent to the socket and not yet taken by
// the kernel.
func (c *WSConn) BufferedAmount() (int, error) {
	if !c.enter() {
		return 0, ErrWSClosed
	}
	var n C.uint64_t
	var cerr *C.ql_error
	st := C.ql_ws_buffered(c.csrv, c.id, &n, &cerr)
	c.leave()
	if st != C.QL_OK {
		return 0, c.callError(st, cerr)
	}
	return int(n), nil
}

// ---- the server side ----------------------------------------------------

// wsEvent hands one WebSocket event to its socket (s.wsOrder held, so a
// socket's events arrive in order) and gives the event back to the core
// unless a message waits to be read.
func (s *server) wsEvent(ev *C.ql_event, info *C.ql_ws_event_info) {
	req := uintptr(unsafe.Pointer(ev.request))
	kind := ev.kind
	var c *sock
	if v, ok := s.wsConns.Load(uintptr(info.tag)); ok {
		c = v.(*sock)
	}
	switch kind {
	case C.QL_EVENT_WS_OPEN:
		C.qlgo_ws_release(C.uintptr_t(req), kind)
		if c == nil || !c.open(ev.id) {
			// Its upgrade was given up (see waitOpen): nobody serves it.
			C.ql_ws_close(ev.server, ev.id, CloseGoingAway, nil, 0, nil)
		}
	case C.QL_EVENT_WS_MESSAGE:
		if c == nil || !c.push(wsMessage{request: req, data: unsafe.Pointer(info.data), len: int(info.len), binary: info.binary != 0}) {
			C.qlgo_ws_release(C.uintptr_t(req), kind)
		}
	case C.QL_EVENT_WS_DRAIN:
		C.qlgo_ws_release(C.uintptr_t(req), kind)
		if c != nil {
			c.drained()
		}
	case C.QL_EVENT_WS_CLOSE:
		code := int(info.code)
		text := ""
		if info.len > 0 {
			text = C.GoStringN(info.data, C.int(info.len))
		}
		C.qlgo_ws_release(C.uintptr_t(req), kind)
		if c != nil {
			c.unregister()
			c.closed(code, text)
		}
	default:
		C.qlgo_ws_release(C.uintptr_t(req), kind)
	}
}

func (c *sock) open(id C.ql_ws_id) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != wsPending {
		return false
	}
	c.id = id
	c.state = wsOpen
	close(c.opened)
	return true
}

// push queues a message for ReadMessage; false when nobody will read it.
func (c *sock) push(m wsMessage) bool {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return false
	}
	c.inbox = append(c.inbox, m)
	c.mu.Unlock()
	c.signal()
	return true
}

func (c *sock) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *sock) drained() {
	c.mu.Lock()
	c.drainSeq++
	if c.drainWait != nil {
		close(c.drainWait)
		c.drainWait = nil
	}
	c.mu.Unlock()
}

func (c *sock) closed(code int, text string) {
	c.mu.Lock()
	if c.state == wsPending || c.state == wsOpen {
		c.closeErr = &CloseError{Code: code, Text: text}
		if code == CloseAbnormalClosure && text == "" {
			c.closeErr.Text = "unexpected EOF"
		}
		c.state = wsClosed
	}
	c.mu.Unlock()
	c.ctx.cancel()
	c.signal()
}

// abandon gives up a socket that will never open or whose close will never
// come (the server stopped): its handler sees a closed socket.
func (c *sock) abandon() {
	c.mu.Lock()
	if c.state == wsPending || c.state == wsOpen {
		c.state = wsAbandoned
		if c.closeErr == nil {
			c.closeErr = &CloseError{Code: CloseAbnormalClosure, Text: "unexpected EOF"}
		}
	}
	c.mu.Unlock()
	c.ctx.cancel()
	c.signal()
}

// wsAbandon ends every socket left after the pollers stopped.
func (s *server) wsAbandon() {
	s.wsConns.Range(func(k, v any) bool {
		s.wsConns.Delete(k)
		s.wsCount.Add(-1)
		v.(*sock).abandon()
		return true
	})
}

// finish ends the socket after its handler returned: a close (1000, or
// 1011 after a failure) unless one was sent, and every unread message
// given back to the core.
func (c *sock) finish(code int) {
	c.mu.Lock()
	open := c.state == wsOpen && !c.closeSent
	c.mu.Unlock()
	if open && c.enter() {
		C.qlgo_ws_close(c.csrv, c.id, C.uint16_t(code), "", nil)
		c.leave()
	}
	c.mu.Lock()
	c.done = true
	for i := range c.inbox {
		c.inbox[i].release()
	}
	c.inbox = nil
	c.mu.Unlock()
	c.ctx.cancel()
}

// waitOpen waits for the socket's open event after its accept. An upgrade
// whose connection ends before it switches gets a close event instead
// (closed), and a server that stopped abandons it.
func (c *sock) waitOpen() bool {
	select {
	case <-c.opened:
		return true
	case <-c.ctx.Done():
		select {
		case <-c.opened:
			return true
		default:
			return false
		}
	}
}

// serveWS serves an upgrade request: the WSUpgrade hook, the accept, then
// the handler once the socket is open.
func (s *server) serveWS(c *Context, r *route) {
	defer s.handlers.Done()
	ws := r.ws
	acc := WSAccept{Offered: offeredProtocols(c.Headers()["Sec-Websocket-Protocol"]), Header: http.Header{}}
	acc.Subprotocol = chooseProtocol(ws.opts.subprotocols, acc.Offered)
	if !s.wsUpgrade(c, ws, &acc) {
		return
	}
	conn := &WSConn{sock: s.newSock(c.csrv, ws.opts.maxBackpressure),
		header: c.Headers(), query: c.QueryValues(), path: c.Path(), uri: c.RequestURI(),
		remoteAddr: c.RemoteAddr(), subprotocol: acc.Subprotocol, params: c.allParams()}
	conn.register()

	var hp headerPack
	for k, vs := range acc.Header {
		for _, v := range vs {
			hp.add(k, v)
		}
	}
	hbuf, hl, nh := hp.args()
	var cerr *C.ql_error
	st := C.qlgo_ws_accept(c.csrv, c.id, acc.Subprotocol, hbuf, hl, nh, C.uintptr_t(conn.key), &cerr)
	if st != C.QL_OK {
		conn.unregister()
		if st != C.QL_E_GONE {
			// Refused by the core (a subprotocol the client did not offer,
			// a bad header): the request is still unanswered.
			s.logf("quicklane: WebSocket %s: accept: %v", c.Path(), statusError(st, cerr))
			cerr = nil
			c.failInternal()
		} else if cerr != nil {
			C.ql_error_free(&cerr)
		}
		s.done(c)
		c.finish()
		return
	}
	c.responded = true
	c.sent.Store(true)
	s.done(c)
	c.finish()
	if !conn.waitOpen() {
		conn.finish(CloseGoingAway)
		return
	}
	code := CloseNormalClosure
	func() {
		defer func() {
			if p := recover(); p != nil {
				buf := make([]byte, 8<<10)
				buf = buf[:runtime.Stack(buf, false)]
				s.logf("quicklane: panic serving WebSocket %s: %v\n%s", conn.path, p, buf)
				code = CloseInternalServerErr
			}
		}()
		if err := ws.handler(conn); err != nil && !wsNormalEnd(err) {
			s.logf("quicklane: WebSocket %s: %v", conn.path, err)
			code = CloseInternalServerErr
		}
	}()
	conn.finish(code)
}

// wsNormalEnd: errors that say the socket closed, which a handler returns
// as its way to end.
func wsNormalEnd(err error) bool {
	var ce *CloseError
	return errors.As(err, &ce) || errors.Is(err, ErrCloseSent) || errors.Is(err, ErrWSClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, net.ErrClosed)
}

// wsUpgrade runs the WSUpgrade hook; false when the upgrade was refused
// (answered) or its client left (the request is then finished).
func (s *server) wsUpgrade(c *Context, ws *wsRoute, acc *WSAccept) bool {
	var err error
	if ws.opts.upgrade != nil {
		func() {
			defer func() {
				if p := recover(); p != nil {
					buf := make([]byte, 8<<10)
					buf = buf[:runtime.Stack(buf, false)]
					s.logf("quicklane: panic in WSUpgrade for %s: %v\n%s", c.Path(), p, buf)
					err = errUpgradePanic
				}
			}()
			err = ws.opts.upgrade(c, acc)
		}()
	}
	if err == nil && !c.responded {
		if c.ctx.Err() == nil {
			return true
		}
		c.free() // its client left: the request is freed
	}
	if err != nil && !c.responded {
		var he *HTTPError
		if errors.As(err, &he) {
			_ = c.JSON(he.Code, map[string]string{"detail": he.Message})
		} else {
			if err != errUpgradePanic {
				s.logf("quicklane: WSUpgrade for %s: %v", c.Path(), err)
			}
			c.failInternal()
		}
	}
	s.done(c)
	c.finish() // unanswered (the client left): freed
	return false
}

var errUpgradePanic = errors.New("panic")

// offeredProtocols splits Sec-WebSocket-Protocol values into tokens.
func offeredProtocols(values []string) []string {
	var out []string
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func chooseProtocol(server, offered []string) string {
	for _, s := range server {
		for _, o := range offered {
			if s == o {
				return s
			}
		}
	}
	return ""
}

// allParams copies every path parameter (name, value, ...).
func (c *Context) allParams() []string {
	if !c.alive() {
		return nil
	}
	n := int(c.info.nparams)
	out := make([]string, 0, 2*n)
	if n <= C.QLGO_INLINE_PARAMS {
		for i := 0; i < n; i++ {
			out = append(out, gostr(c.info.pnames[i]), gostr(c.info.pvalues[i]))
		}
		return out
	}
	names, values := c.pairs(n, func(nm, vl *C.ql_str) { C.qlgo_params(c.req, nm, vl, C.size_t(n)) })
	for i := range names {
		out = append(out, names[i], values[i])
	}
	return out
}
