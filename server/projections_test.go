package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/cairndb/cairn/projections"
	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	projpb "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/projections"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// projectionOptions give handlers time: the tests run under -race on a
// shared machine.
func projectionOptions() server.Options {
	return server.Options{Projections: projections.Options{HandlerTimeout: 10 * time.Second, CheckpointAfter: 10 * time.Millisecond}}
}

// onProjectionEngines runs body on the engines of onEngines and, when
// CAIRN_TEST_POSTGRES is set, on PostgreSQL.
func onProjectionEngines(t *testing.T, body func(t *testing.T, ts *testServer)) {
	onEngines(t, projectionOptions(), body)
	t.Run("postgres", func(t *testing.T) {
		url, schema := pgtest.URL(t), pgtest.Schema(t, "cairn_server_proj")
		pg, err := pgstore.Open(context.Background(), url, pgstore.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		body(t, startOn(t, pg, projectionOptions()))
	})
}

func (ts *testServer) projections(t testing.TB) *kurrentdb.ProjectionClient {
	return kurrentdb.NewProjectionClientFromExistingClient(ts.client(t))
}

func (ts *testServer) projectionsProto(t testing.TB) projpb.ProjectionsClient {
	return projpb.NewProjectionsClient(ts.conn(t))
}

// until polls cond until it holds or 20 seconds pass.
func until(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: still not so after 20s: %s", what, last)
}

func asJSON(t testing.TB, v *structpb.Value) string {
	b, err := v.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func waitProjectionState(t testing.TB, pc *kurrentdb.ProjectionClient, name, partition, want string) {
	t.Helper()
	until(t, fmt.Sprintf("state of %s/%q", name, partition), func() (bool, string) {
		v, err := pc.GetState(context.Background(), name, kurrentdb.GetStateProjectionOptions{Partition: partition})
		if err != nil {
			return false, err.Error()
		}
		got := asJSON(t, v)
		return sameJSON(got, want), got
	})
}

func waitProjectionStatus(t testing.TB, pc *kurrentdb.ProjectionClient, name, status string) *kurrentdb.ProjectionStatus {
	t.Helper()
	var st *kurrentdb.ProjectionStatus
	until(t, name+" is "+status, func() (bool, string) {
		var err error
		st, err = pc.GetStatus(context.Background(), name, kurrentdb.GenericProjectionOptions{})
		if err != nil {
			return false, err.Error()
		}
		return st.Status == status, st.Status + " " + st.StateReason
	})
	return st
}

const countProjection = `
fromAll()
.when({
	$init: function () { return { count: 0 }; },
	$any: function (s, e) { s.count += 1; }
})
.outputState()`

// TestProjectionCallsThroughTheGoClient makes every call of the Projections
// service through the official Go client.
func TestProjectionCallsThroughTheGoClient(t *testing.T) {
	onProjectionEngines(t, func(t *testing.T, ts *testServer) {
		ctx := context.Background()
		c := ts.client(t)
		pc := ts.projections(t)
		if _, err := c.AppendToStream(ctx, "order-1", kurrentdb.AppendToStreamOptions{}, events(2, "Placed")...); err != nil {
			t.Fatal(err)
		}
		if err := pc.Create(ctx, "count", countProjection, kurrentdb.CreateProjectionOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := pc.Create(ctx, "count", countProjection, kurrentdb.CreateProjectionOptions{}); status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), "Conflict") {
			t.Fatalf("create twice: %v", err)
		}
		st := waitProjectionStatus(t, pc, "count", "Running")
		if st.Mode != "Continuous" || st.Name != "count" || st.EffectiveName != "count" {
			t.Fatalf("status: %+v", st)
		}
		waitProjectionState(t, pc, "count", "", `{"count":2}`)
		res, err := pc.GetResult(ctx, "count", kurrentdb.GetResultProjectionOptions{})
		if err != nil || !sameJSON(asJSON(t, res), `{"count":2}`) {
			t.Fatalf("result: %v, %v", res, err)
		}
		// The standard projections are listed beside the user's, as
		// KurrentDB lists them.
		want := []string{"$by_category", "$by_correlation_id", "$by_event_type", "$stream_by_category", "$streams", "count"}
		all, err := pc.ListAll(ctx, kurrentdb.GenericProjectionOptions{})
		if err != nil || !slices.Equal(projectionNames(all), want) {
			t.Fatalf("list all: %v, %v; want %v", projectionNames(all), err, want)
		}
		cont, err := pc.ListContinuous(ctx, kurrentdb.GenericProjectionOptions{})
		if err != nil || len(cont) != len(want) {
			t.Fatalf("list continuous: %v, %v", projectionNames(cont), err)
		}

		// Update: the version goes to 1, as in KurrentDB's own client tests.
		if err := pc.Update(ctx, "count", strings.Replace(countProjection, "s.count += 1", "s.count += 100", 1), kurrentdb.UpdateProjectionOptions{}); err != nil {
			t.Fatal(err)
		}
		if st, err := pc.GetStatus(ctx, "count", kurrentdb.GenericProjectionOptions{}); err != nil || st.Version != 1 {
			t.Fatalf("status after update: %+v, %v", st, err)
		}
		if _, err := c.AppendToStream(ctx, "order-1", kurrentdb.AppendToStreamOptions{}, events(1, "Placed")...); err != nil {
			t.Fatal(err)
		}
		waitProjectionState(t, pc, "count", "", `{"count":102}`)

		if err := pc.Delete(ctx, "count", kurrentdb.DeleteProjectionOptions{}); err == nil {
			t.Fatal("deleted a running projection")
		}
		if err := pc.Disable(ctx, "count", kurrentdb.GenericProjectionOptions{}); err != nil {
			t.Fatal(err)
		}
		waitProjectionStatus(t, pc, "count", "Stopped")
		if err := pc.Enable(ctx, "count", kurrentdb.GenericProjectionOptions{}); err != nil {
			t.Fatal(err)
		}
		waitProjectionStatus(t, pc, "count", "Running")
		if err := pc.Abort(ctx, "count", kurrentdb.GenericProjectionOptions{}); err != nil {
			t.Fatal(err)
		}
		if st := waitProjectionStatus(t, pc, "count", "Aborted/Stopped"); !strings.Contains(st.Status, "Stopped") {
			t.Fatalf("status after abort: %q", st.Status)
		}
		if err := pc.Enable(ctx, "count", kurrentdb.GenericProjectionOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := pc.Reset(ctx, "count", kurrentdb.ResetProjectionOptions{}); err != nil {
			t.Fatal(err)
		}
		// From the beginning with the new query: three events, by 100.
		waitProjectionState(t, pc, "count", "", `{"count":300}`)
		if err := pc.RestartSubsystem(ctx, kurrentdb.GenericProjectionOptions{}); err != nil {
			t.Fatal(err)
		}
		waitProjectionStatus(t, pc, "count", "Running")
		waitProjectionState(t, pc, "count", "", `{"count":300}`)
		if err := pc.Disable(ctx, "count", kurrentdb.GenericProjectionOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := pc.Delete(ctx, "count", kurrentdb.DeleteProjectionOptions{DeleteCheckpointStream: true, DeleteStateStream: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := pc.GetStatus(ctx, "count", kurrentdb.GenericProjectionOptions{}); !notFound(err) {
			t.Fatalf("status after delete: %v", err)
		}
	})
}

// notFound reports whether err is NOT_FOUND: the Go client returns the
// gRPC status of its projection calls as it is, except for GetStatus and
// the lists, which it reports as ErrorCodeResourceNotFound.
func notFound(err error) bool {
	return status.Code(err) == codes.NotFound || errorCode(err) == kurrentdb.ErrorCodeResourceNotFound
}

// TestUnknownProjectionIsNotFound: every call on an unknown projection
// gets NOT_FOUND.
func TestUnknownProjectionIsNotFound(t *testing.T) {
	ts := start(t, projectionOptions())
	ctx := context.Background()
	pc := ts.projections(t)
	g := kurrentdb.GenericProjectionOptions{}
	calls := map[string]error{
		"update":  pc.Update(ctx, "nope", countProjection, kurrentdb.UpdateProjectionOptions{}),
		"delete":  pc.Delete(ctx, "nope", kurrentdb.DeleteProjectionOptions{}),
		"enable":  pc.Enable(ctx, "nope", g),
		"disable": pc.Disable(ctx, "nope", g),
		"abort":   pc.Abort(ctx, "nope", g),
		"reset":   pc.Reset(ctx, "nope", kurrentdb.ResetProjectionOptions{}),
		"status":  func() error { _, err := pc.GetStatus(ctx, "nope", g); return err }(),
		"state":   func() error { _, err := pc.GetState(ctx, "nope", kurrentdb.GetStateProjectionOptions{}); return err }(),
		"result":  func() error { _, err := pc.GetResult(ctx, "nope", kurrentdb.GetResultProjectionOptions{}); return err }(),
	}
	for call, err := range calls {
		if !notFound(err) {
			t.Errorf("%s: %v, want NOT_FOUND", call, err)
		}
	}
}

// TestPartitionedProjectionStateAndResult reads State and Result per
// partition.
func TestPartitionedProjectionStateAndResult(t *testing.T) {
	onProjectionEngines(t, func(t *testing.T, ts *testServer) {
		ctx := context.Background()
		c := ts.client(t)
		pc := ts.projections(t)
		for i, stream := range []string{"cart-1", "cart-2", "cart-1"} {
			if _, err := c.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{}, jsonEvent("ItemAdded", fmt.Sprintf(`{"price":%d}`, 10*(i+1)))); err != nil {
				t.Fatal(err)
			}
		}
		err := pc.Create(ctx, "carts", `
			fromCategory('cart')
			.foreachStream()
			.when({
				$init: function () { return { items: 0, total: 0 }; },
				ItemAdded: function (s, e) { s.items++; s.total += e.body.price; }
			})
			.transformBy(function (s) { return { total: s.total }; })`, kurrentdb.CreateProjectionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitProjectionState(t, pc, "carts", "cart-1", `{"items":2,"total":40}`)
		waitProjectionState(t, pc, "carts", "cart-2", `{"items":1,"total":20}`)
		res, err := pc.GetResult(ctx, "carts", kurrentdb.GetResultProjectionOptions{Partition: "cart-1"})
		if err != nil || !sameJSON(asJSON(t, res), `{"total":40}`) {
			t.Fatalf("result of cart-1: %v, %v", res, err)
		}
		// A partition that never had an event has an empty state.
		waitProjectionState(t, pc, "carts", "cart-9", `{}`)
	})
}

// TestProjectionsEmitAndLink: events a projection emits and links it
// writes are read through the client as written: links are $> events whose
// data is <version>@<stream>.
func TestProjectionsEmitAndLink(t *testing.T) {
	onProjectionEngines(t, func(t *testing.T, ts *testServer) {
		ctx := context.Background()
		c := ts.client(t)
		pc := ts.projections(t)
		err := pc.Create(ctx, "shipping", `
			fromCategory('order').when({
				OrderPlaced: function (s, e) {
					emit('shipping-' + e.body.country, 'ShipmentRequested', { order: e.streamId });
					linkTo('orders-' + e.body.country, e, { why: 'country' });
				}
			})`, kurrentdb.CreateProjectionOptions{Emit: true, TrackEmittedStreams: true})
		if err != nil {
			t.Fatal(err)
		}
		for i, country := range []string{"fr", "de", "fr"} {
			if _, err := c.AppendToStream(ctx, fmt.Sprintf("order-%d", i), kurrentdb.AppendToStreamOptions{}, jsonEvent("OrderPlaced", fmt.Sprintf(`{"country":%q}`, country))); err != nil {
				t.Fatal(err)
			}
		}
		var ship []*kurrentdb.ResolvedEvent
		until(t, "emitted events", func() (bool, string) {
			ship, err = drain(c.ReadStream(ctx, "shipping-fr", kurrentdb.ReadStreamOptions{}, 100))
			return err == nil && len(ship) == 2, fmt.Sprint(len(ship), err)
		})
		if e := ship[1].Event; e.EventType != "ShipmentRequested" || string(e.Data) != `{"order":"order-2"}` || e.ContentType != "application/json" {
			t.Fatalf("emitted: %s %s %v", e.EventType, e.Data, e.ContentType)
		}
		links, err := drain(c.ReadStream(ctx, "orders-fr", kurrentdb.ReadStreamOptions{}, 100))
		if err != nil || len(links) != 2 {
			t.Fatalf("links: %d, %v", len(links), err)
		}
		for i, want := range []string{"0@order-0", "0@order-2"} {
			e := links[i].OriginalEvent()
			if e.EventType != "$>" || string(e.Data) != want || e.ContentType != "application/octet-stream" {
				t.Errorf("link %d: %s %q %v, want $> %q", i, e.EventType, e.Data, e.ContentType, want)
			}
			if !strings.Contains(string(e.UserMetadata), `"why":"country"`) {
				t.Errorf("link %d metadata: %s", i, e.UserMetadata)
			}
		}
		tracked, err := drain(c.ReadStream(ctx, "$projections-shipping-emittedstreams", kurrentdb.ReadStreamOptions{}, 100))
		if err != nil || len(tracked) != 4 {
			t.Fatalf("tracked streams: %d, %v", len(tracked), err)
		}
	})
}

// TestAFaultingProjectionDoesNotStopTheServer: a handler that throws faults
// its projection, with its message in Statistics; the server and the other
// projections go on.
func TestAFaultingProjectionDoesNotStopTheServer(t *testing.T) {
	ts := start(t, projectionOptions())
	ctx := context.Background()
	c := ts.client(t)
	pc := ts.projections(t)
	if err := pc.Create(ctx, "thrower", `fromAll().when({ Boom: function () { throw new Error('cannot handle Boom'); } })`, kurrentdb.CreateProjectionOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Create(ctx, "count", countProjection, kurrentdb.CreateProjectionOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AppendToStream(ctx, "x-1", kurrentdb.AppendToStreamOptions{}, jsonEvent("Boom", `{}`)); err != nil {
		t.Fatal(err)
	}
	st := waitProjectionStatus(t, pc, "thrower", "Faulted (Enabled)")
	if !strings.Contains(st.StateReason, "cannot handle Boom") {
		t.Fatalf("state reason: %q", st.StateReason)
	}
	if _, err := c.AppendToStream(ctx, "x-1", kurrentdb.AppendToStreamOptions{}, jsonEvent("Fine", `{}`)); err != nil {
		t.Fatal(err)
	}
	waitProjectionState(t, pc, "count", "", `{"count":2}`)
}

// TestOneTimeAndTransientProjections use the generated client, since the Go
// client creates only continuous projections.
func TestOneTimeAndTransientProjections(t *testing.T) {
	ts := start(t, projectionOptions())
	ctx := context.Background()
	c := ts.client(t)
	pc := ts.projections(t)
	raw := ts.projectionsProto(t)
	if _, err := c.AppendToStream(ctx, "x-1", kurrentdb.AppendToStreamOptions{}, events(3, "A")...); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Create(ctx, &projpb.CreateReq{Options: &projpb.CreateReq_Options{
		Mode:  &projpb.CreateReq_Options_Transient_{Transient: &projpb.CreateReq_Options_Transient{Name: "query"}},
		Query: countProjection,
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Create(ctx, &projpb.CreateReq{Options: &projpb.CreateReq_Options{
		Mode:  &projpb.CreateReq_Options_OneTime{OneTime: &shared.Empty{}},
		Query: countProjection,
	}}); err != nil {
		t.Fatal(err)
	}
	waitProjectionStatus(t, pc, "query", "Completed")
	waitProjectionState(t, pc, "query", "", `{"count":3}`)
	stream, err := raw.Statistics(ctx, &projpb.StatisticsReq{Options: &projpb.StatisticsReq_Options{Mode: &projpb.StatisticsReq_Options_OneTime{OneTime: &shared.Empty{}}}})
	if err != nil {
		t.Fatal(err)
	}
	one, err := stream.Recv()
	if err != nil || one.Details.Mode != "OneTime" || len(one.Details.Name) != 36 {
		t.Fatalf("one-time projection: %+v, %v", one, err)
	}
	waitProjectionStatus(t, pc, one.Details.Name, "Completed")
	waitProjectionState(t, pc, one.Details.Name, "", `{"count":3}`)
	if _, err := raw.Create(ctx, &projpb.CreateReq{Options: &projpb.CreateReq_Options{Query: countProjection}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("create without a mode: %v", err)
	}
}

// TestServerFeaturesAdvertiseProjections: the clients look here before
// they use a call, and fall back to HTTP for what is not listed.
func TestServerFeaturesAdvertiseProjections(t *testing.T) {
	ts := start(t, projectionOptions())
	got, err := serverfeatures.NewServerFeaturesClient(ts.conn(t)).GetSupportedMethods(context.Background(), &shared.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	var methods []string
	for _, m := range got.Methods {
		if m.ServiceName == "event_store.client.projections.projections" {
			methods = append(methods, m.MethodName)
		}
	}
	slices.Sort(methods)
	want := []string{"create", "delete", "disable", "enable", "reset", "restartsubsystem", "result", "state", "statistics", "update"}
	if !slices.Equal(methods, want) {
		t.Fatalf("projection methods advertised: %v, want %v", methods, want)
	}
}

func projectionNames(list []kurrentdb.ProjectionStatus) []string {
	var names []string
	for _, p := range list {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}
