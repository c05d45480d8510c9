package bench_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/bench"
	"github.com/cairndb/cairn/memstore"
)

// The DCB workloads run on an engine that checks conditions, and say so
// on one that does not, rather than fail.
func TestRunDCB(t *testing.T) {
	open := func(context.Context) (*cairn.Store, error) { return memstore.Open(), nil }
	var out strings.Builder
	results, err := bench.Run(context.Background(), tiny(bench.Config{Open: open, Out: &out, Workloads: []string{"D1", "D2", "D3"}}))
	if err != nil {
		t.Fatal(err)
	}
	metrics := map[string]bool{}
	for _, r := range results {
		metrics[r.Workload+" "+r.Metric] = true
	}
	for _, m := range []string{"D1 8 writers, conditional", "D2 conflicts reported (none lost)", "D3 read 1k of 5.0k by tag p99"} {
		if !metrics[m] {
			t.Errorf("no figure %q in:\n%s", m, out.String())
		}
	}
	type plain struct{ cairn.Backend }
	open = func(context.Context) (*cairn.Store, error) {
		return cairn.NewStore(plain{memstore.New()}, cairn.Options{}), nil
	}
	out.Reset()
	if _, err := bench.Run(context.Background(), tiny(bench.Config{Open: open, Out: &out, Workloads: []string{"D1", "D2", "D3"}})); err != nil {
		t.Fatalf("on an engine without conditions: %v", err)
	}
	if !strings.Contains(out.String(), "checks no conditions") {
		t.Errorf("report without the engine's lack of conditions:\n%s", out.String())
	}
}
