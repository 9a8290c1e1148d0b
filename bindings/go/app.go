package quicklane

/*
#include <stdlib.h>
#include "qlgo.h"
*/
import "C"

import (
	"context"
	"errors"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/cgo"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// HandlerFunc answers one request. Returning an error that was not already
// answered gives a 500 with a JSON body (an *HTTPError gives its own status);
// a panic does the same and the process lives on.
type HandlerFunc func(c *Context) error

// ErrServerClosed is returned by Listen and ListenAndServe after Shutdown.
// It is http.ErrServerClosed, so existing checks keep working.
var ErrServerClosed = http.ErrServerClosed

// Option configures an App (see New).
type Option func(*App)

// WithWorkers sets the number of native event loops (threads). 0 means one
// per CPU core.
func WithWorkers(n int) Option { return func(a *App) { a.workers = n } }

// WithPollers sets how many goroutines wait on the native queue for batches
// of requests. Each one holds an OS thread while it waits. The default is
// GOMAXPROCS, clamped to 2..4.
func WithPollers(n int) Option { return func(a *App) { a.pollers = n } }

// WithMaxBodyBytes sets the largest request body the core accepts: larger
// ones get 413 (a declared Content-Length before Go runs; a streamed body
// crossing it while it arrives, and the handler's read returns
// *http.MaxBytesError). It applies to buffered bodies (0 means the core's
// default, 1 MiB; the core buffers at most 3 GiB) and to streamed ones
// (StreamBody routes without a limit of their own, and every route of Mount
// and ListenAndServe; 0 means none, as net/http).
func WithMaxBodyBytes(n int64) Option { return func(a *App) { a.maxBody = n } }

// WithBodyWindowBytes sets how many bytes of a streamed body the core holds
// for a handler that has not read them yet before it stops reading from the
// client (backpressure). 0 means the core's default, 256 KiB; the core
// accepts 4 KiB .. 64 MiB.
func WithBodyWindowBytes(n int) Option { return func(a *App) { a.bodyWindow = n } }

// WithHandlerTimeout sets how long a handler may run before the client gets
// 503 {"detail":"handler timed out"} (the handler's Context is then
// cancelled, and what it writes later is dropped). 0 means the core's
// default, 60 s; the core refuses values under 10 ms.
func WithHandlerTimeout(d time.Duration) Option { return func(a *App) { a.handlerTimeout = d } }

// WithErrorLog sets the logger for handler errors and panics (log.Default()
// when nil). Use log.New(io.Discard, "", 0) to silence it.
func WithErrorLog(l *log.Logger) Option { return func(a *App) { a.errorLog = l } }

type routeKind int

const (
	routeGo routeKind = iota
	routeStatic
	routeWS
)

type route struct {
	rules       routeRules
	kind        routeKind
	method      string
	pattern     string
	handler     HandlerFunc
	contentType string
	body        []byte
	ws          *wsRoute
}

// App holds routes and serves them on the native core. Routes are added
// before Listen or Start; a route added while serving takes effect at the
// next start. An App serves at most one server at a time and may be started
// again after Shutdown.
type App struct {
	workers  int
	pollers  int
	maxBody  int64
	errorLog *log.Logger

	bodyWindow int

	handlerTimeout time.Duration

	mu     sync.Mutex
	routes []route
	native []func(*C.ql_app) error // app-wide native rules, in order
	srv    *server
}

// New returns an App with no routes.
func New(opts ...Option) *App {
	a := &App{}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Static registers a route answered entirely by the native core with a fixed
// response (status 200): the request never enters Go.
func (a *App) Static(method, path, contentType string, body []byte, rules ...Rule) {
	a.add(route{kind: routeStatic, method: method, pattern: path, contentType: contentType,
		body: append([]byte(nil), body...), rules: makeRules(rules)})
}

// Handle registers h for method and pattern. Patterns use "{name}" (or
// ":name") for a path segment and a trailing "{name...}" (or "*name") for
// the rest of the path. Conflicting routes are reported by Start/Listen.
// Rules (RateLimit, RequireAPIKey) are checked in the core before Go runs.
func (a *App) Handle(method, pattern string, h HandlerFunc, rules ...Rule) {
	a.add(route{kind: routeGo, method: method, pattern: pattern, handler: h, rules: makeRules(rules)})
}

// GET registers h for GET (HEAD requests are answered from it by the core).
func (a *App) GET(pattern string, h HandlerFunc, rules ...Rule) {
	a.Handle("GET", pattern, h, rules...)
}

// POST registers h for POST.
func (a *App) POST(pattern string, h HandlerFunc, rules ...Rule) {
	a.Handle("POST", pattern, h, rules...)
}

// PUT registers h for PUT.
func (a *App) PUT(pattern string, h HandlerFunc, rules ...Rule) {
	a.Handle("PUT", pattern, h, rules...)
}

// PATCH registers h for PATCH.
func (a *App) PATCH(pattern string, h HandlerFunc, rules ...Rule) {
	a.Handle("PATCH", pattern, h, rules...)
}

// DELETE registers h for DELETE.
func (a *App) DELETE(pattern string, h HandlerFunc, rules ...Rule) {
	a.Handle("DELETE", pattern, h, rules...)
}

// OPTIONS registers h for OPTIONS.
func (a *App) OPTIONS(pattern string, h HandlerFunc, rules ...Rule) {
	a.Handle("OPTIONS", pattern, h, rules...)
}

// AnyMethods are the methods Any registers (HEAD comes from GET).
var AnyMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// Any registers h for every method in AnyMethods.
func (a *App) Any(pattern string, h HandlerFunc) {
	for _, m := range AnyMethods {
		a.Handle(m, pattern, h)
	}
}

func (a *App) add(r route) {
	a.mu.Lock()
	a.routes = append(a.routes, r)
	a.mu.Unlock()
}

// Listen starts serving on addr ("host:port"; an empty host means all
// interfaces) and blocks until Shutdown, then returns ErrServerClosed. Any
// other error means the server did not start.
func (a *App) Listen(addr string) error {
	if err := a.Start(addr); err != nil {
		return err
	}
	s := a.serving()
	if s != nil {
		<-s.closed
	}
	return ErrServerClosed
}

// Start starts serving on addr and returns once the native listeners are
// bound; use Addr for the port chosen with ":0". Stop with Shutdown.
func (a *App) Start(addr string) error {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return errors.New("quicklane: bad port in " + strconv.Quote(addr))
	}
	if host == "" {
		host = "0.0.0.0"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		return errors.New("quicklane: app is already serving")
	}
	s, err := newServer(a, host, uint16(port))
	if err != nil {
		return err
	}
	a.srv = s
	return nil
}

// Addr returns the address being served ("127.0.0.1:43123"), or "" when the
// app is not serving.
func (a *App) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv == nil {
		return ""
	}
	return net.JoinHostPort(a.srv.host, strconv.Itoa(a.srv.port))
}

// Shutdown stops the server like http.Server.Shutdown: it stops accepting,
// closes idle connections and waits for in-flight requests to be answered.
// When ctx ends first, the remaining connections are closed (their request
// contexts are cancelled), and Shutdown returns ctx.Err() once ctx is done;
// native resources are released when the last handler returns. Shutdown of
// an app that is not serving returns nil.
func (a *App) Shutdown(ctx context.Context) error {
	s := a.serving()
	if s == nil {
		return nil
	}
	s.shutdownOnce.Do(func() { go s.shutdown(ctx) })
	var err error
	select {
	case <-s.closed:
	case <-ctx.Done():
		err = ctx.Err()
	}
	a.mu.Lock()
	if a.srv == s {
		a.srv = nil
	}
	a.mu.Unlock()
	return err
}

// server is one native server and its queue, pollers and handles.
type server struct {
	app     *App
	host    string
	port    int
	queue   *C.ql_queue
	capp    *C.ql_app
	csrv    *C.ql_server
	handles []cgo.Handle
	routes  map[uintptr]*route
	qfile   *os.File // a dup of the queue's eventfd, for the netpoller

	pollers  sync.WaitGroup
	handlers sync.WaitGroup

	mu       sync.Mutex
	inflight map[uint64]*Context
	// Aborts seen before their request (several pollers), with when. An
	// abort that comes after its request was answered (the client left as
	// the answer went) has no request to wait for: sweepEarly drops such
	// entries once they are older than earlyTTL, so the map stays bounded.
	early      map[uint64]time.Time
	earlySweep int           // len(early) at which abort sweeps next
	earlyTTL   time.Duration // earlyTTLDefault; tests shorten it

	work chan job      // unbuffered: a send succeeds only when a worker is idle
	quit chan struct{} // closed at the end of shutdown: idle workers exit

	shutdownOnce sync.Once
	closed       chan struct{}

	// WebSockets: the sockets by their tag (accepted, not yet closed), the
	// order of their events across pollers, and the guard of calls made from
	// outside handlers (App.Publish, a WSConn kept past its handler).
	wsConns  sync.Map // uintptr → *sock
	hijacked sync.Map // *hijackConn → struct{}: not closed by their owner yet
	wsKey    atomic.Uintptr
	wsCount  atomic.Int64
	wsOrder  sync.Mutex // held from a batch's poll to the end of its WS events' dispatch
	pollMu   sync.Mutex // serialises blocking polls (QUICKLANE_GO_POLL=block), as the fd lock does
	liveMu   sync.RWMutex
	freed    bool // under liveMu: the native server is gone
}

func newServer(a *App, host string, port uint16) (_ *server, err error) {
	s := &server{app: a, host: host, routes: map[uintptr]*route{},
		inflight: map[uint64]*Context{}, early: map[uint64]time.Time{}, earlySweep: earlySweepMin, earlyTTL: earlyTTLDefault, closed: make(chan struct{}),
		work: make(chan job), quit: make(chan struct{})}
	var cerr *C.ql_error
	defer func() {
		if err != nil {
			s.free()
		}
	}()
	if st := C.ql_queue_new(&s.queue, &cerr); st != C.QL_OK {
		return nil, statusError(st, cerr)
	}
	if st := C.ql_app_new(&s.capp, &cerr); st != C.QL_OK {
		return nil, statusError(st, cerr)
	}
	for i := range a.routes {
		rc := a.routes[i]
		r := &rc
		var st C.ql_status
		switch r.kind {
		case routeStatic:
			st = C.qlgo_static(s.capp, r.method, r.pattern, 200, r.contentType,
				bytesData(r.body), C.size_t(len(r.body)), &cerr)
		case routeWS:
			if r.ws.err != nil {
				return nil, r.ws.err
			}
			h := cgo.NewHandle(r)
			s.handles = append(s.handles, h)
			s.routes[uintptr(h)] = r
			o := &r.ws.opts
			st = C.qlgo_ws_queue(s.capp, r.pattern, C.uint64_t(o.maxMessage), C.uint64_t(o.maxBackpressure),
				C.uint32_t(o.idle.Milliseconds()), C.uint32_t(o.ping.Milliseconds()), C.uint32_t(o.compression),
				C.uint32_t(o.windowBits), s.queue, C.uintptr_t(h), &cerr)
		default:
			h := cgo.NewHandle(r)
			s.handles = append(s.handles, h)
			s.routes[uintptr(h)] = r
			st = C.qlgo_route_queue(s.capp, r.method, r.pattern, s.queue, C.uintptr_t(h), &cerr)
		}
		if st != C.QL_OK {
			return nil, statusError(st, cerr)
		}
		if err := r.rules.apply(s.capp, r.method, r.pattern); err != nil {
			return nil, err
		}
	}
	for _, apply := range a.native {
		if err := apply(s.capp); err != nil {
			return nil, err
		}
	}
	workers := a.workers
	if workers < 0 {
		workers = 0
	}
	maxBody := max(a.maxBody, 0)
	buffered := min(maxBody, maxBufferedBody)
	window := min(max(a.bodyWindow, 0), math.MaxUint32)
	if st := C.qlgo_server_new(s.capp, host, C.uint16_t(port), C.uint32_t(workers),
		C.uint64_t(buffered), C.uint32_t(a.handlerTimeout.Milliseconds()), C.uint64_t(maxBody), C.uint32_t(window),
		&s.csrv, &cerr); st != C.QL_OK {
		return nil, statusError(st, cerr)
	}
	if st := C.ql_server_start(s.csrv, &cerr); st != C.QL_OK {
		return nil, statusError(st, cerr)
	}
	s.port = int(C.ql_server_port(s.csrv))
	n := a.pollers
	if n <= 0 {
		n = min(max(runtime.GOMAXPROCS(0), 2), 4)
	}
	if os.Getenv("QUICKLANE_GO_POLL") == "block" {
		for i := 0; i < n; i++ {
			s.pollers.Add(1)
			go s.poll()
		}
		return s, nil
	}
	fd, err := syscall.Dup(int(C.ql_queue_fd(s.queue)))
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(fd)
	s.qfile = os.NewFile(uintptr(fd), "quicklane-queue")
	for i := 0; i < n; i++ {
		s.pollers.Add(1)
		go s.pollNet(s.qfile)
	}
	return s, nil
}

const batchSize = 64

// maxBufferedBody is the core's bound of a buffered body (max_body_bytes):
// WithMaxBodyBytes above it still limits streamed bodies.
const maxBufferedBody = 3 << 30

// poll is one poller goroutine blocked in ql_queue_poll (a cgo call that
// holds its OS thread while it waits): one crossing per batch.
func (s *server) poll() {
	defer s.pollers.Done()
	b := newBatch()
	defer b.free()
	for {
		var n C.size_t
		s.pollMu.Lock()
		st := C.qlgo_poll(s.queue, &b.evs[0], &b.infos[0], batchSize, -1, &n)
		ws := st == C.QL_OK && b.hasWS(int(n))
		if ws {
			s.wsOrder.Lock()
		}
		s.pollMu.Unlock()
		if st != C.QL_OK {
			return
		}
		s.dispatch(b, int(n), ws)
	}
}

// pollNet is one poller goroutine that waits for the queue's eventfd in the
// Go runtime's netpoller (no OS thread parked in C), then takes a batch with
// a non-blocking ql_queue_poll. The pollers share f; its read lock lets one
// of them poll at a time, and each dispatches its batch outside the lock.
func (s *server) pollNet(f *os.File) {
	defer s.pollers.Done()
	b := newBatch()
	defer b.free()
	rc, err := f.SyscallConn()
	if err != nil {
		s.logf("quicklane: queue fd: %v", err)
		return
	}
	for {
		var n C.size_t
		var st C.ql_status
		ws := false
		err := rc.Read(func(uintptr) bool {
			st = C.qlgo_poll(s.queue, &b.evs[0], &b.infos[0], batchSize, 0, &n)
			// A WebSocket's events keep their order: the next batch's are
			// dispatched after this one's (the fd lock orders the polls).
			if ws = st == C.QL_OK && b.hasWS(int(n)); ws {
				s.wsOrder.Lock()
			}
			return st != C.QL_OK || n > 0
		})
		if err != nil || st != C.QL_OK {
			if ws {
				s.wsOrder.Unlock()
			}
			return
		}
		s.dispatch(b, int(n), ws)
	}
}

// batch is one poller's event buffer, in C memory so the core writes its
// pointers only into C memory.
type batch struct {
	evs   *[batchSize]C.ql_event
	infos *[batchSize]C.qlgo_info
}

func newBatch() batch {
	return batch{
		evs:   (*[batchSize]C.ql_event)(C.malloc(C.size_t(unsafe.Sizeof(C.ql_event{})) * batchSize)),
		infos: (*[batchSize]C.qlgo_info)(C.malloc(C.size_t(unsafe.Sizeof(C.qlgo_info{})) * batchSize)),
	}
}

// hasWS reports whether the first n events hold a WebSocket's.
func (b batch) hasWS(n int) bool {
	for i := 0; i < n; i++ {
		if k := b.evs[i].kind; k >= C.QL_EVENT_WS_OPEN && k <= C.QL_EVENT_WS_CLOSE {
			return true
		}
	}
	return false
}

func (b batch) free() {
	C.free(unsafe.Pointer(b.evs))
	C.free(unsafe.Pointer(b.infos))
}

// dispatch starts a goroutine per request of the batch and cancels the
// contexts of aborted ones. With ws set (s.wsOrder held), the WebSocket
// events go to their sockets first, in order, and wsOrder is released.
func (s *server) dispatch(b batch, n int, ws bool) {
	if ws {
		for i := 0; i < n; i++ {
			if k := b.evs[i].kind; k >= C.QL_EVENT_WS_OPEN && k <= C.QL_EVENT_WS_CLOSE {
				s.wsEvent(&b.evs[i], &b.infos[i].ws)
			}
		}
		s.wsOrder.Unlock()
	}
	for i := 0; i < n; i++ {
		ev := &b.evs[i]
		id := uint64(ev.id)
		switch ev.kind {
		case C.QL_EVENT_ABORT:
			s.abort(id)
			continue
		case C.QL_EVENT_BODY:
			s.bodyReady(id)
			continue
		case C.QL_EVENT_DRAIN:
			s.drained(id)
			continue
		case C.QL_EVENT_REQUEST:
		default:
			continue
		}
		r := s.routes[uintptr(C.qlgo_event_route(ev))]
		c := &Context{srv: s, csrv: ev.server, id: ev.id, req: ev.request, info: b.infos[i], route: r}
		s.mu.Lock()
		if _, ok := s.early[id]; ok {
			delete(s.early, id)
			c.ctx.cancel()
		} else {
			s.inflight[id] = c
		}
		s.mu.Unlock()
		s.handlers.Add(1)
		select {
		case s.work <- job{c, r}: // an idle worker takes it
		default:
			go s.worker(job{c, r})
		}
	}
}

type job struct {
	c *Context
	r *route
}

// workerIdle is how long a worker goroutine waits for the next request.
const workerIdle = 5 * time.Second

// worker runs requests on one goroutine until it has been idle for
// workerIdle. Reusing goroutines keeps their grown stacks: a fresh goroutine
// per request spent over 10% of the CPU growing its stack (encoding/json).
func (s *server) worker(j job) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		if j.r.kind == routeWS {
			s.serveWS(j.c, j.r)
		} else {
			s.serve(j.c, j.r)
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(workerIdle)
		select {
		case j = <-s.work:
		case <-t.C:
			return
		case <-s.quit:
			return
		}
	}
}

func (s *server) abort(id uint64) {
	s.mu.Lock()
	c, ok := s.inflight[id]
	if ok {
		delete(s.inflight, id)
	} else {
		now := time.Now()
		s.early[id] = now
		if len(s.early) >= s.earlySweep {
			s.sweepEarly(now)
		}
	}
	s.mu.Unlock()
	if ok {
		c.ctx.cancel()
	}
}

// earlyTTLDefault bounds how long an abort waits for its request: a REQUEST
// seen by another poller arrives within a batch's handling, far below this.
const earlyTTLDefault = 10 * time.Second

const earlySweepMin = 1024

// sweepEarly drops early aborts older than s.earlyTTL (s.mu held); the next
// sweep comes at twice what is left, so sweeping costs O(1) per abort.
func (s *server) sweepEarly(now time.Time) {
	for id, at := range s.early {
		if now.Sub(at) >= s.earlyTTL {
			delete(s.early, id)
		}
	}
	s.earlySweep = max(earlySweepMin, 2*len(s.early))
}

// bodyReady wakes the reader of a streamed body that the core told
// QL_E_AGAIN: bytes, the end or an error can be read now.
func (s *server) bodyReady(id uint64) {
	s.mu.Lock()
	var ready chan struct{}
	if c := s.inflight[id]; c != nil && c.bodyR != nil {
		ready = c.bodyR.ready
	}
	s.mu.Unlock()
	if ready != nil {
		select {
		case ready <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// drained wakes the writer of a streamed answer waiting for the socket.
func (s *server) drained(id uint64) {
	s.mu.Lock()
	var drain chan struct{}
	if c := s.inflight[id]; c != nil {
		drain = c.drain
	}
	s.mu.Unlock()
	if drain != nil {
		select {
		case drain <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// serving is the app's running server, nil when it is not serving.
func (a *App) serving() *server {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.srv
}

// inFlight reports the requests the core has handed to Go and not seen
// finished, and those the Go side tracks (for tests: export_test.go).
func (a *App) inFlight() (native uint64, goSide int) {
	s := a.serving()
	if s == nil {
		return 0, 0
	}
	st := C.ql_server_stats{version: C.QL_SERVER_STATS_VERSION}
	C.ql_server_stats_get(s.csrv, &st, nil)
	s.mu.Lock()
	goSide = len(s.inflight)
	s.mu.Unlock()
	return uint64(st.requests_in_flight), goSide
}

func (s *server) done(c *Context) {
	s.mu.Lock()
	delete(s.inflight, uint64(c.id))
	s.mu.Unlock()
	c.ctx.cancel()
}

func (s *server) logf(format string, args ...any) {
	l := s.app.errorLog
	if l == nil {
		l = log.Default()
	}
	l.Printf(format, args...)
}

func (s *server) serve(c *Context, r *route) {
	defer s.handlers.Done()
	defer s.done(c)
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler { // net/http's quiet abort
				buf := make([]byte, 8<<10)
				buf = buf[:runtime.Stack(buf, false)]
				s.logf("quicklane: panic serving %s %s: %v\n%s", c.Method(), c.Path(), p, buf)
			}
			c.failMidStream()
			c.failInternal()
		}
		c.finish()
	}()
	if err := r.handler(c); err != nil && !c.responded {
		var he *HTTPError
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &he):
			_ = c.JSON(he.Code, map[string]string{"detail": he.Message})
			return
		case errors.As(err, &tooLarge): // http.MaxBytesReader, or the core's 413 (then this is dropped)
			_ = c.JSON(http.StatusRequestEntityTooLarge, map[string]string{"detail": "request body too large"})
			return
		case errors.Is(err, ErrBodyIncomplete) || errors.Is(err, ErrBodyMalformed):
			// The client left (or the core answered 400): nothing to log.
			_ = c.JSON(http.StatusBadRequest, map[string]string{"detail": err.Error()})
			return
		}
		s.logf("quicklane: %s %s: %v", c.Method(), c.Path(), err)
		c.failInternal()
	} else if err != nil && c.streaming && !errors.Is(err, errClientGone) && !errors.Is(err, context.Canceled) {
		// Failed after its answer started streaming: the client must not
		// take what it got for the whole answer.
		s.logf("quicklane: %s %s: %v (after the answer started: cut)", c.Method(), c.Path(), err)
		c.failMidStream()
	}
}

func (s *server) shutdown(ctx context.Context) {
	timeout := uint32(math.MaxUint32)
	if d, ok := ctx.Deadline(); ok {
		ms := time.Until(d).Milliseconds()
		timeout = uint32(max(min(ms, math.MaxUint32), 0))
	}
	C.ql_server_stop(s.csrv, C.uint32_t(timeout), nil)
	// Every unanswered request now has its abort notice in the queue: let
	// the pollers drain it, then wait for the handlers before freeing.
	C.ql_queue_close(s.queue)
	s.pollers.Wait()
	if s.qfile != nil {
		s.qfile.Close()
	}
	// Every socket's close has been dispatched; an upgrade accepted whose
	// 101 never went out will not open now.
	s.wsAbandon()
	s.handlers.Wait()
	s.hijackRelease()
	close(s.quit)
	s.free()
	close(s.closed)
}

func (s *server) free() {
	s.liveMu.Lock()
	s.freed = true
	s.liveMu.Unlock()
	if s.csrv != nil {
		C.ql_server_free(&s.csrv)
	}
	if s.capp != nil {
		C.ql_app_free(&s.capp)
	}
	if s.queue != nil {
		C.ql_queue_close(s.queue)
		C.ql_queue_free(&s.queue)
	}
	for _, h := range s.handles {
		h.Delete()
	}
	s.handles = nil
}
