package diskstore

import (
	"encoding/binary"
	"time"

	"github.com/cairndb/cairn"
)

// Values. Every value below is stored sealed (see seal).

// span is where the records of consecutive events lie in the log.
type span struct {
	seg   uint64 // the segment
	off   int64  // the offset of the first record
	bytes int64  // the length of the records
}

// run records one append to a stream (or what compaction left of it):
// count events from version runKeyVersion(key), at the consecutive
// positions pos … pos+count-1, whose records are at span in the log.
type run struct {
	first int64
	pos   uint64
	count int64
	span
}

func (r run) last() int64 { return r.first + r.count - 1 }

// appendRun appends the sealed run value to dst: position, count, segment,
// offset and length, each a uvarint. A locator's value is the same.
func appendRun(dst, key []byte, pos uint64, count int64, sp span) []byte {
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, pos)
	dst = binary.AppendUvarint(dst, uint64(count))
	dst = binary.AppendUvarint(dst, sp.seg)
	dst = binary.AppendUvarint(dst, uint64(sp.off))
	dst = binary.AppendUvarint(dst, uint64(sp.bytes))
	sealInPlace(key, dst)
	return dst
}

func decodeRun(key, value []byte) (run, error) {
	// A locator's key is 'L' ‖ position [8], a run's 'r' ‖ stream ‖ 0x00 ‖
	// version [8].
	if !(len(key) == 9 && key[0] == prefixLocator) && !(len(key) >= 10 && key[0] == prefixRun) {
		return run{}, corruptf(key, "not the key of a run")
	}
	p, err := unseal(key, value)
	if err != nil {
		return run{}, err
	}
	d := decoder{p: p}
	rn := run{pos: d.uvarint(), count: int64(d.uvarint())}
	rn.seg, rn.off, rn.bytes = d.uvarint(), int64(d.uvarint()), int64(d.uvarint())
	if d.err != nil || len(d.p) != 0 || rn.count <= 0 || rn.bytes <= 0 {
		return run{}, corruptf(key, "malformed run")
	}
	if key[0] == prefixRun {
		rn.first = runKeyVersion(key)
	}
	return rn, nil
}

// marker is the end of the last frame of the log that the index holds,
// and the next position after it.
type marker struct {
	seg  uint64
	end  int64
	next uint64
}

const markerLen = 4 + 24

// after reports whether m marks a later frame than o: it ends further on
// in the log, and its next position is not lower.
func (m marker) after(o marker) bool {
	return (m.seg > o.seg || m.seg == o.seg && m.end > o.end) && m.next >= o.next
}

func putMarker(dst []byte, m marker) { putMarkerAt(markerKey, dst, m) }

// putMarkerAt encodes m as the value of key: the marker's, or the ID
// mark's (ids.go).
func putMarkerAt(key, dst []byte, m marker) {
	binary.BigEndian.PutUint64(dst[4:], m.seg)
	binary.BigEndian.PutUint64(dst[12:], uint64(m.end))
	binary.BigEndian.PutUint64(dst[20:], m.next)
	sealInPlace(key, dst)
}

func decodeMarker(value []byte) (marker, error) { return decodeMarkerAt(markerKey, value) }

func decodeMarkerAt(key, value []byte) (marker, error) {
	p, err := unseal(key, value)
	if err != nil {
		return marker{}, err
	}
	if len(p) != 24 {
		return marker{}, corruptf(key, "want 24 bytes, have %d", len(p))
	}
	return marker{seg: binary.BigEndian.Uint64(p), end: int64(binary.BigEndian.Uint64(p[8:])), next: binary.BigEndian.Uint64(p[16:])}, nil
}

// meta is a stream's state beyond its events.
type meta struct {
	flags  uint8
	before int64 // reads skip versions below
	purged int64 // events below were removed by compaction
}

const (
	flagDeleted    = 1 << 0
	flagTombstoned = 1 << 1
)

func encodeMeta(key []byte, m meta) []byte {
	var buf [24]byte
	p := append(buf[:0], m.flags)
	p = binary.AppendUvarint(p, uint64(m.before))
	p = binary.AppendUvarint(p, uint64(m.purged))
	return seal(key, p)
}

func decodeMeta(key, value []byte) (meta, error) {
	p, err := unseal(key, value)
	if err != nil {
		return meta{}, err
	}
	if len(p) < 1 {
		return meta{}, corruptf(key, "empty stream record")
	}
	m := meta{flags: p[0]}
	b, n := binary.Uvarint(p[1:])
	if n <= 0 {
		return meta{}, corruptf(key, "bad stream record")
	}
	pu, k := binary.Uvarint(p[1+n:])
	if k <= 0 || 1+n+k != len(p) {
		return meta{}, corruptf(key, "bad stream record")
	}
	m.before, m.purged = int64(b), int64(pu)
	return m, nil
}

// appendUint appends the sealed 8-byte value v to dst.
func appendUint(dst, key []byte, v uint64) []byte {
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint64(dst, v)
	sealInPlace(key, dst)
	return dst
}

func decodeUint(key, value []byte) (uint64, error) {
	p, err := unseal(key, value)
	if err != nil {
		return 0, err
	}
	if len(p) != 8 {
		return 0, corruptf(key, "want 8 bytes, have %d", len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}

// Snapshot values: version uvarint, created varint (Unix µs), data and
// metadata as uvarint length ‖ bytes.

func encodeSnapshot(key []byte, s cairn.Snapshot) []byte {
	p := make([]byte, 0, 30+len(s.Data)+len(s.Metadata))
	p = binary.AppendUvarint(p, uint64(s.Version))
	p = binary.AppendVarint(p, s.Created.UnixMicro())
	p = binary.AppendUvarint(p, uint64(len(s.Data)))
	p = append(p, s.Data...)
	p = binary.AppendUvarint(p, uint64(len(s.Metadata)))
	p = append(p, s.Metadata...)
	return seal(key, p)
}

func decodeSnapshot(key, value []byte, stream string) (cairn.Snapshot, error) {
	p, err := unseal(key, value)
	if err != nil {
		return cairn.Snapshot{}, err
	}
	d := decoder{p: p}
	s := cairn.Snapshot{StreamID: stream}
	s.Version = int64(d.uvarint())
	s.Created = time.UnixMicro(d.varint()).UTC()
	data := d.lenBytes()
	md := d.lenBytes()
	if d.err != nil || len(d.p) != 0 {
		return cairn.Snapshot{}, corruptf(key, "malformed snapshot")
	}
	if len(data) > 0 {
		s.Data = append([]byte(nil), data...)
	}
	if len(md) > 0 {
		s.Metadata = append([]byte(nil), md...)
	}
	return s, nil
}

// entryRun is a run of entries of one list of the index: count entries at
// consecutive numbers that file the events at the consecutive positions
// pos … pos+count-1, whose records lie one after another in the log, from
// offset off (the first record's length prefix) for bytes bytes.
type entryRun struct {
	pos   uint64
	count uint64
	off   int64
	bytes int64
}

func (r entryRun) end() uint64 { return r.pos + r.count }

// block is one record of a list: the entries that one frame filed under
// the list's key, from number on, in position order. Their events are in
// the frame's segment.
type block struct {
	number uint64 // the number of the first entry
	count  uint64 // entries in all
	seg    uint64
	runs   []entryRun
}

func (b *block) end() uint64      { return b.number + b.count }
func (b *block) firstPos() uint64 { return b.runs[0].pos }
func (b *block) lastPos() uint64  { return b.runs[len(b.runs)-1].end() - 1 }

// appendBlock appends to dst the sealed value of a block whose runs are
// in segment seg: the segment, then for each run the distance of its
// position from the end of the run before (from 0 for the first), its
// count, the distance of its records from the end of those of the run
// before (from the segment's start for the first) and their length; all
// uvarints. Runs follow one another in positions and in the log.
func appendBlock(dst, key []byte, seg uint64, runs []entryRun) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, seg)
	var pos uint64
	var off int64
	for _, r := range runs {
		dst = binary.AppendUvarint(dst, r.pos-pos)
		dst = binary.AppendUvarint(dst, r.count)
		dst = binary.AppendUvarint(dst, uint64(r.off-off))
		dst = binary.AppendUvarint(dst, uint64(r.bytes))
		pos, off = r.end(), r.off+r.bytes
	}
	sealInPlace(key, dst[start:])
	return dst
}

// decodeBlock decodes the block stored under key into b, reusing b.runs.
func decodeBlock(key, value []byte, b *block) error {
	if len(key) < 1+1+1+8 || key[0] != prefixList {
		return corruptf(key, "not the key of an index block")
	}
	p, err := unseal(key, value)
	if err != nil {
		return err
	}
	d := decoder{p: p}
	b.number, b.count, b.seg, b.runs = blockKeyNumber(key), 0, d.uvarint(), b.runs[:0]
	var pos uint64
	var off int64
	for d.err == nil && len(d.p) > 0 {
		r := entryRun{pos: pos + d.uvarint(), count: d.uvarint()}
		r.off = off + int64(d.uvarint())
		r.bytes = int64(d.uvarint())
		if d.err != nil || r.pos < pos || r.count == 0 || r.end() <= r.pos || r.off < off || r.bytes < 0 || uint64(r.bytes) < r.count || r.off+r.bytes < r.off {
			return corruptf(key, "malformed index block")
		}
		b.runs = append(b.runs, r)
		b.count += r.count
		pos, off = r.end(), r.off+r.bytes
	}
	if d.err != nil || len(b.runs) == 0 || b.end() < b.number {
		return corruptf(key, "malformed index block")
	}
	return nil
}
