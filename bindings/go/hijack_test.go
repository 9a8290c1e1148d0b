package quicklane_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	quicklane "github.com/quicklane/quicklane/bindings/go"
)

// A handler that hijacks speaks its own protocol over the connection: here
// a line echo, after a 101 given to WriteHeader (as coder/websocket does).
func TestHijackEcho(t *testing.T) {
	ended := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /raw", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Upgrade", "lines")
		w.Header().Set("Connection", "Upgrade")
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrHijacked) {
			t.Errorf("Write after Hijack: %v", err)
		}
		if _, _, err := w.(http.Hijacker).Hijack(); !errors.Is(err, http.ErrHijacked) {
			t.Errorf("second Hijack: %v", err)
		}
		go func() { // the connection outlives the handler
			defer conn.Close()
			for {
				line, err := brw.ReadString('\n')
				if err != nil {
					ended <- err
					return
				}
				brw.WriteString("echo: " + line)
				if err := brw.Flush(); err != nil {
					ended <- err
					return
				}
			}
		}()
	})
	app := quicklane.Mount(quicklane.New(quiet), mux)
	addr := startWS(t, app)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Bytes behind the request (sent with it) are the connection's first.
	fmt.Fprintf(conn, "GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: lines\r\nConnection: Upgrade\r\n\r\nearly\n")
	r := bufio.NewReader(conn)
	res, err := http.ReadResponse(r, nil)
	if err != nil || res.StatusCode != 101 || res.Header.Get("Upgrade") != "lines" {
		t.Fatalf("%v %v", res, err)
	}
	if len(res.Header["Content-Length"]) != 0 || len(res.Header["Date"]) != 0 {
		t.Fatalf("101 carries core headers: %v", res.Header)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "echo: early\n" {
		t.Fatalf("%q %v", line, err)
	}
	big := strings.Repeat("b", 3<<20) + "\n"
	go io.WriteString(conn, big)
	if line, err := r.ReadString('\n'); err != nil || line != "echo: "+big {
		t.Fatalf("big line: %d bytes, %v", len(line), err)
	}
	conn.(*net.TCPConn).CloseWrite()
	select {
	case err := <-ended:
		if err != io.EOF {
			t.Fatalf("the hijacker's read ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hijacker did not see the end")
	}
	// It closed: the client sees the end too.
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after the server's close: %v", err)
	}
	waitFor(t, "no live connections", func() bool { return quicklane.WSLive(app) == 0 })
}

// Deadlines, Close while a Read waits, and the server's end of the
// connection (gorilla/websocket relies on deadlines).
func TestHijackDeadlinesAndClose(t *testing.T) {
	type result struct {
		what string
		err  error
	}
	results := make(chan result, 8)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		if a, ok := conn.RemoteAddr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() || a.Port == 0 {
			t.Errorf("RemoteAddr %v", conn.RemoteAddr())
		}
		conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err = conn.Read(make([]byte, 10))
		results <- result{"deadline", err}
		conn.SetReadDeadline(time.Time{})
		go func() {
			time.Sleep(50 * time.Millisecond)
			conn.Close()
		}()
		_, err = conn.Read(make([]byte, 10))
		results <- result{"closed", err}
		_, err = conn.Write([]byte("x"))
		results <- result{"write after close", err}
	})
	addr := startWS(t, quicklane.Mount(quicklane.New(quiet), mux))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /h HTTP/1.1\r\nHost: x\r\n\r\n")
	r := <-results
	if !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: %v", r.what, r.err)
	}
	var ne net.Error
	if !errors.As(r.err, &ne) || !ne.Timeout() {
		t.Fatalf("deadline error is not a timeout: %v", r.err)
	}
	for _, want := range []string{"closed", "write after close"} {
		r = <-results
		if r.what != want || !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("%s: %v", r.what, r.err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(conn); err != nil || len(b) != 0 {
		t.Fatalf("client read %q %v (the core said nothing for the request)", b, err)
	}
}

// A client that never reads: the hijacker's writes block, and fail once the
// client resets; the server's stop ends a connection its owner never closes.
func TestHijackBackpressureAndShutdown(t *testing.T) {
	wrote := make(chan error, 1)
	held := make(chan net.Conn, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /flood", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		chunk := bytes.Repeat([]byte("f"), 64<<10)
		var total int
		for {
			n, err := conn.Write(chunk)
			total += n
			if err != nil {
				if total > 256<<20 {
					err = fmt.Errorf("%d bytes taken for a client that never reads", total)
				}
				wrote <- err
				return
			}
		}
	})
	mux.HandleFunc("GET /hold", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		held <- conn // never closed by its owner
	})
	app := quicklane.Mount(quicklane.New(quiet), mux)
	if err := app.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", app.Addr())
	if err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).SetReadBuffer(64 << 10)
	fmt.Fprintf(conn, "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-wrote:
		t.Fatalf("the writer did not block: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	select {
	case err := <-wrote:
		if !errors.Is(err, net.ErrClosed) && !strings.Contains(fmt.Sprint(err), "broken pipe") {
			t.Fatalf("blocked write ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked write did not end when the client left")
	}

	c2, err := net.Dial("tcp", app.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
	h := <-held
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Read(make([]byte, 1)); err == nil {
		t.Fatal("a read of a connection the server stopped succeeded")
	}
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Fatal("the client's connection survived the stop")
	}
}

// Requests pipelined behind a hijacking one: the connection cannot be handed
// over, and Hijack says so (the core's close event of a socket that never
// switched).
func TestHijackPipelinedBehind(t *testing.T) {
	got := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		got <- err
	})
	app := quicklane.Mount(quicklane.New(quiet), mux)
	addr := startWS(t, app)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /h HTTP/1.1\r\nHost: x\r\n\r\nGET /other HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("hijacked a connection with a request pipelined behind")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Hijack did not return")
	}
	waitFor(t, "no live connections", func() bool { return quicklane.WSLive(app) == 0 })
}
