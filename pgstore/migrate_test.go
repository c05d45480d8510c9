package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestMigrateToChunks writes events with the schema of migration 2 (an
// index entry per event, first events flagged), including events removed
// by Compact, then migrates to runs (migration 3) and to chunks (migration
// 4): the runs found must be the appends, and the chunks must read back
// every remaining event, recognise retries of earlier appends, and let
// appends, truncation and Compact go on.
func TestMigrateToChunks(t *testing.T) {
	ctx := context.Background()
	opts := Options{Schema: pgtest.Schema(t, "cairn_test_migrate")}
	opts.EnsureDefaults()
	pool, err := pgxpool.New(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(pool, opts)
	defer s.Close()
	if err := s.migrateTo(ctx, 2); err != nil {
		t.Fatal(err)
	}

	// Three groups through migration 2's append_group: a 0–1, b 0–2 and
	// a 2 in the first (positions 0–5), a 3–5 (6–8), c 0–1 (9–10).
	ids := map[string][]uuid.UUID{} // stream → ids of its events, by version
	var firsts [][]uuid.UUID        // first ids of each group's appends
	group := func(streams []string, counts []int32) {
		t.Helper()
		var evIDs []uuid.UUID
		var types, tags []string
		var ctypes []int16
		var data [][]byte
		var fs []uuid.UUID
		expected := make([]int64, len(streams))
		for i, st := range streams {
			expected[i] = cairn.Any.Int64()
			for k := range counts[i] {
				id := uuid.New()
				if k == 0 {
					fs = append(fs, id)
				}
				evIDs = append(evIDs, id)
				ids[st] = append(ids[st], id)
				types = append(types, "T")
				ctypes = append(ctypes, int16(cairn.ContentBinary))
				data = append(data, []byte(st))
				tags = append(tags, "x")
			}
		}
		firsts = append(firsts, fs)
		_, err := pool.Exec(ctx, `SELECT * FROM `+pgx.Identifier{opts.Schema, "append_group"}.Sanitize()+
			`($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9)`, streams, expected, counts, evIDs, types, ctypes, data, tags, s.channel)
		if err != nil {
			t.Fatal(err)
		}
	}
	group([]string{"a", "b", "a"}, []int32{2, 3, 1})
	group([]string{"a"}, []int32{3})
	group([]string{"c"}, []int32{2})
	// Truncate a before 3 and b before 1, and compact as migration 2's
	// engine did: b's first event goes, with its retry detection.
	events := pgx.Identifier{opts.Schema, "events"}.Sanitize()
	for _, sql := range []string{
		`UPDATE ` + s.streams + ` SET before = 3 WHERE id = 'a'`,
		`UPDATE ` + s.streams + ` SET before = 1 WHERE id = 'b'`,
		`DELETE FROM ` + events + ` e USING ` + s.streams + ` t WHERE e.stream = t.id AND e.version < t.before`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}

	if err := s.migrateTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	type run struct {
		stream       string
		version, pos int64
		count        int32
		id           *uuid.UUID
	}
	rows, _ := pool.Query(ctx, `SELECT stream, version, position, count, id FROM `+pgx.Identifier{opts.Schema, "runs"}.Sanitize()+` ORDER BY position`)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (run, error) {
		var x run
		err := r.Scan(&x.stream, &x.version, &x.pos, &x.count, &x.id)
		return x, err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []run{{"b", 1, 3, 2, nil}, {"a", 3, 6, 3, &firsts[1][0]}, {"c", 0, 9, 2, &firsts[2][0]}}
	if !slices.EqualFunc(got, want, func(a, b run) bool {
		return a.stream == b.stream && a.version == b.version && a.pos == b.pos && a.count == b.count &&
			(a.id == nil) == (b.id == nil) && (a.id == nil || *a.id == *b.id)
	}) {
		t.Fatalf("runs after migration = %+v, want %+v", got, want)
	}
	if err := s.migrate(ctx); err != nil {
		t.Fatal(err)
	}

	check := func(stream string, versions []int64, positions []uint64) {
		t.Helper()
		for _, dir := range []cairn.Direction{cairn.Forward, cairn.Backward} {
			from := int64(0)
			if dir == cairn.Backward {
				from = cairn.StreamEnd
			}
			events, err := s.ReadStream(ctx, stream, from, 100, dir)
			if err != nil {
				t.Fatalf("read %s: %v", stream, err)
			}
			if dir == cairn.Backward {
				slices.Reverse(events)
			}
			if len(events) != len(versions) {
				t.Fatalf("read %s %v: %d events, want %d", stream, dir, len(events), len(versions))
			}
			for i, e := range events {
				if e.Version != versions[i] || e.Position != positions[i] || e.ID != ids[stream][e.Version] || string(e.Data) != stream || !slices.Equal(e.Tags, []string{"x"}) {
					t.Fatalf("read %s %v: event %d = %+v, want version %d at %d", stream, dir, i, e, versions[i], positions[i])
				}
			}
		}
	}
	check("a", []int64{3, 4, 5}, []uint64{6, 7, 8})
	check("b", []int64{1, 2}, []uint64{3, 4})
	check("c", []int64{0, 1}, []uint64{9, 10})

	// A repeat of a's second append is recognised, and a new one follows.
	repeat := make([]cairn.EventData, 3)
	for i := range repeat {
		repeat[i] = cairn.EventData{ID: ids["a"][3+i], Type: "T", ContentType: cairn.ContentBinary, Data: []byte("a")}
	}
	res, err := s.Append(ctx, "a", cairn.Exact(2), repeat)
	if err != nil || res.Version != 5 || res.Position != 8 {
		t.Fatalf("repeated append = %+v, %v; want version 5 at 8", res, err)
	}
	id := uuid.New()
	ids["a"] = append(ids["a"], id)
	res, err = s.Append(ctx, "a", cairn.Exact(5), []cairn.EventData{{ID: id, Type: "T", Data: []byte("a"), Tags: []string{"x"}}})
	if err != nil || res.Version != 6 || res.Position != 11 {
		t.Fatalf("append after migration = %+v, %v; want version 6 at 11", res, err)
	}
	check("a", []int64{3, 4, 5, 6}, []uint64{6, 7, 8, 11})

	// Compact after the migration: c's chunk (one event each, from
	// migration 4) loses its first event and the retry detection that goes
	// with it.
	if err := s.TruncateStream(ctx, "c", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	check("c", []int64{1}, []uint64{10})
	var left int
	if err := pool.QueryRow(ctx, `SELECT sum(count) FROM `+s.chunks).Scan(&left); err != nil || left != 7 {
		t.Fatalf("%d events left after Compact, %v; want 7", left, err)
	}
	var cid *uuid.UUID
	if err := pool.QueryRow(ctx, `SELECT first_id FROM `+s.chunks+` WHERE stream = 'c'`).Scan(&cid); err != nil || cid != nil {
		t.Fatalf("c's chunk has first id %v, %v; want NULL", cid, err)
	}
}

// TestMigrationsFrozen holds the checksum of every released migration: a
// schema migrated by an earlier release ran their text, so a fresh schema
// must run the same. A new migration appends its checksum when it is
// written; an old one's never changes.
func TestMigrationsFrozen(t *testing.T) {
	released := []string{
		"6e6a7386d2541b24f28f9e5ac8e15247c95957c928cf76de2560e9224546fd53",
		"c8bdc807a9172525fa10b71a3b7fbc758d54c2f06b95eb495367384fb69c54a2",
		"dd5738ff46c4605becb34d4888a7f2ac52d3a56e4bc4ffd0ddd13e4fa921a477",
		"bfd269019d72dbe19f51f37adbb39f6af42eb8815d87a3ff468d6fe2143b3684",
		"1d08eb095829dd951516bd6e82327375b5df879612b962a9caf9e4778f89a730",
		"108cc7a3d4b5e7e655327c491e9272cf8338ba32a904ec040b41ed3de7572eae",
		"e461eda32825d6d955a4306965fdc334ef48e3b7836e3fb5582b86d3f695b0e5",
		"c82d46f5c96cc922fd4f5fbbc4d7dbdbc5961dfb03fc2213a279906eafad0229",
		"240329d0f6e3957438ed6d4cb6da9b78e502f7d085e2f889866ed2731c637923",
		"756676b6c3b11bd139958f6c7fee0d5bc123260aa4daf8d5dfb4b5196e80ca33",
		"bbc8acc73eb64fe423ad8d2138dfd67ef17b94824b262ab7160de17f52b857ef",
	}
	if len(migrations) != len(released) {
		t.Fatalf("%d migrations, %d checksums: add the new migration's checksum", len(migrations), len(released))
	}
	for i, m := range migrations {
		if sum := sha256.Sum256([]byte(m)); hex.EncodeToString(sum[:]) != released[i] {
			t.Errorf("migration %d changed (sha256 %x): never edit a released migration, append a new one", i+1, sum)
		}
	}
}

// TestMigrateExpectedOnce writes streams with the schema of migration 4
// (the rule written out in append_group), migrates to 5, and checks that
// the schema then holds the expected-version rule once, in expected_ok,
// which append_group calls; and that appends to the streams written before
// are decided by it as cairn decides them.
func TestMigrateExpectedOnce(t *testing.T) {
	ctx := context.Background()
	s, pool := migratedTo(t, 4)
	opts := s.opts
	events := func(n int) []cairn.EventData {
		out := make([]cairn.EventData, n)
		for i := range out {
			out[i] = cairn.EventData{ID: uuid.New(), Type: "E", Data: []byte(`{}`)}
		}
		return out
	}
	expectations := []cairn.ExpectedVersion{cairn.NoStream, cairn.Any, cairn.StreamExists, cairn.Exact(0), cairn.Exact(2)}
	for i := range expectations {
		appendV4(t, s, cairn.AppendRequest{Stream: fmt.Sprint("a-", i), Expected: cairn.NoStream, Events: events(3)})
		appendV4(t, s, cairn.AppendRequest{Stream: fmt.Sprint("d-", i), Expected: cairn.NoStream, Events: events(3)})
		deleteV4(t, s, fmt.Sprint("d-", i))
	}

	if err := s.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	rows, _ := pool.Query(ctx, `SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = $1 AND p.prosrc ~ '= -4 AND' ORDER BY 1`, opts.Schema)
	holders, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(holders, []string{"expected_ok"}) {
		t.Fatalf("functions of the schema that write out the expected-version rule: %v, want only expected_ok", holders)
	}
	var calls bool
	if err := pool.QueryRow(ctx, `SELECT p.prosrc LIKE '%expected_ok(exp, cur)%' FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = $1 AND p.proname = 'append_group'`, opts.Schema).Scan(&calls); err != nil || !calls {
		t.Fatalf("append_group calls expected_ok: %v, %v", calls, err)
	}

	for i, exp := range expectations {
		for _, st := range []struct {
			stream  string
			current int64 // -1: does not exist
			next    int64
		}{{fmt.Sprint("a-", i), 2, 3}, {fmt.Sprint("d-", i), -1, 3}, {fmt.Sprint("m-", i), -1, 0}} {
			res, err := s.Append(ctx, st.stream, exp, events(1))
			if want := exp.Check(st.stream, st.current); want != nil {
				if !errors.Is(err, cairn.ErrWrongExpectedVersion) {
					t.Errorf("append to %s (version %d) expecting %v after the migration: %v, want %v", st.stream, st.current, exp, err, want)
				}
				continue
			}
			if err != nil || res.Version != st.next {
				t.Errorf("append to %s (version %d) expecting %v after the migration = %+v, %v; want version %d", st.stream, st.current, exp, res, err, st.next)
			}
		}
	}
	got, err := s.ReadStream(ctx, "a-1", 0, 10, cairn.Forward) // Any: appended to
	if err != nil || len(got) != 4 {
		t.Fatalf("a stream written before the migration reads %d events, %v; want 4", len(got), err)
	}
}

// TestExpectedOKIsCheck compares the schema's expected_ok with
// cairn.ExpectedVersion.Check, which decides the appends that do not go
// through append_group.
func TestExpectedOKIsCheck(t *testing.T) {
	ctx := context.Background()
	s, pool := migratedTo(t, len(migrations))
	opts := s.opts
	fn := pgx.Identifier{opts.Schema, "expected_ok"}.Sanitize()
	for _, exp := range []cairn.ExpectedVersion{cairn.NoStream, cairn.Any, cairn.StreamExists, cairn.Exact(0), cairn.Exact(1), cairn.Exact(7)} {
		for _, current := range []int64{-1, 0, 1, 7} {
			var ok bool
			if err := pool.QueryRow(ctx, `SELECT `+fn+`($1, $2)`, exp.Int64(), current).Scan(&ok); err != nil {
				t.Fatal(err)
			}
			if want := exp.Check("s", current) == nil; ok != want {
				t.Errorf("expected_ok(%v, %d) = %v, cairn says %v", exp, current, ok, want)
			}
		}
	}
}

// An append that the schema refuses but cairn's rule accepts fails: it is
// never reported as written.
func TestExpectedDisagreementFails(t *testing.T) {
	ctx := context.Background()
	s, pool := migratedTo(t, len(migrations))
	opts := s.opts
	if _, err := pool.Exec(ctx, `CREATE OR REPLACE FUNCTION `+pgx.Identifier{opts.Schema, "expected_ok"}.Sanitize()+
		`(p_expected bigint, p_current bigint) RETURNS boolean LANGUAGE sql AS $$ SELECT false $$`); err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, "s", cairn.Any, []cairn.EventData{{ID: uuid.New(), Type: "E"}})
	if err == nil || errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("append refused by the schema alone = %+v, %v; want an error that is not a wrong expected version", res, err)
	}
}

// migratedTo returns an engine on a fresh schema migrated up to version
// to, and its pool, both closed when t ends.
func migratedTo(t *testing.T, to int) (*Store, *pgxpool.Pool) {
	t.Helper()
	opts := Options{Schema: pgtest.Schema(t, "cairn_test_migrate")}
	opts.EnsureDefaults()
	pool, err := pgxpool.New(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := newStore(pool, opts)
	t.Cleanup(func() { s.Close() })
	if err := s.migrateTo(context.Background(), to); err != nil {
		t.Fatal(err)
	}
	return s, pool
}

// appendV4 appends reqs as one group with append_group as migrations 4 and
// 5 define it, and fails t unless every request is written.
func appendV4(t *testing.T, s *Store, reqs ...cairn.AppendRequest) {
	t.Helper()
	var (
		streams  = make([]string, len(reqs))
		expected = make([]int64, len(reqs))
		counts   = make([]int32, len(reqs))
		r        eventRows
	)
	for i, req := range reqs {
		streams[i], expected[i], counts[i] = req.Stream, req.Expected.Int64(), int32(len(req.Events))
		r.addRequest(req.Stream, req.Events)
	}
	rows, err := s.pool.Query(context.Background(), `SELECT status FROM `+s.fn("append_group")+
		`($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		streams, expected, counts, r.id, r.types, r.ctypes, r.kindArg(), r.data, r.metaArg(), r.tagsArg(), r.chunks, s.channel)
	if err != nil {
		t.Fatal(err)
	}
	statuses, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range statuses {
		if st != 0 {
			t.Fatalf("append_group of migration 5: request %d has status %d", i, st)
		}
	}
}

// appendV6 appends reqs as one group with append_group as migration 6
// defines it, and fails t unless every request is written.
func appendV6(t *testing.T, s *Store, reqs ...cairn.AppendRequest) {
	t.Helper()
	group := make([]*pending, len(reqs))
	for i, r := range reqs {
		group[i] = &pending{req: r}
		group[i].keys = group[i].runs.addRequest(0, 0, r.Stream, -1, r.Events)
	}
	_, args, _ := s.groupCall(group, nil)
	args = args[:len(args)-1] // migration 7's p_channel
	// Migration 6 took the channel after the chunks.
	args = append(args[:11], append([]any{s.channel}, args[11:]...)...)
	rows, err := s.pool.Query(context.Background(), `SELECT status FROM `+s.fn("append_group")+
		`($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)`, args...)
	if err != nil {
		t.Fatal(err)
	}
	statuses, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range statuses {
		if st != 0 {
			t.Fatalf("append_group of migration 6: request %d has status %d", i, st)
		}
	}
}

// deleteV4 soft-deletes stream as the releases before deletion records
// did, without a record: the schema of an old migration has no room for
// one written by today's statements.
func deleteV4(t *testing.T, s *Store, stream string) {
	t.Helper()
	ctx := context.Background()
	tag, err := s.pool.Exec(ctx, `UPDATE `+s.streams+` SET deleted = true, before = greatest(before, version + 1) WHERE id = $1 AND version >= 0`, stream)
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() != 1 {
		t.Fatalf("delete %q as migration 4 did: no such stream", stream)
	}
}
