package projections

import (
	"context"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
)

// FuzzParseTag parses arbitrary checkpoint tags, which a projection reads
// back from the metadata of its own events: a tag either parses or gives an
// error, never panics, and a tag that parses says the same when written
// again and read back. CI runs it for a few seconds (.ci/run).
func FuzzParseTag(f *testing.F) {
	for _, s := range []string{
		`{"$v":"3:0:1:1","$c":41,"$p":41}`,
		`{"$v":"3:2:7:1","$s":{"order-1":5}}`,
		`{"$v":"3:0:1:1","$c":-1,"$p":-1,"$shared":{"n":1}}`,
		`{"$v":"1:2","$c":1}`,
		`{"$v":"a:b:c:1","$c":1}`,
		`{"$v":"1:2:3:1","$c":-2}`,
		`{"$v":"1:2:3:1"}`,
		`{"$v":"1:2:3:1","$s":{"a":1,"b":2}}`,
		`[]`, ``, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, meta []byte) {
		m, _, err := parseTag(meta)
		if err != nil {
			return
		}
		again, _, err := parseTag(m.metadata(nil))
		if err != nil {
			t.Fatalf("%s parses as %+v, which does not parse when written: %v", meta, m, err)
		}
		if again != m {
			t.Fatalf("%s parses as %+v, and back as %+v", meta, m, again)
		}
	})
}

// FuzzResolveLink resolves arbitrary link data against a stream of three
// events: it finds one of them, or nothing, and never fails or panics.
func FuzzResolveLink(f *testing.F) {
	store := cairn.NewStore(memstore.New(), cairn.Options{})
	f.Cleanup(func() { store.Close() })
	ctx := context.Background()
	for range 3 {
		if _, err := store.Append(ctx, "order-1", cairn.Any, cairn.EventData{Type: "E", Data: []byte(`{}`)}); err != nil {
			f.Fatal(err)
		}
	}
	for _, s := range []string{"0@order-1", "2@order-1", "3@order-1", "1@", "@order-1", "-1@order-1", "1@nope", "x@y@z", "99999999999999999999@order-1", "1@\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, ok, err := resolveLink(ctx, store, data)
		if err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		if ok && (e.StreamID != "order-1" || e.Version < 0 || e.Version > 2) {
			t.Fatalf("%q resolved to %s@%d", data, e.StreamID, e.Version)
		}
	})
}
