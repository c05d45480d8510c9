package bench

// The wire workloads that read: K4 (ReadAll and rehydration) and K5 (a
// subscription to $all, catching up, then live). See wire.go.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/subscription"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// fillBoth fills the server's log and the run's own to at least n events,
// in appends of 1000, and returns the server's head position.
func (r *runner) fillBoth(ctx context.Context, c *kurrentdb.Client, n int) (uint64, error) {
	if err := r.fill(ctx, n); err != nil {
		return 0, err
	}
	head, err := wireHead(ctx, c)
	if err != nil {
		return 0, err
	}
	have := int(head) + 1
	if have >= n {
		return head, nil
	}
	p, end := r.progress("fill wire", n)
	defer end()
	data := r.data(1000)
	a := clientAppender{c}
	versions := map[string]int64{}
	for i := 0; have < n; i++ {
		k := min(1000, n-have)
		stream := r.cfg.StreamPrefix + "kfill-" + strconv.Itoa(i%100)
		v, ok := versions[stream]
		if !ok {
			v = -1
		}
		nv, err := a.append(ctx, stream, v, data[:k])
		if err != nil {
			return 0, err
		}
		versions[stream] = nv
		have += k
		p(have)
	}
	return wireHead(ctx, c)
}

// wireHead returns the position of the last event of the server's log.
func wireHead(ctx context.Context, c *kurrentdb.Client) (uint64, error) {
	rs, err := c.ReadAll(ctx, kurrentdb.ReadAllOptions{From: kurrentdb.End{}, Direction: kurrentdb.Backwards}, 1)
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	e, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return e.OriginalEvent().Position.Commit, nil
}

// k4: read the whole log, and rehydrate a 1000-event stream.
func (r *runner) k4(ctx context.Context) error {
	if r.cfg.Wire.Generated {
		return r.skipGenerated("K4")
	}
	r.wireHeader()
	c, err := r.cfg.Wire.Client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := r.fillBoth(ctx, c, r.cfg.KEvents); err != nil {
		return err
	}
	cpu := r.cpuMarks()
	start := time.Now()
	rs, err := c.ReadAll(ctx, kurrentdb.ReadAllOptions{From: kurrentdb.Start{}, Direction: kurrentdb.Forwards}, math.MaxUint64)
	if err != nil {
		return err
	}
	wn := 0
	for {
		_, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rs.Close()
			return err
		}
		wn++
	}
	rs.Close()
	wel := time.Since(start)
	cpu.wireDone()
	start = time.Now()
	ln := 0
	for _, err := range r.s.All(ctx, 0, cairn.Forward) {
		if err != nil {
			return err
		}
		ln++
	}
	lel := time.Since(start)
	cpu.localDone()
	metric := fmt.Sprintf("read all (%s events)", human(float64(wn)))
	r.report(Result{Workload: "K4", Metric: metric, Unit: "events/s", Value: float64(wn) / wel.Seconds(), Raw: float64(ln) / lel.Seconds(), HasRaw: true})
	cpu.report("K4", "read all", wn, ln)

	stream := r.cfg.StreamPrefix + "k4-aggregate"
	data := r.data(1000)
	if _, err := (clientAppender{c}).append(ctx, stream, -1, data); err != nil {
		return err
	}
	if _, err := (storeAppender{r.s}).append(ctx, stream, -1, data); err != nil {
		return err
	}
	var wlat, llat []time.Duration
	for range r.cfg.KReads {
		t := time.Now()
		rs, err := c.ReadStream(ctx, stream, kurrentdb.ReadStreamOptions{From: kurrentdb.Start{}, Direction: kurrentdb.Forwards}, 1000)
		if err != nil {
			return err
		}
		k := 0
		for {
			_, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return err
			}
			k++
		}
		rs.Close()
		if k != 1000 {
			return fmt.Errorf("rehydration over the wire read %d events, want 1000", k)
		}
		wlat = append(wlat, time.Since(t))
		t = time.Now()
		k = 0
		for _, err := range r.s.Stream(ctx, stream, 0, cairn.Forward) {
			if err != nil {
				return err
			}
			k++
		}
		if k != 1000 {
			return fmt.Errorf("rehydration in process read %d events, want 1000", k)
		}
		llat = append(llat, time.Since(t))
	}
	r.report(Result{Workload: "K4", Metric: "rehydrate 1k-event stream p50", Unit: "ms", Value: ms(percentile(wlat, 0.5)), Raw: ms(percentile(llat, 0.5)), HasRaw: true})
	return nil
}

// k5: a subscription to $all, catching up from the start, then live.
func (r *runner) k5(ctx context.Context) error {
	if r.cfg.Wire.Generated {
		return r.skipGenerated("K5")
	}
	r.wireHeader()
	c, err := r.cfg.Wire.Client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	head, err := r.fillBoth(ctx, c, r.cfg.KEvents)
	if err != nil {
		return err
	}

	// Catch-up: from the start to the head as it was.
	cpu := r.cpuMarks()
	start := time.Now()
	sub, err := c.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{From: kurrentdb.Start{}})
	if err != nil {
		return err
	}
	wn := 0
	for {
		ev := sub.Recv()
		if ev.SubscriptionDropped != nil {
			sub.Close()
			return fmt.Errorf("subscription dropped: %w", ev.SubscriptionDropped.Error)
		}
		if ev.EventAppeared != nil {
			wn++
			if ev.EventAppeared.OriginalEvent().Position.Commit >= head {
				break
			}
		}
	}
	wel := time.Since(start)
	sub.Close()
	cpu.wireDone()
	lhead, _ := r.s.Head()
	start = time.Now()
	lsub, err := subscription.All(ctx, r.s, subscription.Start, subscription.Options{})
	if err != nil {
		return err
	}
	ln := 0
	for {
		m, err := lsub.Next(ctx)
		if err != nil {
			lsub.Close()
			return err
		}
		if m.Kind == subscription.KindEvent {
			ln++
			if m.Event.Position >= lhead {
				break
			}
		}
	}
	lel := time.Since(start)
	lsub.Close()
	cpu.localDone()
	r.report(Result{Workload: "K5", Metric: fmt.Sprintf("subscription catch-up (%s events)", human(float64(wn))), Unit: "events/s",
		Value: float64(wn) / wel.Seconds(), Raw: float64(ln) / lel.Seconds(), HasRaw: true})
	cpu.report("K5", "catch-up", wn, ln)

	// Live: the delay from the start of an append to the delivery of its
	// event, which carries the time the append started. Each subscription
	// starts after the head of its log, so that it misses nothing.
	a, closeConn, err := r.wireAppender(ctx, r.cfg.Wire)
	if err != nil {
		return err
	}
	defer closeConn()
	wdel, wthr, err := r.live(ctx, "K5 wire", "k5-wire", a, func(ctx context.Context) (func() ([]byte, string, bool, error), func(), error) {
		head, err := wireHead(ctx, c)
		if err != nil {
			return nil, nil, err
		}
		sub, err := c.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{From: kurrentdb.Position{Commit: head, Prepare: head}})
		if err != nil {
			return nil, nil, err
		}
		next := func() ([]byte, string, bool, error) {
			ev := sub.Recv()
			if ev.SubscriptionDropped != nil {
				return nil, "", false, fmt.Errorf("subscription dropped: %w", ev.SubscriptionDropped.Error)
			}
			if ev.EventAppeared == nil {
				return nil, "", false, nil
			}
			e := ev.EventAppeared.OriginalEvent()
			return e.Data, e.StreamID, true, nil
		}
		return next, func() { sub.Close() }, nil
	})
	if err != nil {
		return fmt.Errorf("over the wire: %w", err)
	}
	ldel, lthr, err := r.live(ctx, "K5 in process", "k5-local", storeAppender{r.s}, func(ctx context.Context) (func() ([]byte, string, bool, error), func(), error) {
		sub, err := subscription.All(ctx, r.s, subscription.End, subscription.Options{})
		if err != nil {
			return nil, nil, err
		}
		next := func() ([]byte, string, bool, error) {
			m, err := sub.Next(ctx)
			if err != nil || m.Kind != subscription.KindEvent {
				return nil, "", false, err
			}
			return m.Event.Data, m.Event.StreamID, true, nil
		}
		return next, func() { sub.Close() }, nil
	})
	if err != nil {
		return fmt.Errorf("in process: %w", err)
	}
	r.report(Result{Workload: "K5", Metric: "live delivery: events/s", Unit: "events/s", Value: wthr, Raw: lthr, HasRaw: true})
	r.report(Result{Workload: "K5", Metric: "live delivery: delay p50", Unit: "ms", Value: ms(percentile(wdel, 0.5)), Raw: ms(percentile(ldel, 0.5)), HasRaw: true})
	r.report(Result{Workload: "K5", Metric: "live delivery: delay p99", Unit: "ms", Value: ms(percentile(wdel, 0.99)), Raw: ms(percentile(ldel, 0.99)), HasRaw: true})
	return nil
}

// subscriber opens a subscription that delivers every event committed
// after it returns, until ctx is done; next returns the data and the
// stream of the next message, and false for a message without an event.
type subscriber func(ctx context.Context) (next func() ([]byte, string, bool, error), stop func(), err error)

// live subscribes, then runs K1's appenders through a, each event carrying
// the time its append started, until the subscription has delivered all
// their events. It returns the delays from the start of each append to
// the delivery of its event, and the events delivered per second.
func (r *runner) live(ctx context.Context, label, streams string, a appender, subscribe subscriber) ([]time.Duration, float64, error) {
	appenders, appends := r.cfg.KAppenders, r.cfg.k5Appends
	total := appenders * appends
	prefix := r.cfg.StreamPrefix + streams + "-"
	base := r.data(1)[0]
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next, stop, err := subscribe(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer stop()
	errs := make([]error, appenders)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range appenders {
		wg.Go(func() {
			stream := prefix + strconv.Itoa(w)
			v := int64(-1)
			for range appends {
				d := slices.Clone(base)
				binary.BigEndian.PutUint64(d, uint64(time.Since(start)))
				nv, err := a.append(ctx, stream, v, [][]byte{d})
				if err != nil {
					errs[w] = err
					cancel() // the subscription waits no more
					return
				}
				v = nv
			}
		})
	}
	p, end := r.progress(label, total)
	defer end()
	delays := make([]time.Duration, 0, total)
	for len(delays) < total {
		data, stream, ok, err := next()
		if err != nil {
			cancel()
			wg.Wait()
			return nil, 0, errors.Join(append(errs, err)...)
		}
		if !ok || !strings.HasPrefix(stream, prefix) || len(data) < 8 {
			continue
		}
		delays = append(delays, time.Since(start)-time.Duration(binary.BigEndian.Uint64(data)))
		p(len(delays))
	}
	elapsed := time.Since(start)
	wg.Wait()
	return delays, float64(total) / elapsed.Seconds(), errors.Join(errs...)
}

// skipGenerated reports that a workload needs the official client, which
// the server's configuration rules out.
func (r *runner) skipGenerated(workload string) error {
	r.wireHeader()
	fmt.Fprintf(r.cfg.Out, "%-4s %-36s\n", workload, "skipped: needs the official client (TLS)")
	return nil
}
