package cairn_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/google/uuid"
)

func TestExpectedVersionCheck(t *testing.T) {
	cases := []struct {
		e       cairn.ExpectedVersion
		current int64
		ok      bool
	}{
		{cairn.Any, -1, true}, {cairn.Any, 5, true},
		{cairn.NoStream, -1, true}, {cairn.NoStream, 0, false},
		{cairn.StreamExists, -1, false}, {cairn.StreamExists, 0, true},
		{cairn.Exact(3), 3, true}, {cairn.Exact(3), 2, false}, {cairn.Exact(0), -1, false},
		{cairn.Exact(-3), -3, false},
	}
	for _, c := range cases {
		err := c.e.Check("s", c.current)
		if (err == nil) != c.ok {
			t.Errorf("%v.Check(%d) = %v, want ok=%v", c.e, c.current, err, c.ok)
		}
	}
	var zero cairn.ExpectedVersion
	if zero != cairn.Any {
		t.Error("the zero ExpectedVersion is not Any")
	}
	for _, n := range []int64{-1, -2, -4, 0, 9} {
		e, err := cairn.ParseExpectedVersion(n)
		if err != nil || e.Int64() != n {
			t.Errorf("ParseExpectedVersion(%d) = %v (%d), %v", n, e, e.Int64(), err)
		}
	}
	if _, err := cairn.ParseExpectedVersion(-3); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Errorf("ParseExpectedVersion(-3): %v", err)
	}
}

func TestWrongExpectedVersionError(t *testing.T) {
	err := error(&cairn.WrongExpectedVersionError{Stream: "s", Expected: cairn.Exact(1), Actual: -1})
	if err.Error() != `append to "s": wrong expected version: expected 1, actual no stream` {
		t.Errorf("message %q", err)
	}
	wrapped := &cairn.BatchError{Errs: []error{nil, err}}
	var wev *cairn.WrongExpectedVersionError
	if !errors.Is(wrapped, cairn.ErrWrongExpectedVersion) || !errors.As(wrapped, &wev) || wev.Actual != -1 {
		t.Errorf("BatchError does not expose its outcome: %v", wrapped)
	}
}

// serialOnly hides every optional capability of the engine under it.
type serialOnly struct{ cairn.Backend }

func TestAppendBatchFallbackIsSerial(t *testing.T) {
	ctx := context.Background()
	s := cairn.NewStore(serialOnly{memstore.New()}, cairn.Options{})
	results, err := s.AppendBatch(ctx,
		cairn.AppendRequest{Stream: "a", Expected: cairn.NoStream, Events: []cairn.EventData{{Type: "E"}}},
		cairn.AppendRequest{Stream: "b", Expected: cairn.Exact(4), Events: []cairn.EventData{{Type: "E"}}},
		cairn.AppendRequest{Stream: "c", Expected: cairn.NoStream, Events: []cairn.EventData{{Type: "E"}}},
	)
	// Not atomic: the first request was written, the second failed, the
	// third was not attempted.
	var be *cairn.BatchError
	if !errors.As(err, &be) || be.Errs[1] == nil || !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("AppendBatch: %v", err)
	}
	if len(results) != 1 || results[0].Version != 0 {
		t.Fatalf("results of the written requests = %+v", results)
	}
	if ok, _ := s.StreamExists(ctx, "a"); !ok {
		t.Fatal("the request before the failure was not written")
	}
	if ok, _ := s.StreamExists(ctx, "c"); ok {
		t.Fatal("the request after the failure was written")
	}
}

func TestOptionalCapabilitiesMissing(t *testing.T) {
	ctx := context.Background()
	s := cairn.NewStore(serialOnly{memstore.New()}, cairn.Options{})
	noop := func(context.Context, cairn.Tx, []cairn.Event) error { return nil }
	checks := map[string]error{
		"tombstone": s.TombstoneStream(ctx, "s", cairn.Any),
		"truncate":  s.TruncateStream(ctx, "s", 1),
		"snapshot":  s.CommitSnapshot(ctx, cairn.Snapshot{StreamID: "s"}),
	}
	_, checks["commit"] = s.CommitAll(ctx, cairn.AppendRequest{Stream: "s", Events: []cairn.EventData{{Type: "E"}}}, noop)
	_, _, checks["get snapshot"] = s.GetSnapshot(ctx, "s", 0, 1)
	_, checks["disk bytes"] = s.DiskBytes(ctx)
	_, _, checks["read model"] = s.ReadModelGet(ctx, "t", "k")
	for op, err := range checks {
		if !errors.Is(err, cairn.ErrNotSupported) {
			t.Errorf("%s without the capability: %v, want ErrNotSupported", op, err)
		}
	}
	if has, _ := s.HasEvents(ctx); has {
		t.Error("an unsupported commit wrote events")
	}
	if err := s.Compact(ctx); err != nil {
		t.Errorf("Compact without the capability: %v, want nil", err)
	}
	if err := s.Health(ctx); err != nil {
		t.Errorf("Health without the capability: %v, want nil", err)
	}
}

func TestHooks(t *testing.T) {
	var events, bytes int
	var failures []string
	s := cairn.NewStore(memstore.New(), cairn.Options{Hooks: cairn.Hooks{
		Appended: func(stream string, n, b int) { events += n; bytes += b },
		Failed:   func(op string, err error) { failures = append(failures, op) },
	}})
	ctx := context.Background()
	s.Append(ctx, "s", cairn.NoStream, cairn.EventData{Type: "E", Data: []byte("abc"), Metadata: []byte("de")})
	s.Append(ctx, "s", cairn.NoStream, cairn.EventData{Type: "E"}) // a conflict is not a failure
	s.Close()
	s.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "E"})
	if events != 1 || bytes != 5 {
		t.Errorf("Appended saw %d events, %d bytes; want 1, 5", events, bytes)
	}
	if len(failures) != 1 || failures[0] != "append" {
		t.Errorf("Failed saw %v, want one append after Close", failures)
	}
}

func TestSystemViewWritesSystemStreams(t *testing.T) {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	ev := cairn.EventData{Type: "UserCreated", Data: []byte(`{}`)}

	if _, err := store.Append(ctx, "$users", cairn.NoStream, ev); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Fatalf("Store.Append to $users: got %v, want an invalid-argument error", err)
	}
	sys := store.System()
	changed := store.Changes()
	res, err := sys.Append(ctx, "$users", cairn.NoStream, ev)
	if err != nil {
		t.Fatalf("System().Append to $users: %v", err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("an append through the system view did not signal the Store's subscribers")
	}
	got, err := store.ReadStream(ctx, "$users", 0, 10, cairn.Forward)
	if err != nil || len(got) != 1 || got[0].Position != res.Position {
		t.Fatalf("read back $users: %v, %v", got, err)
	}
	if _, err := sys.Append(ctx, cairn.AllStream, cairn.Any, ev); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Fatalf("System().Append to $all: got %v, want an invalid-argument error", err)
	}
	if err := sys.DeleteStream(ctx, "$users", cairn.Any); err != nil {
		t.Fatalf("System().DeleteStream($users): %v", err)
	}
	if err := store.DeleteStream(ctx, "$users", cairn.Any); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Fatalf("Store.DeleteStream($users): got %v, want an invalid-argument error", err)
	}
}

// ValidateTable is the one rule for read-model table names, and the Store
// reads tables by it.
func TestValidateTable(t *testing.T) {
	long := strings.Repeat("t", cairn.MaxTableBytes+1)
	s := memstore.Open()
	defer s.Close()
	for _, table := range []string{"", "a\x00b", "a\tb", "a\x7f", "a\u0085b", "a\xffb", long} {
		err := cairn.ValidateTable(table)
		var iae *cairn.InvalidArgumentError
		if !errors.As(err, &iae) || iae.Field != "table" || !errors.Is(err, cairn.ErrInvalidArgument) {
			t.Errorf("ValidateTable(%q) = %v, want an InvalidArgumentError for \"table\"", table, err)
		}
		if _, _, err := s.ReadModelGet(context.Background(), table, "k"); !errors.Is(err, cairn.ErrInvalidArgument) {
			t.Errorf("ReadModelGet(%q) = %v, want ErrInvalidArgument", table, err)
		}
	}
	for _, table := range []string{"balances", "café/by day", "$system", strings.Repeat("t", cairn.MaxTableBytes)} {
		if err := cairn.ValidateTable(table); err != nil {
			t.Errorf("ValidateTable(%q) = %v, want nil", table, err)
		}
	}
}

// noQuerier hides the memory engine's Querier: it appends in batches and
// commits with projections, but cannot check conditions.
type noQuerier struct {
	cairn.Backend
	cairn.BatchAppender
	cairn.TxCommitter
}

// An engine that cannot check a condition atomically must never see one:
// the Store refuses it rather than write unconditionally.
func TestConditionRefusedWithoutQuerier(t *testing.T) {
	ctx := context.Background()
	b := memstore.New()
	store := cairn.NewStore(noQuerier{b, b, b}, cairn.Options{})
	defer store.Close()
	cond := &cairn.AppendCondition{FailIfEventsMatch: cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"course:1"}}}}}
	ev := cairn.EventData{Type: "Subscribed", Tags: []string{"course:1"}}
	if _, err := store.AppendBatch(ctx, cairn.AppendRequest{Stream: "s-1", Expected: cairn.Any, Events: []cairn.EventData{ev}, Condition: cond}); !errors.Is(err, cairn.ErrNotSupported) {
		t.Fatalf("AppendBatch with a condition: got %v, want ErrNotSupported", err)
	}
	if _, err := store.CommitAll(ctx, cairn.AppendRequest{Stream: "s-1", Expected: cairn.Any, Events: []cairn.EventData{ev}, Condition: cond}); !errors.Is(err, cairn.ErrNotSupported) {
		t.Fatalf("CommitAll with a condition: got %v, want ErrNotSupported", err)
	}
	if _, err := store.AppendIf(ctx, "s-1", cairn.Any, *cond, ev); !errors.Is(err, cairn.ErrNotSupported) {
		t.Fatalf("AppendIf: got %v, want ErrNotSupported", err)
	}
	if ok, err := store.HasEvents(ctx); err != nil || ok {
		t.Fatalf("a refused conditional append wrote events (HasEvents %v, %v)", ok, err)
	}
	bad := &cairn.AppendCondition{FailIfEventsMatch: cairn.Query{Items: []cairn.QueryItem{{Tags: []string{""}}}}}
	if _, err := store.AppendBatch(ctx, cairn.AppendRequest{Stream: "s-1", Expected: cairn.Any, Events: []cairn.EventData{ev}, Condition: bad}); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Fatalf("AppendBatch with an empty tag in its condition: got %v, want an invalid-argument error", err)
	}
}

func TestIndexKeys(t *testing.T) {
	cases := []struct {
		stream  string
		version int64
		e       cairn.EventData
		want    []cairn.IndexKey
	}{
		{"order-1", 0, cairn.EventData{Type: "Placed", Tags: []string{"a", "b", "a"}}, []cairn.IndexKey{
			{Kind: cairn.IndexTag, Value: "a"}, {Kind: cairn.IndexTag, Value: "b"},
			{Kind: cairn.IndexType, Value: "Placed"}, {Kind: cairn.IndexCategory, Value: "order"},
			{Kind: cairn.IndexStreams}, {Kind: cairn.IndexCategoryStreams, Value: "order"}}},
		{"order-1-x", 3, cairn.EventData{Type: "Paid", Metadata: []byte(`{"$correlationId":"c-9"}`)}, []cairn.IndexKey{
			{Kind: cairn.IndexType, Value: "Paid"}, {Kind: cairn.IndexCategory, Value: "order"},
			{Kind: cairn.IndexCorrelation, Value: "c-9"}}},
		{"nocategory", 0, cairn.EventData{Type: "T", Metadata: []byte(`{"$correlationId":7}`)}, []cairn.IndexKey{
			{Kind: cairn.IndexType, Value: "T"}, {Kind: cairn.IndexStreams}}},
		{"$users", 0, cairn.EventData{Type: "UserCreated", Tags: []string{"u"}}, []cairn.IndexKey{
			{Kind: cairn.IndexTag, Value: "u"}}},
	}
	for _, c := range cases {
		got := cairn.IndexKeys(nil, c.stream, c.version, &c.e)
		if !slices.Equal(got, c.want) {
			t.Errorf("IndexKeys(%q, %d, %+v) = %v, want %v", c.stream, c.version, c.e, got, c.want)
		}
	}
}

func TestQueryMatches(t *testing.T) {
	e := &cairn.Event{EventData: cairn.EventData{Type: "Subscribed", Tags: []string{"student:1", "course:2"}}, StreamID: "course-2"}
	cases := []struct {
		q    cairn.Query
		want bool
	}{
		{cairn.Query{}, true},
		{cairn.Query{Items: []cairn.QueryItem{{}}}, true},
		{cairn.Query{Items: []cairn.QueryItem{{Types: []string{"Left", "Subscribed"}}}}, true},
		{cairn.Query{Items: []cairn.QueryItem{{Types: []string{"Left"}}}}, false},
		{cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"student:1", "course:2"}}}}, true},
		{cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"student:1", "course:3"}}}}, false},
		{cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"course:3"}}, {Types: []string{"Subscribed"}, Tags: []string{"course:2"}}}}, true},
		{cairn.Query{Items: []cairn.QueryItem{{Types: []string{"Left"}, Tags: []string{"course:2"}}}}, false},
	}
	for _, c := range cases {
		if got := c.q.Matches(e); got != c.want {
			t.Errorf("%+v.Matches = %v, want %v", c.q, got, c.want)
		}
	}
	// The index files the events of system streams under their tags only:
	// an item with types never matches them.
	sys := &cairn.Event{EventData: e.EventData, StreamID: "$courses"}
	for _, c := range []struct {
		q    cairn.Query
		want bool
	}{
		{cairn.Query{}, true},
		{cairn.Query{Items: []cairn.QueryItem{{}}}, true},
		{cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"course:2"}}}}, true},
		{cairn.Query{Items: []cairn.QueryItem{{Types: []string{"Subscribed"}}}}, false},
		{cairn.Query{Items: []cairn.QueryItem{{Types: []string{"Subscribed"}, Tags: []string{"course:2"}}}}, false},
	} {
		if got := c.q.Matches(sys); got != c.want {
			t.Errorf("%+v.Matches(an event of a system stream) = %v, want %v", c.q, got, c.want)
		}
	}
}

// Begin sees each append and read that reaches the engine, with its
// outcome; input the Store refuses begins nothing.
func TestHooksBegin(t *testing.T) {
	type seen struct {
		op      cairn.Operation
		outcome cairn.Outcome
	}
	var log []seen
	s := cairn.NewStore(memstore.New(), cairn.Options{ReadBatch: 2, Hooks: cairn.Hooks{
		Begin: func(ctx context.Context, op cairn.Operation) (context.Context, func(cairn.Outcome)) {
			i := len(log)
			log = append(log, seen{op: op})
			return ctx, func(o cairn.Outcome) { log[i].outcome = o }
		},
	}})
	defer s.Close()
	ctx := context.Background()
	ev := cairn.EventData{Type: "E", Metadata: []byte(`{"$traceId":"x"}`)}
	if _, err := s.Append(ctx, "a", cairn.NoStream, ev, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "a", cairn.NoStream, ev); !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("conflicting append: %v", err)
	}
	if _, err := s.Append(ctx, "", cairn.Any, ev); err == nil {
		t.Fatal("an append to an empty stream id succeeded")
	}
	if _, err := s.AppendBatch(ctx, cairn.AppendRequest{Stream: "b", Expected: cairn.Any, Events: []cairn.EventData{ev}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadStream(ctx, "a", 0, 10, cairn.Forward); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadAll(ctx, 0, 10, cairn.Forward); err != nil {
		t.Fatal(err)
	}
	for _, err := range s.Stream(ctx, "a", 0, cairn.Forward) {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []seen{
		{cairn.Operation{Name: cairn.OpAppend, Stream: "a"}, cairn.Outcome{Events: 2, Position: 1}},
		{cairn.Operation{Name: cairn.OpAppend, Stream: "a"}, cairn.Outcome{}},
		{cairn.Operation{Name: cairn.OpAppendBatch}, cairn.Outcome{Events: 1, Position: 2}},
		{cairn.Operation{Name: cairn.OpReadStream, Stream: "a"}, cairn.Outcome{Events: 2, Position: 1}},
		{cairn.Operation{Name: cairn.OpReadAll}, cairn.Outcome{Events: 3, Position: 2}},
		// Stream reads pages of ReadBatch events: a full one, then an empty one.
		{cairn.Operation{Name: cairn.OpReadStream, Stream: "a"}, cairn.Outcome{Events: 2, Position: 1}},
		{cairn.Operation{Name: cairn.OpReadStream, Stream: "a"}, cairn.Outcome{}},
	}
	if len(log) != len(want) {
		t.Fatalf("Begin saw %d operations, want %d: %+v", len(log), len(want), log)
	}
	for i, w := range want {
		g := log[i]
		if g.op.Name != w.op.Name || g.op.Stream != w.op.Stream {
			t.Errorf("operation %d: %q on %q, want %q on %q", i, g.op.Name, g.op.Stream, w.op.Name, w.op.Stream)
		}
		if g.outcome.Events != w.outcome.Events || g.outcome.Position != w.outcome.Position {
			t.Errorf("operation %d (%s): outcome %+v, want %+v", i, g.op.Name, g.outcome, w.outcome)
		}
	}
	if n := len(log[0].op.Events); n != 2 || log[0].op.Events[0].ID == uuid.Nil || string(log[0].op.Events[0].Metadata) != `{"$traceId":"x"}` {
		t.Errorf("the append's operation carries %d events (%+v), want both, with their IDs and metadata", n, log[0].op.Events)
	}
	if !errors.Is(log[1].outcome.Err, cairn.ErrWrongExpectedVersion) {
		t.Errorf("the conflicting append ended with %v, want its error", log[1].outcome.Err)
	}
	if len(log[2].op.Batch) != 1 || log[2].op.Batch[0].Stream != "b" {
		t.Errorf("the batch's operation carries %+v, want its request", log[2].op.Batch)
	}
}

// A large append's events are copied into a buffer the Store reuses once
// the engine answered: appends that follow, large or not, leave the events
// written before as they were, and the caller's events are never changed.
func TestLargeAppendsLeaveWrittenEventsAlone(t *testing.T) {
	ctx := context.Background()
	s := memstore.Open()
	defer s.Close()
	const n = 1000
	events := make([]cairn.EventData, n)
	for i := range events {
		events[i] = cairn.EventData{Type: "T", Data: []byte{byte(i), byte(i >> 8)}}
	}
	var ids []uuid.UUID
	for round := range 4 {
		if _, err := s.Append(ctx, "big", cairn.Any, events...); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, "small", cairn.Any, events[:3]...); err != nil {
			t.Fatal(err)
		}
		for i, e := range events {
			if e.ID != uuid.Nil {
				t.Fatalf("round %d: the caller's event %d got id %v", round, i, e.ID)
			}
		}
		got, err := s.ReadStream(ctx, "big", 0, 10*n, cairn.Forward)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != (round+1)*n {
			t.Fatalf("round %d: %d events, want %d", round, len(got), (round+1)*n)
		}
		ids = ids[:0]
		for i, e := range got {
			if e.Type != "T" || e.Data[0] != byte(i%n) || e.Data[1] != byte(i%n>>8) || e.Version != int64(i) || e.ID == uuid.Nil {
				t.Fatalf("round %d: event %d is %+v", round, i, e.EventData)
			}
			ids = append(ids, e.ID)
		}
		slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
		if len(slices.Compact(ids)) != len(got) {
			t.Fatalf("round %d: two events of one id", round)
		}
	}
}
