package cairn

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Deletion records
//
// A soft delete or a tombstone changes no event of its stream, yet readers
// of the global log must learn of it: a projection that keeps a state per
// stream, a subscriber that mirrors streams elsewhere. So every engine
// records each delete and tombstone it performs as one event in the global
// log, written in the same commit as the delete: a crash keeps both or
// neither, and a refused delete writes no record. The record is an event
// of type [DeletionType] in the system stream [DeletionsStream], its data
// the JSON of a [Deletion]; engines make it with [NewDeletionRecord], and
// readers recognise it with [ParseDeletion]. Layers above present it as
// their protocols define (KurrentDB's tombstone and soft-delete metadata
// events, for instance); the engines know only this record.

const (
	// DeletionsStream is the system stream in which engines record
	// deletions. Only engines write it: a Store refuses to append to it or
	// to delete it, even through its system view.
	DeletionsStream = "$deletions"
	// DeletionType is the event type of a deletion record.
	DeletionType = "$deletion"
)

// Deletion is what a deletion record says.
type Deletion struct {
	// Stream is the stream deleted.
	Stream string `json:"stream"`
	// Hard is true for a tombstone, false for a soft delete.
	Hard bool `json:"hard"`
	// Version is the stream's version just before the delete, as an
	// expected version sees it: -1 when the stream did not exist (a
	// tombstone of a stream never written, or soft-deleted and not
	// written since).
	Version int64 `json:"version"`
}

// NewDeletionRecord returns the event that records d, made at the given
// commit time. Engines append it to [DeletionsStream] in the commit that
// performs the delete.
//
// Its ID is time-ordered (a UUID version 7, like the IDs a Store assigns)
// and follows from at and d alone: the millisecond of at, then a hash of
// d. A store never records one Deletion twice (a stream's version only
// grows, a soft delete needs a version written since the last one, and a
// tombstone ends the stream), so the IDs are distinct; and copies of a log
// that apply the same delete at the same commit time (a replicated
// engine's nodes) write the same record.
func NewDeletionRecord(d Deletion, at time.Time) (EventData, error) {
	data, err := json.Marshal(d)
	if err != nil {
		return EventData{}, fmt.Errorf("deletion record of %q: %w", d.Stream, err)
	}
	sum := sha256.Sum256(data)
	var id uuid.UUID
	ms := uint64(at.UnixMilli())
	binary.BigEndian.PutUint64(id[0:8], ms<<16|0x7<<12|uint64(binary.BigEndian.Uint16(sum[0:2]))&0xfff)
	copy(id[8:], sum[2:10])
	id[8] = id[8]&0x3f | 0x80 // variant 10
	return EventData{ID: id, Type: DeletionType, ContentType: ContentJSON, Data: data}, nil
}

// ParseDeletion returns what e records when it is a deletion record, and
// false for any other event.
func ParseDeletion(e *Event) (Deletion, bool) {
	if e.StreamID != DeletionsStream || e.Type != DeletionType {
		return Deletion{}, false
	}
	var d Deletion
	if err := json.Unmarshal(e.Data, &d); err != nil || d.Stream == "" {
		return Deletion{}, false
	}
	return d, true
}
