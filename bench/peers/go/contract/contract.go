// Package contract is the example contract as one net/http ServeMux, shared by
// the two Go peers of bench/run: plain net/http serves it directly,
// the other through quicklane.Handler (quicklane.Mount).
package contract

import (
	"encoding/json"
	"io"
	"net/http"
)

var pong = []byte(`{"message":"pong"}`)

// Mux serves GET /ping, GET /hello/{name} and POST /echo as examples/go/hello does.
func Mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(pong)
	})
	mux.HandleFunc("GET /hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		b, err := json.Marshal(map[string]string{"hello": r.PathValue("name")})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || !json.Valid(body) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			w.Write([]byte(`{"detail":"invalid JSON"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	return mux
}
