package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn"
)

// W1: one writer, one event per append, round-robin over 10k streams, each
// append with the stream's exact expected version.
//
// The streams the timed appends reach are created first, untimed, so that
// every timed append goes to a stream that exists, as the workload says:
// the first event of a stream writes more than the events after it (the
// lists of streams, on engines that keep them), and with fewer appends
// than streams each would be a first.
func (r *runner) w1(ctx context.Context) error {
	n := r.cfg.W1Appends
	versions, err := r.w1Streams(ctx, min(n, w1Streams))
	if err != nil {
		return err
	}
	p, end := r.progress("W1", n)
	defer end()
	lat := make([]time.Duration, 0, n)
	ev := r.events(1)
	noteCommits := r.commits("W1")
	for i := range n {
		st := i % w1Streams
		t := time.Now()
		res, err := r.s.Append(ctx, w1Stream(r.cfg.StreamPrefix, st), cairn.Exact(versions[st]), ev...)
		if err != nil {
			return err
		}
		lat = append(lat, time.Since(t))
		versions[st] = res.Version
		p(i + 1)
	}
	noteCommits()
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
	if pb, isPG := r.cfg.Baseline.(*PostgresBaseline); isPG {
		// The same appends through the ordering floor: the floor beside
		// the plain INSERTs, and cairn beside the floor (the second
		// column is the floor of this run, not the baseline).
		r.note("W1: the ordering floor")
		floorLat, err := pb.loneFloor(ctx, min(n, w1Streams), n, EventBytes)
		if err != nil {
			return err
		}
		floor := ms(percentile(floorLat, 0.5))
		r.report(Result{Workload: "W1", Metric: "p50: the ordering floor", Unit: "ms",
			Value: floor, Raw: ms(percentile(rawLat, 0.5)), HasRaw: true})
		r.report(Result{Workload: "W1", Metric: "p50 vs the ordering floor", Unit: "ms",
			Value: ms(percentile(lat, 0.5)), Raw: floor, HasRaw: true})
	}
	return nil
}

// w1Streams is the number of streams W1 appends to in turn.
const w1Streams = 10_000

func w1Stream(prefix string, i int) string { return prefix + "w1-" + strconv.Itoa(i) }

// w1Streams creates W1's first n streams, each with one event, by 16
// writers at once, and returns the streams' versions.
func (r *runner) w1Streams(ctx context.Context, n int) ([]int64, error) {
	p, end := r.progress("W1 streams", n)
	defer end()
	versions := make([]int64, w1Streams)
	var (
		next, done atomic.Int64
		errs       [16]error
		wg         sync.WaitGroup
	)
	ev := r.events(1)
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				res, err := r.s.Append(ctx, w1Stream(r.cfg.StreamPrefix, i), cairn.NoStream, ev...)
				if err != nil {
					errs[w] = err
					return
				}
				versions[i] = res.Version
				p(int(done.Add(1)))
			}
		})
	}
	wg.Wait()
	return versions, errors.Join(errs[:]...)
}

// W2: many writers, one event per append, each on its own streams with an
// exact expected version. The raw baseline makes as many appends as the
// store made, by as many writers.
func (r *runner) w2(ctx context.Context) error {
	writers := r.cfg.W2Writers
	all, elapsed, err := r.writers(ctx, "W2", "w2", writers, r.cfg.W2Appends, r.cfg.w2Limit)
	if err != nil {
		return err
	}
	rawAppends := (len(all) + writers - 1) / writers
	rawLat, rawEl, ok, err := r.raw(ctx, writers, rawAppends, 1)
	if err != nil {
		return err
	}
	thr := Result{Workload: "W2", Metric: fmt.Sprintf("%d writers: throughput", writers), Unit: "events/s", Value: float64(len(all)) / elapsed.Seconds()}
	p99 := Result{Workload: "W2", Metric: fmt.Sprintf("%d writers: append latency p99", writers), Unit: "ms", Value: ms(percentile(all, 0.99))}
	if ok {
		thr.Raw, thr.HasRaw = float64(writers*rawAppends)/rawEl.Seconds(), true
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
	p, end := r.progress("W3", appends*per)
	defer end()
	ev := r.events(per)
	noteCommits := r.commits("W3")
	start := time.Now()
	for i := range appends {
		if _, err := r.s.Append(ctx, r.cfg.StreamPrefix+"w3", cairn.Any, ev...); err != nil {
			return err
		}
		p((i + 1) * per)
	}
	elapsed := time.Since(start)
	noteCommits()
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
	p, end := r.progress("W4", commits)
	defer end()
	stream := r.cfg.StreamPrefix + "w4"
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
	p, end := r.progress("W5 read", total)
	defer end()
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
	end()
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

	stream := r.cfg.StreamPrefix + "w5-aggregate"
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
	p, end := r.progress("fill", n)
	defer end()
	ev := r.events(1000)
	for i := 0; have < n; i++ {
		k := min(1000, n-have)
		if _, err := r.s.Append(ctx, r.cfg.StreamPrefix+"fill-"+strconv.Itoa(i%1000), cairn.Any, ev[:k]...); err != nil {
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
