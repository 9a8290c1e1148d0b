// Package quicklane runs Go HTTP handlers behind quicklane's native front: a
// C++ core (libuv loops and llhttp) that parses, routes, enforces limits and
// answers static routes itself, reached through its stable C ABI with cgo.
//
// Handlers look like Gin's and run on goroutines:
//
//	app := quicklane.New()
//	app.Static("GET", "/ping", "application/json", []byte(`{"message":"pong"}`)) // never enters Go
//	app.GET("/hello/{name}", func(c *quicklane.Context) error {
//		return c.JSON(200, map[string]string{"hello": c.Param("name")})
//	})
//	log.Fatal(app.Listen("127.0.0.1:8080"))
//
// Existing net/http code runs unchanged with Handler, Mount or
// ListenAndServe. Request bodies stream (Context.BodyReader, r.Body) on
// routes with the StreamBody rule, which every route of Mount has. Answers
// stream too (Context.StreamWriter, Gin's Context.Stream and SSEvent,
// Context.EventStream for server-sent events), with backpressure towards
// clients that read slowly.
//
// WebSockets: App.WS serves a socket on a goroutine with gorilla/websocket's
// names (WSConn.ReadMessage, WriteMessage, Close, *CloseError), the core's
// pub/sub (Subscribe, App.Publish from any goroutine) and backpressure by
// blocking; the core does the protocol. The net/http adapter's
// ResponseWriter is an http.Hijacker, so gorilla/websocket and
// coder/websocket servers run unchanged under ListenAndServe.
//
// Requests reach Go by queued delivery: the core puts them on a native queue
// and a few poller goroutines take them in batches, one cgo call per batch;
// each request then runs on its own goroutine and is answered with one cgo
// call. The core's loop threads never call into Go, so a slow handler never
// delays native routes or other connections. See docs/go.md for the design
// and its measurements.
//
// Linking uses pkg-config (#cgo pkg-config: quicklane): point
// PKG_CONFIG_PATH at an installed quicklane (cmake --install build --prefix
// DIR puts DIR/lib/pkgconfig/quicklane.pc there) and make libquicklane.so
// findable at run time (an rpath in CGO_LDFLAGS or LD_LIBRARY_PATH).
package quicklane
