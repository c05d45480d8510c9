package server_test

import (
	"strings"
	"testing"

	"github.com/cairndb/cairn/server"
)

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
	got := runNode(t, "compat.mjs", "kurrentdb", ts)
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
http info leader internal
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
	got := runNode(t, "compat-esdb.mjs", "esdb", ts)
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
