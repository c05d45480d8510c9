package links

import (
	"strconv"
	"strings"

	"github.com/cairndb/cairn"
)

// The system's event types.
const (
	// LinkType is the type of a link event: its data, "N@stream", names
	// the event at version N of stream.
	LinkType = "$>"
	// StreamReferenceType is the type of the events of $category-
	// streams: their data is the id of a stream of the category.
	StreamReferenceType = "$@"
)

// Data returns the data of a link to version of stream: "N@stream".
func Data(stream string, version int64) []byte {
	b := strconv.AppendInt(make([]byte, 0, 21+len(stream)), version, 10)
	b = append(b, '@')
	return append(b, stream...)
}

// Parse returns the stream and version that the data of a link names, and
// false when data is not "N@stream" with N a non-negative decimal number
// and a non-empty stream id.
func Parse(data []byte) (stream string, version int64, ok bool) {
	n, s, found := strings.Cut(string(data), "@")
	if !found || s == "" || n == "" || n[0] == '+' || n[0] == '-' {
		return "", 0, false
	}
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return s, v, true
}

// IsLink reports whether e is a link that names an event: its type is
// [LinkType] and its data parses.
func IsLink(e *cairn.Event) bool {
	if e.Type != LinkType {
		return false
	}
	_, _, ok := Parse(e.Data)
	return ok
}

// Resolved is an event as a reader receives it from a read that may
// resolve links.
type Resolved struct {
	// Event is the event read: for a link, the link itself. Its version
	// and position are the reader's progress (a checkpoint, an ack).
	Event cairn.Event
	// Link is set when the read resolves links and Event is a link
	// ([IsLink]).
	Link bool
	// Target is the event the link names, when Link is set and the event
	// is still there for readers of its stream: nil when its stream was
	// deleted or truncated past it, or compaction removed it.
	Target *cairn.Event
}

// Parts returns r in the form of KurrentDB's ResolvedEvent: the event and
// the link. An event that is not a resolved link is (Event, nil); a link
// whose target was found is (Target, Event); a link whose target is gone
// is (nil, Event), the link alone.
func (r *Resolved) Parts() (event, link *cairn.Event) {
	if !r.Link {
		return &r.Event, nil
	}
	return r.Target, &r.Event
}

// Bytes is the size of r as a page counts it: its event's data and
// metadata, and its target's.
func (r *Resolved) Bytes() int {
	n := cairn.EventBytes(r.Event)
	if r.Target != nil {
		n += cairn.EventBytes(*r.Target)
	}
	return n
}
