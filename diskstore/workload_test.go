package diskstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
)

// ack is an acknowledged append: the events first … first+n-1 of stream,
// the last at position pos, tagged with id.
type ack struct {
	stream string
	first  int64
	n      int
	pos    uint64
	id     string
}

func (a ack) String() string {
	return fmt.Sprintf("ACK %s %d %d %d %s", a.stream, a.first, a.n, a.pos, a.id)
}

func parseAck(line string) (ack, bool) {
	f := strings.Fields(line)
	if len(f) != 6 || f[0] != "ACK" {
		return ack{}, false
	}
	first, err1 := strconv.ParseInt(f[2], 10, 64)
	n, err2 := strconv.Atoi(f[3])
	pos, err3 := strconv.ParseUint(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return ack{}, false
	}
	return ack{stream: f[1], first: first, n: n, pos: pos, id: f[5]}, true
}

// tag is what the workload writes in each event's data, so that the checks
// can tell which append (and which atomic batch) an event belongs to.
type tag struct {
	id    string // the append
	i, n  int    // the event's index in the append, and the append's size
	batch string // the batch, "-" for a plain append
	reqs  int    // the number of appends in the batch
}

func (t tag) data() []byte {
	return fmt.Appendf(nil, "%s %d %d %s %d", t.id, t.i, t.n, t.batch, t.reqs)
}

func parseTag(b []byte) (tag, error) {
	f := strings.Fields(string(b))
	if len(f) != 5 {
		return tag{}, fmt.Errorf("bad event data %q", b)
	}
	var t tag
	var err1, err2, err3 error
	t.id, t.batch = f[0], f[3]
	t.i, err1 = strconv.Atoi(f[1])
	t.n, err2 = strconv.Atoi(f[2])
	t.reqs, err3 = strconv.Atoi(f[4])
	if err := errors.Join(err1, err2, err3); err != nil {
		return tag{}, fmt.Errorf("bad event data %q: %v", b, err)
	}
	return t, nil
}

// write appends from one writer until ctx is done or an append fails. Each
// writer owns three streams, appends 1 to 4 events with an exact expected
// version, and every seventh time appends to two of its streams in one
// atomic batch. onAck is called for each acknowledged append.
func write(ctx context.Context, s *cairn.Store, prefix string, w int, onAck func(ack)) error {
	streams := make([]string, 3)
	versions := make([]int64, 3)
	for j := range streams {
		streams[j] = fmt.Sprintf("%s-w%d-s%d", prefix, w, j)
		v, err := s.StreamVersion(ctx, streams[j])
		switch {
		case errors.Is(err, cairn.ErrStreamNotFound):
			v = -1
		case err != nil:
			return err
		}
		versions[j] = v
	}
	expect := func(j int) cairn.ExpectedVersion {
		if versions[j] < 0 {
			return cairn.NoStream
		}
		return cairn.Exact(versions[j])
	}
	events := func(t tag) []cairn.EventData {
		out := make([]cairn.EventData, t.n)
		for i := range out {
			t.i = i
			out[i] = cairn.EventData{Type: "Tested", ContentType: cairn.ContentBinary, Data: t.data()}
		}
		return out
	}
	for n := 0; ctx.Err() == nil; n++ {
		id := fmt.Sprintf("%s-w%d-a%d", prefix, w, n)
		if n%7 == 6 {
			a, b := n%3, (n+1)%3
			ta := tag{id: id + "x", n: 2, batch: id, reqs: 2}
			tb := tag{id: id + "y", n: 1, batch: id, reqs: 2}
			res, err := s.AppendBatch(ctx,
				cairn.AppendRequest{Stream: streams[a], Expected: expect(a), Events: events(ta)},
				cairn.AppendRequest{Stream: streams[b], Expected: expect(b), Events: events(tb)})
			if err != nil {
				return err
			}
			onAck(ack{streams[a], versions[a] + 1, 2, res[0].Position, ta.id})
			onAck(ack{streams[b], versions[b] + 1, 1, res[1].Position, tb.id})
			versions[a], versions[b] = res[0].Version, res[1].Version
			continue
		}
		j := n % 3
		t := tag{id: id, n: 1 + n%4, batch: "-", reqs: 1}
		var res cairn.AppendResult
		var err error
		if n%5 == 4 {
			// With a projection that records, in the same commit, the
			// stream's length.
			t.batch = "P"
			res, err = s.CommitAll(ctx, cairn.AppendRequest{Stream: streams[j], Expected: expect(j), Events: events(t)}, countProjection)
		} else {
			res, err = s.Append(ctx, streams[j], expect(j), events(t)...)
		}
		if err != nil {
			return err
		}
		onAck(ack{streams[j], versions[j] + 1, t.n, res.Position, id})
		versions[j] = res.Version
	}
	return nil
}

// countProjection records the length of the stream of the events it is
// given in the read model table "counts".
func countProjection(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
	last := events[len(events)-1]
	return tx.Put(ctx, "counts", last.StreamID, strconv.AppendInt(nil, last.Version+1, 10))
}

// verify checks a store after a crash: the log is gapless from position 0,
// every event belongs to an append that is there whole, every batch is
// there whole, each stream's versions are contiguous, and every
// acknowledged append is there, at its versions and positions.
func verify(t *testing.T, s *cairn.Store, acks []ack) {
	t.Helper()
	ctx := context.Background()
	type seen struct {
		stream string
		first  int64
		pos    uint64 // of the last event
		n      int
	}
	appends := map[string]*seen{}
	batches := map[string]map[string]bool{}
	batchSize := map[string]int{}
	next := map[string]int64{}
	projected := map[string]int64{} // the stream length after its last commit with a projection
	var want uint64
	for e, err := range s.All(ctx, 0, cairn.Forward) {
		if err != nil {
			t.Fatalf("read all at position %d: %v", want, err)
		}
		if e.Position != want {
			t.Fatalf("log has a gap: position %d follows %d", e.Position, want-1)
		}
		want++
		if e.Version != next[e.StreamID] {
			t.Fatalf("stream %s: version %d at position %d, want %d", e.StreamID, e.Version, e.Position, next[e.StreamID])
		}
		next[e.StreamID]++
		tg, err := parseTag(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		a := appends[tg.id]
		if tg.i == 0 {
			if a != nil {
				t.Fatalf("append %s is in the log twice", tg.id)
			}
			a = &seen{stream: e.StreamID, first: e.Version}
			appends[tg.id] = a
		}
		if a == nil || a.n != tg.i || a.stream != e.StreamID || (tg.i > 0 && a.pos != e.Position-1) {
			t.Fatalf("append %s: event %d of %d out of place at position %d", tg.id, tg.i, tg.n, e.Position)
		}
		a.n++
		a.pos = e.Position
		if tg.batch == "P" {
			projected[e.StreamID] = e.Version + 1
		} else if tg.batch != "-" {
			if batches[tg.batch] == nil {
				batches[tg.batch] = map[string]bool{}
			}
			batches[tg.batch][tg.id] = true
			batchSize[tg.batch] = tg.reqs
		}
	}
	for id, a := range appends {
		// Every append in the log is whole: its last event carries n.
		evs, err := s.ReadStream(ctx, a.stream, a.first, a.n, cairn.Forward)
		if err != nil {
			t.Fatal(err)
		}
		tg, _ := parseTag(evs[len(evs)-1].Data)
		if tg.n != a.n {
			t.Fatalf("append %s is half there: %d of %d events", id, a.n, tg.n)
		}
	}
	// A projection's write is there exactly when its commit is.
	for stream := range next {
		v, ok, err := s.ReadModelGet(ctx, "counts", stream)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := strconv.ParseInt(string(v), 10, 64)
		if want, had := projected[stream]; ok != had || got != want {
			t.Fatalf("stream %s: read model says %q (%v), its last commit with a projection ends at %d (%v)", stream, v, ok, want, had)
		}
	}
	for b, ids := range batches {
		if len(ids) != batchSize[b] {
			t.Fatalf("batch %s is half there: %d of %d appends", b, len(ids), batchSize[b])
		}
	}
	for _, k := range acks {
		a := appends[k.id]
		if a == nil {
			t.Fatalf("acknowledged append %s (%s versions %d+%d at %d) is lost", k.id, k.stream, k.first, k.n, k.pos)
		}
		if a.stream != k.stream || a.first != k.first || a.n != k.n || a.pos != k.pos {
			t.Fatalf("acknowledged append %s: recorded as %+v, acknowledged as %+v", k.id, *a, k)
		}
	}
	t.Logf("%d events, %d appends (%d streams with projections), %d acknowledged", want, len(appends), len(projected), len(acks))
}

// acks collects acknowledgements from concurrent writers.
type ackLog struct {
	mu   sync.Mutex
	acks []ack
	grow chan struct{}
}

func (l *ackLog) add(a ack) {
	l.mu.Lock()
	l.acks = append(l.acks, a)
	l.mu.Unlock()
	select {
	case l.grow <- struct{}{}:
	default:
	}
}

func (l *ackLog) snapshot() []ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ack(nil), l.acks...)
}
