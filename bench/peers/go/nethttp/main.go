// Command nethttp is the plain net/http peer of examples/go/hello
// (bench/run): the contract's ServeMux on http.Server, PORT env.
package main

import (
	"log"
	"net/http"
	"os"

	"quicklane.local/bench/peers/contract"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: contract.Mux()}
	log.Printf("net/http on http://%s", srv.Addr)
	log.Fatal(srv.ListenAndServe())
}
