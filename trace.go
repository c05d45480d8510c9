package cairn

import "context"

// begin starts op through [Hooks.Begin]. It returns ctx and a nil end when
// no hook is set; otherwise the caller must call end exactly once.
func (s *Store) begin(ctx context.Context, op Operation) (context.Context, func(Outcome)) {
	if h := s.opts.Hooks.Begin; h != nil {
		return h(ctx, op)
	}
	return ctx, nil
}

// appendOutcome is the outcome of an append that returned res and err.
func appendOutcome(events int, res AppendResult, err error) Outcome {
	if err != nil {
		return Outcome{Err: err}
	}
	return Outcome{Events: events, Position: res.Position}
}

// readOutcome is the outcome of a read that returned events and err.
func readOutcome(events []Event, err error) Outcome {
	o := Outcome{Events: len(events), Err: err}
	if len(events) > 0 {
		o.Position = events[len(events)-1].Position
	}
	return o
}
