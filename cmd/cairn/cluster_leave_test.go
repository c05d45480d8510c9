package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A command that ends, run as a node of a cluster (--store nats://…), leaves
// the cluster's registry when it ends, so that its node, which does not
// return, does not hold the log's trimming back.
func TestClusterCommandsLeaveRegistry(t *testing.T) {
	nodes := startCluster(t)
	var servers []string
	for _, n := range nodes {
		servers = append(servers, n.nats)
	}
	nc, err := nats.Connect("nats://" + nodes[0].nats)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"bench", []string{"bench", "--workloads", "W1", "--w1-appends", "20"}},
		{"append", []string{"append", "order-1", "Placed", `{"n":1}`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "node")
			out, _ := mustCairn(t, append(c.args, "--store", "nats://"+strings.Join(servers, ",")+"?dir="+dir)...)
			if c.name == "bench" {
				// Beside the NATS servers' own durable publish, on a
				// stream of its own that it deletes.
				if !strings.Contains(out, "JetStream publish, R3, one message per append") {
					t.Errorf("cairn bench on a cluster does not report its figures beside JetStream's publish:\n%s", out)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for name := range js.StreamNames(ctx).Name() {
					if strings.HasPrefix(name, "CAIRN_BENCH_") {
						t.Errorf("cairn bench left its baseline's stream %s", name)
					}
				}
			}
			id, err := os.ReadFile(filepath.Join(dir, "node-id"))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			kv, err := js.KeyValue(ctx, "CAIRN_nodes")
			if err != nil {
				t.Fatal(err)
			}
			keys, err := kv.Keys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(keys, strings.TrimSpace(string(id))) {
				t.Errorf("cairn %s's node %s is still in the registry after it ended: %v", c.name, strings.TrimSpace(string(id)), keys)
			}
			if len(keys) != len(nodes) {
				t.Errorf("the registry lists %d nodes, want the %d serve nodes: %v", len(keys), len(nodes), keys)
			}
		})
	}
}
