package kurrentdbsvc

import (
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/cairndb/cairn"

	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
)

// defaultSearchWindow is the checkpoint window of a filter whose window is
// given as "count" (no maximum), the official clients' default.
const defaultSearchWindow = 32

// The limits on one filter: the work of matching an event is bounded by
// the longest prefix or the expression's length, never by the number of
// prefixes, but building the filter and holding it cost what it holds.
const (
	// MaxFilterPrefixes is the most prefixes a filter may give.
	MaxFilterPrefixes = 1000
	// MaxFilterPrefixBytes is the longest prefix: the longest stream id.
	MaxFilterPrefixBytes = 512
	// MaxFilterRegexBytes is the longest regular expression.
	MaxFilterRegexBytes = 1024
)

// filter is a server-side filter on $all: a stream-name or event-type
// expression, as a set of prefixes or a regular expression. A nil filter
// matches every event.
type filter struct {
	onType bool
	// prefixes holds the prefixes; lengths their distinct lengths, in
	// increasing order. A name matches when one of its leading parts of
	// those lengths is a prefix: at most one lookup per length.
	prefixes map[string]struct{}
	lengths  []int
	re       *regexp.Regexp
	// window is the most events a read (not a subscription) searches:
	// the filter's max, or 0 when it gives none ("count").
	window uint64
	// every is how many events are examined between two checkpoints:
	// the search window times the checkpoint interval multiplier.
	every int
	// index, when set, is the secondary index the filter names
	// ($idx-ce-<category> or $idx-et-<type>): the read follows it rather
	// than scanning the log.
	index *cairn.IndexKey
}

// The prefixes of KurrentDB 25.1's secondary indexes in a stream filter.
const (
	indexPrefix         = "$idx-"
	indexCategoryPrefix = "$idx-ce-"
	indexTypePrefix     = "$idx-et-"
)

// secondaryIndex returns the index a stream filter's prefixes name, and
// false when they name none. KurrentDB takes one index name in place of
// the prefixes; a filter that mixes one with other prefixes, or names an
// index cairn does not keep, is refused.
func secondaryIndex(prefixes []string) (*cairn.IndexKey, bool, error) {
	if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(p, indexPrefix) }) {
		return nil, false, nil
	}
	if len(prefixes) != 1 {
		return nil, false, invalid("filter: a secondary index filter names one index (%sCATEGORY or %sTYPE) and no other prefix; got %d prefixes", indexCategoryPrefix, indexTypePrefix, len(prefixes))
	}
	p := prefixes[0]
	if c, ok := strings.CutPrefix(p, indexCategoryPrefix); ok && c != "" {
		return &cairn.IndexKey{Kind: cairn.IndexCategory, Value: c}, true, nil
	}
	if t, ok := strings.CutPrefix(p, indexTypePrefix); ok && t != "" {
		return &cairn.IndexKey{Kind: cairn.IndexType, Value: t}, true, nil
	}
	return nil, false, invalid("filter: %q names no secondary index cairn keeps: use %sCATEGORY or %sTYPE", p, indexCategoryPrefix, indexTypePrefix)
}

func newFilter(fo *api.ReadReq_Options_FilterOptions) (*filter, error) {
	if fo == nil {
		return nil, nil
	}
	var expr *api.ReadReq_Options_FilterOptions_Expression
	f := &filter{}
	switch v := fo.Filter.(type) {
	case *api.ReadReq_Options_FilterOptions_StreamIdentifier:
		expr = v.StreamIdentifier
	case *api.ReadReq_Options_FilterOptions_EventType:
		expr, f.onType = v.EventType, true
	default:
		return nil, invalid("filter: neither a stream-name nor an event-type expression")
	}
	if expr.GetRegex() == "" && len(expr.GetPrefix()) == 0 {
		return nil, invalid("filter: give a regular expression or prefixes")
	}
	if expr.GetRegex() != "" {
		if len(expr.GetPrefix()) > 0 {
			return nil, invalid("filter: give a regular expression or prefixes, not both")
		}
		if n := len(expr.GetRegex()); n > MaxFilterRegexBytes {
			return nil, invalid("filter: the regular expression is %d bytes, the limit is %d", n, MaxFilterRegexBytes)
		}
		re, err := regexp.Compile(expr.GetRegex())
		if err != nil {
			return nil, invalid("filter: regular expression %q: %v", expr.GetRegex(), err)
		}
		f.re = re
	}
	if n := len(expr.GetPrefix()); n > MaxFilterPrefixes {
		return nil, invalid("filter: %d prefixes, the limit is %d", n, MaxFilterPrefixes)
	}
	if len(expr.GetPrefix()) > 0 {
		f.prefixes = make(map[string]struct{}, len(expr.GetPrefix()))
		for i, p := range expr.GetPrefix() {
			if len(p) > MaxFilterPrefixBytes {
				return nil, invalid("filter: prefix %d is %d bytes, the limit is %d", i, len(p), MaxFilterPrefixBytes)
			}
			if _, ok := f.prefixes[p]; !ok {
				f.prefixes[p] = struct{}{}
				f.lengths = append(f.lengths, len(p))
			}
		}
		slices.Sort(f.lengths)
		f.lengths = slices.Compact(f.lengths)
	}
	if !f.onType {
		key, ok, err := secondaryIndex(expr.GetPrefix())
		if err != nil {
			return nil, err
		}
		if ok {
			f.index = key
		}
	}
	window := uint64(defaultSearchWindow)
	if m, ok := fo.Window.(*api.ReadReq_Options_FilterOptions_Max); ok && m.Max > 0 {
		window = uint64(m.Max)
		f.window = uint64(m.Max)
	}
	// Two uint32s: the product fits in a uint64, not always in an int.
	f.every = int(min(window*uint64(max(1, fo.GetCheckpointIntervalMultiplier())), math.MaxInt))
	return f, nil
}

// match reports whether the event of type typ in stream passes f.
func (f *filter) match(stream, typ string) bool {
	if f == nil {
		return true
	}
	if f.index != nil {
		if f.index.Kind == cairn.IndexCategory {
			c, ok := cairn.Category(stream)
			return ok && c == f.index.Value
		}
		return typ == f.index.Value && !strings.HasPrefix(stream, "$")
	}
	s := stream
	if f.onType {
		s = typ
	}
	if f.re != nil {
		return f.re.MatchString(s)
	}
	for _, n := range f.lengths {
		if n > len(s) {
			return false
		}
		if _, ok := f.prefixes[s[:n]]; ok {
			return true
		}
	}
	return false
}
