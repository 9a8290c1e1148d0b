// Command gorilla serves the WebSocket part of the example contract with
// gorilla/websocket, unchanged, behind quicklane's native front: the
// handlers are gorilla's own examples (examples/autobahn's echoReadAll for
// /ws/echo, examples/chat's hub and client for /ws/chat/{room}, with a hub
// per room and one message per frame), on a plain http.ServeMux; only the
// server start differs (quicklane.Mount and App.Start instead of
// http.ListenAndServe). The upgrade goes through the adapter's
// http.Hijacker.
//
//	GET /ws/echo         → each message back as it came (text as text, binary as binary)
//	GET /ws/chat/{room}  → each message to every member of the room, sender included,
//	                       as {"room": ..., "from": <member number>, "text": ...}
//
// PORT (default 8080) and WORKERS (default: one loop per core).
package main

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	quicklane "github.com/quicklane/quicklane/bindings/go"
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin: func(r *http.Request) bool {
		return true
	},
}

// echoReadAll echoes messages from the client by reading the entire message
// (gorilla's examples/autobahn/server.go).
func echoReadAll(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		log.Println("Upgrade:", err)
		return
	}
	defer conn.Close()
	for {
		mt, b, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if mt == websocket.TextMessage {
			if !utf8.Valid(b) {
				conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseInvalidFramePayloadData, ""),
					time.Time{})
				log.Println("ReadAll: invalid utf8")
			}
		}
		err = conn.WriteMessage(mt, b)
		if err != nil {
			return
		}
	}
}

// ---- gorilla's examples/chat, a hub per room ----

const (
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = (pongWait * 9) / 10
	maxMessageSize = 64 << 10
)

type message struct {
	from int
	text []byte
}

// Hub maintains the set of active clients of a room and broadcasts messages
// to them.
type Hub struct {
	room       string
	clients    map[*Client]bool
	broadcast  chan message
	register   chan *Client
	unregister chan *Client
	members    int
}

func newHub(room string) *Hub {
	return &Hub{
		room:       room,
		broadcast:  make(chan message),
		register:   make(chan *Client),
		unregister: make(chan *Client),
		clients:    make(map[*Client]bool),
	}
}

func (h *Hub) run() {
	for {
		select {
		case client := <-h.register:
			h.members++
			client.number = h.members
			h.clients[client] = true
			close(client.registered)
		case client := <-h.unregister:
			if _, ok := h.clients[client]; ok {
				delete(h.clients, client)
				close(client.send)
			}
		case m := <-h.broadcast:
			out, _ := json.Marshal(map[string]any{"room": h.room, "from": m.from, "text": string(m.text)})
			for client := range h.clients {
				select {
				case client.send <- out:
				default:
					close(client.send)
					delete(h.clients, client)
				}
			}
		}
	}
}

var (
	hubsMu sync.Mutex
	hubs   = map[string]*Hub{}
)

func hubFor(room string) *Hub {
	hubsMu.Lock()
	defer hubsMu.Unlock()
	h := hubs[room]
	if h == nil {
		h = newHub(room)
		hubs[room] = h
		go h.run()
	}
	return h
}

// Client is a middleman between the websocket connection and the hub.
type Client struct {
	hub        *Hub
	conn       *websocket.Conn
	send       chan []byte
	number     int
	registered chan struct{}
}

// readPump pumps messages from the websocket connection to the hub.
func (c *Client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { c.conn.SetReadDeadline(time.Now().Add(pongWait)); return nil })
	for {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			if websocket.IsUnexpectedCloseError(err, websocket.CloseGoingAway, websocket.CloseAbnormalClosure) {
				log.Printf("error: %v", err)
			}
			break
		}
		c.hub.broadcast <- message{from: c.number, text: msg}
	}
}

// writePump pumps messages from the hub to the websocket connection.
func (c *Client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case msg, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				// The hub closed the channel.
				c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

// serveWs handles websocket requests from the peer.
func serveWs(w http.ResponseWriter, r *http.Request) {
	hub := hubFor(r.PathValue("room"))
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		log.Println(err)
		return
	}
	client := &Client{hub: hub, conn: conn, send: make(chan []byte, 256), registered: make(chan struct{})}
	client.hub.register <- client
	<-client.registered

	// Allow collection of memory referenced by the caller by doing all work in
	// new goroutines.
	go client.writePump()
	go client.readPump()
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	workers, _ := strconv.Atoi(os.Getenv("WORKERS"))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/echo", echoReadAll)
	mux.HandleFunc("GET /ws/chat/{room}", serveWs)

	// The only change from net/http: quicklane's front instead of
	// http.ListenAndServe(addr, mux) (quicklane.ListenAndServe does the same
	// in one call; Start lets the "listening" line come once it listens).
	app := quicklane.Mount(quicklane.New(quicklane.WithWorkers(workers)), mux)
	if err := app.Start("127.0.0.1:" + port); err != nil {
		log.Fatal(err)
	}
	log.Printf("gorilla/websocket behind quicklane %s listening on http://%s", quicklane.Version(), app.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	app.Shutdown(ctx)
}
