package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/linearize"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

var faultRounds = flag.Int("fault-rounds", 1, "rounds of TestClusterFaults, each of every fault once")

// clientDeadline is the official client's deadline on each call
// (defaultDeadline in its connection string).
const clientDeadline = 2 * time.Second

// nodeClients holds an official KurrentDB client for each node. A client
// whose node stayed down for longer than its discovery attempts closes
// for good (ErrorCodeConnectionClosed on every call after): the writer
// that meets that makes a new one, as the client's users must.
type nodeClients struct {
	t       *testing.T
	nodes   []*clusterNode
	mu      sync.Mutex
	clients []*kurrentdb.Client
	renewed int // clients made again
}

func newNodeClients(t *testing.T, nodes []*clusterNode) *nodeClients {
	t.Helper()
	c := &nodeClients{t: t, nodes: nodes, clients: make([]*kurrentdb.Client, len(nodes))}
	for i, n := range nodes {
		var err error
		if c.clients[i], err = kurrentClient(n); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, cl := range c.clients {
			_ = cl.Close()
		}
	})
	return c
}

func (c *nodeClients) get(i int) *kurrentdb.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clients[i]
}

// renew replaces node i's client, if it still is old, by a new one.
func (c *nodeClients) renew(i int, old *kurrentdb.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.clients[i] != old {
		return
	}
	cl, err := kurrentClient(c.nodes[i])
	if err != nil {
		c.t.Errorf("a new client of node %d: %v", i, err)
		return
	}
	_ = old.Close()
	c.clients[i] = cl
	c.renewed++
}

func (c *nodeClients) renewals() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.renewed
}

// kurrentClient connects the official KurrentDB client to one node.
func kurrentClient(n *clusterNode) (*kurrentdb.Client, error) {
	cfg, err := kurrentdb.ParseConnectionString(fmt.Sprintf("kurrentdb://admin:%s@%s?tls=true&tlsCAFile=%s&defaultDeadline=%d",
		n.adminPassword(), n.grpc, n.certs.CACert, clientDeadline.Milliseconds()))
	if err != nil {
		return nil, err
	}
	cfg.Logger = kurrentdb.NoopLogging()
	return kurrentdb.NewClient(cfg)
}

func kurrentCode(err error) kurrentdb.ErrorCode {
	var e *kurrentdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

// faultLoad is what writers through the official client do during one
// round: appends (with an expected revision, or none) and reads that
// must see every acknowledged append (requires-leader), on a few
// streams shared by all writers, each writer on its own node.
type faultLoad struct {
	h     *linearize.History
	mu    sync.Mutex
	acked map[uuid.UUID]acked
	// Appends refused for their expectation, by event id.
	refused map[uuid.UUID]bool
	// Appends that failed at first (retried: timedOut of them by the
	// client's deadline) and were acknowledged or refused on a retry.
	retried, timedOut int
	errs              map[string]int // the kinds of errors appends met, by node
	lastErr           error
	answered          []answer // appends acknowledged and reads answered, by node
}

// answer is an append acknowledged, or a read answered, through a node.
type answer struct {
	node      int
	read      bool
	call, ret time.Time
}

// answeredBy returns the appends acknowledged (or, with read, the reads
// answered) through node by calls made after from that returned before to.
func (l *faultLoad) answeredBy(node int, read bool, from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.answered {
		if a.node == node && a.read == read && a.call.After(from) && a.ret.Before(to) {
			n++
		}
	}
	return n
}

// errors returns the errors appends met since the last call, and how
// often, and forgets them.
func (l *faultLoad) errors() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	errs := l.errs
	l.errs = map[string]int{}
	return errs
}

func (l *faultLoad) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *faultLoad) lastError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

func (l *faultLoad) retries() (retried, timedOut int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.retried, l.timedOut
}

// run runs writer w until ctx is done. An append that fails other than by
// its expectation (a node down or stopped, a deadline) is retried through
// the next node, with the same event id and expected revision, as the
// official client's users are told to; one that never got an answer when
// the round ends is of unknown outcome.
func (l *faultLoad) run(ctx context.Context, w, round int, clients *nodeClients) {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(round)))
	home := w % len(clients.nodes)
	seen := map[string]int64{}
	for ctx.Err() == nil {
		stream := fmt.Sprintf("fault-%d-%d", round, rng.IntN(3))
		call, callAt := l.h.Now(), time.Now()
		if rng.IntN(3) == 0 {
			if v, ok := readVersion(clients, home, stream); ok {
				seen[stream] = v
				l.h.Add(w, linearize.Read{Stream: stream}, call, linearize.Result{Version: v})
				l.mu.Lock()
				l.answered = append(l.answered, answer{home, true, callAt, time.Now()})
				l.mu.Unlock()
			}
			continue
		}
		in := linearize.Append{Stream: stream, Expected: linearize.Any}
		var state kurrentdb.StreamState = kurrentdb.Any{}
		if v, ok := seen[stream]; ok && rng.IntN(2) == 0 {
			in.Expected = v
			state = kurrentdb.NoStream{}
			if v >= 0 {
				state = kurrentdb.Revision(uint64(v))
			}
		}
		ev := kurrentdb.EventData{EventID: uuid.Must(uuid.NewV7()), EventType: "F", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{}`)}
		out := linearize.Result{Outcome: linearize.Unknown}
		failed, deadlined := false, false
		for node := home; ctx.Err() == nil; node = (node + 1) % len(clients.nodes) {
			c := clients.get(node)
			tryAt := time.Now()
			res, err := c.AppendToStream(context.Background(), stream, kurrentdb.AppendToStreamOptions{StreamState: state}, ev)
			if err == nil {
				out = linearize.Result{Version: int64(res.NextExpectedVersion)}
				seen[stream] = out.Version
				l.mu.Lock()
				l.acked[ev.EventID] = acked{stream, out.Version}
				l.answered = append(l.answered, answer{node, false, tryAt, time.Now()})
				l.mu.Unlock()
				break
			}
			if kurrentCode(err) == kurrentdb.ErrorCodeWrongExpectedVersion {
				out.Outcome = linearize.Conflict
				l.mu.Lock()
				l.refused[ev.EventID] = true
				l.mu.Unlock()
				break
			}
			failed = true
			if kurrentCode(err) == kurrentdb.ErrorCodeConnectionClosed {
				clients.renew(node, c)
			}
			kind, _, _ := strings.Cut(err.Error(), "]")
			l.mu.Lock()
			l.errs[fmt.Sprintf("node %d %s]", node, kind)]++
			l.lastErr = err
			l.mu.Unlock()
			deadlined = deadlined || kurrentCode(err) == kurrentdb.ErrorCodeDeadlineExceeded
			time.Sleep(20 * time.Millisecond)
		}
		if failed && out.Outcome != linearize.Unknown {
			l.mu.Lock()
			l.retried++
			if deadlined {
				l.timedOut++
			}
			l.mu.Unlock()
		}
		l.h.Add(w, in, call, out)
	}
}

// readVersion reads the stream's last version through the client, with
// requires-leader (a read that sees every acknowledged append); -1 for a
// stream not there. False when the read failed: it tells nothing.
func readVersion(clients *nodeClients, node int, stream string) (int64, bool) {
	d := clientDeadline
	c := clients.get(node)
	rs, err := c.ReadStream(context.Background(), stream, kurrentdb.ReadStreamOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}, RequiresLeader: true, Deadline: &d}, 1)
	if kurrentCode(err) == kurrentdb.ErrorCodeResourceNotFound {
		return -1, true
	}
	if kurrentCode(err) == kurrentdb.ErrorCodeConnectionClosed {
		clients.renew(node, c)
	}
	if err != nil {
		return 0, false
	}
	defer rs.Close()
	e, err := rs.Recv()
	switch {
	case kurrentCode(err) == kurrentdb.ErrorCodeResourceNotFound:
		return -1, true
	case errors.Is(err, io.EOF):
		return -1, true
	case err != nil:
		return 0, false
	}
	return int64(e.Event.EventNumber), true
}

// A fault is one thing that goes wrong in a round: do it, return what
// it was, then heal it (while writers go on through the other nodes),
// then, if it has one, check what the writers met while it lasted.
type fault struct {
	do    func(t *testing.T, round int, load *faultLoad) string
	heal  func(t *testing.T)
	check func(t *testing.T, round int, load *faultLoad)
}

// A cluster of three `cairn serve` nodes on a cluster of three separate
// nats-server processes (--store nats://…, as in production), under
// writers using the official KurrentDB client on every node, through
// rounds of faults, one at a time: kill -9 of the NATS server that leads
// the log's stream (in later rounds, of another NATS server), kill -9 of
// a cairn node, a cairn node stopped (SIGSTOP) for longer than the
// client's deadline, then continued, and a cairn node lost with its disk,
// replaced by one restored from another node's backup. Writers whose
// call failed retry through another node with the same event id and
// expected revision.
// After each round every acknowledged append is in the log once, at its
// version; no append is in it twice; every node holds the same gapless
// log, the stopped and killed nodes included; and the history of appends
// and reads is linearizable. -fault-rounds runs more rounds.
func TestClusterFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nats-server and three cairn processes")
	}
	certs := devCerts(t)
	natsServers := startNATSCluster(t)
	var urls []string
	for _, s := range natsServers {
		urls = append(urls, s.client)
	}
	nodes := make([]*clusterNode, 3)
	for i := range nodes {
		nodes[i] = &clusterNode{dir: filepath.Join(t.TempDir(), fmt.Sprint("n", i)), grpc: freeAddr(t), http: freeAddr(t),
			store: "nats://" + strings.Join(urls, ","), certs: &certs}
	}
	startNodes(t, nodes)
	waitStreamCurrent(t, natsServers)
	clients := newNodeClients(t, nodes)

	var killedNATS *natsServer
	var touched *clusterNode
	faults := []fault{{
		do: func(t *testing.T, round int, _ *faultLoad) string {
			leader := waitStreamCurrent(t, natsServers)
			// The leader in even rounds, another server in odd ones.
			victim := 0
			for i, s := range natsServers {
				if s.name == leader {
					victim = i
				}
			}
			if round%2 == 1 {
				victim = (victim + 1 + round/2%2) % len(natsServers)
			}
			meta := metaLeader(natsServers)
			if round%4 == 1 {
				// The JetStream meta leader, which another server than
				// it leads the stream for: a node whose consumer of the
				// log it hosted makes a new one, and that waits for the
				// meta group's election.
				if meta == leader {
					stepDownStream(t, natsServers)
					leader = waitStreamCurrent(t, natsServers)
				}
				for i, s := range natsServers {
					if s.name == meta && meta != leader {
						victim = i
					}
				}
			}
			killedNATS = natsServers[victim]
			t.Logf("round %d, before the kill of %s: %s", round, killedNATS.name, natsPlacement(natsServers))
			killedNATS.kill()
			return fmt.Sprintf("kill -9 of NATS server %s (the stream's leader: %v; the meta leader: %v)", killedNATS.name, killedNATS.name == leader, killedNATS.name == meta)
		},
		heal: func(t *testing.T) {
			killedNATS.start(t)
			killedNATS.waitUp(t)
			waitStreamCurrent(t, natsServers)
		},
	}, {
		do: func(t *testing.T, round int, _ *faultLoad) string {
			touched = nodes[round%3]
			touched.kill()
			return fmt.Sprintf("kill -9 of cairn node %d", round%3)
		},
		heal: func(t *testing.T) {
			touched.start(t, cairnBinary(t))
			touched.waitHealthy(t)
		},
	}, {
		do: func(t *testing.T, round int, _ *faultLoad) string {
			touched = nodes[(round+1)%3]
			if err := touched.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("SIGSTOP of cairn node %d for %v (the client's deadline: %v)", (round+1)%3, 2*clientDeadline+time.Second, clientDeadline)
		},
		heal: func(t *testing.T) {
			time.Sleep(2*clientDeadline + time.Second)
			if err := touched.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			touched.waitHealthy(t)
		},
	}, {
		do: func(t *testing.T, round int, _ *faultLoad) string {
			// The node's machine is lost with its disk: a new one takes
			// its place from a backup of another node.
			touched = nodes[(round+2)%3]
			touched.kill()
			dest := filepath.Join(t.TempDir(), "backup")
			mustCairn(t, "backup", dest, "--server", nodes[round%3].url())
			if err := os.RemoveAll(touched.dir); err != nil {
				t.Fatal(err)
			}
			mustCairn(t, "restore", dest, filepath.Join(touched.dir, "store"))
			return fmt.Sprintf("kill -9 of cairn node %d, replaced by a node restored from a backup of node %d", (round+2)%3, round%3)
		},
		heal: func(t *testing.T) {
			touched.start(t, cairnBinary(t))
			touched.waitHealthy(t)
		},
	}}

	runFaultRounds(t, nodes, clients, faults, *faultRounds)
}

// runFaultRounds runs rounds of the faults, one at a time, under six
// writers using the official client (see TestClusterFaults), and checks
// after each round: the history of appends and reads linearizable, every
// acknowledged append in the log once at its version, no event twice, no
// append refused for its expectation in the log, every node's log the
// same and gapless.
func runFaultRounds(t *testing.T, nodes []*clusterNode, clients *nodeClients, faults []fault, rounds int) {
	t.Helper()
	all := map[uuid.UUID]acked{} // every append acknowledged, in every round
	for round := range rounds {
		load := &faultLoad{h: linearize.NewHistory(), acked: map[uuid.UUID]acked{}, refused: map[uuid.UUID]bool{}, errs: map[string]int{}}
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		t.Cleanup(func() { stop(); wg.Wait() }) // the writers end before their clients close
		for w := range 6 {
			wg.Go(func() { load.run(ctx, w, round, clients) })
		}
		for _, f := range faults {
			time.Sleep(time.Second)
			from, before := load.h.Now(), load.ackedCount()
			retried, timedOut := load.retries()
			renewed := clients.renewals()
			load.errors()
			what := f.do(t, round, load)
			// Writes go on without it.
			deadline := time.Now().Add(30 * time.Second)
			for load.ackedCount() < before+30 {
				if time.Now().After(deadline) {
					stop()
					t.Fatalf("round %d, %s: %d appends acknowledged in 30 s; appends failed with %v, the last: %v", round, what, load.ackedCount()-before, load.errors(), load.lastError())
				}
				time.Sleep(20 * time.Millisecond)
			}
			f.heal(t)
			time.Sleep(time.Second)
			to := load.h.Now()
			r, d := load.retries()
			t.Logf("round %d, %s: %d appends acknowledged from the fault until a second after healing (%v); longest time without one: %v; "+
				"%d answered only by a retry through another node (%d after the client's deadline); %d clients made again",
				round, what, load.ackedCount()-before, time.Duration(to-from).Round(time.Millisecond), load.h.LongestWithoutAck(from, to).Round(time.Millisecond),
				r-retried, d-timedOut, clients.renewals()-renewed)
			t.Logf("round %d, %s: appends failed with %v", round, what, load.errors())
			if f.check != nil {
				f.check(t, round, load)
			}
		}
		stop()
		wg.Wait()

		show := filepath.Join(t.ArtifactDir(), fmt.Sprintf("history-%d.html", round))
		res, err := load.h.Check(time.Minute, show)
		if res == porcupine.Illegal {
			t.Errorf("round %d: the history of %d operations (appends and reads) is not linearizable: see %s (kept with -artifacts), %v", round, load.h.Len(), show, err)
			explainIllegal(t, load.h)
		}
		for id, a := range load.acked {
			all[id] = a
		}
		n := sameLogs(t, nodes, len(all))
		seen := map[uuid.UUID]int{}
		for e, err := range openRemote(t, nodes[round%3].url()).All(context.Background(), 0, cairn.Forward) {
			if err != nil {
				t.Fatal(err)
			}
			seen[e.ID]++
			if seen[e.ID] > 1 {
				t.Fatalf("round %d: event %s is in the log twice (%s@%d)", round, e.ID, e.StreamID, e.Version)
			}
			if load.refused[e.ID] {
				t.Fatalf("round %d: an append refused for its expected version is in the log at %s@%d", round, e.StreamID, e.Version)
			}
			if a, ok := all[e.ID]; ok && (a.stream != e.StreamID || a.version != e.Version) {
				t.Fatalf("round %d: append acknowledged at %s@%d is at %s@%d", round, a.stream, a.version, e.StreamID, e.Version)
			}
		}
		for id, a := range all {
			if seen[id] != 1 {
				t.Fatalf("round %d: append acknowledged at %s@%d is not in the log", round, a.stream, a.version)
			}
		}
		t.Logf("round %d: %d operations, %d appends acknowledged; linearizable: %v; every node holds the same %d events",
			round, load.h.Len(), len(load.acked), res, n)
	}
}

// explainIllegal logs what in a history no order can explain, as far as
// simple rules find it: a read that missed an append acknowledged before
// it was called, two appends acknowledged at one version, an append
// acknowledged at a version its expectation forbids.
func explainIllegal(t *testing.T, h *linearize.History) {
	t.Helper()
	type op struct {
		porcupine.Operation
		res linearize.Result
	}
	byStream := map[string][]op{}
	for _, o := range h.Ops() {
		var stream string
		switch in := o.Input.(type) {
		case linearize.Read:
			stream = in.Stream
		case linearize.Append:
			stream = in.Stream
		}
		byStream[stream] = append(byStream[stream], op{o, o.Output.(linearize.Result)})
	}
	found := 0
	for stream, ops := range byStream {
		at := map[int64]op{}
		for _, a := range ops {
			in, ok := a.Input.(linearize.Append)
			if !ok || a.res.Outcome != linearize.Acked {
				continue
			}
			if b, dup := at[a.res.Version]; dup {
				t.Logf("%s: two appends acknowledged at version %d: %v and %v", stream, a.res.Version, a.Operation, b.Operation)
				found++
			}
			at[a.res.Version] = a
			if in.Expected != linearize.Any && in.Expected != a.res.Version-1 {
				t.Logf("%s: append expecting %d acknowledged at version %d: %v", stream, in.Expected, a.res.Version, a.Operation)
				found++
			}
		}
		for _, r := range ops {
			if _, ok := r.Input.(linearize.Read); !ok {
				continue
			}
			for v, a := range at {
				if v > r.res.Version && a.Return < r.Call {
					t.Logf("%s: a read on node %d at %v returned version %d, after an append was acknowledged at version %d (%v)", stream, r.ClientId%3, time.Duration(r.Call), r.res.Version, v, a.Operation)
					found++
					break
				}
			}
		}
	}
	if found == 0 {
		t.Log("no simple rule explains it: see porcupine's picture")
	}
}
