// Command coder serves the WebSocket part of the example contract with
// coder/websocket, unchanged, behind quicklane's native front: /ws/echo is
// the echo loop coder/websocket runs the Autobahn suite against
// (internal/test/wstest.EchoLoop), /ws/chat/{room} the shape of its
// internal/examples/chat (subscribers with a message buffer, a publish that
// closes the slow ones, writes with a timeout), with rooms and messages from
// the socket itself. Handlers sit on a plain http.ServeMux; only the server
// start differs (quicklane.Mount and App.Start instead of
// http.ListenAndServe). websocket.Accept writes its 101 with WriteHeader and
// then hijacks: the adapter sends that 101 first on the connection it hands
// over.
//
// coder/websocket does not check that text messages are UTF-8 (its own
// Autobahn run skips cases 6.* and 7.5.1 for that reason), so neither does
// this example.
//
// PORT (default 8080) and WORKERS (default: one loop per core).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	quicklane "github.com/quicklane/quicklane/bindings/go"
)

// echoLoop echoes every message back: coder/websocket's wstest.EchoLoop,
// with c.Read and c.Write of whole messages in place of its streaming
// c.Reader / c.Writer copy (which sends each message as a data frame and an
// empty final continuation frame: valid, but tests/ws_contract.py reads
// one frame per message).
func echoLoop(ctx context.Context, c *websocket.Conn) error {
	defer c.Close(websocket.StatusInternalError, "")

	c.SetReadLimit(1 << 30)

	ctx, cancel := context.WithTimeout(ctx, time.Minute*5)
	defer cancel()

	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return err
		}

		err = c.Write(ctx, typ, b)
		if err != nil {
			return err
		}
	}
}

func echoHandler(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		log.Println(err)
		return
	}
	err = echoLoop(r.Context(), c)
	if websocket.CloseStatus(err) != websocket.StatusNormalClosure && websocket.CloseStatus(err) != -1 {
		log.Println("echo:", err)
	}
}

// ---- coder/websocket's internal/examples/chat, with rooms ----

// chatServer enables broadcasting to a set of subscribers.
type chatServer struct {
	// subscriberMessageBuffer controls the max number
	// of messages that can be queued for a subscriber
	// before it is kicked.
	subscriberMessageBuffer int

	logf func(f string, v ...any)

	subscribersMu sync.Mutex
	subscribers   map[string]map[*subscriber]struct{}
	members       map[string]int
}

// subscriber represents a subscriber.
// Messages are sent on the msgs channel and if the client
// cannot keep up with the messages, closeSlow is called.
type subscriber struct {
	msgs      chan []byte
	closeSlow func()
}

// subscribeHandler accepts the WebSocket connection and then subscribes
// it to all future messages of its room.
func (cs *chatServer) subscribeHandler(w http.ResponseWriter, r *http.Request) {
	err := cs.subscribe(w, r)
	if errors.Is(err, context.Canceled) {
		return
	}
	if websocket.CloseStatus(err) == websocket.StatusNormalClosure ||
		websocket.CloseStatus(err) == websocket.StatusGoingAway {
		return
	}
	if err != nil {
		cs.logf("%v", err)
		return
	}
}

// subscribe subscribes the given WebSocket to all broadcast messages of its
// room, and publishes what it reads.
func (cs *chatServer) subscribe(w http.ResponseWriter, r *http.Request) error {
	room := r.PathValue("room")
	var mu sync.Mutex
	var c *websocket.Conn
	var closed bool
	s := &subscriber{
		msgs: make(chan []byte, cs.subscriberMessageBuffer),
		closeSlow: func() {
			mu.Lock()
			defer mu.Unlock()
			closed = true
			if c != nil {
				c.Close(websocket.StatusPolicyViolation, "connection too slow to keep up with messages")
			}
		},
	}
	me := cs.addSubscriber(room, s)
	defer cs.deleteSubscriber(room, s)

	c2, err := websocket.Accept(w, r, nil)
	if err != nil {
		return err
	}
	mu.Lock()
	if closed {
		mu.Unlock()
		return net.ErrClosed
	}
	c = c2
	mu.Unlock()
	defer c.CloseNow()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		defer cancel()
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				errc <- err
				return
			}
			out, _ := json.Marshal(map[string]any{"room": room, "from": me, "text": string(msg)})
			cs.publish(room, out)
		}
	}()

	for {
		select {
		case msg := <-s.msgs:
			err := writeTimeout(ctx, time.Second*5, c, msg)
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return <-errc
		}
	}
}

// publish publishes the msg to all subscribers of room.
// It never blocks and so messages to slow subscribers
// are dropped.
func (cs *chatServer) publish(room string, msg []byte) {
	cs.subscribersMu.Lock()
	defer cs.subscribersMu.Unlock()

	for s := range cs.subscribers[room] {
		select {
		case s.msgs <- msg:
		default:
			go s.closeSlow()
		}
	}
}

// addSubscriber registers a subscriber and returns its member number.
func (cs *chatServer) addSubscriber(room string, s *subscriber) int {
	cs.subscribersMu.Lock()
	defer cs.subscribersMu.Unlock()
	if cs.subscribers[room] == nil {
		cs.subscribers[room] = map[*subscriber]struct{}{}
	}
	cs.subscribers[room][s] = struct{}{}
	cs.members[room]++
	return cs.members[room]
}

// deleteSubscriber deletes the given subscriber.
func (cs *chatServer) deleteSubscriber(room string, s *subscriber) {
	cs.subscribersMu.Lock()
	delete(cs.subscribers[room], s)
	cs.subscribersMu.Unlock()
}

func writeTimeout(ctx context.Context, timeout time.Duration, c *websocket.Conn, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	return c.Write(ctx, websocket.MessageText, msg)
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	workers, _ := strconv.Atoi(os.Getenv("WORKERS"))

	cs := &chatServer{
		subscriberMessageBuffer: 16,
		logf:                    log.Printf,
		subscribers:             map[string]map[*subscriber]struct{}{},
		members:                 map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/echo", echoHandler)
	mux.HandleFunc("GET /ws/chat/{room}", cs.subscribeHandler)

	// The only change from net/http: quicklane's front instead of
	// http.ListenAndServe(addr, mux) (quicklane.ListenAndServe does the same
	// in one call; Start lets the "listening" line come once it listens).
	app := quicklane.Mount(quicklane.New(quicklane.WithWorkers(workers)), mux)
	if err := app.Start("127.0.0.1:" + port); err != nil {
		log.Fatal(err)
	}
	log.Printf("coder/websocket behind quicklane %s listening on http://%s", quicklane.Version(), app.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	app.Shutdown(ctx)
}
