package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/natsstore"
	"github.com/google/uuid"
)

// A compaction is logged as steps of its purge, with the other nodes'
// writes applied between them: while one node compacts, writers on the
// others go on, some of them appending again the events of a deleted
// stream that the purge forgets. Every node ends with the same log, the
// dead events gone, and its space given back; a compaction logged whole,
// as earlier builds did, still applies.
func TestCompactionInSteps(t *testing.T) {
	defer natsstore.SetPurgeRuns(16)()
	nodes, _ := newCluster(t)
	ctx := context.Background()
	stores := make([]*cairn.Store, len(nodes))
	for i, d := range nodes {
		stores[i] = cairn.NewStore(d, cairn.Options{})
	}
	data := make([]byte, 4<<10)
	id := func(stream string, i int) uuid.UUID {
		return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s-%d", stream, i))
	}
	// 30 streams of 10 single-event appends, 24 of them then deleted:
	// 240 dead appends, 15 steps of 16.
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for k := w; k < 30; k += 3 {
				stream := fmt.Sprint("c-", k)
				for i := range 10 {
					if _, err := stores[w].Append(ctx, stream, cairn.Any, cairn.EventData{ID: id(stream, i), Type: "E", Data: data}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for k := range 24 {
		if err := stores[k%3].DeleteStream(ctx, fmt.Sprint("c-", k), cairn.Any); err != nil {
			t.Fatal(err)
		}
	}
	checkSame(t, nodes)
	before := make([]int64, len(nodes))
	for i, d := range nodes {
		var err error
		if before[i], err = d.DiskBytes(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Writers on nodes 1 and 2 while node 0 compacts: new appends, and
	// appends again of the deleted streams' events, which are retries
	// (no new event) until the purge step that forgets them, new appends
	// after.
	wctx, stop := context.WithCancel(ctx)
	var during atomic.Int64
	for w := 1; w <= 2; w++ {
		wg.Go(func() {
			for i := 0; wctx.Err() == nil; i++ {
				stream := fmt.Sprint("c-", (i*2+w)%24)
				if _, err := stores[w].Append(ctx, stream, cairn.Any, cairn.EventData{ID: id(stream, i%10), Type: "E"}); err != nil {
					t.Errorf("writer on node %d: %v", w, err)
					return
				}
				if _, err := stores[w].Append(ctx, fmt.Sprint("live-", w), cairn.Any, cairn.EventData{Type: "E"}); err != nil {
					t.Errorf("writer on node %d: %v", w, err)
					return
				}
				during.Add(2)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if err := stores[0].Compact(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	kinds, err := natsstore.RecordKinds(ctx, nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	first, last := slices.Index(kinds, "purge"), -1
	for i, k := range kinds {
		if k == "purge" {
			last = i
		}
	}
	if first < 0 {
		t.Fatalf("no purge step in the log: %v", kinds)
	}
	steps := 0
	between := 0
	for _, k := range kinds[first : last+1] {
		switch k {
		case "purge":
			steps++
		case "writes":
			between++
		}
	}
	t.Logf("%d purge steps, %d records of writes between them, %d appends while compacting", steps, between, during.Load())
	if steps < 15 {
		t.Fatalf("the compaction took %d purge steps of 16 appends, want at least 15", steps)
	}
	if between == 0 {
		t.Fatalf("no record of writes between the compaction's purge steps: %v", kinds[first:last+1])
	}
	n := checkSameLogs(t, nodes, false)
	t.Logf("every node holds the same %d events", n)

	// The deleted streams' first lives are gone from every copy, and the
	// space of their 240 appends of 4 KiB is given back on every node,
	// by the node's reclaim after the last step.
	for i, d := range nodes {
		s := cairn.NewStore(d, cairn.Options{})
		for e, err := range s.All(ctx, 0, cairn.Forward) {
			if err != nil {
				t.Fatal(err)
			}
			var k int
			if _, err := fmt.Sscanf(e.StreamID, "c-%d", &k); err == nil && k < 24 && len(e.Data) > 0 {
				t.Fatalf("node %d: an event of deleted stream %s is still in the log at %d", i, e.StreamID, e.Position)
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			after, err := d.DiskBytes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if before[i]-after > 512<<10 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d takes %d bytes after compaction, %d before: the dead appends' space was not given back", i, after, before[i])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// While a node of an earlier build is registered, a compaction is
	// logged whole, as that build did; once it is forgotten, as steps.
	if err := natsstore.RegisterEarlierNode(ctx, nodes[0], "node-earlier"); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[1].Append(ctx, "whole", cairn.Any, cairn.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	if err := stores[1].DeleteStream(ctx, "whole", cairn.Any); err != nil {
		t.Fatal(err)
	}
	inLog := func(d *natsstore.DB) bool {
		for e, err := range cairn.NewStore(d, cairn.Options{}).All(ctx, 0, cairn.Forward) {
			if err != nil {
				t.Fatal(err)
			}
			if e.StreamID == "whole" {
				return true
			}
		}
		return false
	}
	if err := nodes[2].Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !inLog(nodes[2]) {
		t.Fatal("the deleted stream's event is not in the log before compaction")
	}
	lastKind := func() string { // the last record of the log, which nodes[2] applied
		kinds, err := natsstore.RecordKinds(ctx, nodes[2])
		if err != nil {
			t.Fatal(err)
		}
		return kinds[len(kinds)-1]
	}
	if err := stores[2].Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if k := lastKind(); k != "compact" {
		t.Fatalf("with a node of an earlier build registered, the compaction's last record is %q, want one whole compaction", k)
	}
	checkSameLogs(t, nodes, false)
	for i, d := range nodes {
		if inLog(d) {
			t.Fatalf("node %d: the event of a stream deleted before a whole compaction is still in the log", i)
		}
	}
	if err := nodes[0].Forget(ctx, "node-earlier"); err != nil {
		t.Fatal(err)
	}
	if err := stores[2].Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if k := lastKind(); k != "purge" {
		t.Fatalf("with every node of this build, the compaction's last record is %q, want a purge step", k)
	}
}

// A node closed while another compacts, and opened again, applies the
// purge steps it missed from its mark, and ends with the same log as the
// others.
func TestCompactionAcrossRestart(t *testing.T) {
	defer natsstore.SetPurgeRuns(4)()
	stream := newStream()
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	nodes := make([]*natsstore.DB, 3)
	for i := range nodes {
		nodes[i] = openNode(t, dirs[i], stream, i)
	}
	defer func() {
		for _, d := range nodes {
			_ = d.Close()
		}
	}()
	ctx := context.Background()
	s := cairn.NewStore(nodes[1], cairn.Options{})
	for k := range 12 {
		for i := range 10 {
			if _, err := s.Append(ctx, fmt.Sprint("r-", k), cairn.Any, cairn.EventData{Type: "E", Data: fmt.Appendf(nil, `{"i":%d}`, i)}); err != nil {
				t.Fatal(err)
			}
		}
		if k%3 != 0 {
			if err := s.DeleteStream(ctx, fmt.Sprint("r-", k), cairn.Any); err != nil {
				t.Fatal(err)
			}
		}
	}
	done := make(chan error, 1)
	go func() { done <- cairn.NewStore(nodes[0], cairn.Options{}).Compact(ctx) }()
	time.Sleep(50 * time.Millisecond)
	closedAt := nodes[2].Applied()
	if err := nodes[2].Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	nodes[2] = openNode(t, dirs[2], stream, 2)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	kinds, err := natsstore.RecordKinds(ctx, nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	// The log is whole (never trimmed): record i+1 is kinds[i].
	first, last := 0, 0
	for i, k := range kinds {
		if k == "purge" {
			last = i + 1
			if first == 0 {
				first = i + 1
			}
		}
	}
	t.Logf("node 2 closed after applying record %d; purge steps at records %d to %d", closedAt, first, last)
	if steps := len(slices.DeleteFunc(kinds, func(k string) bool { return k != "purge" })); steps < 20 {
		t.Fatalf("the compaction took %d purge steps of 4 appends, want 20", steps)
	}
	if n := checkSameLogs(t, nodes, false); n != 48 {
		t.Fatalf("every node holds %d events after compaction, want the 40 of the streams not deleted and the 8 records of the deletes", n)
	}
}

// Two nodes that compact at once log their steps in turn: both finish,
// and every node ends with the same log, the dead events gone.
func TestConcurrentCompactions(t *testing.T) {
	defer natsstore.SetPurgeRuns(4)()
	nodes, _ := newCluster(t)
	ctx := context.Background()
	s := cairn.NewStore(nodes[2], cairn.Options{})
	for k := range 8 {
		for range 10 {
			if _, err := s.Append(ctx, fmt.Sprint("k-", k), cairn.Any, cairn.EventData{Type: "E"}); err != nil {
				t.Fatal(err)
			}
		}
		if k%2 == 1 {
			if err := s.DeleteStream(ctx, fmt.Sprint("k-", k), cairn.Any); err != nil {
				t.Fatal(err)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { errs[i] = cairn.NewStore(nodes[i], cairn.Options{}).Compact(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("compaction on node %d: %v", i, err)
		}
	}
	// The 40 events of the streams kept, and the 4 records of the deletes.
	if n := checkSameLogs(t, nodes, false); n != 44 {
		t.Fatalf("every node holds %d events after two compactions, want 44", n)
	}
}

// A node that stopped before it gave back the space of a compaction's
// purge gives it back when it opens again.
func TestReclaimAfterRestart(t *testing.T) {
	errStopped := errors.New("stopped before reclaiming")
	restore := natsstore.SetReclaimFails(errStopped)
	stream := newStream()
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	nodes := make([]*natsstore.DB, 3)
	for i := range nodes {
		nodes[i] = openNode(t, dirs[i], stream, i)
	}
	defer func() {
		for _, d := range nodes {
			_ = d.Close()
		}
	}()
	restore()
	ctx := context.Background()
	s := cairn.NewStore(nodes[0], cairn.Options{})
	data := make([]byte, 4<<10)
	for k := range 4 {
		for range 50 {
			if _, err := s.Append(ctx, fmt.Sprint("g-", k), cairn.Any, cairn.EventData{Type: "E", Data: data}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.DeleteStream(ctx, fmt.Sprint("g-", k), cairn.Any); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Compact(ctx); !errors.Is(err, errStopped) {
		t.Fatalf("compaction whose reclaim fails: %v", err)
	}
	checkSameLogs(t, nodes, false)
	before := make([]int64, 3)
	for i, d := range nodes {
		var err error
		if before[i], err = d.DiskBytes(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := nodes[2].Close(); err != nil {
		t.Fatal(err)
	}
	nodes[2] = openNode(t, dirs[2], stream, 2)
	// The 200 dead appends of 4 KiB: node 2 gives their space back, and
	// node 1, not opened again, still holds it.
	for deadline := time.Now().Add(30 * time.Second); ; {
		after, err := nodes[2].DiskBytes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if before[2]-after > 512<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 2, opened again, takes %d bytes, %d before: it did not give the purged space back", after, before[2])
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after, err := nodes[1].DiskBytes(ctx); err != nil || before[1]-after > 256<<10 {
		t.Fatalf("node 1, whose reclaim failed, takes %d bytes, %d before (%v): the test shows nothing", after, before[1], err)
	}
}
