package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/natsstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// An operator lists a cluster's nodes and forgets one that is gone for
// good, so that it stops holding the log's trimming back; a node that is
// alive, or an id the registry does not hold, is refused and nothing is
// removed.
func TestNodesListAndForget(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	nodes := startCluster(t)
	var servers []string
	for _, n := range nodes {
		servers = append(servers, n.nats)
	}
	store := "nats://" + strings.Join(servers, ",")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A fourth node, in this process: it registers, and stays registered
	// when it closes, as a node that dies does.
	gone, err := natsstore.Open(ctx, natsstore.Options{Dir: filepath.Join(t.TempDir(), "gone"), URL: store, NoSync: true, TrimEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	id := gone.NodeID()
	if _, err := gone.Append(ctx, "order-1", cairn.Any, []cairn.EventData{{Type: "Placed", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	out, _ := mustCairn(t, "nodes", "--store", store)
	if line := lineWith(out, id); !strings.HasSuffix(line, "alive") {
		t.Fatalf("cairn nodes lists the fourth node, running, as %q; want it alive:\n%s", line, out)
	}
	for _, n := range nodes {
		if !strings.Contains(out, n.grpc) {
			t.Errorf("cairn nodes does not list the address of the node serving on %s:\n%s", n.grpc, out)
		}
	}
	_, _, err = cairnCmd(t, "nodes", "forget", id, "--store", store)
	if !errors.Is(err, natsstore.ErrNodeAlive) {
		t.Fatalf("forgetting a node that is alive: %v; want it refused (ErrNodeAlive)", err)
	}

	if err := gone.Close(); err != nil {
		t.Fatal(err)
	}
	// The cluster goes on; the fourth node is behind and down.
	mustCairn(t, "append", "order-2", "Placed", `{}`, "--server", nodes[0].url())
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ = mustCairn(t, "nodes", "--store", store)
		if strings.HasSuffix(lineWith(out, id), "down") && strings.Contains(out, "trimming waits for node "+id) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cairn nodes, 30 s after the fourth node closed and the cluster wrote on, does not say it is down and holds trimming back:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// The admin UI's dashboard shows the same.
	page := dashboard(t, nodes[0])
	if row := rowWith(page, id); !strings.Contains(row, ">down<") {
		t.Errorf("the dashboard's row of the node that closed: %q; want it down", row)
	}
	for i, n := range nodes {
		row := rowWith(page, n.grpc)
		if !strings.Contains(row, ">alive<") || strings.Contains(row, "this node") != (i == 0) {
			t.Errorf("the dashboard of the node serving on %s shows the node serving on %s as %q; want it alive, and marked as this node only for itself", nodes[0].grpc, n.grpc, row)
		}
	}

	// And /metrics, for alerting.
	metrics := httpGet(t, "http://"+nodes[2].http+"/metrics")
	if want := `cairn_cluster_node_up{address="",node="` + id + `"} 0`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics of a node does not report the node that closed as down (%s):\n%s", want, grepLines(metrics, "cairn_cluster"))
	}
	for _, n := range nodes {
		if want := `cairn_cluster_node_up{address="` + n.grpc + `",node=`; !strings.Contains(grepLines(metrics, want), "} 1") {
			t.Errorf("/metrics does not report the node serving on %s as up:\n%s", n.grpc, grepLines(metrics, "cairn_cluster"))
		}
	}
	// The node that closed applied less than the others, which applied
	// the append made after it closed.
	applied := map[string]float64{}
	for line := range strings.Lines(grepLines(metrics, "cairn_cluster_node_applied_sequence{")) {
		var node string
		var v float64
		if _, err := fmt.Sscanf(strings.TrimPrefix(line, "cairn_cluster_node_applied_sequence"), "{node=%q} %g", &node, &v); err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		applied[node] = v
	}
	if len(applied) != len(nodes)+1 {
		t.Fatalf("/metrics reports the applied sequence of %d nodes, want %d:\n%s", len(applied), len(nodes)+1, grepLines(metrics, "cairn_cluster"))
	}
	for node, v := range applied {
		if node != id && v <= applied[id] {
			t.Errorf("/metrics: node %s applied %v, not more than the node that closed before the last append (%v)", node, v, applied[id])
		}
	}

	// A node of a build before compactions were logged in steps, as it
	// reports itself.
	nc, err := nats.Connect("nats://" + servers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "CAIRN_nodes")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "node-earlier", fmt.Appendf(nil, `{"id":"node-earlier","applied":1,"reported":%q}`, time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
		t.Fatal(err)
	}
	out, _ = mustCairn(t, "nodes", "--store", store)
	if !strings.Contains(out, "node node-earlier is of an earlier build") || strings.Count(out, "of an earlier build") != 1 {
		t.Errorf("cairn nodes with one node of an earlier build registered:\n%s", out)
	}
	// Gone for good: forgotten once it is down.
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, _, err := cairnCmd(t, "nodes", "forget", "node-earlier", "--store", store)
		if err == nil {
			break
		}
		if !errors.Is(err, natsstore.ErrNodeAlive) || time.Now().After(deadline) {
			t.Fatalf("forgetting the node of an earlier build: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if out, _ = mustCairn(t, "nodes", "--store", store); strings.Contains(out, "earlier") {
		t.Errorf("cairn nodes after forgetting the node of an earlier build:\n%s", out)
	}

	_, _, err = cairnCmd(t, "nodes", "forget", "node-nosuch", "--store", store)
	if !errors.Is(err, natsstore.ErrUnknownNode) {
		t.Fatalf("forgetting an id the registry does not hold: %v; want ErrUnknownNode", err)
	}
	out, _ = mustCairn(t, "nodes", "forget", id, "--store", store)
	if !strings.Contains(out, "forgot node "+id) {
		t.Errorf("cairn nodes forget said %q", out)
	}
	out, _ = mustCairn(t, "nodes", "--store", store)
	if strings.Contains(out, id) || strings.Contains(out, "trimming waits") {
		t.Errorf("cairn nodes after forgetting %s:\n%s", id, out)
	}
	for _, n := range nodes {
		if !strings.HasSuffix(lineWith(out, n.grpc), "alive") {
			t.Errorf("forgetting the fourth node changed the node serving on %s:\n%s", n.grpc, out)
		}
	}
	_, _, err = cairnCmd(t, "nodes", "forget", id, "--store", store)
	if !errors.Is(err, natsstore.ErrUnknownNode) {
		t.Errorf("forgetting %s twice: %v; want ErrUnknownNode", id, err)
	}
	if page := dashboard(t, nodes[1]); strings.Contains(page, id) || strings.Count(page, ">alive<") != len(nodes) {
		t.Errorf("the dashboard after forgetting %s:\n%s", id, page)
	}

	// What is not a cluster's registry is refused, saying so.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"nodes", "--store", t.TempDir()}, "is not a cluster"},
		{[]string{"nodes", "--server", nodes[0].url()}, "instead of --server"},
		{[]string{"nodes", "--store", store + "?stream=OTHER"}, "no stream OTHER"},
	} {
		_, _, err := cairnCmd(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("cairn %s: %v; want an error saying %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// dashboard returns the admin UI's dashboard of node n, as the admin.
func dashboard(t *testing.T, n *clusterNode) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+n.grpc+"/ui/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", n.adminPassword())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the dashboard of %s: %s %v\n%s", n.grpc, resp.Status, err, b)
	}
	return string(b)
}

// httpGet returns the body of url, which must answer 200.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out strings.Builder
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out.WriteString(line)
		}
	}
	return out.String()
}

// rowWith returns the row of an HTML table in page that contains s.
func rowWith(page, s string) string {
	for _, row := range strings.Split(page, "<tr>") {
		if strings.Contains(row, s) {
			row, _, _ = strings.Cut(row, "</tr>")
			return row
		}
	}
	return ""
}

// lineWith returns the first line of out that contains s, trimmed.
func lineWith(out, s string) string {
	for line := range strings.Lines(out) {
		if strings.Contains(line, s) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
