package quicklane_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	quicklane "github.com/quicklane/quicklane/bindings/go"
)

func get(url string) string {
	res, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return fmt.Sprintf("%d %s", res.StatusCode, b)
}

// A native static route and a Go handler on the same app.
func Example() {
	app := quicklane.New()
	app.Static("GET", "/ping", "application/json", []byte(`{"message":"pong"}`)) // never enters Go
	app.GET("/hello/{name}", func(c *quicklane.Context) error {
		return c.JSON(200, map[string]string{"hello": c.Param("name")})
	})
	if err := app.Start("127.0.0.1:0"); err != nil { // app.Listen(addr) blocks instead
		panic(err)
	}
	defer app.Shutdown(context.Background())

	fmt.Println(get("http://" + app.Addr() + "/ping"))
	fmt.Println(get("http://" + app.Addr() + "/hello/gopher"))
	// Output:
	// 200 {"message":"pong"}
	// 200 {"hello":"gopher"}
}

// Returning an *HTTPError answers with its status; other errors and panics
// give a 500 and the server keeps serving.
func ExampleNewHTTPError() {
	app := quicklane.New(quiet)
	app.POST("/echo", func(c *quicklane.Context) error {
		var v map[string]any
		if err := c.BindJSON(&v); err != nil {
			return err // an *HTTPError with status 400
		}
		if v["fail"] == true {
			return quicklane.NewHTTPError(422, "fail requested")
		}
		return c.JSON(200, v)
	})
	_ = app.Start("127.0.0.1:0")
	defer app.Shutdown(context.Background())
	for _, body := range []string{`{"a":1}`, `{"fail":true}`, `nope`} {
		res, _ := http.Post("http://"+app.Addr()+"/echo", "application/json", strings.NewReader(body))
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Println(res.StatusCode, len(b) > 0)
	}
	// Output:
	// 200 true
	// 422 true
	// 400 true
}

// Any net/http handler runs behind the native front.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hi/{who}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hi %s", r.PathValue("who"))
	})
	app := quicklane.New()
	app.Any("/{path...}", quicklane.Handler(mux)) // or quicklane.ListenAndServe(addr, mux)
	_ = app.Start("127.0.0.1:0")
	defer app.Shutdown(context.Background())
	fmt.Println(get("http://" + app.Addr() + "/hi/there"))
	// Output: 200 hi there
}

// The request context is cancelled when the client goes away.
func ExampleContext_Context() {
	app := quicklane.New()
	app.GET("/work", func(c *quicklane.Context) error {
		select {
		case <-c.Context().Done():
			return c.Context().Err() // nobody is listening any more
		default:
			return c.String(200, "done")
		}
	})
	_ = app.Start("127.0.0.1:0")
	defer app.Shutdown(context.Background())
	fmt.Println(get("http://" + app.Addr() + "/work"))
	// Output: 200 done
}

// A StreamBody route reads its body as it arrives: memory stays at the
// core's body window whatever the upload's size.
func ExampleStreamBody() {
	app := quicklane.New()
	app.PUT("/files/{name}", func(c *quicklane.Context) error {
		h := sha256.New()
		n, err := io.Copy(h, c.BodyReader()) // or io.Copy(file, c.BodyReader())
		if err != nil {
			return err // client gone, or 413 past the limit: already answered by the core
		}
		return c.String(200, fmt.Sprintf("%s: %d bytes, sha256 %x", c.Param("name"), n, h.Sum(nil)[:4]))
	}, quicklane.StreamBody(1<<30)) // 1 GiB at most
	_ = app.Start("127.0.0.1:0")
	defer app.Shutdown(context.Background())
	req, _ := http.NewRequest("PUT", "http://"+app.Addr()+"/files/a.txt", strings.NewReader("hello"))
	res, _ := http.DefaultClient.Do(req)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode, string(b))
	// Output: 200 a.txt: 5 bytes, sha256 2cf24dba
}

// Shutdown drains in-flight requests, like http.Server.Shutdown.
func ExampleApp_Shutdown() {
	app := quicklane.New()
	app.GET("/", func(c *quicklane.Context) error { return c.String(200, "ok") })
	done := make(chan error, 1)
	go func() { done <- app.Listen("127.0.0.1:0") }()
	for app.Addr() == "" {
		time.Sleep(time.Millisecond)
	}
	_ = app.Shutdown(context.Background())
	fmt.Println(<-done == quicklane.ErrServerClosed)
	// Output: true
}

// A WebSocket route: an echo, and a chat room where every message reaches
// every member (sender included) through the core's pub/sub.
func ExampleApp_WS() {
	app := quicklane.New()
	app.WS("/ws/echo", func(c *quicklane.WSConn) error {
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return err // a *CloseError once the client closed
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return err
			}
		}
	})
	app.WS("/ws/chat/{room}", func(c *quicklane.WSConn) error {
		topic := "chat:" + c.Param("room")
		if err := c.Subscribe(topic); err != nil {
			return err
		}
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return err
			}
			if _, err := app.Publish(topic, quicklane.TextMessage, msg); err != nil {
				return err
			}
		}
	})
	_ = app.Start("127.0.0.1:0")
	defer app.Shutdown(context.Background())

	// dialWS is a small test client (wsclient_test.go); any WebSocket
	// client works.
	ws, _ := dialWS(app.Addr(), "/ws/echo")
	ws.sendText("hello")
	_, p, _ := ws.readMessage()
	fmt.Println(string(p))
	ws.sendClose(quicklane.CloseNormalClosure, "")
	code, _, _ := ws.expectClose()
	fmt.Println("closed", code)
	// Output:
	// hello
	// closed 1000
}
