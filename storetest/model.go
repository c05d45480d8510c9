package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/google/uuid"
)

// ModelOptions configure [RunModel].
type ModelOptions struct {
	// Seed chooses the sequence of operations.
	Seed uint64
	// Steps is the number of operations. Zero means 100.
	Steps int
	// Restart, when set, is called in place of some operations with the
	// store under test; it returns the store after a restart (closed and
	// opened again, or crashed and opened again). Everything acknowledged
	// before must still be there.
	Restart func(s *cairn.Store) *cairn.Store
	// CompactRemoves requires Compact to remove every event that was no
	// longer readable through its stream when it ran. Otherwise such
	// events may stay in the log (an engine's compaction may do nothing).
	CompactRemoves bool
	// NewID makes the events' IDs. Nil means uuid.New (random, version
	// 4). An engine that treats time-ordered IDs (version 7, the kind a
	// cairn.Store assigns) differently should run the model with those
	// too.
	NewID func() uuid.UUID
}

// RunModel runs a random sequence of operations against s and against the
// memory engine, which serves as the model: appends of tagged events to
// several streams, atomic batches, conditional appends (when s checks
// conditions), truncations, soft deletes, tombstones and compactions
// (those s supports), and restarts when opts.Restart is set. After every
// step it checks that both give the same answers: the same errors and
// condition outcomes, the same events (ids, types, data, metadata, tags,
// streams, versions, positions) from every stream, from the log and from a
// set of queries, forward and backward, and the same list of streams.
// After every restart, and at the end, it submits again every acknowledged
// append, batch and conditional append whose events are all still
// readable, with the same event IDs, expectations and conditions, as a
// client unsure of its append would: each must return its first result and
// write nothing, and the same events appended to another stream must be
// refused with [cairn.ErrDuplicateEvent]. It returns the store, which a
// restart may have replaced.
func RunModel(t *testing.T, s *cairn.Store, opts ModelOptions) *cairn.Store {
	t.Helper()
	if opts.Steps == 0 {
		opts.Steps = 100
	}
	if opts.NewID == nil {
		opts.NewID = uuid.New
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(opts.Seed, 99))
	model := cairn.NewStore(memstore.New(), cairn.Options{})
	defer model.Close()
	_, canTruncate := s.Backend().(cairn.Truncater)
	_, canTombstone := s.Backend().(cairn.Tombstoner)
	_, canCompact := s.Backend().(cairn.Compacter)
	_, canQuery := s.Backend().(cairn.Querier)
	_, canBatch := s.Backend().(cairn.BatchAppender)
	canCondition := canQuery && canBatch

	m := &modelRun{t: t, streams: []string{"a", "b", "c", "d", "e", "f"}, dead: map[uint64]bool{}, removes: opts.CompactRemoves}
	events := func() []cairn.EventData {
		out := make([]cairn.EventData, 1+rng.IntN(30))
		for i := range out {
			data := make([]byte, rng.IntN(400))
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			out[i] = cairn.EventData{ID: opts.NewID(), Type: fmt.Sprint("T", rng.IntN(3)), ContentType: cairn.ContentBinary, Data: data}
			for range rng.IntN(3) {
				out[i].Tags = append(out[i].Tags, fmt.Sprint("t", rng.IntN(5)))
			}
			if rng.IntN(4) == 0 {
				out[i].Metadata = []byte(`{"m":1}`)
			}
		}
		return out
	}
	var retry *conditional // the last conditional append, to repeat
	for step := range opts.Steps {
		m.step = step
		id := m.streams[rng.IntN(len(m.streams))]
		switch op := rng.IntN(24); {
		case op >= 20 && canCondition:
			c := &conditional{stream: id, events: events(), cond: m.randomCondition(rng, model)}
			if op == 23 && retry != nil {
				c = retry
			}
			m.conditional(s, model, c)
			retry = c
		case op < 10:
			ev := events()
			res, errS := s.Append(ctx, id, cairn.Any, ev...)
			_, errM := model.Append(ctx, id, cairn.Any, ev...)
			m.same("append to "+id, errS, errM)
			if errS == nil {
				m.acked = append(m.acked, write{reqs: []cairn.AppendRequest{{Stream: id, Expected: cairn.Any, Events: ev}}, results: []cairn.AppendResult{res}})
			}
		case op < 12:
			var reqs []cairn.AppendRequest
			for _, i := range rng.Perm(len(m.streams))[:2+rng.IntN(3)] {
				reqs = append(reqs, cairn.AppendRequest{Stream: m.streams[i], Expected: cairn.Any, Events: events()})
			}
			res, errS := s.AppendBatch(ctx, reqs...)
			_, errM := model.AppendBatch(ctx, reqs...)
			m.same("batch", errS, errM)
			if errS == nil {
				m.acked = append(m.acked, write{reqs: reqs, results: res, batch: true})
			}
		case op < 14 && canTruncate:
			v, err := model.StreamVersion(ctx, id)
			if err != nil {
				continue
			}
			before := rng.Int64N(v + 2)
			m.same(fmt.Sprintf("truncate %s before %d", id, before), s.TruncateStream(ctx, id, before), model.TruncateStream(ctx, id, before))
		case op < 15:
			m.same("delete "+id, s.DeleteStream(ctx, id, cairn.Any), model.DeleteStream(ctx, id, cairn.Any))
		case op < 16 && canTombstone && step > opts.Steps/2:
			m.same("tombstone "+id, s.TombstoneStream(ctx, id, cairn.Any), model.TombstoneStream(ctx, id, cairn.Any))
		case op < 18 && canCompact:
			m.same("compact", s.Compact(ctx), model.Compact(ctx))
			m.noteDead(model)
		case opts.Restart != nil:
			s = opts.Restart(s)
			m.compare(s, model)
			m.retry(s, model)
		}
		m.compare(s, model)
	}
	m.retry(s, model)
	m.compare(s, model)
	return s
}

// write is an acknowledged write of the run: an append, or a batch.
type write struct {
	reqs    []cairn.AppendRequest
	results []cairn.AppendResult
	batch   bool
}

// retry submits again each acknowledged write whose events the model still
// returns from their streams: the engine must recognise it, return its
// first results, and refuse the same events on another stream. The caller
// compares the store with the model afterwards: a retry written again
// shows there.
func (m *modelRun) retry(s, model *cairn.Store) {
	m.t.Helper()
	ctx := context.Background()
	for _, w := range m.acked {
		if !m.live(model, w) {
			continue
		}
		what := fmt.Sprintf("retry of the append to %s at version %d", w.reqs[0].Stream, w.results[0].Version)
		var res []cairn.AppendResult
		var err error
		if w.batch {
			what = "retry of the batch with " + what[len("retry of "):]
			res, err = s.AppendBatch(ctx, w.reqs...)
		} else {
			var r cairn.AppendResult
			r, err = s.Append(ctx, w.reqs[0].Stream, w.reqs[0].Expected, w.reqs[0].Events...)
			res = []cairn.AppendResult{r}
		}
		if err != nil || !slices.Equal(res, w.results) {
			m.t.Fatalf("step %d: %s = %+v, %v; want the first results %+v", m.step, what, res, err, w.results)
		}
		for _, r := range w.reqs {
			if _, err := s.Append(ctx, otherStream, cairn.Any, r.Events...); !errors.Is(err, cairn.ErrDuplicateEvent) {
				m.t.Fatalf("step %d: the events of the append to %s, appended to another stream: %v, want ErrDuplicateEvent", m.step, r.Stream, err)
			}
		}
	}
}

// otherStream is the stream retry appends recorded events to, which must
// be refused. The run writes nothing else to it.
const otherStream = "other"

// live reports whether the model returns every event of w from its stream,
// at the versions w was acknowledged with.
func (m *modelRun) live(model *cairn.Store, w write) bool {
	ctx := context.Background()
	for i, r := range w.reqs {
		first := w.results[i].Version - int64(len(r.Events)) + 1
		got, err := model.ReadStream(ctx, r.Stream, first, len(r.Events), cairn.Forward)
		if err != nil || len(got) != len(r.Events) {
			return false
		}
		for j, e := range got {
			if e.Version != first+int64(j) || e.ID != r.Events[j].ID {
				return false
			}
		}
	}
	return true
}

type modelRun struct {
	t       *testing.T
	step    int
	streams []string
	dead    map[uint64]bool // positions that were dead when a compaction ran
	removes bool
	acked   []write
}

// conditional is a conditional append of the model test.
type conditional struct {
	stream string
	events []cairn.EventData
	cond   cairn.AppendCondition
}

// modelQueries are the queries compared after every step.
var modelQueries = []cairn.Query{
	{},
	{Items: []cairn.QueryItem{{Tags: []string{"t0"}}}},
	{Items: []cairn.QueryItem{{Tags: []string{"t1", "t2"}}}},
	{Items: []cairn.QueryItem{{Types: []string{"T0"}}}},
	{Items: []cairn.QueryItem{{Types: []string{"T1", "T2"}, Tags: []string{"t3"}}}},
	{Items: []cairn.QueryItem{{Tags: []string{"t4"}}, {Types: []string{"T2"}}, {Types: []string{"T0"}, Tags: []string{"t1"}}}},
}

// randomCondition returns a condition on a random query, after a random
// position of the model's log (or none).
func (m *modelRun) randomCondition(rng *rand.Rand, model *cairn.Store) cairn.AppendCondition {
	var q cairn.Query
	for range 1 + rng.IntN(2) {
		var it cairn.QueryItem
		for range rng.IntN(2) {
			it.Types = append(it.Types, fmt.Sprint("T", rng.IntN(3)))
		}
		for range 1 + rng.IntN(2) {
			it.Tags = append(it.Tags, fmt.Sprint("t", rng.IntN(5)))
		}
		q.Items = append(q.Items, it)
	}
	c := cairn.AppendCondition{FailIfEventsMatch: q}
	if last, ok, err := model.LastPosition(context.Background()); err == nil && ok && rng.IntN(4) > 0 {
		a := last - min(last, uint64(rng.IntN(40)))
		c.After = &a
	}
	return c
}

// conditional appends c to the store and to the model and compares the
// outcomes. The model keeps the events a compaction may have removed from
// the store; when such an event is the only conflict, the store may accept
// the append that the model refuses, and the model is then brought level
// with an unconditional append.
func (m *modelRun) conditional(s, model *cairn.Store, c *conditional) {
	m.t.Helper()
	ctx := context.Background()
	from := uint64(0)
	if c.cond.After != nil {
		from = *c.cond.After + 1
	}
	matches, err := model.ReadQuery(ctx, c.cond.FailIfEventsMatch, from, math.MaxInt32, cairn.Forward)
	if err != nil {
		m.t.Fatal(err)
	}
	resM, errM := model.AppendIf(ctx, c.stream, cairn.Any, c.cond, c.events...)
	resS, errS := s.AppendIf(ctx, c.stream, cairn.Any, c.cond, c.events...)
	if errS == nil {
		cond := c.cond
		m.acked = append(m.acked, write{reqs: []cairn.AppendRequest{{Stream: c.stream, Expected: cairn.Any, Events: c.events, Condition: &cond}}, results: []cairn.AppendResult{resS}, batch: true})
	}
	what := fmt.Sprintf("conditional append to %s (%+v)", c.stream, c.cond.FailIfEventsMatch)
	var cm, cs *cairn.ConditionError
	if !errors.As(errM, &cm) || !m.dead[cm.Position] {
		m.same(what, errS, errM)
		if errS == nil && resS != resM {
			m.t.Fatalf("step %d, %s: store %+v, model %+v", m.step, what, resS, resM)
		}
		if cm != nil && (!errors.As(errS, &cs) || cs.Position != cm.Position) {
			m.t.Fatalf("step %d, %s: store %v, model %v", m.step, what, errS, errM)
		}
		return
	}
	// The model's first conflict is an event compaction may have removed:
	// the store reports a conflict that is dead or the first live one, or
	// accepts the append when every conflict is dead.
	var firstLive *uint64
	for _, e := range matches {
		if !m.dead[e.Position] {
			firstLive = &e.Position
			break
		}
	}
	switch {
	case errors.As(errS, &cs):
		ok := false
		for _, e := range matches {
			if e.Position == cs.Position {
				ok = m.dead[e.Position] || (firstLive != nil && *firstLive == e.Position)
			}
		}
		if !ok {
			m.t.Fatalf("step %d, %s: store reports a conflict at %d, model at %d (dead), first live %v", m.step, what, cs.Position, cm.Position, firstLive)
		}
	case errS == nil && firstLive == nil:
		res, err := model.Append(ctx, c.stream, cairn.Any, c.events...)
		if err != nil || res != resS {
			m.t.Fatalf("step %d, %s: store %+v, model brought level %+v, %v", m.step, what, resS, res, err)
		}
	default:
		m.t.Fatalf("step %d, %s: store %v, model %v (first live conflict %v)", m.step, what, errS, errM, firstLive)
	}
}

func (m *modelRun) same(what string, errS, errM error) {
	m.t.Helper()
	if (errS == nil) != (errM == nil) || (errS != nil && !sameError(errS, errM)) {
		m.t.Fatalf("step %d, %s: store %v, model %v", m.step, what, errS, errM)
	}
}

// sameError reports whether two errors say the same: the same sentinel of
// the root package, the same actual version, or the same invalid field.
func sameError(a, b error) bool {
	for _, e := range []error{cairn.ErrStreamNotFound, cairn.ErrStreamDeleted, cairn.ErrDuplicateEvent, cairn.ErrConditionFailed} {
		if errors.Is(a, e) && errors.Is(b, e) {
			return true
		}
	}
	var wa, wb *cairn.WrongExpectedVersionError
	if errors.As(a, &wa) && errors.As(b, &wb) {
		return wa.Actual == wb.Actual
	}
	var ia, ib *cairn.InvalidArgumentError
	return errors.As(a, &ia) && errors.As(b, &ib) && ia.Field == ib.Field
}

// noteDead records the events of the model's log that no stream read
// returns any more: those a compaction may remove.
func (m *modelRun) noteDead(model *cairn.Store) {
	ctx := context.Background()
	live := map[uint64]bool{}
	// The records of deletions are events of a live stream too.
	for _, id := range append(slices.Clone(m.streams), cairn.DeletionsStream) {
		for e, err := range model.Stream(ctx, id, 0, cairn.Forward) {
			if err != nil {
				break
			}
			live[e.Position] = true
		}
	}
	for e, err := range model.All(ctx, 0, cairn.Forward) {
		if err != nil {
			m.t.Fatal(err)
		}
		if !live[e.Position] {
			m.dead[e.Position] = true
		}
	}
}

func readAllOf(s *cairn.Store, stream string, dir cairn.Direction) ([]cairn.Event, error) {
	ctx := context.Background()
	var seq func(func(cairn.Event, error) bool)
	if stream == "" {
		from := uint64(0)
		if dir == cairn.Backward {
			from = math.MaxUint64
		}
		seq = s.All(ctx, from, dir)
	} else {
		from := int64(0)
		if dir == cairn.Backward {
			from = cairn.StreamEnd
		}
		seq = s.Stream(ctx, stream, from, dir)
	}
	var out []cairn.Event
	for e, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// compare checks that the store and the model hold the same log and
// streams.
func (m *modelRun) compare(s, model *cairn.Store) {
	m.t.Helper()
	for _, stream := range append([]string{""}, m.streams...) {
		for _, dir := range []cairn.Direction{cairn.Forward, cairn.Backward} {
			got, errS := readAllOf(s, stream, dir)
			want, errM := readAllOf(model, stream, dir)
			if (errS == nil) != (errM == nil) || (errS != nil && !sameError(errS, errM)) {
				m.t.Fatalf("step %d: read %q %v: store %v, model %v", m.step, stream, dir, errS, errM)
			}
			m.sameEvents(fmt.Sprintf("read %q %v", stream, dir), got, want)
		}
	}
	for i, q := range modelQueries {
		for _, dir := range []cairn.Direction{cairn.Forward, cairn.Backward} {
			from := uint64(0)
			if dir == cairn.Backward {
				from = cairn.LogEnd
			}
			got, errS := s.ReadQuery(context.Background(), q, from, math.MaxInt32, dir)
			want, errM := model.ReadQuery(context.Background(), q, from, math.MaxInt32, dir)
			m.same(fmt.Sprintf("query %d %v", i, dir), errS, errM)
			m.sameEvents(fmt.Sprintf("query %d (%+v) %v", i, q, dir), got, want)
		}
	}
	var gotStreams, wantStreams []string
	for id, err := range s.Streams(context.Background()) {
		if err != nil {
			m.t.Fatal(err)
		}
		gotStreams = append(gotStreams, id)
	}
	for id, err := range model.Streams(context.Background()) {
		if err != nil {
			m.t.Fatal(err)
		}
		wantStreams = append(wantStreams, id)
	}
	if !slices.Equal(gotStreams, wantStreams) {
		m.t.Fatalf("step %d: streams: store %v, model %v", m.step, gotStreams, wantStreams)
	}
}

// sameEvents checks that the store read got what the model read want,
// except for events compaction may have removed.
func (m *modelRun) sameEvents(what string, got, want []cairn.Event) {
	m.t.Helper()
	if m.removes {
		want = slices.DeleteFunc(want, func(e cairn.Event) bool { return m.dead[e.Position] })
	}
	i := 0
	for _, w := range want {
		if i < len(got) && got[i].Position == w.Position {
			m.sameEvent(what, got[i], w)
			i++
			continue
		}
		if !m.dead[w.Position] {
			m.t.Fatalf("step %d: %s: event %s@%d (position %d) missing", m.step, what, w.StreamID, w.Version, w.Position)
		}
	}
	if i < len(got) {
		e := got[i]
		m.t.Fatalf("step %d: %s: event %s@%d (position %d) is not in the model, or out of order", m.step, what, e.StreamID, e.Version, e.Position)
	}
}

func (m *modelRun) sameEvent(what string, g, w cairn.Event) {
	m.t.Helper()
	// The engines make the ids of deletion records: the model's differ.
	_, gd := cairn.ParseDeletion(&g)
	_, wd := cairn.ParseDeletion(&w)
	sameID := g.ID == w.ID || (gd && wd)
	if g.Position != w.Position || g.StreamID != w.StreamID || g.Version != w.Version || !sameID ||
		g.Type != w.Type || g.ContentType != w.ContentType || string(g.Data) != string(w.Data) || string(g.Metadata) != string(w.Metadata) ||
		!slices.Equal(g.Tags, w.Tags) {
		m.t.Fatalf("step %d: %s: store has %s@%d (position %d), model %s@%d (position %d), or their contents differ",
			m.step, what, g.StreamID, g.Version, g.Position, w.StreamID, w.Version, w.Position)
	}
}

// testModel runs RunModel against a fresh backend.
func testModel(t *testing.T, nb NewBackend) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			s, _ := open(t, nb)
			RunModel(t, s, ModelOptions{Seed: seed, Steps: 60})
		})
	}
}
