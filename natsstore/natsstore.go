package natsstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DB is one node of a cairn cluster: a [cairn.Backend] whose writes go
// through the cluster's log, a JetStream stream, and whose reads come from
// the node's own copy, an embedded engine ([diskstore.DB]) into which the
// node applies the log in order.
//
// # Writes
//
// A write (an append, a batch, a delete, a truncation, a snapshot, a
// commit with projections, a compaction) is queued to the node's writer,
// which logs the writes waiting at that moment as one record, published
// with the record's id as its JetStream message id so that a publish
// retried after a lost acknowledgement is not logged twice. The call
// returns once the node has applied that record, with the outcome the
// apply decided: expected versions, retries by event ID and tombstones are
// checked when the record is applied, against the copy as it is at that
// point of the log, so every node decides the same.
//
// # Reads
//
// Reads come from the node's copy, which holds every write this node
// acknowledged (a caller reads its own writes) and may lag writes made
// through other nodes. [DB.Sync] waits until the copy holds every record
// the log held when it was called: a read after it sees every write
// acknowledged anywhere before.
//
// # Durability
//
// A write is acknowledged once the log holds it (JetStream acknowledges a
// publish once a majority of the stream's replicas stored it; run NATS
// with sync_interval: always for that to survive power loss) and the
// node's copy has applied it, which its readers then see. The log is what
// makes the write durable: the copy is synced in the background
// (diskstore.Options.VisibleBeforeSync), at most every 10 ms. The copy
// stores the sequence of the last record applied in the same frame as
// that record's writes, and its index never holds more than its synced
// log, so a node that restarts, even after a power loss, goes on from the
// record after the last its copy holds durably: never applying one twice,
// never skipping one, applying again what the copy lost. The node reports
// that durable sequence ([DB.Applied]) for trimming the log.
//
// # Concurrency
//
// A DB is safe for concurrent use. The applier goroutine reads the log
// and hands each record to the copy's committer without waiting; the
// completer goroutine waits for each, in order, until the copy applied
// it, then publishes the sequence applied, answers the node's writers and
// notifies; a third goroutine waits for each until the copy holds it
// durably, and publishes the durable sequence. The writer
// goroutine forms records; each is published from a goroutine of its own,
// a few at a time.
type DB struct {
	local *diskstore.DB
	// reclaims gives the log's space back after each compaction.
	reclaims *reclaims
	nc       *nats.Conn
	ownNC    bool
	js       jetstream.JetStream
	st       jetstream.Stream
	kv       jetstream.KeyValue
	opts     Options
	lg       *slog.Logger
	id       string // the node's id
	max      int    // the most bytes a record may hold

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// The writer.
	queue      chan *op
	inflight   chan struct{} // a token per record being published
	released   chan struct{} // signalled when a record's publish ends
	committing chan struct{} // a token held by the node's CommitAll under way
	closing    atomic.Bool
	leave      atomic.Bool  // Close removes the node from the registry
	closeMu    sync.RWMutex // held shared by callers queueing; Close takes it to close queue (a leaf)

	// The applier's state. appliedMu guards applied, waiters, halted and
	// pending; it is a leaf.
	appliedMu sync.Mutex
	applied   uint64            // the last sequence applied, which readers see
	durable   atomic.Uint64     // the last sequence the copy holds durably (<= applied)
	waiters   []waiter          // callers waiting for a sequence
	halted    error             // why the applier stopped, if it did
	pending   map[string]*batch // records of this node's writer, by id
	nextSeq   atomic.Uint64     // the sequence the applier reads next
	logged    atomic.Uint64     // a sequence the log is known to hold

	// The applier's consumers of the log: their names' prefix and count
	// (the applier's alone).
	consumerName string
	consumers    int
	notifiers    notifiers
}

var (
	_ cairn.Backend         = (*DB)(nil)
	_ cairn.SizedReader     = (*DB)(nil)
	_ cairn.BatchAppender   = (*DB)(nil)
	_ cairn.Truncater       = (*DB)(nil)
	_ cairn.Tombstoner      = (*DB)(nil)
	_ cairn.Compacter       = (*DB)(nil)
	_ cairn.DiskSizer       = (*DB)(nil)
	_ cairn.HealthChecker   = (*DB)(nil)
	_ cairn.Snapshotter     = (*DB)(nil)
	_ cairn.TxCommitter     = (*DB)(nil)
	_ cairn.ReadModelReader = (*DB)(nil)
	_ cairn.IndexReader     = (*DB)(nil)
	_ cairn.Querier         = (*DB)(nil)
	_ cairn.Notifier        = (*DB)(nil)
	_ cairn.Syncer          = (*DB)(nil)
	_ cairn.Cluster         = (*DB)(nil)
)

// ErrHalted is matched by the errors of a node whose applier stopped: a
// record it could not apply (its copy's disk failed, or the record came
// from a newer cairn), or a log trimmed past what it applied. Writes and
// Sync fail; reads serve what the copy holds. The error says what to do.
var ErrHalted = errors.New("natsstore: the node stopped applying the log")

// Open opens the node in opts.Dir, connects to NATS, creates the log's
// stream and the cluster's registry if they do not exist, and starts
// applying the log from the record after the last one the copy holds.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if err := opts.ensureDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("natsstore: %w", err)
	}
	id, err := nodeID(&opts)
	if err != nil {
		return nil, err
	}
	local, err := diskstore.Open(filepath.Join(opts.Dir, "store"), diskstore.Options{NoSync: opts.NoSync, Logger: opts.Logger,
		// The log holds every record durably: the copy is answered as
		// applied before it syncs, and synced behind (see completeLoop).
		VisibleBeforeSync: true, SyncInterval: copySyncInterval})
	if err != nil {
		return nil, fmt.Errorf("natsstore: the node's copy: %w", err)
	}
	d := &DB{local: local, opts: opts, lg: opts.Logger, id: id, pending: map[string]*batch{}, reclaims: newReclaims(opts.Dir, opts.Logger)}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if err := d.connect(ctx); err != nil {
		d.cancel()
		if d.ownNC && d.nc != nil {
			d.nc.Close()
		}
		return nil, errors.Join(err, local.Close())
	}
	d.queue = make(chan *op, 4096)
	d.inflight = make(chan struct{}, maxInflight)
	d.committing = make(chan struct{}, 1)
	d.released = make(chan struct{}, 1)
	d.wg.Go(d.writeLoop)
	d.wg.Go(d.reportLoop)
	if opts.TrimEvery > 0 {
		d.wg.Go(d.trimLoop)
	}
	return d, nil
}

// copySyncInterval is the least time between two syncs of a node's copy
// in the background (diskstore.Options.SyncInterval).
const copySyncInterval = 10 * time.Millisecond

// maxInflight bounds the records a node's writer has published and not
// yet seen acknowledged.
const maxInflight = 8

// nodeID returns the node's id: the one given, or the one kept in the
// node's directory (created the first time).
func nodeID(opts *Options) (string, error) {
	if opts.NodeID != "" {
		return opts.NodeID, nil
	}
	path := filepath.Join(opts.Dir, "node-id")
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("natsstore: %w", err)
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	id := "node-" + hex.EncodeToString(r[:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("natsstore: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("natsstore: %w", err)
	}
	return id, nil
}

// pingInterval is how often a node's own NATS connection pings its server.
const pingInterval = 2 * time.Second

// connect dials NATS, makes sure the stream and registry exist, and starts
// the applier after the copy's last record.
func (d *DB) connect(ctx context.Context) error {
	if d.opts.Conn != nil {
		d.nc = d.opts.Conn
	} else {
		// Pings every pingInterval: a connection to a server cut off by
		// the network (no reset, no error, only silence) is given up
		// after two unanswered ones, for another server, instead of
		// after nats.go's default of minutes.
		o := append([]nats.Option{nats.Name("cairn " + d.id), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
			nats.PingInterval(pingInterval), nats.MaxPingsOutstanding(2)}, d.opts.NATSOptions...)
		nc, err := nats.Connect(d.opts.URL, o...)
		if err != nil {
			return fmt.Errorf("natsstore: connect to %s: %w", d.opts.URL, err)
		}
		d.nc, d.ownNC = nc, true
	}
	d.max = int(d.nc.MaxPayload())
	if d.opts.MaxRecordBytes > 0 && d.opts.MaxRecordBytes < d.max {
		d.max = d.opts.MaxRecordBytes
	}
	js, err := jetstream.New(d.nc)
	if err != nil {
		return fmt.Errorf("natsstore: %w", err)
	}
	d.js = js
	// The cluster may still be electing its JetStream leader: try again
	// until ctx ends.
	err = retry(ctx, func(ctx context.Context) error {
		d.st, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        d.opts.Stream,
			Description: "the log of a cairn cluster: one record per write group",
			Subjects:    []string{d.opts.subject()},
			Storage:     jetstream.FileStorage,
			Replicas:    d.opts.Replicas,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardNew,
			Duplicates:  2 * time.Minute,
			DenyDelete:  true,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			d.st, err = js.Stream(ctx, d.opts.Stream)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("natsstore: the log's stream %s: %w", d.opts.Stream, err)
	}
	if subj := d.st.CachedInfo().Config.Subjects; len(subj) != 1 || subj[0] != d.opts.subject() {
		return fmt.Errorf("natsstore: stream %s takes subjects %v, not the log's %s: it is not a cairn log", d.opts.Stream, subj, d.opts.subject())
	}
	err = retry(ctx, func(ctx context.Context) error {
		d.kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      d.opts.bucket(),
			Description: "the nodes of a cairn cluster",
			Storage:     jetstream.FileStorage,
			Replicas:    d.opts.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			d.kv, err = js.KeyValue(ctx, d.opts.bucket())
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("natsstore: the cluster's registry %s: %w", d.opts.bucket(), err)
	}
	m, ok, err := d.local.Mark(ctx)
	if err != nil {
		return fmt.Errorf("natsstore: the node's copy: %w", err)
	}
	if ok {
		if d.applied, err = decodeMark(m); err != nil {
			return err
		}
	}
	d.durable.Store(d.applied)
	rev, joined, err := d.register(ctx)
	if err != nil {
		return err
	}
	d.nextSeq.Store(d.applied + 1)
	if err := d.startApplier(ctx); err != nil {
		if joined {
			// A node that joined only now and cannot apply the log (it
			// was trimmed past it, the credentials may not read it)
			// leaves: an entry of it would hold trimming back for good.
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if derr := d.kv.Delete(uctx, d.id, jetstream.LastRevision(rev)); derr != nil {
				err = errors.Join(err, fmt.Errorf("natsstore: removing node %s from the cluster's registry (remove it with cairn nodes forget): %w", d.id, derr))
			}
		}
		return err
	}
	return nil
}

// retry calls fn until it succeeds with backoff, while ctx lasts, trying
// each time for at most 5 seconds.
func retry(ctx context.Context, fn func(context.Context) error) error {
	return retryEvery(ctx, 5*time.Second, time.Second, fn)
}

// retryEvery calls fn until it succeeds, while ctx lasts, giving each try
// at most attempt and waiting between tries from 50 ms up to most.
func retryEvery(ctx context.Context, attempt, most time.Duration, fn func(context.Context) error) error {
	wait := min(50*time.Millisecond, most)
	for {
		tctx, cancel := context.WithTimeout(ctx, attempt)
		err := fn(tctx)
		cancel()
		if err == nil {
			return nil
		}
		if !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, most)
	}
}

// transient reports whether err may pass when tried again: NATS has no
// JetStream leader or quorum at the moment, or did not answer in time.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeJetStreamNotEnabled, jetstream.JSErrCodeJetStreamNotEnabledForAccount,
			// The NATS servers' own codes while a cluster forms or elects:
			// no suitable peers for placement (10005), cluster not active
			// (10006) or not available (10008), insufficient resources
			// (10023), stream offline (10118); a message id that the
			// stream is still storing from an earlier publish (10158).
			10005, 10006, 10008, 10023, 10118, 10158:
			return true
		}
		return apiErr.Code == 503 || apiErr.Code == 500 || apiErr.Code == 408
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, jetstream.ErrNoHeartbeat)
}

// Local returns the node's copy, for reads of engine-specific features.
// Writing to it directly would set it apart from the cluster's.
func (d *DB) Local() *diskstore.DB { return d.local }

// NodeID returns the node's id in the cluster.
func (d *DB) NodeID() string { return d.id }

// Close stops the node: it fails the writes not yet logged, stops applying
// the log, and closes the copy and the connection it dialled. A node's
// entry stays in the registry, so that the log is not trimmed past what it
// applied while it is down (unless [DB.LeaveOnClose]). Calls after Close
// fail with [cairn.ErrClosed].
func (d *DB) Close() error {
	if d.closing.Swap(true) {
		return cairn.ErrClosed
	}
	// Cancel first: publishes in flight give up, and the writer fails
	// what is queued, so that callers blocked queueing get through.
	d.cancel()
	d.closeMu.Lock()
	close(d.queue)
	d.closeMu.Unlock()
	d.wg.Wait()
	d.notifiers.closeAll()
	d.appliedMu.Lock()
	for _, w := range d.waiters {
		close(w.ch)
	}
	d.waiters = nil
	for _, b := range d.pending {
		b.fail(cairn.ErrClosed)
	}
	clear(d.pending)
	d.appliedMu.Unlock()
	err := d.local.Close()
	if d.leave.Load() {
		// The reports stopped with the goroutines above.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if ferr := d.Forget(ctx, d.id); ferr != nil {
			err = errors.Join(err, fmt.Errorf("natsstore: removing node %s from the cluster's registry (remove it with DB.Forget): %w", d.id, ferr))
		}
		cancel()
	}
	if d.ownNC {
		d.nc.Close()
	}
	return err
}

// LeaveOnClose makes Close remove the node from the cluster's registry,
// for a node that will not return (a benchmark's, a tool's): trimming no
// longer waits for it. Its directory can then go on only while the log
// still holds the record after its last, as a new node's (see [DB.Trim]).
func (d *DB) LeaveOnClose() { d.leave.Store(true) }

// Health returns nil when the node can serve reads and writes: its copy is
// healthy, its applier runs, and it is connected to NATS.
func (d *DB) Health(ctx context.Context) error {
	if d.closing.Load() {
		return cairn.ErrClosed
	}
	if err := d.haltedErr(); err != nil {
		return err
	}
	if !d.nc.IsConnected() {
		return fmt.Errorf("natsstore: not connected to NATS (%s)", d.nc.Status())
	}
	return d.local.Health(ctx)
}

// DiskBytes implements [cairn.DiskSizer]: the size of the node's copy.
func (d *DB) DiskBytes(ctx context.Context) (int64, error) {
	if d.closing.Load() {
		return 0, cairn.ErrClosed
	}
	return d.local.DiskBytes(ctx)
}
