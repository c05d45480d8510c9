package server_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// recordingHandler keeps the records logged through it.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

// matching returns the records whose message starts with prefix.
func (h *recordingHandler) matching(prefix string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.records {
		if strings.HasPrefix(r.Message, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// TestFailedLoginsLogged checks that a client failing to authenticate over
// and over does not write a line per attempt: one line at its first failure,
// then one with the count of the others (here written by Shutdown, since the
// interval is longer than the test), and that the metric counts every one.
func TestFailedLoginsLogged(t *testing.T) {
	h := &recordingHandler{}
	ts := start(t, server.Options{Logger: slog.New(h), AuthFailureLogInterval: time.Hour})
	conn := ts.connAs(t, "", "")
	ctx := context.Background()
	const attempts = 200
	for i := range attempts {
		user := "admin"
		if i%2 == 1 {
			user = "mallory"
		}
		auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":guess"))
		_, err := api.NewStreamsClient(conn).Delete(metadata.AppendToOutgoingContext(ctx, "authorization", auth), &api.DeleteReq{Options: &api.DeleteReq_Options{
			StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte("s")},
			ExpectedStreamRevision: &api.DeleteReq_Options_Any{Any: &shared.Empty{}},
		}})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("attempt %d: %v, want Unauthenticated", i, err)
		}
	}

	hs := httptest.NewServer(ts.HTTPHandler())
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "cairn_auth_failures_total 200") {
		t.Errorf("/metrics does not count the 200 failures")
	}

	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	lines := h.matching("authentication failed")
	if len(lines) != 4 {
		t.Fatalf("%d failed logins wrote %d lines, want 4: two users, each a first line and a count", attempts, len(lines))
	}
	counted := map[string]int64{}
	for _, r := range lines {
		var user string
		n := int64(1)
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "user":
				user = a.Value.String()
			case "failures":
				n = a.Value.Int64()
			case "peer":
				if a.Value.String() != "127.0.0.1" {
					t.Errorf("logged peer %s, want 127.0.0.1", a.Value)
				}
			}
			return true
		})
		counted[user] += n
	}
	if counted["admin"] != attempts/2 || counted["mallory"] != attempts/2 {
		t.Fatalf("the lines account for %v failures, want %d of each user", counted, attempts/2)
	}
}
