package pgstore_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// syncBuffer is a bytes.Buffer safe for the engine's logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLoneAppendIsolation: a Store writing alone runs each append in the
// implicit transaction of its batch, but only when that transaction is
// READ COMMITTED. On connections whose default isolation is SERIALIZABLE,
// an append that waits for the head row's lock, held by another
// transaction that then commits, must still run in a READ COMMITTED
// transaction of its own: it is written at the first attempt, not failed
// with a serialization error and tried again.
func TestLoneAppendIsolation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	raw := pgtest.URL(t)
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		t.Skip("CAIRN_TEST_POSTGRES is not a URL")
	}
	q := u.Query()
	q.Set("default_transaction_isolation", "serializable")
	u.RawQuery = q.Encode()
	schema := pgtest.Schema(t, "cairn_test")
	var logs syncBuffer
	s, err := pgstore.Open(ctx, u.String(), pgstore.Options{Schema: schema, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := func() []cairn.EventData { return []cairn.EventData{{ID: uuid.New(), Type: "E"}} }
	// Alone: its appends commit synchronously, one transaction each.
	for i := range 3 {
		if _, err := s.Append(ctx, "s", cairn.Exact(int64(i)-1), ev()); err != nil {
			t.Fatal(err)
		}
	}
	other, err := pgx.Connect(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE `+pgx.Identifier{schema, "head"}.Sanitize()+` SET next = next`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "s", cairn.Exact(2), ev())
		done <- err
	}()
	// Wait until the append waits for the head row's lock.
	for {
		var waiting bool
		err := other.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock')`, "cairn:"+schema).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the append ended (%v) while the head row was locked", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "trying again") {
		t.Fatalf("the append failed and was tried again:\n%s", logs.String())
	}
}
