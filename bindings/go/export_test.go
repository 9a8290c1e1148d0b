package quicklane

import "time"

// InFlight exposes, to the tests only, the requests the core has handed to
// Go and not seen finished (ql_server_stats) and those the Go side tracks.
func InFlight(a *App) (native uint64, goSide int) { return a.inFlight() }

// EarlyAborts exposes, to the tests only, the aborts the Go side keeps for
// requests it has not seen; AbortUnknown feeds it aborts of ids it never
// saw (as when an abort arrives after its request was answered), with
// earlyTTL set to ttl while it runs.
func EarlyAborts(a *App) int {
	s := a.serving()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.early)
}

func AbortUnknown(a *App, ids []uint64, ttl time.Duration) {
	s := a.serving()
	s.mu.Lock()
	old := s.earlyTTL
	s.earlyTTL = ttl
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.earlyTTL = old
		s.mu.Unlock()
	}()
	for _, id := range ids {
		s.abort(id)
	}
}

// WSLive exposes, to the tests only, the WebSockets the Go side tracks
// (accepted and not closed).
func WSLive(a *App) int64 {
	s := a.serving()
	if s == nil {
		return 0
	}
	return s.wsCount.Load()
}
