package diskstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// The fuzz targets of the decoders that read the disk: an event record, the
// index's values, a segment's frames. Whatever the bytes, a decoder returns
// an error matching cairn.ErrCorrupt or a value whose encoding decodes to
// the same value; it never panics. Their seed corpora are the f.Add calls
// below and testdata/fuzz/<target>; CI runs each target for a few seconds
// (.ci/run).

func fuzzEvent() (string, int64, int64, cairn.EventData) {
	e := cairn.EventData{Type: "Deposited", ContentType: cairn.ContentBinary, Data: []byte(`{"amount":42}`), Metadata: []byte("m"), Tags: []string{"a", "tenant:7"}}
	e.ID = uuid.UUID{0x01, 0x93, 15: 0x2a}
	return "account-7", 3, time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).UnixMicro(), e
}

// FuzzDecodeEvent decodes arbitrary bytes as the event record at a
// position, checked against the record's checksum or sealed with a correct
// one first (to reach the decoding past the checksum).
func FuzzDecodeEvent(f *testing.F) {
	stream, version, created, e := fuzzEvent()
	valid := appendEvent(nil, stream, version, created, &e)
	sealInPlace(eventKey(5), valid)
	f.Add(uint64(5), valid, false)
	f.Add(uint64(5), valid[4:], true)
	f.Add(uint64(6), valid, false) // the checksum covers the position
	f.Add(uint64(0), []byte{}, true)
	f.Add(uint64(0), []byte{0, 0, 0, 0}, false)
	f.Add(uint64(1), []byte{1, 0x80, 0x80, 0x80}, true)
	f.Fuzz(func(t *testing.T, pos uint64, value []byte, sealIt bool) {
		key := eventKey(pos)
		if sealIt {
			value = seal(key, value)
		}
		got, err := decodeEvent(key, value, pos, &strCache{})
		if err != nil {
			if !errors.Is(err, cairn.ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return
		}
		if got.Position != pos {
			t.Fatalf("position %d, want %d", got.Position, pos)
		}
		// The event encodes back to a record that decodes to itself.
		again := appendEvent(nil, got.StreamID, got.Version, got.Created.UnixMicro(), &got.EventData)
		sealInPlace(key, again)
		back, err := decodeEvent(key, again, pos, &strCache{})
		if err != nil {
			t.Fatalf("decoding the event's own encoding: %v", err)
		}
		if !sameEvent(got, back) {
			t.Fatalf("decoded %+v, then %+v from its encoding", got, back)
		}
	})
}

// FuzzEventEncoding encodes an event, checks that it decodes to itself
// and that its length is the one eventLen computes, then damages one byte
// of the record: the checksum must catch it.
func FuzzEventEncoding(f *testing.F) {
	stream, version, created, e := fuzzEvent()
	f.Add(uint64(5), stream, version, created, e.ID[:], e.Type, byte(e.ContentType), e.Data, e.Metadata, strings.Join(e.Tags, "\x00"), 7, byte(0x10))
	f.Add(uint64(0), "s", int64(0), int64(0), []byte(nil), "E", byte(0), []byte(nil), []byte(nil), "", 0, byte(1))
	f.Add(uint64(1<<63), "ŝtréam", int64(-1), int64(-1<<62), []byte{1}, "", byte(255), []byte{0}, []byte{}, "\x00\x00", 1000, byte(0x80))
	f.Fuzz(func(t *testing.T, pos uint64, stream string, version, created int64, id []byte, typ string, ct byte, data, md []byte, tags string, at int, flip byte) {
		// Times are kept to the microsecond, within the range of time.Time.
		created %= 1 << 60
		e := cairn.EventData{Type: typ, ContentType: cairn.ContentType(ct), Data: data, Metadata: md}
		copy(e.ID[:], id)
		if tags != "" {
			e.Tags = strings.Split(tags, "\x00")
		}
		rec := appendEvent(nil, stream, version, created, &e)
		if n := eventLen(stream, version, created, &e); n != len(rec) {
			t.Fatalf("eventLen %d, encoding %d bytes", n, len(rec))
		}
		if n := eventSize(stream, &e); n < len(rec) {
			t.Fatalf("eventSize %d, below the encoding's %d bytes", n, len(rec))
		}
		key := eventKey(pos)
		sealInPlace(key, rec)
		got, err := decodeEvent(key, rec, pos, &strCache{})
		if err != nil {
			t.Fatal(err)
		}
		want := cairn.Event{EventData: e, StreamID: stream, Version: version, Position: pos, Created: time.UnixMicro(created).UTC()}
		if !sameEvent(got, want) {
			t.Fatalf("decoded %+v, want %+v", got, want)
		}
		if flip == 0 {
			return
		}
		if at < 0 {
			at = -(at + 1)
		}
		rec[at%len(rec)] ^= flip
		if _, err := decodeEvent(key, rec, pos, &strCache{}); !errors.Is(err, cairn.ErrCorrupt) {
			t.Fatalf("a record with byte %d damaged decodes: %v", at%len(rec), err)
		}
	})
}

// sameEvent compares every field, telling nil and empty byte slices and
// tag lists apart from none.
func sameEvent(a, b cairn.Event) bool {
	return a.ID == b.ID && a.Type == b.Type && a.ContentType == b.ContentType &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Metadata, b.Metadata) && slices.Equal(a.Tags, b.Tags) &&
		a.StreamID == b.StreamID && a.Version == b.Version && a.Position == b.Position && a.Created.Equal(b.Created)
}

// FuzzDecodeIndexValue decodes arbitrary bytes as each kind of index
// value (a run or locator, a stream's state, the marker, a retry record, a
// snapshot, a block of an index list), checked against their checksum or
// sealed with a correct one.
// A value that decodes encodes back to the same value.
func FuzzDecodeIndexValue(f *testing.F) {
	sp := span{seg: 2, off: 4096, bytes: 300}
	add := func(kind byte, key, value []byte) {
		f.Add(kind, key, value, false)
		f.Add(kind, key, value[4:], true)
	}
	add(0, runKey("s", 7), appendRun(nil, runKey("s", 7), 12, 3, sp))
	add(0, locatorKey(12), appendRun(nil, locatorKey(12), 12, 3, sp))
	add(1, metaKey("s"), encodeMeta(metaKey("s"), meta{flags: flagDeleted, before: 3, purged: 2}))
	m := make([]byte, markerLen)
	putMarker(m, marker{seg: 2, end: 4396, next: 15})
	add(2, markerKey, m)
	add(3, idKey(uuid.UUID{1}), appendUint(nil, idKey(uuid.UUID{1}), 12))
	add(4, snapshotKey("s"), encodeSnapshot(snapshotKey("s"), cairn.Snapshot{Version: 4, Data: []byte("state"), Created: time.UnixMicro(1)}))
	bk := appendBlockKey(nil, cairn.IndexKey{Kind: cairn.IndexTag, Value: "t"}, 7)
	add(5, bk, appendBlock(nil, bk, 3, []entryRun{{pos: 12, count: 2, off: 4096, bytes: 600}, {pos: 20, count: 1, off: 5000, bytes: 300}}))
	f.Add(byte(0), []byte("r"), []byte{}, true)
	f.Add(byte(0), []byte{}, []byte{}, true)
	f.Fuzz(func(t *testing.T, kind byte, key, value []byte, sealIt bool) {
		if sealIt {
			value = seal(key, value)
		}
		check := func(err error) bool {
			t.Helper()
			if err != nil && !errors.Is(err, cairn.ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return err == nil
		}
		switch kind % 6 {
		case 0:
			rn, err := decodeRun(key, value)
			if !check(err) {
				return
			}
			if rn.count <= 0 || rn.bytes <= 0 {
				t.Fatalf("decoded an empty run %+v", rn)
			}
			back, err := decodeRun(key, appendRun(nil, key, rn.pos, rn.count, rn.span))
			if err != nil || back != rn {
				t.Fatalf("run %+v encodes to %+v, %v", rn, back, err)
			}
		case 1:
			m, err := decodeMeta(key, value)
			if !check(err) {
				return
			}
			back, err := decodeMeta(key, encodeMeta(key, m))
			if err != nil || back != m {
				t.Fatalf("stream state %+v encodes to %+v, %v", m, back, err)
			}
		case 2:
			m, err := decodeMarker(value)
			if !check(err) {
				return
			}
			buf := make([]byte, markerLen)
			putMarker(buf, m)
			if !bytes.Equal(buf, value) {
				t.Fatalf("marker %+v encodes to %x, decoded from %x", m, buf, value)
			}
		case 3:
			v, err := decodeUint(key, value)
			if !check(err) {
				return
			}
			if back := appendUint(nil, key, v); !bytes.Equal(back, value) {
				t.Fatalf("%d encodes to %x, decoded from %x", v, back, value)
			}
		case 4:
			s, err := decodeSnapshot(key, value, "s")
			if !check(err) {
				return
			}
			back, err := decodeSnapshot(key, encodeSnapshot(key, s), "s")
			if err != nil || back.Version != s.Version || !back.Created.Equal(s.Created) ||
				!bytes.Equal(back.Data, s.Data) || !bytes.Equal(back.Metadata, s.Metadata) {
				t.Fatalf("snapshot %+v encodes to %+v, %v", s, back, err)
			}
		case 5:
			var b block
			if !check(decodeBlock(key, value, &b)) {
				return
			}
			if len(b.runs) == 0 || b.count == 0 || b.end() < b.number {
				t.Fatalf("decoded a block %+v", b)
			}
			for i, r := range b.runs {
				if r.count == 0 || r.bytes < int64(r.count) || (i > 0 && (r.pos < b.runs[i-1].end() || r.off < b.runs[i-1].off+b.runs[i-1].bytes)) {
					t.Fatalf("decoded a block whose runs overlap or are empty: %+v", b)
				}
			}
			var back block
			if err := decodeBlock(key, appendBlock(nil, key, b.seg, b.runs), &back); err != nil || back.number != b.number || back.count != b.count || back.seg != b.seg || !slices.Equal(back.runs, b.runs) {
				t.Fatalf("block %+v encodes to %+v, %v", b, back, err)
			}
		}
	})
}

// FuzzRecords splits arbitrary bytes into event records, as a read does
// with the bytes a run points at: the records it returns lie within the
// bytes, in order, and cover them exactly.
func FuzzRecords(f *testing.F) {
	stream, version, created, e := fuzzEvent()
	rec := appendEvent(nil, stream, version, created, &e)
	two := binary.AppendUvarint(nil, uint64(len(rec)))
	two = append(two, rec...)
	two = binary.AppendUvarint(two, 0)
	f.Add(two)
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, p []byte) {
		out, ok := records(p, nil)
		if !ok {
			return
		}
		n := 0
		for _, r := range out {
			v, k := binary.Uvarint(p[n:])
			if k <= 0 || v != uint64(len(r)) || !bytes.Equal(p[n+k:n+k+len(r)], r) {
				t.Fatalf("record %x is not the one at offset %d", r, n)
			}
			n += k + len(r)
		}
		if n != len(p) {
			t.Fatalf("records cover %d of %d bytes", n, len(p))
		}
	})
}

// FuzzReadFrame scans arbitrary bytes as a log segment, the way Open does
// after a crash: every frame it takes as whole is one that sealFrame
// wrote, and what follows the last of them is either the torn end of the
// log or an error matching cairn.ErrCorrupt.
func FuzzReadFrame(f *testing.F) {
	frame := func(events, index []byte) []byte {
		fr := append(beginFrame(nil), events...)
		fr = append(fr, index...)
		sealFrame(fr, len(events))
		return fr
	}
	one := frame([]byte{3, 'a', 'b', 'c'}, []byte("index batch of the frame"))
	two := frame(nil, make([]byte, 12))
	f.Add(slices.Concat(one, two))
	f.Add(slices.Concat(one, one[:20]))                     // a torn frame
	f.Add(slices.Concat(one, []byte("cLF1"), one[4:], two)) // damaged, then intact
	f.Add(slices.Concat(one, make([]byte, 64)))
	f.Add([]byte("cLF1\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, seg []byte) {
		fs := vfs.NewMem()
		if err := fs.MkdirAll("log", 0o755); err != nil {
			t.Fatal(err)
		}
		w, err := fs.Create("log/"+segmentName(1), vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(slices.Clone(seg)); err != nil { // under -race, pebble scribbles over what it wrote
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		l, err := openLog(fs, "log", 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var off int64
		for {
			fr, ok, err := l.ReadFrame(1, off, int64(len(seg)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			ev := binary.LittleEndian.Uint32(fr[4:])
			resealed := slices.Clone(fr)
			sealFrame(resealed, int(ev))
			if !bytes.Equal(resealed, fr) || !bytes.Equal(fr, seg[off:off+int64(len(fr))]) {
				t.Fatalf("frame at offset %d is not one that sealFrame wrote", off)
			}
			if ix := frameIndex(fr); len(ix) != len(fr)-frameHeader-int(ev) {
				t.Fatalf("frame at offset %d: index of %d bytes", off, len(ix))
			}
			off += int64(len(fr))
		}
		if err := l.CheckTail(1, off, int64(len(seg))); err != nil && !errors.Is(err, cairn.ErrCorrupt) {
			t.Fatalf("error %v does not match ErrCorrupt", err)
		}
	})
}

// FuzzCheckFrame seals a frame around arbitrary bytes, as only a bug could
// write one, and checks it as Open does before replaying its index batch:
// an error matching cairn.ErrCorrupt, or a batch that pebble takes.
func FuzzCheckFrame(f *testing.F) {
	b := new(pebble.Batch)
	if err := b.Set(metaKey("s"), encodeMeta(metaKey("s"), meta{}), nil); err != nil {
		f.Fatal(err)
	}
	m := make([]byte, markerLen)
	// The marker record: kind, key length, key, value length, value.
	putMarker(m, marker{seg: 1, end: frameHeader + 4 + int64(len(b.Repr())+4+markerLen), next: 1})
	if err := b.Set(markerKey, m, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(uint32(4), slices.Concat([]byte{3, 'a', 'b', 'c'}, b.Repr()), uint64(0))
	f.Add(uint32(0), []byte("\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01\xff"), uint64(0))
	f.Add(uint32(0), []byte("\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x16\x01A"), uint64(0))
	f.Fuzz(func(t *testing.T, events uint32, body []byte, next uint64) {
		fr := append(beginFrame(nil), body...)
		sealFrame(fr, int(events%uint32(len(body)+1)))
		c, err := checkFrame(fr, 1, 0, next)
		m := c.marker
		if err != nil {
			if !errors.Is(err, cairn.ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return
		}
		if m.seg != 1 || m.end != int64(len(fr)) || m.next < next {
			t.Fatalf("frame taken with the marker %+v", m)
		}
		b := new(pebble.Batch)
		if err := b.SetRepr(slices.Clone(frameIndex(fr))); err != nil {
			t.Fatal(err)
		}
		for r := b.Reader(); ; {
			kind, _, _, ok, err := r.Next()
			if err != nil {
				t.Fatalf("pebble reads a batch that the check took: %v", err)
			}
			if !ok {
				break
			}
			if kind != pebble.InternalKeyKindSet && kind != pebble.InternalKeyKindDelete {
				t.Fatalf("a record of kind %v", kind)
			}
		}
	})
}
