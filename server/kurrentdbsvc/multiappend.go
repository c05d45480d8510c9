package kurrentdbsvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server/acl"
	"github.com/google/uuid"
	streamerrors "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/errors"
	apiv2 "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// multiAppendService implements KurrentDB's v2 multi-stream append on
// [cairn.Store.AppendBatch]: atomic when the engine implements
// [cairn.BatchAppender], as every engine shipped with cairn does. It
// writes what the v1 Append writes: system streams as the ACLs allow
// (administrators, by default), through the Store's system view, and
// refuses what v1 refuses (checkWrite).
type multiAppendService struct {
	apiv2.UnimplementedStreamsServiceServer
	s *Services
}

func (m *multiAppendService) AppendSession(stream grpc.ClientStreamingServer[apiv2.AppendRequest, apiv2.AppendSessionResponse]) error {
	ctx := stream.Context()
	var reqs []cairn.AppendRequest
	size := appendSize{limit: m.s.opts.MaxAppendBytes}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if !size.add(proto.Size(msg), len(msg.Records)) {
			err := size.tooLarge(ctx)
			drainAppend(stream, drainFactor*size.limit) // so that the client reads the status, not EOF
			return err
		}
		req, err := appendRequestFromV2(msg)
		if err != nil {
			return invalid("requests[%d]: %v", len(reqs), err)
		}
		reqs = append(reqs, req)
	}
	if len(reqs) == 0 {
		return invalid("an append session needs at least one request")
	}
	if m.s.access != nil {
		for _, r := range reqs {
			if err := m.s.access.Check(ctx, acl.Write, r.Stream); errors.Is(err, acl.ErrAccessDenied) {
				return v2AccessDenied(ctx, err)
			} else if err != nil {
				return v2Error(reqs, err)
			}
		}
	}
	for i, r := range reqs {
		if err := checkWrite(r.Stream, r.Events); err != nil {
			return v2Error(reqs, fmt.Errorf("requests[%d]: %w", i, err))
		}
	}
	results, err := m.s.batchWriter(reqs).AppendBatch(ctx, reqs...)
	if err != nil {
		m.s.metrics.Appends("error", 1)
		return v2Error(reqs, err)
	}
	m.s.metrics.Appends("ok", len(reqs))
	resp := &apiv2.AppendSessionResponse{}
	for i, r := range results {
		pos := int64(r.Position)
		resp.Output = append(resp.Output, &apiv2.AppendResponse{Stream: reqs[i].Stream, StreamRevision: r.Version, Position: &pos})
		resp.Position = max(resp.Position, pos)
	}
	return stream.SendAndClose(resp)
}

func appendRequestFromV2(msg *apiv2.AppendRequest) (cairn.AppendRequest, error) {
	exp := cairn.Any
	if msg.ExpectedRevision != nil {
		var err error
		if exp, err = cairn.ParseExpectedVersion(*msg.ExpectedRevision); err != nil {
			return cairn.AppendRequest{}, err
		}
	}
	req := cairn.AppendRequest{Stream: msg.Stream, Expected: exp}
	for i, rec := range msg.Records {
		e, err := eventFromRecord(rec)
		if err != nil {
			return cairn.AppendRequest{}, fmt.Errorf("records[%d]: %w", i, err)
		}
		req.Events = append(req.Events, e)
	}
	return req, nil
}

// The properties under which KurrentDB keeps a v2 record's schema in the
// event's metadata, which a v1 read returns.
const (
	propSchemaName   = "$schema.name"
	propSchemaFormat = "$schema.format"
)

// schemaFormatNames are the names KurrentDB writes in $schema.format.
var schemaFormatNames = map[apiv2.SchemaFormat]string{
	apiv2.SchemaFormat_SCHEMA_FORMAT_UNSPECIFIED: "Unspecified",
	apiv2.SchemaFormat_SCHEMA_FORMAT_JSON:        "Json",
	apiv2.SchemaFormat_SCHEMA_FORMAT_PROTOBUF:    "Protobuf",
	apiv2.SchemaFormat_SCHEMA_FORMAT_AVRO:        "Avro",
	apiv2.SchemaFormat_SCHEMA_FORMAT_BYTES:       "Bytes",
}

// eventFromRecord converts a v2 record as KurrentDB does: the schema name
// is the event type, a JSON format makes a JSON event, and the metadata is
// a JSON object of the record's properties with the schema's name and
// format added ($schema.name, $schema.format), which v1 reads return. A
// property of either of those names is refused: it would be lost.
func eventFromRecord(rec *apiv2.AppendRecord) (cairn.EventData, error) {
	format := rec.GetSchema().GetFormat()
	e := cairn.EventData{Type: rec.GetSchema().GetName(), Data: rec.Data, ContentType: cairn.ContentBinary}
	if format == apiv2.SchemaFormat_SCHEMA_FORMAT_JSON {
		e.ContentType = cairn.ContentJSON
	}
	if rec.RecordId != nil {
		id, err := uuid.Parse(rec.GetRecordId())
		if err != nil {
			return cairn.EventData{}, fmt.Errorf("record id %q is not a UUID", rec.GetRecordId())
		}
		e.ID = id
	}
	props := make(map[string]any, len(rec.Properties)+2)
	for k, v := range rec.Properties {
		if k == propSchemaName || k == propSchemaFormat {
			return cairn.EventData{}, fmt.Errorf("property %q is reserved: the server writes the record's schema under it", k)
		}
		props[k] = v.AsInterface()
	}
	props[propSchemaName] = e.Type
	name, ok := schemaFormatNames[format]
	if !ok {
		return cairn.EventData{}, fmt.Errorf("unknown schema format %d", format)
	}
	props[propSchemaFormat] = name
	b, err := json.Marshal(props)
	if err != nil {
		return cairn.EventData{}, fmt.Errorf("properties: %w", err)
	}
	e.Metadata = b
	return e, nil
}

// v2Error returns the rich status the v2 protocol defines for err, whose
// details the clients turn into their typed errors.
func v2Error(reqs []cairn.AppendRequest, err error) error {
	var wev *cairn.WrongExpectedVersionError
	var detail proto.Message
	c := codes.Internal
	switch {
	case errors.As(err, &wev):
		c = codes.FailedPrecondition
		detail = &streamerrors.StreamRevisionConflictErrorDetails{
			Stream: wev.Stream, ExpectedRevision: wev.Expected.Int64(), ActualRevision: wev.Actual,
		}
	case errors.Is(err, cairn.ErrStreamDeleted):
		c = codes.FailedPrecondition
		var se *cairn.StreamError
		name := ""
		if errors.As(err, &se) {
			name = se.Stream
		}
		detail = &streamerrors.StreamTombstonedErrorDetails{Stream: name}
	case errors.Is(err, cairn.ErrInvalidArgument):
		c = codes.InvalidArgument
	}
	st := status.New(c, err.Error())
	if detail != nil {
		if withDetail, derr := st.WithDetails(protoadapt.MessageV1Of(detail)); derr == nil {
			st = withDetail
		}
	}
	return st.Err()
}
