package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/diskstore/backup"
	"github.com/cairndb/cairn/remotestore"
	"github.com/cairndb/cairn/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// backupThrough backs the server's store up into the set in dest over
// cairn.v1's Backup call, as the user.
func backupThrough(ctx context.Context, rs *remotestore.Store, dest string) (*backup.Result, error) {
	set, err := backup.OpenSet(dest)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	prev, err := set.PreviousManifest()
	if err != nil {
		return nil, err
	}
	stream, err := rs.Backup(ctx, prev)
	if err != nil {
		return nil, err
	}
	return set.Receive(ctx, func() (backup.Chunk, error) {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return backup.Chunk{}, io.EOF
		}
		if err != nil {
			return backup.Chunk{}, err
		}
		return backup.Chunk{Manifest: c.GetManifest(), File: c.GetFile(), Offset: c.GetOffset(), Data: c.GetData()}, nil
	}, backup.Options{})
}

// A backup through the server takes an administrator or an operator;
// it holds what was appended before it, and restores to a store that
// passes its check. A server on an engine that is not the embedded one
// says it cannot.
func TestBackupThroughTheServer(t *testing.T) {
	ctx := context.Background()
	db, err := diskstore.Open(filepath.Join(t.TempDir(), "store"), diskstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := startOn(t, db, server.Options{Backup: backup.StreamFunc(db)})
	ts.createUser(t, "bob", "bob-pw")
	ts.createUser(t, "olga", "olga-pw", "$ops")
	for i := range 50 {
		if _, err := ts.store.Append(ctx, fmt.Sprint("order-", i%5), cairn.Any, cairn.EventData{Type: "OrderPlaced", Data: fmt.Appendf(nil, `{"n":%d}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
	dest := filepath.Join(t.TempDir(), "backups")
	if _, err := backupThrough(ctx, ts.remote(t, "bob", "bob-pw"), dest); status.Code(errors.Unwrap(err)) != codes.PermissionDenied && status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a backup by a user neither administrator nor operator: %v, want PermissionDenied", err)
	}
	for _, user := range []struct{ name, password string }{{"olga", "olga-pw"}, {"admin", server.DefaultAdminPassword}} {
		res, err := backupThrough(ctx, ts.remote(t, user.name, user.password), dest)
		if err != nil {
			t.Fatalf("a backup by %s: %v", user.name, err)
		}
		if res.Manifest.Head < 50 {
			t.Fatalf("the backup by %s holds positions below %d, want all 50", user.name, res.Manifest.Head)
		}
	}
	// A manifest that is not one is refused.
	stream, err := ts.remote(t, "admin", server.DefaultAdminPassword).Backup(ctx, []byte(`{"format":1}`))
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a backup after a malformed manifest: %v, want InvalidArgument", err)
	}
	gens, err := backup.List(dest)
	if err != nil || len(gens) != 2 {
		t.Fatalf("the set holds %d generations, %v", len(gens), err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := backup.Restore(ctx, dest, restored, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := diskstore.Check(ctx, restored, diskstore.CheckOptions{TempDir: t.TempDir()})
	if err != nil || !r.OK() {
		t.Fatalf("check of the restored store: %v, %+v", err, r)
	}
	// The restored store holds the server's users and events: it serves.
	rdb, err := diskstore.Open(restored, diskstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rts := startOn(t, rdb, server.Options{Backup: backup.StreamFunc(rdb)})
	got, err := cairn.NewStore(rts.remote(t, "olga", "olga-pw"), cairn.Options{}).ReadStream(ctx, "order-3", 0, 100, cairn.Forward)
	if err != nil || len(got) != 10 {
		t.Fatalf("order-3 on the restored server: %d events, %v", len(got), err)
	}

	mem := start(t, server.Options{})
	_, err = backupThrough(ctx, mem.remote(t, "admin", server.DefaultAdminPassword), filepath.Join(t.TempDir(), "mem"))
	if status.Code(errors.Unwrap(err)) != codes.Unimplemented && status.Code(err) != codes.Unimplemented {
		t.Fatalf("a backup of a server on the memory engine: %v, want Unimplemented", err)
	}
}
