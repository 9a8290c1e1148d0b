package quicklane_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	quicklane "github.com/quicklane/quicklane/bindings/go"
)

// getAll reads a whole answer; err is the body's read error (a cut stream).
func getAll(t *testing.T, url string) (*http.Response, string, error) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

func TestStreamGinStyle(t *testing.T) {
	app := quicklane.New(quiet)
	app.GET("/ticks", func(c *quicklane.Context) error {
		c.SetHeader("Content-Type", "text/plain")
		i := 0
		gone := c.Stream(func(w io.Writer) bool {
			fmt.Fprintf(w, "tick %d\n", i)
			i++
			return i < 5
		})
		if gone {
			t.Error("Stream reported a client that left")
		}
		return nil
	})
	base := start(t, app)
	res, body, err := getAll(t, base+"/ticks")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("%v %d", err, res.StatusCode)
	}
	if want := "tick 0\ntick 1\ntick 2\ntick 3\ntick 4\n"; body != want {
		t.Fatalf("body %q, want %q", body, want)
	}
	if res.Header.Get("Content-Type") != "text/plain" || len(res.TransferEncoding) != 1 || res.TransferEncoding[0] != "chunked" {
		t.Fatalf("head %v %v", res.Header, res.TransferEncoding)
	}
	noneInFlight(t, app)
}

func TestEventStreamFraming(t *testing.T) {
	app := quicklane.New(quiet)
	bad := make(chan [2]error, 1)
	app.GET("/events", func(c *quicklane.Context) error {
		w, err := c.EventStream(0)
		if err != nil {
			return err
		}
		bad <- [2]error{w.Event(quicklane.ServerSentEvent{Event: "x\ny", Data: "no"}),
			w.Event(quicklane.ServerSentEvent{ID: "1\r", Data: "no"})}
		if err := w.Event(quicklane.ServerSentEvent{Event: "multi", ID: "7", Retry: 1500 * time.Millisecond,
			Data: "a\r\nb\rc\nd"}); err != nil {
			return err
		}
		if err := w.Comment("keep\nalive"); err != nil {
			return err
		}
		return c.SSEvent("obj", map[string]int{"n": 1})
	})
	base := start(t, app)
	res, body, err := getAll(t, base+"/events")
	if err != nil {
		t.Fatal(err)
	}
	if res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("head %v", res.Header)
	}
	want := "event: multi\nid: 7\nretry: 1500\ndata: a\ndata: b\ndata: c\ndata: d\n\n" +
		": keep\n: alive\n\n" +
		"event: obj\ndata: {\"n\":1}\n\n"
	if body != want {
		t.Fatalf("body\n%q\nwant\n%q", body, want)
	}
	if e := <-bad; e[0] == nil || e[1] == nil {
		t.Fatalf("line breaks in event/id accepted: %v", e)
	}
}

func TestEventStreamPings(t *testing.T) {
	app := quicklane.New(quiet)
	app.GET("/idle", func(c *quicklane.Context) error {
		w, err := c.EventStream(20 * time.Millisecond)
		if err != nil {
			return err
		}
		time.Sleep(150 * time.Millisecond)
		return w.Event(quicklane.ServerSentEvent{Data: "done"})
	})
	base := start(t, app)
	_, body, err := getAll(t, base+"/idle")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, ": ping\n\n") || !strings.HasSuffix(body, "data: done\n\n") {
		t.Fatalf("body %q", body)
	}
}

// A client that does not read holds the producer back: what the handler
// wrote is bounded by the core's high-water mark plus the kernel's socket
// buffers, and it all arrives once the client reads.
func TestStreamBackpressureAndDrain(t *testing.T) {
	const total = 32 << 20
	var produced atomic.Int64
	app := quicklane.New(quiet)
	app.GET("/big", func(c *quicklane.Context) error {
		w, err := c.StreamWriter(200, "")
		if err != nil {
			return err
		}
		block := make([]byte, 64<<10)
		for produced.Load() < total {
			if _, err := w.Write(block); err != nil {
				return err
			}
			produced.Add(int64(len(block)))
		}
		return w.Close()
	})
	base := start(t, app)
	rc := dialRaw(t, base)
	if err := rc.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	p1 := produced.Load()
	time.Sleep(200 * time.Millisecond)
	p2 := produced.Load()
	if p2 != p1 || p2 > 24<<20 {
		t.Fatalf("the producer ran ahead of a client that does not read: %d then %d bytes", p1, p2)
	}
	res, body := rc.answer(20 * time.Second)
	if res == nil || len(body) != total {
		t.Fatalf("got %d bytes (%v)", len(body), res)
	}
	noneInFlight(t, app)
}

// The client leaving while the producer waits for a drain ends the wait:
// the write fails and the context is cancelled.
func TestStreamClientLeavesWhileProducerWaits(t *testing.T) {
	ended := make(chan error, 1)
	waiting := make(chan struct{})
	app := quicklane.New(quiet)
	app.GET("/big", func(c *quicklane.Context) error {
		w, err := c.StreamWriter(200, "")
		if err != nil {
			return err
		}
		block := make([]byte, 256<<10)
		var n int
		for {
			if _, err := w.Write(block); err != nil {
				ended <- err
				return err
			}
			if n++; n == 200 { // 50 MiB: well past what the socket takes
				close(waiting)
			}
		}
	})
	base := start(t, app)
	rc := dialRaw(t, base)
	if err := rc.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waiting:
		t.Fatal("the producer was never held back")
	case <-time.After(400 * time.Millisecond):
	}
	rc.c.Close()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("write succeeded after the client left")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the producer still waits after the client left")
	}
	noneInFlight(t, app)
}

// A handler that fails after the answer started streaming cuts it: the
// client sees an incomplete message, never a clean end.
func TestStreamFailureMidStreamCuts(t *testing.T) {
	app := quicklane.New(quiet)
	app.GET("/panic", func(c *quicklane.Context) error {
		w, _ := c.StreamWriter(200, "text/plain")
		io.WriteString(w, "partial")
		w.Flush()
		panic("boom")
	})
	app.GET("/error", func(c *quicklane.Context) error {
		w, _ := c.StreamWriter(200, "text/plain")
		io.WriteString(w, "partial")
		w.Flush()
		return errors.New("the source failed")
	})
	app.GET("/abort", func(c *quicklane.Context) error {
		w, _ := c.StreamWriter(200, "text/plain")
		io.WriteString(w, "partial")
		w.Flush()
		w.Abort()
		if _, err := w.Write([]byte("more")); !errors.Is(err, quicklane.ErrStreamClosed) {
			t.Errorf("write after Abort: %v", err)
		}
		return nil
	})
	app.GET("/http", quicklane.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})))
	base := start(t, app)
	for _, p := range []string{"/panic", "/error", "/abort", "/http"} {
		_, body, err := getAll(t, base+p)
		if !errors.Is(err, io.ErrUnexpectedEOF) || body != "partial" {
			t.Errorf("%s: body %q, err %v; want \"partial\" and an unexpected EOF", p, body, err)
		}
	}
	noneInFlight(t, app)
	expect(t, do(t, "GET", base+"/missing", ""), 404, "*") // the server goes on
}
