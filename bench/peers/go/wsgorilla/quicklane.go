//go:build !nethttponly

package main

import (
	"net/http"

	quicklane "github.com/quicklane/quicklane/bindings/go"
)

func init() {
	serveQuicklane = func(addr string, h http.Handler, workers int) error {
		var opts []quicklane.Option
		if workers > 0 {
			opts = append(opts, quicklane.WithWorkers(workers))
		}
		return quicklane.ListenAndServe(addr, h, opts...)
	}
}
