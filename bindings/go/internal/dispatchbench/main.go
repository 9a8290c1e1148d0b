// Command dispatchbench serves GET /hello/{name} → {"hello":name} (and the
// native GET /ping) with one dispatch shape, for wrk; see docs/go.md.
//
//	dispatchbench -mode queue|callback|callback-goroutine|nethttp|handler -port 8080 -workers 1
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	quicklane "github.com/quicklane/quicklane/bindings/go"
	"github.com/quicklane/quicklane/bindings/go/internal/cbshape"
)

func main() {
	mode := flag.String("mode", "queue", "queue, callback, callback-goroutine, nethttp or handler")
	port := flag.Int("port", 8080, "port")
	workers := flag.Int("workers", 1, "native loops")
	pollers := flag.Int("pollers", 0, "poller goroutines (0: default)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	addr := fmt.Sprintf("127.0.0.1:%d", *port)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(map[string]string{"hello": r.PathValue("name")})
		w.Write(b)
	})
	mux.HandleFunc("GET /busy/{name}", func(w http.ResponseWriter, r *http.Request) {
		cbshape.Busy(2 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(map[string]string{"hello": r.PathValue("name")})
		w.Write(b)
	})
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"message":"pong"}`))
	})
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	switch *mode {
	case "queue", "handler":
		app := quicklane.New(quicklane.WithWorkers(*workers), quicklane.WithPollers(*pollers))
		app.Static("GET", "/ping", "application/json", []byte(`{"message":"pong"}`))
		app.GET("/busy/{name}", func(c *quicklane.Context) error {
			cbshape.Busy(2 * time.Millisecond)
			return c.JSON(200, map[string]string{"hello": c.Param("name")})
		})
		if *mode == "queue" {
			app.GET("/hello/{name}", func(c *quicklane.Context) error {
				return c.JSON(200, map[string]string{"hello": c.Param("name")})
			})
		} else {
			app.GET("/hello/{name}", quicklane.Handler(mux))
		}
		if err := app.Start(addr); err != nil {
			log.Fatal(err)
		}
	case "callback", "callback-goroutine":
		s, err := cbshape.Start(*port, *workers, strings.HasSuffix(*mode, "goroutine"))
		if err != nil {
			log.Fatal(err)
		}
		defer s.Stop()
	case "nethttp":
		go func() { log.Fatal(http.ListenAndServe(addr, mux)) }()
	default:
		log.Fatal("unknown mode")
	}
	<-stop
}
