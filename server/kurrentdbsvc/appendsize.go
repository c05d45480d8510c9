package kurrentdbsvc

import (
	"context"
	"math"
	"strconv"

	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	streamerrors "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/emptypb"
)

// AppendEventOverhead is what an append's size counts for each event
// beyond its encoded size: about what the server holds for it besides its
// bytes, so that a million empty events weigh what they cost.
const AppendEventOverhead = 128

// appendSize counts the size of an append as its messages arrive: their
// encoded size and AppendEventOverhead for each event.
type appendSize struct {
	limit, n int
}

// add counts a message of the given encoded size that holds events, and
// reports whether the append is still within the limit.
func (a *appendSize) add(encoded, events int) bool {
	a.n += encoded + events*AppendEventOverhead
	return a.n <= a.limit
}

// tooLarge is the error of an append past the limit, as KurrentDB reports
// it: InvalidArgument with its maximum-append-size-exceeded trailer, and
// details from which the clients make their typed errors (the v2
// protocol's transaction-size error, which the Go client returns as
// *kurrentdb.AppendTransactionSizeExceededError, and the v1
// MaximumAppendSizeExceeded).
func (a *appendSize) tooLarge(ctx context.Context) error {
	setTrailer(ctx, trailerException, exceptionMaxAppendSize, trailerMaxAppendSize, strconv.Itoa(a.limit))
	return a.status().Err()
}

// status is tooLarge's status without the trailer, for a BatchAppend
// response, which carries its own status while the call goes on.
func (a *appendSize) status() *status.Status {
	st := status.Newf(codes.InvalidArgument, "Maximum Append Size of %d Exceeded: the append takes more than %d bytes (its events encoded, plus %d bytes each); split it", a.limit, a.limit, AppendEventOverhead)
	return withDetails(st,
		&streamerrors.AppendTransactionSizeExceededErrorDetails{Size: int32(min(a.n, math.MaxInt32)), MaxSize: int32(min(a.limit, math.MaxInt32))},
		&shared.MaximumAppendSizeExceeded{MaxAppendSize: uint32(min(a.limit, math.MaxUint32))},
	)
}

// withDetails adds details to st; a detail that cannot be encoded is left
// out (it cannot happen with the protocol's messages).
func withDetails(st *status.Status, details ...proto.Message) *status.Status {
	for _, d := range details {
		if with, err := st.WithDetails(protoadapt.MessageV1Of(d)); err == nil {
			st = with
		}
	}
	return st
}

// drainFactor times MaxAppendBytes is what drainAppend reads at most.
const drainFactor = 64

// drainAppend reads and drops what a refused append's client still sends,
// so that the client reads the status rather than a broken stream, up to
// limit bytes.
func drainAppend(ss grpc.ServerStream, limit int) {
	for n := 0; n <= limit; {
		var m emptypb.Empty
		if ss.RecvMsg(&m) != nil {
			return
		}
		n += proto.Size(&m)
	}
}
