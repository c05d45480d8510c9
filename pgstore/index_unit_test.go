package pgstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
)

// TestIndexKindsStored: the schema stores cairn.IndexKind's numbers, and
// query_scans names the type and tag lists by them.
func TestIndexKindsStored(t *testing.T) {
	kinds := map[cairn.IndexKind]int16{
		cairn.IndexCategory: 1, cairn.IndexType: 2, cairn.IndexTag: 3,
		cairn.IndexStreams: 4, cairn.IndexCategoryStreams: 5, cairn.IndexCorrelation: 6,
	}
	for k, n := range kinds {
		if int16(k) != n {
			t.Errorf("%v is %d, stored as %d: the stored index would change meaning", k, k, n)
		}
	}
	if kindType != 2 || kindTag != 3 {
		t.Errorf("type and tag kinds %d, %d; query_scans uses 2 and 3", kindType, kindTag)
	}
}

// TestKeyValue: names are stored as they are; values with control
// characters or longer than 512 bytes as a digest, which no name can be.
func TestKeyValue(t *testing.T) {
	for _, v := range []string{"", "order", "é", strings.Repeat("x", 512)} {
		if got := keyValue(v); got != v {
			t.Errorf("keyValue(%q) = %q, want it unchanged", v, got)
		}
	}
	seen := map[string]string{}
	for _, v := range []string{"a\x00b", "a\x1fb", "\x7f", strings.Repeat("x", 513), strings.Repeat("x", 514)} {
		got := keyValue(v)
		if !strings.HasPrefix(got, "\x01") || len(got) != 65 {
			t.Errorf("keyValue(%q) = %q, want a digest", v, got)
		}
		if o, ok := seen[got]; ok {
			t.Errorf("keyValue(%q) = keyValue(%q)", v, o)
		}
		seen[got] = v
	}
}

// TestRunsAreIndexKeys expands the runs addRequest makes and compares them
// with cairn.IndexKeys event by event, for a stream's first append, a
// later one, and one whose first version is not known.
func TestRunsAreIndexKeys(t *testing.T) {
	events := []cairn.EventData{
		{Type: "A", Tags: []string{"x"}},
		{Type: "A", Tags: []string{"x"}},
		{Type: "B", Tags: []string{"x", "y"}, Metadata: []byte(`{"$correlationId":"c"}`)},
		{Type: "A"},
		{Type: "A", Tags: []string{"y", "y"}},
		{Type: "A", Tags: []string{"y"}},
		{Type: "B", Metadata: []byte(`{"$correlationId":"c"}`)},
	}
	for _, stream := range []string{"order-1", "nocat", "$sys"} {
		for _, first := range []int64{-1, 0, 5} {
			for _, version0 := range []bool{true, false} {
				if first >= 0 && version0 != (first == 0) {
					continue
				}
				var r indexRuns
				keys := r.addRequest(1, 3, stream, first, events)
				got := make([][]cairn.IndexKey, len(events))
				for i := range r.kind {
					if r.first[i] && !version0 {
						continue
					}
					for n := r.off[i]; n < r.off[i]+r.count[i]; n++ {
						got[n-3] = append(got[n-3], cairn.IndexKey{Kind: cairn.IndexKind(r.kind[i]), Value: r.value[i]})
					}
				}
				var all []cairn.IndexKey
				for i := range events {
					v := max(first, 0) + int64(i)
					if first < 0 && !version0 {
						v = 1 + int64(i)
					}
					want := cairn.IndexKeys(nil, stream, v, &events[i])
					cmp := func(a, b cairn.IndexKey) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) }
					slices.SortFunc(want, cmp)
					slices.SortFunc(got[i], cmp)
					if !slices.Equal(got[i], want) {
						t.Errorf("%s, first %d (version 0: %v), event %d: filed under %v, want %v", stream, first, version0, i, got[i], want)
					}
					all = append(all, want...)
				}
				for _, k := range all {
					if !slices.Contains(keys, k) {
						t.Errorf("%s, first %d: key %v missing from the append's keys %v", stream, first, k, keys)
					}
				}
			}
		}
	}
}

// TestItemMatchesIsQueryMatches compares the schema's item_matches, which
// reads and conditions apply, with cairn.QueryItem.Matches, whose rule for
// the events of system streams it follows too.
func TestItemMatchesIsQueryMatches(t *testing.T) {
	ctx := context.Background()
	s, pool := migratedTo(t, len(migrations))
	items := []cairn.QueryItem{
		{Types: []string{"A"}}, {Types: []string{"A", "B"}}, {Tags: []string{"x"}}, {Tags: []string{"x", "y"}},
		{Types: []string{"B"}, Tags: []string{"y"}}, {Types: []string{"C"}, Tags: []string{"x"}},
	}
	events := []cairn.EventData{
		{Type: "A"}, {Type: "B", Tags: []string{"x"}}, {Type: "A", Tags: []string{"y", "x"}}, {Type: "B", Tags: []string{"y"}},
		{Type: "C", Tags: []string{"x", "x"}}, {Type: "A", Tags: []string{}},
	}
	for _, stream := range []string{"order-1", "$sys"} {
		for _, it := range items {
			for _, e := range events {
				var got bool
				var tags *string
				if e.Tags != nil {
					tags = joined(e.Tags)
					if len(e.Tags) == 0 {
						empty := ""
						tags = &empty
					}
				}
				if err := pool.QueryRow(ctx, `SELECT `+s.fn("item_matches")+`($1, $2, $3, $4, $5)`,
					stream, e.Type, tags, joined(it.Types), joined(it.Tags)).Scan(&got); err != nil {
					t.Fatal(err)
				}
				want := it.Matches(&cairn.Event{EventData: e, StreamID: stream})
				if got != want {
					t.Errorf("item_matches(%s, %+v, %+v) = %v, want %v", stream, e, it, got, want)
				}
			}
		}
	}
}

// TestRunMerger: runs of a key that meet, from one append or the next,
// become one; each is numbered after the entries of its key before it in
// the write; runs marked first are left out.
func TestRunMerger(t *testing.T) {
	var a, b indexRuns
	a.add(0, cairn.IndexKey{Kind: cairn.IndexType, Value: "A"}, 0, false)
	a.count[0] = 2
	a.add(0, cairn.IndexKey{Kind: cairn.IndexStreams}, 0, true)
	a.add(0, cairn.IndexKey{Kind: cairn.IndexTag, Value: "x"}, 1, false)
	b.add(0, cairn.IndexKey{Kind: cairn.IndexType, Value: "A"}, 0, false) // meets a's at 2
	b.add(0, cairn.IndexKey{Kind: cairn.IndexTag, Value: "x"}, 1, false)  // at 3: not after a's, which ends at 2
	var m runMerger
	m.add(&a, 0)
	m.add(&b, 2)
	got := m.out
	want := filedRuns{
		kind:  []int16{kindType, kindTag, kindTag},
		value: []string{"A", "x", "x"},
		nrel:  []int64{0, 0, 1},
		off:   []int64{0, 1, 3},
		count: []int32{3, 1, 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("merged %+v, want %+v", got, want)
	}
}
