package cbshape

/*
#include <stdint.h>
#include <quicklane.h>
*/
import "C"

import "runtime/cgo"

//export qlgoCallback
func qlgoCallback(data C.uintptr_t, r *C.ql_request) {
	s := cgo.Handle(data).Value().(*Server)
	q := req{srv: C.ql_request_server(r), id: C.ql_request_id(r), r: r}
	if s.Goroutine {
		go s.answer(q)
		return
	}
	s.answer(q)
}
