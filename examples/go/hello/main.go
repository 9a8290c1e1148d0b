// Command hello serves the quicklane example contract from Go:
//
//	GET  /ping          → {"message":"pong"}   native static route, never enters Go
//	GET  /hello/{name}  → {"hello":"<name>"}    Go handler
//	POST /echo          → the JSON body echoed  Go handler; invalid JSON → 400
//
// 404 and 405 (with Allow) come from the core. PORT (default 8080) and
// WORKERS (default: one loop per core) select the port and the loops.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	quicklane "github.com/quicklane/quicklane/bindings/go"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	workers, _ := strconv.Atoi(os.Getenv("WORKERS"))

	app := quicklane.New(quicklane.WithWorkers(workers))
	app.Static("GET", "/ping", "application/json", []byte(`{"message":"pong"}`))
	app.GET("/hello/{name}", func(c *quicklane.Context) error {
		return c.JSON(200, map[string]string{"hello": c.Param("name")})
	})
	app.POST("/echo", func(c *quicklane.Context) error {
		body := c.Body()
		if !json.Valid(body) {
			return c.JSON(400, map[string]string{"detail": "invalid JSON"})
		}
		return c.Bytes(200, "application/json", body)
	})

	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = app.Shutdown(ctx)
	}()
	log.Printf("quicklane %s (Go) on http://127.0.0.1:%s", quicklane.Version(), port)
	if err := app.Listen("127.0.0.1:" + port); !errors.Is(err, quicklane.ErrServerClosed) {
		log.Fatal(err)
	}
}
