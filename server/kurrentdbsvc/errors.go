package kurrentdbsvc

import (
	"context"
	"errors"
	"strconv"

	"github.com/cairndb/cairn"
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
		setTrailer(ctx, trailerException, exceptionWrongExpectedVersion, trailerStreamName, wev.Stream,
			trailerExpectedVersion, strconv.FormatInt(wev.Expected.Int64(), 10),
			trailerActualVersion, strconv.FormatInt(wev.Actual, 10))
		return status.Error(codes.FailedPrecondition, err.Error())
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

func setTrailer(ctx context.Context, kv ...string) {
	// SetTrailer fails only outside an RPC, where there is no one to tell.
	_ = grpc.SetTrailer(ctx, metadata.Pairs(kv...))
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}
