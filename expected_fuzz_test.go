package cairn_test

import (
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/cairndb/cairn"
)

// FuzzParseExpectedVersion parses the numeric form of an expected version
// (as the wire, JSON and the command line send it) and checks the result
// against a stream's current version: -1, -2 and -4 are the special
// expectations, n ≥ 0 an exact version, anything else an InvalidArgument
// error; a parsed expectation gives back its number, and Check accepts
// exactly the versions it names. CI runs it for a few seconds (.ci/run).
func FuzzParseExpectedVersion(f *testing.F) {
	for _, n := range []int64{0, 1, 7, -1, -2, -3, -4, -5, math.MaxInt64, math.MinInt64} {
		f.Add(n, int64(-1))
		f.Add(n, n)
	}
	f.Fuzz(func(t *testing.T, n, current int64) {
		current = max(current, -1) // an engine's version of a stream that does not exist
		e, err := cairn.ParseExpectedVersion(n)
		special := n == -1 || n == -2 || n == -4
		if err != nil {
			if n >= 0 || special {
				t.Fatalf("ParseExpectedVersion(%d): %v", n, err)
			}
			var iae *cairn.InvalidArgumentError
			if !errors.Is(err, cairn.ErrInvalidArgument) || !errors.As(err, &iae) || iae.Field != "expected" {
				t.Fatalf("ParseExpectedVersion(%d): %v, want an InvalidArgumentError for expected", n, err)
			}
			if e.Valid() {
				t.Fatalf("ParseExpectedVersion(%d) = %v, valid, with an error", n, e)
			}
			return
		}
		if n < 0 && !special {
			t.Fatalf("ParseExpectedVersion(%d) = %v, want an error", n, e)
		}
		if !e.Valid() || e.Int64() != n {
			t.Fatalf("ParseExpectedVersion(%d) = %v: valid %v, number %d", n, e, e.Valid(), e.Int64())
		}
		v, exact := e.Version()
		if exact != (n >= 0) || (exact && (v != n || e.String() != strconv.FormatInt(n, 10))) {
			t.Fatalf("ParseExpectedVersion(%d) = %v: Version() = %d, %v", n, e, v, exact)
		}
		var ok bool
		switch {
		case e.IsAny():
			ok = true
		case e.IsNoStream():
			ok = current < 0
		case e.IsStreamExists():
			ok = current >= 0
		default:
			ok = current == n
		}
		if (e.IsAny() && n != -2) || (e.IsNoStream() && n != -1) || (e.IsStreamExists() && n != -4) {
			t.Fatalf("ParseExpectedVersion(%d) = %v", n, e)
		}
		err = e.Check("s", current)
		if ok != (err == nil) {
			t.Fatalf("%v.Check(%d) = %v", e, current, err)
		}
		var wev *cairn.WrongExpectedVersionError
		if err != nil && (!errors.Is(err, cairn.ErrWrongExpectedVersion) || !errors.As(err, &wev) ||
			wev.Stream != "s" || wev.Expected != e || wev.Actual != current) {
			t.Fatalf("%v.Check(%d) = %#v", e, current, err)
		}
	})
}
