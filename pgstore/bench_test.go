package pgstore_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The benchmarks compare appends with the same load as plain INSERTs into a
// bare table (no keys, no indexes) in the same database, with the same
// number of connections. Each writer appends to a stream of its own. Run them with, for example:
//
//	CAIRN_TEST_POSTGRES=postgres://… go test -run '^$' -bench . -benchtime 5s ./pgstore

var payload = make([]byte, 256)

// parallel runs n operations split over writers goroutines, op(w, i) being
// the i-th operation of writer w, and reports events per second.
func parallel(b *testing.B, writers, perOp int, op func(w, i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if next.Add(1) > int64(b.N) {
					return
				}
				if err := op(w, i); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "events/s")
}

func benchEvents(n int) []cairn.EventData {
	out := make([]cairn.EventData, n)
	for i := range out {
		out[i] = cairn.EventData{ID: uuid.Must(uuid.NewV7()), Type: "Bench", ContentType: cairn.ContentBinary, Data: payload}
	}
	return out
}

func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1, 100} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("events=%d/writers=%d", size, writers), func(b *testing.B) {
				s := openSchema(b, pgtest.Schema(b, "cairn_test"), pgstore.Options{MaxConns: int32(writers)})
				st := cairn.NewStore(s, cairn.Options{})
				b.ReportAllocs()
				ctx := context.Background()
				parallel(b, writers, size, func(w, i int) error {
					_, err := st.Append(ctx, fmt.Sprintf("w%d", w), cairn.Any, benchEvents(size)...)
					return err
				})
			})
		}
	}
}

// BenchmarkPlainInsert is the baseline: the same rows inserted into a bare
// table, one autocommit INSERT per append.
func BenchmarkPlainInsert(b *testing.B) {
	for _, size := range []int{1, 100} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("events=%d/writers=%d", size, writers), func(b *testing.B) {
				s := openSchema(b, pgtest.Schema(b, "cairn_test"), pgstore.Options{MaxConns: int32(writers)})
				ctx := context.Background()
				table := pgx.Identifier{s.Schema(), "bare"}.Sanitize()
				if _, err := s.Pool().Exec(ctx, "CREATE TABLE "+table+
					" (stream text, version bigint, id uuid, type text, data bytea, created timestamptz)"); err != nil {
					b.Fatal(err)
				}
				sql := "INSERT INTO " + table + " (stream, version, id, type, data, created) " +
					"SELECT $1, v, i, $3, $4, now() FROM unnest($2::uuid[]) WITH ORDINALITY AS u(i, v)"
				parallel(b, writers, size, func(w, i int) error {
					ids := make([]uuid.UUID, size)
					for k := range ids {
						ids[k] = uuid.Must(uuid.NewV7())
					}
					_, err := s.Pool().Exec(ctx, sql, fmt.Sprintf("w%d", w), ids, "Bench", payload)
					return err
				})
			})
		}
	}
}

// benchChildEnv tells a child process of BenchmarkAppendProcesses what to
// do: "schema mode appends", mode being "append" or "plain".
const benchChildEnv = "PGSTORE_BENCH_CHILD"

// BenchmarkAppendProcesses appends single events from 16 processes with
// one writer each (child processes of the test binary), each to a stream
// of its own: the commits of separate processes, which group commit cannot
// gather; beside the same as plain INSERTs into a bare table from 16
// processes. b.N appends are split among the processes.
func BenchmarkAppendProcesses(b *testing.B) {
	if spec := os.Getenv(benchChildEnv); spec != "" {
		benchChild(spec)
		return
	}
	for _, mode := range []string{"append", "plain"} {
		b.Run(fmt.Sprintf("%s/processes=16", mode), func(b *testing.B) {
			schema := pgtest.Schema(b, "cairn_test")
			s := openSchema(b, schema, pgstore.Options{})
			if _, err := s.Pool().Exec(context.Background(), "CREATE TABLE "+pgx.Identifier{schema, "bare"}.Sanitize()+
				" (stream text, version bigint, id uuid, type text, data bytea, created timestamptz)"); err != nil {
				b.Fatal(err)
			}
			runProcesses(b, 16, func(i int) string { return fmt.Sprintf("%s %s %d", schema, mode, (b.N+15-i)/16) })
		})
	}
}

// runProcesses runs n child processes of the benchmark, child i with the
// spec spec(i), started together once all are ready, and reports events/s.
func runProcesses(b *testing.B, n int, spec func(i int) string) {
	b.Helper()
	type child struct {
		cmd   *exec.Cmd
		in    io.WriteCloser
		lines *bufio.Scanner
	}
	children := make([]child, n)
	for i := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkAppendProcesses$", "-test.benchtime=1x")
		cmd.Env = append(os.Environ(), benchChildEnv+"="+spec(i))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		children[i] = child{cmd, in, bufio.NewScanner(out)}
		defer cmd.Wait()
		defer in.Close()
	}
	for i, c := range children {
		if !c.lines.Scan() || c.lines.Text() != "ready" {
			b.Fatalf("child %d did not get ready: %q", i, c.lines.Text())
		}
	}
	b.ResetTimer()
	for _, c := range children {
		fmt.Fprintln(c.in, "go")
	}
	for i, c := range children {
		if !c.lines.Scan() || c.lines.Text() != "done" {
			b.Fatalf("child %d failed: %q", i, c.lines.Text())
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// benchChild is a child process of BenchmarkAppendProcesses: it makes a
// first append, says "ready", waits for "go", makes its appends and says
// "done".
func benchChild(spec string) {
	var schema, mode string
	var appends int
	if _, err := fmt.Sscan(spec, &schema, &mode, &appends); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := context.Background()
	engine, err := pgstore.Open(ctx, os.Getenv(pgtest.EnvURL), pgstore.Options{Schema: schema})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := cairn.NewStore(engine, cairn.Options{})
	defer s.Close()
	stream := "p-" + uuid.NewString()
	sql := "INSERT INTO " + pgx.Identifier{schema, "bare"}.Sanitize() + " (stream, version, id, type, data, created) VALUES ($1, $2, $3, 'Bench', $4, now())"
	v := int64(-1)
	op := func(i int) error {
		if mode == "plain" {
			_, err := engine.Pool().Exec(ctx, sql, stream, int64(i), uuid.New(), payload)
			return err
		}
		exp := cairn.NoStream
		if v >= 0 {
			exp = cairn.Exact(v)
		}
		res, err := s.Append(ctx, stream, exp, cairn.EventData{Type: "Bench", ContentType: cairn.ContentBinary, Data: payload})
		v = res.Version
		return err
	}
	if err := op(0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	lines := bufio.NewScanner(os.Stdin)
	if !lines.Scan() {
		os.Exit(1)
	}
	for i := range appends {
		if err := op(i + 1); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Println("done")
}
