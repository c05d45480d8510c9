package projections_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/projections"
)

func TestAHandlerThatLoopsForeverIsStoppedByTheTimeBudget(t *testing.T) {
	store := newMemStore(t)
	opts := testOptions()
	opts.HandlerTimeout = 200 * time.Millisecond
	m := newManager(t, store, opts)
	ctx := context.Background()
	create(t, m, "loop", `fromAll().when({ Loop: function (s, e) { while (true) {} } })`, projections.CreateOptions{})
	create(t, m, "count", countQuery, projections.CreateOptions{})
	appendJSON(t, store, "x-1", "Loop", `{}`)
	st := waitStatus(t, m, "loop", "Faulted (Enabled)")
	if !strings.Contains(st.StateReason, `handler "Loop" ran longer than its time budget of 200ms`) {
		t.Fatalf("state reason: %q", st.StateReason)
	}
	appendJSON(t, store, "x-1", "Other", `{}`)
	waitState(t, m, "count", "", `{"count":2}`)

	// The interrupt does not outlive the call it stopped: the projection,
	// fixed, runs again from its checkpoint.
	if err := m.Update(ctx, "loop", `fromAll().when({ $init: function () { return { n: 0 }; }, Loop: function (s) { s.n++; } })`, projections.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Enable(ctx, "loop"); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "loop", "", `{"n":1}`)
	waitStatus(t, m, "loop", "Running")
}

func TestAQueryThatLoopsWhileDefiningIsRefused(t *testing.T) {
	opts := testOptions()
	opts.HandlerTimeout = 100 * time.Millisecond
	m := newManager(t, newMemStore(t), opts)
	_, err := m.Create(context.Background(), "p", `while (true) {} fromAll();`, projections.CreateOptions{})
	if !errors.Is(err, cairn.ErrInvalidArgument) || !strings.Contains(err.Error(), "time budget") {
		t.Fatalf("create: %v", err)
	}
}

func TestAHandlerThatAllocatesWithoutBoundIsStoppedByTheMemoryBudget(t *testing.T) {
	store := newMemStore(t)
	opts := testOptions()
	opts.HandlerTimeout = 2 * time.Minute
	opts.MemoryBudget = 64 << 20
	m := newManager(t, store, opts)
	create(t, m, "hog", `
		fromAll().when({ Hog: function (s, e) {
			var keep = [];
			for (;;) { keep.push(('x' + keep.length).repeat(10000)); }
		} })`, projections.CreateOptions{})
	create(t, m, "count", countQuery, projections.CreateOptions{})
	appendJSON(t, store, "x-1", "Hog", `{}`)
	st := waitStatus(t, m, "hog", "Faulted (Enabled)")
	if !strings.Contains(st.StateReason, `handler "Hog" grew the live heap by more than its memory budget of 64 MiB`) {
		t.Fatalf("state reason: %q", st.StateReason)
	}
	appendJSON(t, store, "x-1", "Other", `{}`)
	waitState(t, m, "count", "", `{"count":2}`)
}

func TestBuiltinsThatAllocateInOneCallAreBounded(t *testing.T) {
	store := newMemStore(t)
	opts := testOptions()
	opts.MaxStateBytes = 1 << 20
	m := newManager(t, store, opts)
	for name, code := range map[string]string{
		"repeat":  `'x'.repeat(1e12)`,
		"pad":     `'x'.padEnd(1e12)`,
		"fill":    `new Array(1e9).fill(0)`,
		"join":    `new Array(1e9).join('--')`,
		"buffer":  `new ArrayBuffer(1e12)`,
		"float64": `new Float64Array(1e9)`,
	} {
		create(t, m, name, `fromAll().when({ $any: function (s, e) { `+code+`; } })`, projections.CreateOptions{})
	}
	appendJSON(t, store, "x-1", "Go", `{}`)
	for name := range map[string]bool{"repeat": true, "pad": true, "fill": true, "join": true, "buffer": true, "float64": true} {
		st := waitStatus(t, m, name, "Faulted (Enabled)")
		if !strings.Contains(st.StateReason, "RangeError") || !strings.Contains(st.StateReason, "the limit is 1048576") {
			t.Errorf("%s: state reason %q", name, st.StateReason)
		}
	}
}

func TestAStateLargerThanTheLimitFaults(t *testing.T) {
	store := newMemStore(t)
	opts := testOptions()
	opts.MaxStateBytes = 1024
	m := newManager(t, store, opts)
	create(t, m, "big", `
		fromAll().when({
			$init: function () { return { items: [] }; },
			$any: function (s, e) { s.items.push('0123456789'.repeat(30)); }
		})`, projections.CreateOptions{})
	// A state that refers to one string many times would be huge as JSON:
	// the limit is enforced while writing it, not after.
	create(t, m, "refs", `
		fromAll().when({
			$init: function () { return {}; },
			$any: function (s, e) { var big = 'y'.repeat(1000); s.all = []; for (var i = 0; i < 100000; i++) s.all.push(big); }
		})`, projections.CreateOptions{})
	for range 4 {
		appendJSON(t, store, "x-1", "A", `{}`)
	}
	for _, name := range []string{"big", "refs"} {
		st := waitStatus(t, m, name, "Faulted (Enabled)")
		if !strings.Contains(st.StateReason, "the state cannot be written: its JSON is more than 1024 bytes") {
			t.Fatalf("%s: state reason %q", name, st.StateReason)
		}
	}
	// The last state that fitted is kept.
	waitState(t, m, "big", "", `{"items":["`+strings.Repeat("0123456789", 30)+`","`+strings.Repeat("0123456789", 30)+`","`+strings.Repeat("0123456789", 30)+`"]}`)
}

func TestRunawayRecursionFaults(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	create(t, m, "deep", `function f(n) { return f(n + 1) + 1; }
		fromAll().when({ $any: function (s, e) { f(0); } })`, projections.CreateOptions{})
	appendJSON(t, store, "x-1", "A", `{}`)
	st := waitStatus(t, m, "deep", "Faulted (Enabled)")
	if !strings.Contains(st.StateReason, "maximum call stack size exceeded") {
		t.Fatalf("state reason: %q", st.StateReason)
	}
}
