package diskstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// ack is an acknowledged append: the events first … first+n-1 of stream,
// the last at position pos, tagged with id. ids, when known, are the
// events' IDs.
type ack struct {
	stream string
	first  int64
	n      int
	pos    uint64
	id     string
	ids    []uuid.UUID
}

func (a ack) String() string {
	return fmt.Sprintf("ACK %s %d %d %d %s", a.stream, a.first, a.n, a.pos, a.id)
}

// same reports whether a and b acknowledge the same append at the same
// versions and positions.
func (a ack) same(b ack) bool {
	return a.stream == b.stream && a.first == b.first && a.n == b.n && a.pos == b.pos && a.id == b.id
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
	batch string // the batch, "-" for a plain append, "P" for a commit with a projection
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

// attempt is one write of the workload as it was submitted (a plain
// append, a commit with a projection, or an atomic batch of two appends),
// kept so that it can be submitted again after a crash, with the same
// event IDs and expectations, as a client retries.
type attempt struct {
	writer string // the writer's attempts are retried in their order
	kind   string // "A" append, "P" commit with a projection, "B" batch
	reqs   []attemptReq
}

// attemptReq is one append of an attempt.
type attemptReq struct {
	stream   string
	expected int64 // the stream's expected version, -1 for NoStream
	id       string
	batch    string
	ids      []uuid.UUID
}

// String encodes a as a line: TRY writer kind, then one field per append.
func (a attempt) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "TRY %s %s", a.writer, a.kind)
	for _, r := range a.reqs {
		ids := make([]string, len(r.ids))
		for i, id := range r.ids {
			ids[i] = id.String()
		}
		fmt.Fprintf(&b, " %s|%d|%s|%s|%s", r.stream, r.expected, r.id, r.batch, strings.Join(ids, ","))
	}
	return b.String()
}

func parseAttempt(line string) (attempt, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "TRY" {
		return attempt{}, false
	}
	a := attempt{writer: f[1], kind: f[2]}
	for _, field := range f[3:] {
		p := strings.Split(field, "|")
		if len(p) != 5 {
			return attempt{}, false
		}
		r := attemptReq{stream: p[0], id: p[2], batch: p[3]}
		var err error
		if r.expected, err = strconv.ParseInt(p[1], 10, 64); err != nil {
			return attempt{}, false
		}
		for _, s := range strings.Split(p[4], ",") {
			id, err := uuid.Parse(s)
			if err != nil {
				return attempt{}, false
			}
			r.ids = append(r.ids, id)
		}
		a.reqs = append(a.reqs, r)
	}
	return a, true
}

func (r attemptReq) expectation() cairn.ExpectedVersion {
	if r.expected < 0 {
		return cairn.NoStream
	}
	return cairn.Exact(r.expected)
}

// events returns the append's events, each tagged: with the append's
// identity in its data (a tag of the workload), and with its stream's id as
// an index tag, so that the index has lists of categories, a type, tags
// and first events to check.
func (r attemptReq) events(reqs int) []cairn.EventData {
	out := make([]cairn.EventData, len(r.ids))
	t := tag{id: r.id, n: len(r.ids), batch: r.batch, reqs: reqs}
	for i := range out {
		t.i = i
		out[i] = cairn.EventData{ID: r.ids[i], Type: "Tested", ContentType: cairn.ContentBinary, Data: t.data(), Tags: []string{r.stream}}
	}
	return out
}

// submit submits the attempt and returns the acknowledgement of each of
// its appends.
func (a attempt) submit(ctx context.Context, s *cairn.Store) ([]ack, error) {
	reqs := make([]cairn.AppendRequest, len(a.reqs))
	for i, r := range a.reqs {
		reqs[i] = cairn.AppendRequest{Stream: r.stream, Expected: r.expectation(), Events: r.events(len(a.reqs))}
	}
	var res []cairn.AppendResult
	var err error
	switch a.kind {
	case "B":
		res, err = s.AppendBatch(ctx, reqs...)
	case "P":
		// With a projection that records, in the same commit, the
		// stream's length.
		var r cairn.AppendResult
		r, err = s.CommitAll(ctx, reqs[0], countProjection)
		res = []cairn.AppendResult{r}
	default:
		var r cairn.AppendResult
		r, err = s.Append(ctx, reqs[0].Stream, reqs[0].Expected, reqs[0].Events...)
		res = []cairn.AppendResult{r}
	}
	if err != nil {
		return nil, err
	}
	acks := make([]ack, len(a.reqs))
	for i, r := range a.reqs {
		acks[i] = ack{stream: r.stream, first: r.expected + 1, n: len(r.ids), pos: res[i].Position, id: r.id, ids: r.ids}
		if want := r.expected + int64(len(r.ids)); res[i].Version != want {
			return nil, fmt.Errorf("append %s acknowledged at version %d, want %d", r.id, res[i].Version, want)
		}
	}
	return acks, nil
}

// writer is one writer of the crash tests' workload.
type writer struct {
	prefix string
	w      int
	newID  func() uuid.UUID // makes its event IDs
	onTry  func(attempt)    // called before each attempt is submitted, when set
	onAck  func(ack)        // called for each acknowledged append
}

// run appends until ctx is done or an append fails. Each writer owns
// three streams, appends 1 to 4 events with an exact expected version, and
// every seventh time appends to two of its streams in one atomic batch;
// every fifth plain append is a commit with a projection.
func (wr writer) run(ctx context.Context, s *cairn.Store) error {
	name := fmt.Sprintf("%s-w%d", wr.prefix, wr.w)
	streams := make([]string, 3)
	versions := make([]int64, 3)
	for j := range streams {
		streams[j] = fmt.Sprintf("%s-s%d", name, j)
		v, err := s.StreamVersion(ctx, streams[j])
		switch {
		case errors.Is(err, cairn.ErrStreamNotFound):
			v = -1
		case err != nil:
			return err
		}
		versions[j] = v
	}
	req := func(j int, id, batch string, n int) attemptReq {
		r := attemptReq{stream: streams[j], expected: versions[j], id: id, batch: batch}
		for range n {
			r.ids = append(r.ids, wr.newID())
		}
		return r
	}
	for n := 0; ctx.Err() == nil; n++ {
		id := fmt.Sprintf("%s-a%d", name, n)
		a := attempt{writer: name, kind: "A"}
		var js []int
		switch j := n % 3; {
		case n%7 == 6:
			b := (n + 1) % 3
			a.kind, js = "B", []int{j, b}
			a.reqs = []attemptReq{req(j, id+"x", id, 2), req(b, id+"y", id, 1)}
		case n%5 == 4:
			a.kind, js = "P", []int{j}
			a.reqs = []attemptReq{req(j, id, "P", 1+n%4)}
		default:
			js = []int{j}
			a.reqs = []attemptReq{req(j, id, "-", 1+n%4)}
		}
		if wr.onTry != nil {
			wr.onTry(a)
		}
		acks, err := a.submit(ctx, s)
		if err != nil {
			return err
		}
		for i, k := range acks {
			wr.onAck(k)
			versions[js[i]] += int64(k.n)
		}
	}
	return nil
}

// retryAll submits every attempt again, after a crash, as clients that
// were not sure of their appends would: the attempts of one writer in
// their order, the writers concurrently. An attempt acknowledged before
// the crash must be recognised as a retry and get the result it was
// acknowledged with; any other must succeed, recognised if it was written
// before the crash and written now otherwise. It returns the
// acknowledgements of the retries, for verify, which checks that each
// append is in the log once.
func retryAll(t *testing.T, s *cairn.Store, attempts []attempt, acked []ack) []ack {
	t.Helper()
	ctx := context.Background()
	before := map[string]ack{}
	for _, k := range acked {
		before[k.id] = k
	}
	byWriter := map[string][]attempt{}
	for _, a := range attempts {
		byWriter[a.writer] = append(byWriter[a.writer], a)
	}
	var mu sync.Mutex
	var out []ack
	var errs []error
	var wg sync.WaitGroup
	for _, as := range byWriter {
		wg.Go(func() {
			for _, a := range as {
				got, err := a.submit(ctx, s)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("retry of %s: %w", a, err))
				}
				for _, k := range got {
					if b, ok := before[k.id]; ok && !b.same(k) {
						errs = append(errs, fmt.Errorf("append %s was acknowledged as %v, its retry after the crash returned %v", k.id, b, k))
					}
				}
				out = append(out, got...)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

// countProjection records the length of the stream of the events it is
// given in the read model table "counts".
func countProjection(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
	last := events[len(events)-1]
	return tx.Put(ctx, "counts", last.StreamID, strconv.AppendInt(nil, last.Version+1, 10))
}

// verify checks a store after a crash: the log is gapless from position 0,
// every event belongs to an append that is there whole and once, every
// batch is there whole, each stream's versions are contiguous, every event
// ID is in the log once, and every acknowledged append is there, at its
// versions and positions, with its event IDs (when the ack has them).
func verify(t *testing.T, s *cairn.Store, acks []ack) {
	t.Helper()
	ctx := context.Background()
	type seen struct {
		stream string
		first  int64
		pos    uint64 // of the last event
		n      int    // the events seen
		size   int    // the events the append has
		ids    []uuid.UUID
	}
	appends := map[string]*seen{}
	idAt := map[uuid.UUID]uint64{}
	batches := map[string]map[string]bool{}
	batchSize := map[string]int{}
	next := map[string]int64{}
	projected := map[string]int64{} // the stream length after its last commit with a projection
	var want uint64
	lists := map[cairn.IndexKey][]uint64{} // what the index must hold
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
		for _, k := range cairn.IndexKeys(nil, e.StreamID, e.Version, &e.EventData) {
			lists[k] = append(lists[k], e.Position)
		}
		if p, ok := idAt[e.ID]; ok {
			t.Fatalf("event ID %s is in the log twice: at positions %d and %d", e.ID, p, e.Position)
		}
		idAt[e.ID] = e.Position
		tg, err := parseTag(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		a := appends[tg.id]
		if tg.i == 0 {
			if a != nil {
				t.Fatalf("append %s is in the log twice", tg.id)
			}
			a = &seen{stream: e.StreamID, first: e.Version, size: tg.n}
			appends[tg.id] = a
		}
		if a == nil || a.n != tg.i || a.size != tg.n || a.stream != e.StreamID || (tg.i > 0 && a.pos != e.Position-1) {
			t.Fatalf("append %s: event %d of %d out of place at position %d", tg.id, tg.i, tg.n, e.Position)
		}
		a.n++
		a.pos = e.Position
		a.ids = append(a.ids, e.ID)
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
		// Every append in the log is whole: each of its events carries
		// its size.
		if a.n != a.size {
			t.Fatalf("append %s is half there: %d of %d events", id, a.n, a.size)
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
	// The index agrees with the log: every event is in the lists of its
	// keys, numbered from 0 without gaps, and nothing else is.
	for k, positions := range lists {
		n := 0
		for e, err := range s.Index(ctx, k, 0, cairn.Forward) {
			if err != nil {
				t.Fatalf("index list %v: %v", k, err)
			}
			if n >= len(positions) || e.Number != int64(n) || e.Position != positions[n] || !e.Found || idAt[e.Event.ID] != e.Position {
				t.Fatalf("index list %v: entry %d is number %d at position %d (found %v); the log has %d events for it", k, n, e.Number, e.Position, e.Found, len(positions))
			}
			n++
		}
		if n != len(positions) {
			t.Fatalf("index list %v has %d entries, the log %d events for it", k, n, len(positions))
		}
	}
	for _, k := range acks {
		a := appends[k.id]
		if a == nil {
			t.Fatalf("acknowledged append %s (%s versions %d+%d at %d) is lost", k.id, k.stream, k.first, k.n, k.pos)
		}
		if a.stream != k.stream || a.first != k.first || a.n != k.n || a.pos != k.pos || (k.ids != nil && !slices.Equal(a.ids, k.ids)) {
			t.Fatalf("acknowledged append %s: recorded as %+v, acknowledged as %+v", k.id, *a, k)
		}
	}
	t.Logf("%d events, %d appends (%d streams with projections), %d acknowledged", want, len(appends), len(projected), len(acks))
}

// ackLog collects the attempts and acknowledgements of concurrent
// writers.
type ackLog struct {
	mu    sync.Mutex
	tries []attempt
	acks  []ack
	grow  chan struct{}
}

func (l *ackLog) try(a attempt) {
	l.mu.Lock()
	l.tries = append(l.tries, a)
	l.mu.Unlock()
}

func (l *ackLog) attempts() []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]attempt(nil), l.tries...)
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
