package kurrentdbsvc

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

// appendCall is one v1 Append call as the handler sees it: the messages
// it receives, and the answer it sends.
type appendCall struct {
	grpc.ServerStream
	ctx   context.Context
	codec encoding.CodecV2
	msgs  []mem.BufferSlice // encoded, as gRPC receives them
	next  int
	resp  *api.AppendResp
}

func (c *appendCall) Context() context.Context { return c.ctx }

func (c *appendCall) Recv() (*api.AppendReq, error) {
	if c.next == len(c.msgs) {
		return nil, io.EOF
	}
	c.next++
	m := new(api.AppendReq)
	return m, c.codec.Unmarshal(c.msgs[c.next-1], m)
}

func (c *appendCall) SendAndClose(r *api.AppendResp) error {
	c.resp = r
	return nil
}

func (c *appendCall) SetTrailer(metadata.MD) {}

// proposedEvent is an event as the official Go client proposes it: a
// structured random id, the system metadata, 256 bytes of data.
func proposedEvent(data []byte) *api.AppendReq_ProposedMessage {
	id := uuid.New()
	return &api.AppendReq_ProposedMessage{
		Id: &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
			MostSignificantBits:  int64(uint64(id[0])<<56 | uint64(id[1])<<48 | uint64(id[2])<<40 | uint64(id[3])<<32 | uint64(id[4])<<24 | uint64(id[5])<<16 | uint64(id[6])<<8 | uint64(id[7])),
			LeastSignificantBits: int64(uint64(id[8])<<56 | uint64(id[9])<<48 | uint64(id[10])<<40 | uint64(id[11])<<32 | uint64(id[12])<<24 | uint64(id[13])<<16 | uint64(id[14])<<8 | uint64(id[15])),
		}}},
		Metadata:       map[string]string{metaType: "Measured", metaContentType: mimeBinary},
		CustomMetadata: []byte{},
		Data:           data,
	}
}

// BenchmarkAppendHandler runs the v1 Append handler, the path of every
// append of the official clients, on the memory engine without a network:
// one event of 256 bytes per append to one of 64 streams, an exact
// expected revision, its messages decoded by the server's codec
// ("server") or by gRPC's protobuf codec ("protobuf"). It guards what the
// server does per append between the protocol's messages and the engine:
// allocs/op, B/op.
//
//	go test -run '^$' -bench AppendHandler -benchmem ./server/kurrentdbsvc
func BenchmarkAppendHandler(b *testing.B) {
	for _, codec := range benchCodecs {
		b.Run(codec.name, func(b *testing.B) {
			store := cairn.NewStore(memstore.New(), cairn.Options{})
			defer store.Close()
			svc := &streamsService{s: New(Host{Store: store}, Options{})}
			data := make([]byte, 256)
			const streams = 64
			calls := make([]appendCall, b.N)
			for i := range calls {
				opts := &api.AppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: fmt.Appendf(nil, "stream-%d", i%streams)}}
				if i < streams {
					opts.ExpectedStreamRevision = &api.AppendReq_Options_NoStream{NoStream: &shared.Empty{}}
				} else {
					opts.ExpectedStreamRevision = &api.AppendReq_Options_Revision{Revision: uint64(i/streams - 1)}
				}
				calls[i] = appendCall{ctx: context.Background(), codec: codec.codec, msgs: []mem.BufferSlice{
					encode(b, &api.AppendReq{Content: &api.AppendReq_Options_{Options: opts}}),
					encode(b, &api.AppendReq{Content: &api.AppendReq_ProposedMessage_{ProposedMessage: proposedEvent(data)}}),
				}}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				c := &calls[i]
				if err := svc.Append(c); err != nil {
					b.Fatal(err)
				}
				if c.resp.GetSuccess() == nil {
					b.Fatalf("append %d: %v", i, c.resp)
				}
			}
		})
	}
}

// benchCodecs are the codecs the handler benchmarks decode with.
var benchCodecs = []struct {
	name  string
	codec encoding.CodecV2
}{{"server", Codec()}, {"protobuf", encoding.GetCodecV2(grpcproto.Name)}}

// encode returns m as gRPC receives it: in buffers of at most 16 KiB,
// the largest HTTP/2 frame a peer sends unless told otherwise.
func encode(b *testing.B, m proto.Message) mem.BufferSlice {
	buf, err := proto.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	return split(buf, 16<<10)
}

// split returns b in buffers of at most n bytes.
func split(b []byte, n int) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > n {
		s = append(s, mem.SliceBuffer(b[:n]))
		b = b[n:]
	}
	return append(s, mem.SliceBuffer(b))
}

// batchCall is one BatchAppend call as the handler sees it: the requests
// it receives, and the answers it sends.
type batchCall struct {
	grpc.ServerStream
	ctx     context.Context
	codec   encoding.CodecV2
	reqs    []mem.BufferSlice // encoded, as gRPC receives them
	next    int
	mu      sync.Mutex
	answers int
	failed  *api.BatchAppendResp
}

func (c *batchCall) Context() context.Context { return c.ctx }

func (c *batchCall) Recv() (*api.BatchAppendReq, error) {
	if c.next == len(c.reqs) {
		return nil, io.EOF
	}
	c.next++
	m := new(api.BatchAppendReq)
	return m, c.codec.Unmarshal(c.reqs[c.next-1], m)
}

func (c *batchCall) Send(r *api.BatchAppendResp) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answers++
	if r.GetSuccess() == nil && c.failed == nil {
		c.failed = r
	}
	return nil
}

// BenchmarkBatchAppendHandler runs the BatchAppend handler, the path of
// every append of the .NET client, on the memory engine without a
// network: b.N appends of one event of 256 bytes on one call, to 64
// streams in turn, each with an exact expected revision. allocs/op and
// B/op are per append.
//
//	go test -run '^$' -bench BatchAppendHandler -benchmem ./server/kurrentdbsvc
func BenchmarkBatchAppendHandler(b *testing.B) {
	for _, codec := range benchCodecs {
		b.Run(codec.name, func(b *testing.B) { benchBatchAppend(b, codec.codec, 1) })
	}
}

// BenchmarkDecodeBatchAppendLarge decodes a BatchAppend request of 1000
// events of 256 bytes (about 290 KiB, which gRPC hands over in buffers of
// 16 KiB): the server's decoding of an import, or of any large append,
// over the wire. The figures are per request, but ns/event.
//
//	go test -run '^$' -bench DecodeBatchAppendLarge -benchmem ./server/kurrentdbsvc
func BenchmarkDecodeBatchAppendLarge(b *testing.B) {
	const events = 1000
	req := encode(b, largeBatch(events))
	if len(req) < 2 {
		b.Fatalf("the request is in %d buffer", len(req))
	}
	for _, codec := range benchCodecs {
		b.Run(codec.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var m api.BatchAppendReq
				if err := codec.codec.Unmarshal(req, &m); err != nil || len(m.ProposedMessages) != events {
					b.Fatalf("%d events decoded: %v", len(m.ProposedMessages), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
		})
	}
}

// benchBatchAppend runs b.N appends of events events each over one
// BatchAppend call, decoded by codec.
func benchBatchAppend(b *testing.B, codec encoding.CodecV2, events int) {
	store := cairn.NewStore(memstore.New(), cairn.Options{})
	defer store.Close()
	svc := &streamsService{s: New(Host{Store: store}, Options{})}
	data := make([]byte, 256)
	const streams = 64
	call := &batchCall{ctx: context.Background(), codec: codec, reqs: make([]mem.BufferSlice, b.N)}
	for i := range call.reqs {
		opts := &api.BatchAppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: fmt.Appendf(nil, "stream-%d", i%streams)}}
		if i < streams {
			opts.ExpectedStreamPosition = &api.BatchAppendReq_Options_NoStream{NoStream: &emptypb.Empty{}}
		} else {
			opts.ExpectedStreamPosition = &api.BatchAppendReq_Options_StreamPosition{StreamPosition: uint64((i/streams)*events - 1)}
		}
		msgs := make([]*api.BatchAppendReq_ProposedMessage, events)
		for j := range msgs {
			pm := proposedEvent(data)
			msgs[j] = &api.BatchAppendReq_ProposedMessage{Id: pm.Id, Metadata: pm.Metadata, CustomMetadata: pm.CustomMetadata, Data: pm.Data}
		}
		call.reqs[i] = encode(b, &api.BatchAppendReq{
			CorrelationId:    &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
			Options:          opts,
			ProposedMessages: msgs,
			IsFinal:          true,
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	if err := svc.BatchAppend(call); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if call.failed != nil || call.answers != b.N {
		b.Fatalf("%d answers to %d appends; a failure: %v", call.answers, b.N, call.failed)
	}
}

// readCall is one Read call as the handler sees it; it encodes each
// response as gRPC's codec would.
type readCall struct {
	grpc.ServerStream
	ctx    context.Context
	events int
	bytes  int
}

func (c *readCall) Context() context.Context { return c.ctx }

func (c *readCall) Send(r *api.ReadResp) error {
	b, err := proto.Marshal(r)
	if err != nil {
		return err
	}
	c.events++
	c.bytes += len(b)
	return nil
}

// BenchmarkReadHandler reads a stream of 1000 events of 256 bytes through
// the Read handler, on the memory engine, each response encoded as gRPC
// encodes it: the path of every event a client reads or is delivered.
// allocs/op and B/op are per event.
//
//	go test -run '^$' -bench ReadHandler -benchmem ./server/kurrentdbsvc
func BenchmarkReadHandler(b *testing.B) {
	store := cairn.NewStore(memstore.New(), cairn.Options{})
	defer store.Close()
	svc := &streamsService{s: New(Host{Store: store}, Options{})}
	const n = 1000
	events := make([]cairn.EventData, n)
	for i := range events {
		events[i] = cairn.EventData{ID: uuid.New(), Type: "Measured", ContentType: cairn.ContentBinary, Data: make([]byte, 256)}
	}
	if _, err := store.Append(context.Background(), "stream", cairn.NoStream, events...); err != nil {
		b.Fatal(err)
	}
	req := &api.ReadReq{Options: &api.ReadReq_Options{
		StreamOption: &api.ReadReq_Options_Stream{Stream: &api.ReadReq_Options_StreamOptions{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("stream")},
			RevisionOption:   &api.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}},
		}},
		ReadDirection: api.ReadReq_Options_Forwards,
		CountOption:   &api.ReadReq_Options_Count{Count: n},
		FilterOption:  &api.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
		UuidOption:    &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_Structured{Structured: &shared.Empty{}}},
	}}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += n {
		call := &readCall{ctx: context.Background()}
		if err := svc.Read(req, call); err != nil {
			b.Fatal(err)
		}
		if call.events != n {
			b.Fatalf("read %d events, want %d", call.events, n)
		}
	}
}
