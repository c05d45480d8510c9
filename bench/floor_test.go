package bench_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/bench"
	"github.com/cairndb/cairn/memstore"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// floorWire runs the gRPC floor, plaintext, and returns the wire
// workloads' view of it.
func floorWire(t *testing.T) *bench.Wire {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := bench.NewFloor()
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	addr := lis.Addr().String()
	return &bench.Wire{
		Name: "floor",
		Client: func(context.Context) (*kurrentdb.Client, error) {
			cfg, err := kurrentdb.ParseConnectionString("kurrentdb://" + addr + "?tls=false")
			if err != nil {
				return nil, err
			}
			cfg.Logger = kurrentdb.NoopLogging()
			return kurrentdb.NewClient(cfg)
		},
		Conn: func(context.Context) (*grpc.ClientConn, error) {
			return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		},
	}
}

// The floor answers the official client's appends as a server that
// appended them would, so that the client's loop of exact expected
// revisions runs against it; and it serves nothing else.
func TestFloorAnswersAppends(t *testing.T) {
	ctx := context.Background()
	c, err := floorWire(t).Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ev := kurrentdb.EventData{EventType: "E", ContentType: kurrentdb.ContentTypeBinary, Data: []byte("x")}
	res, err := c.AppendToStream(ctx, "s", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}}, ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.NextExpectedVersion != 0 {
		t.Errorf("a stream's first event: revision %d, want 0", res.NextExpectedVersion)
	}
	res, err = c.AppendToStream(ctx, "s", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.Revision(0)}, ev, ev, ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.NextExpectedVersion != 3 {
		t.Errorf("three events after revision 0: revision %d, want 3", res.NextExpectedVersion)
	}
	read, err := c.ReadStream(ctx, "s", kurrentdb.ReadStreamOptions{}, 10)
	if err == nil {
		defer read.Close()
		_, err = read.Recv()
	}
	if err == nil {
		t.Error("a read of the floor succeeded")
	}
}

// With a floor, K1 and K2 also run against it, and report its throughput
// beside the in-process run's and the wire run's beside it; the other
// wire workloads do not.
func TestRunWireFloor(t *testing.T) {
	wire := serve(t, true)
	wire.Floor = floorWire(t)
	open := func(context.Context) (*cairn.Store, error) { return memstore.Open(), nil }
	var out strings.Builder
	results, err := bench.Run(context.Background(), tinyWire(bench.Config{Open: open, Wire: wire, Workloads: []string{"K1", "K2", "K3"}, Out: &out}))
	if err != nil {
		t.Fatal(err)
	}
	floors := map[string]int{}
	for _, r := range results {
		if !strings.Contains(r.Metric, "gRPC floor") {
			continue
		}
		floors[r.Workload]++
		if !r.HasRaw || r.Value <= 0 || r.Raw <= 0 {
			t.Errorf("%s %s: %v beside %v (%v)", r.Workload, r.Metric, r.Value, r.Raw, r.HasRaw)
		}
	}
	if floors["K1"] != 2 || floors["K2"] != 2 || floors["K3"] != 0 {
		t.Errorf("figures of the floor by workload: %v, want K1 and K2 two each", floors)
	}
	t.Logf("\n%s", out.String())
}

// A floor that refuses the appends fails the run, with the floor named.
func TestRunWireFloorFails(t *testing.T) {
	wire := serve(t, true)
	wire.Floor = &bench.Wire{
		Client: func(context.Context) (*kurrentdb.Client, error) { return nil, errors.New("refused") },
		Conn:   func(context.Context) (*grpc.ClientConn, error) { return nil, errors.New("refused") },
	}
	open := func(context.Context) (*cairn.Store, error) { return memstore.Open(), nil }
	_, err := bench.Run(context.Background(), tinyWire(bench.Config{Open: open, Wire: wire, Workloads: []string{"K1"}, Out: &strings.Builder{}}))
	if err == nil || !strings.Contains(err.Error(), "gRPC floor") {
		t.Errorf("a floor that refuses: %v", err)
	}
}
