package invariants_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairndb/cairn/internal/invariants"
)

// violation runs f and returns the *Violation it panicked with, or nil.
func violation(t *testing.T, f func()) (v *invariants.Violation) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		err, ok := r.(error)
		if !ok || !errors.As(err, &v) {
			t.Fatalf("panicked with %#v, not a *invariants.Violation", r)
		}
	}()
	f()
	return nil
}

// TestFailfPanicsWithTheFacts: a failed check panics with a Violation that
// says what was broken.
func TestFailfPanicsWithTheFacts(t *testing.T) {
	v := violation(t, func() { invariants.Failf("position %d after %d", 3, 7) })
	if v == nil {
		t.Fatal("Failf returned")
	}
	if !strings.Contains(v.Error(), "invariant violated: position 3 after 7") {
		t.Fatalf("message %q", v.Error())
	}
}

// TestCheckPanicsOnlyWhenEnabled: Check panics on a false condition in a
// build with invariants, and never on a true one.
func TestCheckPanicsOnlyWhenEnabled(t *testing.T) {
	if v := violation(t, func() { invariants.Check(true, "holds") }); v != nil {
		t.Fatalf("a condition that holds panicked: %v", v)
	}
	v := violation(t, func() { invariants.Check(false, "broken") })
	switch {
	case invariants.Enabled && v == nil:
		t.Fatal("a broken condition did not panic with invariants enabled")
	case !invariants.Enabled && v != nil:
		t.Fatalf("a production build panicked: %v", v)
	}
}
