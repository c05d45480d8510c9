package export_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/export"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
)

func openDisk(t *testing.T) *cairn.Store {
	t.Helper()
	db, err := diskstore.Open(filepath.Join(t.TempDir(), "data"), diskstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t *testing.T) *cairn.Store {
	t.Helper()
	db, err := pgstore.Open(ctx, pgtest.URL(t), pgstore.Options{Schema: pgtest.Schema(t, "export_test")})
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

// From the embedded engine to PostgreSQL, to memory and back to the
// embedded engine, nothing is lost: each export equals the first but for
// positions, creation times and placeholders, and every stream reads the
// same. The source was compacted after some of its truncations and deletes
// (their events are gone, so the import writes placeholders) and not after
// others (their events are exported, replayed and removed again).
func TestAcrossEngines(t *testing.T) {
	src := openDisk(t)
	fill(t, src)
	if err := src.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		for _, s := range []string{"cut2", "gone2"} {
			if _, err := src.Append(ctx, s, cairn.Any, cairn.EventData{Type: "E", Data: fmt.Appendf(nil, `{"i":%d}`, i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := src.TruncateStream(ctx, "cut2", 4); err != nil {
		t.Fatal(err)
	}
	if err := src.DeleteStream(ctx, "gone2", cairn.Any); err != nil {
		t.Fatal(err)
	}
	a := exportOf(t, src, export.Options{})
	streams := streamsOf(t, a)
	if !slices.Contains(streams, "cut") || slices.Contains(streams, "gone") {
		t.Fatalf("after compaction the export should hold cut and not gone: %v", streams)
	}

	prev := a
	for _, step := range []struct {
		name string
		open func(*testing.T) *cairn.Store
	}{
		{"embedded → PostgreSQL", openPostgres},
		{"PostgreSQL → memory", func(*testing.T) *cairn.Store { return memstore.Open() }},
		{"memory → embedded", openDisk},
	} {
		dst := step.open(t)
		importInto(t, dst, prev, export.ImportOptions{})
		next := exportOf(t, dst, export.Options{})
		sameExports(t, step.name, a, next)
		sameReads(t, src, dst, streams)
		prev = next
	}
}

// An import into PostgreSQL interrupted half-way and run again holds every
// event once.
func TestInterruptedImportIntoPostgres(t *testing.T) {
	src := memstore.Open()
	fill(t, src)
	exp := exportOf(t, src, export.Options{})
	dst := openPostgres(t)
	half := len(exp) / 2
	if _, err := export.Import(ctx, dst, &failingReader{r: bytesReader(exp), left: half}, export.ImportOptions{BatchEvents: 8}); err == nil {
		t.Fatal("the import over a failing reader succeeded")
	}
	importInto(t, dst, exp, export.ImportOptions{BatchEvents: 50})
	if got, want := logLen(t, dst), logLen(t, src); got != want {
		t.Fatalf("the target's log holds %d events, the source's %d", got, want)
	}
	sameExports(t, "PostgreSQL after an interrupted import", exp, exportOf(t, dst, export.Options{}))
	sameReads(t, src, dst, streamsOf(t, exp))
}
