package bench

// The workloads of dynamic consistency boundaries (tags, queries and
// append conditions):
//
//	D1  64 writers, each appending on a condition on its own tag, beside
//	    the same writers appending unconditionally (W2's shape) in the same
//	    run: events/s, p99, and their ratio
//	D2  16 writers contending on one tag: each reads the tag's events,
//	    appends on the condition that none came since, and on a conflict
//	    reads again: commits/s, conflicts (never lost)
//	D3  read the 1,000 events of one tag out of D3Events: latency p50, p99
//	    (on an engine without an index, a scan of the log, read 3 times)

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn"
)

// d1 runs W2's shape twice, unconditionally and with a condition per
// writer on a tag of its own, and reports both and their ratio. At its
// default size each run stops once Config.Time has passed.
func (r *runner) d1(ctx context.Context) error {
	writers, appends := r.cfg.D1Writers, r.cfg.D1Appends
	run := func(label string, conditional bool) (float64, []time.Duration, error) {
		limit := r.cfg.d1Limit
		p, end := r.progress(label, writers*appends)
		defer end()
		var done atomic.Int64
		lat := make([][]time.Duration, writers)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		evs := r.events(writers)
		start := time.Now()
		for w := range writers {
			wg.Go(func() {
				stream := fmt.Sprintf("%s%s-%d", r.cfg.StreamPrefix, label, w)
				tag := stream
				ev := []cairn.EventData{evs[w]}
				ev[0].Tags = []string{tag}
				cond := cairn.AppendCondition{FailIfEventsMatch: cairn.Query{Items: []cairn.QueryItem{{Tags: []string{tag}}}}}
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
					var res cairn.AppendResult
					var err error
					if conditional {
						res, err = r.s.AppendIf(ctx, stream, exp, cond, ev...)
					} else {
						res, err = r.s.Append(ctx, stream, exp, ev...)
					}
					if err != nil {
						errs[w] = err
						return
					}
					lat[w] = append(lat[w], time.Since(t))
					v = res.Version
					// The next append holds if nothing with the tag
					// follows this one.
					cond.After = &res.Position
					p(int(done.Add(1)))
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		if err := errors.Join(errs...); err != nil {
			return 0, nil, err
		}
		return float64(done.Load()) / elapsed.Seconds(), slices.Concat(lat...), nil
	}
	plain, plainLat, err := run("d1-plain", false)
	if err != nil {
		return err
	}
	cond, condLat, err := run("d1-cond", true)
	if errors.Is(err, cairn.ErrNotSupported) {
		r.report(Result{Workload: "D1", Metric: "the engine checks no conditions", Unit: "count", Value: 0})
		return nil
	}
	if err != nil {
		return err
	}
	r.report(Result{Workload: "D1", Metric: fmt.Sprintf("%d writers, unconditional", writers), Unit: "events/s", Value: plain})
	r.report(Result{Workload: "D1", Metric: fmt.Sprintf("%d writers, conditional", writers), Unit: "events/s", Value: cond, Raw: plain, HasRaw: true})
	r.report(Result{Workload: "D1", Metric: "p99, unconditional", Unit: "ms", Value: ms(percentile(plainLat, 0.99))})
	r.report(Result{Workload: "D1", Metric: "p99, conditional", Unit: "ms", Value: ms(percentile(condLat, 0.99)), Raw: ms(percentile(plainLat, 0.99)), HasRaw: true})
	return nil
}

// d2: writers contending on one tag. Each reads the tag's events (the head
// before them is its condition's After), appends on the condition that no
// event with the tag came since, and on a conflict reads again. Every
// conflict must be reported and no commit lost: the tag ends with exactly
// as many events as commits.
func (r *runner) d2(ctx context.Context) error {
	writers, commits := r.cfg.D2Writers, r.cfg.D2Commits
	p, end := r.progress("D2", commits)
	defer end()
	seat := r.cfg.StreamPrefix + "d2-seat"
	q := cairn.Query{Items: []cairn.QueryItem{{Tags: []string{seat}}}}
	var ok, conflicts atomic.Int64
	errs := make([]error, writers)
	var wg sync.WaitGroup
	evs := r.events(writers)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			ev := []cairn.EventData{evs[w]}
			ev[0].Tags = []string{seat}
			stream := fmt.Sprintf("%sd2-%d", r.cfg.StreamPrefix, w)
			for ok.Load() < int64(commits) {
				// The decision reads only the last event of the tag.
				_, head, err := r.s.Query(ctx, q, 0, cairn.Forward)
				if err == nil {
					_, err = r.s.ReadQuery(ctx, q, cairn.LogEnd, 1, cairn.Backward)
				}
				if err == nil {
					_, err = r.s.AppendIf(ctx, stream, cairn.Any, cairn.AppendCondition{FailIfEventsMatch: q, After: head}, ev...)
				}
				switch {
				case errors.Is(err, cairn.ErrConditionFailed):
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
	if err := errors.Join(errs...); errors.Is(err, cairn.ErrNotSupported) {
		r.report(Result{Workload: "D2", Metric: "the engine checks no conditions", Unit: "count", Value: 0})
		return nil
	} else if err != nil {
		return err
	}
	n := 0
	events, _, err := r.s.Query(ctx, q, 0, cairn.Forward)
	if err != nil {
		return err
	}
	for _, err := range events {
		if err != nil {
			return err
		}
		n++
	}
	if int64(n) != ok.Load() {
		return fmt.Errorf("%d commits acknowledged but the tag has %d events: commits lost or doubled", ok.Load(), n)
	}
	r.report(Result{Workload: "D2", Metric: fmt.Sprintf("%d writers, one tag: commits", writers), Unit: "commits/s", Value: float64(ok.Load()) / elapsed.Seconds()})
	r.report(Result{Workload: "D2", Metric: "conflicts reported (none lost)", Unit: "count", Value: float64(conflicts.Load())})
	return nil
}

// d3: a log of D3Events events, 1,000 of them (spread evenly) tagged with
// one tag; the read of those 1,000 by query, again and again.
func (r *runner) d3(ctx context.Context) error {
	const matches = 1000
	n := max(r.cfg.D3Events, matches)
	p, end := r.progress("D3 fill", n)
	defer end()
	chunk := n / matches // events per append, the last one tagged
	ev := r.events(min(chunk, 1000))
	tag := fmt.Sprintf("d3-%d", time.Now().UnixNano())
	written := 0
	for i := range matches {
		left := chunk
		for left > 0 {
			k := min(left, len(ev))
			batch := slices.Clone(ev[:k])
			if left == k {
				batch[k-1].Tags = []string{tag}
			}
			if _, err := r.s.Append(ctx, fmt.Sprint(r.cfg.StreamPrefix, "d3-", i%1000), cairn.Any, batch...); err != nil {
				return err
			}
			left -= k
			written += k
			p(written)
		}
	}
	q := cairn.Query{Items: []cairn.QueryItem{{Tags: []string{tag}}}}
	reads, how := r.cfg.D3Reads, "by tag"
	if _, ok := r.s.Backend().(cairn.Querier); !ok {
		// Without an index every read scans the log: a few suffice.
		reads, how = min(reads, 3), "by a scan of the log (no index)"
	}
	lat := make([]time.Duration, 0, reads)
	for range reads {
		t := time.Now()
		got, err := r.s.ReadQuery(ctx, q, 0, matches, cairn.Forward)
		if err != nil {
			return err
		}
		lat = append(lat, time.Since(t))
		if len(got) != matches {
			return fmt.Errorf("the query read %d events, want %d", len(got), matches)
		}
	}
	label := fmt.Sprintf("read 1k of %s %s", human(float64(written)), how)
	r.report(Result{Workload: "D3", Metric: label + " p50", Unit: "ms", Value: ms(percentile(lat, 0.5))})
	r.report(Result{Workload: "D3", Metric: label + " p99", Unit: "ms", Value: ms(percentile(lat, 0.99))})
	return nil
}
