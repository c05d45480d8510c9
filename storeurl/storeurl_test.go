package storeurl_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
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
		"postgres://u@db/x%zz?password=s3cret&sslpassword=s3cret":   "postgres://xxxxx@db/x%zz?password=xxxxx&sslpassword=xxxxx",
		"postgres://u@db/x?password=s3cret%":                        "postgres://u@db/x?password=xxxxx",
		"#://u:s3cret@db":                                           "#://xxxxx@db",
		"A:://u:s3cret@db":                                          "A:://xxxxx@db",
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

// Without its package imported, an engine's URL is refused with
// ErrNoEngine, naming the package to import and not the password.
func TestNoEngine(t *testing.T) {
	for raw, pkg := range map[string]string{
		"postgres://u:s3cret@db/x":  "storeurl/postgres",
		"cairn://u:s3cret@host:1":   "storeurl/remote",
		"esdb://u:s3cret@host:2113": "storeurl/remote",
	} {
		_, err := storeurl.Open(context.Background(), raw, storeurl.Options{})
		if !errors.Is(err, storeurl.ErrNoEngine) || !strings.Contains(err.Error(), pkg) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q): %v; want ErrNoEngine naming %s", raw, err, pkg)
		}
	}
}

// A registered engine opens its kind's URLs with the target Parse found and
// the options given, under a Store with the options' settings. A second
// registration of a kind is a mistake, and panics.
func TestRegister(t *testing.T) {
	var gotTarget string
	var gotOpts storeurl.Options
	var opened *memstore.Store
	storeurl.Register(storeurl.Dir, func(_ context.Context, target string, opts storeurl.Options) (cairn.Backend, error) {
		gotTarget, gotOpts, opened = target, opts, memstore.New()
		return opened, nil
	})
	s, err := storeurl.Open(context.Background(), "file:///var/lib/cairn", storeurl.Options{NoSync: true, Store: cairn.Options{ReadBatch: 7}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Backend() != cairn.Backend(opened) || gotTarget != "/var/lib/cairn" || !gotOpts.NoSync || gotOpts.Store.ReadBatch != 7 {
		t.Fatalf("opened %T with target %q and options %+v", s.Backend(), gotTarget, gotOpts)
	}
	for name, register := range map[string]func(){
		"twice": func() {
			storeurl.Register(storeurl.Dir, func(context.Context, string, storeurl.Options) (cairn.Backend, error) { return nil, nil })
		},
		"memory": func() {
			storeurl.Register(storeurl.Memory, func(context.Context, string, storeurl.Options) (cairn.Backend, error) { return nil, nil })
		},
		"nil opener": func() { storeurl.Register(storeurl.Postgres, nil) },
		"unknown kind": func() {
			storeurl.Register(storeurl.Kind(99), func(context.Context, string, storeurl.Options) (cairn.Backend, error) { return nil, nil })
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register %s did not panic", name)
				}
			}()
			register()
		}()
	}
}

// Importing storeurl links no engine but the memory one: a program that
// names only its own engine does not carry pgx, gRPC and pebble.
func TestDependencies(t *testing.T) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list the dependencies with")
	}
	out, err := exec.Command(gocmd, "list", "-deps", "github.com/cairndb/cairn/storeurl").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps printed %d packages: %q", len(deps), out)
	}
	var bad []string
	for _, dep := range deps {
		for _, banned := range []string{
			"github.com/jackc/pgx", "google.golang.org/grpc", "github.com/cockroachdb/pebble",
			"github.com/cairndb/cairn/pgstore", "github.com/cairndb/cairn/remotestore", "github.com/cairndb/cairn/diskstore",
		} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				bad = append(bad, dep)
			}
		}
	}
	if len(bad) > 0 {
		t.Fatalf("storeurl depends on %d packages of the engines it should only register: %v", len(bad), bad)
	}
}
