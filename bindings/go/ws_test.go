package quicklane_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	quicklane "github.com/quicklane/quicklane/bindings/go"
)

// startWS serves app and returns its host:port.
func startWS(t *testing.T, app *quicklane.App) string {
	t.Helper()
	return strings.TrimPrefix(start(t, app), "http://")
}

func mustDial(t *testing.T, addr, path string, extra ...string) *wsClient {
	t.Helper()
	c, err := dialWS(addr, path, extra...)
	if err != nil {
		t.Fatal(err)
	}
	if c.status != 101 {
		t.Fatalf("%s: %d %s", path, c.status, c.body)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func echoHandler(c *quicklane.WSConn) error {
	for {
		mt, p, err := c.ReadMessage()
		if err != nil {
			return err
		}
		if err := c.WriteMessage(mt, p); err != nil {
			return err
		}
	}
}

func TestWSEcho(t *testing.T) {
	app := quicklane.New(quicklane.WithWorkers(2), quiet)
	app.WS("/ws/echo", echoHandler)
	addr := startWS(t, app)
	c := mustDial(t, addr, "/ws/echo")
	for _, msg := range []string{"hello", "grüße", "", strings.Repeat("x", 200)} {
		c.sendText(msg)
		op, p, err := c.readMessage()
		if err != nil || op != 1 || string(p) != msg {
			t.Fatalf("text %q: %d %q %v", msg, op, p, err)
		}
	}
	bin := []byte{0, 0xff, 0x10, 0x80}
	c.sendBinary(bin)
	if op, p, err := c.readMessage(); err != nil || op != 2 || !bytes.Equal(p, bin) {
		t.Fatalf("binary: %d %v %v", op, p, err)
	}
	// Large messages, both ways, past the default backpressure mark.
	for _, n := range []int{70000, 3 << 20} {
		big := make([]byte, n)
		for i := range big {
			big[i] = byte(i % 251)
		}
		go c.sendBinary(big)
		op, p, err := c.readMessage()
		if err != nil || op != 2 || !bytes.Equal(p, big) {
			t.Fatalf("%d bytes: op %d, %d bytes back, %v", n, op, len(p), err)
		}
	}
	c.sendClose(1000, "")
	if code, _, err := c.expectClose(); err != nil || code != 1000 {
		t.Fatalf("close: %d %v", code, err)
	}
	waitFor(t, "no live sockets", func() bool { return quicklane.WSLive(app) == 0 })
}

// Messages from one client arrive in order, whichever poller takes them.
func TestWSOrder(t *testing.T) {
	app := quicklane.New(quicklane.WithWorkers(2), quicklane.WithPollers(4), quiet)
	app.WS("/ws/echo", echoHandler)
	addr := startWS(t, app)
	c := mustDial(t, addr, "/ws/echo")
	const n = 3000
	go func() {
		for i := 0; i < n; i++ {
			c.sendText(strconv.Itoa(i))
		}
	}()
	for i := 0; i < n; i++ {
		_, p, err := c.readMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(p) != strconv.Itoa(i) {
			t.Fatalf("message %d came as %q", i, p)
		}
	}
}

func TestWSRequestData(t *testing.T) {
	app := quicklane.New(quiet)
	app.WS("/ws/{room}/{user}", func(c *quicklane.WSConn) error {
		return c.WriteJSON(map[string]string{
			"room": c.Param("room"), "user": c.Param("user"), "missing": c.Param("nope"),
			"q": c.Query("q"), "hdr": c.Header("X-Test"), "path": c.Path(), "uri": c.RequestURI(),
			"remote": c.RemoteAddr(), "sub": c.Subprotocol(),
		})
	}, quicklane.WSSubprotocols("chat.v2", "chat.v1"))
	addr := startWS(t, app)
	c := mustDial(t, addr, "/ws/l%C3%B6bby/7?q=a+b", "X-Test: yes", "Sec-WebSocket-Protocol: chat.v1, chat.v2")
	if got := c.header.Get("Sec-WebSocket-Protocol"); got != "chat.v2" {
		t.Fatalf("101 subprotocol %q", got)
	}
	var m map[string]string
	_, p, err := c.readMessage()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"room": "löbby", "user": "7", "missing": "", "q": "a b", "hdr": "yes",
		"path": "/ws/l%C3%B6bby/7", "uri": "/ws/l%C3%B6bby/7?q=a+b", "sub": "chat.v2"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if !strings.HasPrefix(m["remote"], "127.0.0.1:") {
		t.Errorf("remote %q", m["remote"])
	}
	// The handler returned: the socket closes with 1000.
	if code, _, err := c.expectClose(); err != nil || code != 1000 {
		t.Fatalf("close after return: %d %v", code, err)
	}
	// No common subprotocol: none chosen.
	c2 := mustDial(t, addr, "/ws/a/b", "Sec-WebSocket-Protocol: other")
	if got, ok := c2.header["Sec-Websocket-Protocol"]; ok {
		t.Fatalf("subprotocol %q chosen", got)
	}
}

func TestWSUpgradeHook(t *testing.T) {
	var logbuf syncBuffer
	app := quicklane.New(quicklane.WithErrorLog(log.New(&logbuf, "", 0)))
	var served atomic.Int32
	app.WS("/ws", func(c *quicklane.WSConn) error {
		served.Add(1)
		return c.WriteMessage(quicklane.TextMessage, []byte("sub="+c.Subprotocol()))
	}, quicklane.WSUpgrade(func(c *quicklane.Context, a *quicklane.WSAccept) error {
		switch c.Query("mode") {
		case "401":
			return c.JSON(401, map[string]string{"detail": "who are you"})
		case "403":
			return quicklane.NewHTTPError(403, "no entry")
		case "error":
			return errors.New("hook failed")
		case "panic":
			panic("hook panicked")
		case "badsub":
			a.Subprotocol = "never-offered"
		case "sub":
			if len(a.Offered) != 2 || a.Offered[1] != "b" {
				return quicklane.NewHTTPError(400, fmt.Sprint(a.Offered))
			}
			a.Subprotocol = a.Offered[1]
		}
		a.Header.Set("X-Accepted", "yes")
		return nil
	}))
	addr := startWS(t, app)
	for _, tc := range []struct {
		mode   string
		status int
		body   string
	}{
		{"401", 401, `{"detail":"who are you"}`},
		{"403", 403, `{"detail":"no entry"}`},
		{"error", 500, "*"},
		{"panic", 500, "*"},
		{"badsub", 500, "*"},
	} {
		c, err := dialWS(addr, "/ws?mode="+tc.mode, "Sec-WebSocket-Protocol: a")
		if err != nil {
			t.Fatal(tc.mode, err)
		}
		if c.status != tc.status || (tc.body != "*" && c.body != tc.body) {
			t.Fatalf("%s: %d %q", tc.mode, c.status, c.body)
		}
	}
	c := mustDial(t, addr, "/ws?mode=sub", "Sec-WebSocket-Protocol: a, b")
	if c.header.Get("X-Accepted") != "yes" || c.header.Get("Sec-WebSocket-Protocol") != "b" {
		t.Fatalf("101 headers %v", c.header)
	}
	if _, p, err := c.readMessage(); err != nil || string(p) != "sub=b" {
		t.Fatalf("%q %v", p, err)
	}
	if served.Load() != 1 {
		t.Fatalf("served %d, want 1", served.Load())
	}
	for _, want := range []string{"hook failed", "hook panicked", "never-offered"} {
		if !strings.Contains(logbuf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logbuf.String())
		}
	}
	// A plain GET of a WebSocket route: 426 from the core.
	res, err := http.Get("http://" + addr + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 426 {
		t.Fatalf("plain GET: %d", res.StatusCode)
	}
}

func TestWSCloseCodes(t *testing.T) {
	var logbuf syncBuffer
	app := quicklane.New(quicklane.WithErrorLog(log.New(&logbuf, "", 0)))
	got := make(chan error, 8)
	app.WS("/ws/{mode}", func(c *quicklane.WSConn) error {
		switch c.Param("mode") {
		case "read": // report how the client closed
			_, _, err := c.ReadMessage()
			got <- err
			if c.Context().Err() == nil {
				got <- errors.New("context not cancelled after the close")
			}
			if err2 := c.WriteMessage(quicklane.TextMessage, []byte("late")); err2 == nil {
				got <- errors.New("write after close succeeded")
			}
			return err
		case "close":
			if err := c.Close(4002, "done here"); err != nil {
				return err
			}
			if err := c.WriteMessage(quicklane.TextMessage, []byte("x")); !errors.Is(err, quicklane.ErrCloseSent) {
				got <- fmt.Errorf("write after Close: %v", err)
			}
			_, _, err := c.ReadMessage() // the client's answer
			got <- err
			return nil
		case "badcode":
			got <- c.Close(1005, "")
			return nil
		case "closemsg":
			return c.WriteMessage(quicklane.CloseMessage, quicklane.FormatCloseMessage(4003, "via message"))
		case "return":
			return nil
		case "error":
			return errors.New("handler failed")
		case "panic":
			panic("handler panicked")
		}
		return nil
	})
	addr := startWS(t, app)

	// The client closes with a code and reason.
	c := mustDial(t, addr, "/ws/read")
	c.sendClose(4001, "bye")
	if code, _, err := c.expectClose(); err != nil || code != 4001 {
		t.Fatalf("echoed close: %d %v", code, err)
	}
	err := <-got
	var ce *quicklane.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "bye" {
		t.Fatalf("ReadMessage: %#v", err)
	}
	if !quicklane.IsCloseError(err, 4001) || quicklane.IsUnexpectedCloseError(err, 4001) ||
		!quicklane.IsUnexpectedCloseError(err, 1000) || quicklane.IsCloseError(errors.New("x"), 4001) {
		t.Fatal("IsCloseError / IsUnexpectedCloseError")
	}
	expectNoMore(t, got)

	// A close frame without a code: 1005.
	c = mustDial(t, addr, "/ws/read")
	c.sendClose(0, "")
	c.expectClose()
	if err := <-got; !quicklane.IsCloseError(err, quicklane.CloseNoStatusReceived) {
		t.Fatalf("no code: %v", err)
	}
	expectNoMore(t, got)

	// The connection ends without a close frame: 1006.
	c = mustDial(t, addr, "/ws/read")
	c.Close()
	if err := <-got; !quicklane.IsCloseError(err, quicklane.CloseAbnormalClosure) {
		t.Fatalf("dropped: %v", err)
	}
	expectNoMore(t, got)

	// The server closes.
	c = mustDial(t, addr, "/ws/close")
	code, reason, err := c.expectClose()
	if err != nil || code != 4002 || reason != "done here" {
		t.Fatalf("server close: %d %q %v", code, reason, err)
	}
	c.sendClose(4002, "")
	if err := <-got; !quicklane.IsCloseError(err, 4002) {
		t.Fatalf("after Close, ReadMessage: %v", err)
	}
	expectNoMore(t, got)

	c = mustDial(t, addr, "/ws/closemsg")
	if code, reason, _ := c.expectClose(); code != 4003 || reason != "via message" {
		t.Fatalf("CloseMessage: %d %q", code, reason)
	}
	c.sendClose(4003, "")

	c = mustDial(t, addr, "/ws/badcode")
	if err := <-got; err == nil {
		t.Fatal("Close(1005) accepted")
	}
	if code, _, _ := c.expectClose(); code != 1000 {
		t.Fatalf("after a refused close code: %d", code)
	}
	c.sendClose(1000, "")

	for mode, want := range map[string]int{"return": 1000, "error": 1011, "panic": 1011} {
		c = mustDial(t, addr, "/ws/"+mode)
		if code, _, err := c.expectClose(); err != nil || code != want {
			t.Fatalf("%s: close %d %v, want %d", mode, code, err, want)
		}
		c.sendClose(want, "")
	}
	waitFor(t, "logs", func() bool {
		return strings.Contains(logbuf.String(), "handler failed") && strings.Contains(logbuf.String(), "handler panicked")
	})
	waitFor(t, "no live sockets", func() bool { return quicklane.WSLive(app) == 0 })
}

// Pings and pongs from the handler: control frames with their payload, in
// order with the messages; over 125 bytes refused; WriteControl's close.
func TestWSPingPong(t *testing.T) {
	app := quicklane.New(quiet)
	got := make(chan error, 8)
	app.WS("/ws/ping", func(c *quicklane.WSConn) error {
		deadline := time.Now().Add(time.Second)
		check := func(what string, err error, ok bool) {
			if !ok {
				got <- fmt.Errorf("%s: %v", what, err)
			}
		}
		err := c.WriteMessage(quicklane.TextMessage, []byte("before"))
		check("text", err, err == nil)
		err = c.WriteMessage(quicklane.PingMessage, []byte("p1"))
		check("WriteMessage ping", err, err == nil)
		err = c.WriteControl(quicklane.PongMessage, []byte("p2"), deadline)
		check("WriteControl pong", err, err == nil)
		err = c.WriteMessage(quicklane.PingMessage, nil)
		check("empty ping", err, err == nil)
		err = c.WriteControl(quicklane.PingMessage, bytes.Repeat([]byte("x"), 125), deadline)
		check("125-byte ping", err, err == nil)
		for _, mt := range []int{quicklane.PingMessage, quicklane.PongMessage} {
			err = c.WriteMessage(mt, make([]byte, 126))
			check("126-byte WriteMessage", err, err != nil && strings.Contains(err.Error(), "invalid control frame"))
			err = c.WriteControl(mt, make([]byte, 126), deadline)
			check("126-byte WriteControl", err, err != nil && strings.Contains(err.Error(), "invalid control frame"))
		}
		err = c.WriteControl(quicklane.TextMessage, []byte("x"), deadline)
		check("WriteControl text", err, err != nil)
		err = c.WriteMessage(quicklane.TextMessage, []byte("after"))
		check("text after", err, err == nil)
		err = c.WriteControl(quicklane.CloseMessage, quicklane.FormatCloseMessage(4005, "control close"), deadline)
		check("WriteControl close", err, err == nil)
		err = c.WriteControl(quicklane.PingMessage, []byte("late"), deadline)
		check("ping after the close", err, errors.Is(err, quicklane.ErrCloseSent))
		_, _, err = c.ReadMessage() // the client's answer
		check("the client's close", err, quicklane.IsCloseError(err, 4005))
		close(got)
		return nil
	})
	addr := startWS(t, app)
	c := mustDial(t, addr, "/ws/ping")
	want := []struct {
		op      byte
		payload string
	}{{1, "before"}, {9, "p1"}, {10, "p2"}, {9, ""}, {9, strings.Repeat("x", 125)}, {1, "after"}}
	for i, w := range want {
		op, p, err := c.readFrame(10 * time.Second)
		if err != nil || op != w.op || string(p) != w.payload {
			t.Fatalf("frame %d: op %d %q %v, want op %d %q", i, op, p, err, w.op, w.payload)
		}
	}
	code, reason, err := c.expectClose()
	if err != nil || code != 4005 || reason != "control close" {
		t.Fatalf("close: %d %q %v", code, reason, err)
	}
	c.sendClose(4005, "")
	for err := range got {
		t.Error(err)
	}
	waitFor(t, "no live sockets", func() bool { return quicklane.WSLive(app) == 0 })
}

func expectNoMore(t *testing.T, got chan error) {
	t.Helper()
	select {
	case err := <-got:
		t.Fatal(err)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestWSPubSub(t *testing.T) {
	app := quicklane.New(quicklane.WithWorkers(2), quiet)
	ready := make(chan *quicklane.WSConn, 8)
	app.WS("/ws/{topic}", func(c *quicklane.WSConn) error {
		if err := c.Subscribe(c.Param("topic")); err != nil {
			return err
		}
		ready <- c
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				return err
			}
			switch s := string(p); {
			case s == "leave":
				if err := c.Unsubscribe(c.Param("topic")); err != nil {
					return err
				}
				c.WriteMessage(quicklane.TextMessage, []byte("left"))
			case strings.HasPrefix(s, "others:"):
				n, err := c.Publish(c.Param("topic"), quicklane.TextMessage, p)
				if err != nil {
					return err
				}
				c.WriteMessage(quicklane.TextMessage, []byte("sent to "+strconv.Itoa(n)))
			}
		}
	})
	if _, err := app.Publish("t", quicklane.TextMessage, []byte("x")); !errors.Is(err, quicklane.ErrNotServing) {
		t.Fatalf("Publish before Start: %v", err)
	}
	addr := startWS(t, app)
	var cs []*wsClient
	for i := 0; i < 3; i++ {
		cs = append(cs, mustDial(t, addr, "/ws/news"))
		<-ready
	}
	other := mustDial(t, addr, "/ws/sport")
	<-ready
	// Subscriptions take effect on their loops: probe with empty messages
	// (the clients skip them) until all three count.
	waitFor(t, "3 subscribers", func() bool {
		n, err := app.Publish("news", quicklane.BinaryMessage, nil)
		return err == nil && n == 3
	})
	// From other goroutines, at once.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if _, err := app.Publish("news", quicklane.TextMessage, []byte(fmt.Sprintf("g%d-%d", g, i))); err != nil {
					t.Error(err)
				}
			}
		}(g)
	}
	wg.Wait()
	for k, c := range cs {
		seen := map[string]bool{}
		last := map[string]int{}
		for i := 0; i < 100; i++ {
			_, p, err := c.readNonEmpty()
			if err != nil {
				t.Fatalf("subscriber %d after %d: %v", k, i, err)
			}
			seen[string(p)] = true
			var g, n int
			fmt.Sscanf(string(p), "g%d-%d", &g, &n)
			if prev, ok := last[strconv.Itoa(g)]; ok && n <= prev {
				t.Fatalf("goroutine %d's messages out of order: %d after %d", g, n, prev)
			}
			last[strconv.Itoa(g)] = n
		}
		if len(seen) != 100 {
			t.Fatalf("subscriber %d saw %d distinct", k, len(seen))
		}
	}
	if other.quiet(100*time.Millisecond) == false {
		t.Fatal("another topic heard news")
	}
	// c.Publish reaches the others, not the sender.
	cs[0].sendText("others: hi")
	if _, p, _ := cs[0].readNonEmpty(); string(p) != "sent to 2" {
		t.Fatalf("sender got %q", p)
	}
	for _, c := range cs[1:] {
		if _, p, _ := c.readNonEmpty(); string(p) != "others: hi" {
			t.Fatalf("member got %q", p)
		}
	}
	// Unsubscribe.
	cs[2].sendText("leave")
	if _, p, _ := cs[2].readNonEmpty(); string(p) != "left" {
		t.Fatalf("%q", p)
	}
	waitFor(t, "unsubscribed", func() bool {
		n, _ := app.Publish("news", quicklane.BinaryMessage, nil)
		return n == 2
	})
	for _, c := range cs {
		c.skipEmpty(100 * time.Millisecond)
	}
	n, err := app.Publish("news", quicklane.BinaryMessage, []byte{1, 2})
	if err != nil || n != 2 {
		t.Fatalf("publish after leave: %d %v", n, err)
	}
	for _, c := range cs[:2] {
		if op, p, _ := c.readNonEmpty(); op != 2 || !bytes.Equal(p, []byte{1, 2}) {
			t.Fatalf("binary publish: %d %v", op, p)
		}
	}
	if !cs[2].quiet(100 * time.Millisecond) {
		t.Fatal("an unsubscribed socket got a publish")
	}
	if _, err := app.Publish("news", quicklane.TextMessage, []byte{0xff}); err == nil {
		t.Fatal("invalid UTF-8 text published")
	}
}

// readNonEmpty is readMessage skipping empty messages (probes).
func (c *wsClient) readNonEmpty() (byte, []byte, error) {
	for {
		op, p, err := c.readMessage()
		if err != nil || len(p) > 0 {
			return op, p, err
		}
	}
}

// skipEmpty reads empty messages until none came for d.
func (c *wsClient) skipEmpty(d time.Duration) {
	for {
		_, p, err := c.readFrame(d)
		if err != nil || len(p) > 0 {
			if err == nil {
				panic(fmt.Sprintf("unexpected message %q", p))
			}
			return
		}
	}
}

// quiet reports whether nothing arrives for d.
func (c *wsClient) quiet(d time.Duration) bool {
	_, _, err := c.readFrame(d)
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A client that never reads: WriteMessage blocks once WSMaxBackpressure
// bytes wait (plus what the kernel holds), and returns an error when the
// client goes.
func TestWSBackpressureBlocks(t *testing.T) {
	app := quicklane.New(quiet)
	var written atomic.Int64
	result := make(chan error, 1)
	app.WS("/ws/flood", func(c *quicklane.WSConn) error {
		chunk := make([]byte, 64<<10)
		for {
			if err := c.WriteMessage(quicklane.BinaryMessage, chunk); err != nil {
				result <- err
				return err
			}
			written.Add(int64(len(chunk)))
		}
	}, quicklane.WSMaxBackpressure(256<<10))
	addr := startWS(t, app)
	c := mustDial(t, addr, "/ws/flood")
	if tc, ok := c.conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(64 << 10)
	}
	// The writer stalls: nothing more is written for 300 ms.
	var prev int64 = -1
	deadline := time.Now().Add(10 * time.Second)
	for {
		time.Sleep(300 * time.Millisecond)
		n := written.Load()
		if n == prev {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer never blocked: %d bytes written", n)
		}
		prev = n
	}
	if prev > 64<<20 {
		t.Fatalf("%d bytes accepted for a client that never reads", prev)
	}
	select {
	case err := <-result:
		t.Fatalf("the writer returned while the client was there: %v", err)
	default:
	}
	c.Close()
	select {
	case err := <-result:
		if !quicklane.IsCloseError(err, quicklane.CloseAbnormalClosure) {
			t.Fatalf("blocked write ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked writer did not return after the client left")
	}
	waitFor(t, "no live sockets", func() bool { return quicklane.WSLive(app) == 0 })
}

// A slow reader gets everything, in order, with the writer paced by it.
func TestWSBackpressureSlowReader(t *testing.T) {
	app := quicklane.New(quiet)
	const n, size = 200, 32 << 10
	app.WS("/ws", func(c *quicklane.WSConn) error {
		for i := 0; i < n; i++ {
			msg := bytes.Repeat([]byte{byte(i)}, size)
			if err := c.WriteMessage(quicklane.BinaryMessage, msg); err != nil {
				return err
			}
		}
		_, _, err := c.ReadMessage()
		return err
	}, quicklane.WSMaxBackpressure(64<<10))
	addr := startWS(t, app)
	c := mustDial(t, addr, "/ws")
	for i := 0; i < n; i++ {
		if i%50 == 0 {
			time.Sleep(50 * time.Millisecond)
		}
		_, p, err := c.readMessage()
		if err != nil {
			t.Fatal(i, err)
		}
		if len(p) != size || p[0] != byte(i) || p[size-1] != byte(i) {
			t.Fatalf("message %d: %d bytes, first %d", i, len(p), p[0])
		}
	}
}

// Many goroutines write to one socket at once: every message arrives whole.
func TestWSConcurrentWriters(t *testing.T) {
	app := quicklane.New(quiet)
	app.WS("/ws", func(c *quicklane.WSConn) error {
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 100; i++ {
					c.WriteMessage(quicklane.TextMessage, []byte(fmt.Sprintf("%d:%d:%s", g, i, strings.Repeat("z", 1000))))
				}
			}(g)
		}
		wg.Wait()
		_, _, err := c.ReadMessage()
		return err
	}, quicklane.WSMaxBackpressure(16<<10))
	addr := startWS(t, app)
	c := mustDial(t, addr, "/ws")
	next := make([]int, 8)
	for k := 0; k < 800; k++ {
		_, p, err := c.readMessage()
		if err != nil {
			t.Fatal(err)
		}
		var g, i int
		if _, err := fmt.Sscanf(string(p), "%d:%d:", &g, &i); err != nil || len(p) < 1000 {
			t.Fatalf("message %q", p[:min(len(p), 20)])
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: message %d, want %d", g, i, next[g])
		}
		next[g]++
	}
}

func TestWSMaxMessage(t *testing.T) {
	app := quicklane.New(quiet)
	got := make(chan error, 1)
	app.WS("/ws", func(c *quicklane.WSConn) error {
		_, p, err := c.ReadMessage()
		if err == nil && len(p) == 1024 {
			_, _, err = c.ReadMessage()
		}
		got <- err
		return err
	}, quicklane.WSMaxMessageBytes(1024))
	addr := startWS(t, app)
	c := mustDial(t, addr, "/ws")
	c.sendBinary(make([]byte, 1024))
	c.sendBinary(make([]byte, 1025))
	if code, _, _ := c.expectClose(); code != 1009 {
		t.Fatalf("close %d, want 1009", code)
	}
	if err := <-got; !quicklane.IsCloseError(err, quicklane.CloseMessageTooBig) {
		t.Fatalf("ReadMessage: %v", err)
	}
}

func TestWSOptionsValidated(t *testing.T) {
	for name, opt := range map[string]quicklane.WSOption{
		"WSMaxMessageBytes":  quicklane.WSMaxMessageBytes(0),
		"WSMaxBackpressure":  quicklane.WSMaxBackpressure(10),
		"WSIdleTimeout":      quicklane.WSIdleTimeout(10 * time.Millisecond),
		"WSPingInterval":     quicklane.WSPingInterval(time.Millisecond),
		"WSCompress(9":       quicklane.WSCompress(9, 0),
		"windowBits must be": quicklane.WSCompress(quicklane.CompressDedicated, 20),
		"needs CompressDed":  quicklane.WSCompress(quicklane.CompressShared, 10),
	} {
		app := quicklane.New(quiet)
		app.WS("/ws", echoHandler, opt)
		err := app.Start("127.0.0.1:0")
		if err == nil {
			app.Shutdown(context.Background())
			t.Fatalf("%s: accepted", name)
		}
		if !strings.Contains(err.Error(), name) {
			t.Fatalf("%s: error %q does not name it", name, err)
		}
	}
	// A WebSocket route conflicting with a route: reported by Start.
	app := quicklane.New(quiet)
	app.WS("/ws", echoHandler)
	app.WS("/ws", echoHandler)
	if err := app.Start("127.0.0.1:0"); err == nil {
		app.Shutdown(context.Background())
		t.Fatal("duplicate WebSocket route accepted")
	}
}

func TestWSCompressionNegotiated(t *testing.T) {
	app := quicklane.New(quiet)
	app.WS("/ws", echoHandler, quicklane.WSCompress(quicklane.CompressDedicated, 10), quicklane.WSIdleTimeout(5*time.Second))
	addr := startWS(t, app)
	c := mustDial(t, addr, "/ws", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
	if ext := c.header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("extensions %q", ext)
	}
	plain := mustDial(t, addr, "/ws")
	if ext := plain.header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("extensions %q without an offer", ext)
	}
}

func TestWSRulesOnUpgrade(t *testing.T) {
	app := quicklane.New(quiet)
	app.APIKeys([]string{"k1"}, "", "key")
	app.WS("/ws", echoHandler, quicklane.WSRules(quicklane.RequireAPIKey()))
	addr := startWS(t, app)
	c, err := dialWS(addr, "/ws")
	if err != nil || c.status != 401 {
		t.Fatalf("without a key: %v %v", c, err)
	}
	mustDial(t, addr, "/ws?key=k1")
}

// Abort at every phase: before the accept, before the 101 went out, during
// a blocked write (TestWSBackpressureBlocks), during publishes.
func TestWSAbortPhases(t *testing.T) {
	app := quicklane.New(quicklane.WithWorkers(2), quiet)
	var served atomic.Int32
	app.WS("/ws/{phase}", func(c *quicklane.WSConn) error {
		served.Add(1)
		if c.Param("phase") == "hook" {
			t.Errorf("served a socket whose client reset before the 101")
		}
		if err := c.Subscribe("all"); err != nil {
			return err
		}
		return echoHandler(c)
	}, quicklane.WSUpgrade(func(c *quicklane.Context, a *quicklane.WSAccept) error {
		if c.Param("phase") == "hook" {
			time.Sleep(300 * time.Millisecond) // the client leaves meanwhile
		}
		return nil
	}))
	addr := startWS(t, app)

	// Before the accept: the client resets the connection while the hook
	// runs. (The core does not read a connection behind an upgrade request,
	// so neither the hook's context nor the accept can tell; the 101 finds
	// no client and the socket never opens: the Go side gives it up.)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /ws/hook HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	time.Sleep(300 * time.Millisecond)
	waitFor(t, "the unopened socket given up", func() bool { return quicklane.WSLive(app) == 0 })

	// Bytes pipelined behind the upgrade are the socket's first frames: not
	// a WebSocket frame here, so the core closes it with 1002.
	conn, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /ws/piped HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
	piped := &wsClient{conn: conn, r: bufio.NewReader(conn)}
	if res, err := http.ReadResponse(piped.r, nil); err != nil || res.StatusCode != 101 {
		t.Fatalf("piped upgrade: %v %v", res, err)
	}
	if code, _, err := piped.expectClose(); code != 1002 {
		t.Fatalf("piped: close %d %v", code, err)
	}
	conn.Close()
	served.Store(0)

	// During publishes: subscribers come and go while goroutines publish.
	stop := make(chan struct{})
	var pubs sync.WaitGroup
	for g := 0; g < 3; g++ {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			msg := bytes.Repeat([]byte("p"), 4096)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := app.Publish("all", quicklane.TextMessage, msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var clients sync.WaitGroup
	for i := 0; i < 40; i++ {
		clients.Add(1)
		go func(i int) {
			defer clients.Done()
			c, err := dialWS(addr, "/ws/pub")
			if err != nil || c.status != 101 {
				return // the connection may be cut while publishing
			}
			if i%2 == 0 {
				c.readMessage() // read one, then vanish
			}
			c.Close()
		}(i)
	}
	clients.Wait()
	close(stop)
	pubs.Wait()
	waitFor(t, "no live sockets", func() bool { return quicklane.WSLive(app) == 0 })
	if served.Load() == 0 {
		t.Fatal("no socket served")
	}
}

// Shutdown with open sockets: each gets 1001 and its handler returns.
func TestWSShutdown(t *testing.T) {
	app := quicklane.New(quiet)
	returned := make(chan error, 4)
	app.WS("/ws", func(c *quicklane.WSConn) error {
		_, _, err := c.ReadMessage()
		returned <- err
		return err
	})
	if err := app.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	var cs []*wsClient
	for i := 0; i < 3; i++ {
		c, err := dialWS(app.Addr(), "/ws")
		if err != nil || c.status != 101 {
			t.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	waitFor(t, "3 sockets", func() bool { return quicklane.WSLive(app) == 3 })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- app.Shutdown(ctx)
	}()
	for _, c := range cs {
		code, _, err := c.expectClose()
		if err != nil || code != 1001 {
			t.Fatalf("close %d %v, want 1001", code, err)
		}
		c.sendClose(1001, "")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for range cs {
		if err := <-returned; !quicklane.IsCloseError(err, 1001) {
			t.Fatalf("handler saw %v", err)
		}
	}
}

// Thousands of sockets at once, then none: no socket, handle or goroutine
// is left.
func TestWSManySockets(t *testing.T) {
	const n = 2000
	app := quicklane.New(quicklane.WithWorkers(2), quiet)
	app.WS("/ws/echo", echoHandler)
	// A first round, so lazily made runtime threads and pools are counted.
	if err := app.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c0, err := dialWS(app.Addr(), "/ws/echo")
	if err != nil {
		t.Fatal(err)
	}
	c0.Close()
	waitFor(t, "first round closed", func() bool { return quicklane.WSLive(app) == 0 })
	app.Shutdown(context.Background())
	before := runtime.NumGoroutine()

	addr := startWS(t, app)
	cs := make([]*wsClient, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := range cs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := dialWS(addr, "/ws/echo")
			if err != nil || c.status != 101 {
				errs <- fmt.Errorf("dial %d: %v", i, err)
				return
			}
			cs[i] = c
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if live := quicklane.WSLive(app); live < n-10 { // the last opens may still be on their way
		waitFor(t, "all open", func() bool { return quicklane.WSLive(app) == n })
	}
	for i, c := range cs {
		wg.Add(1)
		go func(i int, c *wsClient) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			msg := "m" + strconv.Itoa(i)
			c.sendText(msg)
			if _, p, err := c.readMessage(); err != nil || string(p) != msg {
				t.Errorf("socket %d: %q %v", i, p, err)
			}
			if i%2 == 0 {
				c.sendClose(1000, "")
				c.expectClose()
			}
			c.Close()
		}(i, c)
	}
	wg.Wait()
	waitFor(t, "no live sockets", func() bool { return quicklane.WSLive(app) == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("goroutines: %d before, %d after", before, g)
	}
	if native, goSide := quicklane.InFlight(app); native != 0 || goSide != 0 {
		t.Fatalf("in flight after: %d native, %d Go", native, goSide)
	}
}

// syncBuffer is a bytes.Buffer for a logger written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Inbound backpressure: messages stay in the core until ReadMessage takes
// them, so a handler that does not read makes the core stop reading the
// socket (the client's writes stall); once it reads, everything arrives.
func TestWSInboundBackpressure(t *testing.T) {
	app := quicklane.New(quiet)
	const n, size = 400, 64 << 10
	start := make(chan struct{})
	got := make(chan int, 1)
	app.WS("/ws", func(c *quicklane.WSConn) error {
		<-start
		total := 0
		for i := 0; i < n; i++ {
			_, p, err := c.ReadMessage()
			if err != nil {
				return err
			}
			if len(p) != size || p[0] != byte(i) {
				return fmt.Errorf("message %d: %d bytes, first %d", i, len(p), p[0])
			}
			total += len(p)
		}
		got <- total
		return nil
	}, quicklane.WSMaxBackpressure(128<<10))
	addr := startWS(t, app)
	c := mustDial(t, addr, "/ws")
	sent := make(chan int, n)
	go func() {
		for i := 0; i < n; i++ {
			if c.sendBinary(bytes.Repeat([]byte{byte(i)}, size)) != nil {
				return
			}
			sent <- i
		}
	}()
	// The writer stalls well before the 25 MiB are out.
	last, deadline := -1, time.Now().Add(10*time.Second)
	for stalled := false; !stalled; {
		select {
		case i := <-sent:
			last = i
			if i == n-1 {
				t.Fatalf("all %d messages taken while the handler read none", n)
			}
		case <-time.After(300 * time.Millisecond):
			stalled = true
		}
		if time.Now().After(deadline) {
			t.Fatal("the client's writes never stalled")
		}
	}
	close(start)
	select {
	case total := <-got:
		if total != n*size {
			t.Fatalf("read %d bytes", total)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the handler did not get every message (the client sent %d before the stall)", last+1)
	}
}

// Messages bigger than the backpressure limit go out whole, one after the
// other, to a client that reads slowly.
func TestWSMessagesOverTheLimit(t *testing.T) {
	app := quicklane.New(quiet)
	const n, size = 8, 2 << 20
	app.WS("/ws", func(c *quicklane.WSConn) error {
		for i := 0; i < n; i++ {
			if err := c.WriteMessage(quicklane.BinaryMessage, bytes.Repeat([]byte{byte(i)}, size)); err != nil {
				return err
			}
		}
		_, _, err := c.ReadMessage()
		return err
	}, quicklane.WSMaxBackpressure(256<<10))
	addr := startWS(t, app)
	c := mustDial(t, addr, "/ws")
	for i := 0; i < n; i++ {
		time.Sleep(20 * time.Millisecond)
		_, p, err := c.readMessage()
		if err != nil || len(p) != size || p[0] != byte(i) || p[size-1] != byte(i) {
			t.Fatalf("message %d: %d bytes, %v", i, len(p), err)
		}
	}
}
