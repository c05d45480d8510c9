package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/bench"
	"github.com/cairndb/cairn/storeurl"
	"github.com/spf13/cobra"
)

func newBenchCmd(g *globals) *cobra.Command {
	var (
		cfg       bench.Config
		large     bool
		noSync    bool
		keep      bool
		noRaw     bool
		rawDir    string
		workloads string
		profile   string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the store with workloads W1–W6, D1–D3 and M1 against a raw baseline",
		Long: `Bench runs the workloads W1–W6 on 256-byte events and prints each figure
beside a raw baseline measured in the same run: a file appended with
fdatasync under the same concurrency, with a simple group commit.

With a directory store, bench works in a new subdirectory of it, which it
removes afterwards (unless --keep), so that the store and the baseline share
the disk. With memory: the figures show the engine without a disk. With
postgres://…, a cluster node (nats://…?dir=…) or a server (--server
cairn://…) bench writes streams named
bench-XXXXXXXX-… into the store, and deletes them and compacts the store
afterwards (unless --keep); the baseline is then PostgreSQL's own, or a file
on this machine's temporary directory.

On PostgreSQL, M1 runs application processes side by side (this command
started again as worker processes), one writer each, against the same
number of writers in one process and plain INSERTs from as many processes.

The default sizes finish in well under a minute on a small machine;
--large fills the log to 10 million events for W5 and W6. The sizes of
every workload are flags. Progress goes to stderr: a bar on a terminal,
plain lines otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ctx := cmd.Context()
			if large {
				cfg.W5Events = 10_000_000
				cfg.D3Events = 10_000_000
			}
			if workloads != "" {
				cfg.Workloads = strings.Split(workloads, ",")
			}
			if err := bench.CheckWorkloads(cfg.Workloads); err != nil {
				return fmt.Errorf("--workloads: %w", err)
			}
			url, err := g.target()
			if err != nil {
				return err
			}
			kind, target, err := storeurl.Parse(url)
			if err != nil {
				return err
			}
			if kind == storeurl.Dir {
				if err := os.MkdirAll(target, 0o755); err != nil {
					return err
				}
				dir, err := os.MkdirTemp(target, "bench-")
				if err != nil {
					return err
				}
				if !keep {
					defer os.RemoveAll(dir)
				}
				url = dir
				if rawDir == "" {
					rawDir = dir
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "bench: store in %s\n", dir)
			}
			if kind == storeurl.Postgres || kind == storeurl.Remote || kind == storeurl.Nats {
				// A shared store: the run's streams carry a prefix of their
				// own, and are removed afterwards.
				cfg.StreamPrefix = fmt.Sprintf("bench-%08x-", rand.Uint32())
				fmt.Fprintf(cmd.ErrOrStderr(), "bench: writing streams %s* to %s\n", cfg.StreamPrefix, storeurl.Redact(url))
				if !keep {
					defer func() {
						if cerr := cleanUp(context.WithoutCancel(ctx), cmd.ErrOrStderr(), url, cfg.StreamPrefix); err == nil {
							err = cerr
						}
					}()
				}
			}
			open := func(ctx context.Context) (*cairn.Store, error) {
				return storeurl.Open(ctx, url, storeurl.Options{NoSync: noSync})
			}
			cfg.Open = open
			if kind == storeurl.Dir {
				cfg.Reopen = open
			}
			if kind == storeurl.Postgres {
				// M1's processes share the store.
				cfg.URL = url
				if cfg.Worker, err = benchWorker(); err != nil {
					return err
				}
			}
			if !noRaw && kind == storeurl.Postgres {
				b, err := bench.NewPostgresBaseline(ctx, url)
				if err != nil {
					return err
				}
				defer b.Close()
				cfg.Baseline = b
			} else if !noRaw {
				if rawDir == "" {
					rawDir = os.TempDir()
				}
				b, err := bench.NewFileBaseline(rawDir)
				if err != nil {
					return err
				}
				defer b.Close()
				cfg.Baseline = b
			}
			cfg.Out = cmd.OutOrStdout()
			cfg.Progress = cmd.ErrOrStderr()
			cfg.Terminal = isTerminal(cfg.Progress)
			if profile != "" {
				f, err := os.Create(profile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			mode := "durable"
			switch {
			case kind == storeurl.Memory:
				mode = "in memory"
			case noSync && kind == storeurl.Dir:
				mode = "no fsync"
			}
			fmt.Fprintf(cfg.Out, "# cairn bench: store %s (%s), %d CPUs, %s, %s\n",
				storeurl.Redact(url), mode, runtime.GOMAXPROCS(0), runtime.Version(), time.Now().UTC().Format(time.RFC3339))
			begun := time.Now()
			results, err := bench.Run(ctx, cfg)
			if err == nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "bench: %d figures in %s\n", len(results), time.Since(begun).Round(time.Millisecond))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.W1Appends, "w1-appends", 0, "W1: appends by the single writer (default 2000)")
	f.IntVar(&cfg.W2Writers, "w2-writers", 0, "W2: concurrent writers (default 64)")
	f.IntVar(&cfg.W2Appends, "w2-appends", 0, "W2: appends per writer (default 200)")
	f.IntVar(&cfg.W3Events, "w3-events", 0, "W3: events appended in appends of 1000 (default 500000)")
	f.IntVar(&cfg.W4Writers, "w4-writers", 0, "W4: writers contending on one stream (default 16)")
	f.IntVar(&cfg.W4Commits, "w4-commits", 0, "W4: successful commits (default 2000)")
	f.IntVar(&cfg.W5Events, "events", 0, "W5/W6: events in the log before it is read back (default 1000000)")
	f.BoolVar(&large, "large", false, "W5/W6 and D3 over 10 million events")
	f.IntVar(&cfg.D1Writers, "d1-writers", 0, "D1: writers, conditional and not (default 64)")
	f.IntVar(&cfg.D1Appends, "d1-appends", 0, "D1: appends per writer, each way (default 200)")
	f.IntVar(&cfg.D2Commits, "d2-commits", 0, "D2: successful commits on the contended tag (default 1000)")
	f.IntVar(&cfg.D3Events, "d3-events", 0, "D3: events appended, 1000 of them tagged and read back by query (default 200000)")
	f.IntVar(&cfg.M1Processes, "m1-processes", 0, "M1: application processes, one writer each (default 16)")
	f.IntVar(&cfg.M1Appends, "m1-appends", 0, "M1: appends per process (default 300)")
	f.StringVar(&workloads, "workloads", "", "comma-separated workloads to run, among W1,W2,W3,W4,W5,W6,D1,D2,D3,M1 (default all; M1 on PostgreSQL only)")
	f.BoolVar(&noSync, "no-sync", false, "open a directory store without fsync (figures without durability)")
	f.BoolVar(&keep, "keep", false, "keep what bench wrote: the directory store it created, or its streams in a shared store")
	f.BoolVar(&noRaw, "no-baseline", false, "skip the raw baseline")
	f.StringVar(&profile, "cpuprofile", "", "write a CPU profile of the run to this file")
	f.StringVar(&rawDir, "baseline-dir", "", "directory of the baseline's file (default: the bench store's directory, or the temporary directory)")
	cmd.AddCommand(newBenchWorkerCmd())
	return cmd
}

// cleanUp deletes the streams a run wrote to a shared store (those starting
// with prefix) and compacts the store, so that their space is given back.
func cleanUp(ctx context.Context, log io.Writer, url, prefix string) error {
	s, err := storeurl.Open(ctx, url, storeurl.Options{})
	if err != nil {
		return fmt.Errorf("bench: clean up: %w", err)
	}
	defer s.Close()
	n := 0
	after := prefix
	for {
		ids, err := s.Backend().ListStreams(ctx, after, 512)
		if err != nil {
			return fmt.Errorf("bench: clean up: %w", err)
		}
		for _, id := range ids {
			if !strings.HasPrefix(id, prefix) {
				ids = nil
				break
			}
			if err := s.DeleteStream(ctx, id, cairn.Any); err != nil {
				return fmt.Errorf("bench: clean up: %w", err)
			}
			n++
			after = id
		}
		if len(ids) < 512 {
			break
		}
	}
	if err := s.Compact(ctx); err != nil {
		return fmt.Errorf("bench: clean up: deleted %d streams, then: %w", n, err)
	}
	fmt.Fprintf(log, "bench: deleted the %d streams it wrote (%s*) and compacted the store\n", n, prefix)
	return nil
}
