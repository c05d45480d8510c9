package kurrentdbsvc

import (
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// appendReqs are v1 Append messages as clients send them, and some that
// they could send.
func appendReqs() []*api.AppendReq {
	opts := func(rev any) *api.AppendReq {
		o := &api.AppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("order-1")}}
		switch rev := rev.(type) {
		case api.AppendReq_Options_Revision:
			o.ExpectedStreamRevision = &rev
		case api.AppendReq_Options_NoStream:
			o.ExpectedStreamRevision = &rev
		case api.AppendReq_Options_Any:
			o.ExpectedStreamRevision = &rev
		case api.AppendReq_Options_StreamExists:
			o.ExpectedStreamRevision = &rev
		}
		return &api.AppendReq{Content: &api.AppendReq_Options_{Options: o}}
	}
	pm := func(p *api.AppendReq_ProposedMessage) *api.AppendReq {
		return &api.AppendReq{Content: &api.AppendReq_ProposedMessage_{ProposedMessage: p}}
	}
	return []*api.AppendReq{
		{},
		opts(nil),
		opts(api.AppendReq_Options_Revision{Revision: 0}),
		opts(api.AppendReq_Options_Revision{Revision: 1<<64 - 1}),
		opts(api.AppendReq_Options_NoStream{NoStream: &shared.Empty{}}),
		opts(api.AppendReq_Options_Any{Any: &shared.Empty{}}),
		opts(api.AppendReq_Options_StreamExists{StreamExists: &shared.Empty{}}),
		{Content: &api.AppendReq_Options_{Options: &api.AppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{}}}},
		{Content: &api.AppendReq_Options_{Options: &api.AppendReq_Options{}}},
		pm(proposedEvent(make([]byte, 256))),
		pm(&api.AppendReq_ProposedMessage{}),
		pm(&api.AppendReq_ProposedMessage{Id: &shared.UUID{}}),
		pm(&api.AppendReq_ProposedMessage{
			Id:             &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
			Metadata:       map[string]string{metaType: "Placed", metaContentType: mimeJSON, "": "", "é": "ü"},
			CustomMetadata: []byte(`{"by":"ada"}`),
			Data:           []byte(`{"id":1}`),
		}),
		pm(&api.AppendReq_ProposedMessage{
			Id:       &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: -1, LeastSignificantBits: -1 << 63}}},
			Metadata: map[string]string{metaType: ""},
		}),
	}
}

// TestDecodeAppendReq checks that the hand decoder of a v1 Append's
// messages decodes what protobuf decodes, and leaves to protobuf what it
// does not take.
func TestDecodeAppendReq(t *testing.T) {
	var wire [][]byte
	for _, m := range appendReqs() {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		wire = append(wire, b)
		var got api.AppendReq
		if !decodeAppendReq(b, &got) {
			if m.GetContent() != nil {
				t.Errorf("%v: left to protobuf", m)
			}
			continue
		}
		checkDecoded(t, b, &got)
	}
	// Not for the hand decoder: protobuf keeps or refuses them.
	proposed := wire[9]
	for name, b := range map[string][]byte{
		"unknown field":        protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1),
		"both oneof members":   append(append([]byte(nil), wire[2]...), proposed...),
		"twice the same event": append(append([]byte(nil), proposed...), proposed...),
		"invalid UTF-8 in metadata": func() []byte {
			e := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "\xff")
			f := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), e)
			return protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), f)
		}(),
		"truncated":              proposed[:len(proposed)-1],
		"an Empty with a field":  protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), []byte{8, 1})),
		"a wrong wire type":      protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1),
		"a field number of zero": {0, 0},
	} {
		var got api.AppendReq
		if decodeAppendReq(b, &got) {
			t.Errorf("%s: decoded by hand as %v", name, &got)
		}
		if got.GetContent() != nil {
			t.Errorf("%s: the message was written: %v", name, &got)
		}
	}
}

// FuzzDecodeAppendReq checks the hand decoder against protobuf on any
// input: what it decodes, protobuf decodes the same. CI runs it for a few
// seconds (.ci/run).
func FuzzDecodeAppendReq(f *testing.F) {
	for _, m := range appendReqs() {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got api.AppendReq
		if decodeAppendReq(b, &got) {
			checkDecoded(t, b, &got)
		}
	})
}

// checkDecoded checks got, decoded by hand from b, against protobuf's
// decoding of b, and that it shares no memory with b.
func checkDecoded(t *testing.T, b []byte, got *api.AppendReq) {
	t.Helper()
	var want api.AppendReq
	if err := proto.Unmarshal(b, &want); err != nil {
		t.Fatalf("decoded by hand %v, which protobuf refuses: %v", got, err)
	}
	if !proto.Equal(got, &want) {
		t.Fatalf("decoded by hand as %v, protobuf decodes %v", got, &want)
	}
	// proto.Equal takes an empty byte field for an absent one; the
	// handler passes them on as they are.
	g, w := got.GetProposedMessage(), want.GetProposedMessage()
	if (g.GetData() == nil) != (w.GetData() == nil) || (g.GetCustomMetadata() == nil) != (w.GetCustomMetadata() == nil) {
		t.Fatalf("empty byte fields decoded as %q, %q; protobuf: %q, %q", g.GetData(), g.GetCustomMetadata(), w.GetData(), w.GetCustomMetadata())
	}
	if sn, wn := got.GetOptions().GetStreamIdentifier().GetStreamName(), want.GetOptions().GetStreamIdentifier().GetStreamName(); (sn == nil) != (wn == nil) {
		t.Fatalf("stream name decoded as %q, protobuf: %q", sn, wn)
	}
	// Nothing decoded may change with the buffer gRPC reuses.
	for i := range b {
		b[i] ^= 0xff
	}
	if !proto.Equal(got, &want) {
		t.Fatalf("the decoded message shares the input's memory")
	}
	for i := range b {
		b[i] ^= 0xff
	}
}

// TestCodecFallsBack checks that the codec decodes every message through
// protobuf that the hand decoder does not take, and encodes as protobuf.
func TestCodecFallsBack(t *testing.T) {
	c := Codec()
	in := &api.ReadReq{Options: &api.ReadReq_Options{ResolveLinks: true}}
	data, err := c.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out api.ReadReq
	if err := c.Unmarshal(data, &out); err != nil || !proto.Equal(in, &out) {
		t.Fatalf("decoded %v (%v), want %v", &out, err, in)
	}
	var req api.AppendReq
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0, 0})}, &req); err == nil {
		t.Fatal("a field number of zero decoded")
	}
}

// TestCodecDecodesSplitMessages checks the codec on messages that gRPC
// hands over in several buffers, as it does a large one: each decodes to
// what protobuf decodes, and a large BatchAppend request goes to the hand
// decoder, whose allocations are a fraction of protobuf's.
func TestCodecDecodesSplitMessages(t *testing.T) {
	c := Codec()
	for _, n := range []int{1, 7, 16 << 10} {
		for _, m := range appendReqs() {
			b, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var got api.AppendReq
			if err := c.Unmarshal(split(b, n), &got); err != nil {
				t.Fatalf("%v in buffers of %d bytes: %v", m, n, err)
			}
			checkDecoded(t, b, &got)
		}
		for _, m := range append(batchAppendReqs(), largeBatch(1000)) {
			b, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var got api.BatchAppendReq
			if err := c.Unmarshal(split(b, n), &got); err != nil {
				t.Fatalf("a request of %d events in buffers of %d bytes: %v", len(m.ProposedMessages), n, err)
			}
			checkBatchDecoded(t, b, &got)
		}
	}
	b, err := proto.Marshal(largeBatch(1000))
	if err != nil {
		t.Fatal(err)
	}
	data := split(b, 16<<10)
	allocs := func(c encoding.CodecV2) float64 {
		return testing.AllocsPerRun(5, func() {
			var m api.BatchAppendReq
			if err := c.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
		})
	}
	if hand, pb := allocs(c), allocs(encoding.GetCodecV2(grpcproto.Name)); hand > pb/2 {
		t.Errorf("a request of 1000 events in %d buffers took %.0f allocations to decode, protobuf %.0f: not decoded by hand", len(data), hand, pb)
	}
}

// largeBatch is a BatchAppend request of n events of 256 bytes, as the
// official clients send them.
func largeBatch(n int) *api.BatchAppendReq {
	data := make([]byte, 256)
	msgs := make([]*api.BatchAppendReq_ProposedMessage, n)
	for i := range msgs {
		pm := proposedEvent(data)
		msgs[i] = &api.BatchAppendReq_ProposedMessage{Id: pm.Id, Metadata: pm.Metadata, CustomMetadata: pm.CustomMetadata, Data: pm.Data}
	}
	return &api.BatchAppendReq{
		CorrelationId: &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
		Options: &api.BatchAppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("import-1")},
			ExpectedStreamPosition: &api.BatchAppendReq_Options_Any{Any: &emptypb.Empty{}}},
		ProposedMessages: msgs,
		IsFinal:          true,
	}
}

// batchAppendReqs are BatchAppend requests as clients send them, and
// some that they could send.
func batchAppendReqs() []*api.BatchAppendReq {
	event := func(p *api.AppendReq_ProposedMessage) *api.BatchAppendReq_ProposedMessage {
		return &api.BatchAppendReq_ProposedMessage{Id: p.Id, Metadata: p.Metadata, CustomMetadata: p.CustomMetadata, Data: p.Data}
	}
	var events []*api.BatchAppendReq_ProposedMessage
	for _, m := range appendReqs() {
		if p := m.GetProposedMessage(); p != nil {
			events = append(events, event(p))
		}
	}
	stream := &shared.StreamIdentifier{StreamName: []byte("order-1")}
	return []*api.BatchAppendReq{
		{},
		{IsFinal: true},
		{CorrelationId: &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}}, IsFinal: true, ProposedMessages: events[:1],
			Options: &api.BatchAppendReq_Options{StreamIdentifier: stream, ExpectedStreamPosition: &api.BatchAppendReq_Options_StreamPosition{StreamPosition: 41}}},
		{ProposedMessages: events, Options: &api.BatchAppendReq_Options{
			ExpectedStreamPosition: &api.BatchAppendReq_Options_NoStream{NoStream: &emptypb.Empty{}},
			DeadlineOption:         &api.BatchAppendReq_Options_Deadline{Deadline: durationpb.New(10 * time.Second)}}},
		{Options: &api.BatchAppendReq_Options{
			ExpectedStreamPosition: &api.BatchAppendReq_Options_Any{Any: &emptypb.Empty{}},
			DeadlineOption:         &api.BatchAppendReq_Options_Deadline_21_10_0{Deadline_21_10_0: &timestamppb.Timestamp{Seconds: -5, Nanos: -1}}}},
		{Options: &api.BatchAppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{},
			ExpectedStreamPosition: &api.BatchAppendReq_Options_StreamExists{StreamExists: &emptypb.Empty{}}}},
		{CorrelationId: &shared.UUID{}, Options: &api.BatchAppendReq_Options{}, ProposedMessages: []*api.BatchAppendReq_ProposedMessage{{}, {}}},
	}
}

// TestDecodeBatchAppendReq checks the hand decoder of BatchAppend's
// requests as TestDecodeAppendReq does the v1 Append's.
func TestDecodeBatchAppendReq(t *testing.T) {
	var wire [][]byte
	for _, m := range batchAppendReqs() {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		wire = append(wire, b)
		var got api.BatchAppendReq
		if !decodeBatchAppendReq(b, &got) {
			t.Errorf("%v: left to protobuf", m)
			continue
		}
		checkBatchDecoded(t, b, &got)
	}
	opts := protowire.AppendTag(nil, 2, protowire.BytesType)
	for name, b := range map[string][]byte{
		"unknown field":        protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1),
		"options twice":        append(append([]byte(nil), wire[2]...), wire[3]...),
		"an Empty with fields": protowire.AppendBytes(opts, protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), []byte{8, 1})),
		"two deadlines": protowire.AppendBytes(opts, append(
			protowire.AppendBytes(protowire.AppendTag(nil, 6, protowire.BytesType), nil),
			protowire.AppendBytes(protowire.AppendTag(nil, 7, protowire.BytesType), nil)...)),
		"truncated":         wire[3][:len(wire[3])-1],
		"a wrong wire type": protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 1),
		"a group":           protowire.AppendTag(protowire.AppendTag(nil, 3, protowire.StartGroupType), 3, protowire.EndGroupType),
	} {
		var got api.BatchAppendReq
		if decodeBatchAppendReq(b, &got) {
			t.Errorf("%s: decoded by hand as %v", name, &got)
		}
		if got.Options != nil || got.ProposedMessages != nil {
			t.Errorf("%s: the message was written: %v", name, &got)
		}
	}
}

// FuzzDecodeBatchAppendReq checks the hand decoder of BatchAppend's
// requests against protobuf on any input. CI runs it for a few seconds
// (.ci/run).
func FuzzDecodeBatchAppendReq(f *testing.F) {
	for _, m := range batchAppendReqs() {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got api.BatchAppendReq
		if decodeBatchAppendReq(b, &got) {
			checkBatchDecoded(t, b, &got)
		}
	})
}

// checkBatchDecoded is checkDecoded for a BatchAppend request.
func checkBatchDecoded(t *testing.T, b []byte, got *api.BatchAppendReq) {
	t.Helper()
	var want api.BatchAppendReq
	if err := proto.Unmarshal(b, &want); err != nil {
		t.Fatalf("decoded by hand %v, which protobuf refuses: %v", got, err)
	}
	if !proto.Equal(got, &want) {
		t.Fatalf("decoded by hand as %v, protobuf decodes %v", got, &want)
	}
	if len(got.ProposedMessages) != len(want.ProposedMessages) || (got.ProposedMessages == nil) != (want.ProposedMessages == nil) {
		t.Fatalf("%d events decoded, protobuf: %d", len(got.ProposedMessages), len(want.ProposedMessages))
	}
	for i, g := range got.ProposedMessages {
		w := want.ProposedMessages[i]
		if (g.Data == nil) != (w.Data == nil) || (g.CustomMetadata == nil) != (w.CustomMetadata == nil) {
			t.Fatalf("event %d: empty byte fields decoded as %q, %q; protobuf: %q, %q", i, g.Data, g.CustomMetadata, w.Data, w.CustomMetadata)
		}
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if !proto.Equal(got, &want) {
		t.Fatalf("the decoded message shares the input's memory")
	}
	for i := range b {
		b[i] ^= 0xff
	}
}

// TestEncodeAppendSuccess checks that the codec encodes a v1 Append's
// answers byte for byte as protobuf does.
func TestEncodeAppendSuccess(t *testing.T) {
	var answers []*api.AppendResp
	for _, res := range []cairn.AppendResult{{Version: -1}, {Version: 0}, {Version: 7, Position: 1}, {Version: 1<<63 - 1, Position: 1<<64 - 1}} {
		answers = append(answers, appendSuccess(res))
		if _, ok := encodeAppendSuccess(answers[len(answers)-1]); !ok {
			t.Errorf("the answer to %+v is left to protobuf", res)
		}
	}
	success := func(s *api.AppendResp_Success) *api.AppendResp {
		return &api.AppendResp{Result: &api.AppendResp_Success_{Success: s}}
	}
	answers = append(answers,
		&api.AppendResp{},
		success(nil),
		success(&api.AppendResp_Success{}),
		success(&api.AppendResp_Success{
			CurrentRevisionOption: &api.AppendResp_Success_NoStream{},
			PositionOption:        &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}},
		}),
		success(&api.AppendResp_Success{PositionOption: &api.AppendResp_Success_NoPosition{}}),
		success(&api.AppendResp_Success{PositionOption: &api.AppendResp_Success_Position{}}),
		success(&api.AppendResp_Success{PositionOption: &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{PreparePosition: 3}}}),
		&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: wrongExpectedVersion(&cairn.WrongExpectedVersionError{Expected: cairn.NoStream, Actual: 4})}},
	)
	c := Codec()
	for _, m := range answers {
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Marshal(m)
		if err != nil {
			t.Fatalf("%v: %v", m, err)
		}
		if b := got.Materialize(); string(b) != string(want) {
			t.Errorf("%v: encoded as %x, protobuf: %x", m, b, want)
		}
	}
	// Unknown fields are protobuf's to encode.
	m := appendSuccess(cairn.AppendResult{Version: 1})
	m.GetSuccess().ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1))
	if _, ok := encodeAppendSuccess(m); ok {
		t.Error("an answer with unknown fields encoded by hand")
	}
}

// TestEncodeBatchSuccess checks that the codec encodes BatchAppend's
// answers byte for byte as protobuf does.
func TestEncodeBatchSuccess(t *testing.T) {
	stream := &shared.StreamIdentifier{StreamName: []byte("order-1")}
	corrs := []*shared.UUID{
		nil,
		{},
		{Value: &shared.UUID_String_{String_: uuid.NewString()}},
		{Value: &shared.UUID_String_{}},
		{Value: &shared.UUID_Structured_{}},
		{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: -1, LeastSignificantBits: 1}}},
	}
	var answers []*api.BatchAppendResp
	for i, opts := range []*api.BatchAppendReq_Options{
		{StreamIdentifier: stream, ExpectedStreamPosition: &api.BatchAppendReq_Options_StreamPosition{StreamPosition: 3}},
		{StreamIdentifier: stream, ExpectedStreamPosition: &api.BatchAppendReq_Options_NoStream{NoStream: &emptypb.Empty{}}},
		{StreamIdentifier: &shared.StreamIdentifier{}, ExpectedStreamPosition: &api.BatchAppendReq_Options_StreamExists{}},
		{},
	} {
		for j, corr := range corrs {
			for _, res := range []cairn.AppendResult{{Version: -1}, {Version: 0}, {Version: 7, Position: 1 << 40}} {
				m := batchSuccess(corr, opts, res)
				if _, ok := encodeBatchSuccess(m); !ok {
					t.Errorf("options %d, correlation %d: the answer to %+v is left to protobuf", i, j, res)
				}
				answers = append(answers, m)
			}
		}
	}
	success := func(s *api.BatchAppendResp_Success) *api.BatchAppendResp {
		return &api.BatchAppendResp{Result: &api.BatchAppendResp_Success_{Success: s}}
	}
	answers = append(answers,
		&api.BatchAppendResp{},
		success(nil),
		success(&api.BatchAppendResp_Success{}),
		success(&api.BatchAppendResp_Success{
			CurrentRevisionOption: &api.BatchAppendResp_Success_NoStream{},
			PositionOption:        &api.BatchAppendResp_Success_NoPosition{NoPosition: &emptypb.Empty{}},
		}),
		success(&api.BatchAppendResp_Success{PositionOption: &api.BatchAppendResp_Success_Position{}}),
		success(&api.BatchAppendResp_Success{PositionOption: &api.BatchAppendResp_Success_Position{Position: &shared.AllStreamPosition{PreparePosition: 3}}}),
		&api.BatchAppendResp{Result: &api.BatchAppendResp_Success_{Success: &api.BatchAppendResp_Success{}}, ExpectedStreamPosition: &api.BatchAppendResp_Any{}},
		batchError(corrs[2], nil, codes.PermissionDenied, "denied", nil),
	)
	c := Codec()
	for _, m := range answers {
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Marshal(m)
		if err != nil {
			t.Fatalf("%v: %v", m, err)
		}
		if b := got.Materialize(); string(b) != string(want) {
			t.Errorf("%v: encoded as %x, protobuf: %x", m, b, want)
		}
	}
	m := batchSuccess(corrs[5], &api.BatchAppendReq_Options{StreamIdentifier: stream}, cairn.AppendResult{Version: 1})
	m.StreamIdentifier = &shared.StreamIdentifier{StreamName: []byte("s")}
	m.StreamIdentifier.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1))
	if _, ok := encodeBatchSuccess(m); ok {
		t.Error("an answer with unknown fields encoded by hand")
	}
}
