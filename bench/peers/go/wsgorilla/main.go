// Command wsgorilla is the gorilla/websocket peer of bench/run's ws-lang
// scenario: one program, the same gorilla code, served either by net/http
// (wsl-gorilla) or through quicklane's net/http adapter,
// quicklane.ListenAndServe (wsl-ql-gorilla: its http.Hijacker hands gorilla
// the connection), on 127.0.0.1:$PORT:
//
//	GET /ws/echo         each message sent back as it came (text as text, binary as binary)
//	GET /ws/chat/{room}  each message published to every member of the room, sender
//	                     included, as {"room":…,"from":n,"text":…}; n = the sender's
//	                     member number in the room, from 1 in order of joining
//	GET /ping            {"message":"pong"} (bench/run's start-up check)
//
// The handlers are gorilla's own examples' shape: the echo reads and writes
// whole messages (ReadMessage / WriteMessage); a chat member has a writer
// goroutine fed by a buffered channel (256, as gorilla's chat example), and a
// message is encoded once and framed once for the whole room
// (websocket.PreparedMessage); a member 256 messages behind misses the
// message instead of stalling the room. Upgrader defaults (4 KiB buffers, no
// compression).
//
//	PORT=8080 go run ./wsgorilla                   # net/http
//	PORT=8080 go run ./wsgorilla -server quicklane # quicklane.ListenAndServe (WORKERS loops)
//
// WS_SERVER=quicklane does what -server quicklane does. The quicklane part is
// quicklane.go; built with -tags nethttponly the program needs no quicklane
// library and serves net/http only (bench/run falls back to that when the
// binding does not build, so the net/http row still runs).
// bench/run builds it after `go get github.com/gorilla/websocket@v1.5.3`.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"strconv"
	"sync"

	"github.com/gorilla/websocket"
)

// serveQuicklane is set by quicklane.go (nil when built with -tags nethttponly).
var serveQuicklane func(addr string, h http.Handler, workers int) error

var upgrader = websocket.Upgrader{} // the defaults; ws_client sends no Origin

const sendQueue = 256

var pong = []byte(`{"message":"pong"}`)

func echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered with an HTTP error
	}
	defer c.Close()
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}

type member struct {
	conn *websocket.Conn
	send chan *websocket.PreparedMessage
}

type room struct {
	next    int
	members map[*member]struct{}
}

var (
	mu    sync.Mutex
	rooms = map[string]*room{}
)

type chatMessage struct {
	Room string `json:"room"`
	From int    `json:"from"`
	Text string `json:"text"`
}

// writer is a member's only writer (gorilla allows one at a time).
func (m *member) writer() {
	for pm := range m.send {
		if err := m.conn.WritePreparedMessage(pm); err != nil {
			m.conn.Close() // the reader returns, then send is closed
			for range m.send {
			}
			return
		}
	}
	m.conn.Close()
}

func chat(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("room")
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	m := &member{conn: c, send: make(chan *websocket.PreparedMessage, sendQueue)}
	mu.Lock()
	rm := rooms[name]
	if rm == nil {
		rm = &room{next: 1, members: map[*member]struct{}{}}
		rooms[name] = rm
	}
	from := rm.next
	rm.next++
	rm.members[m] = struct{}{}
	mu.Unlock()
	go m.writer()
	defer func() {
		mu.Lock()
		delete(rm.members, m)
		if len(rm.members) == 0 && rooms[name] == rm {
			delete(rooms, name)
		}
		mu.Unlock()
		close(m.send) // nobody sends to it any more: it left the room under mu
	}()
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		b, err := json.Marshal(chatMessage{Room: name, From: from, Text: string(msg)})
		if err != nil {
			return
		}
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
		if err != nil {
			return
		}
		mu.Lock()
		for o := range rm.members {
			select {
			case o.send <- pm:
			default: // that member is sendQueue messages behind: it misses this one
			}
		}
		mu.Unlock()
	}
}

func main() {
	server := flag.String("server", os.Getenv("WS_SERVER"), "nethttp (default) or quicklane")
	flag.Parse()
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	addr := "127.0.0.1:" + port
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(pong)
	})
	mux.HandleFunc("GET /ws/echo", echo)
	mux.HandleFunc("GET /ws/chat/{room}", chat)
	switch *server {
	case "", "nethttp":
		log.Printf("gorilla/websocket on net/http listening on http://%s", addr)
		log.Fatal(http.ListenAndServe(addr, mux))
	case "quicklane":
		if serveQuicklane == nil {
			log.Fatal("built with -tags nethttponly: no quicklane server")
		}
		workers, _ := strconv.Atoi(os.Getenv("WORKERS"))
		log.Printf("gorilla/websocket through quicklane.ListenAndServe listening on http://%s", addr)
		log.Fatal(serveQuicklane(addr, mux, workers))
	default:
		log.Fatalf("-server %q: nethttp or quicklane", *server)
	}
}
