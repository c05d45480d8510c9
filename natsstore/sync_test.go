package natsstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// electingStream is a log's stream while a replica that lacks records
// answers info requests (as JetStream's replicas do while the stream has
// no leader, or soon after their server restarted): Info says the
// replica's last sequence, and only a request for a message reaches the
// leader. It is a jetstream.Stream for nothing else.
type electingStream struct {
	jetstream.Stream
	replicaLast, leaderLast uint64
}

func (s *electingStream) Info(context.Context, ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	return &jetstream.StreamInfo{Cluster: &jetstream.ClusterInfo{Leader: "nats-1"}, State: jetstream.StreamState{LastSeq: s.replicaLast}}, nil
}

func (s *electingStream) GetLastMsgForSubject(context.Context, string) (*jetstream.RawStreamMsg, error) {
	if s.leaderLast == 0 {
		return nil, jetstream.ErrMsgNotFound
	}
	return &jetstream.RawStreamMsg{Sequence: s.leaderLast}, nil
}

// Sync takes the log's last record from the stream's leader, not from
// whichever replica answers first: with the copy at 5, a replica saying 5
// and the leader 9, a read after Sync must see record 9.
func TestSyncAsksTheLeader(t *testing.T) {
	d := &DB{st: &electingStream{replicaLast: 5, leaderLast: 9}, applied: 5}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := d.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sync with the copy at 5 and the log at 9: %v, want it to wait (until its deadline)", err)
	}
	d = &DB{st: &electingStream{replicaLast: 3, leaderLast: 5}, applied: 5}
	if err := d.Sync(context.Background()); err != nil {
		t.Fatalf("Sync with the copy at the log's last record: %v", err)
	}
	d = &DB{st: &electingStream{}}
	if err := d.Sync(context.Background()); err != nil {
		t.Fatalf("Sync on an empty log: %v", err)
	}
}
