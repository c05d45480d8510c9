package cairn

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits on what the Store accepts.
const (
	// MaxStreamIDBytes is the longest stream id, in bytes.
	MaxStreamIDBytes = 512
	// MaxTypeBytes is the longest event type, in bytes.
	MaxTypeBytes = 256
	// MaxTagBytes is the longest tag, in bytes.
	MaxTagBytes = 256
	// MaxTags is the most tags one event may carry.
	MaxTags = 64
	// MaxTableBytes is the longest read-model table name, in bytes.
	MaxTableBytes = 512
	// MaxKeyBytes is the longest read-model key, in bytes. With the
	// longest table name it keeps an entry's index row within what a
	// PostgreSQL B-tree takes (about 2.7 KB).
	MaxKeyBytes = 1024
	// DefaultMaxEventBytes is the default limit on an event's data plus
	// metadata; see [Options.MaxEventBytes].
	DefaultMaxEventBytes = 16 << 20
)

// ValidateStreamID returns an error when id is not a stream id that callers
// may write: non-empty UTF-8, at most 512 bytes, no NUL or other control
// characters, and not starting with '$' (reserved for the system).
func ValidateStreamID(id string) error {
	if err := validateName("stream", id, MaxStreamIDBytes); err != nil {
		return err
	}
	if id[0] == '$' {
		return invalidf("stream", "%q starts with '$', which is reserved for system streams", id)
	}
	return nil
}

// AllStream names the global log in the KurrentDB protocol; no stream has
// that id.
const AllStream = "$all"

// ValidateSystemStreamID returns an error when id is not a stream id that
// the system may write: the rules of [ValidateStreamID], except that it may
// start with '$'; only [AllStream], the global log, is refused.
func ValidateSystemStreamID(id string) error {
	if err := validateName("stream", id, MaxStreamIDBytes); err != nil {
		return err
	}
	if id == AllStream {
		return invalidf("stream", "%q is the global log, not a stream", id)
	}
	return nil
}

// validateName checks the rules shared by stream ids, event types and tags.
func validateName(field, s string, max int) error {
	if s == "" {
		return invalidf(field, "must not be empty")
	}
	if len(s) > max {
		return invalidf(field, "is %d bytes long, the limit is %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return invalidf(field, "%q is not valid UTF-8", s)
	}
	for i, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return invalidf(field, "%q has a control character (%U) at byte %d", s, r, i)
		}
	}
	return nil
}

// smallAppend is the number of events up to which prepareEvents finds
// duplicate ids without a map.
const smallAppend = 16

// prepareEvents validates events and returns a copy in which every event has
// an ID, from ids where the caller gave none. The caller's slice is not modified.
func prepareEvents(events []EventData, maxBytes int, ids *idGen) ([]EventData, error) {
	return prepareEventsInto(nil, events, maxBytes, ids)
}

// prepareEventsInto is prepareEvents copying the events into buf when it
// is large enough.
func prepareEventsInto(buf, events []EventData, maxBytes int, ids *idGen) ([]EventData, error) {
	if len(events) == 0 {
		return nil, invalidf("events", "an append needs at least one event")
	}
	out := buf[:0]
	if cap(out) >= len(events) {
		out = out[:len(events)]
	} else {
		out = make([]EventData, len(events))
	}
	// Ids are checked for duplicates in a map made when an event brings
	// its own id, or, in a small append, by comparing them.
	var seen map[uuid.UUID]int
	small := len(events) <= smallAppend
	for i, e := range events {
		if !nameOK(e.Type, MaxTypeBytes) || e.ContentType > ContentBinary ||
			len(e.Data)+len(e.Metadata) > maxBytes || len(e.Tags) > MaxTags || !tagsOK(e.Tags) {
			return nil, eventError(i, e, maxBytes)
		}
		if e.ID != uuid.Nil {
			j, dup := -1, false
			if small {
				for j = 0; j < i && out[j].ID != e.ID; j++ {
				}
				dup = j < i
			} else {
				if seen == nil {
					seen = make(map[uuid.UUID]int, len(events))
				}
				j, dup = seen[e.ID]
				seen[e.ID] = i
			}
			if dup {
				return nil, invalidf(fmt.Sprintf("events[%d].id", i), "%s is also the id of events[%d]", e.ID, j)
			}
		}
		out[i] = e
	}
	if err := ids.fill(out); err != nil {
		return nil, fmt.Errorf("generate event ids: %w", err)
	}
	return out, nil
}

// eventError says what is wrong with events[i], which failed the quick checks
// of prepareEvents.
func eventError(i int, e EventData, maxBytes int) error {
	field := fmt.Sprintf("events[%d]", i)
	if err := validateName(field+".type", e.Type, MaxTypeBytes); err != nil {
		return err
	}
	if e.ContentType != ContentJSON && e.ContentType != ContentBinary {
		return invalidf(field+".content_type", "unknown content type %d", e.ContentType)
	}
	if n := len(e.Data) + len(e.Metadata); n > maxBytes {
		return invalidf(field, "data and metadata are %d bytes, the limit is %d", n, maxBytes)
	}
	if len(e.Tags) > MaxTags {
		return invalidf(field+".tags", "has %d tags, the limit is %d", len(e.Tags), MaxTags)
	}
	for j, tag := range e.Tags {
		if err := validateName(fmt.Sprintf("%s.tags[%d]", field, j), tag, MaxTagBytes); err != nil {
			return err
		}
	}
	return nil
}

// nameOK reports whether validateName would accept s, without building an
// error: printable ASCII is checked byte by byte, anything else the long way.
func nameOK(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return validateName("", s, max) == nil
		}
	}
	return true
}

func tagsOK(tags []string) bool {
	for _, t := range tags {
		if !nameOK(t, MaxTagBytes) {
			return false
		}
	}
	return true
}

func validateExpected(e ExpectedVersion) error {
	if !e.Valid() {
		_, err := ParseExpectedVersion(e.n)
		return err
	}
	return nil
}

func validateCount(count int) error {
	if count <= 0 {
		return invalidf("count", "must be positive, got %d", count)
	}
	return nil
}

func validateDirection(dir Direction) error {
	if dir != Forward && dir != Backward {
		return invalidf("direction", "unknown direction %d: use Forward or Backward", dir)
	}
	return nil
}

// ValidateTable returns an error when table is not a read-model table name:
// non-empty UTF-8, at most 512 bytes, no NUL or other control characters.
// The error matches [ErrInvalidArgument] and names the field "table".
//
// It is the one rule for table names. The Store checks the tables it reads
// with it; a [Tx] checks the tables a projection names with it, because those
// calls reach the engine without passing through the Store.
func ValidateTable(table string) error {
	return validateName("table", table, MaxTableBytes)
}

// ValidateKey returns an error when key is not a read-model key: non-empty
// UTF-8, at most [MaxKeyBytes] bytes, without NUL. Other control characters
// are allowed: a key is data, not a name. The error matches
// [ErrInvalidArgument] and names the field "key".
//
// The rules are what every engine can store and list: a PostgreSQL text
// column refuses NUL and invalid UTF-8, and so does a cairn.v1 message.
// The empty string is refused because a scan resumes after the last key it
// returned ([ReadModelReader]): a page that ended with the empty key could
// not be followed. As with [ValidateTable], the Store checks the keys it
// reads with it, and a [Tx] the keys a projection names.
func ValidateKey(key string) error {
	if key == "" {
		return invalidf("key", "must not be empty")
	}
	return validateKeyPart("key", key)
}

// ValidateScan returns an error when table, prefix and after are not the
// arguments of a read-model scan ([ReadModelReader.ReadModelScan]): table
// follows [ValidateTable]; prefix and after may be empty, and are otherwise
// what a key may start with (UTF-8, at most [MaxKeyBytes] bytes, without
// NUL). The error matches [ErrInvalidArgument] and names the field "table",
// "prefix" or "after".
func ValidateScan(table, prefix, after string) error {
	if err := ValidateTable(table); err != nil {
		return err
	}
	if err := validateKeyPart("prefix", prefix); err != nil {
		return err
	}
	return validateKeyPart("after", after)
}

// validateKeyPart checks a key, or the start of one, but not that it is
// non-empty.
func validateKeyPart(field, s string) error {
	if len(s) > MaxKeyBytes {
		return invalidf(field, "is %d bytes long, the limit is %d", len(s), MaxKeyBytes)
	}
	if !utf8.ValidString(s) {
		return invalidf(field, "%q is not valid UTF-8", s)
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return invalidf(field, "%q has a NUL byte at byte %d", s, i)
	}
	return nil
}

// ValidateQuery returns an error when q is not a query the Store accepts:
// at most [MaxQueryItems] items, each with at most [MaxQueryItemTypes] types
// and [MaxQueryItemTags] tags, every type and tag a valid name (non-empty
// UTF-8 without control characters, within [MaxTypeBytes] and
// [MaxTagBytes]). The error matches [ErrInvalidArgument] and names the
// field under field, for example "query.items[2].tags[0]".
func ValidateQuery(field string, q Query) error {
	if len(q.Items) > MaxQueryItems {
		return invalidf(field+".items", "has %d items, the limit is %d", len(q.Items), MaxQueryItems)
	}
	for i, it := range q.Items {
		if len(it.Types) <= MaxQueryItemTypes && len(it.Tags) <= MaxQueryItemTags && namesOK(it.Types, MaxTypeBytes) && namesOK(it.Tags, MaxTagBytes) {
			continue // the quick check; the long way below says what is wrong
		}
		item := fmt.Sprintf("%s.items[%d]", field, i)
		if len(it.Types) > MaxQueryItemTypes {
			return invalidf(item+".types", "has %d types, the limit is %d", len(it.Types), MaxQueryItemTypes)
		}
		if len(it.Tags) > MaxQueryItemTags {
			return invalidf(item+".tags", "has %d tags, the limit is %d (an event carries at most %d)", len(it.Tags), MaxQueryItemTags, MaxTags)
		}
		for j, t := range it.Types {
			if err := validateName(fmt.Sprintf("%s.types[%d]", item, j), t, MaxTypeBytes); err != nil {
				return err
			}
		}
		for j, t := range it.Tags {
			if err := validateName(fmt.Sprintf("%s.tags[%d]", item, j), t, MaxTagBytes); err != nil {
				return err
			}
		}
	}
	return nil
}

func namesOK(names []string, max int) bool {
	for _, n := range names {
		if !nameOK(n, max) {
			return false
		}
	}
	return true
}

// validateQuery is ValidateQuery.
func validateQuery(field string, q Query) error { return ValidateQuery(field, q) }

// ValidateIndexKey returns an error when key names no list of the index: an
// unknown kind, a value for [IndexStreams] (whose list has none), or a value
// that no event could be filed under (empty, too long, or, for categories,
// types and tags, not a valid name). The error matches [ErrInvalidArgument].
func ValidateIndexKey(key IndexKey) error {
	switch key.Kind {
	case IndexStreams:
		if key.Value != "" {
			return invalidf("key.value", "the streams list has no value, got %q", key.Value)
		}
		return nil
	case IndexCategory, IndexCategoryStreams:
		if err := validateName("key.value", key.Value, MaxStreamIDBytes); err != nil {
			return err
		}
		if strings.Contains(key.Value, CategorySeparator) || strings.HasPrefix(key.Value, "$") {
			return invalidf("key.value", "%q is not a category: a category has no %q and does not start with '$'", key.Value, CategorySeparator)
		}
		return nil
	case IndexType:
		return validateName("key.value", key.Value, MaxTypeBytes)
	case IndexTag:
		return validateName("key.value", key.Value, MaxTagBytes)
	case IndexCorrelation:
		// Any non-empty string of the metadata is filed.
		if key.Value == "" {
			return invalidf("key.value", "must not be empty")
		}
		return nil
	}
	return invalidf("key.kind", "unknown index kind %d", key.Kind)
}
