package natsstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/linearize"
	"github.com/cairndb/cairn/natsstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// logHash returns a hash of everything a node's copy holds in its log:
// every event's position, stream, version, id, type, data, metadata, tags
// and time, and the number of events.
func logHash(t *testing.T, db *natsstore.DB) (string, int) {
	t.Helper()
	h := sha256.New()
	n := 0
	s := cairn.NewStore(db, cairn.Options{})
	for e, err := range s.All(context.Background(), 0, cairn.Forward) {
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%d %q %d %s %q %x %x %q %d\n", e.Position, e.StreamID, e.Version, e.ID, e.Type, e.Data, e.Metadata, e.Tags, e.Created.UnixMicro())
		n++
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// checkSame syncs every node and checks that their logs are identical and
// gapless. A write whose caller gave up may still reach the log after the
// first node synced (its node's writer retries it), so the nodes are
// synced and compared again, for up to a minute, until they agree.
func checkSame(t *testing.T, nodes []*natsstore.DB) int {
	t.Helper()
	return checkSameLogs(t, nodes, true)
}

// checkSameLogs is checkSame, with the check that the logs are gapless
// only when gapless is set (a compaction removes events, and leaves their
// positions unused).
func checkSameLogs(t *testing.T, nodes []*natsstore.DB, gapless bool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		var first string
		var count int
		same := true
		for i, d := range nodes {
			if err := d.Sync(ctx); err != nil {
				t.Fatalf("node %d: sync: %v", i, err)
			}
			h, n := logHash(t, d)
			evs, err := d.ReadAll(ctx, cairn.LogEnd, 1, cairn.Backward)
			if err != nil {
				t.Fatal(err)
			}
			if gapless && n > 0 && (len(evs) != 1 || evs[0].Position != uint64(n-1)) {
				t.Fatalf("node %d: %d events, the last at %v: the log has gaps", i, n, evs)
			}
			if i == 0 {
				first, count = h, n
			} else if h != first || n != count {
				if ctx.Err() != nil || time.Until(deadline(ctx)) < time.Second {
					t.Fatalf("node %d holds %d events (hash %s), node 0 %d (hash %s)", i, n, h[:12], count, first[:12])
				}
				same = false
				break
			}
		}
		if same {
			return count
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// Writes made on every node at once, of every kind, leave every node with
// the same log and the same read model.
func TestNodesAgree(t *testing.T) {
	nodes, _ := newCluster(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 6 {
		s := cairn.NewStore(nodes[w%3], cairn.Options{})
		rng := rand.New(rand.NewPCG(uint64(w), 9))
		wg.Go(func() {
			for i := range 60 {
				stream := fmt.Sprintf("agree-%d", rng.IntN(5))
				var err error
				switch k := rng.IntN(10); {
				case k < 5:
					_, err = s.Append(ctx, stream, cairn.Any, cairn.EventData{Type: "E", Data: fmt.Appendf(nil, `{"w":%d,"i":%d}`, w, i)})
				case k < 6:
					_, err = s.AppendBatch(ctx,
						cairn.AppendRequest{Stream: stream, Expected: cairn.Any, Events: []cairn.EventData{{Type: "B"}}},
						cairn.AppendRequest{Stream: "agree-batch", Expected: cairn.Any, Events: []cairn.EventData{{Type: "B"}}},
					)
				case k < 7:
					err = s.DeleteStream(ctx, stream, cairn.Any)
				case k < 8:
					err = s.TruncateStream(ctx, stream, int64(rng.IntN(4)))
				default:
					_, err = s.CommitAll(ctx, cairn.AppendRequest{Stream: stream, Expected: cairn.Any, Events: []cairn.EventData{{Type: "C"}}},
						func(ctx context.Context, tx cairn.Tx, evs []cairn.Event) error {
							return tx.Put(ctx, "last", stream, fmt.Appendf(nil, "%d@%d", evs[0].Version, evs[0].Position))
						})
				}
				if err != nil && !errors.Is(err, cairn.ErrStreamNotFound) {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkSame(t, nodes)
	var models []string
	for _, d := range nodes {
		es, err := d.ReadModelScan(ctx, "last", "", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, fmt.Sprint(es))
	}
	if models[0] != models[1] || models[1] != models[2] {
		t.Fatalf("read models differ:\n%s\n%s\n%s", models[0], models[1], models[2])
	}
}

// A node that was down catches up when it comes back, from the record
// after its last, and every node holds the same log.
func TestRestartCatchesUp(t *testing.T) {
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
	app := func(d *natsstore.DB, n int) {
		s := cairn.NewStore(d, cairn.Options{})
		for i := range n {
			if _, err := s.Append(ctx, fmt.Sprintf("r-%d", i%7), cairn.Any, cairn.EventData{Type: "E"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	app(nodes[2], 20)
	if err := nodes[2].Close(); err != nil {
		t.Fatal(err)
	}
	app(nodes[0], 30)
	app(nodes[1], 30)
	nodes[2] = openNode(t, dirs[2], stream, 2)
	if got := checkSame(t, nodes); got != 80 {
		t.Fatalf("%d events, want 80", got)
	}
	// The registry knows every node, and the applied sequences let the
	// log be trimmed below the lowest.
	ms, err := nodes[0].Members(ctx)
	if err != nil || len(ms) != 3 {
		t.Fatalf("members %+v, %v", ms, err)
	}
}

// A node whose copy is behind the start of the log (trimmed past it)
// refuses to start rather than skip records; a node restored from a copy
// of another's directory (a backup) goes on from its mark.
func TestTrimmedLog(t *testing.T) {
	stream := newStream()
	a := openNode(t, t.TempDir(), stream, 0)
	defer a.Close()
	ctx := context.Background()
	s := cairn.NewStore(a, cairn.Options{})
	for range 10 {
		if _, err := s.Append(ctx, "t-1", cairn.Any, cairn.EventData{Type: "E"}); err != nil {
			t.Fatal(err)
		}
	}
	// a is the only node registered: trimming goes up to its last record.
	time.Sleep(400 * time.Millisecond) // a reports its applied sequence
	first, err := a.Trim(ctx)
	if err != nil || first != 11 {
		t.Fatalf("trim: first record kept %d, %v; want 11", first, err)
	}
	o := natsstore.Options{Dir: t.TempDir(), URL: natsURLs[1], Stream: stream, NoSync: true, TrimEvery: -1}
	if db, err := natsstore.Open(ctx, o); !errors.Is(err, natsstore.ErrHalted) {
		if db != nil {
			_ = db.Close()
		}
		t.Fatalf("a new node on a trimmed log: %v, want ErrHalted", err)
	}
	// The node refused left no entry that would hold trimming back.
	ns, err := a.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].ID != a.NodeID() {
		t.Fatalf("registry after a refused node: %+v, want node %s alone", ns, a.NodeID())
	}
	if _, err := s.Append(ctx, "t-1", cairn.Any, cairn.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if first, err := a.Trim(ctx); err != nil || first != 12 {
		t.Fatalf("trim after a refused node: first record kept %d, %v; want 12", first, err)
	}
}

// The history of appends (with expected versions) and synced reads that
// writers on every node make, while a NATS server (the stream's leader,
// when it is found) is stopped and started again, is linearizable;
// afterwards every acknowledged append is in the log once, at its version,
// and every node holds the same log.
func TestLinearizableUnderServerLoss(t *testing.T) {
	nodes, stream := newCluster(t)
	victim := leaderIndex(t, nodes[0], stream)
	h := runHistory(t, nodes, 6, 4*time.Second, func() {
		time.Sleep(time.Second)
		servers[victim].Shutdown()
		time.Sleep(1500 * time.Millisecond)
		s, err := natsstore.StartServer(serverOpt[victim])
		if err != nil {
			t.Errorf("restart of NATS server %d: %v", victim, err)
			return
		}
		servers[victim] = s
	})
	h.check(t, nodes)
}

// leaderIndex returns the index of the NATS server that leads stream.
func leaderIndex(t *testing.T, d *natsstore.DB, stream string) int {
	t.Helper()
	name, err := d.StreamLeader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range serverOpt {
		if o.Name == name {
			return i
		}
	}
	return 0
}

type history struct {
	*linearize.History
	mu    sync.Mutex
	acked map[uuid.UUID]cairn.Event // acknowledged appends: stream and version
	end   int64                     // when the writers stopped
}

// runHistory runs writers on the nodes for d, making appends and synced
// reads on a few streams, while fault runs; it returns their history.
func runHistory(t *testing.T, nodes []*natsstore.DB, writers int, d time.Duration, fault func()) *history {
	h := &history{History: linearize.NewHistory(), acked: map[uuid.UUID]cairn.Event{}}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		node := nodes[w%len(nodes)]
		s := cairn.NewStore(node, cairn.Options{})
		rng := rand.New(rand.NewPCG(uint64(w), 77))
		wg.Go(func() {
			seen := map[string]int64{}
			for time.Since(start) < d {
				stream := fmt.Sprintf("lin-%d", rng.IntN(3))
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				call := h.Now()
				if rng.IntN(3) == 0 {
					err := node.Sync(ctx)
					var v int64
					if err == nil {
						v, err = s.StreamVersion(ctx, stream)
					}
					cancel()
					if errors.Is(err, cairn.ErrStreamNotFound) {
						v, err = -1, nil
					}
					if err != nil {
						continue // a read that failed tells nothing
					}
					seen[stream] = v
					h.Add(w, linearize.Read{Stream: stream}, call, linearize.Result{Version: v})
					continue
				}
				in := linearize.Append{Stream: stream, Expected: linearize.Any}
				if v, ok := seen[stream]; ok && rng.IntN(2) == 0 {
					in.Expected = v
				}
				id := uuid.Must(uuid.NewV7())
				exp := cairn.Any
				if in.Expected >= -1 {
					exp, _ = cairn.ParseExpectedVersion(in.Expected)
				}
				res, err := s.Append(ctx, stream, exp, cairn.EventData{ID: id, Type: "L"})
				cancel()
				var out linearize.Result
				switch {
				case err == nil:
					out.Version = res.Version
					seen[stream] = res.Version
					h.mu.Lock()
					h.acked[id] = cairn.Event{StreamID: stream, Version: res.Version, Position: res.Position}
					h.mu.Unlock()
				case errors.Is(err, cairn.ErrWrongExpectedVersion):
					out.Outcome = linearize.Conflict
				default:
					out.Outcome = linearize.Unknown
				}
				h.Add(w, in, call, out)
			}
		})
	}
	if fault != nil {
		fault()
	}
	wg.Wait()
	h.end = h.Now()
	return h
}

// check checks the history: linearizable, every acknowledged append once
// in the log at its version, every node's log the same.
func (h *history) check(t *testing.T, nodes []*natsstore.DB) {
	t.Helper()
	show := filepath.Join(t.ArtifactDir(), "history.html")
	res, err := h.Check(time.Minute, show)
	if res == porcupine.Illegal {
		t.Fatalf("the history of %d operations is not linearizable: see %s (kept with -artifacts), %v", h.Len(), show, err)
	}
	n := checkSame(t, nodes)
	if len(h.acked) == 0 {
		t.Fatal("no append acknowledged")
	}
	count := map[uuid.UUID]int{}
	s := cairn.NewStore(nodes[0], cairn.Options{})
	for e, err := range s.All(context.Background(), 0, cairn.Forward) {
		if err != nil {
			t.Fatal(err)
		}
		count[e.ID]++
		if want, ok := h.acked[e.ID]; ok && (want.StreamID != e.StreamID || want.Version != e.Version || want.Position != e.Position) {
			t.Fatalf("append acknowledged at %s@%d (position %d) is at %s@%d (%d)", want.StreamID, want.Version, want.Position, e.StreamID, e.Version, e.Position)
		}
	}
	for id := range h.acked {
		if count[id] != 1 {
			t.Fatalf("acknowledged append %s is in the log %d times", id, count[id])
		}
	}
	// The longest time without an acknowledged append: across a fault,
	// how long writes stopped (a figure, not a check).
	t.Logf("%d operations (%d appends acknowledged), %d events, linearizable: %v; longest time without an acknowledged append: %v",
		h.Len(), len(h.acked), n, res, h.LongestWithoutAck(0, h.end).Round(time.Millisecond))
}

// A node whose consumer of the log is lost (its server deleted it, as one
// that dies takes it along) makes another and goes on applying: its
// writers are answered, and its reads see writes made through others.
func TestLostConsumerIsReplaced(t *testing.T) {
	nodes, stream := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev := func() []cairn.EventData {
		return []cairn.EventData{{ID: uuid.New(), Type: "T", Data: []byte(`{}`)}}
	}
	if _, err := nodes[0].Append(ctx, "s", cairn.NoStream, ev()); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for name := range st.ConsumerNames(ctx).Name() {
		if err := st.DeleteConsumer(ctx, name); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	if deleted < 3 {
		t.Fatalf("deleted %d consumers of the log, want one for each of the 3 nodes at least", deleted)
	}
	for i, d := range nodes {
		if _, err := d.Append(ctx, "s", cairn.Exact(int64(i)), ev()); err != nil {
			t.Fatalf("node %d: append after its consumer was deleted: %v", i, err)
		}
	}
	for i, d := range nodes {
		if err := d.Sync(ctx); err != nil {
			t.Fatalf("node %d: sync: %v", i, err)
		}
		v, err := d.StreamVersion(ctx, "s")
		if err != nil || v != 3 {
			t.Fatalf("node %d: version %d, %v; want 3", i, v, err)
		}
	}
}

// A node that leaves on Close is gone from the registry, whose lowest
// applied sequence bounds trimming, once closed; a node closed without
// leaving stays.
func TestLeaveOnClose(t *testing.T) {
	nodes, stream := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	listed := func(id string) bool {
		t.Helper()
		ns, err := nodes[0].Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(ns, func(n natsstore.Node) bool { return n.ID == id })
	}
	stays := openNode(t, t.TempDir(), stream, 1)
	leaves := openNode(t, t.TempDir(), stream, 2)
	leaves.LeaveOnClose()
	if _, err := leaves.Append(ctx, "s", cairn.Any, []cairn.EventData{{ID: uuid.New(), Type: "T", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*natsstore.DB{stays, leaves} {
		if !listed(d.NodeID()) {
			t.Fatalf("node %s is not in the registry while open", d.NodeID())
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if !listed(stays.NodeID()) {
		t.Errorf("node %s, closed without leaving, is gone from the registry", stays.NodeID())
	}
	if listed(leaves.NodeID()) {
		t.Errorf("node %s left on Close and is still in the registry", leaves.NodeID())
	}
}
