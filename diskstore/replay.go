package diskstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
)

// checkedFrame is what checkFrame found in a frame.
type checkedFrame struct {
	marker marker
	events int  // the frame's events
	filed  bool // its index writes hold blocks of index lists (filing.go)
	ids    bool // its index writes hold retry records (ids.go)
}

// checkFrame checks a frame read by seglog.Log.ReadFrame at offset off of segment seg
// before Open replays its index batch, and returns its marker and what
// else the replay needs to know of it. The
// batch must be what the committer writes: sets and deletes only, as many
// as its header counts, the last of them the marker of this very frame;
// and the frame's events must take the positions from next on, where the
// frame before ended. A frame with a correct checksum that fails these
// checks is reported as corrupt rather than applied (pebble panics on some
// kinds of record), and a frame missing between two others (zeroed, or
// lost with the end of a segment) is found by the gap in positions.
func checkFrame(frame []byte, seg uint64, off int64, next uint64) (checkedFrame, error) {
	bad := func(format string, args ...any) (checkedFrame, error) {
		return checkedFrame{}, fmt.Errorf("diskstore: %w: log segment %d: frame at offset %d: %s", cairn.ErrCorrupt, seg, off, fmt.Sprintf(format, args...))
	}
	ev := binary.LittleEndian.Uint32(frame[4:])
	events, ok := seglog.Records(frame[seglog.HeaderLen:seglog.HeaderLen+int(ev)], nil)
	if !ok {
		return bad("malformed event records")
	}
	// The batch: sequence number [8] and count [4], little-endian, then
	// per record its kind [1], key and (for a set) value, each a uvarint
	// length ‖ bytes. Pebble's own reader trusts the lengths: the batch is
	// parsed here first.
	repr := seglog.FrameIndex(frame)
	if len(repr) < 12 {
		return bad("index batch of %d bytes", len(repr))
	}
	count := binary.LittleEndian.Uint32(repr[8:])
	str := func(p []byte) (s, rest []byte, ok bool) {
		v, k := binary.Uvarint(p)
		if k <= 0 || k > 5 || v > math.MaxUint32 || uint64(len(p)-k) < v {
			return nil, nil, false
		}
		return p[k : k+int(v)], p[k+int(v):], true
	}
	var n uint32
	var last []byte // the value of the last write, when it sets the marker
	filed, ids := false, false
	for p := repr[12:]; len(p) > 0; n++ {
		kind := pebble.InternalKeyKind(p[0])
		k, rest, ok := str(p[1:])
		if !ok {
			return bad("malformed index batch")
		}
		last = nil
		filed = filed || (len(k) > 0 && k[0] == prefixList)
		ids = ids || (len(k) > 0 && k[0] == prefixID)
		switch kind {
		case pebble.InternalKeyKindSet:
			var v []byte
			if v, rest, ok = str(rest); !ok {
				return bad("malformed index batch")
			}
			if bytes.Equal(k, markerKey) {
				last = v
			}
		case pebble.InternalKeyKindDelete:
		default:
			return bad("index batch holds a record of kind %v", kind)
		}
		p = rest
	}
	if n != count {
		return bad("index batch of %d records counts %d", n, count)
	}
	if last == nil {
		return bad("index batch does not end with the marker")
	}
	m, err := decodeMarker(last)
	if err != nil {
		return checkedFrame{}, err
	}
	if m.seg != seg || m.end != off+int64(len(frame)) || m.next-uint64(len(events)) != next || m.next < next {
		return bad("marker (segment %d, end %d, next position %d) does not follow the frame before (next position %d) with %d events", m.seg, m.end, m.next, next, len(events))
	}
	return checkedFrame{marker: m, events: len(events), filed: filed, ids: ids}, nil
}
