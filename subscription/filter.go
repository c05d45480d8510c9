package subscription

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cairndb/cairn"
)

// Filter selects the events a subscription delivers; the store still scans
// the others, and a subscription on $all reports its progress through them
// with checkpoint messages (see [Options.CheckpointEvery]).
//
// An event passes when it satisfies every criterion that is set. Within one
// criterion the alternatives are ORed: StreamPrefixes ["order-", "invoice-"]
// passes events of streams that start with either. The zero Filter passes
// every event.
//
// The fields are plain strings so that a Filter can be stored (persistent
// subscriptions keep theirs in the store) and received from the network. The
// regular expressions use Go's [regexp] syntax and are unanchored, as in the
// KurrentDB protocol: use ^ and $ to anchor them.
type Filter struct {
	// StreamPrefixes passes events whose stream id starts with one of them.
	// A prefix that names one of KurrentDB's secondary indexes passes the
	// events that index lists: $idx-ce-<category> the events of the
	// streams of the category, $idx-et-<type> the events of the type
	// (neither lists the events of system streams).
	StreamPrefixes []string `json:"stream_prefixes,omitempty"`
	// StreamRegexp passes events whose stream id matches it.
	StreamRegexp string `json:"stream_regexp,omitempty"`
	// EventTypes passes events whose type is one of them.
	EventTypes []string `json:"event_types,omitempty"`
	// EventTypePrefixes passes events whose type starts with one of them.
	// When both EventTypes and EventTypePrefixes are set, an event passes
	// when it satisfies either.
	EventTypePrefixes []string `json:"event_type_prefixes,omitempty"`
	// EventTypeRegexp passes events whose type matches it.
	EventTypeRegexp string `json:"event_type_regexp,omitempty"`
	// Tags passes events that carry at least one of them.
	Tags []string `json:"tags,omitempty"`
}

// IsZero reports whether f passes every event.
func (f Filter) IsZero() bool {
	return len(f.StreamPrefixes) == 0 && f.StreamRegexp == "" && len(f.EventTypes) == 0 &&
		len(f.EventTypePrefixes) == 0 && f.EventTypeRegexp == "" && len(f.Tags) == 0
}

// Validate returns an error naming the first field of f that is not usable:
// an empty string in a list, or a regular expression that does not compile.
// The error matches [cairn.ErrInvalidArgument].
func (f Filter) Validate() error {
	_, err := f.compile()
	return err
}

// Match reports whether e passes f. A Filter that does not validate passes
// nothing. Match compiles f's regular expressions on every call; a
// subscription compiles them once.
func (f Filter) Match(e *cairn.Event) bool {
	m, err := f.compile()
	return err == nil && m.match(e)
}

// matcher is a validated Filter with its regular expressions compiled. A nil
// *matcher passes every event.
type matcher struct {
	streamPrefixes []string
	idxCategories  []string // from $idx-ce- prefixes
	idxTypes       []string // from $idx-et- prefixes
	streamRe       *regexp.Regexp
	types          []string
	typePrefixes   []string
	typeRe         *regexp.Regexp
	tags           []string
}

func (f Filter) compile() (*matcher, error) {
	if f.IsZero() {
		return nil, nil
	}
	lists := []struct {
		field string
		list  []string
	}{
		{"filter.stream_prefixes", f.StreamPrefixes},
		{"filter.event_types", f.EventTypes},
		{"filter.event_type_prefixes", f.EventTypePrefixes},
		{"filter.tags", f.Tags},
	}
	for _, l := range lists {
		for i, s := range l.list {
			if s == "" {
				return nil, invalid(fmt.Sprintf("%s[%d]", l.field, i), "must not be empty (an empty alternative would pass every event)")
			}
		}
	}
	m := &matcher{
		types:        slices.Clone(f.EventTypes),
		typePrefixes: slices.Clone(f.EventTypePrefixes),
		tags:         slices.Clone(f.Tags),
	}
	for _, p := range f.StreamPrefixes {
		if c, ok := strings.CutPrefix(p, IndexCategoryPrefix); ok && c != "" {
			m.idxCategories = append(m.idxCategories, c)
		} else if t, ok := strings.CutPrefix(p, IndexTypePrefix); ok && t != "" {
			m.idxTypes = append(m.idxTypes, t)
		} else {
			m.streamPrefixes = append(m.streamPrefixes, p)
		}
	}
	var err error
	if f.StreamRegexp != "" {
		if m.streamRe, err = regexp.Compile(f.StreamRegexp); err != nil {
			return nil, invalid("filter.stream_regexp", err.Error())
		}
	}
	if f.EventTypeRegexp != "" {
		if m.typeRe, err = regexp.Compile(f.EventTypeRegexp); err != nil {
			return nil, invalid("filter.event_type_regexp", err.Error())
		}
	}
	return m, nil
}

func (m *matcher) match(e *cairn.Event) bool {
	if m == nil {
		return true
	}
	if (len(m.streamPrefixes) > 0 || len(m.idxCategories) > 0 || len(m.idxTypes) > 0) && !m.inStreams(e) {
		return false
	}
	if m.streamRe != nil && !m.streamRe.MatchString(e.StreamID) {
		return false
	}
	if len(m.types) > 0 || len(m.typePrefixes) > 0 {
		if !slices.Contains(m.types, e.Type) && !hasAnyPrefix(e.Type, m.typePrefixes) {
			return false
		}
	}
	if m.typeRe != nil && !m.typeRe.MatchString(e.Type) {
		return false
	}
	if len(m.tags) > 0 && !slices.ContainsFunc(e.Tags, func(t string) bool { return slices.Contains(m.tags, t) }) {
		return false
	}
	return true
}

// The prefixes of KurrentDB's secondary indexes in a stream filter.
const (
	IndexCategoryPrefix = "$idx-ce-"
	IndexTypePrefix     = "$idx-et-"
)

// inStreams reports whether e passes the stream prefixes, secondary
// indexes included.
func (m *matcher) inStreams(e *cairn.Event) bool {
	if hasAnyPrefix(e.StreamID, m.streamPrefixes) {
		return true
	}
	if len(m.idxCategories) > 0 {
		if c, ok := cairn.Category(e.StreamID); ok && slices.Contains(m.idxCategories, c) {
			return true
		}
	}
	return len(m.idxTypes) > 0 && !strings.HasPrefix(e.StreamID, "$") && slices.Contains(m.idxTypes, e.Type)
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func invalid(field, reason string) error {
	return &cairn.InvalidArgumentError{Field: field, Reason: reason}
}

func invalidf(field, format string, args ...any) error {
	return invalid(field, fmt.Sprintf(format, args...))
}
