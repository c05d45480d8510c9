package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStreamBaseline is the reference for a cluster replicated on NATS
// JetStream (natsstore): JetStream's own durable publish, one message per
// append (the append's records in its body), each acknowledged before the
// writer sends the next, to a stream of its own in file storage with as
// many replicas as the cluster's log, on the same NATS servers. Publishers
// at once are as many as the workload's writers; JetStream's Raft layer
// groups their concurrent messages as cairn's writer groups appends. The
// stream is deleted by Close.
type JetStreamBaseline struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	name     string
	subject  string
	replicas int
}

// NewJetStreamBaseline connects to the NATS servers at url
// (comma-separated) and creates the baseline's stream with the replicas
// of the stream logStream, the cluster's log, or with replicas when that
// does not exist yet.
func NewJetStreamBaseline(ctx context.Context, url, logStream string, replicas int, opts ...nats.Option) (*JetStreamBaseline, error) {
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("cairn bench baseline")}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("jetstream baseline: connect to %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream baseline: %w", err)
	}
	if st, err := js.Stream(ctx, logStream); err == nil {
		replicas = st.CachedInfo().Config.Replicas
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		nc.Close()
		return nil, fmt.Errorf("jetstream baseline: the cluster's log %s: %w", logStream, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "CAIRN_BENCH_" + hex.EncodeToString(b[:])
	j := &JetStreamBaseline{nc: nc, js: js, name: name, subject: "cairn.bench." + name, replicas: replicas}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "cairn bench's baseline: JetStream's own durable publish",
		Subjects:    []string{j.subject},
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream baseline: creating stream %s (%d replicas): %w", name, replicas, err)
	}
	return j, nil
}

// Name implements [Baseline].
func (j *JetStreamBaseline) Name() string {
	return fmt.Sprintf("JetStream publish, R%d, one message per append", j.replicas)
}

// Append implements [Baseline].
func (j *JetStreamBaseline) Append(ctx context.Context, writers, appends, perAppend, size int) ([]time.Duration, time.Duration, error) {
	data := make([]byte, perAppend*size)
	_, _ = rand.Read(data)
	return timeWriters(writers, appends, func(_, _ int) error {
		_, err := j.js.Publish(ctx, j.subject, data)
		return err
	})
}

// Close deletes the baseline's stream and closes the connection.
func (j *JetStreamBaseline) Close() error {
	defer j.nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := j.js.DeleteStream(ctx, j.name); err != nil {
		return fmt.Errorf("jetstream baseline: deleting stream %s: %w", j.name, err)
	}
	return nil
}
