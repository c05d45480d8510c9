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
	"google.golang.org/protobuf/encoding/protowire"
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

// proposedSize is the encoded size of a proposed message (v1 Append's and
// BatchAppend's have the same fields: id 1, metadata 2, custom metadata 3,
// data 4), as proto.Size computes it, without the allocations that
// proto.Size makes for each entry of a map.
func proposedSize(id *shared.UUID, meta map[string]string, custom, data []byte) int {
	n := 0
	if id != nil {
		n += 1 + protowire.SizeBytes(proto.Size(id))
	}
	for k, v := range meta {
		entry := 1 + protowire.SizeBytes(len(k)) + 1 + protowire.SizeBytes(len(v))
		n += 1 + protowire.SizeBytes(entry)
	}
	if len(custom) > 0 {
		n += 1 + protowire.SizeBytes(len(custom))
	}
	if len(data) > 0 {
		n += 1 + protowire.SizeBytes(len(data))
	}
	return n
}

// appendReqSize is the encoded size of a v1 AppendReq that carries a
// proposed message of the given size (field 2 of its oneof).
func appendReqSize(proposed int) int { return 1 + protowire.SizeBytes(proposed) }

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
