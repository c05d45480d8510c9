package bench

// The wire workloads: a cairn server reached with the official KurrentDB
// client, each figure beside the same workload run in process on the run's
// own store, so that the ratio is the price of the network protocol:
//
//	K1  64 appenders sharing one connection, one event per append, each on
//	    its own stream with an exact expected version (W2's shape over the
//	    v1 Append call): events/s, p99
//	K2  the same with a connection per appender
//	K3  BatchAppend, the call the .NET client appends with: the 64
//	    appenders of K1 multiplexed over one call; then one writer making
//	    appends of 1000 events (W3's shape)
//	K4  read the whole log from position 0 with ReadAll (the log filled
//	    to KEvents first); rehydrate a 1000-event stream: p50
//	K5  a subscription to $all from the start: catch-up events/s; then
//	    live, while the 64 appenders of K1 write: the delay from the start
//	    of each append to the delivery of its event, p50 and p99

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
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/subscription"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
)

// Wire is the server the wire workloads reach.
type Wire struct {
	// Name says what the server is, for the report.
	Name string
	// Client returns an official client of the server, with a connection
	// of its own.
	Client func(ctx context.Context) (*kurrentdb.Client, error)
	// Conn returns a gRPC connection to the server whose calls carry the
	// credentials, for the protocol's generated client: BatchAppend,
	// which the official Go client does not offer, and every append when
	// Generated is set.
	Conn func(ctx context.Context) (*grpc.ClientConn, error)
	// ServerCPU returns the CPU time the server's process has used so
	// far, or a negative duration when it cannot tell; nil when the server
	// is not a process of this machine. The append and read workloads
	// then report the server's CPU per event.
	ServerCPU func() time.Duration
	// Generated makes K1 and K2 append with the protocol's generated
	// client (the same v1 Append call the official client makes) instead
	// of the official client, and skips K4 and K5: the official Go client
	// sends credentials only over TLS, so a server without TLS needs it.
	Generated bool
}

// WireWorkloads are the names of the wire workloads, in the order Run runs
// them. They run only when Config.Wire is set.
var WireWorkloads = []string{"K1", "K2", "K3", "K4", "K5"}

// storeAppender makes the same appends in process.
type storeAppender struct{ s *cairn.Store }

func (a storeAppender) append(ctx context.Context, stream string, expected int64, data [][]byte) (int64, error) {
	exp := cairn.NoStream
	if expected >= 0 {
		exp = cairn.Exact(expected)
	}
	events := make([]cairn.EventData, len(data))
	for i, d := range data {
		events[i] = cairn.EventData{Type: wireType, ContentType: cairn.ContentBinary, Data: d}
	}
	res, err := a.s.Append(ctx, stream, exp, events...)
	return res.Version, err
}

// wireHeader prints the header of the wire figures, once.
func (r *runner) wireHeader() {
	if r.wireHeaded {
		return
	}
	r.wireHeaded = true
	fmt.Fprintf(r.cfg.Out, "%-4s %-36s %16s %16s %8s\n", "", "over the wire", "wire", "in process", "ratio")
}

// data returns n payloads of EventBytes cut from the random pool.
func (r *runner) data(n int) [][]byte {
	out := make([][]byte, n)
	for i, e := range r.events(n) {
		out[i] = e.Data
	}
	return out
}

// appendLoad is the load of K1–K3: appenders goroutines, each making
// appends appends of perAppend events to a stream of its own with an exact
// expected version, through app(w) for appender w.
type appendLoad struct {
	label     string
	stream    string // the streams' prefix
	appenders int
	appends   int
	perAppend int
}

// runLoad runs the load and returns its events/s and the appends' latencies.
func (r *runner) runLoad(ctx context.Context, l appendLoad, app func(w int) appender) (float64, []time.Duration, error) {
	p, end := r.progress(l.label, l.appenders*l.appends*l.perAppend)
	defer end()
	var done atomic.Int64
	lat := make([][]time.Duration, l.appenders)
	errs := make([]error, l.appenders)
	data := r.data(l.perAppend)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range l.appenders {
		wg.Go(func() {
			a := app(w)
			stream := r.cfg.StreamPrefix + l.stream + "-" + strconv.Itoa(w)
			v := int64(-1)
			for range l.appends {
				t := time.Now()
				nv, err := a.append(ctx, stream, v, data)
				if err != nil {
					errs[w] = err
					return
				}
				lat[w] = append(lat[w], time.Since(t))
				v = nv
				p(int(done.Add(int64(l.perAppend))))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, nil, err
	}
	return float64(l.appenders*l.appends*l.perAppend) / elapsed.Seconds(), slices.Concat(lat...), nil
}

// compareLoad runs l over the wire, then in process, and reports events/s
// and, for single-event appends, the p99 latency.
func (r *runner) compareLoad(ctx context.Context, workload, metric string, l appendLoad, wire func(w int) appender) error {
	r.wireHeader()
	wl := l
	wl.label, wl.stream = workload+" wire", l.stream+"-wire"
	cpu := r.cpuMarks()
	wthr, wlat, err := r.runLoad(ctx, wl, wire)
	if err != nil {
		return fmt.Errorf("over the wire: %w", err)
	}
	cpu.wireDone()
	ll := l
	ll.label, ll.stream = workload+" in process", l.stream+"-local"
	local := storeAppender{r.s}
	lthr, llat, err := r.runLoad(ctx, ll, func(int) appender { return local })
	if err != nil {
		return fmt.Errorf("in process: %w", err)
	}
	cpu.localDone()
	r.report(Result{Workload: workload, Metric: metric + ": throughput", Unit: "events/s", Value: wthr, Raw: lthr, HasRaw: true})
	if l.perAppend == 1 {
		r.report(Result{Workload: workload, Metric: metric + ": latency p99", Unit: "ms", Value: ms(percentile(wlat, 0.99)), Raw: ms(percentile(llat, 0.99)), HasRaw: true})
	}
	cpu.report(workload, metric, l.appenders*l.appends*l.perAppend)
	return nil
}

// cpuMarks marks the CPU time of the server and of this process around a
// workload run over the wire, then in process.
type cpuMarks struct {
	r                   *runner
	server0, server1    time.Duration
	self0, self1, self2 time.Duration
}

func (r *runner) cpuMarks() *cpuMarks {
	return &cpuMarks{r: r, server0: r.serverCPU(), self0: processCPU()}
}

// wireDone marks the end of the run over the wire.
func (c *cpuMarks) wireDone() { c.server1, c.self1 = c.r.serverCPU(), processCPU() }

// localDone marks the end of the run in process.
func (c *cpuMarks) localDone() { c.self2 = processCPU() }

// report reports the server's CPU per event over the wire beside this
// process's in process (both do the same work but for the protocol), and
// the client's over the wire, when the server's is known.
func (c *cpuMarks) report(workload, metric string, events int) {
	if c.server0 < 0 || c.server1 < 0 || c.self0 < 0 || events == 0 {
		return
	}
	perEvent := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(events) }
	c.r.report(Result{Workload: workload, Metric: metric + ": server CPU/event", Unit: "us", Value: perEvent(c.server1 - c.server0), Raw: perEvent(c.self2 - c.self1), HasRaw: true})
	c.r.report(Result{Workload: workload, Metric: metric + ": client CPU/event", Unit: "us", Value: perEvent(c.self1 - c.self0)})
}

// serverCPU returns the CPU time the server has used, or -1 when it is not
// known.
func (r *runner) serverCPU() time.Duration {
	if r.cfg.Wire.ServerCPU == nil {
		return -1
	}
	return r.cfg.Wire.ServerCPU()
}

// wireAppender returns an appender over a new connection to the server:
// the official client, or the generated one; and a function that closes
// the connection. The connection is made, with an append, before it
// returns: before any clock runs.
func (r *runner) wireAppender(ctx context.Context) (appender, func(), error) {
	w := r.cfg.Wire
	var a appender
	var closeConn func()
	if w.Generated {
		conn, err := w.Conn(ctx)
		if err != nil {
			return nil, nil, err
		}
		a, closeConn = rawAppender{api.NewStreamsClient(conn)}, func() { conn.Close() }
	} else {
		c, err := w.Client(ctx)
		if err != nil {
			return nil, nil, err
		}
		a, closeConn = clientAppender{c}, func() { c.Close() }
	}
	r.warm++
	if _, err := a.append(ctx, fmt.Sprintf("%swarm-%d", r.cfg.StreamPrefix, r.warm), -1, r.data(1)); err != nil {
		closeConn()
		return nil, nil, fmt.Errorf("the first append of a connection: %w", err)
	}
	return a, closeConn, nil
}

// k1: the appenders share one connection.
func (r *runner) k1(ctx context.Context) error {
	a, closeConn, err := r.wireAppender(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	l := appendLoad{stream: "k1", appenders: r.cfg.KAppenders, appends: r.cfg.KAppends, perAppend: 1}
	return r.compareLoad(ctx, "K1", fmt.Sprintf("%d appenders, 1 connection", l.appenders), l, func(int) appender { return a })
}

// k2: each appender has a connection of its own.
func (r *runner) k2(ctx context.Context) error {
	l := appendLoad{stream: "k2", appenders: r.cfg.KAppenders, appends: r.cfg.KAppends, perAppend: 1}
	apps := make([]appender, l.appenders)
	for i := range apps {
		a, closeConn, err := r.wireAppender(ctx)
		if err != nil {
			return err
		}
		defer closeConn()
		apps[i] = a
	}
	return r.compareLoad(ctx, "K2", fmt.Sprintf("%d appenders, %d connections", l.appenders, l.appenders), l, func(w int) appender { return apps[w] })
}

// k3: BatchAppend, the 64 appenders multiplexed over one call, then one
// writer with appends of 1000.
func (r *runner) k3(ctx context.Context) error {
	conn, err := r.cfg.Wire.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	b, err := newBatchAppender(ctx, conn)
	if err != nil {
		return err
	}
	defer b.close()
	r.warm++
	if _, err := b.append(ctx, fmt.Sprintf("%swarm-%d", r.cfg.StreamPrefix, r.warm), -1, r.data(1)); err != nil {
		return fmt.Errorf("the first batch append: %w", err)
	}
	l := appendLoad{stream: "k3", appenders: r.cfg.KAppenders, appends: r.cfg.KAppends, perAppend: 1}
	if err := r.compareLoad(ctx, "K3", fmt.Sprintf("BatchAppend, %d appenders", l.appenders), l, func(int) appender { return b }); err != nil {
		return err
	}
	const per = 1000
	big := appendLoad{stream: "k3-large", appenders: 1, appends: max(1, r.cfg.KEvents/per/4), perAppend: per}
	return r.compareLoad(ctx, "K3", "BatchAppend, appends of 1000", big, func(int) appender { return b })
}

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
	cpu.report("K4", "read all", wn)

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
	cpu.report("K5", "catch-up", wn)

	// Live: the delay from the start of an append to the delivery of its
	// event, which carries the time the append started. Each subscription
	// starts after the head of its log, so that it misses nothing.
	a, closeConn, err := r.wireAppender(ctx)
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
	appenders, appends := r.cfg.KAppenders, r.cfg.KAppends
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
