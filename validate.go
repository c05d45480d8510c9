package cairn

import (
	"fmt"
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

// prepareEvents validates events and returns a copy in which every event has
// an ID, from ids where the caller gave none. The caller's slice is not modified.
func prepareEvents(events []EventData, maxBytes int, ids *idGen) ([]EventData, error) {
	if len(events) == 0 {
		return nil, invalidf("events", "an append needs at least one event")
	}
	out := make([]EventData, len(events))
	seen := make(map[uuid.UUID]int, len(events))
	for i, e := range events {
		field := fmt.Sprintf("events[%d]", i)
		if err := validateName(field+".type", e.Type, MaxTypeBytes); err != nil {
			return nil, err
		}
		if e.ContentType != ContentJSON && e.ContentType != ContentBinary {
			return nil, invalidf(field+".content_type", "unknown content type %d", e.ContentType)
		}
		if n := len(e.Data) + len(e.Metadata); n > maxBytes {
			return nil, invalidf(field, "data and metadata are %d bytes, the limit is %d", n, maxBytes)
		}
		if len(e.Tags) > MaxTags {
			return nil, invalidf(field+".tags", "has %d tags, the limit is %d", len(e.Tags), MaxTags)
		}
		for j, tag := range e.Tags {
			if err := validateName(fmt.Sprintf("%s.tags[%d]", field, j), tag, MaxTagBytes); err != nil {
				return nil, err
			}
		}
		if e.ID != uuid.Nil {
			if j, ok := seen[e.ID]; ok {
				return nil, invalidf(field+".id", "%s is also the id of events[%d]", e.ID, j)
			}
			seen[e.ID] = i
		}
		out[i] = e
	}
	if err := ids.fill(out); err != nil {
		return nil, fmt.Errorf("generate event ids: %w", err)
	}
	return out, nil
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

func validateTable(table string) error {
	return validateName("table", table, MaxStreamIDBytes)
}
