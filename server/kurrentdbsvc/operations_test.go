package kurrentdbsvc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server/kurrentdbsvc"
)

// gatedCompact is an engine whose compaction waits until it is let go or
// stopped.
type gatedCompact struct {
	*memstore.Store
	started, release chan struct{}
}

func (g *gatedCompact) Compact(ctx context.Context) error {
	close(g.started)
	select {
	case <-g.release:
		return g.Store.Compact(ctx)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitEnded waits for the last scavenge to end and returns it.
func waitEnded(t *testing.T, s *kurrentdbsvc.Services) kurrentdbsvc.Scavenge {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sc, ok := s.LastScavenge()
		if ok && !sc.Running {
			return sc
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scavenge did not end: %+v", sc)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A scavenge started through the Go API is the one the Operations service
// reports: one at a time, its state readable while it runs and after it
// ended, stoppable by its id.
func TestScavengeAPI(t *testing.T) {
	engine := &gatedCompact{Store: memstore.New(), started: make(chan struct{}), release: make(chan struct{})}
	store := cairn.NewStore(engine, cairn.Options{})
	defer store.Close()
	s := kurrentdbsvc.New(kurrentdbsvc.Host{Store: store}, kurrentdbsvc.Options{})
	defer s.Wait()

	if _, ok := s.LastScavenge(); ok {
		t.Fatal("LastScavenge reports a scavenge before any started")
	}
	first, started := s.StartScavenge()
	if !started || first.ID == "" || !first.Running || first.Started.IsZero() || first.BytesBefore < 0 {
		t.Fatalf("StartScavenge = %+v, %v; want a running scavenge with its size before", first, started)
	}
	<-engine.started
	again, started := s.StartScavenge()
	if started || again.ID != first.ID {
		t.Fatalf("a second start while one runs = %+v, %v; want the running one, not started", again, started)
	}
	if cur, ok := s.LastScavenge(); !ok || !cur.Running || cur.ID != first.ID {
		t.Fatalf("LastScavenge while it runs = %+v, %v", cur, ok)
	}
	close(engine.release)
	done := waitEnded(t, s)
	if done.ID != first.ID || done.Stopped || done.Err != nil || done.Ended.Before(done.Started) || done.BytesAfter < 0 {
		t.Fatalf("ended scavenge %+v, want it finished, with its size after", done)
	}
	// Stopping the last one, which ended, does nothing; an unknown id is
	// an error.
	if err := s.StopScavenge(first.ID); err != nil {
		t.Errorf("stopping the ended scavenge: %v", err)
	}
	if err := s.StopScavenge("nope"); !errors.Is(err, kurrentdbsvc.ErrNoScavenge) {
		t.Errorf("stopping an unknown scavenge: %v, want ErrNoScavenge", err)
	}

	// A second scavenge, stopped while it runs.
	engine.started, engine.release = make(chan struct{}), make(chan struct{})
	second, started := s.StartScavenge()
	if !started || second.ID == first.ID {
		t.Fatalf("second StartScavenge = %+v, %v", second, started)
	}
	<-engine.started
	if err := s.StopScavenge(second.ID); err != nil {
		t.Fatal(err)
	}
	if done := waitEnded(t, s); done.ID != second.ID || !done.Stopped || done.Err != nil {
		t.Fatalf("stopped scavenge %+v, want Stopped and no error", done)
	}
}
