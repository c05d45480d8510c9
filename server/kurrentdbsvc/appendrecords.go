package kurrentdbsvc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server/acl"
	streamerrors "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/errors"
	apiv2 "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The actual states KurrentDB reports in a consistency violation for a
// stream that cannot be written at all.
const actualTombstoned = -100

// AppendRecords is KurrentDB 26.1's v2 append: records for any streams,
// interleaved, and consistency checks on any streams, written or not, all
// in one atomic [cairn.Store.AppendBatch]. Each written stream is one
// request of the batch, expecting what its check says (Any without one);
// each checked stream the request does not write is a check-only request
// (no events), which the engine checks with the rest, in the same critical
// section or transaction. A failed batch is answered with every check that
// failed, as KurrentDB does, and writes nothing.
//
// The records of one stream are written together, in their order, at the
// place of the stream's first record: the global log keeps the order of the
// streams' first records, not the interleaving of the request. Two checks
// of one stream are refused (one check per stream says everything).
//
// Under ACLs it needs the right to write each stream it writes and to read
// each stream it only checks; system streams are written as by the
// multi-stream append.
func (m *multiAppendService) AppendRecords(ctx context.Context, req *apiv2.AppendRecordsRequest) (*apiv2.AppendRecordsResponse, error) {
	if len(req.Records) == 0 {
		return nil, invalid("an AppendRecords request needs at least one record")
	}
	size := appendSize{limit: m.s.opts.MaxAppendBytes}
	if !size.add(proto.Size(req), len(req.Records)) {
		return nil, transactionTooLarge(size)
	}
	var (
		reqs   []cairn.AppendRequest
		index  = map[string]int{} // stream → its request
		checks = map[int]int{}    // request → its check
	)
	request := func(stream string) int {
		i, ok := index[stream]
		if !ok {
			i = len(reqs)
			index[stream] = i
			reqs = append(reqs, cairn.AppendRequest{Stream: stream, Expected: cairn.Any})
		}
		return i
	}
	maxEvent := m.s.store.MaxEventBytes()
	for i, rec := range req.Records {
		if rec.Stream == "" {
			return nil, invalid("records[%d].stream: each record of AppendRecords names its stream", i)
		}
		e, err := eventFromRecord(rec)
		if err != nil {
			return nil, invalid("records[%d]: %v", i, err)
		}
		if n := len(e.Data) + len(e.Metadata); n > maxEvent {
			return nil, recordTooLarge(rec, n, maxEvent)
		}
		r := request(rec.Stream)
		reqs[r].Events = append(reqs[r].Events, e)
	}
	for i, c := range req.Checks {
		sc := c.GetStreamState()
		if sc == nil {
			return nil, invalid("checks[%d]: not a stream state check, the only kind this server knows", i)
		}
		if sc.Stream == "" {
			return nil, invalid("checks[%d].stream: must not be empty", i)
		}
		exp, err := cairn.ParseExpectedVersion(sc.ExpectedState)
		if err != nil {
			return nil, invalid("checks[%d].expected_state: %v", i, err)
		}
		r := request(sc.Stream)
		if j, ok := checks[r]; ok {
			return nil, invalid("checks[%d]: stream %q is checked by checks[%d] already; give one check per stream", i, sc.Stream, j)
		}
		checks[r] = i
		reqs[r].Expected = exp
	}
	if err := m.allowRecords(ctx, reqs); err != nil {
		return nil, err
	}
	for i, r := range reqs {
		if err := checkWrite(r.Stream, r.Events); err != nil {
			return nil, v2Error(reqs, fmt.Errorf("requests[%d]: %w", i, err))
		}
	}
	results, err := m.s.batchWriter(reqs).AppendBatch(ctx, reqs...)
	if err != nil {
		m.s.metrics.Appends(appendOutcome(err), 1)
		var be *cairn.BatchError
		if errors.As(err, &be) && len(be.Errs) == len(reqs) {
			if v, ok := violations(reqs, checks, be); ok {
				return nil, v
			}
		}
		return nil, v2Error(reqs, err)
	}
	written := 0
	resp := &apiv2.AppendRecordsResponse{}
	for i, r := range results {
		if len(reqs[i].Events) == 0 {
			continue // checked only
		}
		written++
		resp.Revisions = append(resp.Revisions, &apiv2.StreamRevision{Stream: reqs[i].Stream, Revision: r.Version})
		resp.Position = max(resp.Position, int64(r.Position))
	}
	m.s.metrics.Appends("ok", written)
	return resp, nil
}

// allowRecords checks AppendRecords against the ACLs: the right to write
// each stream it writes, and to read each stream it only checks (the
// check tells the stream's state, as a read does).
func (m *multiAppendService) allowRecords(ctx context.Context, reqs []cairn.AppendRequest) error {
	if m.s.access == nil {
		return nil
	}
	for _, r := range reqs {
		op := acl.Write
		if len(r.Events) == 0 {
			op = acl.Read
		}
		if err := m.s.access.Check(ctx, op, r.Stream); errors.Is(err, acl.ErrAccessDenied) {
			return v2AccessDenied(ctx, err)
		} else if err != nil {
			return v2Error(reqs, err)
		}
	}
	return nil
}

func appendOutcome(err error) string {
	if errors.Is(err, cairn.ErrWrongExpectedVersion) {
		return "wrong_expected_version"
	}
	return "error"
}

// violations turns the failed requests of a batch into KurrentDB's
// consistency-violation error, one violation per failed check, in the order
// of the checks; a write to a tombstoned stream that no check names is a
// violation too (of Any, with check index -1), as KurrentDB reports it. ok
// is false when a request failed for another reason.
func violations(reqs []cairn.AppendRequest, checks map[int]int, be *cairn.BatchError) (error, bool) {
	var out []*streamerrors.ConsistencyViolation
	for i, err := range be.Errs {
		if err == nil {
			continue
		}
		actual := int64(0)
		var wev *cairn.WrongExpectedVersionError
		switch {
		case errors.As(err, &wev):
			actual = wev.Actual
		case errors.Is(err, cairn.ErrStreamDeleted):
			actual = actualTombstoned
		default:
			return nil, false
		}
		index, checked := checks[i]
		if !checked {
			index = -1
		}
		out = append(out, &streamerrors.ConsistencyViolation{
			CheckIndex: int32(index),
			Type: &streamerrors.ConsistencyViolation_StreamState{StreamState: &streamerrors.ConsistencyViolation_StreamStateViolation{
				Stream: reqs[i].Stream, ExpectedState: reqs[i].Expected.Int64(), ActualState: actual,
			}},
		})
	}
	slices.SortStableFunc(out, func(a, b *streamerrors.ConsistencyViolation) int {
		// Checks in their order, then the unchecked tombstoned writes.
		ka, kb := uint32(a.CheckIndex), uint32(b.CheckIndex)
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	st := status.Newf(codes.FailedPrecondition, "%d consistency check(s) failed; nothing was written", len(out))
	return withDetails(st, &streamerrors.AppendConsistencyViolationErrorDetails{Violations: out}).Err(), true
}

// transactionTooLarge is the v2 protocol's error for an append past
// MaxAppendBytes: ABORTED with the transaction-size details, from which the
// clients make their typed errors.
func transactionTooLarge(a appendSize) error {
	st := status.Newf(codes.Aborted, "the append takes more than %d bytes (its records encoded, plus %d bytes each); split it", a.limit, AppendEventOverhead)
	return withDetails(st, &streamerrors.AppendTransactionSizeExceededErrorDetails{
		Size: int32(min(a.n, math.MaxInt32)), MaxSize: int32(min(a.limit, math.MaxInt32)),
	}).Err()
}

// recordTooLarge is the v2 protocol's error for a record larger than the
// Store's largest event (its data and metadata, properties and schema
// included).
func recordTooLarge(rec *apiv2.AppendRecord, size, limit int) error {
	st := status.New(codes.InvalidArgument, fmt.Sprintf("record %s of stream %q takes %d bytes, more than the largest event, %d bytes", rec.GetRecordId(), rec.Stream, size, limit))
	return withDetails(st, &streamerrors.AppendRecordSizeExceededErrorDetails{
		Stream: rec.Stream, RecordId: rec.GetRecordId(),
		Size: int32(min(size, math.MaxInt32)), MaxSize: int32(min(limit, math.MaxInt32)),
	}).Err()
}
