package diskstore

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/cairndb/cairn"
)

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

// timeMicro is the time of us microseconds after the Unix epoch, in UTC.
func timeMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }
