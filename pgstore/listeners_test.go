package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// sideBySide returns two engines on one schema whose appends, made in
// turn, commit asynchronously: neither writes alone.
func sideBySide(t *testing.T, schema string) (a, b *pgstore.Store) {
	return openSchema(t, schema, pgstore.Options{}), openSchema(t, schema, pgstore.Options{})
}

// TestNoNotificationWithoutListeners: processes that write side by side
// send no notification while nobody listens (notify_durable, which
// records every notification in the notified table, is not run); once a
// listener registers, every append is announced to it, the first one by
// its durable mark; once it stops, its registration is gone.
func TestNoNotificationWithoutListeners(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	schema := pgtest.Schema(t, "cairn_test")
	a, b := sideBySide(t, schema)
	table := func(name string) string { return pgx.Identifier{schema, name}.Sanitize() }
	notified := func() int64 {
		var n int64
		if err := a.Pool().QueryRow(ctx, `SELECT next FROM `+table("notified")).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	listeners := func() int {
		var n int
		if err := a.Pool().QueryRow(ctx, `SELECT count(*) FROM `+table("listeners")).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var last cairn.AppendResult
	appendBoth := func(round int) {
		for i, s := range []*pgstore.Store{a, b} {
			res, err := s.Append(ctx, fmt.Sprintf("s-%d-%d", round, i), cairn.NoStream, []cairn.EventData{{ID: uuid.New(), Type: "E"}})
			if err != nil {
				t.Fatal(err)
			}
			last = res
		}
	}
	// The first marks of each engine find no listener.
	for r := range 2 {
		appendBoth(r)
	}
	before := notified()
	for r := 2; r < 6; r++ {
		appendBoth(r)
	}
	if after := notified(); after != before {
		t.Fatalf("with nobody listening, notified moved from %d to %d: writers still notify", before, after)
	}

	// A listener that polls too seldom to matter: what it hears comes
	// from NOTIFY, or from its first report of the head.
	listener := openSchema(t, schema, pgstore.Options{PollInterval: time.Hour})
	heads := make(chan uint64, 1000)
	stop := listener.Notify(func(head uint64) {
		select {
		case heads <- head:
		default:
		}
	})
	waitHead(t, ctx, heads, last.Position)
	if n := listeners(); n != 1 {
		t.Fatalf("%d listeners registered, want 1", n)
	}
	for r := 6; r < 10; r++ {
		appendBoth(r)
		waitHead(t, ctx, heads, last.Position)
	}
	stop()
	if n := listeners(); n != 0 {
		t.Fatalf("%d listeners registered after the listener stopped, want 0", n)
	}
}

// TestListenerRegistersDuringWrites starts listeners while processes
// write side by side, their marks in flight, again and again: each
// listener hears, or reads with its first report, every append, the last
// one included, though it polls too seldom to catch up otherwise. A mark
// that did not see the listener's registration must have committed
// before the listener read the head (the listen gate, migration 9).
func TestListenerRegistersDuringWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	schema := pgtest.Schema(t, "cairn_test")
	writers := []*pgstore.Store{openSchema(t, schema, pgstore.Options{}), openSchema(t, schema, pgstore.Options{}), openSchema(t, schema, pgstore.Options{})}
	listener := openSchema(t, schema, pgstore.Options{PollInterval: time.Hour})
	for round := range 15 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var last uint64
		for w, s := range writers {
			wg.Go(func() {
				for i := range 8 {
					res, err := s.Append(ctx, fmt.Sprintf("r%d-w%d-%d", round, w, i), cairn.NoStream, []cairn.EventData{{ID: uuid.New(), Type: "E"}})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					last = max(last, res.Position)
					mu.Unlock()
				}
			})
		}
		heads := make(chan uint64, 1000)
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		stop := listener.Notify(func(head uint64) {
			select {
			case heads <- head:
			default:
			}
		})
		wg.Wait()
		if t.Failed() {
			stop()
			return
		}
		waitHead(t, ctx, heads, last)
		stop()
	}
}

// TestMigrateListeners writes side by side with the schema of migration
// 8 and a listener, then migrates in place: the
// writers stop notifying while nobody listens, and a listener that
// registers hears every append.
func TestMigrateListeners(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	s := pgstore.MigratedTo(t, 8)
	heads := make(chan uint64, 1000)
	stop := s.Notify(func(head uint64) {
		select {
		case heads <- head:
		default:
		}
	})
	res, err := s.Append(ctx, "old", cairn.NoStream, []cairn.EventData{{ID: uuid.New(), Type: "E"}})
	if err != nil {
		t.Fatal(err)
	}
	waitHead(t, ctx, heads, res.Position)
	stop()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// A second engine of this build, opened once the schema is migrated.
	other := openSchema(t, s.Schema(), pgstore.Options{PollInterval: time.Hour})
	table := func(name string) string { return pgx.Identifier{s.Schema(), name}.Sanitize() }
	notified := func() int64 {
		var n int64
		if err := s.Pool().QueryRow(ctx, `SELECT next FROM `+table("notified")).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var last cairn.AppendResult
	appendBoth := func(round int) {
		for i, w := range []*pgstore.Store{s, other} {
			if last, err = w.Append(ctx, fmt.Sprintf("s-%d-%d", round, i), cairn.NoStream, []cairn.EventData{{ID: uuid.New(), Type: "E"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for r := range 2 {
		appendBoth(r)
	}
	before := notified()
	for r := 2; r < 5; r++ {
		appendBoth(r)
	}
	if after := notified(); after != before {
		t.Fatalf("after the migration, with nobody listening, notified moved from %d to %d", before, after)
	}
	stop = other.Notify(func(head uint64) {
		select {
		case heads <- head:
		default:
		}
	})
	defer stop()
	waitHead(t, ctx, heads, last.Position)
	for r := 5; r < 8; r++ {
		appendBoth(r)
		waitHead(t, ctx, heads, last.Position)
	}
	if got := allEvents(t, s); len(got) != 1+2*8 {
		t.Fatalf("%d events after the migration, want %d", len(got), 1+2*8)
	}
}

// loneNotifications checks that s, writing alone (its appends commit
// synchronously, each writing its own mark), notifies nobody while no
// listener is registered, though a connection LISTENs on the schema's
// channel without registering; and that a listener that registers then
// hears every append. round names the streams.
func loneNotifications(t *testing.T, ctx context.Context, s *pgstore.Store, round string) {
	t.Helper()
	raw, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close(ctx)
	if _, err := raw.Exec(ctx, "LISTEN "+pgx.Identifier{"cairn_" + s.Schema()}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	var last cairn.AppendResult
	appendAlone := func(i int) {
		t.Helper()
		if last, err = s.Append(ctx, fmt.Sprintf("%s-%d", round, i), cairn.NoStream, []cairn.EventData{{ID: uuid.New(), Type: "E"}}); err != nil {
			t.Fatal(err)
		}
	}
	heard := func(wait time.Duration) bool {
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		_, err := raw.WaitForNotification(wctx)
		if err != nil && wctx.Err() == nil {
			t.Fatal(err)
		}
		return err == nil
	}
	// The first appends of a Store commit asynchronously, and may
	// notify (it assumes a listener until a mark says otherwise).
	for i := range 3 {
		appendAlone(i)
	}
	for heard(200 * time.Millisecond) {
	}
	for i := 3; i < 8; i++ {
		appendAlone(i)
	}
	if heard(300 * time.Millisecond) {
		t.Fatal("a Store writing alone notified with no listener registered")
	}

	heads := make(chan uint64, 1000)
	stop := s.Notify(func(head uint64) {
		select {
		case heads <- head:
		default:
		}
	})
	defer stop()
	waitHead(t, ctx, heads, last.Position)
	for i := 8; i < 12; i++ {
		appendAlone(i)
		waitHead(t, ctx, heads, last.Position)
	}
}

// TestLoneWriterNotifiesOnlyListeners: a Store writing alone sends no
// notification while nobody is registered to hear it, and a listener
// that registers hears each of its appends (migration 10).
func TestLoneWriterNotifiesOnlyListeners(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	s := openSchema(t, pgtest.Schema(t, "cairn_test"), pgstore.Options{PollInterval: time.Hour})
	loneNotifications(t, ctx, s, "a")
}

// TestListenerRegistersDuringLoneWrites is TestListenerRegistersDuringWrites
// for a Store writing alone, whose appends look for listeners in their own
// synchronous transaction: each listener, started while the appends go on,
// hears, or reads with its first report, every append, the last one
// included. A registration waits for the append in flight to commit, and
// the next append for the registration (the head row's lock, migration 10).
func TestListenerRegistersDuringLoneWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	schema := pgtest.Schema(t, "cairn_test")
	writer := openSchema(t, schema, pgstore.Options{})
	listener := openSchema(t, schema, pgstore.Options{PollInterval: time.Hour})
	// Listeners start at delays from well within the appends of a round
	// to about their end (a few ms on an idle machine, longer if the
	// window between an append's look for listeners and its commit is
	// widened to check the test).
	delays := []time.Duration{0, 200 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond,
		8 * time.Millisecond, 16 * time.Millisecond, 24 * time.Millisecond, 32 * time.Millisecond, 40 * time.Millisecond}
	for round := range 2 * len(delays) {
		var last uint64
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 3 {
				res, err := writer.Append(ctx, fmt.Sprintf("r%d-%d", round, i), cairn.NoStream, []cairn.EventData{{ID: uuid.New(), Type: "E"}})
				if err != nil {
					t.Error(err)
					return
				}
				last = res.Position
			}
		}()
		heads := make(chan uint64, 1000)
		time.Sleep(delays[round%len(delays)])
		stop := listener.Notify(func(head uint64) {
			select {
			case heads <- head:
			default:
			}
		})
		<-done
		if t.Failed() {
			stop()
			return
		}
		waitHead(t, ctx, heads, last)
		stop()
	}
}

// TestMigrateLoneNotify writes alone with the schema of migration 9, whose
// append_one notifies at every synchronous append, then migrates in place:
// the Store then notifies only a registered listener, which hears every
// append.
func TestMigrateLoneNotify(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	s := pgstore.MigratedTo(t, 9)
	for i := range 4 {
		if _, err := s.Append(ctx, fmt.Sprintf("old-%d", i), cairn.NoStream, []cairn.EventData{{ID: uuid.New(), Type: "E"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	loneNotifications(t, ctx, s, "new")
	if got := allEvents(t, s); len(got) != 4+12 {
		t.Fatalf("%d events after the migration, want %d", len(got), 4+12)
	}
}
