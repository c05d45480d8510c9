package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// bench's M1 starts its worker processes itself (the cairn command again,
// with the hidden bench worker subcommand), and reports them beside the
// same writers in one process and plain INSERTs from as many processes; W1
// runs beside the ordering floor too; bench deletes what it wrote. On a store that processes do not share, it
// refuses to run.
func TestBenchManyProcesses(t *testing.T) {
	if _, _, err := cairnCmd(t, "bench", "--store", t.TempDir(), "--workloads", "M1"); err == nil ||
		!strings.Contains(err.Error(), "M1 needs a store that processes share") {
		t.Fatalf("bench --workloads M1 on a directory: %v", err)
	}
	url := os.Getenv("CAIRN_TEST_POSTGRES")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but CAIRN_TEST_POSTGRES is not set")
		}
		t.Skip("set CAIRN_TEST_POSTGRES to a PostgreSQL URL to run bench's M1")
	}
	schema := "cairn_test_bench_m1"
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	out, err := exec.Command(cairnBinary(t), "bench", "--store", url+sep+"schema="+schema,
		"--workloads", "W1,M1", "--w1-appends", "5", "--m1-processes", "3", "--m1-appends", "5").CombinedOutput()
	if err != nil {
		t.Fatalf("bench --workloads M1: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	for _, want := range []string{"M1   3 processes: throughput", "plain INSERT", "M1   3 processes: the ordering floor", "M1   3 processes vs the ordering floor", "M1   3 processes vs 3 writers in one", "M1   3 processes: floor vs 3 in one",
		"W1   p50: the ordering floor", "W1   p50 vs the ordering floor", "bench: deleted the 11 streams it wrote"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("bench printed no %q:\n%s", want, out)
		}
	}
}
