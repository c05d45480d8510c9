package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
)

// keepOpen lets every command of a test open and close the same in-memory
// engine.
type keepOpen struct{ cairn.Backend }

func (keepOpen) Close() error { return nil }

// cli runs cairn commands against one shared in-memory store.
type cli struct {
	t *testing.T
	b *memstore.Store
}

func newCLI(t *testing.T) *cli { return &cli{t: t, b: memstore.New()} }

func (c *cli) run(stdin string, args ...string) (string, error) {
	g := &globals{openStore: func(ctx context.Context, url string, _ openMode) (*cairn.Store, error) {
		return cairn.NewStore(keepOpen{c.b}, cairn.Options{}), nil
	}}
	cmd := newRootCmdWith(g)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func (c *cli) must(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.run(stdin, args...)
	if err != nil {
		c.t.Fatalf("cairn %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (c *cli) events() int {
	log, err := c.b.ReadAll(context.Background(), 0, 1000, cairn.Forward)
	if err != nil {
		c.t.Fatal(err)
	}
	return len(log)
}

func decodeLines(t *testing.T, out string) []jsonEvent {
	t.Helper()
	var events []jsonEvent
	for line := range strings.Lines(out) {
		var e jsonEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		events = append(events, e)
	}
	return events
}

func TestAppendAndRead(t *testing.T) {
	c := newCLI(t)
	out := c.must("", "append", "order-1", "OrderPlaced", `{"total": 42}`, "--expected", "-1", "--tag", "vip", "--metadata", `{"user":"ada"}`)
	if strings.TrimSpace(out) != `{"position":0,"stream":"order-1","version":0}` {
		t.Fatalf("append printed %q", out)
	}
	c.must(`{"total": 7}`+"\n", "append", "order-1", "OrderPaid", "--expected", "0")
	c.must("\x00\x01", "append", "blob", "Raw", "-", "--binary")

	got := decodeLines(t, c.must("", "read", "order-1"))
	if len(got) != 2 || got[0].Type != "OrderPlaced" || string(got[0].Data) != `{"total":42}` ||
		got[0].Tags[0] != "vip" || string(got[0].Metadata) != `{"user":"ada"}` || got[1].Version != 1 || string(got[1].Data) != `{"total":7}` {
		t.Fatalf("read order-1 = %+v", got)
	}
	all := decodeLines(t, c.must("", "read", "--backward", "--count", "2"))
	if len(all) != 2 || all[0].Position != 2 || all[1].Position != 1 || string(all[0].DataBase64) != "\x00\x01" {
		t.Fatalf("read --backward --count 2 = %+v", all)
	}
	if from := decodeLines(t, c.must("", "read", "--from", "1")); len(from) != 2 || from[0].Position != 1 {
		t.Fatalf("read --from 1 = %+v", from)
	}
	if out := c.must("", "streams"); out != "blob\norder-1\n" {
		t.Fatalf("streams = %q", out)
	}
	if out := c.must("", "streams", "--prefix", "order"); out != "order-1\n" {
		t.Fatalf("streams --prefix order = %q", out)
	}
	var st stats
	if err := json.Unmarshal([]byte(c.must("", "stats")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Events != 3 || st.Streams != 2 || st.Head == nil || *st.Head != 2 || !st.Healthy {
		t.Fatalf("stats = %+v", st)
	}
	if out := c.must("", "version"); !strings.HasPrefix(out, "cairn ") {
		t.Fatalf("version = %q", out)
	}
}

func TestBadInput(t *testing.T) {
	c := newCLI(t)
	c.must("", "append", "s", "E", "{}")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"append", "s", "E", "{}", "--expected", "-3"}, "-3 is not an expected version"},
		{[]string{"append", "s", "E", "{}", "--expected", "5"}, "wrong expected version: expected 5, actual 0"},
		{[]string{"append", "s", "E", "{not json"}, "data is not valid JSON"},
		{[]string{"append", "s", "E", "{}", "--metadata", "[1"}, "--metadata must be a JSON object"},
		{[]string{"append", "s", "E", "{}", "--metadata", "[1]"}, "--metadata must be a JSON object"},
		{[]string{"append", "s", "E", "{}", "--metadata", `"x"`}, "--metadata must be a JSON object"},
		{[]string{"append", "s", "E", "{}", "--metadata", "null"}, "--metadata must be a JSON object"},
		{[]string{"append", "s", "E", "{}", "--id", "nope"}, `--id "nope": not a UUID`},
		{[]string{"append", "$all", "E", "{}"}, "reserved for system streams"},
		{[]string{"append", "s", "", "{}"}, "invalid events[0].type: must not be empty"},
		{[]string{"append", "s", "E", "{}", "--tag", ""}, "invalid events[0].tags[0]: must not be empty"},
		{[]string{"append", "s"}, "accepts between 2 and 3 arg(s)"},
		{[]string{"append", "s", "E", "{}", "--expected", "x"}, `invalid argument "x" for "--expected"`},
		{[]string{"read", "--count", "-1"}, "--count -1: must be positive"},
		{[]string{"read", "--from", "-1"}, "--from -1: must not be negative"},
		{[]string{"read", "missing"}, `read "missing": stream not found`},
		{[]string{"read", "a", "b"}, "accepts at most 1 arg(s)"},
		{[]string{"streams", "x"}, "unknown command"},
		{[]string{"stats", "--nope"}, "unknown flag: --nope"},
	}
	for _, tc := range cases {
		_, err := c.run("", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cairn %s: error %v, want one containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	if n := c.events(); n != 1 {
		t.Fatalf("after bad input the store holds %d events, want 1", n)
	}
}

func TestBadStoreURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"bogus:x", `unknown scheme "bogus"`},
		{"ftp://host/x", `unknown scheme "ftp"`},
		{"", "empty URL"},
		{"file://", "a file URL needs a path"},
	} {
		cmd := newRootCmd()
		cmd.SetArgs([]string{"stats", "--store", tc.url})
		cmd.SetOut(new(bytes.Buffer))
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--store %q: error %v, want one containing %q", tc.url, err, tc.want)
		}
	}
}

func TestTail(t *testing.T) {
	c := newCLI(t)
	c.must("", "append", "a", "Old", "{}")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The tail's Store must be the one the appends below go through, so
	// that its change signal fires: share it.
	shared := cairn.NewStore(keepOpen{c.b}, cairn.Options{})
	g := &globals{openStore: func(context.Context, string, openMode) (*cairn.Store, error) { return shared, nil }}
	cmd := newRootCmdWith(g)
	out := &syncBuffer{}
	cmd.SetOut(out)
	cmd.SetArgs([]string{"tail", "--from", "0", "--type", "New", "--type", "Old", "--count", "3"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	for i := range 3 {
		typ := "New"
		if i == 1 {
			typ = "Skipped"
		}
		if _, err := shared.Append(ctx, "b", cairn.Any, cairn.EventData{Type: typ, Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("tail: %v", err)
	}
	got := decodeLines(t, out.String())
	if len(got) != 3 || got[0].Type != "Old" || got[1].Type != "New" || got[2].Type != "New" || got[2].Version != 2 {
		t.Fatalf("tail printed %+v", got)
	}
	if _, err := c.run("", "tail", "s", "--type", "X"); err == nil || !strings.Contains(err.Error(), "filters apply to the global log") {
		t.Fatalf("tail STREAM with a filter: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
