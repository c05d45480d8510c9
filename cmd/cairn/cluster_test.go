package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/storeurl"
	"github.com/google/uuid"
)

// clusterNode is one `cairn serve` process of a test cluster, on fixed
// addresses so that it restarts where it was: with its embedded NATS
// server (--nats-embedded), or, when store is set, a node of the NATS
// cluster that store names (--store nats://…). With certs it serves TLS,
// else plaintext (--insecure). With netns it runs in that network
// namespace, with password as admin's and ops' (beyond loopback cairn
// refuses the default one).
type clusterNode struct {
	dir, grpc, http, nats, route string
	routes                       []string
	store                        string
	netns, password              string
	certs                        *server.CertFiles
	cmd                          *exec.Cmd
	logs                         *syncBuffer
}

func (n *clusterNode) start(t *testing.T, bin string) {
	t.Helper()
	args := []string{"serve", "--data", n.dir, "--listen", n.grpc, "--http-listen", n.http}
	if n.certs != nil {
		args = append(args, "--tls-cert", n.certs.NodeCert, "--tls-key", n.certs.NodeKey)
	} else {
		args = append(args, "--insecure")
	}
	if n.store != "" {
		args = append(args, "--store", n.store)
	} else {
		args = append(args, "--nats-embedded", "--nats-listen", n.nats, "--nats-cluster", n.route)
		for _, r := range n.routes {
			args = append(args, "--nats-routes", r)
		}
	}
	if n.netns != "" {
		// /health on the namespace's own address, which only the test
		// reaches.
		args = append(args, "--http-public", "--admin-password", n.password, "--ops-password", n.password)
	}
	n.cmd = inNetns(n.netns, bin, args...)
	if n.logs == nil {
		n.logs = &syncBuffer{}
	}
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

// waitHealthy waits until the node answers /health.
func (n *clusterNode) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get("http://" + n.http + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s did not become healthy: %v\n%s", n.grpc, err, n.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *clusterNode) kill() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	_ = n.cmd.Wait()
}

// url is the node's cairn:// URL, with the admin's credentials.
func (n *clusterNode) url() string {
	u := "cairn://admin:" + n.adminPassword() + "@" + n.grpc
	if n.certs != nil {
		u += "?tls=true&tlsCAFile=" + n.certs.CACert
	}
	return u
}

// adminPassword is the admin's password on the node.
func (n *clusterNode) adminPassword() string {
	if n.password == "" {
		return "changeit"
	}
	return n.password
}

// startCluster starts three nodes, each with its embedded NATS server
// routed to the others', and waits until they serve.
func startCluster(t *testing.T) []*clusterNode {
	t.Helper()
	nodes := make([]*clusterNode, 3)
	for i := range nodes {
		nodes[i] = &clusterNode{dir: filepath.Join(t.TempDir(), fmt.Sprint("n", i)), grpc: freeAddr(t), http: freeAddr(t), nats: freeAddr(t), route: freeAddr(t)}
	}
	for i, n := range nodes {
		for j, o := range nodes {
			if i != j {
				n.routes = append(n.routes, o.route)
			}
		}
	}
	startNodes(t, nodes)
	return nodes
}

// startNodes starts the nodes, kills them when the test ends (showing
// their logs when it failed), and waits until they serve.
func startNodes(t *testing.T, nodes []*clusterNode) {
	t.Helper()
	bin := cairnBinary(t)
	for _, n := range nodes {
		n.start(t, bin)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.kill()
			if t.Failed() {
				t.Logf("node %s logged:\n%s", n.grpc, n.logs)
			}
		}
	})
	for _, n := range nodes {
		n.waitHealthy(t)
	}
}

// openRemote opens a cairn:// URL.
func openRemote(t *testing.T, url string) *cairn.Store {
	t.Helper()
	s, err := storeurl.Open(context.Background(), url, storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// acked is an acknowledged append.
type acked struct {
	stream  string
	version int64
}

// A three-node cluster of `cairn serve` processes, each with its embedded
// NATS server, under writers on every node: each node in turn is killed
// with SIGKILL (NATS and cairn together) and restarted. The others keep
// taking writes; a writer whose node died goes on through another, with
// the same event and expected version; the node that was killed catches
// up. Afterwards every acknowledged append is in the log once, at its
// version, and every node holds the same gapless log.
func TestClusterSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of three cairn processes")
	}
	nodes := startCluster(t)
	stores := make([]*cairn.Store, 3)
	for i, n := range nodes {
		stores[i] = openRemote(t, n.url())
	}
	var mu sync.Mutex
	ack := map[uuid.UUID]acked{}
	var ackTimes []time.Time // when each append was acknowledged
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			stream := fmt.Sprintf("kill-%d", w)
			node := w % 3
			for v := int64(0); ctx.Err() == nil; v++ {
				id := uuid.Must(uuid.NewV7())
				exp := cairn.NoStream
				if v > 0 {
					exp = cairn.Exact(v - 1)
				}
				for tries := 0; ; tries++ {
					actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					res, err := stores[node].Append(actx, stream, exp, cairn.EventData{ID: id, Type: "K", Data: []byte(`{}`)})
					cancel()
					if err == nil {
						if res.Version != v {
							t.Errorf("writer %d: append acknowledged at version %d, want %d", w, res.Version, v)
							return
						}
						mu.Lock()
						ack[id] = acked{stream, v}
						ackTimes = append(ackTimes, time.Now())
						mu.Unlock()
						break
					}
					if errors.Is(err, cairn.ErrWrongExpectedVersion) || errors.Is(err, cairn.ErrDuplicateEvent) {
						t.Errorf("writer %d: a retry of version %d: %v", w, v, err)
						return
					}
					if tries > 100 {
						t.Errorf("writer %d: %v", w, err)
						return
					}
					if ctx.Err() != nil {
						return // the test is over: the append is not acknowledged
					}
					// The node may be down: the same append, through the next.
					node = (node + 1) % 3
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	// The writers are done before the test is, even when it fails.
	defer func() {
		stop()
		wg.Wait()
	}()
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(ack)
	}
	for round := range 3 {
		time.Sleep(time.Second)
		before := ackedCount()
		victim := nodes[round]
		victim.kill()
		t.Logf("round %d: killed node %d after %d appends", round, round, before)
		// The others keep taking writes.
		deadline := time.Now().Add(30 * time.Second)
		for ackedCount() < before+50 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d appends acknowledged in 30 s with node %d down", round, ackedCount()-before, round)
			}
			time.Sleep(50 * time.Millisecond)
		}
		victim.start(t, cairnBinary(t))
		victim.waitHealthy(t)
	}
	time.Sleep(500 * time.Millisecond)
	stop()
	wg.Wait()
	if t.Failed() {
		return
	}

	// Every node catches up with the same log.
	logLen := sameLogs(t, nodes, len(ack))
	seen := map[uuid.UUID]int{}
	for e, err := range stores[0].All(context.Background(), 0, cairn.Forward) {
		if err != nil {
			t.Fatal(err)
		}
		seen[e.ID]++
		if a, ok := ack[e.ID]; ok && (a.stream != e.StreamID || a.version != e.Version) {
			t.Fatalf("append acknowledged at %s@%d is at %s@%d", a.stream, a.version, e.StreamID, e.Version)
		}
	}
	for id := range ack {
		if seen[id] != 1 {
			t.Fatalf("acknowledged append %s is in the log %d times", id, seen[id])
		}
	}
	// The longest time without an acknowledged append, across the kills
	// (a figure, not a check).
	slices.SortFunc(ackTimes, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(ackTimes); i++ {
		gap = max(gap, ackTimes[i].Sub(ackTimes[i-1]))
	}
	t.Logf("%d appends acknowledged, %d events in every node's log; longest time without an acknowledged append: %v", len(ack), logLen, gap.Round(time.Millisecond))
}

// sameLogs waits until every node's log holds at least want events and
// all are the same, gapless, and returns their length. A write whose
// caller gave up may reach the log after a first node was read, so the
// nodes are read again until they agree, for up to a minute.
func sameLogs(t *testing.T, nodes []*clusterNode, want int) int {
	t.Helper()
	stores := make([]*cairn.Store, len(nodes))
	for i, n := range nodes {
		stores[i] = openRemote(t, n.url())
	}
	deadline := time.Now().Add(time.Minute)
	for {
		h0, n0 := waitLog(t, stores[0], want)
		same := true
		for i := 1; i < len(stores) && same; i++ {
			h, n := waitLog(t, stores[i], want)
			if h != h0 {
				if time.Now().After(deadline) {
					t.Fatalf("node %d holds another log (%d events) than node 0 (%d)", i, n, n0)
				}
				same = false
			}
		}
		if same {
			return n0
		}
	}
}

// waitLog waits until the node's log holds at least want events and stays
// the same for a moment, and returns its hash (every event's position,
// stream, version, id, type, data, metadata, tags and time) and length,
// checking that it is gapless.
func waitLog(t *testing.T, s *cairn.Store, want int) (string, int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for {
		h := sha256.New()
		n := 0
		for e, err := range s.All(context.Background(), 0, cairn.Forward) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Position != uint64(n) {
				t.Fatalf("position %d after %d events: the log has a gap", e.Position, n)
			}
			fmt.Fprintf(h, "%d %q %d %s %q %x %x %q %d\n", e.Position, e.StreamID, e.Version, e.ID, e.Type, e.Data, e.Metadata, e.Tags, e.Created.UnixMicro())
			n++
		}
		sum := hex.EncodeToString(h.Sum(nil))
		if n >= want && sum == last {
			return sum, n
		}
		last = sum
		if time.Now().After(deadline) {
			t.Fatalf("the node holds %d events, %d were acknowledged", n, want)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// A new node starts from a backup of another node, as docs/cluster.md
// says: `cairn backup --server` of a serving node, `cairn restore` into the
// new node's DIR/node/store, then `cairn serve --data DIR --nats-embedded`
// routed to the others. It goes on from the backup's mark: it ends with
// the same log as the others, each event once, the writes made after the
// backup included; a query by type and tag reads them; and it has a node
// id of its own.
func TestClusterNodeFromBackup(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of cairn processes")
	}
	nodes := startCluster(t)
	ctx := context.Background()
	appendTo := func(s *cairn.Store, n int) {
		t.Helper()
		for i := range n {
			ev := cairn.EventData{Type: "E", Data: []byte(`{}`), Tags: []string{fmt.Sprint("k:", i%2)}}
			if _, err := s.Append(ctx, fmt.Sprint("b-", i%3), cairn.Any, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendTo(openRemote(t, nodes[0].url()), 20)
	dest := filepath.Join(t.TempDir(), "backups")
	if _, errOut := mustCairn(t, "backup", dest, "--server", "cairn://admin:changeit@"+nodes[0].grpc); !strings.Contains(errOut, "holds generation 1") {
		t.Fatalf("backup --server of a node printed %q", errOut)
	}
	appendTo(openRemote(t, nodes[1].url()), 10)

	n := &clusterNode{dir: filepath.Join(t.TempDir(), "n3"), grpc: freeAddr(t), http: freeAddr(t), nats: freeAddr(t), route: freeAddr(t)}
	for _, o := range nodes {
		n.routes = append(n.routes, o.route)
	}
	mustCairn(t, "restore", dest, filepath.Join(n.dir, "node", "store"))
	n.start(t, cairnBinary(t))
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("the new node logged:\n%s", n.logs)
		}
	})
	n.waitHealthy(t)
	s3 := openRemote(t, n.url())
	h3, c3 := waitLog(t, s3, 30)
	h0, c0 := waitLog(t, openRemote(t, nodes[0].url()), 30)
	if c3 != c0 || h3 != h0 { // the log holds the built-in users' events too
		t.Fatalf("the new node holds %d events (hash %s), node 0 %d (%s)", c3, h3[:12], c0, h0[:12])
	}
	evs, err := s3.ReadQuery(ctx, cairn.Query{Items: []cairn.QueryItem{{Types: []string{"E"}, Tags: []string{"k:1"}}}}, 0, 100, cairn.Forward)
	if err != nil || len(evs) != 10+5 {
		t.Fatalf("the new node's query of k:1: %d events, %v; want 15", len(evs), err)
	}
	id0, err0 := os.ReadFile(filepath.Join(nodes[0].dir, "node", "node-id"))
	id3, err3 := os.ReadFile(filepath.Join(n.dir, "node", "node-id"))
	if err0 != nil || err3 != nil || string(id0) == string(id3) {
		t.Fatalf("node ids %q (%v) and %q (%v): want two", id0, err0, id3, err3)
	}
}
