package pgstore

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"github.com/cairndb/cairn"
)

// The index.
//
// The index_runs table holds the lists of cairn's index (cairn.IndexReader)
// run-length encoded: a row is a run of entries of one key at consecutive
// numbers and consecutive positions (key, first number, first position,
// count). An append of 1000 events of one type to one stream adds two rows
// (its type and its category), not 2000. The engine computes the keys of
// every event in Go with cairn.IndexKeys, so that the schema knows nothing
// of categories, types or correlation ids, and sends them with the events,
// merged where they meet and numbered within the write (runMerger); the
// schema places them at the write's positions and numbers them after the
// last entry of their key (the insert into index_runs of append_group,
// append_one and Store.indexSQL). append_one lengthens the key's last run
// instead when the write's first run of the key continues it (see
// migration 8), so that the lone appends of one writer, or of many
// writers of one category and type, keep a row per key; a run may then end
// in entries not durable yet, and readers cut it at the durable mark. For
// a group of appends that are not all written, only the schema knows which
// runs to file, and merges them itself (index_merge). That happens under
// the head row's lock, in the transaction that writes the events: see
// migrations 6, 7 and 8 and the package documentation.

// Kinds as the schema stores them: cairn.IndexKind's numbers are part of
// the stored format. TestIndexKindsStored holds them.
const (
	kindType = int16(cairn.IndexType)
	kindTag  = int16(cairn.IndexTag)
)

// maxKeyValue is the longest key value stored as it is; longer ones, and
// ones with control characters, are stored as a digest (see keyValue).
const maxKeyValue = 512

// keyValue is the value under which key is stored. Types, tags and
// categories are validated names (no control characters, at most 512
// bytes) and are stored as they are. A correlation id comes from an event's
// metadata and may be any string: one that is long or holds a control
// character (NUL cannot be stored in text) is stored as "\x01" followed by
// the hex SHA-256 of its bytes, which no stored-as-is value can be.
func keyValue(v string) string {
	if len(v) <= maxKeyValue {
		ok := true
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] == 0x7f {
				ok = false
				break
			}
		}
		if ok {
			return v
		}
	}
	sum := sha256.Sum256([]byte(v))
	return "\x01" + hex.EncodeToString(sum[:])
}

// indexRuns are runs of index entries, one array per column, relative to
// the events of a write: a run files events off … off+count-1 (0-based,
// among the write's events) under a key. first marks a run that files an
// append's first event under a key that event has only when it is version
// 0 of its stream (the stream lists), kept only when it is.
type indexRuns struct {
	req   []int32 // the request, 1-based (append_group only)
	kind  []int16
	value []string
	off   []int32
	count []int32
	first []bool
}

func (r *indexRuns) add(req int32, k cairn.IndexKey, off int32, first bool) int {
	r.req = append(r.req, req)
	r.kind = append(r.kind, int16(k.Kind))
	r.value = append(r.value, keyValue(k.Value))
	r.off = append(r.off, off)
	r.count = append(r.count, 1)
	r.first = append(r.first, first)
	return len(r.kind) - 1
}

// filedRuns are runs as the schema files them: in position order,
// merged where runs of a key meet, each numbered after the entries of its
// key earlier in the write (nrel).
type filedRuns struct {
	kind  []int16
	value []string
	nrel  []int64
	off   []int64
	count []int32
}

type runKey struct {
	kind  int16
	value string
}

// runMerger merges runs into filedRuns.
type runMerger struct {
	out   filedRuns
	last  map[runKey]int   // key → its last run in out
	total map[runKey]int64 // key → its entries in out
}

// add adds the runs of r that are not marked first, their offsets moved by
// base. Runs must come in the order of their offsets.
func (m *runMerger) add(r *indexRuns, base int64) {
	if m.last == nil {
		m.last = make(map[runKey]int, len(r.kind))
		m.total = make(map[runKey]int64, len(r.kind))
	}
	o := &m.out
	for i := range r.kind {
		if r.first[i] {
			continue
		}
		k := runKey{r.kind[i], r.value[i]}
		off, n := base+int64(r.off[i]), r.count[i]
		if j, ok := m.last[k]; ok && o.off[j]+int64(o.count[j]) == off {
			o.count[j] += n
		} else {
			m.last[k] = len(o.kind)
			o.kind = append(o.kind, k.kind)
			o.value = append(o.value, k.value)
			o.nrel = append(o.nrel, m.total[k])
			o.off = append(o.off, off)
			o.count = append(o.count, n)
		}
		m.total[k] += int64(n)
	}
}

// runBuilder files the events of one append into runs.
type runBuilder struct {
	runs  *indexRuns
	req   int32
	base  int32                  // offset of the append's first event in the write
	open  map[cairn.IndexKey]int // key → its last run
	prev  []cairn.IndexKey       // keys of the last event
	prevR []int                  // their runs
	keys  []cairn.IndexKey       // scratch
}

// addRequest adds the runs of the events of one append to r: req is the
// request's number in the write (1-based), base the offset of its first
// event among the write's events. When first is known (0 or more), it is
// the version of the first event; otherwise (-1) the keys that the first
// event has only at version 0 go in runs marked first. It returns the
// distinct keys of the append, in no particular order.
//
// cairn.IndexKeys depends on the version only through whether it is 0:
// every event after the first has a version of 1 or more, whatever the
// stream's, and is filed as such.
func (r *indexRuns) addRequest(req int32, base int32, stream string, first int64, events []cairn.EventData) []cairn.IndexKey {
	b := runBuilder{runs: r, req: req, base: base, open: make(map[cairn.IndexKey]int)}
	var keys []cairn.IndexKey
	for i := range events {
		e := &events[i]
		version := max(first, 0) + int64(i)
		if first < 0 && i == 0 {
			version = 1
		}
		b.keys = cairn.IndexKeys(b.keys[:0], stream, version, e)
		if i == 0 && first < 0 {
			// The keys the first event has only at version 0.
			for _, k := range cairn.IndexKeys(nil, stream, 0, e) {
				if !slices.Contains(b.keys, k) {
					r.add(req, k, base, true)
					keys = append(keys, k)
				}
			}
		}
		b.file(int32(i))
	}
	for k := range b.open {
		keys = append(keys, k)
	}
	return keys
}

// file files event i (of the append) under b.keys: it extends the runs of
// the keys that the last event had, and starts runs for the others.
func (b *runBuilder) file(i int32) {
	r := b.runs
	if i > 0 && slices.Equal(b.keys, b.prev) {
		// The common case: the same keys as the last event.
		for _, j := range b.prevR {
			r.count[j]++
		}
		return
	}
	runs := make([]int, 0, len(b.keys))
	for _, k := range b.keys {
		if j, ok := b.open[k]; ok && r.off[j]+r.count[j] == b.base+i {
			r.count[j]++
			runs = append(runs, j)
			continue
		}
		j := r.add(b.req, k, b.base+i, false)
		b.open[k] = j
		runs = append(runs, j)
	}
	b.prev = append(b.prev[:0], b.keys...)
	b.prevR = runs
}

// mayMatch reports whether an event filed under keys could match q, with
// the engine's rule for system streams (see matches). It may say yes when
// no such event matches, never no when one does.
func mayMatch(q cairn.Query, keys []cairn.IndexKey) bool {
	if q.All() {
		return true
	}
	for _, it := range q.Items {
		ok := true
		for _, t := range it.Tags {
			if !slices.Contains(keys, cairn.IndexKey{Kind: cairn.IndexTag, Value: t}) {
				ok = false
				break
			}
		}
		if ok && len(it.Types) > 0 {
			ok = slices.ContainsFunc(it.Types, func(t string) bool {
				return slices.Contains(keys, cairn.IndexKey{Kind: cairn.IndexType, Value: t})
			})
		}
		if ok {
			return true
		}
	}
	return false
}
