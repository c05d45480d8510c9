package natsstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/google/uuid"
)

// A record of the log: one message of the JetStream stream, the writes of
// one group formed by one node's writer. Every node decodes it into a
// diskstore.Group and applies it, so the encoding must say exactly what
// to write, and nothing a node could decide differently: the commit time
// is the writer's, carried here.
//
//	version   [1] recordVersion
//	id        [16] the record's id (also its JetStream message id)
//	time      varint, Unix µs
//	kind      [1] kindWrites (or kindCompact, which no node logs any more:
//	          a compaction is a record of purge steps, then each node
//	          reclaims; a log may still hold one)
//	writes    uvarint count, then each write: its kind [1] and fields
//
// Strings and byte slices are uvarint length ‖ bytes; integers are
// varints (signed) or uvarints; an expected version is its numeric form
// (cairn.ExpectedVersion.Int64).
const recordVersion = 1

// Record kinds.
const (
	kindWrites  = 1 // a group of writes
	kindCompact = 2 // a whole compaction, run by every node at this point of the log
)

// Write kinds.
const (
	wAppend    = 1
	wDelete    = 2
	wTombstone = 3
	wTruncate  = 4
	wSnapshot  = 5
	wCommit    = 6
	wBatch     = 7 // an append of a batch (even of one request)
	wPurge     = 8 // a step of a compaction's purge, alone in its record
)

// record is a decoded record.
type record struct {
	id      uuid.UUID
	time    time.Time
	compact bool
	writes  []diskstore.Write
}

// errRecord is matched by the errors of records that cannot be decoded.
var errRecord = errors.New("natsstore: malformed log record")

func encodeRecord(r *record) ([]byte, error) {
	e := encoder{b: make([]byte, 0, 256)}
	e.b = append(e.b, recordVersion)
	e.b = append(e.b, r.id[:]...)
	e.varint(r.time.UnixMicro())
	if r.compact {
		e.b = append(e.b, kindCompact)
		return e.b, nil
	}
	e.b = append(e.b, kindWrites)
	e.uvarint(uint64(len(r.writes)))
	for _, w := range r.writes {
		switch w := w.(type) {
		case *diskstore.AppendWrite:
			if w.Batch {
				e.b = append(e.b, wBatch)
			} else {
				e.b = append(e.b, wAppend)
			}
			e.uvarint(uint64(len(w.Requests)))
			for i := range w.Requests {
				e.request(&w.Requests[i])
			}
		case *diskstore.DeleteWrite:
			if w.Tombstone {
				e.b = append(e.b, wTombstone)
			} else {
				e.b = append(e.b, wDelete)
			}
			e.str(w.Stream)
			e.varint(w.Expected.Int64())
		case *diskstore.TruncateWrite:
			e.b = append(e.b, wTruncate)
			e.str(w.Stream)
			e.varint(w.Before)
		case *diskstore.SnapshotWrite:
			e.b = append(e.b, wSnapshot)
			e.str(w.Snapshot.StreamID)
			e.varint(w.Snapshot.Version)
			e.bytes(w.Snapshot.Data)
			e.bytes(w.Snapshot.Metadata)
		case *diskstore.CommitWrite:
			e.b = append(e.b, wCommit)
			e.request(&w.Request)
			e.uvarint(w.Plan.Position)
			e.varint(w.Plan.Version)
			e.uvarint(uint64(len(w.Plan.Writes)))
			for _, tw := range w.Plan.Writes {
				e.str(tw.Table)
				e.str(tw.Key)
				if tw.Delete {
					e.b = append(e.b, 1)
				} else {
					e.b = append(e.b, 0)
					e.bytes(tw.Value)
				}
			}
		case *diskstore.PurgeWrite:
			e.b = append(e.b, wPurge)
			e.str(w.After)
			if w.At {
				e.b = append(e.b, 1)
			} else {
				e.b = append(e.b, 0)
			}
			e.uvarint(uint64(w.Runs))
		default:
			return nil, fmt.Errorf("natsstore: cannot encode a write of type %T", w)
		}
	}
	return e.b, nil
}

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) bytes(p []byte)   { e.uvarint(uint64(len(p))); e.b = append(e.b, p...) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }

func (e *encoder) request(r *cairn.AppendRequest) {
	e.str(r.Stream)
	e.varint(r.Expected.Int64())
	e.uvarint(uint64(len(r.Events)))
	for i := range r.Events {
		ev := &r.Events[i]
		e.b = append(e.b, ev.ID[:]...)
		e.str(ev.Type)
		e.b = append(e.b, byte(ev.ContentType))
		e.bytes(ev.Data)
		e.bytes(ev.Metadata)
		e.uvarint(uint64(len(ev.Tags)))
		for _, t := range ev.Tags {
			e.str(t)
		}
	}
	if r.Condition == nil {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	c := r.Condition
	if c.After == nil {
		e.b = append(e.b, 0)
	} else {
		e.b = append(e.b, 1)
		e.uvarint(*c.After)
	}
	e.uvarint(uint64(len(c.FailIfEventsMatch.Items)))
	for _, it := range c.FailIfEventsMatch.Items {
		e.strs(it.Types)
		e.strs(it.Tags)
	}
}

func (e *encoder) strs(ss []string) {
	e.uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

// decodeRecord decodes a record. It checks the encoding, not the writes:
// a writer checked them (through a cairn.Store) before it logged them,
// and the apply checks what depends on the store.
func decodeRecord(p []byte) (*record, error) {
	d := decoder{p: p}
	if v := d.byte(); v != recordVersion {
		if d.err == nil {
			return nil, fmt.Errorf("%w: version %d; this cairn reads version %d (upgrade cairn on this node)", errRecord, v, recordVersion)
		}
		return nil, d.err
	}
	r := &record{}
	copy(r.id[:], d.take(16))
	r.time = time.UnixMicro(d.varint()).UTC()
	switch d.byte() {
	case kindCompact:
		r.compact = true
	case kindWrites:
		n := d.count()
		r.writes = make([]diskstore.Write, 0, n)
		for range n {
			if w := d.write(); w != nil {
				r.writes = append(r.writes, w)
			}
		}
	default:
		d.fail("unknown record kind")
	}
	if d.err == nil && len(d.p) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

type decoder struct {
	p   []byte
	err error
}

func (d *decoder) fail(why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errRecord, why)
	}
	d.p = nil
}

func (d *decoder) byte() byte {
	if len(d.p) < 1 {
		d.fail("truncated")
		return 0
	}
	b := d.p[0]
	d.p = d.p[1:]
	return b
}

func (d *decoder) take(n int) []byte {
	if n < 0 || len(d.p) < n {
		d.fail("truncated")
		return make([]byte, max(n, 0))
	}
	b := d.p[:n:n]
	d.p = d.p[n:]
	return b
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.p)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.p = d.p[n:]
	return v
}

// count reads a count of items each at least one byte long.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > uint64(len(d.p)) {
		d.fail("count past the end")
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	v := d.uvarint()
	if v > math.MaxInt32 {
		d.fail("length too large")
		return nil
	}
	b := d.take(int(v))
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

func (d *decoder) str() string {
	v := d.uvarint()
	if v > math.MaxInt32 {
		d.fail("length too large")
		return ""
	}
	return string(d.take(int(v)))
}

func (d *decoder) strs() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.str()
	}
	return ss
}

func (d *decoder) expected() cairn.ExpectedVersion {
	ev, err := cairn.ParseExpectedVersion(d.varint())
	if err != nil {
		d.fail("bad expected version")
	}
	return ev
}

func (d *decoder) write() diskstore.Write {
	switch k := d.byte(); k {
	case wAppend, wBatch:
		n := d.count()
		w := &diskstore.AppendWrite{Requests: make([]cairn.AppendRequest, n), Batch: k == wBatch}
		for i := range w.Requests {
			w.Requests[i] = d.request()
		}
		return w
	case wDelete, wTombstone:
		return &diskstore.DeleteWrite{Stream: d.str(), Expected: d.expected(), Tombstone: k == wTombstone}
	case wTruncate:
		return &diskstore.TruncateWrite{Stream: d.str(), Before: d.varint()}
	case wSnapshot:
		return &diskstore.SnapshotWrite{Snapshot: cairn.Snapshot{StreamID: d.str(), Version: d.varint(), Data: d.bytes(), Metadata: d.bytes()}}
	case wCommit:
		w := &diskstore.CommitWrite{Request: d.request()}
		w.Plan.Position = d.uvarint()
		w.Plan.Version = d.varint()
		n := d.count()
		for range n {
			tw := diskstore.TableWrite{Table: d.str(), Key: d.str()}
			if d.byte() == 1 {
				tw.Delete = true
			} else {
				tw.Value = d.bytes()
				if tw.Value == nil {
					tw.Value = []byte{}
				}
			}
			w.Plan.Writes = append(w.Plan.Writes, tw)
		}
		return w
	case wPurge:
		w := &diskstore.PurgeWrite{After: d.str()}
		switch d.byte() {
		case 0:
		case 1:
			w.At = true
		default:
			d.fail("a purge step's flag is neither 0 nor 1")
		}
		if runs := d.uvarint(); runs <= math.MaxInt32 {
			w.Runs = int(runs)
		} else {
			d.fail("a purge step of too many appends")
		}
		return w
	}
	d.fail("unknown write kind")
	return nil
}

func (d *decoder) request() cairn.AppendRequest {
	r := cairn.AppendRequest{Stream: d.str(), Expected: d.expected()}
	n := d.count()
	r.Events = make([]cairn.EventData, n)
	for i := range r.Events {
		e := &r.Events[i]
		copy(e.ID[:], d.take(16))
		e.Type = d.str()
		e.ContentType = cairn.ContentType(d.byte())
		e.Data = d.bytes()
		e.Metadata = d.bytes()
		e.Tags = d.strs()
	}
	if d.byte() == 1 {
		c := &cairn.AppendCondition{}
		if d.byte() == 1 {
			after := d.uvarint()
			c.After = &after
		}
		n := d.count()
		for range n {
			c.FailIfEventsMatch.Items = append(c.FailIfEventsMatch.Items, cairn.QueryItem{Types: d.strs(), Tags: d.strs()})
		}
		r.Condition = c
	}
	return r
}
