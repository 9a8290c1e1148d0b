package quicklane

// InFlight exposes, to the tests only, the requests the core has handed to
// Go and not seen finished (ql_server_stats) and those the Go side tracks.
func InFlight(a *App) (native uint64, goSide int) { return a.inFlight() }
