package quicklane_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	quicklane "github.com/quicklane/quicklane/bindings/go"
)

// ---- helpers ---------------------------------------------------------------

// pattern is the repeating source of upload bytes (1 MiB + 7, so pieces never
// line up with the buffers); upload stamps every 4 KiB with its offset, so a
// lost, repeated or reordered piece changes the hash.
var pattern = func() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 1<<20+7)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// upload is a request body made on the fly (the client never holds it
// whole), hashed as it is read.
type upload struct {
	total, off int64
	h          hash.Hash
}

func newUpload(total int64) *upload { return &upload{total: total, h: sha256.New()} }

func (u *upload) Read(p []byte) (int, error) {
	if u.off >= u.total {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), u.total-u.off))
	for done := 0; done < n; {
		at := int((u.off + int64(done)) % int64(len(pattern)))
		done += copy(p[done:n], pattern[at:])
	}
	for k := (u.off + 4095) &^ 4095; k < u.off+int64(n); k += 4096 {
		p[k-u.off] ^= byte(k>>12) ^ byte(k>>20)
	}
	u.h.Write(p[:n])
	u.off += int64(n)
	return n, nil
}

func (u *upload) sum() string { return fmt.Sprintf("%x", u.h.Sum(nil)) }

func rssKiB(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// rssPeak samples VmRSS every 5 ms until stop is called, which returns the
// largest growth over the value at the start, in KiB.
func rssPeak(t *testing.T) (stop func() int64) {
	runtime.GC()
	debug.FreeOSMemory()
	base := rssKiB(t)
	var peak atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if v := rssKiB(t); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		return peak.Load() - base
	}
}

// post sends an upload with Content-Length (or chunked) through net/http's
// client and returns the answer.
func post(t *testing.T, url string, u *upload, chunked bool) result {
	t.Helper()
	req, err := http.NewRequest("POST", url, u)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = u.total
	if chunked {
		req.ContentLength = -1
	}
	client := &http.Client{Timeout: 30 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return result{res.StatusCode, res.Header, string(b)}
}

// rawConn is a client that writes bytes as given and reads answers one by one.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, base string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(s string) error {
	r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(r.c, s)
	return err
}

// answer reads one response (a 1xx too) and its body; nil when the
// connection ended first.
func (r *rawConn) answer(timeout time.Duration) (*http.Response, string) {
	r.c.SetReadDeadline(time.Now().Add(timeout))
	res, err := http.ReadResponse(r.br, nil)
	if err != nil {
		return nil, err.Error()
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

// quietFor reports whether nothing arrives for d.
func (r *rawConn) quietFor(d time.Duration) bool {
	r.c.SetReadDeadline(time.Now().Add(d))
	_, err := r.br.Peek(1)
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// closedSoon reports whether the server closes the connection within d
// (reading and dropping whatever still comes).
func (r *rawConn) closedSoon(d time.Duration) bool {
	r.c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, r.br)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func noneInFlight(t *testing.T, app *quicklane.App) {
	t.Helper()
	waitFor(t, "no request in flight", func() bool {
		n, g := quicklane.InFlight(app)
		return n == 0 && g == 0
	})
}

// hashAnswer is what the upload handlers answer: hash, bytes read, declared length.
func hashAnswer(sum []byte, n, declared int64) string {
	return fmt.Sprintf("%x %d %d", sum, n, declared)
}

// ---- 64 MiB uploads -----------------------------------------------------

// 64 MiB in `make test`; `SOAK_MODE=upload make soak` sets QL_UPLOAD_MIB=1024.
var bigUpload = func() int64 {
	if mib, err := strconv.Atoi(os.Getenv("QL_UPLOAD_MIB")); err == nil && mib > 0 {
		return int64(mib) << 20
	}
	return 64 << 20
}()

func TestStreamedUpload64MiB(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, hashAnswer(h.Sum(nil), n, r.ContentLength))
	})
	adapter := quicklane.New(quicklane.WithWorkers(1), quiet)
	quicklane.Mount(adapter, mux)
	adapterBase := start(t, adapter)

	native := quicklane.New(quicklane.WithWorkers(1), quiet)
	native.POST("/upload", func(c *quicklane.Context) error {
		h := sha256.New()
		n, err := io.Copy(h, c.BodyReader())
		if err != nil {
			return err
		}
		return c.String(200, hashAnswer(h.Sum(nil), n, c.ContentLength()))
	}, quicklane.StreamBody(0))
	nativeBase := start(t, native)

	for _, tc := range []struct {
		name string
		base string
		app  *quicklane.App
	}{{"adapter", adapterBase, adapter}, {"native", nativeBase, native}} {
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/chunked=%v", tc.name, chunked), func(t *testing.T) {
				stop := rssPeak(t)
				began := time.Now()
				u := newUpload(bigUpload)
				r := post(t, tc.base+"/upload", u, chunked)
				took := time.Since(began)
				grown := stop()
				declared := int64(bigUpload)
				if chunked {
					declared = -1
				}
				want := fmt.Sprintf("%s %d %d", u.sum(), bigUpload, declared)
				expect(t, r, 200, want)
				t.Logf("%d MiB in %v, sha256 %s matches, RSS grew %d KiB at most", bigUpload>>20,
					took.Round(time.Millisecond), u.sum()[:16], grown)
				if grown >= 32<<10 {
					t.Fatalf("RSS grew %d KiB (limit 32 MiB)", grown)
				}
				noneInFlight(t, tc.app)
			})
		}
	}
}

// A handler that reads 64 KiB, then sleeps: the core stops reading from the
// client at the body window, so memory does not grow with the upload.
func TestStreamedUploadSlowReader(t *testing.T) {
	app := quicklane.New(quicklane.WithWorkers(1), quiet)
	var got atomic.Int64
	app.POST("/slow", func(c *quicklane.Context) error {
		h := sha256.New()
		buf := make([]byte, 64<<10)
		body := c.BodyReader()
		for {
			n, err := io.ReadFull(body, buf)
			h.Write(buf[:n])
			got.Add(int64(n))
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
		}
		return c.String(200, fmt.Sprintf("%x", h.Sum(nil)))
	}, quicklane.StreamBody(0))
	base := start(t, app)
	stop := rssPeak(t)
	began := time.Now()
	u := newUpload(bigUpload)
	r := post(t, base+"/slow", u, false)
	grown := stop()
	expect(t, r, 200, u.sum())
	t.Logf("%d MiB read 64 KiB per ms in %v, RSS grew %d KiB at most", bigUpload>>20,
		time.Since(began).Round(time.Millisecond), grown)
	if grown >= 32<<10 {
		t.Fatalf("RSS grew %d KiB (limit 32 MiB)", grown)
	}
}

// ---- aborts -----------------------------------------------------------------

func TestStreamedUploadClientAborts(t *testing.T) {
	type outcome struct {
		n   int64
		err error
	}
	adapterDone := make(chan outcome, 4)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err == nil {
			_, err = r.Body.Read(make([]byte, 1)) // after the failure: the same error again
			if err == io.EOF {
				err = nil
			}
		}
		adapterDone <- outcome{n, err}
		if err == nil {
			io.WriteString(w, "complete")
		}
	})
	adapter := quicklane.New(quicklane.WithWorkers(1), quiet)
	quicklane.Mount(adapter, mux)
	adapterBase := start(t, adapter)

	nativeDone := make(chan outcome, 4)
	native := quicklane.New(quicklane.WithWorkers(1), quiet)
	native.POST("/upload", func(c *quicklane.Context) error {
		n, err := io.Copy(io.Discard, c.BodyReader())
		nativeDone <- outcome{n, err}
		return c.String(200, "late") // dropped: the client is gone
	}, quicklane.StreamBody(0))
	nativeBase := start(t, native)

	for _, tc := range []struct {
		name string
		base string
		app  *quicklane.App
		done chan outcome
	}{{"adapter", adapterBase, adapter, adapterDone}, {"native", nativeBase, native, nativeDone}} {
		for _, head := range []string{
			"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + strings.Repeat("a", 5000),
			"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
		} {
			c := dialRaw(t, tc.base)
			if err := c.send(head); err != nil {
				t.Fatal(err)
			}
			time.Sleep(30 * time.Millisecond) // the handler reads what came, then waits
			c.c.(*net.TCPConn).SetLinger(0)
			c.c.Close()
			began := time.Now()
			select {
			case o := <-tc.done:
				if o.err == nil || !errors.Is(o.err, io.ErrUnexpectedEOF) || !errors.Is(o.err, quicklane.ErrBodyIncomplete) {
					t.Fatalf("%s: read %d bytes, err %v; want ErrBodyIncomplete", tc.name, o.n, o.err)
				}
				t.Logf("%s: read %d bytes, then %q after %v", tc.name, o.n, o.err, time.Since(began).Round(time.Millisecond))
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: the handler's read did not return", tc.name)
			}
		}
		noneInFlight(t, tc.app)
		select {
		case o := <-tc.done:
			t.Fatalf("%s: a second outcome %v", tc.name, o)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// A reader waiting for body bytes when Shutdown's deadline passes returns.
func TestStreamedUploadShutdownEndsReads(t *testing.T) {
	app := quicklane.New(quicklane.WithWorkers(1), quiet)
	errc := make(chan error, 1)
	app.POST("/upload", func(c *quicklane.Context) error {
		_, err := io.Copy(io.Discard, c.BodyReader())
		errc <- err
		return err
	}, quicklane.StreamBody(0))
	if err := app.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, "http://"+app.Addr())
	c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
	time.Sleep(30 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	app.Shutdown(ctx) // ctx ends first: the connection is closed
	select {
	case err := <-errc:
		if !errors.Is(err, quicklane.ErrBodyIncomplete) {
			t.Fatalf("err %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the read did not return at shutdown")
	}
	if err := app.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// ---- Expect: 100-continue and early answers -----------------------------------

func earlyMux(mayRead chan struct{}) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /late", func(w http.ResponseWriter, r *http.Request) {
		<-mayRead
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("/refuse", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusUnauthorized) // without reading the body
	})
	mux.HandleFunc("POST /close", func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 10)
		n, _ := io.ReadFull(r.Body, b)
		r.Body.Close()
		_, err := r.Body.Read(b)
		fmt.Fprintf(w, "%d then %v", n, err)
	})
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "pong") })
	mux.HandleFunc("GET /secret", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "SECRET") })
	return mux
}

func TestExpectContinueOnlyWhenRead(t *testing.T) {
	mayRead := make(chan struct{})
	base := start(t, quicklane.Mount(quicklane.New(quicklane.WithWorkers(1), quiet), earlyMux(mayRead)))

	c := dialRaw(t, base)
	c.send("PUT /late HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	if !c.quietFor(150 * time.Millisecond) {
		t.Fatal("something came before the handler read")
	}
	close(mayRead)
	res, body := c.answer(3 * time.Second)
	if res == nil || res.StatusCode != 100 {
		t.Fatalf("want 100 Continue, got %v %q", res, body)
	}
	c.send("hello")
	res, body = c.answer(3 * time.Second)
	if res == nil || res.StatusCode != 200 || body != "hello" {
		t.Fatalf("got %v %q", res, body)
	}

	// Refused without a read: 401, no 100, and the connection closes (the
	// client never sends its 100 MB).
	d := dialRaw(t, base)
	d.send("PUT /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\nExpect: 100-continue\r\n\r\n")
	res, body = d.answer(3 * time.Second)
	if res == nil || res.StatusCode != 401 || !res.Close {
		t.Fatalf("want 401 with Connection: close, got %v %q", res, body)
	}
	if !d.closedSoon(3 * time.Second) {
		t.Fatal("the connection stayed open")
	}
}

// An answer before the body was read: the connection goes on in sync (the
// rest is dropped, never parsed as a request) or closes.
func TestEarlyAnswerNeverDesynchronises(t *testing.T) {
	base := start(t, quicklane.Mount(quicklane.New(quicklane.WithWorkers(1), quiet), earlyMux(nil)))
	smuggled := "GET /secret HTTP/1.1\r\nHost: t\r\n\r\n"
	for _, size := range []int{100 << 10, 2 << 20} {
		body := smuggled + strings.Repeat("x", size-len(smuggled))
		c := dialRaw(t, base)
		c.send("POST /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
		res, text := c.answer(3 * time.Second)
		if res == nil || res.StatusCode != 401 {
			t.Fatalf("%d: want 401, got %v %q", size, res, text)
		}
		// The client sends its body anyway, then another request.
		go func() { c.send(body + "GET /ping HTTP/1.1\r\nHost: t\r\n\r\n") }()
		res, text = c.answer(3 * time.Second)
		switch {
		case res == nil: // closed: fine
			t.Logf("%d bytes: answered 401, then closed", size)
		case res.StatusCode == 200 && text == "pong":
			if !c.quietFor(100 * time.Millisecond) {
				t.Fatalf("%d: more answers after pong", size)
			}
			t.Logf("%d bytes: answered 401, rest dropped, connection kept", size)
		default:
			t.Fatalf("%d: desynchronised: %v %q", size, res.Status, text)
		}
	}

	// Close after reading a little, then answer.
	c := dialRaw(t, base)
	c.send("POST /close HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("y", 100000))
	res, text := c.answer(3 * time.Second)
	if res == nil || res.StatusCode != 200 || text != "10 then http: invalid Read on closed Body" {
		t.Fatalf("got %v %q", res, text)
	}
	c.send("GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
	if res, text := c.answer(3 * time.Second); res != nil && text != "pong" {
		t.Fatalf("after close: %v %q", res.Status, text)
	}
}

// ---- limits ---------------------------------------------------------------------

func TestStreamedBodyLimits(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /capped", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1000)
		b, err := io.ReadAll(r.Body)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("limit %d", tooBig.Limit), http.StatusRequestEntityTooLarge)
			return
		}
		fmt.Fprintf(w, "%d", len(b))
	})
	var adapterErrs sync.Map
	mux.HandleFunc("POST /any", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			adapterErrs.Store("any", err)
			return
		}
		fmt.Fprintf(w, "%d", n)
	})
	// WithMaxBodyBytes limits the adapter's streamed bodies.
	adapter := quicklane.New(quicklane.WithWorkers(1), quicklane.WithMaxBodyBytes(1<<20), quiet)
	quicklane.Mount(adapter, mux)
	adapterBase := start(t, adapter)

	expect(t, do(t, "POST", adapterBase+"/capped", strings.Repeat("a", 500)), 200, "500")
	expect(t, do(t, "POST", adapterBase+"/capped", strings.Repeat("a", 5000)), 413, "limit 1000\n")
	expect(t, post(t, adapterBase+"/any", newUpload(900<<10), true), 200, strconv.Itoa(900<<10))
	// Declared over the limit: 413 before the handler runs.
	c := dialRaw(t, adapterBase)
	c.send("POST /any HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n")
	if res, text := c.answer(3 * time.Second); res == nil || res.StatusCode != 413 {
		t.Fatalf("want 413, got %v %q", res, text)
	}
	if _, ok := adapterErrs.Load("any"); ok {
		t.Fatal("the handler ran for a declared length over the limit")
	}
	// Chunked, crossing the limit while it streams: 413 from the core, and the
	// handler's read fails with *http.MaxBytesError.
	chunkedOver(t, adapterBase, "/any")
	waitFor(t, "the adapter handler's error", func() bool { _, ok := adapterErrs.Load("any"); return ok })
	err, _ := adapterErrs.Load("any")
	var tooBig *http.MaxBytesError
	if !errors.As(err.(error), &tooBig) || tooBig.Limit != 1<<20 {
		t.Fatalf("adapter read error %v", err)
	}

	// A native route with its own limit.
	native := quicklane.New(quicklane.WithWorkers(1), quiet)
	var calls atomic.Int32
	nativeErr := make(chan error, 1)
	native.POST("/limited", func(c *quicklane.Context) error {
		calls.Add(1)
		n, err := io.Copy(io.Discard, c.BodyReader())
		if err != nil {
			nativeErr <- err
			return err
		}
		return c.String(200, strconv.FormatInt(n, 10))
	}, quicklane.StreamBody(1<<20))
	nativeBase := start(t, native)
	expect(t, post(t, nativeBase+"/limited", newUpload(1<<20), false), 200, strconv.Itoa(1<<20))
	d := dialRaw(t, nativeBase)
	d.send("POST /limited HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n")
	if res, text := d.answer(3 * time.Second); res == nil || res.StatusCode != 413 {
		t.Fatalf("want 413, got %v %q", res, text)
	}
	if calls.Load() != 1 {
		t.Fatalf("handler calls %d, want 1", calls.Load())
	}
	chunkedOver(t, nativeBase, "/limited")
	select {
	case err := <-nativeErr:
		if !errors.As(err, &tooBig) || tooBig.Limit != 1<<20 {
			t.Fatalf("native read error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no read error")
	}
	noneInFlight(t, native)
	noneInFlight(t, adapter)
}

// chunkedOver streams 3 MiB chunked to path and expects 413 and a close.
func chunkedOver(t *testing.T, base, path string) {
	t.Helper()
	c := dialRaw(t, base)
	go func() {
		if c.send("POST "+path+" HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n") != nil {
			return
		}
		u, buf := newUpload(3<<20), make([]byte, 64<<10)
		for {
			n, _ := u.Read(buf)
			if n == 0 {
				break
			}
			if c.send(fmt.Sprintf("%x\r\n%s\r\n", n, buf[:n])) != nil {
				return // the server closed after its 413
			}
		}
		c.send("0\r\n\r\n")
	}()
	res, text := c.answer(5 * time.Second)
	if res == nil || res.StatusCode != 413 || !res.Close {
		t.Fatalf("want 413 with close, got %v %q", res, text)
	}
	if !c.closedSoon(3 * time.Second) {
		t.Fatal("the connection stayed open after 413")
	}
}

func TestStreamBodyRefusedWithBodySchema(t *testing.T) {
	app := quicklane.New(quiet)
	app.POST("/x", func(c *quicklane.Context) error { return nil },
		quicklane.StreamBody(0), quicklane.BodySchema(`{"type":"object"}`))
	if err := app.Start("127.0.0.1:0"); err == nil {
		app.Shutdown(context.Background())
		t.Fatal("StreamBody with BodySchema must be refused")
	} else if !strings.Contains(err.Error(), "body_schema") {
		t.Fatalf("error %q", err)
	}
	bad := quicklane.New(quiet)
	bad.POST("/x", func(c *quicklane.Context) error { return nil }, quicklane.StreamBody(-1))
	if err := bad.Start("127.0.0.1:0"); err == nil {
		bad.Shutdown(context.Background())
		t.Fatal("StreamBody(-1) must be refused")
	}
}

// BodyReader also reads a buffered body; Body reads a streamed one whole;
// other rules still apply to a streamed route.
func TestBodyReaderAndBody(t *testing.T) {
	app := quicklane.New(quicklane.WithWorkers(1), quiet)
	app.POST("/buffered", func(c *quicklane.Context) error {
		b, err := io.ReadAll(c.BodyReader())
		if err != nil {
			return err
		}
		return c.String(200, fmt.Sprintf("%s|%s|%d", b, c.Body(), c.ContentLength()))
	})
	app.POST("/whole", func(c *quicklane.Context) error {
		var v map[string]int
		if err := c.BindJSON(&v); err != nil {
			return err
		}
		return c.String(200, fmt.Sprintf("%d %d", v["a"], c.ContentLength()))
	}, quicklane.StreamBody(0), quicklane.RateLimit(2, time.Minute))
	app.POST("/capped", func(c *quicklane.Context) error {
		b, err := io.ReadAll(http.MaxBytesReader(nil, io.NopCloser(c.BodyReader()), 10))
		if err != nil {
			return err // *http.MaxBytesError: 413
		}
		return c.Bytes(200, "text/plain", b)
	}, quicklane.StreamBody(0))
	base := start(t, app)
	expect(t, do(t, "POST", base+"/capped", "short"), 200, "short")
	expect(t, do(t, "POST", base+"/capped", "longer than ten bytes"), 413, `{"detail":"request body too large"}`)
	expect(t, do(t, "POST", base+"/buffered", "hello world"), 200, "hello world|hello world|11")
	expect(t, do(t, "POST", base+"/whole", `{"a":7}`), 200, "7 7")
	expect(t, do(t, "POST", base+"/whole", `{"a":`), 400, "*")
	expect(t, do(t, "POST", base+"/whole", `{}`), 429, "*") // the rate limit kept with StreamBody
}

// Reading after the answer has started (Flush): the core drops what arrives
// from then on, so a read either gets the whole body or fails; it never
// reports a cut body as complete.
func TestReadAfterFlushNeverSilentlyTruncates(t *testing.T) {
	mux := http.NewServeMux()
	type outcome struct {
		n   int64
		err error
	}
	res := make(chan outcome, 1)
	mux.HandleFunc("POST /dup", func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 10)
		n, _ := io.ReadFull(r.Body, b)
		io.WriteString(w, "head")
		w.(http.Flusher).Flush()
		m, err := io.Copy(io.Discard, r.Body)
		res <- outcome{int64(n) + m, err}
	})
	base := start(t, quicklane.Mount(quicklane.New(quicklane.WithWorkers(1), quiet), mux))
	for _, size := range []int64{100 << 10, 4 << 20} {
		for _, chunked := range []bool{false, true} {
			c := dialRaw(t, base)
			go func() {
				framing := fmt.Sprintf("Content-Length: %d", size)
				if chunked {
					framing = "Transfer-Encoding: chunked"
				}
				c.send("POST /dup HTTP/1.1\r\nHost: t\r\n" + framing + "\r\n\r\n")
				u, buf := newUpload(size), make([]byte, 64<<10)
				for {
					n, _ := u.Read(buf)
					if n == 0 {
						break
					}
					piece := string(buf[:n])
					if chunked {
						piece = fmt.Sprintf("%x\r\n%s\r\n", n, piece)
					}
					if c.send(piece) != nil {
						return
					}
				}
				if chunked {
					c.send("0\r\n\r\n")
				}
			}()
			if r, body := c.answer(5 * time.Second); r == nil || r.StatusCode != 200 || body != "head" {
				t.Fatalf("got %v %q", r, body)
			}
			select {
			case o := <-res:
				if o.err == nil && o.n != size {
					t.Fatalf("size %d chunked %v: read %d bytes and a clean end", size, chunked, o.n)
				}
				if o.err != nil && !errors.Is(o.err, io.ErrUnexpectedEOF) {
					t.Fatalf("size %d chunked %v: err %v", size, chunked, o.err)
				}
				t.Logf("size %d chunked %v: read %d, err %v", size, chunked, o.n, o.err)
			case <-time.After(5 * time.Second):
				t.Fatal("the read after Flush did not return")
			}
		}
	}
}
