package links

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// The prefixes and names of the standard projections' streams.
const (
	CategoryPrefix       = "$ce-"
	EventTypePrefix      = "$et-"
	StreamsStream        = "$streams"
	CategoryStreamPrefix = "$category-"
	CorrelationPrefix    = "$bc-"
)

// Virtual returns the index list that stream reads, when stream is one of
// the standard projections' streams: $ce-<category> (every event of the
// category), $et-<type> (every event of the type), $streams (the first
// event of every stream), $category-<category> (the first event of every
// stream of the category) and $bc-<correlation id>. A name of that form
// whose list can hold no entry (a category with a '-', the type $>) is
// virtual too: it reads as a stream that does not exist.
func Virtual(stream string) (cairn.IndexKey, bool) {
	if stream == StreamsStream {
		return cairn.IndexKey{Kind: cairn.IndexStreams}, true
	}
	for _, v := range []struct {
		prefix string
		kind   cairn.IndexKind
	}{
		{CategoryPrefix, cairn.IndexCategory},
		{EventTypePrefix, cairn.IndexType},
		{CategoryStreamPrefix, cairn.IndexCategoryStreams},
		{CorrelationPrefix, cairn.IndexCorrelation},
	} {
		if rest, ok := strings.CutPrefix(stream, v.prefix); ok && rest != "" {
			return cairn.IndexKey{Kind: v.kind, Value: rest}, true
		}
	}
	return cairn.IndexKey{}, false
}

// CheckWrite returns an error when stream cannot be appended to because it
// is one of the standard projections' streams ([Virtual]): they are read
// from the index and never written. The error is a
// [*cairn.InvalidArgumentError] for the field "stream". Every protocol of
// the server checks its appends with it, so that all refuse them alike.
func CheckWrite(stream string) error {
	if _, virtual := Virtual(stream); virtual {
		return &cairn.InvalidArgumentError{Field: "stream", Reason: fmt.Sprintf("%q is a standard projection's stream, read from the index: it is not written", stream)}
	}
	return nil
}

// StreamOf returns the name of the virtual stream that reads key: the
// inverse of [Virtual]. Tags have no stream; their name is empty.
func StreamOf(key cairn.IndexKey) string {
	switch key.Kind {
	case cairn.IndexCategory:
		return CategoryPrefix + key.Value
	case cairn.IndexType:
		return EventTypePrefix + key.Value
	case cairn.IndexStreams:
		return StreamsStream
	case cairn.IndexCategoryStreams:
		return CategoryStreamPrefix + key.Value
	case cairn.IndexCorrelation:
		return CorrelationPrefix + key.Value
	}
	return ""
}

// fillable reports whether the index can hold entries under key: a
// category is the part of a stream id before its first '-', and KurrentDB
// files no link under the type of links.
func fillable(key cairn.IndexKey) bool {
	switch key.Kind {
	case cairn.IndexCategory, cairn.IndexCategoryStreams:
		return !strings.Contains(key.Value, cairn.CategorySeparator) && !strings.HasPrefix(key.Value, "$") &&
			len(key.Value) < cairn.MaxStreamIDBytes
	case cairn.IndexType:
		return key.Value != LinkType && len(key.Value) <= cairn.MaxTypeBytes
	}
	return true
}

// linkNamespace makes the ids of virtual events: a name-based UUID of the
// virtual stream and the entry's number, the same on every read.
var linkNamespace = uuid.MustParse("6f3c1a52-9d0e-4b7a-8c21-5e4f0d93b7a1")

// linkID returns the id of entry n of the virtual stream.
func linkID(stream string, n int64) uuid.UUID {
	return uuid.NewSHA1(linkNamespace, strconv.AppendInt([]byte(stream+"\x00"), n, 10))
}

// entryEvent returns the event that entry e of the virtual stream reads
// as: a link to the event the entry files ($> with data N@stream), or for
// $category- streams a stream reference ($@ with the stream's id as data).
// The event has the entry's number as its version and the filed event's
// position as its position; it is not in the log. An entry whose event is
// gone and whose stream the engine does not say reads as a link with no
// data, which names no event.
func entryEvent(stream string, key cairn.IndexKey, e *cairn.IndexedEvent) cairn.Event {
	ev := cairn.Event{
		EventData: cairn.EventData{
			ID:          linkID(stream, e.Number),
			Type:        LinkType,
			ContentType: cairn.ContentBinary,
		},
		StreamID: stream,
		Version:  e.Number,
		Position: e.Position,
	}
	target := &e.Event
	if target.StreamID == "" {
		return ev
	}
	ev.Created = target.Created
	switch {
	case key.Kind == cairn.IndexCategoryStreams:
		ev.Type = StreamReferenceType
		ev.Data = []byte(target.StreamID)
	case key.Kind == cairn.IndexCategory && e.Found && IsLink(target):
		// KurrentDB's $by_category links to what a link names.
		ev.Data = target.Data
	default:
		ev.Data = Data(target.StreamID, target.Version)
	}
	return ev
}
