package cairnsvc

import (
	"context"

	"github.com/cairndb/cairn/api/cairnv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// BackupFunc streams a backup of the store's engine for the Backup call:
// previous is the client's newest backup's manifest (nil for none); send
// sends one message: the first holds the manifest, each of the others a
// piece of a file. It returns a gRPC status, or an error cairnv1.Status
// converts. Package diskstore/backup's StreamFunc is one, for the
// embedded engine.
type BackupFunc func(ctx context.Context, previous []byte, send func(manifest []byte, file string, offset int64, data []byte) error) error

// Backup implements cairnv1.CairnServer: it streams a backup through
// [Options.Backup], for an administrator or an operator. Without one the
// call is UNIMPLEMENTED: the engine takes no backups through cairn.
func (s *Service) Backup(req *cairnv1.BackupRequest, stream grpc.ServerStreamingServer[cairnv1.BackupChunk]) error {
	ctx := stream.Context()
	if err := s.allowOperator(ctx, "back up the store"); err != nil {
		return err
	}
	if s.backup == nil {
		return status.Error(codes.Unimplemented, "backup: the server's engine takes no backups through cairn: only the embedded one does; back up PostgreSQL with its own tools (pg_dump, pg_basebackup)")
	}
	err := s.backup(ctx, req.GetPrevious(), func(manifest []byte, file string, offset int64, data []byte) error {
		return stream.Send(&cairnv1.BackupChunk{Manifest: manifest, File: file, Offset: offset, Data: data})
	})
	if _, ok := status.FromError(err); ok || err == nil {
		return err
	}
	return cairnv1.Status(err)
}
