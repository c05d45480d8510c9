package tiered

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Any bytes, read as a table, give entries in strictly increasing order
// or an error; never a panic. A table that opens and reads whole gives
// back, written again, the same entries.
func FuzzReadTable(f *testing.F) {
	for _, n := range []int{0, 1, 5, 40} {
		fs := vfs.NewMem()
		w, _ := fs.Create("t", vfs.WriteCategoryUnspecified)
		tw := newTableWriter(w, 64)
		for i := range n {
			_ = tw.add(fmt.Appendf(nil, "key%03d", i), bytes.Repeat([]byte{byte(i)}, i%9), i%4 == 0)
		}
		_ = tw.finish()
		st, _ := w.Stat()
		b := make([]byte, st.Size())
		_, _ = w.ReadAt(b, 0)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		w, err := fs.Create("t", vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		tb, err := openTable(w, "t", int64(len(data)))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("not reported as damage: %v", err)
			}
			return
		}
		it := &tableIter{t: tb}
		type entry struct {
			k, v []byte
			tomb bool
		}
		var got []entry
		var last []byte
		for ok := it.first(); ok; ok = it.next() {
			if last != nil && bytes.Compare(it.key, last) <= 0 {
				t.Fatalf("key %q after %q", it.key, last)
			}
			last = bytes.Clone(it.key)
			got = append(got, entry{last, bytes.Clone(it.value), it.tomb})
		}
		verr := tb.verify()
		if verr != nil && !errors.Is(verr, ErrCorrupt) {
			t.Fatalf("not reported as damage: %v", verr)
		}
		if verr == nil && (it.err != nil || uint64(len(got)) != tb.entries) {
			t.Fatalf("verified, but reads %d entries of %d (%v)", len(got), tb.entries, it.err)
		}
		if it.err != nil {
			if !errors.Is(it.err, ErrCorrupt) {
				t.Fatalf("not reported as damage: %v", it.err)
			}
			return
		}
		for _, e := range got {
			var g tableIter
			g.t = tb
			if !g.seekGE(e.k) || !bytes.Equal(g.key, e.k) || !bytes.Equal(g.value, e.v) {
				t.Fatalf("seek %q: %q = %q (%v)", e.k, g.key, g.value, g.err)
			}
		}
		// Written again, the entries read back the same.
		w2, _ := fs.Create("u", vfs.WriteCategoryUnspecified)
		tw := newTableWriter(w2, 64)
		for _, e := range got {
			if err := tw.add(e.k, e.v, e.tomb); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.finish(); err != nil {
			t.Fatal(err)
		}
		st, _ := w2.Stat()
		tb2, err := openTable(w2, "u", st.Size())
		if err != nil {
			t.Fatal(err)
		}
		it2 := &tableIter{t: tb2}
		i := 0
		for ok := it2.first(); ok; ok = it2.next() {
			if i >= len(got) || !bytes.Equal(it2.key, got[i].k) || !bytes.Equal(it2.value, got[i].v) || it2.tomb != got[i].tomb {
				t.Fatalf("entry %d differs when written again", i)
			}
			i++
		}
		if it2.err != nil || i != len(got) {
			t.Fatalf("written again: %d entries (%v), want %d", i, it2.err, len(got))
		}
	})
}
