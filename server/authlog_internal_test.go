package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// captureHandler keeps the records logged through it.
type captureHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *captureHandler) WithGroup(string) slog.Handler            { return h }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

// lines returns the records logged so far as "message k=v ...", and forgets
// them.
func (h *captureHandler) lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		var b strings.Builder
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		out = append(out, b.String())
	}
	h.records = nil
	return out
}

// manualTimers stands in for time.AfterFunc: a test fires the timers.
type manualTimers struct {
	mu      sync.Mutex
	pending []*manualTimer
}

type manualTimer struct {
	f       func()
	stopped bool
}

func (m *manualTimers) afterFunc(_ time.Duration, f func()) interface{ Stop() bool } {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &manualTimer{f: f}
	m.pending = append(m.pending, t)
	return t
}

func (t *manualTimer) Stop() bool {
	was := !t.stopped
	t.stopped = true
	return was
}

// fire runs the timers started so far, as when an interval has passed.
func (m *manualTimers) fire() {
	m.mu.Lock()
	due := m.pending
	m.pending = nil
	m.mu.Unlock()
	for _, t := range due {
		if !t.stopped {
			t.stopped = true
			t.f()
		}
	}
}

func newTestAuthLog() (*authLog, *captureHandler, *manualTimers) {
	h := &captureHandler{}
	timers := &manualTimers{}
	a := newAuthLog(slog.New(h), time.Minute)
	a.afterFunc = timers.afterFunc
	return a, h, timers
}

func wantLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("logged %d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("line %d is\n  %s\nwant it to start with\n  %s", i, got[i], want[i])
		}
	}
}

// TestAuthLogOneLinePerSourceAndInterval checks that a source that keeps
// failing writes one line at its first failure, then one line per interval
// with the count of the failures in it, and that it is forgotten after an
// interval without failures.
func TestAuthLogOneLinePerSourceAndInterval(t *testing.T) {
	a, h, timers := newTestAuthLog()
	for range 1660 {
		a.failed("10.0.0.7", "admin", "/m", "invalid credentials")
	}
	a.failed("10.0.0.8", "", "/m", "no credentials")
	wantLines(t, h.lines(),
		"authentication failed reason=invalid credentials method=/m user=admin peer=10.0.0.7",
		"authentication failed reason=no credentials method=/m user= peer=10.0.0.8")

	timers.fire() // the first interval ends
	wantLines(t, h.lines(), "authentication failed again failures=1659 within=1m0s reason=invalid credentials method=/m user=admin peer=10.0.0.7")

	a.failed("10.0.0.7", "admin", "/m", "invalid credentials")
	a.failed("10.0.0.7", "admin", "/m", "invalid credentials")
	wantLines(t, h.lines())
	timers.fire()
	wantLines(t, h.lines(), "authentication failed again failures=2 ")

	timers.fire() // an interval without failures: forgotten
	wantLines(t, h.lines())
	a.failed("10.0.0.7", "admin", "/m", "invalid credentials")
	wantLines(t, h.lines(), "authentication failed reason=invalid credentials")
}

// TestAuthLogBoundsSources checks that failures from more sources than it
// tracks share one line, so that varying the user name does not escape the
// bound, and that a long user name is cut.
func TestAuthLogBoundsSources(t *testing.T) {
	a, h, timers := newTestAuthLog()
	for i := range 10 * authLogMaxSources {
		a.failed("10.0.0.7", fmt.Sprint("user-", i), "/m", "invalid credentials")
	}
	lines := h.lines()
	if len(lines) != authLogMaxSources+1 {
		t.Fatalf("%d sources logged %d lines, want %d", 10*authLogMaxSources, len(lines), authLogMaxSources+1)
	}
	wantLast := fmt.Sprintf("user=user-%d peer=10.0.0.7 counted_with=other sources", authLogMaxSources)
	if !strings.HasSuffix(lines[len(lines)-1], wantLast) {
		t.Fatalf("the last line is %s, want the first of the other sources", lines[len(lines)-1])
	}
	timers.fire()
	wantLines(t, h.lines(), fmt.Sprintf("authentication failed again failures=%d ", 9*authLogMaxSources-1))
	if l := a.windows[others]; l == nil {
		t.Fatal("the other sources' window closed while they were failing")
	}

	a.close()
	h.lines()
	a.failed("10.0.0.9", strings.Repeat("é", 1000), "/m", "invalid credentials")
	line := h.lines()[0]
	if len(line) > 200 || !strings.Contains(line, "…") {
		t.Fatalf("a user name of 2000 bytes logged as %q", line)
	}
}

// TestAuthLogCloseReports checks that close reports the failures still
// being counted, and that later failures are logged one by one.
func TestAuthLogCloseReports(t *testing.T) {
	a, h, timers := newTestAuthLog()
	for range 5 {
		a.failed("10.0.0.7", "admin", "/m", "invalid credentials")
	}
	a.close()
	wantLines(t, h.lines(), "authentication failed ", "authentication failed again failures=4 ")
	timers.fire() // stopped by close
	a.failed("10.0.0.7", "admin", "/m", "invalid credentials")
	a.failed("10.0.0.7", "admin", "/m", "invalid credentials")
	wantLines(t, h.lines(), "authentication failed ", "authentication failed ")
}
