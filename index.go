package cairn

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
)

// The index
//
// Engines that implement [IndexReader] keep one index, written in the same
// commit as the events it lists: for each [IndexKey] an ordered list of the
// positions of the events filed under it, numbered from 0 in commit order
// with no gaps. [IndexKeys] says under which keys an event is filed; every
// engine calls it, so that every engine files the same events under the
// same keys. The index serves KurrentDB's standard projections as streams
// of links ($ce-<category>, $et-<type>, $streams, $category-<category>,
// $bc-<correlation id>), reads by category and type, and the queries and
// append conditions of dynamic consistency boundaries ([Query],
// [AppendCondition]).

// IndexKind says what an [IndexKey]'s value names.
type IndexKind uint8

const (
	// IndexCategory files every event of the streams of a category
	// (see [Category]); KurrentDB reads it as $ce-<category>.
	IndexCategory IndexKind = iota + 1
	// IndexType files every event of one type; KurrentDB's $et-<type>.
	IndexType
	// IndexTag files every event that carries a tag.
	IndexTag
	// IndexStreams files the first event (version 0) of every stream,
	// under the empty value; KurrentDB's $streams.
	IndexStreams
	// IndexCategoryStreams files the first event of every stream of a
	// category; KurrentDB's $category-<category>.
	IndexCategoryStreams
	// IndexCorrelation files every event whose metadata, a JSON object,
	// has a string "$correlationId"; KurrentDB's $bc-<correlation id>.
	IndexCorrelation
)

// String returns the kind's name.
func (k IndexKind) String() string {
	switch k {
	case IndexCategory:
		return "category"
	case IndexType:
		return "type"
	case IndexTag:
		return "tag"
	case IndexStreams:
		return "streams"
	case IndexCategoryStreams:
		return "category-streams"
	case IndexCorrelation:
		return "correlation"
	}
	return "unknown"
}

// IndexKey names one list of the index.
type IndexKey struct {
	Kind  IndexKind
	Value string
}

// CategorySeparator ends a stream's category: the category of "order-42"
// is "order".
const CategorySeparator = "-"

// Category returns the category of stream: the part of its id before the
// first [CategorySeparator], and false when the id has none or is a system
// stream (it starts with '$'), which belongs to no category.
func Category(stream string) (string, bool) {
	if strings.HasPrefix(stream, "$") {
		return "", false
	}
	c, _, ok := strings.Cut(stream, CategorySeparator)
	return c, ok && c != ""
}

// correlationKey is the metadata property that IndexCorrelation files by.
var correlationKey = []byte(`"$correlationId"`)

// IndexKeys appends to dst the keys under which the event e, recorded at
// version of stream, is filed, and returns the extended slice. Events of
// system streams (ids starting with '$') are filed only under their tags.
// A key appears once even when a tag is repeated.
func IndexKeys(dst []IndexKey, stream string, version int64, e *EventData) []IndexKey {
	for i, t := range e.Tags {
		if !slices.Contains(e.Tags[:i], t) {
			dst = append(dst, IndexKey{IndexTag, t})
		}
	}
	if strings.HasPrefix(stream, "$") {
		return dst
	}
	dst = append(dst, IndexKey{IndexType, e.Type})
	cat, hasCat := Category(stream)
	if hasCat {
		dst = append(dst, IndexKey{IndexCategory, cat})
	}
	if version == 0 {
		dst = append(dst, IndexKey{IndexStreams, ""})
		if hasCat {
			dst = append(dst, IndexKey{IndexCategoryStreams, cat})
		}
	}
	if len(e.Metadata) > 0 && bytes.Contains(e.Metadata, correlationKey) {
		var m struct {
			ID any `json:"$correlationId"`
		}
		if json.Unmarshal(e.Metadata, &m) == nil {
			if id, ok := m.ID.(string); ok && id != "" {
				dst = append(dst, IndexKey{IndexCorrelation, id})
			}
		}
	}
	return dst
}

// IndexedEvent is one entry of an index list.
type IndexedEvent struct {
	// Number is the entry's 0-based number in its list.
	Number int64
	// Position is the position of the event the entry files.
	Position uint64
	// Event is the event, when Found.
	Event Event
	// Found is false when the event is no longer stored (compaction
	// removed it). The entry, and the numbers of the others, remain.
	Found bool
}

// IndexReader is implemented by engines that keep the index.
//
// The rules every such engine follows, and which storetest checks:
//
//   - Every event is filed under the keys [IndexKeys] gives, in the same
//     commit as the event: a reader that sees the event sees its entries,
//     and an append that fails files nothing.
//   - Each list is numbered from 0 in the order of its events' positions,
//     with no gaps; a number, once given, always names the same position.
//   - Deletes, truncations and tombstones change no list; compaction keeps
//     every entry and its number (the entry's Found becomes false once the
//     event is gone).
type IndexReader interface {
	// ReadIndex returns at most count entries of the list key, starting at
	// number from, in direction dir. A backward read with from = StreamEnd
	// starts at the last entry. A list with no entry returns none and no
	// error.
	ReadIndex(ctx context.Context, key IndexKey, from int64, count int, dir Direction) ([]IndexedEvent, error)
}

// Query selects events by type and tag, as the dynamic consistency boundary
// specification defines it: an event matches when it matches any item; the
// empty query (no items) matches every event.
//
// A query selects among the events the log holds: those [Backend.ReadAll]
// returns. Events of deleted or truncated streams match until compaction
// removes them, as they stay in ReadAll until then.
type Query struct {
	Items []QueryItem
}

// QueryItem matches an event whose type is one of Types (any type, when
// Types is empty) and that carries every tag of Tags. An item with neither
// types nor tags matches every event.
//
// The index files the events of system streams (ids starting with '$')
// under their tags only (see [IndexKeys]), so an item with Types never
// matches them: a query reads the index, and its matches are the index's.
type QueryItem struct {
	Types []string
	Tags  []string
}

// Limits on a [Query], which the Store checks.
const (
	// MaxQueryItems is the most items one query may have.
	MaxQueryItems = 64
	// MaxQueryItemTypes is the most types one item may list.
	MaxQueryItemTypes = 64
	// MaxQueryItemTags is the most tags one item may list: an event carries
	// at most MaxTags, so an item with more could match nothing.
	MaxQueryItemTags = MaxTags
)

// All reports whether q matches every event.
func (q Query) All() bool {
	if len(q.Items) == 0 {
		return true
	}
	for _, it := range q.Items {
		if it.All() {
			return true
		}
	}
	return false
}

// All reports whether the item matches every event: it has neither types
// nor tags.
func (it QueryItem) All() bool { return len(it.Types) == 0 && len(it.Tags) == 0 }

// Matches reports whether q matches e, an event as recorded (its stream
// decides whether its type can match; see [QueryItem]).
func (q Query) Matches(e *Event) bool {
	if len(q.Items) == 0 {
		return true
	}
	for _, it := range q.Items {
		if it.Matches(e) {
			return true
		}
	}
	return false
}

// Matches reports whether the item matches e, an event as recorded.
func (it QueryItem) Matches(e *Event) bool {
	if len(it.Types) > 0 && (strings.HasPrefix(e.StreamID, "$") || !slices.Contains(it.Types, e.Type)) {
		return false
	}
	for _, t := range it.Tags {
		if !slices.Contains(e.Tags, t) {
			return false
		}
	}
	return true
}

// AppendCondition makes an append conditional, as the dynamic consistency
// boundary specification defines it: the append fails, writing nothing,
// when an event matching FailIfEventsMatch has a position after After (any
// position, when After is nil). A caller reads with a query, decides, and
// appends with the same query and After set to the last position its read
// covered, so that the append succeeds only if no matching event was
// appended since.
type AppendCondition struct {
	FailIfEventsMatch Query
	After             *uint64
}

// Querier is implemented by engines that read by [Query] and check append
// conditions.
//
// The rules every such engine follows, and which storetest checks:
//
//   - ReadQuery returns the events that match the query ([Query.Matches]),
//     in position order, at most count of them, starting at position from
//     (inclusive) in direction dir; a backward read with from = LogEnd
//     starts at the last event. Its events are exactly those of ReadAll
//     over the same positions that match. It reads the index, so that its
//     cost grows with the events the query's items select, not with the
//     log; an item with neither types nor tags selects every event, and
//     reads the log.
//   - The engine's AppendBatch, and its CommitAll when it implements
//     [TxCommitter], check every request's [AppendRequest.Condition] in the
//     same critical section or transaction that writes, after the point
//     that orders positions, together with the expected versions: when a
//     condition fails the engine writes nothing and returns a
//     [*ConditionError] (inside a [*BatchError] from AppendBatch, at the
//     request's index) naming the first conflicting position: the lowest
//     position after After whose event matches the query.
//   - A condition is checked against the events the log holds when the
//     batch is written (the events ReadQuery would return): the batch's
//     own events never fail it.
//   - The expected version is checked first: a request that fails both its
//     expected version and its condition reports the
//     [*WrongExpectedVersionError]. A tombstoned stream reports
//     [ErrStreamDeleted] before either.
//   - An append recognised as a retry by its first event ID returns the
//     earlier result before any condition is checked (its own events would
//     fail it).
type Querier interface {
	ReadQuery(ctx context.Context, q Query, from uint64, count int, dir Direction) ([]Event, error)
}
