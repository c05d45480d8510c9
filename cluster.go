package cairn

import "context"

// Engines that run as one node of a cluster (natsstore) keep a copy of the
// store on each node and read from it. Two optional interfaces let the
// layers above serve them without knowing the engine.

// Syncer is implemented by engines whose reads come from a copy that may
// lag writes made through other nodes. Sync returns once the copy holds
// every write acknowledged, through any node, before Sync was called: a
// read after it sees them all.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Member is one node of a cluster.
type Member struct {
	// ID names the node.
	ID string
	// Address is where clients reach the node's server (host:port); empty
	// for a node that serves no clients.
	Address string
	// Alive reports whether the node was heard from lately.
	Alive bool
	// Applied is how far the node has applied the cluster's log: the
	// sequence of the last record its copy holds durably, as it last
	// reported. The nodes' figures compare with one another: a node's lag
	// is the largest less its own.
	Applied uint64
	// Self is set for the node that answered.
	Self bool
}

// Cluster is implemented by engines that run as one node of a cluster:
// Members returns the cluster's nodes, for discovery (gossip).
type Cluster interface {
	Members(ctx context.Context) ([]Member, error)
}

// Sync returns once reads through s see every write acknowledged anywhere
// before it was called. With an engine that keeps one copy (every engine
// but a cluster's) that holds already, and Sync returns at once.
func (s *Store) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if sy, ok := s.b.(Syncer); ok {
		return sy.Sync(ctx)
	}
	return nil
}
