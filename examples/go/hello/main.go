// Command hello serves the quicklane example contract from Go:
//
//	GET  /ping          → {"message":"pong"}   native static route, never enters Go
//	GET  /hello/{name}  → {"hello":"<name>"}    Go handler
//	POST /echo          → the JSON body echoed  Go handler; invalid JSON → 400
//	GET  /ws/echo       → a WebSocket echoing each message (text as text, binary as binary)
//	GET  /ws/chat/{room} → a WebSocket whose messages reach every member of the room,
//	                      sender included, as {"room": ..., "from": <member number>, "text": ...}
//
// 404 and 405 (with Allow) come from the core. PORT (default 8080) and
// WORKERS (default: one loop per core) select the port and the loops.
package main

import (
	"context"
	"encoding/json"
	"log"
	"os"
	"os/signal"
	"strconv"
	"sync"
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

	app.WS("/ws/echo", func(c *quicklane.WSConn) error {
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return err // the client closed
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return err
			}
		}
	})

	// Member numbers count per room, from 1.
	var mu sync.Mutex
	members := map[string]int{}
	app.WS("/ws/chat/{room}", func(c *quicklane.WSConn) error {
		room := c.Param("room")
		mu.Lock()
		members[room]++
		me := members[room]
		mu.Unlock()
		topic := "chat:" + room
		if err := c.Subscribe(topic); err != nil {
			return err
		}
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return err
			}
			out, _ := json.Marshal(map[string]any{"room": room, "from": me, "text": string(msg)})
			// To every member, the sender included (c.Publish would skip it).
			if _, err := app.Publish(topic, quicklane.TextMessage, out); err != nil {
				return err
			}
		}
	})

	if err := app.Start("127.0.0.1:" + port); err != nil {
		log.Fatal(err)
	}
	log.Printf("quicklane %s (Go) listening on http://%s", quicklane.Version(), app.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := app.Shutdown(ctx); err != nil {
		log.Print(err)
	}
}
