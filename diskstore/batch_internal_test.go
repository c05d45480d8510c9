package diskstore

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// BenchmarkIndexWritesApply: the index writes of a group of 256
// single-event appends (a run record and a retry record each) added to a
// batch in key order.
func BenchmarkIndexWritesApply(b *testing.B) {
	db, err := Open(b.TempDir(), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var w indexWrites
	var keys [][]byte
	for i := range 256 {
		id := uuid.Must(uuid.NewV7())
		keys = append(keys, appendRunKey(nil, fmt.Sprint("bench-0badcafe-w2-", (i*37)%256), int64(i)), append([]byte{prefixID}, id[:]...))
	}
	value := make([]byte, 20)
	for b.Loop() {
		for _, k := range keys {
			w.add(k, value, false)
		}
		bt := db.pdb.NewBatch()
		if err := w.apply(bt); err != nil {
			b.Fatal(err)
		}
		_ = bt.Close()
	}
}

// TestIndexWritesKeepOrderOfAKey: a group's index writes reach the batch
// in key order, and writes to one key in the order they were made, so
// that the last one wins (a stream deleted, then appended to in the same
// group, ends up not deleted).
func TestIndexWritesKeepOrderOfAKey(t *testing.T) {
	pdb, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer pdb.Close()
	var w indexWrites
	w.add([]byte("tk"), []byte("first"), false)
	w.add([]byte("tz"), []byte("z"), false)
	w.add([]byte("tk"), nil, true)
	w.add([]byte("ta"), []byte("a"), false)
	w.add([]byte("tk"), []byte("last"), false)
	w.add([]byte("tz"), nil, true)
	b := pdb.NewBatch()
	if err := w.apply(b); err != nil {
		t.Fatal(err)
	}
	var got []string
	r := b.Reader()
	for {
		kind, k, v, ok, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, fmt.Sprintf("%v %s=%s", kind, k, v))
	}
	want := []string{"SET ta=a", "SET tk=first", "DEL tk=", "SET tk=last", "SET tz=z", "DEL tz="}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("batch holds\n%q\nwant\n%q", got, want)
	}
	if len(w.recs) != 0 || len(w.buf) != 0 {
		t.Fatalf("apply left %d writes (%d bytes) behind", len(w.recs), len(w.buf))
	}
	if err := pdb.Apply(b, nil); err != nil {
		t.Fatal(err)
	}
	v, closer, err := pdb.Get([]byte("tk"))
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if string(v) != "last" {
		t.Fatalf("tk = %q, want the last write", v)
	}
	if _, _, err := pdb.Get([]byte("tz")); err == nil {
		t.Fatal("tz is there after its last write deleted it")
	}
}

// TestIndexWritesSortedByKind: writes of several kinds of key, some kinds
// made in key order and some not, with repeated keys,
// reach the batch in key order, and writes to one key in the order they
// were made, as a stable sort of them all would put them.
func TestIndexWritesSortedByKind(t *testing.T) {
	pdb, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer pdb.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var w indexWrites
	for round := range 200 {
		type write struct {
			key, value string
			del        bool
		}
		var made []write
		ordered := uint64(0)
		for i := range rng.IntN(300) {
			var key []byte
			switch rng.IntN(5) {
			case 0: // in the order made, like the retry records of the Store's IDs
				ordered += uint64(rng.IntN(3))
				key = binary.BigEndian.AppendUint64([]byte{prefixID}, ordered)
			case 1:
				key = appendRunKey(nil, fmt.Sprint("s", rng.IntN(20)), int64(rng.IntN(4)))
			case 2:
				key = []byte{byte(rng.IntN(256)), byte(rng.IntN(2))}
			case 3:
				key = metaKey(fmt.Sprint("s", rng.IntN(20)))
			default:
				key = []byte{prefixMeta}
			}
			wr := write{key: string(key), value: fmt.Sprint(round, ".", i), del: rng.IntN(4) == 0}
			if wr.del {
				wr.value = ""
			}
			made = append(made, wr)
			w.add(key, []byte(wr.value), wr.del)
		}
		want := slices.Clone(made)
		slices.SortStableFunc(want, func(x, y write) int { return strings.Compare(x.key, y.key) })
		b := pdb.NewBatch()
		if err := w.apply(b); err != nil {
			t.Fatal(err)
		}
		var got []write
		r := b.Reader()
		for {
			kind, k, v, ok, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, write{key: string(k), value: string(v), del: kind == pebble.InternalKeyKindDelete})
		}
		_ = b.Close()
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: batch holds\n%v\nwant\n%v", round, got, want)
		}
	}
}
