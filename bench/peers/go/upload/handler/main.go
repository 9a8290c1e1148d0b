// Command handler serves the upload scenario's net/http ServeMux (package
// upload, as the net/http peer does) through quicklane.Handler
// (quicklane.Mount: every route has StreamBody, so r.Body streams), with
// WORKERS native loops (bench/run: 1). /ping goes through the adapter too.
package main

import (
	"context"
	"errors"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	quicklane "github.com/quicklane/quicklane/bindings/go"
	"quicklane.local/bench/peers/upload"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	workers, _ := strconv.Atoi(os.Getenv("WORKERS"))
	app := quicklane.Mount(quicklane.New(quicklane.WithWorkers(workers)), upload.Mux())
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = app.Shutdown(ctx)
	}()
	log.Printf("quicklane.Handler(upload mux) on http://127.0.0.1:%s", port)
	if err := app.Listen("127.0.0.1:" + port); !errors.Is(err, quicklane.ErrServerClosed) {
		log.Fatal(err)
	}
}
