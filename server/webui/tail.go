package webui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/auth"
)

// The live tail follows $all as server-sent events (text/event-stream):
// the page's script opens an EventSource on api/tail, which first sends
// the last few matching events, then each new matching event as it
// commits. Each event carries its position as the SSE id, so that a
// browser that reconnects resumes after the last one it received.
//
// A tail is a view for people, not a subscription: when it falls more
// than tailMaxBehind events behind the log's head (a browser cannot show
// tens of thousands of events a second) it skips to the head, and says
// how many events it skipped. It needs the right to read $all.

const (
	// tailBacklog is how many matching events a tail starts with, found
	// among the last tailBacklogScan events of the log.
	tailBacklog     = 20
	tailBacklogScan = 1000
	// tailBatch is how many events one read of the tail takes.
	tailBatch = 256
	// tailMaxBehind is how far behind the head a tail may fall before it
	// skips.
	tailMaxBehind = 10_000
	// tailHeartbeat is how often an idle tail sends a comment, so that
	// a browser that went away is noticed and proxies keep the stream.
	tailHeartbeat = 15 * time.Second
)

// tailFilter selects the events a tail shows.
type tailFilter struct {
	stream string // a prefix of the stream id
	typ    string // a prefix of the event type
	system bool   // show the events of system streams ($…)
}

func (f tailFilter) match(e *cairn.Event) bool {
	return (f.system || !acl.IsSystemStream(e.StreamID)) &&
		strings.HasPrefix(e.StreamID, f.stream) && strings.HasPrefix(e.Type, f.typ)
}

// tailEvent is an event as the tail sends it.
type tailEvent struct {
	Position uint64 `json:"position"`
	Stream   string `json:"stream"`
	Version  int64  `json:"version"`
	Type     string `json:"type"`
	Created  string `json:"created"`
	Bytes    int    `json:"bytes"`
	Preview  string `json:"preview"`
}

type tailData struct {
	Stream, Type string
	System       bool
}

func (u *UI) tailPage(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if err := u.allowRead(r.Context(), p, acl.AllStream); err != nil {
		u.fail(w, r, p, 0, fmt.Errorf("the live tail needs the right to read $all: %w", err))
		return
	}
	q := r.URL.Query()
	u.render(w, r, http.StatusOK, "tail", p, "Live tail", tailData{Stream: q.Get("stream"), Type: q.Get("type"), System: q.Get("system") == "1"})
}

// tail streams the matching events of $all: ?stream= and ?type= are
// prefixes, ?system=1 includes system streams.
func (u *UI) tail(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	ctx := r.Context()
	if err := u.allowRead(ctx, p, acl.AllStream); err != nil {
		jsonError(w, fmt.Errorf("the live tail needs the right to read $all: %w", err))
		return
	}
	q := r.URL.Query()
	f := tailFilter{stream: q.Get("stream"), typ: q.Get("type"), system: q.Get("system") == "1"}
	// Resume after the last event a reconnecting browser received.
	var next uint64
	resume := false
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			jsonError(w, badInput("Last-Event-ID %q: want a position", id))
			return
		}
		next, resume = n+1, true
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	t := &tailer{u: u, w: w, rc: rc, f: f}
	if !resume {
		var err error
		if next, err = t.backlog(ctx); err != nil {
			t.fail(ctx, err)
			return
		}
	}
	// What follows is new.
	if err := t.notice("live", fmt.Sprint(next)); err != nil {
		return
	}
	if err := t.follow(ctx, next); err != nil {
		t.fail(ctx, err)
	}
}

// tailer writes one tail's events.
type tailer struct {
	u  *UI
	w  http.ResponseWriter
	rc *http.ResponseController
	f  tailFilter
}

// backlog sends the last matching events and returns the position after
// the log's last event.
func (t *tailer) backlog(ctx context.Context) (uint64, error) {
	events, err := t.u.host.Store.ReadAll(ctx, cairn.LogEnd, tailBacklogScan, cairn.Backward)
	if err != nil {
		return 0, err
	}
	if len(events) == 0 {
		return 0, nil
	}
	next := events[0].Position + 1
	var matched []*cairn.Event
	for i := range events {
		if t.f.match(&events[i]) {
			matched = append(matched, &events[i])
			if len(matched) == tailBacklog {
				break
			}
		}
	}
	for i := len(matched) - 1; i >= 0; i-- {
		if err := t.send(matched[i]); err != nil {
			return 0, err
		}
	}
	return next, nil
}

// follow sends the matching events from position next on, as they
// commit, until the browser leaves or the server shuts down.
func (t *tailer) follow(ctx context.Context, next uint64) error {
	heartbeat := time.NewTicker(tailHeartbeat)
	defer heartbeat.Stop()
	for {
		// Take the notification before the read that finds nothing new,
		// so that a commit between the two is not missed.
		changed := t.u.host.Store.Changes()
		for {
			events, err := t.u.host.Store.ReadAll(ctx, next, tailBatch, cairn.Forward)
			if err != nil {
				return err
			}
			for i := range events {
				if t.f.match(&events[i]) {
					if err := t.send(&events[i]); err != nil {
						return err
					}
				}
				next = events[i].Position + 1
			}
			if err := t.flush(); err != nil {
				return err
			}
			if len(events) < tailBatch {
				break
			}
			if last, ok, err := t.u.host.Store.LastPosition(ctx); err != nil {
				return err
			} else if ok && last+1-next > tailMaxBehind {
				skipped := last + 1 - next
				next = last + 1
				if err := t.notice("skipped", fmt.Sprintf("%d", skipped)); err != nil {
					return err
				}
			}
		}
		select {
		case <-changed:
		case <-heartbeat.C:
			if _, err := fmt.Fprint(t.w, ": heartbeat\n\n"); err != nil {
				return err
			}
			if err := t.flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		case <-t.u.host.Done:
			return nil
		}
	}
}

func (t *tailer) send(e *cairn.Event) error {
	b, err := json.Marshal(tailEvent{
		Position: e.Position,
		Stream:   e.StreamID,
		Version:  e.Version,
		Type:     e.Type,
		Created:  e.Created.UTC().Format(time.RFC3339Nano),
		Bytes:    cairn.EventBytes(*e),
		Preview:  preview(e.Data, previewRunes),
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(t.w, "id: %d\ndata: %s\n\n", e.Position, b)
	return err
}

// notice sends an event of its own kind: "live" (the events that follow
// are new, from this position on), "skipped" (with how many), or "failed"
// (with why).
func (t *tailer) notice(kind, data string) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(t.w, "event: %s\ndata: %s\n\n", kind, b); err != nil {
		return err
	}
	return t.flush()
}

func (t *tailer) flush() error { return t.rc.Flush() }

// fail tells the browser why the tail ended, when it can still hear it.
func (t *tailer) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // the browser left
	}
	t.u.log.Warn("web UI: live tail ended", "err", err)
	_ = t.notice("failed", err.Error()) // the browser may be gone: nothing more to do
}
