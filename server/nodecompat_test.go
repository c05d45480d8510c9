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

// TestNodeACL sets a stream's ACL through the published Node.js client
// (setStreamMetadata with acl) and meets it as two other users, whom the
// Users service created (the Node.js client has no users API): bob is
// refused with the client's AccessDenied error, ada, in the group the ACL
// names, reads and writes; a category stream, a system stream, takes its
// own grant, and its resolved links show each reader only what it may
// read.
func TestNodeACL(t *testing.T) {
	ts := start(t, server.Options{})
	ts.createUser(t, "ada", "ada-pw", "accounting")
	ts.createUser(t, "bob", "bob-pw")
	got := runNode(t, "acl.mjs", "kurrentdb", ts, ts.url("ada", "ada-pw", ""), ts.url("bob", "bob-pw", ""))
	wantLines(t, got, `metadata readRoles=accounting writeRoles=ada metaReadRoles=$admins
bob reads ledger-1 access-denied (AccessDeniedError)
bob appends to ledger-1 access-denied (AccessDeniedError)
bob reads ledger-1's metadata access-denied (AccessDeniedError)
ada reads ledger-1 0 Credited
ada reads ledger-1 1 Debited
ada appends to ledger-1 succeeded
ada reads $ce-ledger access-denied (AccessDeniedError)
ada reads $ce-ledger 0 0@ledger-1 -> ledger-1 0 Credited
ada reads $ce-ledger 1 1@ledger-1 -> ledger-1 1 Debited
ada reads $ce-ledger 2 2@ledger-1 -> ledger-1 2 Credited
bob reads $ce-ledger 0 0@ledger-1 -> none
bob reads $ce-ledger 1 1@ledger-1 -> none
bob reads $ce-ledger 2 2@ledger-1 -> none
bob reads bob-notes 0 Noted
done
`)
}

// TestNodeProjections creates, queries and manages projections through the
// published Node.js client: a continuous projection's state as it catches
// up and then live, a partition's state, the status, the list with the
// standard projections, disable, enable, delete.
func TestNodeProjections(t *testing.T) {
	ts := start(t, server.Options{})
	got := runNode(t, "projections.mjs", "kurrentdb", ts)
	wantLines(t, got, `state order-totals {"placed":2,"total":49}
state per-order order-1 {"events":2}
state order-totals {"placed":3,"total":50}
status order-totals Running
list $by_category,$by_correlation_id,$by_event_type,$stream_by_category,$streams,order-totals,per-order
standard $by_category=Running,$by_correlation_id=Running,$by_event_type=Running,$stream_by_category=Running,$streams=Running
disabled Stopped
enabled Running
after delete order-totals
state of a deleted projection not-found
done
`)
}
