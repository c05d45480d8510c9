package natsstore_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/freeport"
	"github.com/cairndb/cairn/natsstore"
)

// The tests share one NATS cluster of three embedded servers, started by
// TestMain; each test makes its own log (a stream of its own name) on it.

var (
	servers   []*natsstore.Server
	serverOpt []natsstore.ServerOptions
	natsURLs  []string
	streamSeq atomic.Int64
)

// freeAddrs are n free loopback addresses for the test cluster's servers.
func freeAddrs(n int) []string {
	var addrs []string
	for len(addrs) < n {
		addr, err := freeport.Addr()
		if err != nil {
			panic(err)
		}
		if !slices.Contains(addrs, addr) {
			addrs = append(addrs, addr)
		}
	}
	return addrs
}

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		// Fuzzing (and its workers) needs no NATS.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "natsstore-test")
	if err != nil {
		panic(err)
	}
	addrs := freeAddrs(6)
	for i := range 3 {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, addrs[3+j])
			}
		}
		o := natsstore.ServerOptions{
			Name:          fmt.Sprintf("n%d", i+1),
			Dir:           filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			Listen:        addrs[i],
			ClusterListen: addrs[3+i],
			Routes:        routes,
			NoSync:        true,
		}
		serverOpt = append(serverOpt, o)
	}
	for _, o := range serverOpt {
		s, err := natsstore.StartServer(o)
		if err != nil {
			panic(err)
		}
		servers = append(servers, s)
		natsURLs = append(natsURLs, s.ClientURL())
	}
	code := m.Run()
	for _, s := range servers {
		s.Shutdown()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// newStream returns a stream name no other test uses.
func newStream() string { return fmt.Sprintf("T%d_%d", os.Getpid(), streamSeq.Add(1)) }

// openNode opens a node of the log stream, connected to NATS server i
// (and the others, should it fail).
func openNode(t testing.TB, dir, stream string, i int, mod ...func(*natsstore.Options)) *natsstore.DB {
	t.Helper()
	db, err := open(dir, stream, i, mod...)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func open(dir, stream string, i int, mod ...func(*natsstore.Options)) (*natsstore.DB, error) {
	urls := append([]string{natsURLs[i%len(natsURLs)]}, natsURLs...)
	o := natsstore.Options{Dir: dir, URL: strings.Join(urls, ","), Stream: stream, NoSync: true, TrimEvery: -1, ReportEvery: 200 * time.Millisecond}
	for _, f := range mod {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return natsstore.Open(ctx, o)
}

// clusterPool makes clusters of three nodes (each of a log of its own)
// ahead of the tests that take them: a cluster's setup (the log's stream
// and the registry, replicated three times, and three nodes) is mostly
// waiting on NATS, so that making the next while a test runs saves most
// of it. Each cluster is fresh and empty, as if newCluster made it.
type clusterPool struct {
	ready chan readyCluster
	stop  chan struct{}
	done  chan struct{}
}

type readyCluster struct {
	nodes  []*natsstore.DB
	stream string
	dir    string
	err    error
}

// newClusterPool starts making clusters, ahead clusters ahead of the
// tests that take them; t's cleanup stops it and closes those not taken.
func newClusterPool(t testing.TB, ahead int) *clusterPool {
	p := &clusterPool{ready: make(chan readyCluster, ahead-1), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			c := makeCluster()
			select {
			case p.ready <- c:
			case <-p.stop:
				c.close()
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(p.stop)
		<-p.done
		for {
			select {
			case c := <-p.ready:
				c.close()
			default:
				return
			}
		}
	})
	return p
}

// take returns the next cluster; t's cleanup closes its nodes and removes
// their directories.
func (p *clusterPool) take(t testing.TB) []*natsstore.DB {
	t.Helper()
	c := <-p.ready
	t.Cleanup(c.close)
	if c.err != nil {
		t.Fatal(c.err)
	}
	return c.nodes
}

func makeCluster() readyCluster {
	c := readyCluster{stream: newStream()}
	c.dir, c.err = os.MkdirTemp("", "natsstore-cluster")
	if c.err != nil {
		return c
	}
	for i := range 3 {
		db, err := open(filepath.Join(c.dir, fmt.Sprint("n", i)), c.stream, i)
		if err != nil {
			c.err = err
			return c
		}
		c.nodes = append(c.nodes, db)
	}
	return c
}

func (c readyCluster) close() {
	for _, d := range c.nodes {
		_ = d.Close()
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// cluster is three nodes of one log, each on its own NATS server.
func newCluster(t testing.TB) ([]*natsstore.DB, string) {
	t.Helper()
	stream := newStream()
	var nodes []*natsstore.DB
	for i := range 3 {
		db := openNode(t, t.TempDir(), stream, i)
		t.Cleanup(func() { _ = db.Close() })
		nodes = append(nodes, db)
	}
	return nodes, stream
}

// spread is a backend whose calls go to the nodes of a cluster in turn:
// each write to the next node, and each read to the next node after it
// synced (so that it sees every write acknowledged before). The
// conformance suite run on it checks that the nodes together behave as
// one store.
//
// A node that synced when no write through the spread was under way, and
// none began since, holds every write: it reads without syncing again.
// (Every write of the suite goes through the spread; a notification, which
// may come before its write returns, counts as a write under way.)
type spread struct {
	nodes    []*natsstore.DB
	n        atomic.Uint64
	started  atomic.Uint64   // writes begun
	returned atomic.Uint64   // writes returned
	synced   []atomic.Uint64 // by node: 1 + started when it last synced with no write under way
}

func newSpread(nodes []*natsstore.DB) *spread {
	return &spread{nodes: nodes, synced: make([]atomic.Uint64, len(nodes))}
}

func (s *spread) next() *natsstore.DB { return s.nodes[s.n.Add(1)%uint64(len(s.nodes))] }

// write counts a write that begins; the function it returns, one that
// returned.
func (s *spread) write() func() {
	s.started.Add(1)
	return func() { s.returned.Add(1) }
}

// reader returns the next node, synced.
func (s *spread) reader(ctx context.Context) (*natsstore.DB, error) {
	i := s.n.Add(1) % uint64(len(s.nodes))
	d := s.nodes[i]
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.synced[i].Load() == s.started.Load()+1 {
		return d, nil
	}
	r := s.returned.Load()
	w := s.started.Load()
	if err := d.Sync(ctx); err != nil {
		return nil, err
	}
	if w == r { // no write was under way
		s.synced[i].Store(w + 1)
	} else {
		s.synced[i].Store(0)
	}
	return d, nil
}

func (s *spread) Append(ctx context.Context, stream string, expected cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	defer s.write()()
	return s.next().Append(ctx, stream, expected, events)
}

func (s *spread) AppendBatch(ctx context.Context, reqs []cairn.AppendRequest) ([]cairn.AppendResult, error) {
	defer s.write()()
	return s.next().AppendBatch(ctx, reqs)
}

func (s *spread) CommitAll(ctx context.Context, req cairn.AppendRequest, ps []cairn.Projection) (cairn.AppendResult, error) {
	defer s.write()()
	return s.next().CommitAll(ctx, req, ps)
}

func (s *spread) DeleteStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	defer s.write()()
	return s.next().DeleteStream(ctx, stream, expected)
}

func (s *spread) TombstoneStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	defer s.write()()
	return s.next().TombstoneStream(ctx, stream, expected)
}

func (s *spread) TruncateStream(ctx context.Context, stream string, before int64) error {
	defer s.write()()
	return s.next().TruncateStream(ctx, stream, before)
}

func (s *spread) CommitSnapshot(ctx context.Context, snap cairn.Snapshot) error {
	defer s.write()()
	return s.next().CommitSnapshot(ctx, snap)
}

func (s *spread) Compact(ctx context.Context) error {
	defer s.write()()
	return s.next().Compact(ctx)
}

func (s *spread) ReadStream(ctx context.Context, stream string, from int64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	d, err := s.reader(ctx)
	if err != nil {
		return nil, err
	}
	return d.ReadStream(ctx, stream, from, count, dir)
}

func (s *spread) ReadStreamSized(ctx context.Context, stream string, from int64, count, maxBytes int, dir cairn.Direction) ([]cairn.Event, error) {
	d, err := s.reader(ctx)
	if err != nil {
		return nil, err
	}
	return d.ReadStreamSized(ctx, stream, from, count, maxBytes, dir)
}

func (s *spread) ReadAll(ctx context.Context, from uint64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	d, err := s.reader(ctx)
	if err != nil {
		return nil, err
	}
	return d.ReadAll(ctx, from, count, dir)
}

func (s *spread) ReadAllSized(ctx context.Context, from uint64, count, maxBytes int, dir cairn.Direction) ([]cairn.Event, error) {
	d, err := s.reader(ctx)
	if err != nil {
		return nil, err
	}
	return d.ReadAllSized(ctx, from, count, maxBytes, dir)
}

func (s *spread) StreamVersion(ctx context.Context, stream string) (int64, error) {
	d, err := s.reader(ctx)
	if err != nil {
		return 0, err
	}
	return d.StreamVersion(ctx, stream)
}

func (s *spread) StreamExists(ctx context.Context, stream string) (bool, error) {
	d, err := s.reader(ctx)
	if err != nil {
		return false, err
	}
	return d.StreamExists(ctx, stream)
}

func (s *spread) HasEvents(ctx context.Context) (bool, error) {
	d, err := s.reader(ctx)
	if err != nil {
		return false, err
	}
	return d.HasEvents(ctx)
}

func (s *spread) ListStreams(ctx context.Context, after string, limit int) ([]string, error) {
	d, err := s.reader(ctx)
	if err != nil {
		return nil, err
	}
	return d.ListStreams(ctx, after, limit)
}

func (s *spread) GetSnapshot(ctx context.Context, stream string, min, max int64) (cairn.Snapshot, bool, error) {
	d, err := s.reader(ctx)
	if err != nil {
		return cairn.Snapshot{}, false, err
	}
	return d.GetSnapshot(ctx, stream, min, max)
}

func (s *spread) ReadModelGet(ctx context.Context, table, key string) ([]byte, bool, error) {
	d, err := s.reader(ctx)
	if err != nil {
		return nil, false, err
	}
	return d.ReadModelGet(ctx, table, key)
}

func (s *spread) ReadModelScan(ctx context.Context, table, prefix, after string, limit int) ([]cairn.Entry, error) {
	d, err := s.reader(ctx)
	if err != nil {
		return nil, err
	}
	return d.ReadModelScan(ctx, table, prefix, after, limit)
}

func (s *spread) ReadIndex(ctx context.Context, key cairn.IndexKey, from int64, count int, dir cairn.Direction) ([]cairn.IndexedEvent, error) {
	d, err := s.reader(ctx)
	if err != nil {
		return nil, err
	}
	return d.ReadIndex(ctx, key, from, count, dir)
}

func (s *spread) ReadQuery(ctx context.Context, q cairn.Query, from uint64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	d, err := s.reader(ctx)
	if err != nil {
		return nil, err
	}
	return d.ReadQuery(ctx, q, from, count, dir)
}

func (s *spread) DiskBytes(ctx context.Context) (int64, error) { return s.next().DiskBytes(ctx) }
func (s *spread) Health(ctx context.Context) error             { return s.next().Health(ctx) }

// Notify registers with the first node: it applies every node's writes.
func (s *spread) Notify(fn func(uint64)) func() { return s.nodes[0].Notify(fn) }

func (s *spread) Close() error {
	var first error
	for _, d := range s.nodes {
		if err := d.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

var (
	_ cairn.Backend         = (*spread)(nil)
	_ cairn.SizedReader     = (*spread)(nil)
	_ cairn.BatchAppender   = (*spread)(nil)
	_ cairn.Truncater       = (*spread)(nil)
	_ cairn.Tombstoner      = (*spread)(nil)
	_ cairn.Compacter       = (*spread)(nil)
	_ cairn.DiskSizer       = (*spread)(nil)
	_ cairn.HealthChecker   = (*spread)(nil)
	_ cairn.Snapshotter     = (*spread)(nil)
	_ cairn.TxCommitter     = (*spread)(nil)
	_ cairn.ReadModelReader = (*spread)(nil)
	_ cairn.IndexReader     = (*spread)(nil)
	_ cairn.Querier         = (*spread)(nil)
	_ cairn.Notifier        = (*spread)(nil)
)
