// Command ql is quicklane Go, native, of bench/run's upload scenario: POST
// /upload is a StreamBody route, so the handler runs once the head is in and
// io.Copy hashes c.BodyReader() (SHA-256, crypto/sha256) as the body arrives,
// never holding it whole; GET /ping is a native static route. Answers 200
// {"bytes":N,"sha256":"<hex>"}. PORT and WORKERS (bench/run: 1) from the
// environment.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
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
	app.POST("/upload", func(c *quicklane.Context) error {
		h := sha256.New()
		n, err := io.Copy(h, c.BodyReader())
		if err != nil {
			return err
		}
		return c.Bytes(200, "application/json",
			[]byte(`{"bytes":`+strconv.FormatInt(n, 10)+`,"sha256":"`+hex.EncodeToString(h.Sum(nil))+`"}`))
	}, quicklane.StreamBody(0)) // 0: the App's limit, none by default (as net/http)

	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = app.Shutdown(ctx)
	}()
	log.Printf("quicklane %s (Go) upload server on http://127.0.0.1:%s", quicklane.Version(), port)
	if err := app.Listen("127.0.0.1:" + port); !errors.Is(err, quicklane.ErrServerClosed) {
		log.Fatal(err)
	}
}
