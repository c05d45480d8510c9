package server

import (
	"regexp"
	"strings"

	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
)

// defaultSearchWindow is the checkpoint window of a filter whose window is
// given as "count" (no maximum), the official clients' default.
const defaultSearchWindow = 32

// filter is a server-side filter on $all: a stream-name or event-type
// expression, as a set of prefixes or a regular expression. A nil filter
// matches every event.
type filter struct {
	onType   bool
	prefixes []string
	re       *regexp.Regexp
	// every is how many events are examined between two checkpoints:
	// the search window times the checkpoint interval multiplier.
	every int
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
		re, err := regexp.Compile(expr.GetRegex())
		if err != nil {
			return nil, invalid("filter: regular expression %q: %v", expr.GetRegex(), err)
		}
		f.re = re
	}
	f.prefixes = expr.GetPrefix()
	window := defaultSearchWindow
	if m, ok := fo.Window.(*api.ReadReq_Options_FilterOptions_Max); ok && m.Max > 0 {
		window = int(m.Max)
	}
	f.every = window * max(1, int(fo.GetCheckpointIntervalMultiplier()))
	return f, nil
}

// match reports whether the event of type typ in stream passes f.
func (f *filter) match(stream, typ string) bool {
	if f == nil {
		return true
	}
	s := stream
	if f.onType {
		s = typ
	}
	if f.re != nil {
		return f.re.MatchString(s)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
