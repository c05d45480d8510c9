package diskstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The on-disk format cannot change silently: testdata/format<N> holds a
// small store written in format version N (store/) and what it holds
// (expected.json). TestFormatFixture opens a copy of each and reads
// everything back; a change to the format that FormatVersion does not
// announce makes it fail.
//
// To write the fixture of the current version (after raising
// diskstore.FormatVersion, or when there is none):
//
//	go test ./diskstore -run TestFormatFixture -update
//
// Keep the fixtures of older versions: Open must read each (after
// converting it) or refuse it with an error naming its version.
var update = flag.Bool("update", false, "write testdata/format<FormatVersion> from the generator in fixture_test.go")

// fixture is what a fixture store holds, as the Store reads it.
type fixture struct {
	FormatVersion int                        `json:"format_version"`
	Log           []cairn.Event              `json:"log"`      // ReadAll
	Streams       []string                   `json:"streams"`  // Streams
	Versions      map[string]string          `json:"versions"` // StreamVersion, or its error
	Reads         map[string][]cairn.Event   `json:"reads"`    // ReadStream forward
	Errors        map[string]string          `json:"errors"`   // ReadStream's error
	Snapshots     map[string]*cairn.Snapshot `json:"snapshots"`
	ReadModels    map[string][]cairn.Entry   `json:"read_models"`
	Retry         cairn.AppendResult         `json:"retry"` // the first append's result
	// Index holds the lists of fixtureLists, by "kind value" (since
	// format 3; an older store's lists are those of its events, filed
	// when Open converts it).
	Index map[string][]fixtureEntry `json:"index,omitempty"`
}

// fixtureEntry is an entry of an index list, as ReadIndex returns it.
type fixtureEntry struct {
	Number   int64  `json:"number"`
	Position uint64 `json:"position"`
	Found    bool   `json:"found"`
}

// fixtureLists are the index lists the fixture reads: every list an
// event of the fixture is filed under.
var fixtureLists = []cairn.IndexKey{
	{Kind: cairn.IndexCategory, Value: "account"}, {Kind: cairn.IndexCategory, Value: "order"},
	{Kind: cairn.IndexType, Value: "Opened"}, {Kind: cairn.IndexType, Value: "Deposited"}, {Kind: cairn.IndexType, Value: "Withdrawn"},
	{Kind: cairn.IndexType, Value: "Placed"}, {Kind: cairn.IndexType, Value: "E"}, {Kind: cairn.IndexType, Value: "Paid"},
	{Kind: cairn.IndexType, Value: "Shipped"}, {Kind: cairn.IndexType, Value: "Recreated"},
	{Kind: cairn.IndexTag, Value: "tenant:1"}, {Kind: cairn.IndexTag, Value: "vip"}, {Kind: cairn.IndexTag, Value: "gone"},
	{Kind: cairn.IndexStreams}, {Kind: cairn.IndexCategoryStreams, Value: "account"}, {Kind: cairn.IndexCategoryStreams, Value: "order"},
	{Kind: cairn.IndexCorrelation, Value: "c-1"},
}

func listName(k cairn.IndexKey) string { return k.Kind.String() + " " + k.Value }

var (
	fixtureStreams = []string{"account-1", "account-2", "deleted", "order-1", "tombstoned", "truncated"}
	fixtureTables  = []string{"orders", "totals"}
)

// fixtureFirst is the fixture's first append, repeated by the test to see
// the retry record.
func fixtureFirst() []cairn.EventData {
	a := cairn.EventData{Type: "Opened", ContentType: cairn.ContentJSON, Data: []byte(`{"owner":"ada"}`), Metadata: []byte(`{"by":"clerk"}`), Tags: []string{"tenant:1", "vip"}}
	b := cairn.EventData{Type: "Deposited", ContentType: cairn.ContentBinary, Data: []byte{0, 1, 2, 0xff}}
	a.ID = [16]byte{0x01, 0x93, 15: 1}
	b.ID = [16]byte{0x01, 0x93, 15: 2}
	return []cairn.EventData{a, b}
}

func fixtureEv(n byte, typ string) cairn.EventData {
	e := cairn.EventData{ID: [16]byte{0x01, 0x94, 15: n}, Type: typ, Data: fmt.Appendf(nil, `{"n":%d}`, n)}
	switch n {
	case 4, 7: // events that compaction removes, filed under a tag
		e.Tags = []string{"gone"}
	case 10:
		e.Metadata = []byte(`{"$correlationId":"c-1"}`)
	}
	return e
}

// writeFixture writes the fixture store on fs: streams, a multi-stream
// batch, commits with projections (read-model rows written and deleted),
// a delete, a tombstone, a truncation, a snapshot and a compaction, then,
// in a second session, writes that only the log holds when the store is
// left as a crash would leave it, so that Open replays them.
func writeFixture(fs *vfs.MemFS) error {
	ctx := context.Background()
	opts := diskstore.Options{FS: fs, MemTableBytes: 1 << 20, CacheBytes: 1 << 20}
	db, err := diskstore.Open("store", opts)
	if err != nil {
		return err
	}
	s := cairn.NewStore(db, cairn.Options{})
	project := func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
		for _, e := range events {
			if err := tx.Put(ctx, "orders", e.StreamID, []byte(e.Type)); err != nil {
				return err
			}
		}
		if err := tx.Put(ctx, "totals", "count", fmt.Appendf(nil, "%d", len(events))); err != nil {
			return err
		}
		return tx.Delete(ctx, "totals", "stale")
	}
	steps := []func() error{
		func() error { _, err := s.Append(ctx, "account-1", cairn.NoStream, fixtureFirst()...); return err },
		func() error {
			_, err := s.AppendBatch(ctx,
				cairn.AppendRequest{Stream: "account-2", Expected: cairn.NoStream, Events: []cairn.EventData{fixtureEv(1, "Opened")}},
				cairn.AppendRequest{Stream: "account-1", Expected: cairn.Exact(1), Events: []cairn.EventData{fixtureEv(2, "Withdrawn")}})
			return err
		},
		func() error {
			_, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "order-1", Expected: cairn.NoStream, Events: []cairn.EventData{fixtureEv(3, "Placed")}},
				func(ctx context.Context, tx cairn.Tx, _ []cairn.Event) error {
					return tx.Put(ctx, "totals", "stale", []byte("x"))
				})
			return err
		},
		func() error {
			_, err := s.Append(ctx, "deleted", cairn.NoStream, fixtureEv(4, "E"), fixtureEv(5, "E"))
			return err
		},
		func() error { _, err := s.Append(ctx, "tombstoned", cairn.NoStream, fixtureEv(6, "E")); return err },
		func() error {
			_, err := s.Append(ctx, "truncated", cairn.NoStream, fixtureEv(7, "E"), fixtureEv(8, "E"), fixtureEv(9, "E"))
			return err
		},
		func() error { return s.DeleteStream(ctx, "deleted", cairn.Exact(1)) },
		func() error { return s.TombstoneStream(ctx, "tombstoned", cairn.Any) },
		func() error { return s.TruncateStream(ctx, "truncated", 1) },
		func() error {
			return s.CommitSnapshot(ctx, cairn.Snapshot{StreamID: "account-1", Version: 2, Data: []byte(`{"balance":3}`), Metadata: []byte("v1")})
		},
		func() error { return s.Compact(ctx) },
		s.Close,
		// The second session: its writes are in the log only.
		func() error {
			db, err = diskstore.Open("store", opts)
			s = cairn.NewStore(db, cairn.Options{})
			return err
		},
		func() error {
			_, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "order-1", Expected: cairn.Exact(0), Events: []cairn.EventData{fixtureEv(10, "Paid"), fixtureEv(11, "Shipped")}}, project)
			return err
		},
		func() error { return s.TruncateStream(ctx, "truncated", 2) },
		func() error {
			_, err := s.Append(ctx, "deleted", cairn.NoStream, fixtureEv(12, "Recreated"))
			return err
		},
		func() error {
			return s.CommitSnapshot(ctx, cairn.Snapshot{StreamID: "order-1", Version: 2, Data: []byte("shipped")})
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("step %d: %w", i, err)
		}
	}
	return nil
}

// readFixture reads everything the store holds.
func readFixture(s *cairn.Store) (fixture, error) {
	ctx := context.Background()
	fx := fixture{FormatVersion: diskstore.FormatVersion, Versions: map[string]string{}, Reads: map[string][]cairn.Event{},
		Snapshots: map[string]*cairn.Snapshot{}, ReadModels: map[string][]cairn.Entry{}, Errors: map[string]string{}}
	all, err := s.ReadAll(ctx, 0, 1000, cairn.Forward)
	if err != nil {
		return fx, fmt.Errorf("ReadAll: %w", err)
	}
	fx.Log = all
	for id, err := range s.Streams(ctx) {
		if err != nil {
			return fx, fmt.Errorf("Streams: %w", err)
		}
		fx.Streams = append(fx.Streams, id)
	}
	// A stream's version and events, or the sentinel its read fails with.
	outcome := func(err error) string {
		for _, s := range []error{cairn.ErrStreamNotFound, cairn.ErrStreamDeleted} {
			if errors.Is(err, s) {
				return s.Error()
			}
		}
		return ""
	}
	for _, id := range fixtureStreams {
		v, err := s.StreamVersion(ctx, id)
		if o := outcome(err); o != "" {
			fx.Versions[id] = o
		} else if err != nil {
			return fx, fmt.Errorf("StreamVersion(%s): %w", id, err)
		} else {
			fx.Versions[id] = fmt.Sprint(v)
		}
		events, err := s.ReadStream(ctx, id, 0, 1000, cairn.Forward)
		if o := outcome(err); o != "" {
			fx.Errors[id] = o
		} else if err != nil {
			return fx, fmt.Errorf("ReadStream(%s): %w", id, err)
		}
		fx.Reads[id] = events
		snap, ok, err := s.GetSnapshot(ctx, id, 0, math.MaxInt64)
		if err != nil {
			return fx, fmt.Errorf("GetSnapshot(%s): %w", id, err)
		}
		if ok {
			fx.Snapshots[id] = &snap
		}
	}
	fx.Index = map[string][]fixtureEntry{}
	byPos := map[uint64]cairn.Event{}
	for _, e := range all {
		byPos[e.Position] = e
	}
	for _, k := range fixtureLists {
		entries, err := s.ReadIndex(ctx, k, 0, 1000, cairn.Forward)
		if err != nil {
			return fx, fmt.Errorf("ReadIndex(%s): %w", listName(k), err)
		}
		list := []fixtureEntry{}
		for _, e := range entries {
			if w, ok := byPos[e.Position]; e.Found != ok || (ok && (e.Event.Position != e.Position || e.Event.ID != w.ID)) {
				return fx, fmt.Errorf("ReadIndex(%s): entry %d at position %d (found %v) holds the event at %d, which ReadAll returns: %v", listName(k), e.Number, e.Position, e.Found, e.Event.Position, ok)
			}
			list = append(list, fixtureEntry{Number: e.Number, Position: e.Position, Found: e.Found})
		}
		fx.Index[listName(k)] = list
	}
	for _, table := range fixtureTables {
		fx.ReadModels[table] = []cairn.Entry{}
		for e, err := range s.ReadModel(ctx, table, "") {
			if err != nil {
				return fx, fmt.Errorf("ReadModel(%s): %w", table, err)
			}
			fx.ReadModels[table] = append(fx.ReadModels[table], e)
		}
	}
	return fx, nil
}

// TestFormatFixture opens the fixture of every format version in testdata
// and reads it back: the current version's must hold exactly what its
// generator wrote; an older version's must read the same or be refused
// with an error that names its version.
func TestFormatFixture(t *testing.T) {
	current := filepath.Join("testdata", fmt.Sprintf("format%d", diskstore.FormatVersion))
	if *update {
		generateFixture(t, current)
	}
	dirs, err := filepath.Glob(filepath.Join("testdata", "format*"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(dirs, current) {
		t.Fatalf("there is no store in on-disk format version %d in %s. If you raised diskstore.FormatVersion, keep the fixtures of the older versions and write this one with\n\tgo test ./diskstore -run TestFormatFixture -update", diskstore.FormatVersion, current)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			checkFixture(t, dir, dir == current)
		})
	}
}

func checkFixture(t *testing.T, dir string, current bool) {
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want fixture
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	changed := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("The store in %s, written in on-disk format version %d, no longer reads back as it was written: the on-disk format changed.\n"+
			"If that is intended, raise diskstore.FormatVersion (now %d), make Open convert stores of version %d (or refuse them with an error "+
			"naming their version), keep this fixture, and write one for the new version with\n\tgo test ./diskstore -run TestFormatFixture -update\n"+
			"If it is not, the change broke the format: undo it.\n\n%s",
			dir, want.FormatVersion, diskstore.FormatVersion, want.FormatVersion, fmt.Sprintf(format, args...))
	}
	// Open writes (it may replay the log into the index and rewrites
	// pebble's manifest): it opens a copy.
	fs := vfs.NewMem()
	if err := copyToFS(filepath.Join(dir, "store"), fs, "store"); err != nil {
		t.Fatal(err)
	}
	db, err := diskstore.Open("store", diskstore.Options{FS: fs})
	if err != nil {
		if !current && strings.Contains(err.Error(), fmt.Sprintf("format version %d", want.FormatVersion)) {
			return // refused, saying why
		}
		changed("Open: %v", err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	defer s.Close()
	got, err := readFixture(s)
	if err != nil {
		changed("%v", err)
	}
	got.FormatVersion = want.FormatVersion
	got.Retry = want.Retry
	if want.Index == nil {
		// A store older than the index: Open filed every event it holds,
		// numbered in position order.
		if err := wantLogIndex(got); err != nil {
			changed("the index Open built: %v", err)
		}
		got.Index = nil
	}
	if diff := firstDiff(normalise(t, got), normalise(t, want), ""); diff != "" {
		changed("What was read differs from %s at %s", filepath.Join(dir, "expected.json"), diff)
	}
	// The retry record of the first append: repeating it changes nothing.
	res, err := s.Append(context.Background(), "account-1", cairn.NoStream, fixtureFirst()...)
	if err != nil || res != want.Retry {
		changed("repeating the first append = %+v, %v; want %+v, recognised by its first event's id", res, err, want.Retry)
	}
}

// wantLogIndex checks that the lists of fx file exactly the events of its
// log that cairn.IndexKeys files under them, numbered from 0.
func wantLogIndex(fx fixture) error {
	want := map[string][]fixtureEntry{}
	for _, e := range fx.Log {
		for _, k := range cairn.IndexKeys(nil, e.StreamID, e.Version, &e.EventData) {
			n := listName(k)
			want[n] = append(want[n], fixtureEntry{Number: int64(len(want[n])), Position: e.Position, Found: true})
		}
	}
	for _, k := range fixtureLists {
		n := listName(k)
		if got := fx.Index[n]; !slices.Equal(got, want[n]) {
			return fmt.Errorf("list %s holds %+v, want %+v", n, got, want[n])
		}
	}
	return nil
}

// normalise gives the JSON form of fx, in which times are compared as
// text and nil and empty byte slices alike.
func normalise(t *testing.T, fx fixture) any {
	t.Helper()
	b, err := json.Marshal(fx)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// firstDiff describes the first difference between the JSON values got
// and want, at path; "" when they are equal.
func firstDiff(got, want any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			break
		}
		keys := slices.Sorted(maps.Keys(w))
		for k := range g {
			if _, ok := w[k]; !ok {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			if d := firstDiff(g[k], w[k], path+"."+k); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok {
			break
		}
		for i := range max(len(g), len(w)) {
			if i >= len(g) || i >= len(w) {
				return fmt.Sprintf("%s: %d elements, want %d", path, len(g), len(w))
			}
			if d := firstDiff(g[i], w[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	}
	if reflect.DeepEqual(got, want) {
		return ""
	}
	g, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	return fmt.Sprintf("%s: read %s, want %s", path, g, wb)
}

// generateFixture writes the fixture store into dir (replacing it). The
// store is written on an in-memory filesystem and copied out: on disk its
// log segments would be allocated ahead of the frames (64 KiB at least).
func generateFixture(t *testing.T, dir string) {
	mem := vfs.NewCrashableMem()
	if err := writeFixture(mem); err != nil {
		t.Fatal(err)
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	// What it holds, read from a copy (reading replays the log).
	read := crashed.CrashClone(vfs.CrashCloneCfg{})
	db, err := diskstore.Open("store", diskstore.Options{FS: read})
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	fx, err := readFixture(s)
	if err != nil {
		t.Fatal(err)
	}
	if fx.Retry, err = s.Append(context.Background(), "account-1", cairn.NoStream, fixtureFirst()...); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := copyFromFS(crashed, "store", filepath.Join(dir, "store")); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(fx, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "expected.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", dir)
}

// copyFromFS copies the tree at src on fs to dst on the disk, leaving out
// pebble's lock file.
func copyFromFS(fs vfs.FS, src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	names, err := fs.List(src)
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		p := fs.PathJoin(src, name)
		st, err := fs.Stat(p)
		if err != nil {
			return err
		}
		if st.IsDir() {
			if err := copyFromFS(fs, p, filepath.Join(dst, name)); err != nil {
				return err
			}
			continue
		}
		if name == "LOCK" {
			continue
		}
		f, err := fs.Open(p)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		_, err = io.Copy(&buf, f)
		if err = errors.Join(err, f.Close()); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, name), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// copyToFS copies the tree at src on the disk to dst on fs.
func copyToFS(src string, fs vfs.FS, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := fs.PathJoin(dst, filepath.ToSlash(rel))
		if d.IsDir() {
			return fs.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := fs.Create(to, vfs.WriteCategoryUnspecified)
		if err != nil {
			return err
		}
		_, err = f.Write(b)
		return errors.Join(err, f.Sync(), f.Close())
	})
}
