package quicklane

/*
#cgo pkg-config: quicklane
#include "qlgo.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Error is a failure reported by the native core: its status name (such as
// "QL_E_CONFLICT") and message.
type Error struct {
	Code    int    // the ql_status value (negative)
	Name    string // the status name, e.g. "QL_E_IO"
	Message string // the core's message
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Message == "" {
		return "quicklane: " + e.Name
	}
	return "quicklane: " + e.Message + " (" + e.Name + ")"
}

// errGone reports that the client left or the server stopped before the
// answer could be sent (QL_E_GONE).
var errGone = errors.New("quicklane: client gone")

func statusError(st C.ql_status, cerr *C.ql_error) error {
	if st == C.QL_OK {
		return nil
	}
	e := &Error{Code: int(st), Name: C.GoString(C.ql_status_name(st))}
	if cerr != nil {
		e.Message = C.GoString(C.ql_error_message(cerr))
		C.ql_error_free(&cerr)
	}
	return e
}

// Version returns the version of the native library, e.g. "0.1.0".
func Version() string { return C.GoString(C.ql_version()) }

// gostr copies a C view into a Go string.
func gostr(s C.ql_str) string {
	if s.len == 0 {
		return ""
	}
	return C.GoStringN(s.data, C.int(s.len))
}

// view is a Go string over C memory, without a copy; only for comparisons
// while the request is alive.
func view(s C.ql_str) string {
	if s.len == 0 {
		return ""
	}
	return unsafe.String((*byte)(unsafe.Pointer(s.data)), int(s.len))
}

func gobytes(s C.ql_str) []byte {
	if s.len == 0 {
		return []byte{}
	}
	return C.GoBytes(unsafe.Pointer(s.data), C.int(s.len))
}

// strData returns a pointer to a Go string's bytes for the duration of one
// cgo call that copies them (allowed by the cgo pointer rules: the memory
// holds no Go pointers and C keeps nothing).
func strData(s string) *C.char {
	if len(s) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s)))
}

// headerPack holds header names and values back to back, with their lengths
// (name, value, name, value, ...), as qlgo_pack_headers reads them in one crossing.
type headerPack struct {
	buf  []byte
	lens []C.size_t
}

func (p *headerPack) add(name, value string) {
	p.buf = append(append(p.buf, name...), value...)
	p.lens = append(p.lens, C.size_t(len(name)), C.size_t(len(value)))
}

// args are the C arguments: the bytes, the lengths and the number of headers.
func (p *headerPack) args() (*C.char, *C.size_t, C.size_t) {
	var hl *C.size_t
	if len(p.lens) > 0 {
		hl = &p.lens[0]
	}
	return bytesData(p.buf), hl, C.size_t(len(p.lens) / 2)
}

func bytesData(b []byte) *C.char {
	if len(b) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(&b[0]))
}

var _ = fmt.Sprintf
