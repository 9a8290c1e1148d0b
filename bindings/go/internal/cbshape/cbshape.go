// Package cbshape is the measured alternative dispatch shape: the core calls
// an exported Go function per request on its loop thread (a C→Go callback).
// It exists only for the comparison in docs/go.md; the quicklane package uses
// queued delivery.
package cbshape

/*
#cgo pkg-config: quicklane
#include <stdint.h>
#include "../../qlgo.h"

void qlgoCallback(uintptr_t data, ql_request *req);

static void cb_trampoline(void *ud, ql_request *req) { qlgoCallback((uintptr_t)ud, req); }

static ql_status cb_route(ql_app *app, _GoString_ method, _GoString_ pattern, uintptr_t data) {
	ql_handler h = QL_HANDLER_INIT;
	h.on_request = cb_trampoline;
	h.user_data = (void *)data;
	return ql_app_route(app, _GoStringPtr(method), _GoStringLen(method),
	                    _GoStringPtr(pattern), _GoStringLen(pattern), &h, NULL);
}
static const char *qlgo_route_cstr(const ql_request *r) {
	static __thread char buf[64];
	ql_str s = ql_request_route(r);
	size_t n = s.len < 63 ? s.len : 63;
	memcpy(buf, s.data, n); buf[n] = 0;
	return buf;
}
*/
import "C"

import (
	"encoding/json"
	"errors"
	"runtime/cgo"
	"time"
	"unsafe"
)

// Server serves GET /hello/{name} with a Go callback per request.
type Server struct {
	app    *C.ql_app
	srv    *C.ql_server
	handle cgo.Handle
	// Goroutine answers from a new goroutine (like quicklane's handlers);
	// otherwise the callback answers inline on the loop thread.
	Goroutine bool
}

type req struct {
	srv *C.ql_server
	id  C.ql_req_id
	r   *C.ql_request
}

// Busy burns CPU for about d (the /busy route of the measurements).
func Busy(d time.Duration) int {
	x := 0
	for t0 := time.Now(); time.Since(t0) < d; {
		for i := 0; i < 1000; i++ {
			x += i * i
		}
	}
	return x
}

func (s *Server) answer(q req) {
	var v C.ql_str
	C.ql_request_param(q.r, (*C.char)(unsafe.Pointer(unsafe.StringData("name"))), 4, &v)
	name := C.GoStringN(v.data, C.int(v.len))
	if C.GoString(C.qlgo_route_cstr(q.r)) == "/busy/{name}" {
		Busy(2 * time.Millisecond)
	}
	b, _ := json.Marshal(map[string]string{"hello": name})
	ct := "application/json"
	C.qlgo_respond(q.srv, q.id, 200, (*C.char)(unsafe.Pointer(unsafe.StringData(ct))), C.size_t(len(ct)),
		nil, nil, 0, (*C.char)(unsafe.Pointer(&b[0])), C.size_t(len(b)), 0, nil)
}

// Start serves on 127.0.0.1:port with the given number of loops.
func Start(port, workers int, goroutine bool) (*Server, error) {
	s := &Server{Goroutine: goroutine}
	s.handle = cgo.NewHandle(s)
	if C.ql_app_new(&s.app, nil) != C.QL_OK {
		return nil, errors.New("app")
	}
	C.qlgo_static(s.app, "GET", "/ping", 200, "application/json",
		(*C.char)(unsafe.Pointer(unsafe.StringData(`{"message":"pong"}`))), 18, nil)
	if C.cb_route(s.app, "GET", "/hello/{name}", C.uintptr_t(s.handle)) != C.QL_OK {
		return nil, errors.New("route")
	}
	if C.cb_route(s.app, "GET", "/busy/{name}", C.uintptr_t(s.handle)) != C.QL_OK {
		return nil, errors.New("route")
	}
	if C.qlgo_server_new(s.app, "127.0.0.1", C.uint16_t(port), C.uint32_t(workers), 0, 0, 0, 0, &s.srv, nil) != C.QL_OK {
		return nil, errors.New("server")
	}
	if C.ql_server_start(s.srv, nil) != C.QL_OK {
		return nil, errors.New("start")
	}
	return s, nil
}

// Stop stops and frees the server.
func (s *Server) Stop() {
	C.ql_server_stop(s.srv, 1000, nil)
	C.ql_server_free(&s.srv)
	C.ql_app_free(&s.app)
	s.handle.Delete()
}
