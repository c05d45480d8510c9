package cairnsvc

import (
	"context"
	"fmt"

	"github.com/cairndb/cairn/api/cairnv1"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/diskstore/backup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// backupSource is the engine a backup is taken of: the embedded one.
type backupSource interface {
	BeginBackup(ctx context.Context) (*diskstore.Backup, error)
}

// Backup streams a backup of the server's embedded engine, taken while it
// serves writes (package diskstore/backup): the manifest, then the files
// the client's previous backup lacks. It takes an administrator or an
// operator. The backup holds compaction back until it ends; a client that
// goes away ends it.
func (s *Service) Backup(req *cairnv1.BackupRequest, stream grpc.ServerStreamingServer[cairnv1.BackupChunk]) error {
	ctx := stream.Context()
	if err := s.allowOperator(ctx, "back up the store"); err != nil {
		return err
	}
	db, ok := s.store.Backend().(backupSource)
	if !ok {
		return status.Errorf(codes.Unimplemented, "backup: the server's engine (%T) is not the embedded one; back up PostgreSQL with its own tools (pg_dump, pg_basebackup)", s.store.Backend())
	}
	if len(req.GetPrevious()) > 0 {
		if _, err := backup.ParseManifest(req.GetPrevious()); err != nil {
			return status.Errorf(codes.InvalidArgument, "backup: the previous backup's manifest: %v", err)
		}
	}
	b, err := db.BeginBackup(ctx)
	if err != nil {
		return cairnv1.Status(fmt.Errorf("backup: %w", err))
	}
	defer b.Close()
	err = backup.Send(ctx, b, req.GetPrevious(), func(c backup.Chunk) error {
		return stream.Send(&cairnv1.BackupChunk{Manifest: c.Manifest, File: c.File, Offset: c.Offset, Data: c.Data})
	})
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return err
		}
		return cairnv1.Status(err)
	}
	return b.Close()
}
