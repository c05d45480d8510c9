package diskstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// FormatVersion is the version of the on-disk format this package reads and
// writes. It is recorded under the format key when a store is created and
// checked at every open.
const FormatVersion = 2

// Key prefixes. See the package documentation for the layout.
const (
	prefixMarker   = 'A'
	prefixFormat   = 'F'
	prefixLocator  = 'L'
	prefixEvent    = 'z' // not a key: events are sealed with eventKey(pos)
	prefixRun      = 'r'
	prefixMeta     = 'm'
	prefixID       = 'i'
	prefixSnapshot = 's'
	prefixTable    = 't'
)

// formatMagic starts the value of the format key.
const formatMagic = "cairn-diskstore"

var (
	formatKey = []byte{prefixFormat}
	markerKey = []byte{prefixMarker}
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// seal appends the checksum of key and payload in front of payload:
// the stored value is crc32c(key ‖ payload) ‖ payload.
func checksum(key, payload []byte) uint32 {
	c := crc32.Update(0, crcTable, key)
	return crc32.Update(c, crcTable, payload)
}

func seal(key, payload []byte) []byte {
	v := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(v, checksum(key, payload))
	copy(v[4:], payload)
	return v
}

// unseal checks the checksum of a stored value and returns its payload.
func unseal(key, value []byte) ([]byte, error) {
	if len(value) < 4 {
		return nil, corruptf(key, "value of %d bytes is too short", len(value))
	}
	payload := value[4:]
	if binary.BigEndian.Uint32(value) != checksum(key, payload) {
		return nil, corruptf(key, "checksum mismatch")
	}
	return payload, nil
}

// corruptError reports stored data that failed an integrity check.
type corruptError struct {
	key    []byte
	reason string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("diskstore: corrupt data at key %q: %s", e.key, e.reason)
}

func (e *corruptError) Unwrap() error { return cairn.ErrCorrupt }

func corruptf(key []byte, format string, args ...any) error {
	return &corruptError{key: append([]byte(nil), key...), reason: fmt.Sprintf(format, args...)}
}

// Keys.

func eventKey(pos uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixEvent
	binary.BigEndian.PutUint64(k[1:], pos)
	return k
}

func putEventKey(k []byte, pos uint64) {
	k[0] = prefixEvent
	binary.BigEndian.PutUint64(k[1:], pos)
}

// streamPrefix returns p ‖ stream ‖ 0x00. Stream ids never contain NUL, so
// the keys of one stream sort together and streams sort by id.
func streamPrefix(p byte, stream string) []byte {
	k := make([]byte, 0, len(stream)+11)
	k = append(k, p)
	k = append(k, stream...)
	return append(k, 0)
}

func runKey(stream string, version int64) []byte {
	return appendRunKey(make([]byte, 0, len(stream)+10), stream, version)
}

func appendRunKey(dst []byte, stream string, version int64) []byte {
	dst = append(dst, prefixRun)
	dst = append(dst, stream...)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint64(dst, uint64(version))
}

func runKeyVersion(k []byte) int64 {
	return int64(binary.BigEndian.Uint64(k[len(k)-8:]))
}

func metaKey(stream string) []byte {
	k := make([]byte, 0, len(stream)+1)
	return append(append(k, prefixMeta), stream...)
}

func idKey(id uuid.UUID) []byte {
	k := make([]byte, 17)
	k[0] = prefixID
	copy(k[1:], id[:])
	return k
}

func snapshotKey(stream string) []byte {
	k := make([]byte, 0, len(stream)+1)
	return append(append(k, prefixSnapshot), stream...)
}

func tableKey(table, key string) []byte {
	k := streamPrefix(prefixTable, table)
	return append(k, key...)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

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

// locatorKey returns the key of the locator of the run that starts at pos:
// 'L' ‖ pos [8]. Locators list the log's runs in position order.
func locatorKey(pos uint64) []byte {
	return appendLocatorKey(make([]byte, 0, 9), pos)
}

func appendLocatorKey(dst []byte, pos uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, prefixLocator), pos)
}

var locatorBounds = pebble.IterOptions{LowerBound: []byte{prefixLocator}, UpperBound: []byte{prefixLocator + 1}}

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

func putMarker(dst []byte, m marker) {
	binary.BigEndian.PutUint64(dst[4:], m.seg)
	binary.BigEndian.PutUint64(dst[12:], uint64(m.end))
	binary.BigEndian.PutUint64(dst[20:], m.next)
	sealInPlace(markerKey, dst)
}

func decodeMarker(value []byte) (marker, error) {
	p, err := unseal(markerKey, value)
	if err != nil {
		return marker{}, err
	}
	if len(p) != 24 {
		return marker{}, corruptf(markerKey, "want 24 bytes, have %d", len(p))
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

// Event values:
//
//	crc32c(key ‖ rest) [4]
//	content type       [1]
//	version            uvarint
//	created            varint, Unix microseconds
//	id                 [16]
//	stream, type       uvarint length ‖ bytes, each
//	data, metadata     uvarint length ‖ bytes, each
//	tags               uvarint count, then uvarint length ‖ bytes each

// eventSize returns an upper bound of the encoded size of e.
func eventSize(stream string, e *cairn.EventData) int {
	n := 4 + 1 + 10 + 10 + 16 + 5*5 + len(stream) + len(e.Type) + len(e.Data) + len(e.Metadata)
	for _, t := range e.Tags {
		n += 5 + len(t)
	}
	return n
}

// eventLen returns the exact length of the encoding of e by appendEvent.
func eventLen(stream string, version int64, created int64, e *cairn.EventData) int {
	n := 4 + 1 + uvarintLen(uint64(version)) + uvarintLen(uint64(created<<1)^uint64(created>>63)) + 16
	n += uvarintLen(uint64(len(stream))) + len(stream)
	n += uvarintLen(uint64(len(e.Type))) + len(e.Type)
	n += uvarintLen(uint64(len(e.Data))) + len(e.Data)
	n += uvarintLen(uint64(len(e.Metadata))) + len(e.Metadata)
	n += uvarintLen(uint64(len(e.Tags)))
	for _, t := range e.Tags {
		n += uvarintLen(uint64(len(t))) + len(t)
	}
	return n
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendEvent encodes e after the 4 bytes reserved for the checksum in dst
// and returns the encoding; the caller fills in the checksum with sealInPlace.
func appendEvent(dst []byte, stream string, version int64, created int64, e *cairn.EventData) []byte {
	dst = append(dst, 0, 0, 0, 0, byte(e.ContentType))
	dst = binary.AppendUvarint(dst, uint64(version))
	dst = binary.AppendVarint(dst, created)
	dst = append(dst, e.ID[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(stream)))
	dst = append(dst, stream...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Type)))
	dst = append(dst, e.Type...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Data)))
	dst = append(dst, e.Data...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Metadata)))
	dst = append(dst, e.Metadata...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Tags)))
	for _, t := range e.Tags {
		dst = binary.AppendUvarint(dst, uint64(len(t)))
		dst = append(dst, t...)
	}
	return dst
}

func sealInPlace(key, value []byte) {
	binary.BigEndian.PutUint32(value, checksum(key, value[4:]))
}

var errShort = errors.New("short")

type decoder struct {
	p   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.p)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if uint64(len(d.p)) < n {
		d.err = errShort
		return nil
	}
	b := d.p[:n:n]
	d.p = d.p[n:]
	return b
}

func (d *decoder) lenBytes() []byte { return d.bytes(d.uvarint()) }

// strCache avoids allocating the same stream id and event type again for
// consecutive events of a read, and carves the events' bytes out of shared
// chunks rather than allocating each event's bytes apart.
type strCache struct {
	stream, typ string
	arena       []byte
}

const arenaChunk = 16 << 10

// alloc returns n bytes whose capacity is n, so that appending to them
// never overwrites a neighbour.
func (c *strCache) alloc(n int) []byte {
	if n > arenaChunk/8 {
		return make([]byte, n)
	}
	if len(c.arena)+n > cap(c.arena) {
		c.arena = make([]byte, 0, arenaChunk)
	}
	i := len(c.arena)
	c.arena = c.arena[:i+n]
	return c.arena[i : i+n : i+n]
}

func (c *strCache) intern(prev *string, b []byte) string {
	if string(b) == *prev {
		return *prev
	}
	*prev = string(b)
	return *prev
}

// decodeEvent decodes the event stored under key (whose position is pos).
// The event's byte slices are copied out of value, which may be reused.
func decodeEvent(key, value []byte, pos uint64, sc *strCache) (cairn.Event, error) {
	p, err := unseal(key, value)
	if err != nil {
		return cairn.Event{}, err
	}
	if len(p) < 1 {
		return cairn.Event{}, corruptf(key, "empty event")
	}
	d := decoder{p: p[1:]}
	var e cairn.Event
	e.ContentType = cairn.ContentType(p[0])
	e.Version = int64(d.uvarint())
	created := d.varint()
	copy(e.ID[:], d.bytes(16))
	stream := d.lenBytes()
	typ := d.lenBytes()
	data := d.lenBytes()
	md := d.lenBytes()
	ntags := d.uvarint()
	if d.err == nil && ntags > uint64(len(d.p)) {
		d.err = errShort
	}
	var tags [][]byte
	for i := uint64(0); i < ntags && d.err == nil; i++ {
		tags = append(tags, d.lenBytes())
	}
	if d.err != nil || len(d.p) != 0 {
		return cairn.Event{}, corruptf(key, "malformed event")
	}
	e.StreamID = sc.intern(&sc.stream, stream)
	e.Type = sc.intern(&sc.typ, typ)
	e.Position = pos
	e.Created = time.UnixMicro(created).UTC()
	if len(data)+len(md) > 0 {
		buf := sc.alloc(len(data) + len(md))
		copy(buf, data)
		copy(buf[len(data):], md)
		if len(data) > 0 {
			e.Data = buf[:len(data):len(data)]
		}
		if len(md) > 0 {
			e.Metadata = buf[len(data):]
		}
	}
	if len(tags) > 0 {
		e.Tags = make([]string, len(tags))
		for i, t := range tags {
			e.Tags[i] = string(t)
		}
	}
	return e, nil
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
