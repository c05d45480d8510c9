package bench_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/bench"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/memstore"
)

func tiny(cfg bench.Config) bench.Config {
	cfg.W1Appends, cfg.W2Writers, cfg.W2Appends, cfg.W3Events = 50, 8, 10, 3000
	cfg.W4Writers, cfg.W4Commits, cfg.W5Events, cfg.W5Rehydrations = 4, 50, 5000, 5
	cfg.D1Writers, cfg.D1Appends, cfg.D2Writers, cfg.D2Commits, cfg.D3Events, cfg.D3Reads = 8, 10, 4, 50, 5000, 5
	return cfg
}

// TestRunDisk runs every workload, small, on the embedded engine with the
// file baseline, and reopens the store for W6.
func TestRunDisk(t *testing.T) {
	dir := t.TempDir()
	open := func(ctx context.Context) (*cairn.Store, error) {
		db, err := diskstore.Open(dir+"/store", diskstore.Options{NoSync: true})
		if err != nil {
			return nil, err
		}
		return cairn.NewStore(db, cairn.Options{}), nil
	}
	base, err := bench.NewFileBaseline(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	var out, progress strings.Builder
	results, err := bench.Run(context.Background(), tiny(bench.Config{Open: open, Reopen: open, Baseline: base, Out: &out, Progress: &progress}))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range results {
		seen[r.Workload] = true
		if r.Value < 0 || (r.HasRaw && r.Raw <= 0) {
			t.Errorf("%s %s: value %v, raw %v", r.Workload, r.Metric, r.Value, r.Raw)
		}
	}
	for _, w := range []string{"W1", "W2", "W3", "W4", "W5", "W6"} {
		if !seen[w] {
			t.Errorf("no figure for %s", w)
		}
	}
	if !strings.Contains(out.String(), "raw file + fdatasync") || !strings.Contains(out.String(), "×") {
		t.Errorf("report without the baseline:\n%s", out.String())
	}
	if !strings.Contains(progress.String(), "W3: 3000 events in ") {
		t.Errorf("no plain progress lines:\n%s", progress.String())
	}
	// What the engine's group commit did in each timed part: W1's and
	// W3's single writer a group per append, W2's 80 appends in groups
	// that a store without syncs does not sync.
	for _, want := range []string{
		"W1 commits: 50 writes in 50 groups (1.0 a group), no syncs\n",
		"W2 commits: 80 writes in ",
		"W3 commits: 3 writes in 3 groups (1.0 a group), no syncs\n",
	} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress without %q:\n%s", want, progress.String())
		}
	}
	t.Logf("\n%s", out.String())
}

// TestRunNotesSyncs: on a store that syncs, the commit notes count the
// syncs, which a single writer does not share.
func TestRunNotesSyncs(t *testing.T) {
	dir := t.TempDir()
	open := func(ctx context.Context) (*cairn.Store, error) {
		db, err := diskstore.Open(dir, diskstore.Options{})
		if err != nil {
			return nil, err
		}
		return cairn.NewStore(db, cairn.Options{}), nil
	}
	var progress strings.Builder
	if _, err := bench.Run(context.Background(), tiny(bench.Config{Open: open, Workloads: []string{"W1"}, Out: io.Discard, Progress: &progress})); err != nil {
		t.Fatal(err)
	}
	if want := "W1 commits: 50 writes in 50 groups (1.0 a group), 50 syncs (1.0 writes a sync, "; !strings.Contains(progress.String(), want) {
		t.Errorf("progress without %q:\n%s", want, progress.String())
	}
}

// A run refuses a workload it does not know, before it writes anything.
func TestRunRefusesUnknownWorkloads(t *testing.T) {
	opened := false
	open := func(context.Context) (*cairn.Store, error) { opened = true; return memstore.Open(), nil }
	_, err := bench.Run(context.Background(), tiny(bench.Config{Open: open, Workloads: []string{"W1", "W9"}, Out: io.Discard}))
	if err == nil || !strings.Contains(err.Error(), `unknown workload "W9": the workloads are W1, W2, W3, W4, W5, W6`) {
		t.Fatalf("Run with W9: %v", err)
	}
	if opened {
		t.Fatal("Run opened the store before refusing the workload")
	}
}

// Every stream a run writes starts with StreamPrefix.
func TestRunStreamPrefix(t *testing.T) {
	store := memstore.Open()
	open := func(context.Context) (*cairn.Store, error) {
		return cairn.NewStore(keepOpen{store.Backend()}, cairn.Options{}), nil
	}
	if _, err := bench.Run(context.Background(), tiny(bench.Config{Open: open, StreamPrefix: "bench-x-", Workloads: []string{"W1", "W2", "W3", "W4", "W5"}, Out: io.Discard})); err != nil {
		t.Fatal(err)
	}
	n := 0
	for id, err := range store.Streams(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(id, "bench-x-") {
			t.Fatalf("the run wrote stream %q", id)
		}
		n++
	}
	if n == 0 {
		t.Fatal("the run wrote no stream")
	}
}

type keepOpen struct{ cairn.Backend }

func (keepOpen) Close() error { return nil }

// TestRunSubset runs the selected workloads only, on the in-memory engine.
func TestRunSubset(t *testing.T) {
	open := func(context.Context) (*cairn.Store, error) { return memstore.Open(), nil }
	results, err := bench.Run(context.Background(), tiny(bench.Config{Open: open, Workloads: []string{"w4"}, Out: io.Discard}))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Workload != "W4" {
			t.Fatalf("ran %s, asked for W4 only", r.Workload)
		}
	}
	if len(results) != 2 {
		t.Fatalf("%d figures, want 2", len(results))
	}
}

func Example() {
	open := func(context.Context) (*cairn.Store, error) { return memstore.Open(), nil }
	results, err := bench.Run(context.Background(), bench.Config{
		Open:      open,
		Workloads: []string{"W1", "W3"},
		W1Appends: 100,
		W3Events:  10_000,
		Out:       io.Discard, // the report; os.Stdout by default
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range results {
		fmt.Println(r.Workload, r.Metric, r.Unit)
	}
	// Output:
	// W1 append latency p50 ms
	// W1 append latency p99 ms
	// W3 appends of 1000: throughput events/s
}

// BenchmarkFileBaseline measures the raw baseline alone: 256-byte records
// appended with fdatasync, one per append, by 1 and by 64 writers.
func BenchmarkFileBaseline(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprint("writers=", writers), func(b *testing.B) {
			base, err := bench.NewFileBaseline(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer base.Close()
			b.SetBytes(bench.EventBytes)
			b.ResetTimer()
			if _, _, err := base.Append(context.Background(), writers, max(1, b.N/writers), 1, bench.EventBytes); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// W1's appends go to streams that exist, with their exact versions: each
// of the streams it reaches holds the event that created it and one per
// pass of the round-robin.
func TestW1AppendsToExistingStreams(t *testing.T) {
	store := memstore.Open()
	open := func(context.Context) (*cairn.Store, error) {
		return cairn.NewStore(keepOpen{store.Backend()}, cairn.Options{}), nil
	}
	cfg := tiny(bench.Config{Open: open, Workloads: []string{"W1"}, Out: io.Discard})
	cfg.W1Appends = 120
	if _, err := bench.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	n := 0
	for id, err := range store.Streams(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		v, err := store.StreamVersion(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if v != 1 {
			t.Errorf("stream %s ends at version %d, want 1: created, then appended to once", id, v)
		}
		n++
	}
	if n != cfg.W1Appends {
		t.Fatalf("W1 wrote %d streams, want %d", n, cfg.W1Appends)
	}
}

// slowAppends makes every append of its backend, conditional or not, take
// at least a millisecond.
type slowAppends struct{ conditional }

// conditional is an engine that checks append conditions.
type conditional interface {
	cairn.Backend
	cairn.BatchAppender
	cairn.Querier
}

func (s slowAppends) Append(ctx context.Context, stream string, expected cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	time.Sleep(time.Millisecond)
	return s.conditional.Append(ctx, stream, expected, events)
}

func (s slowAppends) AppendBatch(ctx context.Context, reqs []cairn.AppendRequest) ([]cairn.AppendResult, error) {
	time.Sleep(time.Millisecond)
	return s.conditional.AppendBatch(ctx, reqs)
}

func (slowAppends) Close() error { return nil }

// W2 and D1 at their default sizes stop their writers once their time has
// passed, and the raw baseline then makes as many appends as the store
// made in W2, by as many writers: the figures compare the same work.
func TestDefaultSizesStopAtTheirTime(t *testing.T) {
	const writers = 4
	store := memstore.Open()
	open := func(context.Context) (*cairn.Store, error) {
		return cairn.NewStore(slowAppends{store.Backend().(conditional)}, cairn.Options{}), nil
	}
	dir := t.TempDir()
	base, err := bench.NewFileBaseline(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	cfg := bench.Config{Open: open, Baseline: base, Workloads: []string{"W2", "D1"}, Out: io.Discard,
		W2Writers: writers, D1Writers: writers, Time: 200 * time.Millisecond}
	results, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) == 0 || !results[0].HasRaw {
		t.Fatalf("W2 reported %+v, want a throughput beside the raw file's", results)
	}
	made := func(prefix string) int {
		n := 0
		for w := range writers {
			v, err := store.StreamVersion(context.Background(), fmt.Sprintf("%s-%d", prefix, w))
			if err != nil {
				t.Fatal(err)
			}
			n += int(v) + 1
		}
		// At a millisecond an append, 200 ms allow each writer a few
		// hundred at most, far below the 64,000 a writer of the size
		// without a limit.
		if n == 0 || n >= 256_000/writers {
			t.Errorf("the writers made %d appends to %s-*: want some, stopped by the time limit", n, prefix)
		}
		return n
	}
	made("d1-plain")
	made("d1-cond")
	w2 := made("w2")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var raw int64
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		raw += info.Size()
	}
	want := int64((w2+writers-1)/writers*writers) * bench.EventBytes
	if raw != want {
		t.Errorf("the raw file holds %d bytes, want %d: %d appends by %d writers, as many as the store made in W2 (%d), rounded up to a whole number a writer",
			raw, want, raw/bench.EventBytes, writers, w2)
	}
}
