// Package bench measures a cairn store with the workloads W1–W6 and prints
// each figure beside a raw baseline measured in the same run, so that the
// result reads as a ratio on any machine:
//
//	W1  1 writer, 1 event per append, over 10k streams: append latency;
//	    on PostgreSQL also beside the ordering floor (pgbaseline.go)
//	W2  64 writers, 1 event per append, exact expected version: events/s, p99
//	W3  1 writer, appends of 1000 events: events/s
//	W4  16 writers contending on one stream: commits/s, conflicts (never lost)
//	W5  read the whole log from position 0: events/s; rehydrate a 1k-event
//	    stream: latency
//	W6  bytes on disk per event, resident memory, time to reopen
//	D1  64 writers appending on a condition on their own tags, beside the
//	    same writers unconditionally (W2's shape) in the same run
//	D2  16 writers contending on one tag: commits/s, conflicts (never lost)
//	D3  read the 1,000 events of one tag out of D3Events: latency
//	M1  16 application processes with one writer each, single-event
//	    appends: events/s beside the baseline from as many processes,
//	    beside the ordering floor from as many processes (pgbaseline.go),
//	    and beside 16 writers in one process (a store shared by processes
//	    only), the floor beside it too; the processes' CPU time per append
//	    beside the baseline's
//
// D1's second column is the unconditional figure of the same run, not the
// baseline, so that its ratio is the cost of the conditions; so is the
// second column of M1's comparison with one process.
//
// The wire workloads K1–K5 (wire.go) reach a cairn server with the
// official KurrentDB client ([Config.Wire]) and print each figure beside
// the same workload run in process on the run's own store; they run only
// when Config.Wire is set. K1 and K2 also run against the gRPC floor
// ([NewFloor]) when [Wire.Floor] is set.
//
// Events carry 256 bytes of data. The baseline is pluggable ([Baseline]);
// [FileBaseline] appends 256-byte records to a file with fdatasync under the
// same concurrency, with a simple group commit.
//
// [Run] works with any [*cairn.Store]; the cairn command's bench subcommand
// runs it on the store named by --store.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/progress"
)

// EventBytes is the size of the data of every event the workloads write.
const EventBytes = 256

// Config configures a run. The zero value of each size picks the default,
// which keeps a run to a couple of minutes on a small machine.
type Config struct {
	// Open opens the store to measure; Run calls it once at the start.
	Open func(ctx context.Context) (*cairn.Store, error)
	// Reopen opens the same store again: W6 closes the store and times
	// Reopen. Nil skips that figure.
	Reopen func(ctx context.Context) (*cairn.Store, error)
	// Baseline is the raw reference. Nil reports the store's figures
	// alone.
	Baseline Baseline
	// Workloads selects workloads by name ("W1" … "W6", "D1" … "D3");
	// empty runs all. Run refuses a name it does not know.
	Workloads []string
	// StreamPrefix starts the id of every stream the run writes, so that a
	// run in a shared store can be told apart and removed afterwards.
	StreamPrefix string
	// URL is the store's, for the worker processes of M1: a store that
	// processes share. Worker returns a command that runs [Worker] in a
	// new process. M1 runs only with both.
	URL    string
	Worker func(ctx context.Context) *exec.Cmd

	W1Appends      int // W1 appends; 0 means 2,000
	W2Writers      int // W2 writers; 0 means 64
	W2Appends      int // W2 appends per writer; 0 means 256,000 in all (see Time)
	W3Events       int // W3 events; 0 means 500,000
	W4Writers      int // W4 writers; 0 means 16
	W4Commits      int // W4 successful commits; 0 means 2,000
	W5Events       int // events in the log before W5 reads it; 0 means 1,000,000
	W5Rehydrations int // W5 reads of the 1k-event stream; 0 means 300
	D1Writers      int // D1 writers; 0 means 64
	D1Appends      int // D1 appends per writer, each way; 0 means 256,000 in all (see Time)
	D2Writers      int // D2 writers; 0 means 16
	D2Commits      int // D2 successful commits; 0 means 1,000
	D3Events       int // events D3 appends, 1,000 of them tagged; 0 means 200,000
	D3Reads        int // D3 reads of the 1,000; 0 means 200
	M1Processes    int // M1 processes, one writer each; 0 means 16
	M1Appends      int // M1 appends per process; 0 means 300

	// Wire is the server of the wire workloads K1–K5; nil skips them.
	Wire       *Wire
	KAppenders int // K1–K3 and K5 appenders; 0 means 64
	KAppends   int // K1–K3 and K5 appends per appender; 0 means 256,000 in all for K1–K3 (see Time), 200 for K5
	KEvents    int // events in each log before K4 and K5 read it; 0 means 200,000
	KReads     int // K4 rehydrations; 0 means 100

	// Out receives the report; nil means os.Stdout.
	Out io.Writer
	// Progress receives progress: a bar redrawn in place when Terminal is
	// set, plain lines otherwise. Nil shows none.
	Progress io.Writer
	Terminal bool

	// Time bounds the runs of W2, D1 and K1–K3 at their default sizes:
	// their writers stop once it has passed since they started (each run
	// of a workload: over the wire, in process, the floor), and a baseline
	// beside one then makes as many appends as it made. 0 means 3 s.
	Time time.Duration

	// Set by defaults: the time limits of W2, D1 and K1–K3 (0 when their
	// size was given), and K5's appends per appender.
	w2Limit, d1Limit, kLimit time.Duration
	k5Appends                int
}

// defaultAppends is the appends in all of W2, D1 and K1–K3 (each way)
// when their size is not given: 4,000 a writer at 64, which a 2-core
// machine's embedded engine makes in about two seconds; Time ends the run
// of a slower engine. A shorter run reads lower than the engine's steady
// rate: a process's start (the first flush of the index, the memory
// touched for the first time) is then a large part of it
// (docs/benchmarks.md, "Short runs").
const defaultAppends = 256_000

func (c *Config) defaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	if c.Time <= 0 {
		c.Time = 3 * time.Second
	}
	// sized gives *appends its default for writers, and returns the run's
	// time limit: Time at the default size, none at a size given.
	sized := func(appends *int, writers int) time.Duration {
		if *appends > 0 {
			return 0
		}
		*appends = (defaultAppends + writers - 1) / writers
		return c.Time
	}
	def(&c.W1Appends, 2000)
	def(&c.W2Writers, 64)
	c.w2Limit = sized(&c.W2Appends, c.W2Writers)
	def(&c.W3Events, 500_000)
	def(&c.W4Writers, 16)
	def(&c.W4Commits, 2000)
	def(&c.W5Events, 1_000_000)
	def(&c.W5Rehydrations, 300)
	def(&c.D1Writers, 64)
	c.d1Limit = sized(&c.D1Appends, c.D1Writers)
	def(&c.D2Writers, 16)
	def(&c.D2Commits, 1000)
	def(&c.D3Events, 200_000)
	def(&c.D3Reads, 200)
	def(&c.M1Processes, 16)
	def(&c.M1Appends, 300)
	def(&c.KAppenders, 64)
	c.k5Appends = c.KAppends
	if c.k5Appends <= 0 {
		c.k5Appends = 200
	}
	c.kLimit = sized(&c.KAppends, c.KAppenders)
	def(&c.KEvents, 200_000)
	def(&c.KReads, 100)
	if c.Out == nil {
		c.Out = os.Stdout
	}
}

// Result is one measured figure.
type Result struct {
	Workload string // "W1" … "W6"
	Metric   string // what was measured
	Unit     string // "ms", "events/s", "bytes", …
	Value    float64
	// Raw is the baseline's figure when HasRaw.
	Raw    float64
	HasRaw bool
}

// Ratio returns Value / Raw.
func (r Result) Ratio() float64 { return r.Value / r.Raw }

type runner struct {
	cfg     Config
	s       *cairn.Store
	results []Result
	payload []byte // random bytes the events' data are cut from
	cursor  int
	// rawRecords counts the records appended to the baseline.
	rawRecords int
	// wireHeaded is set once the header of the wire figures is printed.
	wireHeaded bool
	// warm numbers the streams of the first append of each connection.
	warm int
}

// Run runs the selected workloads and prints a line per figure to
// cfg.Out as it is measured. It returns every figure.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	cfg.defaults()
	if cfg.Open == nil {
		return nil, errors.New("bench: Config.Open is required")
	}
	if err := CheckWorkloads(cfg.Workloads); err != nil {
		return nil, err
	}
	s, err := cfg.Open(ctx)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, s: s, payload: make([]byte, 4<<20)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range r.payload {
		r.payload[i] = byte(rng.Uint32())
	}
	defer func() { r.s.Close() }()
	base := "-"
	if cfg.Baseline != nil {
		base = cfg.Baseline.Name()
	}
	if slices.ContainsFunc(Workloads, func(w string) bool { return !slices.Contains(WireWorkloads, w) && selected(cfg.Workloads, w) }) {
		fmt.Fprintf(cfg.Out, "%-4s %-36s %16s %16s %8s\n", "", "figure", "cairn", base, "ratio")
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"W1", r.w1}, {"W2", r.w2}, {"W3", r.w3}, {"W4", r.w4}, {"W5", r.w5}, {"W6", r.w6},
		{"D1", r.d1}, {"D2", r.d2}, {"D3", r.d3}, {"M1", r.m1},
		{"K1", r.k1}, {"K2", r.k2}, {"K3", r.k3}, {"K4", r.k4}, {"K5", r.k5},
	}
	for _, st := range steps {
		named := selected(cfg.Workloads, st.name) && len(cfg.Workloads) > 0
		wire := slices.Contains(WireWorkloads, st.name)
		switch {
		case wire && cfg.Wire == nil && named:
			return r.results, fmt.Errorf("%s: a wire workload needs a server (Config.Wire)", st.name)
		case wire && cfg.Wire == nil:
			continue
		case len(cfg.Workloads) > 0 && !named:
			continue
		}
		if len(cfg.Workloads) == 0 && st.name == "M1" && (cfg.Worker == nil || cfg.URL == "") {
			continue // a store of one process
		}
		if err := st.fn(ctx); err != nil {
			return r.results, fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return r.results, nil
}

// Workloads are the names of the workloads, in the order Run runs them;
// the wire workloads (WireWorkloads) last.
var Workloads = []string{"W1", "W2", "W3", "W4", "W5", "W6", "D1", "D2", "D3", "M1", "K1", "K2", "K3", "K4", "K5"}

// selected reports whether names (all when empty) select workload.
func selected(names []string, workload string) bool {
	return len(names) == 0 || slices.ContainsFunc(names, func(w string) bool { return strings.EqualFold(strings.TrimSpace(w), workload) })
}

// CheckWorkloads returns an error naming the first of names that is not a
// workload (case does not matter).
func CheckWorkloads(names []string) error {
	for _, n := range names {
		if !slices.ContainsFunc(Workloads, func(w string) bool { return strings.EqualFold(w, strings.TrimSpace(n)) }) {
			return fmt.Errorf("bench: unknown workload %q: the workloads are %s", n, strings.Join(Workloads, ", "))
		}
	}
	return nil
}

func (r *runner) report(res Result) {
	r.results = append(r.results, res)
	raw, ratio := "-", "-"
	if res.HasRaw {
		raw = format(res.Raw, res.Unit)
		ratio = fmt.Sprintf("%.2f×", res.Ratio())
	}
	fmt.Fprintf(r.cfg.Out, "%-4s %-36s %16s %16s %8s\n", res.Workload, res.Metric, format(res.Value, res.Unit), raw, ratio)
}

func format(v float64, unit string) string {
	switch unit {
	case "ms":
		return fmt.Sprintf("%.3f ms", v)
	case "events/s", "commits/s":
		return fmt.Sprintf("%s/s", human(v))
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "count":
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func percentile(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

// events returns n events whose data are distinct 256-byte slices of the
// random pool, so that compression does not flatter the disk figures.
func (r *runner) events(n int) []cairn.EventData {
	out := make([]cairn.EventData, n)
	segments := len(r.payload) / EventBytes
	for i := range out {
		off := r.cursor % segments * EventBytes
		r.cursor++
		out[i] = cairn.EventData{Type: "Measured", ContentType: cairn.ContentBinary, Data: r.payload[off : off+EventBytes : off+EventBytes]}
	}
	return out
}

// raw runs the baseline, when there is one.
func (r *runner) raw(ctx context.Context, writers, appends, perAppend int) ([]time.Duration, time.Duration, bool, error) {
	if r.cfg.Baseline == nil {
		return nil, 0, false, nil
	}
	lat, el, err := r.cfg.Baseline.Append(ctx, writers, appends, perAppend, EventBytes)
	r.rawRecords += writers * appends * perAppend
	return lat, el, err == nil, err
}

// memory returns the resident memory of the process and its peak, in MiB.
func memory() (rss, hwm float64, ok bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm, rss > 0
}

// note writes a line of progress, when progress is shown.
func (r *runner) note(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
	}
}

// commits reads the engine's group-commit counts ([cairn.GroupCommitter])
// before the timed part of a workload; the function it returns notes what
// that part committed: how many writes shared each group and each sync
// of the log, and how long a sync took. On an engine that does not count
// them it notes nothing.
func (r *runner) commits(label string) func() {
	before, err := r.s.CommitStats()
	if err != nil {
		return func() {}
	}
	return func() {
		after, err := r.s.CommitStats()
		if err != nil {
			return
		}
		r.note("%s", commitNote(label, before, after))
	}
}

// commitNote says what the counts grew by from before to after.
func commitNote(label string, before, after cairn.CommitStats) string {
	writes, groups := after.Writes-before.Writes, after.Groups-before.Groups
	syncs, took := after.Syncs-before.Syncs, after.SyncTime-before.SyncTime
	per := func(n uint64) float64 { return float64(writes) / float64(max(n, 1)) }
	note := fmt.Sprintf("%s commits: %d writes in %d groups (%.1f a group)", label, writes, groups, per(groups))
	if syncs == 0 {
		return note + ", no syncs"
	}
	return note + fmt.Sprintf(", %d syncs (%.1f writes a sync, %.3f ms a sync)", syncs, per(syncs), float64(took)/float64(syncs)/1e6)
}

// progress returns a function that reports done out of total, and one that
// ends the report.
func (r *runner) progress(label string, total int) (func(done int), func()) {
	w := r.cfg.Progress
	if w == nil || total <= 0 {
		return func(int) {}, func() {}
	}
	unit := "events"
	switch label {
	case "W1", "W2", "M1 in one process":
		unit = "appends"
	case "W4":
		unit = "commits"
	case "W1 streams":
		unit = "streams"
	}
	if strings.HasPrefix(label, "K") && !strings.HasPrefix(label, "K4") {
		unit = "events"
	}
	p := progress.New(w, label, progress.Options{Total: int64(total), Unit: unit, Terminal: r.cfg.Terminal})
	end := func() {
		if r.cfg.Terminal {
			p.Abort() // the report's line says it all
		} else {
			p.Done()
		}
	}
	return func(done int) {
		p.Reached(int64(done))
		if done >= total {
			end() // before the report's line is printed
		}
	}, end
}
