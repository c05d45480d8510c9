package aggregate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cairndb/cairn"
)

// Decisions over dynamic consistency boundaries
//
// A Decider takes decisions the way the dynamic consistency boundary
// specification describes them, rather than per aggregate: the state a
// command is decided on is folded from the events that one or more queries
// select (its decision model), and the events the decision records are
// appended on the condition that no event matching those queries was
// appended since they were read. Two decisions that read overlapping events
// cannot both commit; decisions over disjoint events never wait for each
// other, whatever streams they write.

// Projection is one part of a decision model: the events Query selects,
// folded into the state by Evolve (a course's capacity, the number of a
// student's subscriptions, whether a user name is taken). A decision model
// is the projections a command needs, each folding its part of one state.
type Projection[S, E any] struct {
	// Query selects the events the projection folds. It must have at least
	// one item: the empty query would select the whole log.
	Query cairn.Query
	// Evolve returns the state after event, which Query matched. Like
	// [Definition.Evolve] it must not modify what state refers to.
	Evolve func(state S, event E) S
	// OnlyLast folds only the last event Query selects (the next invoice
	// number needs only the last invoice): it is read backward, one event,
	// however many match.
	OnlyLast bool
}

// Decision describes a kind of command decided over dynamic consistency
// boundaries. Its functions are plain functions of their arguments; they do
// no I/O and must be safe to call from several goroutines at once.
type Decision[S, C, E any] struct {
	// Name names the decision in errors and logs, for example
	// "SubscribeStudentToCourse".
	Name string
	// Initial returns the state before any event of the decision model.
	// Nil means the zero value of S.
	Initial func(cmd C) S
	// Model returns the projections the decision about cmd reads.
	Model func(cmd C) []Projection[S, E]
	// Decide returns the events that record cmd's effect on state, or an
	// error when the command is refused (a domain error, returned as is;
	// nothing is written). No events and no error accepts the command
	// without writing. It is called once per attempt.
	Decide func(state S, cmd C) ([]E, error)
	// Tags returns the tags an event is recorded with: those the queries
	// of later decisions select it by.
	Tags func(event E) []string
	// Stream returns the stream the command's events are appended to. The
	// condition, not the stream, is the consistency boundary: the append
	// expects any version.
	Stream func(cmd C) string
	// Codec converts events to and from their stored form. Events the
	// model's queries select whose type the codec does not know are
	// skipped, as a projection skips the types it has no handler for.
	Codec *Codec[E]
}

// DecisionOptions tune a [Decider]. The zero value is ready to use.
type DecisionOptions struct {
	// MaxAttempts bounds how many times Handle decides a command when
	// other writers keep appending events its model selects. Zero means 10.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the jittered wait before each new
	// attempt, as in [Options]. Zero means 1ms and 100ms.
	BackoffBase, BackoffMax time.Duration
	// Logger receives diagnostics. Nil discards them.
	Logger *slog.Logger
}

// DecisionResult is what [Decider.Handle] reports about a command it
// applied.
type DecisionResult[S, E any] struct {
	// State is the decision model's state after the command's events.
	State S
	// Events are the events the command recorded, in order; empty when
	// Decide returned none.
	Events []E
	// Position is the global position of the command's last event; zero
	// when it recorded nothing.
	Position uint64
}

// Decider runs the commands of one [Decision] over a [cairn.Store]: it
// reads the decision model, decides, and appends on the condition that the
// model's events did not change, deciding again when they did.
//
// # Concurrency
//
// A Decider is safe for concurrent use, and holds no lock across I/O. Its
// appends need an engine that checks append conditions ([cairn.Querier]);
// reads work on every engine, by a scan of the log where the engine has no
// index.
type Decider[S, C, E any] struct {
	store *cairn.Store
	def   Decision[S, C, E]
	opts  DecisionOptions
	log   *slog.Logger
}

// NewDecider returns a decider for def over store, or an error naming what
// def lacks.
func NewDecider[S, C, E any](store *cairn.Store, def Decision[S, C, E], opts DecisionOptions) (*Decider[S, C, E], error) {
	switch {
	case store == nil:
		return nil, errors.New("aggregate: the store is nil")
	case def.Name == "":
		return nil, errors.New("aggregate: the decision's name must not be empty")
	case def.Model == nil:
		return nil, fmt.Errorf("decision %s: Model is nil", def.Name)
	case def.Decide == nil:
		return nil, fmt.Errorf("decision %s: Decide is nil", def.Name)
	case def.Stream == nil:
		return nil, fmt.Errorf("decision %s: Stream is nil", def.Name)
	case def.Codec == nil:
		return nil, fmt.Errorf("decision %s: Codec is nil", def.Name)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 10
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 100 * time.Millisecond
	}
	opts.BackoffMax = max(opts.BackoffMax, opts.BackoffBase)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Decider[S, C, E]{store: store, def: def, opts: opts, log: opts.Logger.With("decision", def.Name)}, nil
}

// DecisionModel is a decision model as read: the state folded from the
// model's events, and the condition that an append based on it must meet.
type DecisionModel[S any] struct {
	State S
	// Condition fails when an event that any of the model's queries
	// selects was appended after the model was read.
	Condition cairn.AppendCondition
}

// Read reads the decision model of cmd: it folds the events each
// projection's query selects into the state, and returns it with the
// condition under which a decision based on it may be appended.
func (d *Decider[S, C, E]) Read(ctx context.Context, cmd C) (DecisionModel[S], error) {
	var state S
	if d.def.Initial != nil {
		state = d.def.Initial(cmd)
	}
	model := d.def.Model(cmd)
	if len(model) == 0 {
		return DecisionModel[S]{}, fmt.Errorf("decision %s: the model has no projection", d.def.Name)
	}
	var all, forward cairn.Query
	for i, p := range model {
		if len(p.Query.Items) == 0 {
			return DecisionModel[S]{}, fmt.Errorf("decision %s: projection %d has an empty query, which selects the whole log", d.def.Name, i)
		}
		if p.Evolve == nil {
			return DecisionModel[S]{}, fmt.Errorf("decision %s: projection %d has no Evolve", d.def.Name, i)
		}
		all.Items = append(all.Items, p.Query.Items...)
		if !p.OnlyLast {
			forward.Items = append(forward.Items, p.Query.Items...)
		}
	}
	// The head is read before any event: every matching event at or
	// before it is read below, so it is the condition's After.
	head, ok, err := d.store.LastPosition(ctx)
	if err != nil {
		return DecisionModel[S]{}, err
	}
	cond := cairn.AppendCondition{FailIfEventsMatch: all}
	if !ok {
		return DecisionModel[S]{State: state, Condition: cond}, nil // nothing to fold
	}
	cond.After = &head
	fold := func(e cairn.Event, only int) error {
		ev, err := d.def.Codec.Decode(e)
		if errors.Is(err, ErrUnknownEventType) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("decision %s: %w", d.def.Name, err)
		}
		for i, p := range model {
			if (only < 0 && !p.OnlyLast || only == i) && p.Query.Matches(&e) {
				state = p.Evolve(state, ev)
			}
		}
		return nil
	}
	if len(forward.Items) > 0 {
		events, _, err := d.store.Query(ctx, forward, 0, cairn.Forward)
		if err != nil {
			return DecisionModel[S]{}, err
		}
		for e, err := range events {
			if err != nil {
				return DecisionModel[S]{}, err
			}
			if e.Position > head {
				break // after the head: the condition covers it
			}
			if err := fold(e, -1); err != nil {
				return DecisionModel[S]{}, err
			}
		}
	}
	for i, p := range model {
		if !p.OnlyLast {
			continue
		}
		last, err := d.store.ReadQuery(ctx, p.Query, head, 1, cairn.Backward)
		if err != nil {
			return DecisionModel[S]{}, err
		}
		for _, e := range last {
			if err := fold(e, i); err != nil {
				return DecisionModel[S]{}, err
			}
		}
	}
	return DecisionModel[S]{State: state, Condition: cond}, nil
}

// Handle applies cmd: it reads the decision model, calls Decide, and
// appends the events it returns to the command's stream on the model's
// condition. When another writer appended an event the model selects in
// between, Handle waits a jittered backoff, reads and decides again, up to
// MaxAttempts decisions; it then returns the last conflict, which matches
// [cairn.ErrConditionFailed] and [*cairn.ConditionError].
//
// A domain error from Decide is returned as is and nothing is written.
func (d *Decider[S, C, E]) Handle(ctx context.Context, cmd C) (DecisionResult[S, E], error) {
	var conflict error
	for attempt := 1; attempt <= d.opts.MaxAttempts; attempt++ {
		if attempt > 1 {
			if err := d.backoff(ctx, attempt); err != nil {
				return DecisionResult[S, E]{}, fmt.Errorf("decision %s: %w (after %v)", d.def.Name, err, conflict)
			}
		}
		res, conflicted, err := d.attempt(ctx, cmd)
		if conflicted {
			conflict = err
			d.log.Debug("decision conflicted; deciding again", "attempt", attempt, "err", err)
			continue
		}
		return res, err
	}
	return DecisionResult[S, E]{}, fmt.Errorf("decision %s: gave up after %d attempts: %w", d.def.Name, d.opts.MaxAttempts, conflict)
}

// attempt is one read-decide-append round of Handle. conflicted reports
// that the append failed its condition, and only that: a domain error that
// happens to wrap the same sentinel is not retried.
func (d *Decider[S, C, E]) attempt(ctx context.Context, cmd C) (_ DecisionResult[S, E], conflicted bool, _ error) {
	m, err := d.Read(ctx, cmd)
	if err != nil {
		return DecisionResult[S, E]{}, false, err
	}
	events, err := d.def.Decide(m.State, cmd)
	if err != nil {
		return DecisionResult[S, E]{}, false, err
	}
	if len(events) == 0 {
		return DecisionResult[S, E]{State: m.State}, false, nil
	}
	stream := d.def.Stream(cmd)
	data := make([]cairn.EventData, len(events))
	for i, ev := range events {
		if data[i], err = d.def.Codec.Encode(ev); err != nil {
			return DecisionResult[S, E]{}, false, fmt.Errorf("decision %s: events[%d]: %w", d.def.Name, i, err)
		}
		if d.def.Tags != nil {
			data[i].Tags = d.def.Tags(ev)
		}
	}
	res, err := d.store.AppendIf(ctx, stream, cairn.Any, m.Condition, data...)
	if errors.Is(err, cairn.ErrConditionFailed) {
		return DecisionResult[S, E]{}, true, err
	}
	if err != nil {
		return DecisionResult[S, E]{}, false, fmt.Errorf("decision %s: append to %s: %w", d.def.Name, stream, err)
	}
	// The state after the command: its events folded by the projections
	// whose queries select them as recorded.
	state := m.State
	first := res.Position - uint64(len(events)) + 1
	for i, ev := range events {
		rec := cairn.Event{EventData: data[i], StreamID: stream, Position: first + uint64(i)}
		for _, p := range d.def.Model(cmd) {
			if p.Query.Matches(&rec) {
				state = p.Evolve(state, ev)
			}
		}
	}
	return DecisionResult[S, E]{State: state, Events: events, Position: res.Position}, false, nil
}

func (d *Decider[S, C, E]) backoff(ctx context.Context, attempt int) error {
	return backoff(ctx, attempt, d.opts.BackoffBase, d.opts.BackoffMax)
}
