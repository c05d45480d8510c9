package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// tag says where in its source a projection was when it wrote an event of
// its own (a checkpoint, a partition's state, a result), in the metadata of
// that event, in the format of KurrentDB's checkpoint tags:
//
//	{"$v":"<projection id>:<epoch>:<version>:1","$c":<position>,"$p":<position>}
//	{"$v":"…","$s":{"<stream>":<version>}}
//
// $c and $p (KurrentDB's commit and prepare positions, one position in
// cairn) are the global position of the last event processed, $s the
// version of the last event processed of a projection reading one stream;
// -1 when none was. cairn adds $shared, the shared state of a bi-state
// projection, to its checkpoints.
type tag struct {
	V      string           `json:"$v"`
	C      *int64           `json:"$c,omitempty"`
	P      *int64           `json:"$p,omitempty"`
	S      map[string]int64 `json:"$s,omitempty"`
	Shared json.RawMessage  `json:"$shared,omitempty"`
}

// mark identifies a place in a projection's history: the projection (its
// id), its epoch, and the position after the last event it processed.
type mark struct {
	id, epoch, version int64
	stream             string // the source stream, "" for the global log
	next               uint64 // the position to read next
}

func (m mark) tag() tag {
	t := tag{V: fmt.Sprintf("%d:%d:%d:1", m.id, m.epoch, m.version)}
	last := int64(m.next) - 1
	if m.stream != "" {
		t.S = map[string]int64{m.stream: last}
	} else {
		t.C, t.P = &last, &last
	}
	return t
}

func (m mark) metadata(shared []byte) []byte {
	t := m.tag()
	t.Shared = shared
	b, err := json.Marshal(t)
	if err != nil {
		// A tag is numbers and strings; it always marshals.
		panic(fmt.Sprintf("marshal checkpoint tag: %v", err))
	}
	return b
}

// String formats the position as KurrentDB's statistics do.
func (m mark) String() string {
	last := int64(m.next) - 1
	if m.stream != "" {
		return fmt.Sprintf("%s: %d", m.stream, last)
	}
	return fmt.Sprintf("C:%d/P:%d", last, last)
}

// parseTag reads the mark of one of a projection's events.
func parseTag(meta []byte) (mark, []byte, error) {
	var t tag
	if err := json.Unmarshal(meta, &t); err != nil {
		return mark{}, nil, err
	}
	parts := strings.Split(t.V, ":")
	if len(parts) < 3 {
		return mark{}, nil, fmt.Errorf("projection version %q is not id:epoch:version", t.V)
	}
	var m mark
	var err error
	for i, dst := range []*int64{&m.id, &m.epoch, &m.version} {
		if *dst, err = strconv.ParseInt(parts[i], 10, 64); err != nil {
			return mark{}, nil, fmt.Errorf("projection version %q: %v", t.V, err)
		}
	}
	var last int64
	switch {
	case len(t.S) == 1:
		for s, v := range t.S {
			m.stream, last = s, v
		}
	case t.C != nil:
		last = *t.C
	default:
		return mark{}, nil, errors.New("the tag has no position")
	}
	if last < -1 {
		return mark{}, nil, fmt.Errorf("position %d is negative", last)
	}
	m.next = uint64(last + 1)
	return m, t.Shared, nil
}

// sameRun reports whether a mark was written by this projection (the same
// id) in its current epoch.
func (m mark) sameRun(o mark) bool { return m.id == o.id && m.epoch == o.epoch }

// after reports whether m lies beyond o: written after o's position.
func (m mark) after(o mark) bool { return m.next > o.next }

// checkpoint is the last checkpoint of a projection as read from its
// checkpoint stream.
type checkpoint struct {
	at     mark
	state  []byte // the root partition's state, JSON; nil for none
	shared []byte // the shared state of a bi-state projection
}

// readCheckpoint returns the projection's last checkpoint, whether there is
// one, and the version of the checkpoint stream's last event (-1: none),
// which the next checkpoint expects.
func readCheckpoint(ctx context.Context, store *cairn.Store, stream string) (checkpoint, bool, int64, error) {
	evs, err := store.ReadStream(ctx, stream, cairn.StreamEnd, 1, cairn.Backward)
	if errors.Is(err, cairn.ErrStreamNotFound) || (err == nil && len(evs) == 0) {
		return checkpoint{}, false, -1, nil
	}
	if err != nil {
		return checkpoint{}, false, -1, err
	}
	e := evs[0]
	m, shared, err := parseTag(e.Metadata)
	if err != nil {
		return checkpoint{}, false, e.Version, fmt.Errorf("%s@%d: %w: %v", stream, e.Version, cairn.ErrCorrupt, err)
	}
	cp := checkpoint{at: m, shared: shared}
	if s := strings.TrimSpace(string(e.Data)); s != "" && s != "null" {
		cp.state = e.Data
	}
	return cp, true, e.Version, nil
}

// readPartitionState returns the state of a partition as of the checkpoint
// at: the newest $Checkpoint of the current run whose position is not
// beyond at. Entries beyond at exist only on engines whose batches are not
// atomic, after a crash between writing them and writing the checkpoint.
func readPartitionState(ctx context.Context, store *cairn.Store, stream string, at mark) ([]byte, bool, error) {
	from := cairn.StreamEnd
	for {
		evs, err := store.ReadStream(ctx, stream, from, 32, cairn.Backward)
		if errors.Is(err, cairn.ErrStreamNotFound) || (err == nil && len(evs) == 0) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		for _, e := range evs {
			m, _, err := parseTag(e.Metadata)
			if err != nil {
				return nil, false, fmt.Errorf("%s@%d: %w: %v", stream, e.Version, cairn.ErrCorrupt, err)
			}
			if !m.sameRun(at) {
				// Earlier entries are older still.
				return nil, false, nil
			}
			if !m.after(at) {
				if s := strings.TrimSpace(string(e.Data)); s == "" || s == "null" {
					return nil, true, nil
				}
				return e.Data, true, nil
			}
		}
		last := evs[len(evs)-1].Version
		if last == 0 || len(evs) < 32 {
			return nil, false, nil
		}
		from = last - 1
	}
}

// idSpace is the namespace of the ids cairn gives the events projections
// write (UUID version 5, RFC 9562).
var idSpace = uuid.MustParse("6f1c1f2e-5a43-4d55-9a5e-8f0c8a1d7c31")

// eventID returns the id of an event a projection writes: a function of
// the projection, its epoch, and where in its source it was, so that
// writing the same event again after a crash is recognised as a retry.
func eventID(name string, id, epoch int64, parts ...string) uuid.UUID {
	key := name + "\x00" + strconv.FormatInt(id, 10) + "\x00" + strconv.FormatInt(epoch, 10)
	for _, p := range parts {
		key += "\x00" + p
	}
	return uuid.NewSHA1(idSpace, []byte(key))
}
