package projections

import (
	"errors"
	"testing"

	"github.com/dop251/goja"
)

// TestMarshalJSWritesWhatJSONStringifyWrites compares marshalJS with the
// runtime's own JSON.stringify.
func TestMarshalJSWritesWhatJSONStringifyWrites(t *testing.T) {
	rt := goja.New()
	for _, src := range []string{
		`({a: 1, b: 'x', c: true, d: null, e: undefined, f: function () {}, g: [1, undefined, function () {}, 'y']})`,
		`({n: 1.5, big: 1e21, small: 1e-7, neg: -0, nan: NaN, inf: -Infinity, i: 12345678901})`,
		`({s: 'quote " backslash \\ newline \n tab \t control \u0001 unicode é \u2028 emoji 😀'})`,
		`({date: new Date(0), boxed: [new String('s'), new Number(2), new Boolean(false)]})`,
		`({nested: {deeper: {deepest: [[], {}, [[]]]}}, order: {z: 1, a: 2, 10: 3, 2: 4}})`,
		`({withToJSON: {toJSON: function (k) { return 'key:' + k; }}})`,
		`({map: new Map([[1, 2]]), set: new Set([1])})`,
		`[1, 'two', {three: 3}]`,
		`'a string'`,
		`42`,
		`null`,
	} {
		v, err := rt.RunString(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		want, err := rt.RunString(`JSON.stringify(` + src + `)`)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		got, err := marshalJS(rt, v, 1<<20)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if string(got) != want.String() {
			t.Errorf("%s:\n got %s\nwant %s", src, got, want)
		}
	}
}

func TestMarshalJSRefuses(t *testing.T) {
	rt := goja.New()
	for src, want := range map[string]string{
		`(function () { var o = {}; o.self = o; return o; })()`:                                          "cyclic",
		`(function () { var a = []; for (var i = 0; i < 1000; i++) a.push('0123456789'); return a; })()`: "more than 1024 bytes",
		`(function () { var o = {}; for (var i = 0; i < 600; i++) o = {o: o}; return o; })()`:            "nested more than",
	} {
		v, err := rt.RunString(src)
		if err != nil {
			t.Fatal(err)
		}
		_, err = marshalJS(rt, v, 1024)
		if err == nil || !contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", src, err, want)
		}
		if want == "more than 1024 bytes" && !errors.Is(err, errTooLarge) {
			t.Errorf("%v does not match errTooLarge", err)
		}
	}
	// undefined, functions and symbols have no JSON.
	for _, src := range []string{`undefined`, `(function () {})`, `Symbol('s')`} {
		v, _ := rt.RunString(src)
		if b, err := marshalJS(rt, v, 1024); b != nil || err != nil {
			t.Errorf("%s: %s, %v", src, b, err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
