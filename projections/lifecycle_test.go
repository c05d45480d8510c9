package projections_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/projections"
)

func TestUnknownProjectionsAreNotFound(t *testing.T) {
	m := newManager(t, newMemStore(t), testOptions())
	ctx := context.Background()
	checks := map[string]error{
		"statistics": func() error { _, err := m.Statistics(ctx, "nope"); return err }(),
		"state":      func() error { _, err := m.State(ctx, "nope", ""); return err }(),
		"result":     func() error { _, err := m.Result(ctx, "nope", ""); return err }(),
		"enable":     m.Enable(ctx, "nope"),
		"disable":    m.Disable(ctx, "nope"),
		"abort":      m.Abort(ctx, "nope"),
		"reset":      m.Reset(ctx, "nope"),
		"update":     m.Update(ctx, "nope", countQuery, projections.UpdateOptions{}),
		"delete":     m.Delete(ctx, "nope", projections.DeleteOptions{}),
	}
	for op, err := range checks {
		var pe *projections.Error
		if !errors.Is(err, projections.ErrNotFound) || !errors.As(err, &pe) || pe.Name != "nope" {
			t.Errorf("%s: %v, want ErrNotFound", op, err)
		}
	}
}

func TestCreateRefusesATakenName(t *testing.T) {
	m := newManager(t, newMemStore(t), testOptions())
	create(t, m, "p", countQuery, projections.CreateOptions{})
	_, err := m.Create(context.Background(), "p", countQuery, projections.CreateOptions{})
	if !errors.Is(err, projections.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
}

func TestDisableEnableAbort(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	ctx := context.Background()
	create(t, m, "count", countQuery, projections.CreateOptions{})
	appendJSON(t, store, "x-1", "A", `{}`)
	waitState(t, m, "count", "", `{"count":1}`)

	if err := m.Disable(ctx, "count"); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, m, "count", "Stopped")
	if st.Enabled || st.Version != 1 {
		t.Fatalf("after disable: %+v", st)
	}
	appendJSON(t, store, "x-1", "A", `{}`)
	waitState(t, m, "count", "", `{"count":1}`) // stopped: not counted

	if err := m.Enable(ctx, "count"); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "count", "", `{"count":2}`)
	st = waitStatus(t, m, "count", "Running")
	// Enabling a running projection changes nothing.
	if err := m.Enable(ctx, "count"); err != nil {
		t.Fatal(err)
	}
	if st2, _ := m.Statistics(ctx, "count"); st2.Version != st.Version {
		t.Fatalf("enable of a running projection changed the version: %d -> %d", st.Version, st2.Version)
	}

	if err := m.Abort(ctx, "count"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, m, "count", "Aborted/Stopped")
	appendJSON(t, store, "x-1", "A", `{}`)
	if err := m.Enable(ctx, "count"); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "count", "", `{"count":3}`)
}

func TestResetStartsAgainFromTheBeginning(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	ctx := context.Background()
	appendJSON(t, store, "x-1", "A", `{}`, `{}`)
	create(t, m, "count", countQuery, projections.CreateOptions{})
	waitState(t, m, "count", "", `{"count":2}`)
	// Update carries the state over and counts by 10 from now on.
	if err := m.Update(ctx, "count", strings.ReplaceAll(countQuery, "s.count += 1", "s.count += 10"), projections.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	appendJSON(t, store, "x-1", "A", `{}`)
	waitState(t, m, "count", "", `{"count":12}`)
	st, _ := m.Statistics(ctx, "count")
	if st.Version != 1 || st.Epoch != 0 {
		t.Fatalf("after update: version %d epoch %d", st.Version, st.Epoch)
	}
	if err := m.Reset(ctx, "count"); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "count", "", `{"count":30}`)
	st, _ = m.Statistics(ctx, "count")
	if st.Version != 2 || st.Epoch != 2 {
		t.Fatalf("after reset: version %d epoch %d", st.Version, st.Epoch)
	}
}

func TestDelete(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	ctx := context.Background()
	appendJSON(t, store, "order-1", "Placed", `{}`)
	create(t, m, "p", `
		fromCategory('order').foreachStream().when({
			$init: function () { return { n: 0 }; },
			Placed: function (s, e) { s.n++; emit('copy-' + e.streamId, 'Copied', {}); }
		}).outputState()`, projections.CreateOptions{Emit: true, TrackEmittedStreams: true})
	eventually(t, "emitted", func() (bool, string) { return len(readStream(t, store, "copy-order-1")) == 1, "" })

	err := m.Delete(ctx, "p", projections.DeleteOptions{})
	if !errors.Is(err, projections.ErrRunning) {
		t.Fatalf("delete of a running projection: %v", err)
	}
	if err := m.Disable(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"$projections-p-checkpoint", "$projections-p-order-1-checkpoint", "$projections-p-order-1-result", "$projections-p-partitions", "$projections-p-emittedstreams"} {
		if len(readStream(t, store, s)) == 0 {
			t.Fatalf("%s is empty before delete", s)
		}
	}
	if err := m.Delete(ctx, "p", projections.DeleteOptions{DeleteEmittedStreams: true, DeleteStateStream: true, DeleteCheckpointStream: true}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"$projections-p", "$projections-p-checkpoint", "$projections-p-order-1-checkpoint", "$projections-p-order-1-result", "$projections-p-partitions", "$projections-p-emittedstreams", "copy-order-1"} {
		if evs := readStream(t, store, s); len(evs) != 0 {
			t.Errorf("%s still has %d events", s, len(evs))
		}
	}
	if _, err := m.Statistics(ctx, "p"); !errors.Is(err, projections.ErrNotFound) {
		t.Fatalf("statistics after delete: %v", err)
	}
	// The name can be used again, and the new projection starts afresh.
	create(t, m, "p", strings.Replace(countQuery, "fromAll()", "fromCategory('order')", 1), projections.CreateOptions{})
	waitState(t, m, "p", "", `{"count":1}`)
}

func TestDeleteKeepsWhatItIsNotAskedToDelete(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	ctx := context.Background()
	appendJSON(t, store, "x-1", "A", `{}`)
	create(t, m, "p", countQuery, projections.CreateOptions{})
	waitState(t, m, "p", "", `{"count":1}`)
	if err := m.Disable(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "p", projections.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(readStream(t, store, "$projections-p-checkpoint")) == 0 || len(readStream(t, store, "$projections-p-result")) == 0 {
		t.Fatal("delete without options deleted the checkpoint or the result stream")
	}
	// A projection created again under the name ignores the old
	// checkpoint: it counts from scratch.
	appendJSON(t, store, "x-1", "A", `{}`)
	create(t, m, "p", countQuery, projections.CreateOptions{})
	waitState(t, m, "p", "", `{"count":2}`)
}

func TestContinuousProjectionResumesAfterRestart(t *testing.T) {
	engine := memstore.New()
	t.Cleanup(func() { engine.Close() })
	store := cairn.NewStore(engine, cairn.Options{})
	ctx := context.Background()
	m, err := projections.NewManager(ctx, store, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	appendJSON(t, store, "x-1", "A", `{}`, `{}`, `{}`)
	create(t, m, "count", countQuery, projections.CreateOptions{})
	create(t, m, "stopped", countQuery, projections.CreateOptions{Disabled: true})
	if _, err := m.Create(ctx, "", countQuery, projections.CreateOptions{Mode: projections.Transient}); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Fatalf("transient without a name: %v", err)
	}
	create(t, m, "temp", countQuery, projections.CreateOptions{Mode: projections.Transient})
	waitState(t, m, "count", "", `{"count":3}`)
	waitStatus(t, m, "temp", "Completed")
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}

	appendJSON(t, store, "x-1", "A", `{}`)
	m = newManager(t, cairn.NewStore(engine, cairn.Options{}), testOptions())
	waitState(t, m, "count", "", `{"count":4}`)
	st := waitStatus(t, m, "count", "Running")
	if st.EventsProcessedAfterRestart != 1 {
		t.Fatalf("processed %d events after the restart, want 1: it did not resume from its checkpoint", st.EventsProcessedAfterRestart)
	}
	waitStatus(t, m, "stopped", "Stopped")
	if _, err := m.Statistics(ctx, "temp"); !errors.Is(err, projections.ErrNotFound) {
		t.Fatalf("a transient projection survived the restart: %v", err)
	}
}

func TestOneTimeProjectionCompletes(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	ctx := context.Background()
	appendJSON(t, store, "x-1", "A", `{}`, `{}`)
	name, err := m.Create(ctx, "", countQuery, projections.CreateOptions{Mode: projections.OneTime})
	if err != nil || len(name) != 36 {
		t.Fatalf("one-time: %q, %v", name, err)
	}
	st := waitStatus(t, m, name, "Completed")
	if st.Mode != projections.OneTime || st.Progress != 100 {
		t.Fatalf("statistics: %+v", st)
	}
	waitState(t, m, name, "", `{"count":2}`)
	appendJSON(t, store, "x-1", "A", `{}`)
	waitState(t, m, name, "", `{"count":2}`)
	if _, err := m.Create(ctx, "emitter", countQuery, projections.CreateOptions{Mode: projections.OneTime, Emit: true}); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Fatalf("a one-time projection that emits: %v", err)
	}
	if got := m.List(ctx, projections.OneTime); len(got) != 1 || got[0].Name != name {
		t.Fatalf("list of one-time projections: %+v", got)
	}
	if got := m.List(ctx, projections.Continuous); len(got) != 0 {
		t.Fatalf("list of continuous projections: %+v", got)
	}
}

func TestRestartSubsystem(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	ctx := context.Background()
	appendJSON(t, store, "x-1", "A", `{}`)
	create(t, m, "count", countQuery, projections.CreateOptions{})
	create(t, m, "temp", countQuery, projections.CreateOptions{Mode: projections.Transient})
	waitState(t, m, "count", "", `{"count":1}`)
	if err := m.RestartSubsystem(ctx); err != nil {
		t.Fatal(err)
	}
	appendJSON(t, store, "x-1", "A", `{}`)
	waitState(t, m, "count", "", `{"count":2}`)
	if _, err := m.Statistics(ctx, "temp"); !errors.Is(err, projections.ErrNotFound) {
		t.Fatalf("transient projection after a restart: %v", err)
	}
}

// TestASecondManagerOfTheSameProjectionFaults: two Managers running the
// same projection on one store (two nodes sharing PostgreSQL, say) cannot
// both checkpoint: the checkpoint stream is written with the version each
// last wrote, so the second to write faults, its batch rejected whole, and
// no event is emitted twice.
func TestASecondManagerOfTheSameProjectionFaults(t *testing.T) {
	engine := memstore.New()
	t.Cleanup(func() { engine.Close() })
	a, b := cairn.NewStore(engine, cairn.Options{}), cairn.NewStore(engine, cairn.Options{})
	ma := newManager(t, a, testOptions())
	create(t, ma, "router", `fromCategory('src').when({ Tick: function (s, e) { emit('out', 'Copied', { n: e.body.n }); } })`, projections.CreateOptions{Emit: true})
	for n := range 3 {
		appendJSON(t, a, "src-1", "Tick", fmt.Sprintf(`{"n":%d}`, n))
	}
	eventually(t, "three copies", func() (bool, string) { return len(readStream(t, a, "out")) == 3, "" })
	mb := newManager(t, b, testOptions())
	waitStatus(t, mb, "router", "Running")
	// b's Manager reads the log to its end before the next Tick: an
	// event appended through b that the query does not select, seen
	// read. (Running is reported before the first read.)
	mark, err := b.Append(context.Background(), "mark-1", cairn.Any, cairn.EventData{Type: "Mark", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "b's Manager past the mark", func() (bool, string) {
		st, err := mb.Statistics(context.Background(), "router")
		if err != nil {
			return false, err.Error()
		}
		var at uint64
		_, err = fmt.Sscanf(st.Position, "C:%d/", &at)
		return err == nil && at >= mark.Position, st.Position
	})

	appendJSON(t, a, "src-1", "Tick", `{"n":3}`) // seen by a's Manager only
	eventually(t, "the copy of 3", func() (bool, string) { return len(readStream(t, a, "out")) == 4, "" })
	appendJSON(t, b, "src-1", "Tick", `{"n":4}`) // wakes b's Manager
	st := waitStatus(t, mb, "router", "Faulted (Enabled)")
	if !strings.Contains(st.StateReason, "checkpoint stream `$projections-router-checkpoint` has been written to from the outside") {
		t.Fatalf("state reason: %q", st.StateReason)
	}
	appendJSON(t, a, "src-1", "Tick", `{"n":5}`)
	eventually(t, "six copies", func() (bool, string) { return len(readStream(t, a, "out")) == 6, "" })
	for i, e := range readStream(t, a, "out") {
		if want := fmt.Sprintf(`{"n":%d}`, i); string(e.Data) != want {
			t.Fatalf("copy %d is %s, want %s", i, e.Data, want)
		}
	}
}
