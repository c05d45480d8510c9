package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// guard is the longest any wait in these tests may take before the test
// fails instead of hanging. It is not a performance bound.
const guard = 2 * time.Minute

// TestGaplessFollower races many writers, on different streams and through
// two engines (two connection pools, as two processes would have), against a
// follower reading the global log through a third. The follower must see
// every position exactly once and in order, never skipping an event whose
// transaction committed late, and must never have to wait out a gap: it
// only waits when it has read everything visible.
func TestGaplessFollower(t *testing.T) {
	schema := pgtest.Schema(t, "cairn_test")
	writersA := cairn.NewStore(openSchema(t, schema, pgstore.Options{MaxConns: 8}), cairn.Options{})
	writersB := cairn.NewStore(openSchema(t, schema, pgstore.Options{MaxConns: 8}), cairn.Options{})
	follower := cairn.NewStore(openSchema(t, schema, pgstore.Options{}), cairn.Options{ReadBatch: 7})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()

	const writers, appends = 16, 25
	var (
		mu      sync.Mutex
		written = map[uuid.UUID]bool{}
		total   int
		wg      sync.WaitGroup
	)
	for w := range writers {
		store := writersA
		if w%2 == 1 {
			store = writersB
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range appends {
				n := 1 + (w+i)%3
				events := make([]cairn.EventData, n)
				for k := range events {
					events[k] = cairn.EventData{ID: uuid.New(), Type: "E", Data: fmt.Appendf(nil, `{"w":%d,"i":%d}`, w, i)}
				}
				// Half the writers use exact versions, half Any.
				expected := cairn.Any
				if w%4 < 2 && i > 0 {
					v, err := store.StreamVersion(ctx, fmt.Sprintf("writer-%d", w))
					if err != nil {
						t.Error(err)
						return
					}
					expected = cairn.Exact(v)
				}
				if _, err := store.Append(ctx, fmt.Sprintf("writer-%d", w), expected, events...); err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
					return
				}
				mu.Lock()
				for _, e := range events {
					written[e.ID] = true
				}
				total += n
				mu.Unlock()
			}
		}()
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()

	seen := map[uuid.UUID]bool{}
	streamVersions := map[string]int64{}
	var next uint64
	done := false
	for !done {
		changed := follower.Changes()
		select {
		case <-writing:
			done = true // read once more after the last commit, then stop
		default:
		}
		for e, err := range follower.All(ctx, next, cairn.Forward) {
			if err != nil {
				t.Fatalf("follower at %d: %v", next, err)
			}
			if e.Position != next {
				t.Fatalf("follower expected position %d, got %d (stream %s version %d)", next, e.Position, e.StreamID, e.Version)
			}
			if seen[e.ID] {
				t.Fatalf("event %s seen twice", e.ID)
			}
			seen[e.ID] = true
			if want := streamVersions[e.StreamID]; e.Version != want {
				t.Fatalf("stream %s: version %d at position %d, want %d", e.StreamID, e.Version, e.Position, want)
			}
			streamVersions[e.StreamID]++
			next++
		}
		if !done {
			select {
			case <-changed:
			case <-writing:
			case <-ctx.Done():
				t.Fatalf("follower stuck at position %d: %v", next, ctx.Err())
			}
		}
	}
	if t.Failed() {
		return
	}
	if int(next) != total || len(seen) != len(written) {
		t.Fatalf("follower saw %d events, writers wrote %d", next, total)
	}
	for id := range written {
		if !seen[id] {
			t.Fatalf("event %s was written but not seen", id)
		}
	}
}

// TestConflictIsTyped checks that a failed expectation is the typed error
// with the actual version, under concurrency too, and never a raw SQL error.
func TestConflictIsTyped(t *testing.T) {
	s := cairn.NewStore(newStore(t), cairn.Options{})
	ctx := context.Background()
	if _, err := s.Append(ctx, "order-1", cairn.NoStream, cairn.EventData{Type: "A"}, cairn.EventData{Type: "B"}, cairn.EventData{Type: "C"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append(ctx, "order-1", cairn.Exact(7), cairn.EventData{Type: "D"})
	var wev *cairn.WrongExpectedVersionError
	if !errors.As(err, &wev) || wev.Actual != 2 || wev.Stream != "order-1" || !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("append at version 7 of a stream at 2: %v, want WrongExpectedVersionError with actual 2", err)
	}
	_, err = s.AppendBatch(ctx,
		cairn.AppendRequest{Stream: "order-2", Expected: cairn.NoStream, Events: []cairn.EventData{{Type: "A"}}},
		cairn.AppendRequest{Stream: "order-1", Expected: cairn.NoStream, Events: []cairn.EventData{{Type: "A"}}})
	var be *cairn.BatchError
	if !errors.As(err, &be) || be.Errs[0] != nil || !errors.As(be.Errs[1], &wev) || wev.Actual != 2 {
		t.Fatalf("batch with a failing second request: %v", err)
	}
	if ok, _ := s.StreamExists(ctx, "order-2"); ok {
		t.Fatal("a failed batch wrote its first request")
	}

	// Many writers race exact appends to one stream: every failure is the
	// typed error, and the stream ends with one event per success.
	const writers, tries = 8, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tries {
				v, err := s.StreamVersion(ctx, "hot")
				if errors.Is(err, cairn.ErrStreamNotFound) {
					v = -1
				} else if err != nil {
					t.Error(err)
					return
				}
				exp := cairn.Exact(v)
				if v < 0 {
					exp = cairn.NoStream
				}
				_, err = s.Append(ctx, "hot", exp, cairn.EventData{Type: "E"})
				var wev *cairn.WrongExpectedVersionError
				switch {
				case err == nil:
					mu.Lock()
					wins++
					mu.Unlock()
				case errors.As(err, &wev):
					if wev.Actual <= v && !(v < 0 && wev.Actual >= 0) {
						t.Errorf("conflict at expected %d reports actual %d", v, wev.Actual)
					}
				default:
					t.Errorf("append: %v, want nil or WrongExpectedVersionError", err)
				}
			}
		}()
	}
	wg.Wait()
	if v, err := s.StreamVersion(ctx, "hot"); err != nil || v != int64(wins-1) {
		t.Fatalf("stream version %d, %v after %d successful appends", v, err, wins)
	}
}

// TestConcurrentOpen starts several engines on a new schema at once: the
// migrations run once, and all of them work.
func TestConcurrentOpen(t *testing.T) {
	schema := pgtest.Schema(t, "cairn_test")
	const n = 4
	stores := make([]*pgstore.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = pgstore.Open(context.Background(), pgtest.URL(t), pgstore.Options{Schema: schema})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	ctx := context.Background()
	var applied, highest int
	if err := stores[0].Pool().QueryRow(ctx, "SELECT count(*), max(version) FROM "+pgx.Identifier{schema, "migrations"}.Sanitize()).Scan(&applied, &highest); err != nil {
		t.Fatal(err)
	}
	if applied != highest || applied < 1 {
		t.Fatalf("%d migrations recorded, up to version %d: want each once", applied, highest)
	}
	a := cairn.NewStore(stores[1], cairn.Options{})
	b := cairn.NewStore(stores[3], cairn.Options{})
	if _, err := a.Append(ctx, "s", cairn.NoStream, cairn.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	if v, err := b.StreamVersion(ctx, "s"); err != nil || v != 0 {
		t.Fatalf("version through another engine = %d, %v", v, err)
	}
	// Opening again is a no-op.
	again := openSchema(t, schema, pgstore.Options{})
	if err := again.Health(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCrossProcessNotification: an append through one engine wakes Changes
// of a Store over another engine on the same schema.
func TestCrossProcessNotification(t *testing.T) {
	schema := pgtest.Schema(t, "cairn_test")
	writer := cairn.NewStore(openSchema(t, schema, pgstore.Options{}), cairn.Options{})
	reader := cairn.NewStore(openSchema(t, schema, pgstore.Options{}), cairn.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	changed := reader.Changes()
	res, err := writer.Append(ctx, "s", cairn.NoStream, cairn.EventData{Type: "E"}, cairn.EventData{Type: "E"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("the other Store's Changes did not fire")
	}
	// The notification may be the listener's first report of the head;
	// wait until the head covers the append.
	for {
		changed := reader.Changes()
		if head, ok := reader.Head(); ok && head >= res.Position {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("the other Store's head never reached the append")
		}
	}
	events, err := reader.ReadAll(ctx, 0, 10, cairn.Forward)
	if err != nil || len(events) != 2 {
		t.Fatalf("ReadAll after the notification = %d events, %v", len(events), err)
	}
}

// TestNotifyAfterReconnect kills the listener's connection: the engine
// reconnects and reports the current head, so a subscriber catches up on
// whatever committed while it was deaf.
func TestNotifyAfterReconnect(t *testing.T) {
	schema := pgtest.Schema(t, "cairn_test")
	engine := openSchema(t, schema, pgstore.Options{})
	writer := cairn.NewStore(openSchema(t, schema, pgstore.Options{}), cairn.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()

	heads := make(chan uint64, 100)
	stop := engine.Notify(func(head uint64) {
		select {
		case heads <- head:
		default:
		}
	})
	defer stop()
	res, err := writer.Append(ctx, "s", cairn.NoStream, cairn.EventData{Type: "E"})
	if err != nil {
		t.Fatal(err)
	}
	waitHead(t, ctx, heads, res.Position)

	// Kill the listener, then append while it reconnects.
	var killed int
	err = engine.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		"cairn:"+schema+":listen").Scan(&killed)
	if err != nil || killed < 1 {
		t.Fatalf("terminated %d listeners, %v", killed, err)
	}
	res, err = writer.Append(ctx, "s", cairn.Exact(0), cairn.EventData{Type: "E"})
	if err != nil {
		t.Fatal(err)
	}
	waitHead(t, ctx, heads, res.Position)

	// With nothing new committed, a reconnect still reports the head.
	drain(heads)
	if err := engine.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		"cairn:"+schema+":listen").Scan(&killed); err != nil || killed < 1 {
		t.Fatalf("terminated %d listeners, %v", killed, err)
	}
	waitHead(t, ctx, heads, res.Position)
}

func waitHead(t *testing.T, ctx context.Context, heads <-chan uint64, want uint64) {
	t.Helper()
	for {
		select {
		case h := <-heads:
			if h >= want {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no report of head %d", want)
		}
	}
}

func drain(c <-chan uint64) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// TestProjectionSQLTx: a projection writes its own table through the SQL
// transaction of the commit, next to the read model; when a projection
// fails, neither the events nor any of the writes are kept.
func TestProjectionSQLTx(t *testing.T) {
	engine := newStore(t)
	s := cairn.NewStore(engine, cairn.Options{})
	ctx := context.Background()
	table := pgx.Identifier{engine.Schema(), "order_totals"}.Sanitize()
	if _, err := engine.Pool().Exec(ctx, "CREATE TABLE "+table+" (stream text PRIMARY KEY, events int, last_position bigint)"); err != nil {
		t.Fatal(err)
	}
	totals := func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
		sqlTx, ok := pgstore.SQLTx(tx)
		if !ok {
			return errors.New("not a pgstore transaction")
		}
		last := events[len(events)-1]
		_, err := sqlTx.Exec(ctx, "INSERT INTO "+table+" VALUES ($1, $2, $3) ON CONFLICT (stream) DO UPDATE SET events = "+
			table+".events + excluded.events, last_position = excluded.last_position", last.StreamID, len(events), int64(last.Position))
		if err != nil {
			return err
		}
		return tx.Put(ctx, "versions", last.StreamID, fmt.Append(nil, last.Version))
	}
	res, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "o-1", Expected: cairn.NoStream,
		Events: []cairn.EventData{{Type: "Placed"}, {Type: "Paid"}}}, totals)
	if err != nil {
		t.Fatal(err)
	}
	check := func(wantEvents int, wantPos uint64, wantVersion string) {
		t.Helper()
		var n int
		var pos int64
		if err := engine.Pool().QueryRow(ctx, "SELECT events, last_position FROM "+table+" WHERE stream = 'o-1'").Scan(&n, &pos); err != nil {
			t.Fatal(err)
		}
		v, ok, err := s.ReadModelGet(ctx, "versions", "o-1")
		if n != wantEvents || uint64(pos) != wantPos || !ok || err != nil || string(v) != wantVersion {
			t.Fatalf("projection rows: %d events, last position %d, version %q %v %v; want %d, %d, %q",
				n, pos, v, ok, err, wantEvents, wantPos, wantVersion)
		}
	}
	check(2, res.Position, "1")

	boom := errors.New("boom")
	_, err = s.CommitAll(ctx, cairn.AppendRequest{Stream: "o-1", Expected: cairn.Exact(1),
		Events: []cairn.EventData{{Type: "Shipped"}}}, totals, func(context.Context, cairn.Tx, []cairn.Event) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("CommitAll with a failing projection: %v, want boom", err)
	}
	check(2, res.Position, "1")
	if v, err := s.StreamVersion(ctx, "o-1"); err != nil || v != 1 {
		t.Fatalf("stream version after the failed commit = %d, %v; want 1", v, err)
	}
	if _, ok := pgstore.SQLTx(nil); ok {
		t.Fatal("SQLTx(nil) reported a transaction")
	}
}

// TestRetryAfterLostConnection kills the pool's connections between appends:
// the next append succeeds on a new connection, and repeating an append
// (as a client does when it lost the answer) writes nothing twice.
func TestRetryAfterLostConnection(t *testing.T) {
	engine := newStore(t)
	s := cairn.NewStore(engine, cairn.Options{})
	ctx := context.Background()
	events := []cairn.EventData{{ID: uuid.New(), Type: "A"}, {ID: uuid.New(), Type: "B"}}
	first, err := s.Append(ctx, "s", cairn.NoStream, events...)
	if err != nil {
		t.Fatal(err)
	}
	// Kill every idle connection of the pool, from outside it.
	conn, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, "cairn:"+engine.Schema()); err != nil {
		t.Fatal(err)
	}
	again, err := s.Append(ctx, "s", cairn.NoStream, events...)
	if err != nil || again != first {
		t.Fatalf("repeated append after the connections died = %+v, %v; want %+v", again, err, first)
	}
	next, err := s.Append(ctx, "s", cairn.Exact(1), cairn.EventData{Type: "C"})
	if err != nil || next.Version != 2 || next.Position != 2 {
		t.Fatalf("next append = %+v, %v", next, err)
	}
	log, err := s.ReadAll(ctx, 0, 10, cairn.Forward)
	if err != nil || len(log) != 3 {
		t.Fatalf("log has %d events, %v; want 3", len(log), err)
	}
}

// TestOpenErrors: bad options are reported before anything is created.
func TestOpenErrors(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	for _, schema := range []string{"1abc", "a-b", "a b", `x"y`, "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijk"} {
		if _, err := pgstore.Open(ctx, url, pgstore.Options{Schema: schema}); err == nil {
			t.Errorf("Open with schema %q succeeded", schema)
		}
	}
	if _, err := pgstore.Open(ctx, "postgres://cairn@127.0.0.1:1/nope?connect_timeout=1", pgstore.Options{}); err == nil {
		t.Error("Open of an unreachable server succeeded")
	}
	// The schema can come from the URL.
	schema := pgtest.Schema(t, "cairn_test")
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	s, err := pgstore.Open(ctx, url+sep+"schema="+schema, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Schema() != schema {
		t.Fatalf("schema %q, want %q from the URL", s.Schema(), schema)
	}
}

// TestDuplicateFirstIDRace races two appends that share their first event
// id, to two streams, through one engine (the same group) and through two
// (two transactions): one is written, the other is reported as a duplicate,
// never as a raw SQL error, and the event is recorded once.
func TestDuplicateFirstIDRace(t *testing.T) {
	schema := pgtest.Schema(t, "cairn_test")
	s := cairn.NewStore(openSchema(t, schema, pgstore.Options{}), cairn.Options{})
	other := cairn.NewStore(openSchema(t, schema, pgstore.Options{}), cairn.Options{})
	ctx := context.Background()
	const rounds = 20
	for i := range rounds {
		id := uuid.New()
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for k := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				store := s
				if k == 1 && i%2 == 1 {
					store = other
				}
				_, errs[k] = store.Append(ctx, fmt.Sprintf("s%d-%d", i, k), cairn.Any, cairn.EventData{ID: id, Type: "E"})
			}()
		}
		wg.Wait()
		ok, dup := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, cairn.ErrDuplicateEvent):
				dup++
			default:
				t.Fatalf("round %d: %v, want nil or ErrDuplicateEvent", i, err)
			}
		}
		if ok != 1 || dup != 1 {
			t.Fatalf("round %d: %d written, %d duplicates; want 1 and 1", i, ok, dup)
		}
	}
	log, err := s.ReadAll(ctx, 0, 100, cairn.Forward)
	if err != nil || len(log) != rounds {
		t.Fatalf("log has %d events, %v; want %d", len(log), err, rounds)
	}
}

// TestBatchesAcrossStreams races atomic batches over the same streams, named
// in both orders, with single appends to them: every write succeeds, with
// versions and positions consistent.
func TestBatchesAcrossStreams(t *testing.T) {
	schema := pgtest.Schema(t, "cairn_test")
	a := cairn.NewStore(openSchema(t, schema, pgstore.Options{}), cairn.Options{})
	b := cairn.NewStore(openSchema(t, schema, pgstore.Options{}), cairn.Options{})
	ctx := context.Background()
	streams := []string{"Zeta", "alpha", "ä-umlaut", "beta"}
	const workers, rounds = 6, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if w%2 == 1 {
				s = b
			}
			for i := range rounds {
				var err error
				if w%3 == 2 {
					_, err = s.Append(ctx, streams[(w+i)%len(streams)], cairn.Any, cairn.EventData{Type: "Single"})
				} else {
					reqs := make([]cairn.AppendRequest, len(streams))
					for k := range streams {
						st := streams[k]
						if w%2 == 1 {
							st = streams[len(streams)-1-k]
						}
						reqs[k] = cairn.AppendRequest{Stream: st, Expected: cairn.Any, Events: []cairn.EventData{{Type: "Batch"}}}
					}
					_, err = s.AppendBatch(ctx, reqs...)
				}
				if err != nil {
					t.Errorf("worker %d round %d: %v", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, st := range streams {
		events, err := a.ReadStream(ctx, st, 0, 1000, cairn.Forward)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range events {
			if e.Version != int64(i) || (i > 0 && e.Position <= events[i-1].Position) {
				t.Fatalf("stream %s: event %d has version %d position %d", st, i, e.Version, e.Position)
			}
		}
		total += len(events)
	}
	log, err := a.ReadAll(ctx, 0, 10000, cairn.Forward)
	if err != nil || len(log) != total {
		t.Fatalf("log has %d events, %v; streams hold %d", len(log), err, total)
	}
	for i, e := range log {
		if e.Position != uint64(i) {
			t.Fatalf("log position %d at index %d", e.Position, i)
		}
	}
}

// TestNotifyPolls: when a commit's notification is lost, the listener's
// periodic read of the head still reports it. A commit without a
// notification is imitated by moving the head row directly.
func TestNotifyPolls(t *testing.T) {
	schema := pgtest.Schema(t, "cairn_test")
	engine := openSchema(t, schema, pgstore.Options{PollInterval: 20 * time.Millisecond})
	writer := cairn.NewStore(openSchema(t, schema, pgstore.Options{}), cairn.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	heads := make(chan uint64, 100)
	stop := engine.Notify(func(head uint64) {
		select {
		case heads <- head:
		default:
		}
	})
	defer stop()
	// Once the listener has reported an append, it is connected: what it
	// reports next comes from a notification or from polling.
	if _, err := writer.Append(ctx, "s", cairn.NoStream, cairn.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	waitHead(t, ctx, heads, 0)
	if _, err := engine.Pool().Exec(ctx, "UPDATE "+pgx.Identifier{engine.Schema(), "head"}.Sanitize()+" SET next = next + 5"); err != nil {
		t.Fatal(err)
	}
	waitHead(t, ctx, heads, 5)
}

// A read-model entry under a key that cairn.ValidateKey refuses, which a
// schema written before keys were checked may hold (empty, or longer than
// cairn.MaxKeyBytes), is not listed: a scan could not resume after it.
func TestScanSkipsBadKeysWrittenBefore(t *testing.T) {
	engine := newStore(t)
	s := cairn.NewStore(engine, cairn.Options{ReadBatch: 1})
	ctx := context.Background()
	table := pgx.Identifier{engine.Schema(), "read_model"}.Sanitize()
	for _, key := range []string{"", "a", strings.Repeat("a", cairn.MaxKeyBytes+1), "b"} {
		if _, err := engine.Pool().Exec(ctx, "INSERT INTO "+table+" (tbl, key, value) VALUES ('t', $1, 'v')", key); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for e, err := range s.ReadModel(ctx, "t", "") {
		if err != nil {
			t.Fatal(err)
		}
		if keys = append(keys, e.Key); len(keys) > 5 {
			break
		}
	}
	if fmt.Sprint(keys) != "[a b]" {
		t.Fatalf("ReadModel in pages of one lists %q, want [\"a\" \"b\"]", keys)
	}
}
