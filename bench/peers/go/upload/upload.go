// Package upload is the upload scenario's net/http handler, shared by the two
// net/http-shaped Go servers of bench/run: plain net/http serves it directly
// (upload/nethttp), the other through quicklane.Handler (upload/handler).
package upload

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
)

// Mux serves GET /ping ({"message":"pong"}) and POST /upload: io.Copy hashes
// r.Body with SHA-256 as it arrives (never held whole), and the answer is
// {"bytes":N,"sha256":"<hex>"}.
func Mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"message":"pong"}`)
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"bytes":`+strconv.FormatInt(n, 10)+`,"sha256":"`+hex.EncodeToString(h.Sum(nil))+`"}`)
	})
	return mux
}
