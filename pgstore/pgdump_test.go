package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/jackc/pgx/v5"
)

// pgTool returns the path of one of PostgreSQL's programs, or skips t
// (fails it under CI=true) when it is not installed.
func pgTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		const how = "install PostgreSQL's client programs (apt-get install postgresql-client) to run this test"
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is not installed: %s", name, how)
		}
		t.Skipf("%s is not installed: %s", name, how)
	}
	return p
}

// newDatabase creates an empty database beside the test database's, drops
// it when t ends, and returns its URL.
func newDatabase(t *testing.T, prefix string) string {
	t.Helper()
	ctx := context.Background()
	base := pgtest.URL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + "_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", filepath.Base(name), err, out)
	}
}

// The PostgreSQL engine is backed up with PostgreSQL's own tools, as the
// README says: pg_dump of the store's schema while it serves writes,
// restored with pg_restore into a new database, is a store holding every
// event, stream state and snapshot, that answers queries by tag and takes
// appends where the original left off.
func TestBackupWithPgDumpAndRestore(t *testing.T) {
	pgDump, pgRestore := pgTool(t, "pg_dump"), pgTool(t, "pg_restore")
	ctx := context.Background()
	schema := pgtest.Schema(t, "cairn_pgdump")
	src := cairn.NewStore(openSchema(t, schema, pgstore.Options{}), cairn.Options{})
	for i := range 30 {
		_, err := src.Append(ctx, fmt.Sprint("order-", i%3), cairn.Any, cairn.EventData{
			Type: "OrderPlaced", Data: fmt.Appendf(nil, `{"n":%d}`, i), Metadata: []byte(`{"user":"ada"}`), Tags: []string{fmt.Sprint("n:", i)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := src.CommitSnapshot(ctx, cairn.Snapshot{StreamID: "order-0", Version: 4, Data: []byte(`{"total":5}`)}); err != nil {
		t.Fatal(err)
	}
	if err := src.DeleteStream(ctx, "order-1", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if err := src.TruncateStream(ctx, "order-2", 5); err != nil {
		t.Fatal(err)
	}
	want, err := src.ReadAll(ctx, 0, 1000, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}

	// A writer goes on while pg_dump runs: the dump is one snapshot (one
	// transaction), so it holds a prefix of the log, whole appends only.
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := src.Append(ctx, "during", cairn.Any, cairn.EventData{Type: "E"}, cairn.EventData{Type: "E"}); err != nil {
				done <- err
				return
			}
		}
	}()
	dump := filepath.Join(t.TempDir(), "cairn.dump")
	run(t, pgDump, "--format=custom", "--no-owner", "--schema="+schema, "--file="+dump, "--dbname="+pgtest.URL(t))
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	target := newDatabase(t, "cairn_restore")
	run(t, pgRestore, "--no-owner", "--exit-on-error", "--dbname="+target, dump)
	db, err := pgstore.Open(ctx, target, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	restored := cairn.NewStore(db, cairn.Options{})
	defer restored.Close()

	got, err := restored.ReadAll(ctx, 0, 100000, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < len(want) {
		t.Fatalf("the restored store holds %d events, fewer than the %d appended before the dump", len(got), len(want))
	}
	same := func(a, b cairn.Event) bool {
		return a.ID == b.ID && a.StreamID == b.StreamID && a.Version == b.Version && a.Position == b.Position &&
			string(a.Data) == string(b.Data) && string(a.Metadata) == string(b.Metadata) && slices.Equal(a.Tags, b.Tags)
	}
	if !slices.EqualFunc(got[:len(want)], want, same) {
		t.Fatal("the restored store's first events differ from those appended before the dump")
	}
	for i, e := range got[len(want):] {
		if e.StreamID != "during" || e.Version != int64(i) {
			t.Fatalf("after the events before the dump, %s version %d: want the writer's appends, in order", e.StreamID, e.Version)
		}
	}
	if (len(got)-len(want))%2 != 0 {
		t.Fatalf("the dump holds half of an append: %d events of the writer", len(got)-len(want))
	}
	if _, err := restored.StreamVersion(ctx, "order-1"); !errors.Is(err, cairn.ErrStreamNotFound) {
		t.Fatalf("the deleted stream after the restore: %v", err)
	}
	if evs, err := restored.ReadStream(ctx, "order-2", 0, 100, cairn.Forward); err != nil || len(evs) != 5 || evs[0].Version != 5 {
		t.Fatalf("the truncated stream after the restore: %d events, %v", len(evs), err)
	}
	if s, ok, err := restored.GetSnapshot(ctx, "order-0", -1, 100); err != nil || !ok || s.Version != 4 {
		t.Fatalf("the snapshot after the restore: %+v %v %v", s, ok, err)
	}
	q := cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"n:7"}}}}
	seq, _, err := restored.Query(ctx, q, 0, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	var found []cairn.Event
	for e, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, e)
	}
	if len(found) != 1 || string(found[0].Data) != `{"n":7}` {
		t.Fatalf("a query by tag after the restore found %d events", len(found))
	}
	res, err := restored.Append(ctx, "order-0", cairn.Exact(9), cairn.EventData{Type: "OrderPaid"})
	if err != nil || res.Version != 10 || res.Position != got[len(got)-1].Position+1 {
		t.Fatalf("an append to the restored store: %+v, %v; want version 10 at position %d", res, err, got[len(got)-1].Position+1)
	}
}
