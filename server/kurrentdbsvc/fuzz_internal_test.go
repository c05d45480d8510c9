package kurrentdbsvc

import (
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FuzzFilter builds a server-side filter from the options a client sends
// (a stream-name or event-type expression as a regular expression or
// prefixes, a search window, a checkpoint multiplier): it is refused with
// InvalidArgument or matches as its expression says, and sends a
// checkpoint after a positive number of events. CI runs it for a few
// seconds (.ci/run).
func FuzzFilter(f *testing.F) {
	f.Add(false, "^order-", "", true, uint32(0), uint32(1), "order-1", "Placed")
	f.Add(true, "", "Placed\x00Paid", false, uint32(50), uint32(3), "order-1", "Paid")
	f.Add(true, "[", "", false, uint32(1), uint32(1), "s", "t")
	f.Add(false, "a", "a", false, uint32(1), uint32(1), "a", "a")
	f.Add(false, "", "", false, uint32(0), uint32(0), "", "")
	f.Add(false, "", "$", false, uint32(math.MaxUint32), uint32(math.MaxUint32), "$all", "E")
	f.Add(false, "", "$idx-ce-order", false, uint32(1), uint32(1), "order-1", "E")
	f.Add(false, "", "$idx-et-E\x00order-", false, uint32(1), uint32(1), "order-1", "E")
	f.Fuzz(func(t *testing.T, onType bool, regex, prefixes string, count bool, window, mult uint32, stream, typ string) {
		expr := &api.ReadReq_Options_FilterOptions_Expression{Regex: regex}
		if prefixes != "" {
			expr.Prefix = strings.Split(prefixes, "\x00")
		}
		fo := &api.ReadReq_Options_FilterOptions{CheckpointIntervalMultiplier: mult}
		if onType {
			fo.Filter = &api.ReadReq_Options_FilterOptions_EventType{EventType: expr}
		} else {
			fo.Filter = &api.ReadReq_Options_FilterOptions_StreamIdentifier{StreamIdentifier: expr}
		}
		if count {
			fo.Window = &api.ReadReq_Options_FilterOptions_Count{}
		} else {
			fo.Window = &api.ReadReq_Options_FilterOptions_Max{Max: window}
		}
		flt, err := newFilter(fo)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("refused with %v, want InvalidArgument", err)
			}
			return
		}
		w, limit := uint64(defaultSearchWindow), uint64(0)
		if !count && window > 0 {
			w, limit = uint64(window), uint64(window)
		}
		if flt.window != limit {
			t.Fatalf("a read searches %d events, want %d", flt.window, limit)
		}
		if want := min(w*uint64(max(1, mult)), math.MaxInt); flt.every != int(want) {
			t.Fatalf("a checkpoint every %d events, want %d", flt.every, want)
		}
		s := stream
		if onType {
			s = typ
		}
		want := false
		if regex != "" {
			want = regexp.MustCompile(regex).MatchString(s)
		}
		for _, p := range expr.Prefix {
			want = want || strings.HasPrefix(s, p)
		}
		if flt.index != nil {
			// One $idx- prefix names a secondary index: a category or a
			// type of the events of non-system streams.
			c, ok := cairn.Category(stream)
			want = (flt.index.Kind == cairn.IndexCategory && ok && c == flt.index.Value) ||
				(flt.index.Kind == cairn.IndexType && typ == flt.index.Value && !strings.HasPrefix(stream, "$"))
		}
		if got := flt.match(stream, typ); got != want {
			t.Fatalf("match(%q, %q) = %v, want %v", stream, typ, got, want)
		}
	})
}

// FuzzParseMeta reads arbitrary bytes as a stream's metadata (the data of
// an event that any client may append to a "$$" stream): what reads
// enforce is never negative, and is what the JSON says when it is a
// non-negative integer.
func FuzzParseMeta(f *testing.F) {
	f.Add([]byte(`{"$maxCount":3,"$maxAge":60,"$tb":4,"owner":"x"}`))
	f.Add([]byte(`{"$maxCount":9223372036854775807}`))
	f.Add([]byte(`{"$maxCount":9223372036854775808,"$tb":1e300,"$maxAge":-1}`))
	f.Add([]byte(`{"$maxAge":1.5}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := parseMeta(data)
		if m.maxCount < 0 || m.maxAge < 0 || m.before < 0 {
			t.Fatalf("%s: negative limits %+v", data, m)
		}
		var props map[string]any
		if json.Unmarshal(data, &props) != nil {
			return
		}
		for key, got := range map[string]int64{metaMaxCount: m.maxCount, metaTruncateBefore: m.before} {
			v, ok := props[key].(float64)
			if ok && v >= 0 && v < math.MaxInt64 && v == math.Trunc(v) && got != int64(v) {
				t.Fatalf("%s: %s is %d, want %d", data, key, got, int64(v))
			}
		}
	})
}
