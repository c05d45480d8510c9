package server_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/server/kurrentdbsvc/operationspb"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A scavenge through the protocol's Operations service runs the engine's
// compaction: on the embedded engine a deleted stream's events leave $all.
// (The Go client has no Operations calls; the other official clients do.)
func TestScavenge(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := ts.client(t)
		if _, err := c.AppendToStream(ctx, "gone", kurrentdb.AppendToStreamOptions{}, events(20, "E")...); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AppendToStream(ctx, "kept", kurrentdb.AppendToStreamOptions{}, events(1, "E")...); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeleteStream(ctx, "gone", kurrentdb.DeleteStreamOptions{}); err != nil {
			t.Fatal(err)
		}

		conn := ts.conn(t)
		ops := operationspb.NewOperationsClient(conn)
		started, err := ops.StartScavenge(ctx, &operationspb.StartScavengeReq{})
		if err != nil {
			t.Fatal(err)
		}
		if started.GetScavengeId() == "" || started.GetScavengeResult() != operationspb.ScavengeResp_Started &&
			started.GetScavengeResult() != operationspb.ScavengeResp_InProgress {
			t.Fatalf("StartScavenge = %v", started)
		}

		if _, isDisk := ts.store.Backend().(*diskstore.DB); isDisk {
			// Wait for the compaction to take the deleted events away.
			for {
				log, err := ts.store.ReadAll(ctx, 0, 100, cairn.Forward)
				if err != nil {
					t.Fatal(err)
				}
				// The record of the delete stays, with kept.
				log = slices.DeleteFunc(withoutUsers(log), func(e cairn.Event) bool {
					_, ok := cairn.ParseDeletion(&e)
					return ok
				})
				if len(log) == 1 && log[0].StreamID == "kept" {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("after the scavenge $all still holds %d events", len(log))
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
		if _, err := ops.StopScavenge(ctx, &operationspb.StopScavengeReq{Options: &operationspb.StopScavengeReq_Options{ScavengeId: started.GetScavengeId()}}); err != nil {
			t.Fatalf("stopping the scavenge: %v", err)
		}
		_, err = ops.StopScavenge(ctx, &operationspb.StopScavengeReq{Options: &operationspb.StopScavengeReq_Options{ScavengeId: "no-such-scavenge"}})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("stopping an unknown scavenge: %v, want NotFound", err)
		}
		if v, err := ts.store.StreamVersion(ctx, "kept"); err != nil || v != 0 {
			t.Fatalf("kept stream after the scavenge: %d, %v", v, err)
		}
	})
}

// slowCompact is an engine whose compaction takes a while and which notes a
// Close that comes while it runs.
type slowCompact struct {
	*memstore.Store
	running, closedEarly atomic.Bool
	started              chan struct{}
}

func (s *slowCompact) Compact(ctx context.Context) error {
	s.running.Store(true)
	defer s.running.Store(false)
	close(s.started)
	time.Sleep(200 * time.Millisecond) // an engine step that does not stop at once
	return s.Store.Compact(ctx)
}

func (s *slowCompact) Close() error {
	if s.running.Load() {
		s.closedEarly.Store(true)
	}
	return s.Store.Close()
}

// Shutdown waits for a running scavenge before the store is closed.
func TestShutdownWaitsForScavenge(t *testing.T) {
	engine := &slowCompact{Store: memstore.New(), started: make(chan struct{})}
	ts := startOn(t, engine, server.Options{})
	conn := ts.conn(t)
	if _, err := operationspb.NewOperationsClient(conn).StartScavenge(context.Background(), &operationspb.StartScavengeReq{}); err != nil {
		t.Fatal(err)
	}
	<-engine.started
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts.store.Close()
	if engine.closedEarly.Load() {
		t.Fatal("the store was closed while a scavenge was compacting it")
	}
}
