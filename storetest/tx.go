package storetest

// Rules of transactional projections and read models.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
)

func testCommitAll(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.TxCommitter](t, b, "TxCommitter")
	_, canRead := b.(cairn.ReadModelReader)
	ctx := context.Background()
	balance := func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
		for _, e := range events {
			old, _, err := tx.Get(ctx, "balances", e.StreamID)
			if err != nil {
				return err
			}
			n := len(old) + 1
			if err := tx.Put(ctx, "balances", e.StreamID, make([]byte, n)); err != nil {
				return err
			}
			// A transaction reads its own writes.
			if got, ok, err := tx.Get(ctx, "balances", e.StreamID); err != nil || !ok || len(got) != n {
				return fmt.Errorf("read own write: %d bytes, %v, %v", len(got), ok, err)
			}
			if e.StreamID == "" || e.Type == "" {
				return fmt.Errorf("projection got an incomplete event %+v", e)
			}
		}
		return tx.Put(ctx, "audit", fmt.Sprintf("%s@%d", events[0].StreamID, events[0].Version), []byte(events[0].Type))
	}
	res, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "acc-1", Expected: cairn.NoStream, Events: evs(3, "Deposited")}, balance)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 {
		t.Fatalf("CommitAll returned version %d, want 2", res.Version)
	}
	if canRead {
		v, ok, err := s.ReadModelGet(ctx, "balances", "acc-1")
		if err != nil || !ok || len(v) != 3 {
			t.Fatalf("read model after commit = %d bytes, %v, %v; want 3", len(v), ok, err)
		}
	}
	logLen := len(readAll(t, s))

	boom := errors.New("projection failed")
	failing := func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
		if err := tx.Put(ctx, "balances", "acc-1", []byte("garbage")); err != nil {
			return err
		}
		return boom
	}
	_, err = s.CommitAll(ctx, cairn.AppendRequest{Stream: "acc-1", Expected: cairn.Exact(2), Events: evs(1, "Deposited")}, balance, failing)
	if !errors.Is(err, boom) {
		t.Fatalf("CommitAll with a failing projection: %v, want the projection's error", err)
	}
	_, err = s.CommitAll(ctx, cairn.AppendRequest{Stream: "acc-1", Expected: cairn.Exact(0), Events: evs(1, "Deposited")}, balance)
	wantWrongVersion(t, err, "acc-1", cairn.Exact(0), 2)
	wantVersion(t, s, "acc-1", 2)
	wantLogLen(t, s, logLen)
	if canRead {
		v, ok, err := s.ReadModelGet(ctx, "balances", "acc-1")
		if err != nil || !ok || len(v) != 3 {
			t.Fatalf("read model after failed commits = %q, %v, %v; want the 3-byte value", v, ok, err)
		}
		var keys []string
		for e, err := range s.ReadModel(ctx, "audit", "acc-") {
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, e.Key)
		}
		if !slices.Equal(keys, []string{"acc-1@0"}) {
			t.Fatalf("audit table = %v", keys)
		}
	}
}

// commitWith appends one event to stream with projection p, and fails the
// test if the commit fails.
func commitWith(t *testing.T, s *cairn.Store, stream string, p cairn.Projection) {
	t.Helper()
	if _, err := s.CommitAll(context.Background(), cairn.AppendRequest{Stream: stream, Expected: cairn.Any, Events: evs(1, "E")}, p); err != nil {
		t.Fatalf("CommitAll on %q: %v", stream, err)
	}
}

// txWant checks that tx holds value under table and key (nothing when value
// is nil), and returns what is wrong.
func txWant(ctx context.Context, tx cairn.Tx, table, key string, value []byte) error {
	got, ok, err := tx.Get(ctx, table, key)
	switch {
	case err != nil:
		return fmt.Errorf("Get(%q, %q): %w", table, key, err)
	case value == nil && ok:
		return fmt.Errorf("Get(%q, %q) = %q, want nothing", table, key, got)
	case value != nil && (!ok || string(got) != string(value)):
		return fmt.Errorf("Get(%q, %q) = %q (found %v), want %q", table, key, got, ok, value)
	}
	return nil
}

// wantReadModel checks, when the engine reads read models back, that table
// holds value under key (nothing when value is nil).
func wantReadModel(t *testing.T, s *cairn.Store, b cairn.Backend, table, key string, value []byte) {
	t.Helper()
	if _, ok := b.(cairn.ReadModelReader); !ok {
		return
	}
	got, ok, err := s.ReadModelGet(context.Background(), table, key)
	if err != nil || ok != (value != nil) || string(got) != string(value) {
		t.Fatalf("ReadModelGet(%q, %q) = %q, %v, %v; want %q", table, key, got, ok, err, value)
	}
}

// A Tx reads its own writes and what earlier commits left; tables are apart.
func testTxOwnWrites(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.TxCommitter](t, b, "TxCommitter")
	commitWith(t, s, "s", func(ctx context.Context, tx cairn.Tx, _ []cairn.Event) error {
		for _, w := range []struct{ table, key, value string }{{"t1", "k", "v1"}, {"t2", "k", "w1"}, {"t1", "gone", "x"}} {
			if err := tx.Put(ctx, w.table, w.key, []byte(w.value)); err != nil {
				return err
			}
		}
		if err := tx.Delete(ctx, "t1", "gone"); err != nil {
			return err
		}
		if err := tx.Put(ctx, "t1", "k", []byte("v2")); err != nil {
			return err
		}
		return errors.Join(
			txWant(ctx, tx, "t1", "k", []byte("v2")),
			txWant(ctx, tx, "t2", "k", []byte("w1")),
			txWant(ctx, tx, "t1", "gone", nil),
			txWant(ctx, tx, "t1", "never", nil),
			txWant(ctx, tx, "t3", "k", nil))
	})
	wantReadModel(t, s, b, "t1", "k", []byte("v2"))
	wantReadModel(t, s, b, "t2", "k", []byte("w1"))
	wantReadModel(t, s, b, "t1", "gone", nil)
	commitWith(t, s, "s", func(ctx context.Context, tx cairn.Tx, _ []cairn.Event) error {
		if err := errors.Join(
			txWant(ctx, tx, "t1", "k", []byte("v2")),
			txWant(ctx, tx, "t2", "k", []byte("w1")),
			txWant(ctx, tx, "t1", "gone", nil)); err != nil {
			return fmt.Errorf("in the next commit: %w", err)
		}
		if err := tx.Delete(ctx, "t2", "k"); err != nil {
			return err
		}
		// Deleting what is not there is not an error.
		if err := tx.Delete(ctx, "t2", "never"); err != nil {
			return err
		}
		return txWant(ctx, tx, "t2", "k", nil)
	})
	wantReadModel(t, s, b, "t1", "k", []byte("v2"))
	wantReadModel(t, s, b, "t2", "k", nil)
}

// A Tx refuses the table names that cairn.ValidateTable refuses, with an
// InvalidArgumentError for "table", and writes nothing; it accepts the rest.
func testTxTableNames(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.TxCommitter](t, b, "TxCommitter")
	bad := map[string]string{
		"empty":              "",
		"too long":           strings.Repeat("t", cairn.MaxTableBytes+1),
		"NUL":                "a\x00b",
		"newline":            "a\nb",
		"DEL":                "a\x7fb",
		"C1 control":         "a\u0085b",
		"invalid UTF-8":      "a\xffb",
		"truncated UTF-8":    "caf\xc3",
		"control at the end": "ab\x1f",
	}
	good := []string{"balances", strings.Repeat("t", cairn.MaxTableBytes), "café orders/by-day", "$system", "a"}
	for why, table := range bad {
		if err := cairn.ValidateTable(table); err == nil {
			t.Fatalf("the suite's bad table name (%s) %q passes cairn.ValidateTable", why, table)
		}
	}
	var problems []string
	commitWith(t, s, "s", func(ctx context.Context, tx cairn.Tx, _ []cairn.Event) error {
		refused := func(why, call string, err error) {
			var iae *cairn.InvalidArgumentError
			if !errors.Is(err, cairn.ErrInvalidArgument) || !errors.As(err, &iae) || iae.Field != "table" {
				problems = append(problems, fmt.Sprintf("%s with a table name that is %s: error %v, want an InvalidArgumentError for \"table\"", call, why, err))
			}
		}
		for why, table := range bad {
			refused(why, "Delete", tx.Delete(ctx, table, "k"))
			refused(why, "Put", tx.Put(ctx, table, "k", []byte("v")))
			_, found, err := tx.Get(ctx, table, "k")
			refused(why, "Get", err)
			if found {
				problems = append(problems, fmt.Sprintf("Get with a table name that is %s found a value", why))
			}
		}
		for _, table := range good {
			if err := tx.Put(ctx, table, "k", []byte(table)); err != nil {
				return fmt.Errorf("put to table %q: %w", table, err)
			}
			if err := txWant(ctx, tx, table, "k", []byte(table)); err != nil {
				return err
			}
		}
		return nil
	})
	for _, p := range problems {
		t.Error(p)
	}
	for _, table := range good {
		wantReadModel(t, s, b, table, "k", []byte(table))
	}
	// Nothing reached the read model under a bad name. The engine is asked
	// directly, since the Store refuses to read such a table.
	if r, ok := b.(cairn.ReadModelReader); ok {
		for why, table := range bad {
			if v, found, _ := r.ReadModelGet(context.Background(), table, "k"); found {
				t.Errorf("a write to a table name that is %s was kept: %q", why, v)
			}
		}
	}
}

// Put keeps its own copy of a value, and Get returns one the caller may
// change.
func testTxCopiesValues(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.TxCommitter](t, b, "TxCommitter")
	commitWith(t, s, "s", func(ctx context.Context, tx cairn.Tx, _ []cairn.Event) error {
		buf := []byte("one")
		if err := tx.Put(ctx, "t", "k", buf); err != nil {
			return err
		}
		buf[0] = 'X'
		got, _, err := tx.Get(ctx, "t", "k")
		if err != nil {
			return err
		}
		if len(got) > 0 {
			got[0] = 'Y'
		}
		return txWant(ctx, tx, "t", "k", []byte("one"))
	})
	wantReadModel(t, s, b, "t", "k", []byte("one"))
	commitWith(t, s, "s", func(ctx context.Context, tx cairn.Tx, _ []cairn.Event) error {
		return txWant(ctx, tx, "t", "k", []byte("one"))
	})
}

// A Tx kept past its commit fails every call and writes nothing, whether
// the commit succeeded or failed.
func testTxEndsWithProjection(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.TxCommitter](t, b, "TxCommitter")
	ctx := context.Background()
	var kept cairn.Tx
	keep := func(_ context.Context, tx cairn.Tx, _ []cairn.Event) error {
		kept = tx
		return nil
	}
	commitWith(t, s, "s", keep)
	late := func(when string) {
		t.Helper()
		if err := kept.Put(ctx, "t", "late", []byte("v")); err == nil {
			t.Errorf("Put on a Tx %s succeeded", when)
		}
		if _, _, err := kept.Get(ctx, "t", "late"); err == nil {
			t.Errorf("Get on a Tx %s succeeded", when)
		}
		if err := kept.Delete(ctx, "t", "late"); err == nil {
			t.Errorf("Delete on a Tx %s succeeded", when)
		}
	}
	late("whose commit succeeded")
	boom := errors.New("projection failed")
	if _, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "s", Events: evs(1, "E")}, keep, func(context.Context, cairn.Tx, []cairn.Event) error {
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("CommitAll with a failing projection: %v, want its error", err)
	}
	late("whose commit failed")
	wantReadModel(t, s, b, "t", "late", nil)
	commitWith(t, s, "s", func(ctx context.Context, tx cairn.Tx, _ []cairn.Event) error {
		return txWant(ctx, tx, "t", "late", nil)
	})
}

// ReadModel lists a table's entries in key (byte) order, filtered by prefix,
// in pages.
func testReadModelScan(t *testing.T, nb NewBackend) {
	s, b := open(t, nb, cairn.Options{ReadBatch: 3})
	need[cairn.TxCommitter](t, b, "TxCommitter")
	need[cairn.ReadModelReader](t, b, "ReadModelReader")
	ctx := context.Background()
	keys := []string{"b/2", "a", "b/10", "b/1", "c", "b", "b/3", "Z", "é", "b0"}
	commitWith(t, s, "s", func(ctx context.Context, tx cairn.Tx, _ []cairn.Event) error {
		for _, k := range keys {
			if err := tx.Put(ctx, "scan", k, []byte("v"+k)); err != nil {
				return err
			}
			if err := tx.Put(ctx, "other", k, []byte("other")); err != nil {
				return err
			}
		}
		return tx.Delete(ctx, "scan", "b/3")
	})
	scan := func(prefix string) []string {
		t.Helper()
		var out []string
		for e, err := range s.ReadModel(ctx, "scan", prefix) {
			if err != nil {
				t.Fatal(err)
			}
			if string(e.Value) != "v"+e.Key {
				t.Fatalf("entry %q holds %q", e.Key, e.Value)
			}
			out = append(out, e.Key)
		}
		return out
	}
	all := slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == "b/3" })
	slices.Sort(all)
	if got := scan(""); !slices.Equal(got, all) {
		t.Fatalf("ReadModel of the whole table = %q, want %q", got, all)
	}
	if got, want := scan("b/"), []string{"b/1", "b/10", "b/2"}; !slices.Equal(got, want) {
		t.Fatalf("ReadModel with prefix \"b/\" = %q, want %q", got, want)
	}
	if got := scan("x"); len(got) != 0 {
		t.Fatalf("ReadModel with a prefix no key has = %q", got)
	}
	for range s.ReadModel(ctx, "empty", "") {
		t.Fatal("ReadModel of a table never written yielded an entry")
	}
}

// The empty string is not a key: a Tx refuses it in Get, Put and Delete
// with an InvalidArgumentError for "key" and writes nothing, and so does the
// engine's ReadModelGet; a scan of the whole table lists only the keys that
// were written. (A scan resumes after the last key it returned, so an empty
// key could not be paged past.)
func testTxEmptyKey(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	need[cairn.TxCommitter](t, b, "TxCommitter")
	var problems []string
	refused := func(call string, err error) {
		var iae *cairn.InvalidArgumentError
		if !errors.Is(err, cairn.ErrInvalidArgument) || !errors.As(err, &iae) || iae.Field != "key" {
			problems = append(problems, fmt.Sprintf("%s with an empty key: error %v, want an InvalidArgumentError for \"key\"", call, err))
		}
	}
	commitWith(t, s, "s", func(ctx context.Context, tx cairn.Tx, _ []cairn.Event) error {
		refused("Put", tx.Put(ctx, "t", "", []byte("empty")))
		v, found, err := tx.Get(ctx, "t", "")
		refused("Get", err)
		if found {
			problems = append(problems, fmt.Sprintf("Get with an empty key found %q", v))
		}
		refused("Delete", tx.Delete(ctx, "t", ""))
		return tx.Put(ctx, "t", "a", []byte("a"))
	})
	for _, p := range problems {
		t.Error(p)
	}
	r, ok := b.(cairn.ReadModelReader)
	if !ok {
		return
	}
	ctx := context.Background()
	v, found, err := r.ReadModelGet(ctx, "t", "")
	var iae *cairn.InvalidArgumentError
	if found || !errors.As(err, &iae) || iae.Field != "key" {
		t.Errorf("the engine's ReadModelGet with an empty key = %q, %v, %v; want an InvalidArgumentError for \"key\"", v, found, err)
	}
	if _, _, err := s.ReadModelGet(ctx, "t", ""); !errors.As(err, &iae) || iae.Field != "key" {
		t.Errorf("Store.ReadModelGet with an empty key: %v, want an InvalidArgumentError for \"key\"", err)
	}
	entries, err := r.ReadModelScan(ctx, "t", "", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range entries {
		keys = append(keys, e.Key)
	}
	if !slices.Equal(keys, []string{"a"}) {
		t.Errorf("ReadModelScan of the table = %q, want only [\"a\"]", keys)
	}
}

// badKeys are strings that cairn.ValidateKey refuses, by why.
func badKeys() map[string]string {
	return map[string]string{
		"empty":            "",
		"too long":         strings.Repeat("k", cairn.MaxKeyBytes+1),
		"NUL":              "a\x00b",
		"NUL at the end":   "ab\x00",
		"invalid UTF-8":    "a\xffb",
		"truncated UTF-8":  "caf\xc3",
		"a lone surrogate": "a\xed\xa0\x80b",
	}
}

// goodKeys are keys at the edges of what cairn.ValidateKey accepts: other
// control characters than NUL are data, not errors.
func goodKeys() []string {
	return []string{"k", strings.Repeat("k", cairn.MaxKeyBytes), "a\nb", "\x01", "tab\there", "\x7f", "é/😀", "$k", " "}
}

// A Tx refuses the keys that cairn.ValidateKey refuses, with an
// InvalidArgumentError for "key", and writes nothing; it keeps the rest,
// which a scan lists in byte order.
func testTxKeys(t *testing.T, nb NewBackend) {
	s, b := open(t, nb, cairn.Options{ReadBatch: 2})
	need[cairn.TxCommitter](t, b, "TxCommitter")
	bad, good := badKeys(), goodKeys()
	for why, key := range bad {
		if err := cairn.ValidateKey(key); err == nil {
			t.Fatalf("the suite's bad key (%s) %q passes cairn.ValidateKey", why, key)
		}
	}
	var problems []string
	commitWith(t, s, "s", func(ctx context.Context, tx cairn.Tx, _ []cairn.Event) error {
		refused := func(why, call string, err error) {
			var iae *cairn.InvalidArgumentError
			if !errors.Is(err, cairn.ErrInvalidArgument) || !errors.As(err, &iae) || iae.Field != "key" {
				problems = append(problems, fmt.Sprintf("%s with a key that is %s: error %v, want an InvalidArgumentError for \"key\"", call, why, err))
			}
		}
		for why, key := range bad {
			refused(why, "Put", tx.Put(ctx, "t", key, []byte("bad")))
			_, found, err := tx.Get(ctx, "t", key)
			refused(why, "Get", err)
			if found {
				problems = append(problems, fmt.Sprintf("Get with a key that is %s found a value", why))
			}
			refused(why, "Delete", tx.Delete(ctx, "t", key))
		}
		for _, key := range good {
			if err := tx.Put(ctx, "t", key, []byte(key)); err != nil {
				return fmt.Errorf("put %q: %w", key, err)
			}
			if err := txWant(ctx, tx, "t", key, []byte(key)); err != nil {
				return err
			}
		}
		return nil
	})
	for _, p := range problems {
		t.Error(p)
	}
	for _, key := range good {
		wantReadModel(t, s, b, "t", key, []byte(key))
	}
	if _, ok := b.(cairn.ReadModelReader); !ok {
		return
	}
	// Nothing reached the table under a bad key: it lists the good ones
	// alone, in byte order.
	var got []string
	for e, err := range s.ReadModel(context.Background(), "t", "") {
		if err != nil {
			t.Fatal(err)
		}
		if string(e.Value) != e.Key {
			t.Errorf("entry %q holds %q", e.Key, e.Value)
		}
		got = append(got, e.Key)
	}
	want := slices.Clone(good)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the table lists %q, want %q", got, want)
	}
}

// An engine's ReadModelGet and ReadModelScan refuse what a Tx refuses, and
// a scan's prefix and after that no key could start with (longer than
// cairn.MaxKeyBytes, with NUL or not UTF-8; cairn.ValidateScan), with an
// InvalidArgumentError for the field; so does the Store.
func testReadModelArgs(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	r := need[cairn.ReadModelReader](t, b, "ReadModelReader")
	ctx := context.Background()
	refused := func(what, field string, err error) {
		t.Helper()
		var iae *cairn.InvalidArgumentError
		if !errors.Is(err, cairn.ErrInvalidArgument) || !errors.As(err, &iae) || iae.Field != field {
			t.Errorf("%s: error %v, want an InvalidArgumentError for %q", what, err, field)
		}
	}
	for why, key := range badKeys() {
		_, found, err := r.ReadModelGet(ctx, "t", key)
		refused("the engine's ReadModelGet with a key that is "+why, "key", err)
		if found {
			t.Errorf("the engine's ReadModelGet with a key that is %s found a value", why)
		}
		_, _, err = s.ReadModelGet(ctx, "t", key)
		refused("Store.ReadModelGet with a key that is "+why, "key", err)
		if key == "" {
			continue // the empty prefix lists the whole table
		}
		_, err = r.ReadModelScan(ctx, "t", key, "", 10)
		refused("the engine's ReadModelScan with a prefix that is "+why, "prefix", err)
		_, err = r.ReadModelScan(ctx, "t", "", key, 10)
		refused("the engine's ReadModelScan after a key that is "+why, "after", err)
		for _, err := range s.ReadModel(ctx, "t", key) {
			refused("Store.ReadModel with a prefix that is "+why, "prefix", err)
		}
	}
	_, _, err := r.ReadModelGet(ctx, "a\x00b", "k")
	refused("the engine's ReadModelGet with a table name with NUL", "table", err)
	_, err = r.ReadModelScan(ctx, "", "", "", 10)
	refused("the engine's ReadModelScan of an empty table name", "table", err)
	for _, key := range goodKeys() {
		if _, found, err := r.ReadModelGet(ctx, "t", key); err != nil || found {
			t.Errorf("the engine's ReadModelGet(%q) of an empty table = %v, %v; want nothing", key, found, err)
		}
		if _, err := r.ReadModelScan(ctx, "t", key, key, 10); err != nil {
			t.Errorf("the engine's ReadModelScan with prefix and after %q: %v", key, err)
		}
	}
}
