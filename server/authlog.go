package server

import (
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// DefaultAuthFailureLogInterval is the default of
// [Options.AuthFailureLogInterval].
const DefaultAuthFailureLogInterval = 30 * time.Second

// Bounds of the failed-authentication log.
const (
	// authLogMaxSources bounds the peer and user pairs tracked at once;
	// failures of further pairs are counted together.
	authLogMaxSources = 256
	// authLogMaxUserBytes bounds a user name as logged and tracked: the
	// name comes from the request and can be as long as its header.
	authLogMaxUserBytes = 64
)

// authSource is where failed authentications come from.
type authSource struct {
	peer string // the client's IP address, without its port
	user string // the user name presented, cut to authLogMaxUserBytes
}

// others stands for the sources beyond authLogMaxSources.
var others = authSource{peer: "*", user: "*"}

// authWindow counts the failures of one source in the current interval.
type authWindow struct {
	failures int    // since the window opened
	method   string // of the last failure
	reason   string // of the last failure
}

// authLog logs failed authentications without letting a client that keeps
// failing flood the log. For each source (client address and user name) the
// first failure is logged at once and opens a window of one interval; the
// failures that follow within it are counted, and when it closes one line
// reports how many there were, and the next window opens. A source that
// fails no more within a window is forgotten. So a source writes at most
// one line per interval, and the log at most authLogMaxSources+1 lines per
// interval: failures of sources beyond that bound are counted under one
// line of their own. [Server.Shutdown] reports the counts of the open
// windows.
//
// It is safe for concurrent use. Its timers run only while failures are
// counted.
type authLog struct {
	log      *slog.Logger
	interval time.Duration
	// afterFunc starts a window's timer; time.AfterFunc but in tests.
	afterFunc func(time.Duration, func()) interface{ Stop() bool }

	// mu guards the fields below; a leaf. Methods named …Locked expect
	// it held.
	mu      sync.Mutex
	windows map[authSource]*authWindow
	timers  map[authSource]interface{ Stop() bool }
	closed  bool
}

func newAuthLog(log *slog.Logger, interval time.Duration) *authLog {
	return &authLog{
		log:      log,
		interval: interval,
		afterFunc: func(d time.Duration, f func()) interface{ Stop() bool } {
			return time.AfterFunc(d, f)
		},
		windows: map[authSource]*authWindow{},
		timers:  map[authSource]interface{ Stop() bool }{},
	}
}

// failed records a failed authentication of user (empty when none was
// presented) from peer, calling method, for reason.
func (a *authLog) failed(peer, user, method, reason string) {
	src := authSource{peer: peer, user: logSafeUser(user)}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		// The server no longer takes requests: nothing to aggregate.
		a.log.Warn("authentication failed", "reason", reason, "method", method, "user", src.user, "peer", src.peer)
		return
	}
	if w := a.windows[src]; w != nil {
		w.failures++
		w.method, w.reason = method, reason
		return
	}
	first := src
	if len(a.windows) >= authLogMaxSources {
		src = others
		if w := a.windows[src]; w != nil {
			w.failures++
			w.method, w.reason = method, reason
			return
		}
	}
	// The first failure of a window is logged at once, with its source
	// also when it opens the window of the other sources.
	a.windows[src] = &authWindow{method: method, reason: reason}
	attrs := []any{"reason", reason, "method", method, "user", first.user, "peer", first.peer}
	if src == others {
		attrs = append(attrs, "counted_with", "other sources")
	}
	a.log.Warn("authentication failed", attrs...)
	a.timers[src] = a.afterFunc(a.interval, func() { a.closeWindow(src) })
}

// closeWindow reports the failures counted in src's window. If there were
// any, a new window opens; otherwise src is forgotten.
func (a *authLog) closeWindow(src authSource) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.windows[src]
	delete(a.timers, src)
	if w == nil {
		return
	}
	if w.failures == 0 || a.closed {
		delete(a.windows, src)
		return
	}
	a.reportLocked(src, w)
	a.windows[src] = &authWindow{}
	a.timers[src] = a.afterFunc(a.interval, func() { a.closeWindow(src) })
}

// reportLocked logs the failures counted in a window. a.mu is held.
func (a *authLog) reportLocked(src authSource, w *authWindow) {
	a.log.Warn("authentication failed again", "failures", w.failures, "within", a.interval.String(),
		"reason", w.reason, "method", w.method, "user", src.user, "peer", src.peer)
}

// close reports the failures counted in the open windows and stops the
// timers. Failures recorded afterwards are logged one line each.
func (a *authLog) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for src, t := range a.timers {
		t.Stop()
		delete(a.timers, src)
	}
	for src, w := range a.windows {
		if w.failures > 0 {
			a.reportLocked(src, w)
		}
		delete(a.windows, src)
	}
}

// logSafeUser cuts a user name from a request to a length fit for a log
// line and a map key.
func logSafeUser(user string) string {
	user = strings.ToValidUTF8(user, "\uFFFD")
	if len(user) <= authLogMaxUserBytes {
		return user
	}
	cut := authLogMaxUserBytes
	for cut > 0 && !utf8.RuneStart(user[cut]) {
		cut--
	}
	return user[:cut] + "…"
}
