package links_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/cairndb/cairn/links"
)

// FuzzParse reads arbitrary bytes as a link's data, which any client may
// append: Parse accepts exactly "N@stream" (N a decimal number without a
// sign, stream non-empty), and Data writes what Parse reads back. CI runs
// it for a few seconds (.ci/run).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0@order-1", "12@a@b", "-1@s", "+1@s", "1@", "@s", "s", "007@s", "9223372036854775808@s"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		stream, version, ok := links.Parse(data)
		n, s, found := strings.Cut(string(data), "@")
		v, err := strconv.ParseInt(n, 10, 64)
		want := found && s != "" && err == nil && v >= 0 && n != "" && n[0] != '+' && n[0] != '-'
		if ok != want {
			t.Fatalf("Parse(%q) ok = %v, want %v", data, ok, want)
		}
		if !ok {
			return
		}
		if stream != s || version != v {
			t.Fatalf("Parse(%q) = %q, %d", data, stream, version)
		}
		if back, bv, ok := links.Parse(links.Data(stream, version)); !ok || back != stream || bv != version {
			t.Fatalf("Data(%q, %d) reads back as %q, %d, %v", stream, version, back, bv, ok)
		}
	})
}
