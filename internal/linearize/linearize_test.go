package linearize

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"
)

func op(in any, call, ret int64, res Result) porcupine.Operation {
	return porcupine.Operation{Input: in, Call: call, Output: res, Return: ret}
}

func TestModel(t *testing.T) {
	never := int64(math.MaxInt64)
	cases := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"appends and a read in order", []porcupine.Operation{
			op(Append{"s", NoStream}, 0, 1, Result{Acked, 0}),
			op(Append{"s", Any}, 2, 3, Result{Acked, 1}),
			op(Read{"s"}, 4, 5, Result{Acked, 1}),
		}, porcupine.Ok},
		{"a read misses an acknowledged append", []porcupine.Operation{
			op(Append{"s", Any}, 0, 1, Result{Acked, 0}),
			op(Read{"s"}, 2, 3, Result{Acked, -1}),
		}, porcupine.Illegal},
		{"two appends acknowledged at one version", []porcupine.Operation{
			op(Append{"s", Any}, 0, 3, Result{Acked, 0}),
			op(Append{"s", Any}, 1, 4, Result{Acked, 0}),
		}, porcupine.Illegal},
		{"a conflict whose expectation held", []porcupine.Operation{
			op(Append{"s", Any}, 0, 1, Result{Acked, 0}),
			op(Append{"s", 0}, 2, 3, Result{Conflict, 0}),
		}, porcupine.Illegal},
		{"an unknown append seen later", []porcupine.Operation{
			op(Append{"s", Any}, 0, never, Result{Unknown, 0}),
			op(Read{"s"}, 2, 3, Result{Acked, 0}),
		}, porcupine.Ok},
		{"an unknown append never seen", []porcupine.Operation{
			op(Append{"s", Any}, 0, never, Result{Unknown, 0}),
			op(Read{"s"}, 2, 3, Result{Acked, -1}),
		}, porcupine.Ok},
		{"an unknown append whose expectation never held cannot explain a read", []porcupine.Operation{
			op(Append{"s", Any}, 0, 1, Result{Acked, 0}),
			op(Append{"s", 5}, 2, never, Result{Unknown, 0}),
			op(Read{"s"}, 3, 4, Result{Acked, 1}),
		}, porcupine.Illegal},
		{"streams are apart", []porcupine.Operation{
			op(Append{"a", Any}, 0, 1, Result{Acked, 0}),
			op(Read{"b"}, 2, 3, Result{Acked, -1}),
		}, porcupine.Ok},
	}
	for _, c := range cases {
		if got := porcupine.CheckOperationsTimeout(Model, c.ops, 0); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestLongestWithoutAck(t *testing.T) {
	h := NewHistory()
	h.ops = []porcupine.Operation{
		op(Append{"s", Any}, 0, 10, Result{Acked, 0}),
		op(Append{"s", Any}, 0, 40, Result{Acked, 1}),
		op(Append{"s", Any}, 0, math.MaxInt64, Result{Unknown, 0}),
		op(Read{"s"}, 45, 90, Result{Acked, 1}),
	}
	if got := h.LongestWithoutAck(0, 100); got != 60 {
		t.Fatalf("longest without an acknowledged append %v, want 60ns", got)
	}
}
