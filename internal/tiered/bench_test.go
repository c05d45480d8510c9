package tiered_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/cairndb/cairn/internal/tiered"
)

// indexBatch makes the entries of n appends of W2's shape from the
// appends' number first on: a run record under the stream (one of
// streams) and its version, and a record under the append's event ID
// (time-ordered), unsorted, in one arena.
func indexBatch(first, n, streams int) []tiered.Entry {
	arena := make([]byte, 0, n*48)
	es := make([]tiered.Entry, 0, 2*n)
	add := func(key, val []byte) {
		s := len(arena)
		arena = append(arena, key...)
		k := arena[s:len(arena):len(arena)]
		s = len(arena)
		arena = append(arena, val...)
		es = append(es, tiered.Entry{Key: k, Value: arena[s:len(arena):len(arena)]})
	}
	var key, val []byte
	for a := first; a < first+n; a++ {
		key = fmt.Appendf(key[:0], "rw%d", a%streams)
		key = append(key, 0)
		key = binary.BigEndian.AppendUint64(key, uint64(a/streams))
		val = binary.AppendUvarint(val[:0], uint64(a))
		val = binary.AppendUvarint(val, 1)
		val = binary.AppendUvarint(val, 1)
		val = binary.AppendUvarint(val, uint64(a)*300)
		val = binary.AppendUvarint(val, 300)
		add(key, val)
		key = append(key[:0], 'i')
		key = binary.BigEndian.AppendUint64(key, uint64(1<<60)+uint64(a)<<12)
		key = binary.BigEndian.AppendUint64(key, uint64(a)*0x9e3779b97f4a7c15)
		add(key, binary.BigEndian.AppendUint64(val[:0], uint64(a)))
	}
	return es
}

// BenchmarkAddAndMerge: the index entries of b.N appends (two each, as
// indexBatch makes them, for 256 streams) added in batches of 128Ki
// appends, and merged; ns/op is per append, the merges included, the
// sorting of the batches (the caller's work) not.
func BenchmarkAddAndMerge(b *testing.B) {
	const per = 128 << 10
	s, err := tiered.Open(b.TempDir(), tiered.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	for first := 0; first < b.N; first += per {
		b.StopTimer()
		es := indexBatch(first, min(per, b.N-first), 256)
		slices.SortFunc(es, func(a, b tiered.Entry) int { return bytes.Compare(a.Key, b.Key) })
		b.StartTimer()
		if err := s.Add(nil, slices.Values(es)); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Settle(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkGet: a lookup of an event ID's record in a set of 2Mi appends'
// entries, in the tables a run of that size leaves.
func BenchmarkGet(b *testing.B) {
	const appends, per = 2 << 20, 128 << 10
	s, err := tiered.Open(b.TempDir(), tiered.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var keys [][]byte
	for first := 0; first < appends; first += per {
		es := indexBatch(first, per, 256)
		keys = append(keys, es[1].Key, es[len(es)/2+1].Key)
		slices.SortFunc(es, func(a, b tiered.Entry) int { return bytes.Compare(a.Key, b.Key) })
		if err := s.Add(nil, slices.Values(es)); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Settle(); err != nil {
		b.Fatal(err)
	}
	sn := s.Snapshot()
	defer sn.Close()
	b.Logf("tables %s", sn)
	b.ResetTimer()
	for i := range b.N {
		if _, ok, err := sn.Get(keys[i%len(keys)]); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
