package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
)

// engineCLI runs cairn commands against one in-memory engine with all its
// capabilities (the conditions need its Querier and BatchAppender).
type engineCLI struct {
	*cli
}

// keepAll is the engine with every capability, which Close leaves open.
type keepAll struct{ *memstore.Store }

func (keepAll) Close() error { return nil }

func newEngineCLI(t *testing.T) *engineCLI { return &engineCLI{newCLI(t)} }

func (c *engineCLI) run(stdin string, args ...string) (string, error) {
	g := &globals{openStore: func(ctx context.Context, url string, _ openMode) (*cairn.Store, error) {
		return cairn.NewStore(keepAll{c.b}, cairn.Options{}), nil
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

func (c *engineCLI) must(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.run(stdin, args...)
	if err != nil {
		c.t.Fatalf("cairn %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestReadByQuery(t *testing.T) {
	c := newEngineCLI(t)
	c.must("", "append", "course-1", "CourseDefined", "{}", "--tag", "course:1")
	c.must("", "append", "sub-1", "StudentSubscribed", "{}", "--tag", "course:1", "--tag", "student:1")
	c.must("", "append", "sub-2", "StudentSubscribed", "{}", "--tag", "course:2", "--tag", "student:1")
	c.must("", "append", "x", "Other", "{}")
	cases := []struct {
		args []string
		want []uint64
	}{
		{[]string{"--tag", "course:1"}, []uint64{0, 1}},
		{[]string{"--tag", "student:1", "--tag", "course:2"}, []uint64{2}},
		{[]string{"--type", "StudentSubscribed", "--tag", "course:1"}, []uint64{1}},
		{[]string{"--type", "CourseDefined", "--type", "Other"}, []uint64{0, 3}},
		{[]string{"--tag", "student:1", "--backward"}, []uint64{2, 1}},
		{[]string{"--tag", "student:1", "--from", "2"}, []uint64{2}},
		{[]string{"--tag", "course:1", "--count", "1"}, []uint64{0}},
		{[]string{"--query", `{"items":[{"tags":["course:2"]},{"types":["CourseDefined"]}]}`}, []uint64{0, 2}},
	}
	for _, tc := range cases {
		out := c.must("", append([]string{"read"}, tc.args...)...)
		var got []uint64
		for _, e := range decodeLines(t, out) {
			got = append(got, e.Position)
		}
		if len(got) != len(tc.want) || (len(got) > 0 && !equal(got, tc.want)) {
			t.Errorf("read %v = %v, want %v", tc.args, got, tc.want)
		}
	}
	for _, bad := range [][]string{
		{"read", "course-1", "--tag", "course:1"},
		{"read", "--query", "{"},
		{"read", "--query", `{"items":[]}`, "--tag", "x"},
		{"read", "--tag", ""},
	} {
		if _, err := c.run("", bad...); err == nil {
			t.Errorf("cairn %s succeeded, want an error", strings.Join(bad, " "))
		}
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAppendIfNoneMatch(t *testing.T) {
	c := newEngineCLI(t)
	c.must("", "append", "user-1", "UserRegistered", "{}", "--tag", "username:ann", "--if-none-match", "username:ann")
	_, err := c.run("", "append", "user-2", "UserRegistered", "{}", "--tag", "username:ann", "--if-none-match", "username:ann")
	var ce *cairn.ConditionError
	if !errors.As(err, &ce) || ce.Position != 0 {
		t.Fatalf("second registration of ann: %v, want a ConditionError at 0", err)
	}
	if n := c.events(); n != 1 {
		t.Fatalf("%d events after a refused append, want 1", n)
	}
	// After the conflicting event, the condition holds.
	c.must("", "append", "user-2", "UserRenamed", "{}", "--tag", "username:ann", "--if-none-match", "username:ann", "--after", "0")
	// A type narrows the condition.
	c.must("", "append", "user-3", "UserRegistered", "{}", "--if-none-match", "username:ann", "--if-none-match-type", "UserDeleted")
	_, err = c.run("", "append", "user-4", "UserRegistered", "{}", "--if-none-match", "username:ann", "--if-none-match-type", "UserRenamed", "--after", "0")
	if !errors.As(err, &ce) || ce.Position != 1 {
		t.Fatalf("condition on UserRenamed after 0: %v, want a ConditionError at 1", err)
	}
	for _, bad := range [][]string{
		{"append", "s", "E", "{}", "--after", "3"},
		{"append", "s", "E", "{}", "--if-none-match", "t", "--after", "-1"},
		{"append", "s", "E", "{}", "--if-none-match", ""},
	} {
		if _, err := c.run("", bad...); err == nil {
			t.Errorf("cairn %s succeeded, want an error", strings.Join(bad, " "))
		}
	}
	if n := c.events(); n != 3 {
		t.Fatalf("%d events, want 3", n)
	}
}
