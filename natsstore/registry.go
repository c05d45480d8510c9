package natsstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Registry is a cluster's registry of nodes and its log, opened without
// being a node: no copy of the log, no entry of its own. It serves tools
// that look after a cluster: listing its nodes, seeing which one holds
// the log's trimming back, and forgetting a node that is gone for good.
type Registry struct {
	nc    *nats.Conn
	ownNC bool
	st    jetstream.Stream
	kv    jetstream.KeyValue
	every time.Duration
}

// ErrNoCluster is matched by the error of [OpenRegistry] when the NATS
// servers hold no cairn cluster's log under the stream's name.
var ErrNoCluster = errors.New("natsstore: no cairn cluster")

// OpenRegistry connects to the cluster's NATS servers and opens its
// registry and log. It uses URL (or Conn), NATSOptions, Stream and
// ReportEvery (the nodes' period, which says which are alive) of opts;
// Dir is not needed. It creates nothing: a cluster whose nodes never ran
// is an error matching [ErrNoCluster].
func OpenRegistry(ctx context.Context, opts Options) (*Registry, error) {
	if opts.URL == "" && opts.Conn == nil {
		return nil, fmt.Errorf("natsstore: no NATS servers to connect to (Options.URL)")
	}
	if opts.Stream == "" {
		opts.Stream = "CAIRN"
	}
	if !streamName.MatchString(opts.Stream) {
		return nil, fmt.Errorf("natsstore: stream name %q: use 1 to 64 letters, digits, '-' or '_'", opts.Stream)
	}
	if opts.ReportEvery <= 0 {
		opts.ReportEvery = time.Second
	}
	r := &Registry{nc: opts.Conn, every: opts.ReportEvery}
	if r.nc == nil {
		nc, err := nats.Connect(opts.URL, append([]nats.Option{nats.Name("cairn registry")}, opts.NATSOptions...)...)
		if err != nil {
			return nil, fmt.Errorf("natsstore: connect to %s: %w", opts.URL, err)
		}
		r.nc, r.ownNC = nc, true
	}
	err := r.open(ctx, opts)
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Registry) open(ctx context.Context, opts Options) error {
	js, err := jetstream.New(r.nc)
	if err != nil {
		return fmt.Errorf("natsstore: %w", err)
	}
	// The cluster may still be electing its JetStream leader: try again
	// until ctx ends (but not when the stream does not exist).
	err = retry(ctx, func(ctx context.Context) error {
		r.st, err = js.Stream(ctx, opts.Stream)
		return err
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: the NATS servers at %s have no stream %s, the log of a cluster (has a node run with stream=%s?)", ErrNoCluster, r.nc.ConnectedUrlRedacted(), opts.Stream, opts.Stream)
	}
	if err != nil {
		return fmt.Errorf("natsstore: the log's stream %s: %w", opts.Stream, err)
	}
	if subj := r.st.CachedInfo().Config.Subjects; len(subj) != 1 || subj[0] != opts.subject() {
		return fmt.Errorf("%w: stream %s takes subjects %v, not the log's %s", ErrNoCluster, opts.Stream, subj, opts.subject())
	}
	err = retry(ctx, func(ctx context.Context) error {
		r.kv, err = js.KeyValue(ctx, opts.bucket())
		return err
	})
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("%w: stream %s has no registry of nodes beside it (%s)", ErrNoCluster, opts.Stream, opts.bucket())
	}
	if err != nil {
		return fmt.Errorf("natsstore: the cluster's registry %s: %w", opts.bucket(), err)
	}
	return nil
}

// Close closes the connection, if OpenRegistry dialled it.
func (r *Registry) Close() {
	if r.ownNC {
		r.nc.Close()
	}
}

// Nodes returns the nodes of the registry, by id: every node that joined
// and was not removed.
func (r *Registry) Nodes(ctx context.Context) ([]Node, error) {
	return readNodes(ctx, r.kv, r.every)
}

// LogState is what the cluster's log holds.
type LogState struct {
	// First is the sequence of the first record the log holds: trimming
	// removed those before it. Last is the sequence of the last record
	// logged.
	First, Last uint64
	// Records is how many records it holds, Bytes their size.
	Records, Bytes uint64
}

// Log returns what the cluster's log holds now.
func (r *Registry) Log(ctx context.Context) (LogState, error) {
	info, err := r.st.Info(ctx)
	if err != nil {
		return LogState{}, fmt.Errorf("natsstore: the log's stream: %w", err)
	}
	s := info.State
	return LogState{First: s.FirstSeq, Last: s.LastSeq, Records: s.Msgs, Bytes: s.Bytes}, nil
}

// ErrNodeAlive is matched by the error of [Registry.Forget] for a node
// that reported within its last three periods.
var ErrNodeAlive = errors.New("natsstore: node is alive")

// ErrUnknownNode is matched by the error of [Registry.Forget] for an id
// the registry does not hold.
var ErrUnknownNode = errors.New("natsstore: no such node")

// Forget removes a node that is gone for good from the registry, so that
// it no longer holds the log's trimming back (see [DB.Trim]) and gossip
// no longer reports it. It refuses a node that is alive, which would
// register again within a second: stop it first. A forgotten node that
// starts again registers again, and catches up from its copy if the log
// still holds the records after it; if the log was trimmed past it, it
// refuses to start ([ErrHalted]) and must be restored from a backup.
func (r *Registry) Forget(ctx context.Context, id string) error {
	e, err := r.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		ns, err := r.Nodes(ctx)
		if err != nil {
			return err
		}
		ids := make([]string, len(ns))
		for i, n := range ns {
			ids[i] = n.ID
		}
		return fmt.Errorf("%w: the registry holds no node %q (it holds %v)", ErrUnknownNode, id, ids)
	}
	if err != nil {
		return err
	}
	alive := func(ago time.Duration) error {
		return fmt.Errorf("%w: %s reported %v ago; stop it first, and forget it once it has not reported for %v", ErrNodeAlive, id, ago.Round(time.Millisecond), aliveWithin(r.every))
	}
	if ago := time.Since(e.Created()); ago < aliveWithin(r.every) {
		return alive(ago)
	}
	// Only the entry read: a node that reports meanwhile is alive.
	err = r.kv.Delete(ctx, id, jetstream.LastRevision(e.Revision()))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return alive(0)
	}
	return err
}
