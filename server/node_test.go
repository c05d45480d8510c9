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

// nodeDir holds the Node.js scenarios and their package.json; `npm ci` in
// it installs the published KurrentDB client they use.
const nodeDir = "testdata/node"

// runNode runs a Node.js scenario of nodeDir against ts and returns what
// it printed. The scenario gets the server's connection string (with
// scheme, kurrentdb or esdb, as the client it uses spells it) and the base
// URL of its HTTP side, then args; node trusts the server's test CA. It
// skips, saying why, when node or the client modules are missing, and
// fails instead under CI=true, where .ci/run installs both.
func runNode(t *testing.T, script, scheme string, ts *testServer, args ...string) string {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		msg := what + `: install Node.js 20 or later, then run "npm ci" in server/` + nodeDir
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
		if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", module, "package.json")); err != nil {
			missing("the " + module + " module is not installed")
		}
	}
	conn := scheme + strings.TrimPrefix(ts.url("admin", server.DefaultAdminPassword, ""), "kurrentdb")
	base := "http://" + ts.addr
	if ts.ca != "" {
		base = "https://" + ts.addr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script, conn, base}, args...)...)
	cmd.Dir = nodeDir
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+ts.ca)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstdout:\n%s\nstderr:\n%s", script, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestNodeApplication runs a KurrentDB application written for the
// official Node.js client: appends, a category stream read with its links
// resolved, a subscription that receives history and then live events, an
// event-type stream, a link the application writes, and a persistent
// subscription to the category. What it prints is what KurrentDB shows.
func TestNodeApplication(t *testing.T) {
	onIndexEngines(t, func(t *testing.T, ts *testServer) {
		got := runNode(t, "script.mjs", "kurrentdb", ts)
		want := `appended
read $ce-order 0 0@order-1 -> order-1 0 OrderPlaced {"id":1,"total":42}
read $ce-order 1 1@order-1 -> order-1 1 OrderShipped {"id":1}
read $ce-order 2 0@order-2 -> order-2 0 OrderPlaced {"id":2,"total":7}
subscription $ce-order 0 0@order-1 -> order-1 0 OrderPlaced {"id":1,"total":42}
subscription $ce-order 1 1@order-1 -> order-1 1 OrderShipped {"id":1}
subscription $ce-order 2 0@order-2 -> order-2 0 OrderPlaced {"id":2,"total":7}
subscription $ce-order 3 1@order-2 -> order-2 1 OrderShipped {"id":2}
subscription $ce-order 4 0@order-3 -> order-3 0 OrderPlaced {"id":3,"total":1}
type $et-OrderPlaced 0 $> 0@order-1
type $et-OrderPlaced 1 $> 0@order-2
type $et-OrderPlaced 2 $> 0@order-3
link vip-orders 0 1@order-1 -> order-1 1 OrderShipped {"id":1}
persistent info $ce-order node resolveLinkTos=true
persistent $ce-order 0 0@order-1 -> order-1 0 OrderPlaced {"id":1,"total":42}
persistent $ce-order 1 1@order-1 -> order-1 1 OrderShipped {"id":1}
persistent $ce-order 2 0@order-2 -> order-2 0 OrderPlaced {"id":2,"total":7}
persistent $ce-order 3 1@order-2 -> order-2 1 OrderShipped {"id":2}
persistent $ce-order 4 0@order-3 -> order-3 0 OrderPlaced {"id":3,"total":1}
done
`
		if got != want {
			t.Errorf("the Node.js application printed:\n%s\nwant:\n%s", got, want)
			gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
			for i := range min(len(gl), len(wl)) {
				if gl[i] != wl[i] {
					t.Errorf("first difference, line %d:\ngot  %s\nwant %s", i+1, gl[i], wl[i])
					break
				}
			}
		}
	})
}
