package bench_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/cairndb/cairn/bench"
	"github.com/cairndb/cairn/natsstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The JetStream baseline publishes one message per append, with the
// append's records, each acknowledged; it takes the replicas of the
// cluster's log when there is one, and deletes its stream on Close.
func TestJetStreamBaseline(t *testing.T) {
	srv, err := natsstore.StartServer(natsstore.ServerOptions{Dir: filepath.Join(t.TempDir(), "nats"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	ctx := context.Background()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	// No log yet: the replicas asked for, which one server cannot give.
	if b, err := bench.NewJetStreamBaseline(ctx, srv.ClientURL(), "CAIRN", 3); err == nil {
		b.Close()
		t.Fatal("a baseline of three replicas on one NATS server was created")
	}
	// A log of one replica: the baseline takes its replicas.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CAIRN", Subjects: []string{"cairn.log.CAIRN"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	b, err := bench.NewJetStreamBaseline(ctx, srv.ClientURL(), "CAIRN", 3)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Name(), "JetStream publish, R1, one message per append"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	lat, elapsed, err := b.Append(ctx, 4, 5, 3, 256)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 20 || elapsed <= 0 {
		t.Fatalf("Append(4 writers, 5 appends) gave %d latencies in %v, want 20", len(lat), elapsed)
	}
	var name string
	for n := range js.StreamNames(ctx).Name() {
		if n != "CAIRN" {
			name = n
		}
	}
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("the baseline's stream %q: %v", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 20 || info.State.Bytes < 20*3*256 {
		t.Errorf("the baseline's stream holds %d messages, %d bytes; want 20 of 768 bytes each", info.State.Msgs, info.State.Bytes)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(ctx, name); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the baseline's stream after Close: %v; want it deleted", err)
	}
}
