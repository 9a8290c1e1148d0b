package quicklane_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	quicklane "github.com/quicklane/quicklane/bindings/go"
)

var quiet = quicklane.WithErrorLog(log.New(io.Discard, "", 0))

// start serves app on an ephemeral port and shuts it down with the test.
func start(t *testing.T, app *quicklane.App) string {
	t.Helper()
	if err := app.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return "http://" + app.Addr()
}

type result struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, body string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return result{res.StatusCode, res.Header, string(b)}
}

func expect(t *testing.T, r result, status int, body string) {
	t.Helper()
	if r.status != status || (body != "*" && r.body != body) {
		t.Fatalf("got %d %q, want %d %q", r.status, r.body, status, body)
	}
}

func contractApp() *quicklane.App {
	app := quicklane.New(quicklane.WithWorkers(2), quiet)
	app.Static("GET", "/ping", "application/json", []byte(`{"message":"pong"}`))
	app.GET("/hello/{name}", func(c *quicklane.Context) error {
		return c.JSON(200, map[string]string{"hello": c.Param("name")})
	})
	app.POST("/echo", func(c *quicklane.Context) error {
		if !json.Valid(c.Body()) {
			return c.JSON(400, map[string]string{"detail": "invalid JSON"})
		}
		return c.Bytes(200, "application/json", c.Body())
	})
	return app
}

func TestContract(t *testing.T) {
	base := start(t, contractApp())
	r := do(t, "GET", base+"/ping", "")
	expect(t, r, 200, `{"message":"pong"}`)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content-type %q", ct)
	}
	expect(t, do(t, "GET", base+"/hello/w%C3%B6rld", ""), 200, `{"hello":"wörld"}`)
	expect(t, do(t, "POST", base+"/echo", `{"a":[1,2,{"b":null}]}`), 200, `{"a":[1,2,{"b":null}]}`)
	expect(t, do(t, "POST", base+"/echo", `{"a":`), 400, `{"detail":"invalid JSON"}`)
	r = do(t, "GET", base+"/nope", "")
	expect(t, r, 404, "*")
	if !strings.Contains(r.body, "detail") {
		t.Fatalf("404 body %q", r.body)
	}
	r = do(t, "DELETE", base+"/ping", "")
	expect(t, r, 405, "*")
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") {
		t.Fatalf("Allow %q", allow)
	}
	r = do(t, "HEAD", base+"/hello/x", "")
	expect(t, r, 200, "")
}

func TestRequestAccessors(t *testing.T) {
	app := quicklane.New(quiet)
	app.PUT("/users/{id}/files/{path...}", func(c *quicklane.Context) error {
		c.SetHeader("X-Route", c.Route())
		c.AddHeader("Set-Cookie", "a=1")
		c.AddHeader("Set-Cookie", "b=2")
		return c.JSON(201, map[string]any{
			"method": c.Method(), "path": c.Path(), "uri": c.RequestURI(),
			"id": c.Param("id"), "rest": c.Param("path"), "missing": c.Param("nope"),
			"q": c.Query("q"), "all": c.QueryValues()["tag"], "agent": c.Header("x-agent"),
			"body": string(c.Body()), "remote": strings.HasPrefix(c.RemoteAddr(), "127.0.0.1:"),
			"req": c.Request().Method + " " + c.Request().URL.Query().Get("q") + " " + c.Request().Header.Get("X-Agent"),
		})
	})
	app.GET("/many/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}", func(c *quicklane.Context) error {
		return c.String(200, c.Param("a")+c.Param("i")+c.Param("j"))
	})
	base := start(t, app)
	r := do(t, "PUT", base+"/users/42/files/a/b%20c.txt?q=x+y&tag=1&tag=2", "payload", "X-Agent", "go-test")
	expect(t, r, 201, "*")
	var got map[string]any
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"method": "PUT", "path": "/users/42/files/a/b%20c.txt",
		"uri": "/users/42/files/a/b%20c.txt?q=x+y&tag=1&tag=2", "id": "42", "rest": "a/b c.txt",
		"missing": "", "q": "x y", "all": []any{"1", "2"}, "agent": "go-test", "body": "payload", "remote": true,
		"req": "PUT x y go-test"}
	for k, v := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if r.header.Get("X-Route") != "/users/{id}/files/{path...}" || len(r.header["Set-Cookie"]) != 2 {
		t.Errorf("headers %v", r.header)
	}
	expect(t, do(t, "GET", base+"/many/1/2/3/4/5/6/7/8/9/10", ""), 200, "1910")
}

func TestErrorsAndPanics(t *testing.T) {
	app := quicklane.New(quiet)
	app.GET("/err", func(c *quicklane.Context) error { return errors.New("boom") })
	app.GET("/http-err", func(c *quicklane.Context) error { return quicklane.NewHTTPError(418, "teapot") })
	app.GET("/panic", func(c *quicklane.Context) error { panic("kaboom") })
	app.GET("/silent", func(c *quicklane.Context) error { return nil })
	app.GET("/twice", func(c *quicklane.Context) error {
		if err := c.String(200, "first"); err != nil {
			return err
		}
		if err := c.String(200, "second"); !errors.Is(err, quicklane.ErrResponded) {
			return fmt.Errorf("second answer: %v", err)
		}
		return errors.New("ignored: already answered")
	})
	app.GET("/bad-status", func(c *quicklane.Context) error { return c.String(99, "x") })
	app.GET("/ok", func(c *quicklane.Context) error { return c.String(200, "alive") })
	base := start(t, app)
	for i := 0; i < 3; i++ {
		expect(t, do(t, "GET", base+"/err", ""), 500, `{"detail":"Internal Server Error"}`)
		expect(t, do(t, "GET", base+"/panic", ""), 500, `{"detail":"Internal Server Error"}`)
		expect(t, do(t, "GET", base+"/silent", ""), 500, "*")
		expect(t, do(t, "GET", base+"/bad-status", ""), 500, "*")
		expect(t, do(t, "GET", base+"/http-err", ""), 418, `{"detail":"teapot"}`)
		expect(t, do(t, "GET", base+"/twice", ""), 200, "first")
		expect(t, do(t, "GET", base+"/ok", ""), 200, "alive")
	}
}

func TestAddresses(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "[::1]:0", "localhost:0"} {
		app := quicklane.New(quiet)
		app.Static("GET", "/ping", "text/plain", []byte("pong"))
		if err := app.Start(addr); err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		_, port, _ := net.SplitHostPort(app.Addr())
		host := "127.0.0.1"
		if strings.Contains(addr, "::1") {
			host = "[::1]"
		}
		expect(t, do(t, "GET", "http://"+host+":"+port+"/ping", ""), 200, "pong")
		if err := app.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := quicklane.New().Start("127.0.0.1:http"); err == nil {
		t.Fatal("named port accepted")
	}
}

func TestConflictReportedByStart(t *testing.T) {
	app := quicklane.New(quiet)
	h := func(c *quicklane.Context) error { return nil }
	app.GET("/a/{x}", h)
	app.GET("/a/{y}", h)
	err := app.Start("127.0.0.1:0")
	var qe *quicklane.Error
	if !errors.As(err, &qe) || qe.Name != "QL_E_CONFLICT" {
		t.Fatalf("got %v", err)
	}
	if app.Addr() != "" {
		t.Fatal("not serving")
	}
}

func TestContextCancelledOnDisconnect(t *testing.T) {
	entered := make(chan struct{}, 1)
	cancelled := make(chan error, 1)
	app := quicklane.New(quiet)
	app.GET("/wait", func(c *quicklane.Context) error {
		entered <- struct{}{}
		select {
		case <-c.Context().Done():
			cancelled <- c.Context().Err()
		case <-time.After(10 * time.Second):
			cancelled <- errors.New("not cancelled")
		}
		return c.String(200, "too late") // returns nil: the client is gone
	})
	app.GET("/ok", func(c *quicklane.Context) error { return c.String(200, "alive") })
	base := start(t, app)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("handler not called")
	}
	conn.Close()
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("context not cancelled")
	}
	expect(t, do(t, "GET", base+"/ok", ""), 200, "alive")
}

func TestShutdownDrainsInFlight(t *testing.T) {
	entered := make(chan struct{}, 4)
	app := quicklane.New(quiet)
	app.GET("/slow", func(c *quicklane.Context) error {
		entered <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		return c.String(200, "done")
	})
	listenErr := make(chan error, 1)
	go func() { listenErr <- app.Listen("127.0.0.1:0") }()
	var addr string
	for i := 0; i < 200 && addr == ""; i++ {
		time.Sleep(10 * time.Millisecond)
		addr = app.Addr()
	}
	if addr == "" {
		t.Fatal("not serving")
	}
	got := make(chan result, 3)
	for i := 0; i < 3; i++ {
		go func() {
			res, err := http.Get("http://" + addr + "/slow")
			if err != nil {
				got <- result{status: -1, body: err.Error()}
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			got <- result{status: res.StatusCode, body: string(b)}
		}()
	}
	for i := 0; i < 3; i++ {
		<-entered
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		expect(t, <-got, 200, "done")
	}
	if err := <-listenErr; !errors.Is(err, quicklane.ErrServerClosed) {
		t.Fatalf("Listen returned %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still accepting")
	}
}

func TestShutdownDeadlineCancelsStuckHandlers(t *testing.T) {
	entered := make(chan struct{}, 1)
	app := quicklane.New(quiet)
	app.GET("/stuck", func(c *quicklane.Context) error {
		entered <- struct{}{}
		<-c.Context().Done()
		return c.Context().Err()
	})
	if err := app.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := app.Addr()
	go func() {
		if res, err := http.Get("http://" + addr + "/stuck"); err == nil {
			res.Body.Close()
		}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_ = app.Shutdown(ctx) // nil or DeadlineExceeded: both are fine here
	if d := time.Since(t0); d > 3*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}

func TestConcurrentClients(t *testing.T) {
	base := start(t, contractApp())
	var wg sync.WaitGroup
	var bad atomic.Int32
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				name := fmt.Sprintf("g%d_%d", g, i)
				res, err := http.Get(base + "/hello/" + name)
				if err != nil {
					bad.Add(1)
					continue
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || string(b) != `{"hello":"`+name+`"}` {
					bad.Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d bad answers", bad.Load())
	}
}

func TestPipelinedAnswersInOrder(t *testing.T) {
	app := quicklane.New(quicklane.WithWorkers(1), quiet)
	app.GET("/n/{i}", func(c *quicklane.Context) error {
		if c.Param("i") == "0" {
			time.Sleep(50 * time.Millisecond) // the first answer is the last one ready
		}
		return c.String(200, c.Param("i"))
	})
	base := start(t, app)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var burst strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&burst, "GET /n/%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
	}
	io.WriteString(conn, burst.String())
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	for i := 0; i < 10; i++ {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		if string(b) != fmt.Sprint(i) {
			t.Fatalf("answer %d: %q", i, b)
		}
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func TestStartStopRepeatedly(t *testing.T) {
	app := contractApp()
	// one round first, so lazily created runtime threads and fds are counted
	if err := app.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	expect(t, do(t, "GET", "http://"+app.Addr()+"/hello/x", ""), 200, `{"hello":"x"}`)
	if err := app.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
	before, fdsBefore := runtime.NumGoroutine(), openFDs(t)
	for i := 0; i < 5; i++ {
		if err := app.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if err := app.Start("127.0.0.1:0"); err == nil {
			t.Fatal("second Start while serving must fail")
		}
		expect(t, do(t, "GET", "http://"+app.Addr()+"/hello/x", ""), 200, `{"hello":"x"}`)
		if err := app.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("goroutines: %d before, %d after", before, n)
	}
	if n := openFDs(t); n > fdsBefore {
		t.Fatalf("open fds: %d before, %d after", fdsBefore, n)
	}
	if err := app.Shutdown(context.Background()); err != nil {
		t.Fatal("shutdown of a stopped app:", err)
	}
}

func TestBodyLimitFromCore(t *testing.T) {
	app := quicklane.New(quicklane.WithMaxBodyBytes(1024), quiet)
	app.POST("/len", func(c *quicklane.Context) error { return c.String(200, fmt.Sprint(len(c.Body()))) })
	base := start(t, app)
	expect(t, do(t, "POST", base+"/len", strings.Repeat("a", 1000)), 200, "1000")
	expect(t, do(t, "POST", base+"/len", strings.Repeat("a", 5000)), 413, "*")
	expect(t, do(t, "POST", base+"/len", ""), 200, "0")
}

func TestShutdownUnderLoad(t *testing.T) {
	for round := 0; round < 4; round++ {
		app := contractApp()
		app.GET("/slowish/{n}", func(c *quicklane.Context) error {
			time.Sleep(time.Millisecond)
			return c.String(200, c.Param("n"))
		})
		if err := app.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		base := "http://" + app.Addr()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var ok atomic.Int32
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				client := &http.Client{Timeout: 5 * time.Second}
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					path := fmt.Sprintf("/hello/%d", i)
					if g%2 == 1 {
						path = fmt.Sprintf("/slowish/%d", i)
					}
					res, err := client.Get(base + path)
					if err != nil {
						continue // refused or closed during shutdown
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode == 200 {
						ok.Add(1)
					}
				}
			}(g)
		}
		time.Sleep(100 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := app.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		close(stop)
		wg.Wait()
		if ok.Load() == 0 {
			t.Fatal("no request answered before shutdown")
		}
	}
}

func TestHandlerTimeout(t *testing.T) {
	app := quicklane.New(quiet, quicklane.WithHandlerTimeout(200*time.Millisecond))
	cancelled := make(chan error, 1)
	app.GET("/never", func(c *quicklane.Context) error {
		<-c.Context().Done() // the core gave up on us: 503 went out
		cancelled <- c.Context().Err()
		return c.String(200, "too late") // dropped, not fatal
	})
	app.GET("/ok", func(c *quicklane.Context) error { return c.String(200, "alive") })
	base := start(t, app)
	expect(t, do(t, "GET", base+"/never", ""), 503, `{"detail":"handler timed out"}`)
	select {
	case err := <-cancelled:
		if err == nil {
			t.Fatal("context ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's context was not cancelled")
	}
	expect(t, do(t, "GET", base+"/ok", ""), 200, "alive")
}

func TestHandlerTimeoutOutOfRange(t *testing.T) {
	app := quicklane.New(quiet, quicklane.WithHandlerTimeout(time.Millisecond))
	app.GET("/ok", func(c *quicklane.Context) error { return c.String(200, "alive") })
	err := app.Start("127.0.0.1:0")
	if err == nil {
		app.Shutdown(context.Background())
		t.Fatal("expected an error")
	}
	if !strings.Contains(err.Error(), "handler_timeout_ms") {
		t.Fatalf("error %q does not name the option", err)
	}
}

// An abort that arrives after its request was answered (the client left as
// the answer went out) finds no request: the Go side keeps it for a request
// that may yet come from another poller, but only for a while, so a server
// whose clients often leave does not grow without bound.
func TestEarlyAbortsStayBounded(t *testing.T) {
	app := quicklane.New(quicklane.WithWorkers(1), quiet)
	app.GET("/ping", func(c *quicklane.Context) error { return c.String(200, "pong") })
	base := start(t, app)
	ids := func(from, n int) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = 1<<60 + uint64(from+i)
		}
		return out
	}
	quicklane.AbortUnknown(app, ids(0, 100), time.Minute)
	if n := quicklane.EarlyAborts(app); n != 100 {
		t.Fatalf("fresh early aborts kept: %d, want 100", n)
	}
	// Expired entries go at the next sweep: 20 000 stale aborts leave fewer
	// than the sweep threshold (1 024) behind, not 20 100.
	quicklane.AbortUnknown(app, ids(100, 20000), 0)
	if n := quicklane.EarlyAborts(app); n >= 1024 {
		t.Fatalf("early aborts kept: %d, want < 1024", n)
	}
	if r := do(t, "GET", base+"/ping", ""); r.status != 200 || r.body != "pong" {
		t.Fatalf("after the sweeps: %d %q", r.status, r.body)
	}
}
