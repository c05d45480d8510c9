package bench_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/bench"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/server/users"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// serve runs a server on a store of its own, over TLS or not, and returns
// the wire workloads' view of it.
func serve(t *testing.T, withTLS bool) *bench.Wire {
	t.Helper()
	opts := server.Options{Users: users.Options{Hash: users.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}}}
	ca := ""
	if withTLS {
		files, err := server.GenerateCerts(t.TempDir(), server.CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if opts.TLS, err = server.LoadTLS(files.NodeCert, files.NodeKey); err != nil {
			t.Fatal(err)
		}
		ca = files.CACert
	}
	store := memstore.Open()
	srv, err := server.New(context.Background(), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
		store.Close()
	})
	addr := lis.Addr().String()
	conn := "kurrentdb://admin:" + server.DefaultAdminPassword + "@" + addr + "?tls=false"
	if withTLS {
		conn = "kurrentdb://admin:" + server.DefaultAdminPassword + "@" + addr + "?tls=true&tlsCAFile=" + url.QueryEscape(ca)
	}
	return &bench.Wire{
		Name:      "test server",
		Generated: !withTLS,
		Client: func(context.Context) (*kurrentdb.Client, error) {
			cfg, err := kurrentdb.ParseConnectionString(conn)
			if err != nil {
				return nil, err
			}
			cfg.Logger = kurrentdb.NoopLogging()
			return kurrentdb.NewClient(cfg)
		},
		Conn: func(context.Context) (*grpc.ClientConn, error) {
			creds := insecure.NewCredentials()
			if withTLS {
				pool, err := server.LoadCertPool(ca)
				if err != nil {
					return nil, err
				}
				creds = credentials.NewTLS(&tls.Config{RootCAs: pool})
			}
			return grpc.NewClient(addr, grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(basicAuth{
				header: "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+server.DefaultAdminPassword)),
				secure: withTLS,
			}))
		},
	}
}

type basicAuth struct {
	header string
	secure bool
}

func (a basicAuth) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": a.header}, nil
}

func (a basicAuth) RequireTransportSecurity() bool { return a.secure }

func tinyWire(cfg bench.Config) bench.Config {
	cfg.KAppenders, cfg.KAppends, cfg.KEvents, cfg.KReads = 4, 5, 3000, 3
	return cfg
}

// TestRunWire runs the wire workloads, small, against a server over TLS
// with the official client: each figure has the in-process figure of the
// same run beside it.
func TestRunWire(t *testing.T) {
	wire := serve(t, true)
	open := func(context.Context) (*cairn.Store, error) { return memstore.Open(), nil }
	var out strings.Builder
	results, err := bench.Run(context.Background(), tinyWire(bench.Config{Open: open, Wire: wire, Workloads: bench.WireWorkloads, Out: &out}))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range results {
		seen[r.Workload] = true
		if !r.HasRaw || r.Value <= 0 || r.Raw <= 0 {
			t.Errorf("%s %s: wire %v, in process %v (%v)", r.Workload, r.Metric, r.Value, r.Raw, r.HasRaw)
		}
	}
	for _, w := range bench.WireWorkloads {
		if !seen[w] {
			t.Errorf("no figure for %s", w)
		}
	}
	if !strings.Contains(out.String(), "in process") || strings.Contains(out.String(), "raw file") {
		t.Errorf("report:\n%s", out.String())
	}
	t.Logf("\n%s", out.String())
}

// Without TLS the official Go client sends no credentials: the appends go
// through the protocol's generated client, and the reads, which need the
// official client, are skipped.
func TestRunWirePlaintext(t *testing.T) {
	wire := serve(t, false)
	open := func(context.Context) (*cairn.Store, error) { return memstore.Open(), nil }
	var out strings.Builder
	results, err := bench.Run(context.Background(), tinyWire(bench.Config{Open: open, Wire: wire, Workloads: bench.WireWorkloads, Out: &out}))
	if err != nil {
		t.Fatal(err)
	}
	var ran []string
	for _, r := range results {
		if !slices.Contains(ran, r.Workload) {
			ran = append(ran, r.Workload)
		}
	}
	if !slices.Equal(ran, []string{"K1", "K2", "K3"}) {
		t.Errorf("ran %v, want K1, K2, K3", ran)
	}
	if !strings.Contains(out.String(), "K4   skipped") || !strings.Contains(out.String(), "K5   skipped") {
		t.Errorf("K4 and K5 not reported skipped:\n%s", out.String())
	}
}

// A wire workload named without a server is refused; unnamed, the wire
// workloads do not run.
func TestRunWireNeedsAServer(t *testing.T) {
	open := func(context.Context) (*cairn.Store, error) { return memstore.Open(), nil }
	if _, err := bench.Run(context.Background(), tinyWire(bench.Config{Open: open, Workloads: []string{"K1"}, Out: io.Discard})); err == nil || !strings.Contains(err.Error(), "needs a server") {
		t.Errorf("K1 without a server: %v", err)
	}
}

// K1 at its default size stops its appenders once its time has passed,
// over the wire and in process alike, and reports what they made.
func TestWireDefaultStopsAtItsTime(t *testing.T) {
	const appenders = 2
	wire := serve(t, true)
	store := memstore.Open()
	open := func(context.Context) (*cairn.Store, error) {
		return cairn.NewStore(slowAppends{store.Backend().(conditional)}, cairn.Options{}), nil
	}
	cfg := bench.Config{Open: open, Wire: wire, Workloads: []string{"K1"}, Out: io.Discard,
		KAppenders: appenders, Time: 150 * time.Millisecond}
	results, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) == 0 || results[0].Value <= 0 || results[0].Raw <= 0 {
		t.Fatalf("K1 reported %+v, want a throughput over the wire beside one in process", results)
	}
	made := 0
	for w := range appenders {
		v, err := store.StreamVersion(context.Background(), fmt.Sprintf("k1-local-%d", w))
		if err != nil {
			t.Fatal(err)
		}
		made += int(v) + 1
	}
	// At a millisecond an append, 150 ms allow each appender a few
	// hundred at most, far below the 128,000 of the size without a limit.
	if made == 0 || made >= 1000 {
		t.Fatalf("the appenders made %d appends in process: want some, stopped by the time limit", made)
	}
}
