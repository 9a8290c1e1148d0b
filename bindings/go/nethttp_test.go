package quicklane_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	quicklane "github.com/quicklane/quicklane/bindings/go"
)

func serveMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Proto", r.Proto)
		json.NewEncoder(w).Encode(map[string]string{
			"id": r.PathValue("id"), "q": r.URL.Query().Get("q"), "host": r.Host,
			"agent": r.Header.Get("X-Agent"), "uri": r.RequestURI,
			"remote": fmt.Sprint(strings.HasPrefix(r.RemoteAddr, "127.0.0.1:")),
		})
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%d:%d:%s", r.ContentLength, len(b), b)
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		f, ok := w.(http.Flusher)
		if !ok {
			http.Error(w, "no flusher", 500)
			return
		}
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "chunk%d\n", i)
			f.Flush()
		}
	})
	mux.HandleFunc("GET /html", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<!DOCTYPE html><html><body>hi</body></html>")
	})
	mux.HandleFunc("DELETE /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "999") // owned by the core: dropped
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "root") })
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("mux panic") })
	mux.HandleFunc("GET /ctx", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		default:
			io.WriteString(w, "live")
		}
	})
	return mux
}

func TestHandlerAdapterServeMux(t *testing.T) {
	app := quicklane.New(quicklane.WithWorkers(2), quiet)
	app.Static("GET", "/ping", "application/json", []byte(`{"message":"pong"}`))
	quicklane.Mount(app, serveMux())
	base := start(t, app)

	expect(t, do(t, "GET", base+"/ping", ""), 200, `{"message":"pong"}`)
	r := do(t, "GET", base+"/items/7?q=a%20b", "", "X-Agent", "t")
	expect(t, r, 200, "*")
	var got map[string]string
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatal(err, r.body)
	}
	if got["id"] != "7" || got["q"] != "a b" || got["agent"] != "t" || got["uri"] != "/items/7?q=a%20b" ||
		got["remote"] != "true" || !strings.HasPrefix(got["host"], "127.0.0.1:") {
		t.Fatalf("%v", got)
	}
	if r.header.Get("X-Proto") != "HTTP/1.1" || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%v", r.header)
	}
	expect(t, do(t, "POST", base+"/upload", "hello"), 201, "5:5:hello")
	r = do(t, "GET", base+"/stream", "")
	expect(t, r, 200, "chunk0\nchunk1\nchunk2\n")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("sniffed %q", ct)
	}
	r = do(t, "GET", base+"/html", "")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("sniffed %q", ct)
	}
	expect(t, do(t, "DELETE", base+"/items/3", ""), 204, "")
	expect(t, do(t, "GET", base+"/missing", ""), 404, "404 page not found\n") // the mux's own 404
	expect(t, do(t, "PUT", base+"/items/3", ""), 405, "*")                    // the mux's own 405
	expect(t, do(t, "GET", base+"/panic", ""), 500, "*")
	expect(t, do(t, "GET", base+"/ctx", ""), 200, "live")
	expect(t, do(t, "GET", base+"/", ""), 200, "root")
}

func TestListenAndServe(t *testing.T) {
	// ListenAndServe blocks; a fixed port is needed, so take one from the kernel first.
	app := quicklane.New(quiet)
	if err := app.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := app.Addr()
	if err := app.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- quicklane.ListenAndServe(addr, serveMux(), quiet) }()
	deadline := time.Now().Add(3 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/items/1")
		if err == nil {
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatal(res.Status)
			}
			break
		}
		select {
		case err := <-errc:
			t.Fatal(err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// the server of ListenAndServe runs until the process ends, as with net/http
}

func TestHandlerAdapterContextCancelled(t *testing.T) {
	entered, cancelled := make(chan struct{}, 1), make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	})
	base := start(t, quicklane.Mount(quicklane.New(quiet), mux))
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered
	conn.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("r.Context() not cancelled")
	}
}

// A handler that flushes streams: the first part reaches the client while
// the handler is still running, and the rest follows as chunks.
func TestHandlerAdapterStreamsOnFlush(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: part1\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(5 * time.Second):
			io.WriteString(w, "data: timeout\n\n")
			return
		}
		io.WriteString(w, "data: part2\n\n")
		// a large tail goes out in several chunks through the 32 KiB buffer
		io.WriteString(w, strings.Repeat("x", 100<<10))
	})
	app := quicklane.New(quicklane.WithWorkers(1), quiet)
	quicklane.Mount(app, mux)
	base := start(t, app)
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /live HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 64<<10)
	readUntil := func(marker string) {
		for !strings.Contains(string(got), marker) {
			n, err := conn.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				t.Fatalf("reading for %q: %v; got %q", marker, err, got)
			}
		}
	}
	readUntil("data: part1") // while the handler still waits
	head := string(got)
	if !strings.Contains(head, "Transfer-Encoding: chunked") || strings.Contains(head, "Content-Length") ||
		!strings.Contains(head, "Content-Type: text/event-stream") {
		t.Fatalf("head: %q", head)
	}
	close(release)
	readUntil("0\r\n\r\n")
	body := string(got[strings.Index(string(got), "\r\n\r\n")+4:])
	var plain strings.Builder
	for len(body) > 0 { // de-chunk
		i := strings.Index(body, "\r\n")
		var size int
		fmt.Sscanf(body[:i], "%x", &size)
		body = body[i+2:]
		if size == 0 {
			break
		}
		plain.WriteString(body[:size])
		body = body[size+2:]
	}
	want := "data: part1\n\ndata: part2\n\n" + strings.Repeat("x", 100<<10)
	if plain.String() != want {
		t.Fatalf("body %d bytes, want %d", plain.Len(), len(want))
	}
}
