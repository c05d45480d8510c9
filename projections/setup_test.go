package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/projections"
)

// testOptions are generous with time: the tests run under -race on a
// shared machine, and a legitimate handler must not fault on a slow tick.
func testOptions() projections.Options {
	return projections.Options{HandlerTimeout: 10 * time.Second, CheckpointAfter: 10 * time.Millisecond}
}

func newMemStore(t testing.TB) *cairn.Store {
	t.Helper()
	s := cairn.NewStore(memstore.New(), cairn.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

func newManager(t testing.TB, store *cairn.Store, opts projections.Options) *projections.Manager {
	t.Helper()
	m, err := projections.NewManager(context.Background(), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m
}

func appendJSON(t testing.TB, s *cairn.Store, stream, typ string, bodies ...string) {
	t.Helper()
	evs := make([]cairn.EventData, len(bodies))
	for i, b := range bodies {
		evs[i] = cairn.EventData{Type: typ, Data: []byte(b)}
	}
	if _, err := s.Append(context.Background(), stream, cairn.Any, evs...); err != nil {
		t.Fatal(err)
	}
}

// patience bounds how long eventually waits: a bound on a liveness
// failure, not a timing target (the tests run under -race on a shared,
// often overloaded machine).
var patience = 20 * time.Second

// eventually polls cond until it holds or patience runs out.
func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(patience)
	var last string
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: still not so after %v: %s", what, patience, last)
}

// waitState waits until the state of a projection's partition equals want
// (compared as JSON values).
func waitState(t testing.TB, m *projections.Manager, name, partition, want string) {
	t.Helper()
	var wantV any
	if err := json.Unmarshal([]byte(want), &wantV); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	eventually(t, fmt.Sprintf("state of %s/%q", name, partition), func() (bool, string) {
		b, err := m.State(context.Background(), name, partition)
		if err != nil {
			return false, err.Error()
		}
		var got any
		if b != nil {
			if err := json.Unmarshal(b, &got); err != nil {
				return false, err.Error()
			}
		}
		st, _ := m.Statistics(context.Background(), name)
		return reflect.DeepEqual(got, wantV), fmt.Sprintf("got %s (status %s %s)", b, st.Status, st.StateReason)
	})
}

func waitStatus(t testing.TB, m *projections.Manager, name, status string) projections.Statistics {
	t.Helper()
	var st projections.Statistics
	eventually(t, name+" is "+status, func() (bool, string) {
		var err error
		st, err = m.Statistics(context.Background(), name)
		if err != nil {
			return false, err.Error()
		}
		return st.Status == status, st.Status + " " + st.StateReason
	})
	return st
}

// readStream returns the events of a stream, none when it does not exist.
func readStream(t testing.TB, s *cairn.Store, stream string) []cairn.Event {
	t.Helper()
	var out []cairn.Event
	for e, err := range s.Stream(context.Background(), stream, 0, cairn.Forward) {
		if err != nil {
			if errorsIsNotFound(err) {
				return nil
			}
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}
