package storeurl_test

import (
	"strings"
	"testing"

	"github.com/cairndb/cairn/storeurl"
)

// FuzzParse parses arbitrary store URLs: each is one kind of engine or an
// error that says what was expected, and neither an error nor Redact ever
// shows a password written where a URL puts one (user:password@ or a
// password parameter), whether or not the rest of the URL is well formed.
// CI runs it for a few seconds (.ci/run).
func FuzzParse(f *testing.F) {
	for _, s := range []struct {
		prefix, suffix string
		query          bool
	}{
		{"postgres://cairn", "db:5432/cairn?sslmode=disable", false},
		{"cairn://admin", "localhost:2113?tls=true&tlscafile=ca.crt", false},
		{"postgres://cairn@db/cairn?", "&sslmode=require", true},
		{"postgres://cairn@db/cairn?sslmode=require&ssl", "", true},
		{"postgres://u", "db/x%zz", false},
		{"postgres://u@db/x%zz?", "", true},
		{"ftp://u", "host/x", false},
		{"memory", ":", false},
		{"./cairn-data", "", false},
		{"file://", "/var/lib/cairn", false},
		{"", "", false},
	} {
		f.Add(s.prefix, s.suffix, s.query)
	}
	const secret = "Zq8secretPW"
	f.Fuzz(func(t *testing.T, prefix, suffix string, query bool) {
		raw := prefix + ":" + secret + "@" + suffix
		if query {
			raw = prefix + "password=" + secret + suffix
		}
		kind, target, err := storeurl.Parse(raw)
		switch {
		case err != nil:
			if kind != 0 || target != "" {
				t.Fatalf("Parse(%q) = %v, %q with the error %v", raw, kind, target, err)
			}
			if !strings.HasPrefix(err.Error(), "store") {
				t.Fatalf("Parse(%q): %v does not start with store", raw, err)
			}
		case kind == storeurl.Memory:
			if target != "" {
				t.Fatalf("Parse(%q) = memory, %q", raw, target)
			}
		case kind == storeurl.Dir:
			if target == "" {
				t.Fatalf("Parse(%q) = a directory without a path", raw)
			}
		case kind == storeurl.Postgres || kind == storeurl.Remote:
			if target != raw {
				t.Fatalf("Parse(%q) = %v, %q", raw, kind, target)
			}
		default:
			t.Fatalf("Parse(%q) = kind %d", raw, kind)
		}
		redacted := storeurl.Redact(raw)
		if strings.Count(raw, secret) != 1 || !isPassword(prefix, query) {
			return
		}
		if strings.Contains(redacted, secret) {
			t.Fatalf("Redact(%q) = %q shows the password", raw, redacted)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Fatalf("Parse(%q): %v shows the password", raw, err)
		}
	})
}

// isPassword reports whether what follows prefix stands where a URL puts a
// password: after scheme://user: in the authority, or as the value of a
// password parameter in the query, the scheme being one (RFC 3986).
func isPassword(prefix string, query bool) bool {
	scheme, rest, ok := strings.Cut(prefix, "://")
	if !ok || scheme == "" || !isLetter(scheme[0]) || strings.IndexFunc(scheme, func(r rune) bool {
		return r > 127 || !(isLetter(byte(r)) || '0' <= r && r <= '9' || r == '+' || r == '-' || r == '.')
	}) >= 0 {
		return false
	}
	if query {
		_, q, ok := strings.Cut(rest, "?")
		last := q[strings.LastIndexByte(q, '&')+1:] // the parameter that "password=" ends
		return ok && !strings.Contains(rest, "#") && (last == "" || last == "ssl")
	}
	return !strings.ContainsAny(rest, "/?#@")
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
