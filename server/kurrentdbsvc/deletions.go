package kurrentdbsvc

import (
	"math"

	"github.com/cairndb/cairn"
)

// KurrentDB's records of deletions, as its clients read them in $all: a
// tombstone is a $streamDeleted event of the stream itself, at revision
// long.MaxValue; a soft delete is a $metadata event of the stream's
// metadata stream whose $tb is long.MaxValue. cairn's engines record both
// as one cairn.Deletion in cairn.DeletionsStream, which deletionAsKurrent
// presents in KurrentDB's form.
const (
	typeStreamDeleted = "$streamDeleted"
	typeMetadata      = "$metadata"
)

// softDeleteMetadata is the metadata KurrentDB writes for a soft delete.
var softDeleteMetadata = []byte(`{"$tb":9223372036854775807}`)

// deletionAsKurrent returns e in KurrentDB's form when it is a deletion
// record, and e as it is otherwise. The position, id and creation time are
// the record's. A soft delete's $metadata event has the record's version
// in cairn.DeletionsStream as its revision: cairn writes no event to the
// metadata stream, whose reads are not changed by a delete.
func deletionAsKurrent(e cairn.Event) cairn.Event {
	d, ok := cairn.ParseDeletion(&e)
	if !ok {
		return e
	}
	if d.Hard {
		e.StreamID, e.Type, e.Version = d.Stream, typeStreamDeleted, math.MaxInt64
		e.ContentType, e.Data, e.Metadata = cairn.ContentBinary, nil, nil
		return e
	}
	e.StreamID, e.Type = metaPrefix+d.Stream, typeMetadata
	e.ContentType, e.Data, e.Metadata = cairn.ContentJSON, softDeleteMetadata, nil
	return e
}
