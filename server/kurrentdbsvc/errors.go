package kurrentdbsvc

import (
	"context"
	"errors"
	"strconv"

	"github.com/cairndb/cairn"
	streamerrors "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The trailer keys and values with which KurrentDB reports an exception;
// clients read them to return their typed errors.
const (
	trailerException       = "exception"
	trailerStreamName      = "stream-name"
	trailerExpectedVersion = "expected-version"
	trailerActualVersion   = "actual-version"
	trailerMaxAppendSize   = "maximum-append-size"
	trailerGroupName       = "group-name"

	exceptionStreamDeleted        = "stream-deleted"
	exceptionWrongExpectedVersion = "wrong-expected-version"
	exceptionMaxAppendSize        = "maximum-append-size-exceeded"
	exceptionGroupExists          = "persistent-subscription-exists"
	exceptionGroupNotFound        = "persistent-subscription-does-not-exist"
	exceptionGroupDropped         = "persistent-subscription-dropped"
	exceptionMaxSubscribers       = "maximum-subscribers-reached"
)

// rpcError converts an error from the Store into the status and trailers
// KurrentDB uses for it. ctx is the RPC's context, on which the trailers are
// set; stream names the stream the operation was about.
func rpcError(ctx context.Context, stream string, err error) error {
	var wev *cairn.WrongExpectedVersionError
	var inv *cairn.InvalidArgumentError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, cairn.ErrStreamDeleted):
		setTrailer(ctx, trailerException, exceptionStreamDeleted, trailerStreamName, stream)
		return status.Errorf(codes.FailedPrecondition, "event stream %q is deleted", stream)
	case errors.As(err, &wev):
		return wrongExpectedVersionStatus(ctx, wev)
	case errors.As(err, &inv):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, cairn.ErrStreamNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, cairn.ErrNotSupported):
		return status.Error(codes.Unimplemented, err.Error())
	case errors.Is(err, cairn.ErrClosed):
		return status.Error(codes.Unavailable, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Internal, err.Error())
}

// wrongExpectedVersionStatus is KurrentDB's answer to an operation
// refused by its expected version: FAILED_PRECONDITION with its message and
// trailers (from which the Node.js, Java and .NET clients make their
// WrongExpectedVersion errors) and the v2 protocol's revision-conflict
// detail, from which the Go client makes its typed
// StreamRevisionConflictError (it reads no trailer of it).
func wrongExpectedVersionStatus(ctx context.Context, wev *cairn.WrongExpectedVersionError) error {
	setTrailer(ctx, trailerException, exceptionWrongExpectedVersion, trailerStreamName, wev.Stream,
		trailerExpectedVersion, strconv.FormatInt(wev.Expected.Int64(), 10),
		trailerActualVersion, strconv.FormatInt(wev.Actual, 10))
	op := "Append"
	switch wev.Op {
	case "delete":
		op = "Delete"
	case "tombstone":
		op = "Tombstone"
	}
	st := status.Newf(codes.FailedPrecondition, "%s failed due to WrongExpectedVersion. Stream: %s, Expected version: %d, Actual version: %d",
		op, wev.Stream, wev.Expected.Int64(), wev.Actual)
	return withDetails(st, &streamerrors.StreamRevisionConflictErrorDetails{
		Stream: wev.Stream, ExpectedRevision: wev.Expected.Int64(), ActualRevision: wev.Actual,
	}).Err()
}

func setTrailer(ctx context.Context, kv ...string) {
	// SetTrailer fails only outside an RPC, where there is no one to tell.
	_ = grpc.SetTrailer(ctx, metadata.Pairs(kv...))
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}
