// Command nethttp is the plain net/http peer of the upload scenario
// (bench/run): package upload's ServeMux (io.Copy(sha256, r.Body)) on
// http.Server, PORT env (GOMAXPROCS=1 from bench/run).
package main

import (
	"log"
	"net/http"
	"os"

	"quicklane.local/bench/peers/upload"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: upload.Mux()}
	log.Printf("net/http upload server on http://%s", srv.Addr)
	log.Fatal(srv.ListenAndServe())
}
