package kurrentdbsvc

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/protobuf/proto"
)

// TestProposedSize: the size the limit counts for a proposed message is
// its encoded size, for every shape of id, metadata and payload.
func TestProposedSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	bytesOf := func() []byte {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return []byte{}
		}
		return make([]byte, rng.IntN(300))
	}
	for i := range 500 {
		var id *shared.UUID
		switch i % 4 {
		case 1:
			id = &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}}
		case 2:
			id = &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: rng.Int64() - rng.Int64(), LeastSignificantBits: -1}}}
		case 3:
			id = &shared.UUID{}
		}
		meta := map[string]string{}
		for range rng.IntN(4) {
			meta[strings.Repeat("k", rng.IntN(200))] = strings.Repeat("v", rng.IntN(200))
		}
		custom, data := bytesOf(), bytesOf()
		v1 := &api.AppendReq{Content: &api.AppendReq_ProposedMessage_{ProposedMessage: &api.AppendReq_ProposedMessage{Id: id, Metadata: meta, CustomMetadata: custom, Data: data}}}
		batch := &api.BatchAppendReq_ProposedMessage{Id: id, Metadata: meta, CustomMetadata: custom, Data: data}
		got := proposedSize(id, meta, custom, data)
		if want := proto.Size(batch); got != want {
			t.Fatalf("message %d: proposedSize %d, proto.Size of the batch message %d", i, got, want)
		}
		if got, want := appendReqSize(got), proto.Size(v1); got != want {
			t.Fatalf("message %d: appendReqSize %d, proto.Size of the append request %d", i, got, want)
		}
	}
}
