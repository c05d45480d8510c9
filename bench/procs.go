package bench

// M1: many application processes sharing one store.
//
//	M1  M1Processes processes, each with one writer appending one event at
//	    a time to a stream of its own with an exact expected version (W2's
//	    shape, spread over processes): events/s, beside the baseline from
//	    as many processes, and beside as many writers in this process
//
// The processes are started by Config.Worker (the cairn command runs
// itself, with a hidden subcommand that calls [Worker]). Each opens the
// store, makes a first append, and says it is ready; when all are, they
// are told to go together, and each times its appends. The figure is
// every process's appends over the time from the first start to the last
// end. The baseline's processes make the same appends as plain INSERTs,
// one connection each.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/cputime"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// workerSpec is what a worker process is told to do, as a JSON line on its
// standard input (so that the store's URL, which may hold a password, is
// not on a command line).
type workerSpec struct {
	// Plain selects the baseline: plain INSERTs into Table over one
	// connection to URL. Floor selects the ordering floor (pgbaseline.go)
	// in Schema over one connection to URL. Otherwise appends through
	// the store at URL.
	Plain   bool
	Floor   bool
	URL     string
	Table   string
	Schema  string
	Stream  string
	Appends int
}

// workerResult is what a worker process answers, as a JSON line.
type workerResult struct {
	Start, End time.Time
	Latencies  []time.Duration
	// CPU is the process's CPU time over its timed appends, -1 where the
	// system does not tell it.
	CPU time.Duration
	Err string
}

// Worker is the body of a worker process of M1. It reads its task from
// in, opens the store with open (or connects for the baseline), makes a
// first append, writes "ready" to out, waits for "go" on in, makes its
// appends, and writes its result to out.
func Worker(ctx context.Context, in io.Reader, out io.Writer, open func(ctx context.Context, url string) (*cairn.Store, error)) error {
	lines := bufio.NewScanner(in)
	if !lines.Scan() {
		return fmt.Errorf("bench worker: no task on standard input: %v", lines.Err())
	}
	var spec workerSpec
	if err := json.Unmarshal(lines.Bytes(), &spec); err != nil {
		return fmt.Errorf("bench worker: task: %w", err)
	}
	var appendOne func(i int) error
	switch {
	case spec.Floor:
		conn, err := pgx.Connect(ctx, withoutSchema(spec.URL))
		if err != nil {
			return fmt.Errorf("bench worker: %w", err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		data := make([]byte, EventBytes)
		_, _ = rand.Read(data)
		floor, err := floorAppender(ctx, conn, spec.Schema, spec.Stream, data)
		if err != nil {
			return fmt.Errorf("bench worker: %w", err)
		}
		appendOne = func(i int) error { return floor(int64(i) - 1) }
	case spec.Plain:
		conn, err := pgx.Connect(ctx, withoutSchema(spec.URL))
		if err != nil {
			return fmt.Errorf("bench worker: %w", err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		data := make([]byte, EventBytes)
		_, _ = rand.Read(data)
		sql := "INSERT INTO " + spec.Table + " (stream, version, id, type, data, created) VALUES ($1, $2, $3, 'Measured', $4, now())"
		appendOne = func(i int) error {
			_, err := conn.Exec(ctx, sql, spec.Stream, int64(i), uuid.Must(uuid.NewV7()), data)
			return err
		}
	default:
		s, err := open(ctx, spec.URL)
		if err != nil {
			return fmt.Errorf("bench worker: %w", err)
		}
		defer s.Close()
		data := make([]byte, EventBytes)
		_, _ = rand.Read(data)
		v := int64(-1)
		appendOne = func(int) error {
			exp := cairn.NoStream
			if v >= 0 {
				exp = cairn.Exact(v)
			}
			res, err := s.Append(ctx, spec.Stream, exp, cairn.EventData{Type: "Measured", ContentType: cairn.ContentBinary, Data: data})
			v = res.Version
			return err
		}
	}
	// The first append connects, prepares the statements and creates the
	// stream: it is not measured.
	if err := appendOne(0); err != nil {
		return fmt.Errorf("bench worker: %w", err)
	}
	if _, err := fmt.Fprintln(out, "ready"); err != nil {
		return err
	}
	if !lines.Scan() || lines.Text() != "go" {
		return fmt.Errorf("bench worker: no go on standard input: %v", lines.Err())
	}
	cpu0 := cputime.Process()
	res := workerResult{Start: time.Now(), Latencies: make([]time.Duration, 0, spec.Appends)}
	for i := range spec.Appends {
		t := time.Now()
		if err := appendOne(i + 1); err != nil {
			res.Err = err.Error()
			break
		}
		res.Latencies = append(res.Latencies, time.Since(t))
	}
	res.End = time.Now()
	if res.CPU = -1; cpu0 >= 0 {
		res.CPU = cputime.Process() - cpu0
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

// procsResult is what the worker processes of one run of processes
// measured.
type procsResult struct {
	lat []time.Duration // every append's latency
	el  time.Duration   // from the first start to the last end
	cpu time.Duration   // the processes' own CPU time over their appends, -1 when unknown
}

// processes runs n worker processes, process i with the task spec(i),
// started together, and returns what they measured.
func (r *runner) processes(ctx context.Context, label string, n int, spec func(i int) workerSpec) (procsResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type proc struct {
		cmd   *exec.Cmd
		in    io.WriteCloser
		lines *bufio.Scanner
	}
	procs := make([]proc, n)
	var errs []error
	defer func() {
		for _, p := range procs {
			if p.cmd != nil && p.cmd.Process != nil {
				_ = p.in.Close()
				// A worker that failed is killed; Wait reaps it.
				_ = p.cmd.Process.Kill()
				_ = p.cmd.Wait()
			}
		}
	}()
	for i := range procs {
		cmd := r.cfg.Worker(ctx)
		in, err := cmd.StdinPipe()
		if err != nil {
			return procsResult{}, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return procsResult{}, err
		}
		if err := cmd.Start(); err != nil {
			return procsResult{}, fmt.Errorf("%s: start worker process: %w", label, err)
		}
		procs[i] = proc{cmd: cmd, in: in, lines: bufio.NewScanner(out)}
		b, err := json.Marshal(spec(i))
		if err != nil {
			return procsResult{}, err
		}
		if _, err := fmt.Fprintf(in, "%s\n", b); err != nil {
			return procsResult{}, fmt.Errorf("%s: worker process %d: %w", label, i, err)
		}
	}
	for i, p := range procs {
		if !p.lines.Scan() || p.lines.Text() != "ready" {
			return procsResult{}, fmt.Errorf("%s: worker process %d did not get ready (%q, %v): its standard error says why", label, i, p.lines.Text(), p.lines.Err())
		}
	}
	for i, p := range procs {
		if _, err := fmt.Fprintln(p.in, "go"); err != nil {
			return procsResult{}, fmt.Errorf("%s: worker process %d: %w", label, i, err)
		}
	}
	var (
		mu         sync.Mutex
		out        = procsResult{}
		first, end time.Time
		wg         sync.WaitGroup
	)
	for i, p := range procs {
		wg.Go(func() {
			var res workerResult
			err := errors.New("no result")
			if p.lines.Scan() {
				err = json.Unmarshal(p.lines.Bytes(), &res)
			}
			if err == nil && res.Err != "" {
				err = errors.New(res.Err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: worker process %d: %w", label, i, err))
				return
			}
			out.lat = append(out.lat, res.Latencies...)
			if res.CPU < 0 || out.cpu < 0 {
				out.cpu = -1
			} else {
				out.cpu += res.CPU
			}
			if first.IsZero() || res.Start.Before(first) {
				first = res.Start
			}
			if res.End.After(end) {
				end = res.End
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return procsResult{}, err
	}
	out.el = end.Sub(first)
	for i := range procs {
		p := &procs[i]
		_ = p.in.Close()
		if err := p.cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("%s: worker process %d: %w", label, i, err))
		}
		p.cmd = nil
	}
	return out, errors.Join(errs...)
}

// m1 runs M1Processes writers in this process, then in as many processes,
// then the baseline in as many processes.
func (r *runner) m1(ctx context.Context) error {
	if r.cfg.Worker == nil || r.cfg.URL == "" {
		return errors.New("M1 needs a store that processes share (postgres://…) and a way to start them")
	}
	n, appends := r.cfg.M1Processes, r.cfg.M1Appends
	oneLat, oneEl, err := r.writers(ctx, "M1 in one process", "m1-one", n, appends, 0)
	if err != nil {
		return err
	}
	r.note("M1: %d processes, one writer each", n)
	procs, err := r.processes(ctx, "M1", n, func(i int) workerSpec {
		return workerSpec{URL: r.cfg.URL, Stream: fmt.Sprintf("%sm1-p%d", r.cfg.StreamPrefix, i), Appends: appends}
	})
	if err != nil {
		return err
	}
	total := float64(n * appends)
	thr := Result{Workload: "M1", Metric: fmt.Sprintf("%d processes: throughput", n), Unit: "events/s", Value: total / procs.el.Seconds()}
	p99 := Result{Workload: "M1", Metric: fmt.Sprintf("%d processes: append latency p99", n), Unit: "ms", Value: ms(percentile(procs.lat, 0.99))}
	// The processes' own CPU per append: what the application's side of
	// an append costs, beside a plain INSERT's client.
	cpu := Result{Workload: "M1", Metric: fmt.Sprintf("%d processes: their CPU/append", n), Unit: "us", Value: perAppend(procs.cpu, total)}
	var floor *procsResult
	if pb, ok := r.cfg.Baseline.(*PostgresBaseline); ok {
		r.note("M1: %d processes of plain INSERTs", n)
		raw, err := r.processes(ctx, "M1 baseline", n, func(i int) workerSpec {
			return workerSpec{Plain: true, URL: pb.url, Table: pb.table, Stream: fmt.Sprintf("m1-raw-%d", i), Appends: appends}
		})
		if err != nil {
			return err
		}
		thr.Raw, thr.HasRaw = total/raw.el.Seconds(), true
		p99.Raw, p99.HasRaw = ms(percentile(raw.lat, 0.99)), true
		if raw.cpu >= 0 {
			cpu.Raw, cpu.HasRaw = perAppend(raw.cpu, total), true
		}
		r.note("M1: %d processes through the ordering floor", n)
		if err := pb.floorTables(ctx); err != nil {
			return err
		}
		f, err := r.processes(ctx, "M1 floor", n, func(i int) workerSpec {
			return workerSpec{Floor: true, URL: pb.url, Schema: pb.schema, Stream: fmt.Sprintf("m1-floor-%d", i), Appends: appends}
		})
		if err != nil {
			return err
		}
		floor = &f
	}
	r.report(thr)
	r.report(p99)
	if procs.cpu >= 0 {
		r.report(cpu)
	}
	if floor != nil {
		// The floor beside the plain INSERTs, and cairn beside the floor:
		// the second column is the floor of this run, not the baseline.
		r.report(Result{Workload: "M1", Metric: fmt.Sprintf("%d processes: the ordering floor", n), Unit: "events/s",
			Value: total / floor.el.Seconds(), Raw: thr.Raw, HasRaw: thr.HasRaw})
		r.report(Result{Workload: "M1", Metric: fmt.Sprintf("%d processes vs the ordering floor", n), Unit: "events/s",
			Value: thr.Value, Raw: total / floor.el.Seconds(), HasRaw: true})
		if floor.cpu >= 0 {
			r.report(Result{Workload: "M1", Metric: fmt.Sprintf("%d processes: the floor's CPU/append", n), Unit: "us",
				Value: perAppend(floor.cpu, total), Raw: cpu.Raw, HasRaw: cpu.HasRaw})
		}
	}
	// The processes against the same writers in one process: the second
	// column is the in-process figure of this run, not the baseline.
	r.report(Result{Workload: "M1", Metric: fmt.Sprintf("%d processes vs %d writers in one", n, n), Unit: "events/s",
		Value: thr.Value, Raw: total / oneEl.Seconds(), HasRaw: true})
	if floor != nil {
		// What separate processes can reach at all beside one process,
		// whose writers share transactions: the floor against it.
		r.report(Result{Workload: "M1", Metric: fmt.Sprintf("%d processes: floor vs %d in one", n, n), Unit: "events/s",
			Value: total / floor.el.Seconds(), Raw: total / oneEl.Seconds(), HasRaw: true})
	}
	r.report(Result{Workload: "M1", Metric: fmt.Sprintf("%d writers in one process: p99", n), Unit: "ms", Value: ms(percentile(oneLat, 0.99))})
	return nil
}

// perAppend returns d over appends, in microseconds.
func perAppend(d time.Duration, appends float64) float64 {
	return float64(d) / float64(time.Microsecond) / appends
}

// writers runs W2's shape: writers goroutines, each making appends
// single-event appends to a stream of its own (named after name) with an
// exact expected version; with a limit, each makes no more once limit has
// passed since they started. It returns the latencies, one for each append
// made, and the elapsed time.
func (r *runner) writers(ctx context.Context, label, name string, writers, appends int, limit time.Duration) ([]time.Duration, time.Duration, error) {
	p, end := r.progress(label, writers*appends)
	defer end()
	var (
		done atomic.Int64
		lat  = make([][]time.Duration, writers)
		errs = make([]error, writers)
		wg   sync.WaitGroup
	)
	ev := r.events(1)
	noteCommits := r.commits(label)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("%s%s-%d", r.cfg.StreamPrefix, name, w)
			v := int64(-1)
			for range appends {
				if limit > 0 && time.Since(start) >= limit {
					return
				}
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
		return nil, 0, err
	}
	noteCommits()
	return slices.Concat(lat...), elapsed, nil
}
