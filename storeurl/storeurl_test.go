package storeurl_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cairndb/cairn/storeurl"
)

func TestParse(t *testing.T) {
	cases := []struct {
		raw    string
		kind   storeurl.Kind
		target string
		err    string
	}{
		{raw: "memory:", kind: storeurl.Memory},
		{raw: "./cairn-data", kind: storeurl.Dir, target: "./cairn-data"},
		{raw: "/var/lib/cairn", kind: storeurl.Dir, target: "/var/lib/cairn"},
		{raw: "data", kind: storeurl.Dir, target: "data"},
		{raw: "file:///var/lib/cairn", kind: storeurl.Dir, target: "/var/lib/cairn"},
		{raw: "postgres://u:p@localhost/db", kind: storeurl.Postgres, target: "postgres://u:p@localhost/db"},
		{raw: "postgresql://localhost/db?sslmode=disable", kind: storeurl.Postgres, target: "postgresql://localhost/db?sslmode=disable"},
		{raw: "cairn://admin:pw@localhost:2113?tls=false", kind: storeurl.Remote, target: "cairn://admin:pw@localhost:2113?tls=false"},
		{raw: "", err: "empty URL"},
		{raw: "mysql://localhost/db", err: `unknown scheme "mysql"`},
		{raw: "redis:6379", err: `unknown scheme "redis"`},
		{raw: "file://", err: "needs a path"},
	}
	for _, c := range cases {
		kind, target, err := storeurl.Parse(c.raw)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Parse(%q): error %v, want %q", c.raw, err, c.err)
			}
			continue
		}
		if err != nil || kind != c.kind || target != c.target {
			t.Errorf("Parse(%q) = %v, %q, %v; want %v, %q", c.raw, kind, target, err, c.kind, c.target)
		}
	}
}

func ExampleOpen() {
	store, err := storeurl.Open(context.Background(), "memory:", storeurl.Options{})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	has, _ := store.HasEvents(context.Background())
	fmt.Println("has events:", has)
	// Output: has events: false
}

func TestRedact(t *testing.T) {
	for raw, want := range map[string]string{
		"postgres://cairn:s3cret@db:5432/cairn?sslmode=disable":     "postgres://cairn:xxxxx@db:5432/cairn?sslmode=disable",
		"cairn://admin:changeit@localhost:2113":                     "cairn://admin:xxxxx@localhost:2113",
		"./cairn-data":                                              "./cairn-data",
		"postgres://cairn@db/cairn?password=s3cret&sslmode=require": "postgres://cairn@db/cairn?password=xxxxx&sslmode=require",
		"postgres://u:p%zz@db/x":                                    "postgres://xxxxx@db/x",
	} {
		if got := storeurl.Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
	// Errors about a URL never repeat its password.
	for _, raw := range []string{"postgres://u:s3cret@db/x%zz", "ftp://u:s3cret@host/x", "cairn://u:s3cret@host:1?tls=maybe"} {
		_, err := storeurl.Open(context.Background(), raw, storeurl.Options{})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q): %v", raw, err)
		}
	}
}
