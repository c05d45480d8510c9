package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/bench"
	"github.com/cairndb/cairn/storeurl"
	natsurl "github.com/cairndb/cairn/storeurl/nats"
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
		serve     servedOptions
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the store with workloads W1–W6, D1–D3, M1 and the wire workloads K1–K5",
		Long: `Bench runs the workloads W1–W6 on 256-byte events and prints each figure
beside a raw baseline measured in the same run: a file appended with
fdatasync under the same concurrency, with a simple group commit.

With a directory store, bench works in a new subdirectory of it, which it
removes afterwards (unless --keep), so that the store and the baseline share
the disk. With memory: the figures show the engine without a disk. With
postgres://…, a cluster node (nats://…?dir=…) or a server (--server
cairn://…) bench writes streams named
bench-XXXXXXXX-… into the store, and deletes them and compacts the store
afterwards (unless --keep); the baseline is then PostgreSQL's own (plain
INSERTs), a cluster's NATS servers' own (a JetStream publish per append, to a
stream of bench's with the replicas of the cluster's log), or a file on this
machine's temporary directory.

On PostgreSQL, M1 runs application processes side by side (this command
started again as worker processes), one writer each, against the same
number of writers in one process, plain INSERTs from as many processes,
and the ordering floor from as many processes: the least any store does
on PostgreSQL to give each append a position in one gapless order (the
stream's row, the head row's lock, the event's row, an asynchronous
commit and a synchronous mark). It prints the processes' own CPU time
per append beside the plain INSERTs'. W1 runs its appends through the
ordering floor too, from one writer (one transaction, committed
synchronously), and prints the floor's p50 beside the plain INSERT's and
cairn's beside the floor's.

The wire workloads K1–K5 run when --workloads names them: the official
KurrentDB client appends (v1 Append, one connection and one per appender;
BatchAppend), reads and subscribes over the wire, and each figure is
printed beside the same workload run in process on the store --store
names. They reach the server --server names, or else a cairn serve that
bench starts on a new store of --store's engine (over TLS, or plaintext
with --insecure; --serve-binary runs another build of cairn as that
server, to compare builds). With --grpc-floor, K1 and K2 also run
against a gRPC server that answers every append at once and keeps
nothing, started beside with the same TLS: the floor that the protocol,
gRPC-Go and the client set on this machine, beside each wire figure.

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
			wire := slices.ContainsFunc(cfg.Workloads, func(w string) bool {
				return slices.Contains(bench.WireWorkloads, strings.ToUpper(strings.TrimSpace(w)))
			})
			url, err := g.target()
			if wire {
				// The wire workloads reach the server; their in-process
				// twins run on --store.
				url, err = g.store, checkStoreURL(g.store)
			}
			if err != nil {
				return err
			}
			kind, target, err := storeurl.Parse(url)
			if err != nil {
				return err
			}
			if wire && kind == storeurl.Remote {
				return errors.New("--store: the wire workloads run in process on --store beside the server, which needs an engine (a directory, memory: or postgres://…), not a server: name the server with --server")
			}
			if !wire && (serve.binary != "" || serve.insecure || serve.cpuprofile != "" || serve.floor) {
				return errors.New("--serve-binary, --insecure, --server-cpuprofile and --grpc-floor configure the servers of the wire workloads: name them with --workloads K1,…")
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
			if wire {
				w, stop, err := wireTarget(ctx, cmd.ErrOrStderr(), g.server, url, kind, target, keep, serve)
				if err != nil {
					return err
				}
				defer func() {
					if serr := stop(); err == nil {
						err = serr
					}
				}()
				cfg.Wire = w
			}
			// Shared stores: the run's streams carry a prefix of their
			// own, and are removed afterwards.
			var shared []string
			if kind == storeurl.Postgres || kind == storeurl.Remote || kind == storeurl.Nats {
				shared = append(shared, url)
			}
			if wire && g.server != "" {
				shared = append(shared, g.server)
			}
			if len(shared) > 0 {
				cfg.StreamPrefix = fmt.Sprintf("bench-%08x-", rand.Uint32())
			}
			for _, u := range shared {
				fmt.Fprintf(cmd.ErrOrStderr(), "bench: writing streams %s* to %s\n", cfg.StreamPrefix, storeurl.Redact(u))
				if !keep {
					defer func() {
						if cerr := cleanUp(context.WithoutCancel(ctx), cmd.ErrOrStderr(), u, cfg.StreamPrefix); err == nil {
							err = cerr
						}
					}()
				}
			}
			open := func(ctx context.Context) (*cairn.Store, error) {
				return openPassing(ctx, url, storeurl.Options{NoSync: noSync})
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
			if wire && !slices.ContainsFunc(cfg.Workloads, func(w string) bool {
				return !slices.Contains(bench.WireWorkloads, strings.ToUpper(strings.TrimSpace(w)))
			}) {
				noRaw = true // the wire workloads compare with the store in process
			}
			if !noRaw && kind == storeurl.Postgres {
				b, err := bench.NewPostgresBaseline(ctx, url)
				if err != nil {
					return err
				}
				defer b.Close()
				cfg.Baseline = b
			} else if !noRaw && kind == storeurl.Nats {
				o, err := natsurl.Parse(url)
				if err != nil {
					return err
				}
				if o.Stream == "" {
					o.Stream = "CAIRN"
				}
				if o.Replicas == 0 {
					o.Replicas = 3
				}
				b, err := bench.NewJetStreamBaseline(ctx, o.URL, o.Stream, o.Replicas, o.NATSOptions...)
				if err != nil {
					return err
				}
				defer func() {
					if cerr := b.Close(); err == nil {
						err = cerr
					}
				}()
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
			fmt.Fprintf(cfg.Out, "# cairn bench: store %s (%s), %d CPUs, %s, %s%s\n",
				storeurl.Redact(url), mode, runtime.GOMAXPROCS(0), runtime.Version(), time.Now().UTC().Format(time.RFC3339), loadNote(", load average "))
			if cfg.Wire != nil {
				fmt.Fprintf(cfg.Out, "# wire workloads: %s\n", cfg.Wire.Name)
			}
			begun := time.Now()
			results, err := bench.Run(ctx, cfg)
			if err == nil {
				if l := loadNote("load average "); l != "" {
					fmt.Fprintf(cfg.Out, "# %s at the end\n", l)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "bench: %d figures in %s\n", len(results), time.Since(begun).Round(time.Millisecond))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.W1Appends, "w1-appends", 0, "W1: appends by the single writer (default 2000)")
	f.IntVar(&cfg.W2Writers, "w2-writers", 0, "W2: concurrent writers (default 64)")
	f.IntVar(&cfg.W2Appends, "w2-appends", 0, "W2: appends per writer (default 256000 in all, stopped after --time)")
	f.IntVar(&cfg.W3Events, "w3-events", 0, "W3: events appended in appends of 1000 (default 500000)")
	f.IntVar(&cfg.W4Writers, "w4-writers", 0, "W4: writers contending on one stream (default 16)")
	f.IntVar(&cfg.W4Commits, "w4-commits", 0, "W4: successful commits (default 2000)")
	f.IntVar(&cfg.W5Events, "events", 0, "W5/W6: events in the log before it is read back (default 1000000)")
	f.BoolVar(&large, "large", false, "W5/W6 and D3 over 10 million events")
	f.IntVar(&cfg.D1Writers, "d1-writers", 0, "D1: writers, conditional and not (default 64)")
	f.IntVar(&cfg.D1Appends, "d1-appends", 0, "D1: appends per writer, each way (default 256000 in all, stopped after --time)")
	f.IntVar(&cfg.D2Commits, "d2-commits", 0, "D2: successful commits on the contended tag (default 1000)")
	f.IntVar(&cfg.D3Events, "d3-events", 0, "D3: events appended, 1000 of them tagged and read back by query (default 200000)")
	f.IntVar(&cfg.M1Processes, "m1-processes", 0, "M1: application processes, one writer each (default 16)")
	f.IntVar(&cfg.M1Appends, "m1-appends", 0, "M1: appends per process (default 300)")
	f.IntVar(&cfg.KAppenders, "k-appenders", 0, "K1–K3, K5: concurrent appenders (default 64)")
	f.IntVar(&cfg.KAppends, "k-appends", 0, "K1–K3, K5: appends per appender (default: K1–K3 256000 in all, stopped after --time; K5 200)")
	f.DurationVar(&cfg.Time, "time", 0, "W2, D1, K1–K3 at their default sizes: how long each run may take before its writers stop (default 3s)")
	f.IntVar(&cfg.KEvents, "k-events", 0, "K4, K5: events in each log before it is read (default 200000); K3 appends a quarter as many in appends of 1000")
	f.StringVar(&workloads, "workloads", "", "comma-separated workloads to run, among W1,W2,W3,W4,W5,W6,D1,D2,D3,M1 (default all; M1 on PostgreSQL only) and the wire workloads K1,K2,K3,K4,K5")
	f.StringVar(&serve.binary, "serve-binary", "", "the cairn binary that bench starts as the server of the wire workloads (default: this one)")
	f.BoolVar(&serve.insecure, "insecure", false, "the server bench starts speaks plaintext: the official Go client sends no credentials without TLS, so the appends go through the protocol's generated client and K4, K5 are skipped")
	f.StringVar(&serve.cpuprofile, "server-cpuprofile", "", "the server bench starts writes a CPU profile of the run to this file")
	f.BoolVar(&noSync, "no-sync", false, "open a directory store without fsync (figures without durability)")
	f.BoolVar(&keep, "keep", false, "keep what bench wrote: the directory store it created, or its streams in a shared store")
	f.BoolVar(&noRaw, "no-baseline", false, "skip the raw baseline")
	f.StringVar(&profile, "cpuprofile", "", "write a CPU profile of the run to this file")
	f.StringVar(&rawDir, "baseline-dir", "", "directory of the baseline's file (default: the bench store's directory, or the temporary directory)")
	f.BoolVar(&serve.floor, "grpc-floor", false, "K1 and K2 also run against a gRPC server that bench starts beside, which answers every append at once and keeps nothing, over the same TLS with the same client: what the protocol alone costs on this machine, beside the wire figures")
	cmd.AddCommand(newBenchWorkerCmd(), newBenchFloorCmd())
	return cmd
}

// cleanUp deletes the streams a run wrote to a shared store (those starting
// with prefix) and compacts the store, so that their space is given back.
func cleanUp(ctx context.Context, log io.Writer, url, prefix string) (err error) {
	s, err := openPassing(ctx, url, storeurl.Options{})
	if err != nil {
		return fmt.Errorf("bench: clean up: %w", err)
	}
	defer func() {
		if cerr := s.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("bench: clean up: %w", cerr)
		}
	}()
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

// wireTarget returns the server of the wire workloads: the one --server
// names, or a cairn serve started on a new store of the engine of url (the
// run's own store, of the given kind and target), and a function that stops
// it.
func wireTarget(ctx context.Context, log io.Writer, serverURL, url string, kind storeurl.Kind, target string, keep bool, opts servedOptions) (*bench.Wire, func() error, error) {
	if serverURL != "" {
		if opts.binary != "" || opts.insecure || opts.cpuprofile != "" || opts.floor {
			return nil, nil, errors.New("--serve-binary, --insecure, --server-cpuprofile and --grpc-floor configure servers bench starts, beside the one --server names")
		}
		w, err := wireFor(serverURL)
		return w, func() error { return nil }, err
	}
	store := url
	cleanUp := func() error { return nil }
	switch kind {
	case storeurl.Dir:
		dir, err := os.MkdirTemp(target, "bench-served-")
		if err != nil {
			return nil, nil, err
		}
		store = dir
		if !keep {
			cleanUp = func() error { return os.RemoveAll(dir) }
		}
	case storeurl.Memory, storeurl.Postgres:
		// A memory: server has its own; PostgreSQL is shared, and the
		// run's streams carry its prefix.
	default:
		return nil, nil, fmt.Errorf("bench: cannot start a server on %s", storeurl.Redact(url))
	}
	srv, err := startServed(ctx, store, opts)
	if err != nil {
		return nil, nil, errors.Join(err, cleanUp())
	}
	fmt.Fprintf(log, "bench: serving %s with %s (pid %d)\n", storeurl.Redact(store), srv.cmd.Path, srv.cmd.Process.Pid)
	w, err := wireFor(srv.url)
	if err != nil {
		return nil, nil, errors.Join(err, srv.stop(), cleanUp())
	}
	w.Name = fmt.Sprintf("cairn serve on %s, %s", storeurl.Redact(store), w.Name)
	pid := srv.cmd.Process.Pid
	w.ServerCPU = func() time.Duration { return processCPU(pid) }
	if srv.http != "" {
		metrics := "http://" + srv.http + "/metrics"
		w.CommitStats = func(ctx context.Context) (cairn.CommitStats, error) { return scrapeCommitStats(ctx, metrics) }
	}
	stop := func() error { return errors.Join(srv.stop(), cleanUp()) }
	if opts.floor {
		f, err := startFloor(ctx, log, opts)
		if err != nil {
			return nil, nil, errors.Join(err, stop())
		}
		w.Floor = f.wire
		stopServer := stop
		stop = func() error { return errors.Join(f.stop(), stopServer()) }
	}
	return w, stop, nil
}

// floorTarget is the gRPC floor bench started.
type floorTarget struct {
	wire *bench.Wire
	stop func() error
}

// startFloor starts the gRPC floor (`cairn bench floor`) with the TLS or
// plaintext of the server, and returns the wire workloads' view of it.
func startFloor(ctx context.Context, log io.Writer, opts servedOptions) (*floorTarget, error) {
	srv, err := startServed(ctx, "", servedOptions{insecure: opts.insecure})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "bench: the gRPC floor: pid %d\n", srv.cmd.Process.Pid)
	w, err := wireFor(srv.url)
	if err != nil {
		return nil, errors.Join(err, srv.stop())
	}
	pid := srv.cmd.Process.Pid
	w.ServerCPU = func() time.Duration { return processCPU(pid) }
	return &floorTarget{wire: w, stop: srv.stop}, nil
}

// loadNote returns prefix and the machine's load average over the last
// minute, or nothing where the system does not tell it (/proc/loadavg):
// the report says how busy the machine was, since its figures move with
// that.
func loadNote(prefix string) string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return prefix + f[0]
}
