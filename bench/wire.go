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
//
// With [Wire.Floor], K1 and K2 also run against the gRPC floor (floor.go),
// a server that answers each append at once and keeps nothing: its
// throughput beside the in-process run's is what no server speaking the
// protocol through gRPC-Go could pass on the machine, and the wire run's
// beside the floor's is what the server's own work costs.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/cputime"
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
	// CommitStats returns the commit counts of the server's engine (its
	// metrics), or an error when it cannot tell; nil when they are not
	// known. The append workloads then note how the server grouped the
	// appends over the wire, beside the same in process.
	CommitStats func(ctx context.Context) (cairn.CommitStats, error)
	// Floor, when set, is a gRPC floor (NewFloor) that K1 and K2 also run
	// against, after the server, with the same client and load: their
	// throughput is then reported beside the floor's.
	Floor *Wire
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
// expected version, through app(w) for appender w; with a limit, each
// makes no more once limit has passed since they started.
type appendLoad struct {
	label     string
	stream    string // the streams' prefix
	appenders int
	appends   int
	perAppend int
	limit     time.Duration
}

// runLoad runs the load and returns the events it appended, their rate
// (events/s) and the appends' latencies.
func (r *runner) runLoad(ctx context.Context, l appendLoad, app func(w int) appender) (int, float64, []time.Duration, error) {
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
				if l.limit > 0 && time.Since(start) >= l.limit {
					return
				}
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
		return 0, 0, nil, err
	}
	events := int(done.Load())
	return events, float64(events) / elapsed.Seconds(), slices.Concat(lat...), nil
}

// compareLoad runs l over the wire, then in process, and reports events/s
// and, for single-event appends, the p99 latency.
// It returns the events/s over the wire and in process.
func (r *runner) compareLoad(ctx context.Context, workload, metric string, l appendLoad, wire func(w int) appender) (float64, float64, error) {
	r.wireHeader()
	wl := l
	wl.label, wl.stream = workload+" wire", l.stream+"-wire"
	cpu := r.cpuMarks()
	wireCommits := r.serverCommits(ctx, wl.label)
	wn, wthr, wlat, err := r.runLoad(ctx, wl, wire)
	if err != nil {
		return 0, 0, fmt.Errorf("over the wire: %w", err)
	}
	cpu.wireDone()
	wireCommits()
	ll := l
	ll.label, ll.stream = workload+" in process", l.stream+"-local"
	local := storeAppender{r.s}
	localCommits := r.commits(ll.label)
	ln, lthr, llat, err := r.runLoad(ctx, ll, func(int) appender { return local })
	if err != nil {
		return 0, 0, fmt.Errorf("in process: %w", err)
	}
	cpu.localDone()
	localCommits()
	r.report(Result{Workload: workload, Metric: metric + ": throughput", Unit: "events/s", Value: wthr, Raw: lthr, HasRaw: true})
	if l.perAppend == 1 {
		r.report(Result{Workload: workload, Metric: metric + ": latency p99", Unit: "ms", Value: ms(percentile(wlat, 0.99)), Raw: ms(percentile(llat, 0.99)), HasRaw: true})
	}
	cpu.report(workload, metric, wn, ln)
	return wthr, lthr, nil
}

// cpuMarks marks the CPU time of the server and of this process around a
// workload run over the wire, then in process.
type cpuMarks struct {
	r                   *runner
	server0, server1    time.Duration
	self0, self1, self2 time.Duration
}

func (r *runner) cpuMarks() *cpuMarks {
	return &cpuMarks{r: r, server0: r.serverCPU(), self0: cputime.Process()}
}

// wireDone marks the end of the run over the wire.
func (c *cpuMarks) wireDone() { c.server1, c.self1 = c.r.serverCPU(), cputime.Process() }

// localDone marks the end of the run in process.
func (c *cpuMarks) localDone() { c.self2 = cputime.Process() }

// report reports the server's CPU per event over the wire (wire events)
// beside this process's in process (local events; both do the same work
// but for the protocol), and the client's over the wire, when the
// server's is known.
func (c *cpuMarks) report(workload, metric string, wire, local int) {
	if c.server0 < 0 || c.server1 < 0 || c.self0 < 0 || wire == 0 || local == 0 {
		return
	}
	perEvent := func(d time.Duration, events int) float64 {
		return float64(d) / float64(time.Microsecond) / float64(events)
	}
	c.r.report(Result{Workload: workload, Metric: metric + ": server CPU/event", Unit: "us", Value: perEvent(c.server1-c.server0, wire), Raw: perEvent(c.self2-c.self1, local), HasRaw: true})
	c.r.report(Result{Workload: workload, Metric: metric + ": client CPU/event", Unit: "us", Value: perEvent(c.self1-c.self0, wire)})
}

// serverCPU returns the CPU time the server has used, or -1 when it is not
// known.
func (r *runner) serverCPU() time.Duration { return serverCPU(r.cfg.Wire) }

// serverCommits is commits for the server's engine: it notes what the
// server's commit counts grew by between its call and the call of the
// function it returns, when the server tells them.
func (r *runner) serverCommits(ctx context.Context, label string) func() {
	counts := r.cfg.Wire.CommitStats
	if counts == nil {
		return func() {}
	}
	before, err := counts(ctx)
	if err != nil {
		return func() {}
	}
	return func() {
		if after, err := counts(ctx); err == nil {
			r.note("%s", commitNote(label, before, after))
		}
	}
}

// wireAppender returns an appender over a new connection to w's server:
// the official client, or the generated one; and a function that closes
// the connection. The connection is made, with an append, before it
// returns: before any clock runs.
func (r *runner) wireAppender(ctx context.Context, w *Wire) (appender, func(), error) {
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
	l := appendLoad{stream: "k1", appenders: r.cfg.KAppenders, appends: r.cfg.KAppends, perAppend: 1, limit: r.cfg.kLimit}
	return r.kAppends(ctx, "K1", fmt.Sprintf("%d appenders, 1 connection", l.appenders), l, true)
}

// k2: each appender has a connection of its own.
func (r *runner) k2(ctx context.Context) error {
	l := appendLoad{stream: "k2", appenders: r.cfg.KAppenders, appends: r.cfg.KAppends, perAppend: 1, limit: r.cfg.kLimit}
	return r.kAppends(ctx, "K2", fmt.Sprintf("%d appenders, %d connections", l.appenders, l.appenders), l, false)
}

// kAppends runs l over the wire, the appenders sharing one connection or
// each with its own, then in process, then against the gRPC floor.
func (r *runner) kAppends(ctx context.Context, workload, metric string, l appendLoad, shared bool) error {
	app, closeAll, err := r.connect(ctx, r.cfg.Wire, l.appenders, shared)
	if err != nil {
		return err
	}
	wire, local, err := r.compareLoad(ctx, workload, metric, l, app)
	closeAll()
	if err != nil {
		return err
	}
	return r.floorLoad(ctx, workload, metric, l, wire, local, shared)
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
	l := appendLoad{stream: "k3", appenders: r.cfg.KAppenders, appends: r.cfg.KAppends, perAppend: 1, limit: r.cfg.kLimit}
	if _, _, err := r.compareLoad(ctx, "K3", fmt.Sprintf("BatchAppend, %d appenders", l.appenders), l, func(int) appender { return b }); err != nil {
		return err
	}
	const per = 1000
	big := appendLoad{stream: "k3-large", appenders: 1, appends: max(1, r.cfg.KEvents/per/4), perAppend: per}
	_, _, err = r.compareLoad(ctx, "K3", "BatchAppend, appends of 1000", big, func(int) appender { return b })
	return err
}
