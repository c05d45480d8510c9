package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc/metadata"
)

// clusterEngine is an engine that says it is one node of a cluster of
// three, and counts the syncs it is asked for.
type clusterEngine struct {
	*memstore.Store
	syncs atomic.Int64
}

func (c *clusterEngine) Sync(context.Context) error {
	c.syncs.Add(1)
	return nil
}

func (c *clusterEngine) Members(context.Context) ([]cairn.Member, error) {
	return []cairn.Member{
		{ID: "b", Address: "127.0.0.1:2123", Alive: true, Self: true},
		{ID: "a", Address: "127.0.0.1:2113", Alive: true},
		{ID: "c", Address: "127.0.0.1:2133", Alive: false},
	}, nil
}

// Gossip reports every node of a cluster engine, with one leader: the
// alive node with the lowest id; a read with requires-leader: true syncs
// the node first, and a read without does not.
func TestGossipOfACluster(t *testing.T) {
	eng := &clusterEngine{Store: memstore.New()}
	ts := launch(t, eng, server.Options{}, false)
	ctx := context.Background()
	members, err := ts.client(t).Gossip(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 3 {
		t.Fatalf("gossip: %v, want the three nodes", members)
	}
	for _, m := range members {
		if m.HttpEndPoint.Port == 2133 && m.IsAlive {
			t.Errorf("node c is reported alive")
		}
		if m.HttpEndPoint.Port == 2113 && m.State.String() != "Leader" {
			t.Errorf("node a (the lowest alive id) is %v, want Leader", m.State)
		}
		if m.HttpEndPoint.Port != 2113 && m.State.String() == "Leader" {
			t.Errorf("node on port %d is a leader too", m.HttpEndPoint.Port)
		}
	}

	// KurrentDB's /gossip over HTTP says the same.
	var g struct {
		Members []struct {
			State   string `json:"state"`
			IsAlive bool   `json:"isAlive"`
			Port    int    `json:"httpEndPointPort"`
		} `json:"members"`
	}
	resp, body := nodeHTTP{t: t, c: &http.Client{}, base: "http://" + ts.addr}.do("GET", "/gossip", "", nil, "")
	if err := json.Unmarshal([]byte(body), &g); err != nil || resp.StatusCode != 200 || len(g.Members) != 3 {
		t.Fatalf("/gossip: %d %s, want the three nodes", resp.StatusCode, body)
	}
	for _, m := range g.Members {
		if (m.State == "Leader") != (m.Port == 2113) || m.IsAlive == (m.Port == 2133) {
			t.Errorf("/gossip: node on port %d is %s, alive %v", m.Port, m.State, m.IsAlive)
		}
	}

	client := api.NewStreamsClient(ts.conn(t))
	before := eng.syncs.Load()
	if _, err := readRaw(ctx, client, "s"); err != nil {
		t.Fatal(err)
	}
	if eng.syncs.Load() != before {
		t.Fatal("a read without requires-leader synced")
	}
	if _, err := readRaw(metadata.AppendToOutgoingContext(ctx, "requires-leader", "true"), client, "s"); err != nil {
		t.Fatal(err)
	}
	if eng.syncs.Load() != before+1 {
		t.Fatal("a read with requires-leader: true did not sync")
	}
}
