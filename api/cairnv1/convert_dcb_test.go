package cairnv1_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
)

func TestConditionRoundTrip(t *testing.T) {
	after := uint64(41)
	for _, c := range []*cairn.AppendCondition{
		nil,
		{},
		{FailIfEventsMatch: cairn.Query{Items: []cairn.QueryItem{{Types: []string{"A", "B"}, Tags: []string{"x"}}, {Tags: []string{"y", "z"}}}}, After: &after},
	} {
		got := cairnv1.ToCondition(cairnv1.FromCondition(c))
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip of %+v gave %+v", c, got)
		}
	}
	zero := uint64(0)
	if got := cairnv1.ToCondition(cairnv1.FromCondition(&cairn.AppendCondition{After: &zero})); got.After == nil || *got.After != 0 {
		t.Fatalf("After 0 did not survive the wire: %+v", got)
	}
}

// A failed condition reaches the client as the typed error, with its
// position, alone or inside a batch.
func TestConditionErrorRoundTrip(t *testing.T) {
	err := cairnv1.FromStatus(cairnv1.Status(&cairn.ConditionError{Position: 7}))
	var ce *cairn.ConditionError
	if !errors.As(err, &ce) || ce.Position != 7 || !errors.Is(err, cairn.ErrConditionFailed) {
		t.Fatalf("got %v, want a ConditionError at 7", err)
	}
	err = cairnv1.FromStatus(cairnv1.Status(&cairn.BatchError{Errs: []error{nil, &cairn.ConditionError{Position: 3}}}))
	var be *cairn.BatchError
	if !errors.As(err, &be) || be.Errs[0] != nil || !errors.As(be.Errs[1], &ce) || ce.Position != 3 {
		t.Fatalf("got %v, want a BatchError with a ConditionError at 3", err)
	}
}

func TestIndexKeyRoundTrip(t *testing.T) {
	for k := cairn.IndexCategory; k <= cairn.IndexCorrelation; k++ {
		key := cairn.IndexKey{Kind: k, Value: "v"}
		if got := cairnv1.ToIndexKey(cairnv1.FromIndexKey(key)); got != key {
			t.Fatalf("round trip of %v gave %v", key, got)
		}
	}
}
