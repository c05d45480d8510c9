package server_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn/server"
)

// nodeScenarios holds the Node.js scenarios and their package.json; "npm
// ci" in it installs the published KurrentDB clients they use.
const nodeScenarios = "testdata/node"

// runNodeScenario runs a Node.js scenario against the server at addr and
// returns what it printed. It skips, saying why, when node or the client
// modules are missing, and fails instead under CI=true, where .ci/run
// installs both.
func runNodeScenario(t *testing.T, script, addr string) string {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		msg := what + `: install Node.js 20 or later, then run "npm ci" in server/` + nodeScenarios
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not on the PATH")
	}
	for _, module := range []string{"@kurrent/kurrentdb-client", "@eventstore/db-client"} {
		if _, err := os.Stat(filepath.Join(nodeScenarios, "node_modules", module, "package.json")); err != nil {
			missing("the " + module + " module is not installed")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, addr)
	cmd.Dir = nodeScenarios
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstdout:\n%s\nstderr:\n%s", script, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// wantLines compares a scenario's output with what KurrentDB shows.
func wantLines(t *testing.T, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	t.Errorf("the scenario printed:\n%s\nwant:\n%s", got, want)
	gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(gl), len(wl)) {
		if gl[i] != wl[i] {
			t.Errorf("first difference, line %d:\ngot  %s\nwant %s", i+1, gl[i], wl[i])
			return
		}
	}
}

// TestNodeCompat runs the compatibility calls through the published
// Node.js client (@kurrent/kurrentdb-client): persistent subscriptions
// with every setting, their list, replay and typed errors over gRPC (not
// the HTTP fallback), deletes of streams never written, an oversized
// append and one past its deadline, the schema of a multi-stream append,
// AppendRecords with passing and failing checks, and the HTTP endpoints
// on the gRPC port.
func TestNodeCompat(t *testing.T) {
	ts := start(t, server.Options{MaxAppendBytes: 64 << 10})
	got := runNodeScenario(t, "compat.mjs", ts.addr)
	wantLines(t, got, `info jobs workers startFrom=start resolveLinkTos=true extraStatistics=true messageTimeout=12000 maxRetryCount=3 checkPointAfter=4000 checkPointLowerBound=5 checkPointUpperBound=60 maxSubscriberCount=1 liveBufferSize=70 readBatchSize=8 historyBufferSize=90 strategy=PinnedByCorrelation
info $all $all audit startFrom=end
list jobs workers
list all $all/audit,jobs/workers
connections 1 named=true from=true
second consumer maximum-subscribers-reached
replayed parked
replayed parked $all
create twice persistent-subscription-exists
info of a missing group persistent-subscription-does-not-exist
delete of a missing group persistent-subscription-does-not-exist
deleted group
delete of a stream never written wrong-expected-version
tombstone of a stream never written succeeded
oversized append maximum-append-size-exceeded
append past its deadline deadline-exceeded
multi-append metadata $schema.name=OrderPlaced $schema.format=Json tenant=acme
appendRecords cart-1@1,cart-2@0
appendRecords with failing checks append-consistency-violation
violations 0:orders,1:never-there
http ping 200 Ping request successfully handled
http info leader insecure
http live 204
done
`)
}

// TestNodeCompatEventStoreClient runs the calls the older published client
// (@eventstore/db-client) makes of the same surface: its persistent
// subscriptions over gRPC, their typed errors, a delete of a stream never
// written, an oversized append and one past its deadline.
func TestNodeCompatEventStoreClient(t *testing.T) {
	ts := start(t, server.Options{MaxAppendBytes: 64 << 10})
	got := runNodeScenario(t, "compat-esdb.mjs", ts.addr)
	wantLines(t, got, `read jobs 0 Job
info workers 4 60 70 Pinned
list workers
replayed parked
create twice persistent-subscription-exists
info of a missing group persistent-subscription-does-not-exist
delete of a stream never written wrong-expected-version
oversized append maximum-append-size-exceeded
append past its deadline deadline-exceeded
done
`)
}
