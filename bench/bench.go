// Package bench measures a cairn store with the workloads W1–W6 and prints
// each figure beside a raw baseline measured in the same run, so that the
// result reads as a ratio on any machine:
//
//	W1  1 writer, 1 event per append, over 10k streams: append latency
//	W2  64 writers, 1 event per append, exact expected version: events/s, p99
//	W3  1 writer, appends of 1000 events: events/s
//	W4  16 writers contending on one stream: commits/s, conflicts (never lost)
//	W5  read the whole log from position 0: events/s; rehydrate a 1k-event
//	    stream: latency
//	W6  bytes on disk per event, resident memory, time to reopen
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn"
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
	// Workloads selects workloads by name ("W1" … "W6"); empty runs all.
	Workloads []string

	W1Appends      int // W1 appends; 0 means 2,000
	W2Writers      int // W2 writers; 0 means 64
	W2Appends      int // W2 appends per writer; 0 means 200
	W3Events       int // W3 events; 0 means 500,000
	W4Writers      int // W4 writers; 0 means 16
	W4Commits      int // W4 successful commits; 0 means 2,000
	W5Events       int // events in the log before W5 reads it; 0 means 1,000,000
	W5Rehydrations int // W5 reads of the 1k-event stream; 0 means 300

	// Out receives the report; nil means os.Stdout.
	Out io.Writer
	// Progress receives progress: a bar redrawn in place when Terminal is
	// set, plain lines otherwise. Nil shows none.
	Progress io.Writer
	Terminal bool
}

func (c *Config) defaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.W1Appends, 2000)
	def(&c.W2Writers, 64)
	def(&c.W2Appends, 200)
	def(&c.W3Events, 500_000)
	def(&c.W4Writers, 16)
	def(&c.W4Commits, 2000)
	def(&c.W5Events, 1_000_000)
	def(&c.W5Rehydrations, 300)
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
}

// Run runs the selected workloads and prints a line per figure to
// cfg.Out as it is measured. It returns every figure.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	cfg.defaults()
	if cfg.Open == nil {
		return nil, errors.New("bench: Config.Open is required")
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
	fmt.Fprintf(cfg.Out, "%-4s %-36s %16s %16s %8s\n", "", "figure", "cairn", base, "ratio")
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"W1", r.w1}, {"W2", r.w2}, {"W3", r.w3}, {"W4", r.w4}, {"W5", r.w5}, {"W6", r.w6},
	}
	for _, st := range steps {
		if len(cfg.Workloads) > 0 && !slices.ContainsFunc(cfg.Workloads, func(w string) bool { return strings.EqualFold(w, st.name) }) {
			continue
		}
		if err := st.fn(ctx); err != nil {
			return r.results, fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return r.results, nil
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

// W1: one writer, one event per append, round-robin over 10k streams.
func (r *runner) w1(ctx context.Context) error {
	n := r.cfg.W1Appends
	p := r.progress("W1", n)
	versions := make([]int64, 10_000)
	for i := range versions {
		versions[i] = -1
	}
	lat := make([]time.Duration, 0, n)
	ev := r.events(1)
	for i := range n {
		st := i % len(versions)
		exp := cairn.NoStream
		if versions[st] >= 0 {
			exp = cairn.Exact(versions[st])
		}
		t := time.Now()
		res, err := r.s.Append(ctx, "w1-"+strconv.Itoa(st), exp, ev...)
		if err != nil {
			return err
		}
		lat = append(lat, time.Since(t))
		versions[st] = res.Version
		p(i + 1)
	}
	rawLat, _, ok, err := r.raw(ctx, 1, n, 1)
	if err != nil {
		return err
	}
	for _, q := range []struct {
		name string
		p    float64
	}{{"append latency p50", 0.5}, {"append latency p99", 0.99}} {
		res := Result{Workload: "W1", Metric: q.name, Unit: "ms", Value: ms(percentile(lat, q.p))}
		if ok {
			res.Raw, res.HasRaw = ms(percentile(rawLat, q.p)), true
		}
		r.report(res)
	}
	return nil
}

// W2: many writers, one event per append, each on its own streams with an
// exact expected version.
func (r *runner) w2(ctx context.Context) error {
	writers, appends := r.cfg.W2Writers, r.cfg.W2Appends
	p := r.progress("W2", writers*appends)
	var done atomic.Int64
	lat := make([][]time.Duration, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	ev := r.events(1)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("w2-%d", w)
			v := int64(-1)
			for range appends {
				exp := cairn.NoStream
				if v >= 0 {
					exp = cairn.Exact(v)
				}
				t := time.Now()
				res, err := r.s.Append(ctx, stream, exp, ev...)
				if err != nil {
					errs[w] = err
					return
				}
				lat[w] = append(lat[w], time.Since(t))
				v = res.Version
				p(int(done.Add(1)))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	all := slices.Concat(lat...)
	rawLat, rawEl, ok, err := r.raw(ctx, writers, appends, 1)
	if err != nil {
		return err
	}
	total := float64(writers * appends)
	thr := Result{Workload: "W2", Metric: fmt.Sprintf("%d writers: throughput", writers), Unit: "events/s", Value: total / elapsed.Seconds()}
	p99 := Result{Workload: "W2", Metric: fmt.Sprintf("%d writers: append latency p99", writers), Unit: "ms", Value: ms(percentile(all, 0.99))}
	if ok {
		thr.Raw, thr.HasRaw = total/rawEl.Seconds(), true
		p99.Raw, p99.HasRaw = ms(percentile(rawLat, 0.99)), true
	}
	r.report(thr)
	r.report(p99)
	return nil
}

// W3: one writer, appends of 1000 events.
func (r *runner) w3(ctx context.Context) error {
	const per = 1000
	appends := max(1, r.cfg.W3Events/per)
	p := r.progress("W3", appends*per)
	ev := r.events(per)
	start := time.Now()
	for i := range appends {
		if _, err := r.s.Append(ctx, "w3", cairn.Any, ev...); err != nil {
			return err
		}
		p((i + 1) * per)
	}
	elapsed := time.Since(start)
	_, rawEl, ok, err := r.raw(ctx, 1, appends, per)
	if err != nil {
		return err
	}
	total := float64(appends * per)
	res := Result{Workload: "W3", Metric: "appends of 1000: throughput", Unit: "events/s", Value: total / elapsed.Seconds()}
	if ok {
		res.Raw, res.HasRaw = total/rawEl.Seconds(), true
	}
	r.report(res)
	return nil
}

// W4: writers contending on one stream. Each reads the version, appends
// with it as the exact expectation, and on a conflict reads again. Every
// conflict must be reported, and no commit lost: the stream ends at
// exactly the number of commits.
func (r *runner) w4(ctx context.Context) error {
	writers, commits := r.cfg.W4Writers, r.cfg.W4Commits
	p := r.progress("W4", commits)
	const stream = "w4"
	if _, err := r.s.Append(ctx, stream, cairn.NoStream, r.events(1)...); err != nil {
		return err
	}
	var ok, conflicts atomic.Int64
	errs := make([]error, writers)
	var wg sync.WaitGroup
	ev := r.events(1)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for ok.Load() < int64(commits) {
				v, err := r.s.StreamVersion(ctx, stream)
				if err != nil {
					errs[w] = err
					return
				}
				_, err = r.s.Append(ctx, stream, cairn.Exact(v), ev...)
				switch {
				case errors.Is(err, cairn.ErrWrongExpectedVersion):
					conflicts.Add(1)
				case err != nil:
					errs[w] = err
					return
				default:
					p(int(ok.Add(1)))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	v, err := r.s.StreamVersion(ctx, stream)
	if err != nil {
		return err
	}
	if v != ok.Load() {
		return fmt.Errorf("%d commits acknowledged but the stream is at version %d: commits lost", ok.Load(), v)
	}
	r.report(Result{Workload: "W4", Metric: fmt.Sprintf("%d writers, one stream: commits", writers), Unit: "commits/s", Value: float64(ok.Load()) / elapsed.Seconds()})
	r.report(Result{Workload: "W4", Metric: "conflicts reported (none lost)", Unit: "count", Value: float64(conflicts.Load())})
	return nil
}

// W5: fill the log to W5Events, read it all from position 0, then rehydrate
// a 1000-event stream again and again.
func (r *runner) w5(ctx context.Context) error {
	if err := r.fill(ctx, r.cfg.W5Events); err != nil {
		return err
	}
	head, _ := r.s.Head()
	total := int(head) + 1
	p := r.progress("W5 read", total)
	start := time.Now()
	n, bytes := 0, 0
	for e, err := range r.s.All(ctx, 0, cairn.Forward) {
		if err != nil {
			return err
		}
		n++
		bytes += len(e.Data)
		if n%65536 == 0 {
			p(n)
		}
	}
	p(n)
	elapsed := time.Since(start)
	res := Result{Workload: "W5", Metric: fmt.Sprintf("read all (%s events)", human(float64(n))), Unit: "events/s", Value: float64(n) / elapsed.Seconds()}
	if br, ok := r.cfg.Baseline.(BaselineReader); ok {
		// The baseline reads back as many records as the log holds.
		if missing := n - r.rawRecords; missing >= 1000 {
			if _, _, _, err := r.raw(ctx, 1, missing/1000, 1000); err != nil {
				return err
			}
		}
		rn, rel, err := br.ReadAll(ctx)
		if err != nil {
			return err
		}
		res.Raw, res.HasRaw = float64(rn)/rel.Seconds(), true
	}
	r.report(res)

	const stream = "w5-aggregate"
	if _, err := r.s.Append(ctx, stream, cairn.NoStream, r.events(1000)...); err != nil {
		return err
	}
	lat := make([]time.Duration, 0, r.cfg.W5Rehydrations)
	for range r.cfg.W5Rehydrations {
		t := time.Now()
		k := 0
		for _, err := range r.s.Stream(ctx, stream, 0, cairn.Forward) {
			if err != nil {
				return err
			}
			k++
		}
		if k != 1000 {
			return fmt.Errorf("rehydration read %d events, want 1000", k)
		}
		lat = append(lat, time.Since(t))
	}
	r.report(Result{Workload: "W5", Metric: "rehydrate 1k-event stream p50", Unit: "ms", Value: ms(percentile(lat, 0.5))})
	r.report(Result{Workload: "W5", Metric: "rehydrate 1k-event stream p99", Unit: "ms", Value: ms(percentile(lat, 0.99))})
	return nil
}

// fill appends events in appends of 1000 (over 1000 streams) until the log
// holds n events.
func (r *runner) fill(ctx context.Context, n int) error {
	head, ok := r.s.Head()
	have := 0
	if ok {
		have = int(head) + 1
	}
	if have >= n {
		return nil
	}
	p := r.progress("fill", n)
	ev := r.events(1000)
	for i := 0; have < n; i++ {
		k := min(1000, n-have)
		if _, err := r.s.Append(ctx, "fill-"+strconv.Itoa(i%1000), cairn.Any, ev[:k]...); err != nil {
			return err
		}
		have += k
		p(have)
	}
	return nil
}

// W6: space on disk per event, resident memory, and the time to reopen.
func (r *runner) w6(ctx context.Context) error {
	head, ok := r.s.Head()
	if !ok {
		return errors.New("the store is empty: run W5 or another workload first")
	}
	n := float64(head + 1)
	// Engines that keep nothing on disk report 0 bytes: no figure then.
	if b, err := r.s.DiskBytes(ctx); err == nil && b > 0 {
		r.report(Result{Workload: "W6", Metric: fmt.Sprintf("disk bytes per event (%s events)", human(n)), Unit: "bytes", Value: float64(b) / n, Raw: EventBytes, HasRaw: true})
	} else if !errors.Is(err, cairn.ErrNotSupported) {
		return err
	}
	if rss, hwm, ok := memory(); ok {
		r.report(Result{Workload: "W6", Metric: "resident memory now", Unit: "MiB", Value: rss})
		r.report(Result{Workload: "W6", Metric: "resident memory peak", Unit: "MiB", Value: hwm})
	}
	if r.cfg.Reopen == nil {
		return nil
	}
	if err := r.s.Close(); err != nil {
		return err
	}
	start := time.Now()
	s, err := r.cfg.Reopen(ctx)
	if err != nil {
		return err
	}
	r.s = s
	// The first read after opening is part of being ready.
	if _, err := s.ReadAll(ctx, 0, 1, cairn.Forward); err != nil {
		return err
	}
	r.report(Result{Workload: "W6", Metric: "reopen", Unit: "ms", Value: ms(time.Since(start))})
	return nil
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

// progress returns a function that reports done out of total.
func (r *runner) progress(label string, total int) func(done int) {
	w := r.cfg.Progress
	if w == nil || total <= 0 {
		return func(int) {}
	}
	var mu sync.Mutex
	last := -1
	return func(done int) {
		mu.Lock()
		defer mu.Unlock()
		if r.cfg.Terminal {
			pct := done * 100 / total
			if pct == last && done != total {
				return
			}
			last = pct
			const width = 30
			bar := strings.Repeat("#", pct*width/100) + strings.Repeat(" ", width-pct*width/100)
			fmt.Fprintf(w, "\r%-8s [%s] %3d%% %d/%d", label, bar, pct, done, total)
			if done >= total {
				fmt.Fprint(w, "\r"+strings.Repeat(" ", 80)+"\r")
			}
			return
		}
		step := done * 10 / total
		if step == last {
			return
		}
		last = step
		fmt.Fprintf(w, "%s: %d/%d (%d%%)\n", label, done, total, done*100/total)
	}
}
