package pgstore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/cputime"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// BenchmarkAppendServerCPU reports the CPU time that PostgreSQL's backend
// processes spend per append (server-µs/op), read from /proc/<pid>/schedstat
// (nanoseconds) or, where the kernel does not keep it, /proc/<pid>/stat of
// the backends whose application_name is the schema's: a figure that the
// load of a shared machine disturbs far less than latency or throughput.
// Beside it, the CPU time of this process per append (client-µs/op): the
// engine's side of the call, pgx included. It needs the server on this
// machine (it skips otherwise). The shapes:
//
//	alone     one Store and one writer, each append a new stream's first
//	          event (the stream lists are filed too)
//	existing  one Store and one writer appending in turn to 1,000 streams
//	          that exist, each with its exact expected version (W1's shape)
//	stores=16 16 Stores, one writer each on a stream of its own (M1's
//	          shape, in one process), whose commits overlap
//	plain     a plain autocommit INSERT of the same event into a bare table
//
// The backends of the Stores' listeners are counted too.
func BenchmarkAppendServerCPU(b *testing.B) {
	ctx := context.Background()
	ev := func() cairn.EventData {
		return cairn.EventData{ID: uuid.Must(uuid.NewV7()), Type: "Bench", ContentType: cairn.ContentBinary, Data: payload}
	}
	b.Run("alone", func(b *testing.B) {
		schema := pgtest.Schema(b, "cairn_test")
		st := cairn.NewStore(openSchema(b, schema, pgstore.Options{MaxConns: 1}), cairn.Options{})
		for i := range 3 {
			if _, err := st.Append(ctx, fmt.Sprintf("warm-%d", i), cairn.NoStream, ev()); err != nil {
				b.Fatal(err)
			}
		}
		serverCPU(b, schema, func() {
			for i := range b.N {
				if _, err := st.Append(ctx, fmt.Sprintf("alone-%d", i), cairn.NoStream, ev()); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("existing", func(b *testing.B) {
		schema := pgtest.Schema(b, "cairn_test")
		st := cairn.NewStore(openSchema(b, schema, pgstore.Options{MaxConns: 1}), cairn.Options{})
		versions := make([]int64, 1000)
		for i := range versions {
			if _, err := st.Append(ctx, fmt.Sprintf("existing-%d", i), cairn.NoStream, ev()); err != nil {
				b.Fatal(err)
			}
		}
		serverCPU(b, schema, func() {
			for i := range b.N {
				s := i % len(versions)
				if _, err := st.Append(ctx, fmt.Sprintf("existing-%d", s), cairn.Exact(versions[s]), ev()); err != nil {
					b.Fatal(err)
				}
				versions[s]++
			}
		})
	})
	b.Run("stores=16", func(b *testing.B) {
		schema := pgtest.Schema(b, "cairn_test")
		stores := make([]*cairn.Store, 16)
		for i := range stores {
			stores[i] = cairn.NewStore(openSchema(b, schema, pgstore.Options{MaxConns: 1}), cairn.Options{})
			if _, err := stores[i].Append(ctx, fmt.Sprintf("w-%d", i), cairn.NoStream, ev()); err != nil {
				b.Fatal(err)
			}
		}
		serverCPU(b, schema, func() {
			parallel(b, len(stores), 1, func(w, _ int) error {
				_, err := stores[w].Append(ctx, fmt.Sprintf("w-%d", w), cairn.Any, ev())
				return err
			})
		})
	})
	b.Run("plain", func(b *testing.B) {
		schema := pgtest.Schema(b, "cairn_test")
		s := openSchema(b, schema, pgstore.Options{MaxConns: 1})
		table := pgx.Identifier{schema, "bare"}.Sanitize()
		if _, err := s.Pool().Exec(ctx, "CREATE TABLE "+table+" (stream text, version bigint, id uuid, type text, data bytea, created timestamptz)"); err != nil {
			b.Fatal(err)
		}
		sql := "INSERT INTO " + table + " (stream, version, id, type, data, created) VALUES ($1, $2, $3, 'Bench', $4, now())"
		serverCPU(b, schema, func() {
			for i := range b.N {
				if _, err := s.Pool().Exec(ctx, sql, "plain", int64(i), uuid.New(), payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// serverCPU runs f, timed, and reports the CPU time of the backends of
// schema's connections (application_name "cairn:<schema>…") per op, and
// this process's.
func serverCPU(b *testing.B, schema string, f func()) {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1`, "cairn:"+schema+"%")
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	cpu := func() (time.Duration, bool) {
		// The time on the CPU in nanoseconds, from schedstat, where
		// the kernel keeps it (CONFIG_SCHED_INFO); stat's clock ticks
		// otherwise.
		var ns int64
		for _, pid := range pids {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
			if err != nil {
				ns = -1
				break
			}
			f := strings.Fields(string(stat))
			if len(f) == 0 {
				ns = -1
				break
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				ns = -1
				break
			}
			ns += n
		}
		if ns >= 0 {
			return time.Duration(ns), true
		}
		var ticks int64
		for _, pid := range pids {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				return 0, false
			}
			// The fields after the command's closing parenthesis:
			// utime and stime are the 12th and 13th.
			s := string(stat)
			f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
			if len(f) < 13 {
				return 0, false
			}
			u, err1 := strconv.ParseInt(f[11], 10, 64)
			k, err2 := strconv.ParseInt(f[12], 10, 64)
			if err1 != nil || err2 != nil {
				return 0, false
			}
			ticks += u + k
		}
		// Clock ticks of 10 ms (USER_HZ is 100 on Linux).
		return time.Duration(ticks) * 10 * time.Millisecond, true
	}
	before, ok := cpu()
	if !ok || len(pids) == 0 {
		b.Skip("the server's backend processes are not readable in /proc here")
	}
	b.ResetTimer()
	self0 := cputime.Process()
	f()
	self1 := cputime.Process()
	b.StopTimer()
	after, ok := cpu()
	if !ok {
		b.Fatal("a backend process ended during the benchmark")
	}
	b.ReportMetric(float64((after-before).Microseconds())/float64(b.N), "server-µs/op")
	if self0 >= 0 {
		b.ReportMetric(float64((self1-self0).Microseconds())/float64(b.N), "client-µs/op")
	}
}
