package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/cairndb/cairn/natsstore"
	"github.com/cairndb/cairn/storeurl"
	"github.com/spf13/pflag"
)

// The flags of cairn serve that make it a node of a cluster replicated on
// NATS JetStream (natsstore): --data for the node's copy, and an embedded
// NATS server for trying a cluster with nothing else installed.
type clusterFlags struct {
	data        string
	embedded    bool
	natsListen  string
	natsCluster string
	natsRoutes  []string
}

func (c *clusterFlags) register(f *pflag.FlagSet) {
	f.StringVar(&c.data, "data", "", "the node's directory, for a cluster node (--store nats://… or --nats-embedded)")
	f.BoolVar(&c.embedded, "nats-embedded", false, "run a NATS server in this process and serve a cluster node on it (needs --data)")
	f.StringVar(&c.natsListen, "nats-listen", "127.0.0.1:4222", "with --nats-embedded: the NATS client address")
	f.StringVar(&c.natsCluster, "nats-cluster", "", "with --nats-embedded: the address other NATS servers route to (empty: a cluster of one)")
	f.StringSliceVar(&c.natsRoutes, "nats-routes", nil, "with --nats-embedded: the other servers' --nats-cluster addresses, comma-separated")
}

// node is what prepare set up: the store URL to open, the options that go
// with it, and what to stop once the store is closed.
type node struct {
	store   string
	nodeDir string
	stop    func()
}

// prepare checks the cluster flags against --store (changed says whether
// it was given), starts the embedded NATS server when asked, and returns
// the store to open.
func (c *clusterFlags) prepare(store string, changed bool, log *slog.Logger) (node, error) {
	n := node{store: store, stop: func() {}}
	kind, _, _ := storeurl.Parse(store)
	if !c.embedded {
		if c.data == "" {
			return n, nil
		}
		if kind != storeurl.Nats {
			return n, fmt.Errorf("--data is the directory of a cluster node: give --store nats://host:4222,… or --nats-embedded (for one machine's store, --store %s)", c.data)
		}
		n.nodeDir = c.data
		return n, nil
	}
	if c.data == "" {
		return n, errors.New("--nats-embedded needs --data, the node's directory (its copy of the store and its NATS server's files)")
	}
	if changed && kind != storeurl.Nats {
		return n, errors.New("--nats-embedded serves a cluster node on the embedded NATS server: drop --store")
	}
	if len(c.natsRoutes) > 0 && c.natsCluster == "" {
		return n, errors.New("--nats-routes needs --nats-cluster, this server's own route address")
	}
	if err := checkListen("--nats-listen", c.natsListen); err != nil {
		return n, err
	}
	for _, r := range append([]string{c.natsCluster}, c.natsRoutes...) {
		if r != "" {
			if err := checkListen("--nats-cluster/--nats-routes", r); err != nil {
				return n, err
			}
		}
	}
	srv, err := natsstore.StartServer(natsstore.ServerOptions{
		Name:          "cairn-" + strings.NewReplacer(":", "-", ".", "-").Replace(c.natsListen),
		Dir:           filepath.Join(c.data, "nats"),
		Listen:        c.natsListen,
		ClusterListen: c.natsCluster,
		Routes:        c.natsRoutes,
	})
	if err != nil {
		return n, err
	}
	replicas := min(3, 1+len(c.natsRoutes))
	log.Info("embedded NATS server started", "client", srv.ClientURL(), "cluster", c.natsCluster, "routes", strings.Join(c.natsRoutes, ","), "log replicas", replicas)
	if !changed {
		n.store = fmt.Sprintf("nats://%s?replicas=%d", c.natsListen, replicas)
	}
	n.nodeDir = filepath.Join(c.data, "node")
	n.stop = srv.Shutdown
	return n, nil
}
