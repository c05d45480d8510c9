package main

import (
	"context"
	"fmt"
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
		Short: "Measure the store with workloads W1–W6 against a raw fdatasync baseline",
		Long: `Bench runs the workloads W1–W6 on 256-byte events and prints each figure
beside a raw baseline measured in the same run: a file appended with
fdatasync under the same concurrency, with a simple group commit.

With a directory store, bench works in a new subdirectory of it, which it
removes afterwards (unless --keep), so that the store and the baseline share
the disk. With memory: the figures show the engine without a disk. With
postgres://… bench writes into the database it names.

The default sizes finish in well under a minute on a small machine;
--large fills the log to 10 million events for W5 and W6. The sizes of
every workload are flags. Progress goes to stderr: a bar on a terminal,
plain lines otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if large {
				cfg.W5Events = 10_000_000
			}
			if workloads != "" {
				cfg.Workloads = strings.Split(workloads, ",")
			}
			kind, target, err := storeurl.Parse(g.store)
			if err != nil {
				return err
			}
			url := g.store
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
			open := func(ctx context.Context) (*cairn.Store, error) {
				return storeurl.Open(ctx, url, storeurl.Options{NoSync: noSync})
			}
			cfg.Open = open
			if kind == storeurl.Dir {
				cfg.Reopen = open
			}
			if !noRaw && kind == storeurl.Postgres {
				b, err := bench.NewPostgresBaseline(ctx, g.store)
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
			if f, ok := cfg.Progress.(*os.File); ok {
				if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
					cfg.Terminal = true
				}
			}
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
				url, mode, runtime.GOMAXPROCS(0), runtime.Version(), time.Now().UTC().Format(time.RFC3339))
			_, err = bench.Run(ctx, cfg)
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
	f.BoolVar(&large, "large", false, "W5/W6 over 10 million events")
	f.StringVar(&workloads, "workloads", "", "comma-separated workloads to run, such as W1,W3 (default all)")
	f.BoolVar(&noSync, "no-sync", false, "open a directory store without fsync (figures without durability)")
	f.BoolVar(&keep, "keep", false, "keep the directory store bench created")
	f.BoolVar(&noRaw, "no-baseline", false, "skip the raw baseline")
	f.StringVar(&profile, "cpuprofile", "", "write a CPU profile of the run to this file")
	f.StringVar(&rawDir, "baseline-dir", "", "directory of the baseline's file (default: the bench store's directory, or the temporary directory)")
	return cmd
}
