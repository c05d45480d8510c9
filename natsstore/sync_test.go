package natsstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// infoStream answers Info with its answers in turn, the last one again
// and again; it is a jetstream.Stream for nothing else.
type infoStream struct {
	jetstream.Stream
	answers []*jetstream.StreamInfo
	calls   int
}

func (s *infoStream) Info(context.Context, ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	a := s.answers[min(s.calls, len(s.answers)-1)]
	s.calls++
	return a, nil
}

func streamInfo(leader string, last uint64) *jetstream.StreamInfo {
	return &jetstream.StreamInfo{Cluster: &jetstream.ClusterInfo{Leader: leader}, State: jetstream.StreamState{LastSeq: last}}
}

// While a stream elects a leader, its replicas answer info requests with
// their own state (a NATS server that was restarted does so at once), and
// a replica may lack records the log acknowledged. Sync takes only the
// leader's answer: a read after it sees every acknowledged write.
func TestSyncTakesOnlyTheLeadersAnswer(t *testing.T) {
	// A replica says 5, the leader 9; the copy holds 5.
	st := &infoStream{answers: []*jetstream.StreamInfo{streamInfo("", 5), streamInfo("nats-1", 9)}}
	d := &DB{st: st, applied: 5}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := d.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sync with the copy at 5 and the log at 9: %v, want it to wait (until its deadline)", err)
	}
	if st.calls != 2 {
		t.Fatalf("Sync asked %d times, want 2 (the replica, then the leader)", st.calls)
	}

	// Once the leader answers what the copy holds, Sync returns.
	st = &infoStream{answers: []*jetstream.StreamInfo{streamInfo("", 3), streamInfo("", 3), streamInfo("nats-1", 5)}}
	d = &DB{st: st, applied: 5}
	if err := d.Sync(context.Background()); err != nil || st.calls != 3 {
		t.Fatalf("Sync: %v after %d answers, want nil after 3", err, st.calls)
	}

	// A server outside a cluster is the leader of its streams.
	st = &infoStream{answers: []*jetstream.StreamInfo{{State: jetstream.StreamState{LastSeq: 5}}}}
	d = &DB{st: st, applied: 5}
	if err := d.Sync(context.Background()); err != nil || st.calls != 1 {
		t.Fatalf("Sync on a stream without cluster info: %v after %d answers, want nil after 1", err, st.calls)
	}
}
