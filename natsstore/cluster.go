package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cairndb/cairn"
	"github.com/nats-io/nats.go/jetstream"
)

// The cluster's registry: a JetStream key-value bucket beside the log, one
// entry per node, which each node rewrites every Options.ReportEvery. It
// serves gossip (who the nodes are, where clients reach them, whether they
// are alive) and trimming (the lowest sequence every node applied).

// Node is one node of the cluster, as the registry reports it.
type Node struct {
	// ID names the node.
	ID string `json:"id"`
	// Address is where clients reach the node's server (host:port); empty
	// for a node that serves no clients.
	Address string `json:"address,omitempty"`
	// Applied is the sequence of the last record of the log the node's
	// copy held durably when it last reported (see [DB.Applied]).
	Applied uint64 `json:"applied"`
	// Reported is when it last reported: when the registry stored its
	// entry.
	Reported time.Time `json:"reported"`
	// Records is the kinds of records of the log the node's build applies:
	// [RecordsPurgeSteps] when it applies a compaction logged as steps of
	// its purge; 0 for a build before (which logged, and applies, a
	// compaction only as one record).
	Records int `json:"records,omitempty"`
	// Alive is set when it reported within the last three periods.
	Alive bool `json:"-"`
	// Self is set for the node that was asked.
	Self bool `json:"-"`
}

// RecordsPurgeSteps is the [Node.Records] of a build that applies a
// compaction logged as steps of its purge.
const RecordsPurgeSteps = 2

// report writes the node's entry in the registry.
func (d *DB) report(ctx context.Context) error {
	b, err := d.entry()
	if err != nil {
		return err
	}
	return retry(ctx, func(ctx context.Context) error {
		_, err := d.kv.Put(ctx, d.id, b)
		return err
	})
}

// register reports the node as it opens, and tells whether it joined the
// registry only now (the registry held no entry of it), with the revision
// of the entry written. A try whose answer was lost counts as not joined.
func (d *DB) register(ctx context.Context) (rev uint64, joined bool, err error) {
	b, err := d.entry()
	if err != nil {
		return 0, false, err
	}
	err = retry(ctx, func(ctx context.Context) error {
		var err error
		rev, err = d.kv.Create(ctx, d.id, b)
		joined = err == nil
		if errors.Is(err, jetstream.ErrKeyExists) {
			rev, err = d.kv.Put(ctx, d.id, b)
		}
		return err
	})
	return rev, joined, err
}

// entry is the node's entry in the registry, as of now.
func (d *DB) entry() ([]byte, error) {
	return json.Marshal(Node{ID: d.id, Address: d.opts.Advertise, Applied: d.Applied(), Reported: time.Now().UTC(), Records: RecordsPurgeSteps})
}

// reportLoop reports the node every ReportEvery until Close.
func (d *DB) reportLoop() {
	t := time.NewTicker(d.opts.ReportEvery)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(d.ctx, 5*d.opts.ReportEvery)
		if err := d.report(ctx); err != nil && d.ctx.Err() == nil {
			d.lg.Warn("natsstore: reporting the node in the registry", "err", err)
		}
		cancel()
	}
}

// Members implements [cairn.Cluster]: the nodes of the registry.
func (d *DB) Members(ctx context.Context) ([]cairn.Member, error) {
	ns, err := d.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]cairn.Member, len(ns))
	for i, n := range ns {
		out[i] = cairn.Member{ID: n.ID, Address: n.Address, Alive: n.Alive, Self: n.Self, Applied: n.Applied}
	}
	return out, nil
}

// Nodes returns the nodes of the cluster, by id, as the registry holds
// them: every node that ever joined and was not removed ([DB.Forget]).
func (d *DB) Nodes(ctx context.Context) ([]Node, error) {
	out, err := readNodes(ctx, d.kv, d.opts.ReportEvery)
	if err != nil {
		return nil, err
	}
	for i := range out {
		m := &out[i]
		m.Self = m.ID == d.id
		if m.Self {
			m.Alive = true
			m.Applied = max(m.Applied, d.Applied())
		}
	}
	return out, nil
}

// readNodes reads the registry's entries, by id. A node is alive if it
// reported within three of its periods (every).
func readNodes(ctx context.Context, kv jetstream.KeyValue, every time.Duration) ([]Node, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	// The lister ends its subscription once its keys are read (Stop
	// would then fail): nothing to stop.
	slices.Sort(keys)
	out := make([]Node, 0, len(keys))
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var m Node
		if err := json.Unmarshal(e.Value(), &m); err != nil {
			return nil, fmt.Errorf("natsstore: registry entry %q: %w", k, err)
		}
		m.Reported = e.Created()
		m.Alive = time.Since(e.Created()) < aliveWithin(every)
		out = append(out, m)
	}
	return out, nil
}

// aliveWithin is how recently a node that reports every period must have
// reported to count as alive.
func aliveWithin(every time.Duration) time.Duration { return 3*every + time.Second }

// Forget removes a node from the registry, so that trimming no longer
// waits for it: for a node that is gone for good.
func (d *DB) Forget(ctx context.Context, id string) error {
	return d.kv.Delete(ctx, id)
}

// Trim removes from the log the records below the lowest sequence every
// node of the registry applied (less Options.TrimKeep), and returns the
// sequence of the first record kept. A node that is down holds trimming
// back until it is back or forgotten.
func (d *DB) Trim(ctx context.Context) (uint64, error) {
	ms, err := d.Nodes(ctx)
	if err != nil {
		return 0, err
	}
	if len(ms) == 0 {
		return 0, nil
	}
	low := ms[0].Applied
	for _, m := range ms {
		low = min(low, m.Applied)
	}
	if low <= d.opts.TrimKeep {
		return 0, nil
	}
	keep := low - d.opts.TrimKeep + 1 // the first record kept
	info, err := d.st.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.FirstSeq >= keep {
		return info.State.FirstSeq, nil
	}
	if err := d.st.Purge(ctx, jetstream.WithPurgeSequence(keep)); err != nil {
		return 0, err
	}
	return keep, nil
}

// trimLoop trims the log every TrimEvery until Close.
func (d *DB) trimLoop() {
	t := time.NewTicker(d.opts.TrimEvery)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
		if _, err := d.Trim(ctx); err != nil && d.ctx.Err() == nil {
			d.lg.Warn("natsstore: trimming the log", "err", err)
		}
		cancel()
	}
}

// StreamLeader returns the name of the NATS server that leads the log's
// stream at the moment.
func (d *DB) StreamLeader(ctx context.Context) (string, error) {
	info, err := d.st.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil {
		return "", nil
	}
	return info.Cluster.Leader, nil
}
