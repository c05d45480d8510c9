package links

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cairndb/cairn"
)

// The names of KurrentDB's standard projections, and the streams each one
// makes.
const (
	ByCategory       = "$by_category"        // $ce-<category>
	ByEventType      = "$by_event_type"      // $et-<type>
	Streams          = "$streams"            // $streams
	StreamByCategory = "$stream_by_category" // $category-<category>
	ByCorrelationID  = "$by_correlation_id"  // $bc-<correlation id>
)

// projectionKinds says which index list each standard projection reads.
var projectionKinds = map[string]cairn.IndexKind{
	ByCategory:       cairn.IndexCategory,
	ByEventType:      cairn.IndexType,
	Streams:          cairn.IndexStreams,
	StreamByCategory: cairn.IndexCategoryStreams,
	ByCorrelationID:  cairn.IndexCorrelation,
}

// Names returns the names of the standard projections, sorted.
func Names() []string {
	names := make([]string, 0, len(projectionKinds))
	for n := range projectionKinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ErrUnknownProjection: the name is not one of the standard projections.
var ErrUnknownProjection = errors.New("not a standard projection")

// StateStream is the system stream in which [Projections] keeps which
// standard projections are disabled: its last event, a JSON object.
const StateStream = "$cairn-standard-projections"

// stateType is the type of the events of StateStream.
const stateType = "$StandardProjections"

// Projections manages KurrentDB's standard projections, which cairn does
// not run: the index, written in the same commit as the events, already
// holds what they would write, and a [Reader] reads their streams from
// it. What can be managed is what a client sees:
//
//   - Enabled (the default): the streams show every entry of the index,
//     up to the last committed event, at once.
//   - Disable records the head of the log: the projection's streams then
//     show only the entries of the events committed before it, as a
//     stopped KurrentDB projection's streams keep the links it wrote and
//     gain no more. A subscription to them waits. Enable shows the rest at
//     once: subscribers receive every entry in order, none skipped.
//   - Reset starts the projection's epoch again (Statistics shows it).
//     The streams do not change: a number of the index, once given,
//     always names the same event, so there is nothing to rebuild.
//
// The state is kept in [StateStream], written through the Store (so it is
// durable, and its change wakes subscribers), and cached here: a change
// made through another process sharing the store is seen after a restart.
// A Projections is safe for concurrent use.
type Projections struct {
	store *cairn.Store // a system view

	mu  sync.Mutex // serialises changes
	cur atomic.Pointer[projectionsState]
}

// projectionsState is the content of StateStream, and the version of its
// last event (-1: none).
type projectionsState struct {
	version     int64
	Projections map[string]projectionState `json:"projections"`
}

type projectionState struct {
	// Disabled says the projection was disabled; Upto is then the
	// position after the last event committed before it: entries of
	// events at Upto or later are not shown.
	Disabled bool   `json:"disabled,omitempty"`
	Upto     uint64 `json:"upto,omitempty"`
	// Epoch counts resets; Version counts changes.
	Epoch   int64 `json:"epoch,omitempty"`
	Version int64 `json:"version,omitempty"`
}

// OpenProjections returns the standard projections of store, as its state
// stream last recorded them (all enabled when it has none).
func OpenProjections(ctx context.Context, store *cairn.Store) (*Projections, error) {
	p := &Projections{store: store.System()}
	st, err := p.load(ctx)
	if err != nil {
		return nil, err
	}
	p.cur.Store(st)
	return p, nil
}

func (p *Projections) load(ctx context.Context) (*projectionsState, error) {
	st := &projectionsState{version: -1, Projections: map[string]projectionState{}}
	last, err := p.store.ReadStream(ctx, StateStream, cairn.StreamEnd, 1, cairn.Backward)
	if errors.Is(err, cairn.ErrStreamNotFound) || (err == nil && len(last) == 0) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("standard projections: %w", err)
	}
	if err := json.Unmarshal(last[0].Data, st); err != nil {
		return nil, fmt.Errorf("standard projections: %s: %w: %v", StateStream, cairn.ErrCorrupt, err)
	}
	st.version = last[0].Version
	if st.Projections == nil {
		st.Projections = map[string]projectionState{}
	}
	return st, nil
}

// upto returns the position from which the entries of the lists of kind
// are hidden, and false when they are all shown. A nil Projections shows
// them all.
func (p *Projections) upto(kind cairn.IndexKind) (uint64, bool) {
	if p == nil {
		return 0, false
	}
	st := p.cur.Load()
	for name, k := range projectionKinds {
		if k == kind {
			ps := st.Projections[name]
			return ps.Upto, ps.Disabled
		}
	}
	return 0, false
}

// Status is the state of one standard projection.
type Status struct {
	Name    string
	Enabled bool
	// Position is the position after the last event whose entries its
	// streams show: the head of the log while enabled, the point at which
	// it was disabled otherwise.
	Position uint64
	// Epoch counts resets, Version changes (enable, disable, reset).
	Epoch   int64
	Version int64
}

// Status returns the state of the standard projection name.
func (p *Projections) Status(ctx context.Context, name string) (Status, error) {
	if _, ok := projectionKinds[name]; !ok {
		return Status{}, unknown(name)
	}
	ps := p.cur.Load().Projections[name]
	st := Status{Name: name, Enabled: !ps.Disabled, Position: ps.Upto, Epoch: ps.Epoch, Version: ps.Version}
	if !ps.Disabled {
		head, err := headAfter(ctx, p.store)
		if err != nil {
			return Status{}, err
		}
		st.Position = head
	}
	return st, nil
}

// headAfter returns the position after the last event of the log.
func headAfter(ctx context.Context, store *cairn.Store) (uint64, error) {
	last, err := store.ReadAll(ctx, cairn.LogEnd, 1, cairn.Backward)
	if err != nil || len(last) == 0 {
		return 0, err
	}
	return last[0].Position + 1, nil
}

func unknown(name string) error {
	return fmt.Errorf("%q: %w; the standard projections are %s", name, ErrUnknownProjection, strings.Join(Names(), ", "))
}

// Enable shows the entries of every event in the streams of the standard
// projection name, from now on and after restarts. Enabling an enabled
// projection changes nothing.
func (p *Projections) Enable(ctx context.Context, name string) error {
	return p.change(ctx, name, func(ps *projectionState) (bool, error) {
		if !ps.Disabled {
			return false, nil
		}
		ps.Disabled, ps.Upto = false, 0
		return true, nil
	})
}

// Disable stops the streams of the standard projection name at the head
// of the log: they show the entries of the events committed before the
// call, and no more until Enable. Disabling a disabled projection changes
// nothing.
func (p *Projections) Disable(ctx context.Context, name string) error {
	return p.change(ctx, name, func(ps *projectionState) (bool, error) {
		if ps.Disabled {
			return false, nil
		}
		head, err := headAfter(ctx, p.store)
		if err != nil {
			return false, err
		}
		ps.Disabled, ps.Upto = true, head
		return true, nil
	})
}

// Reset starts a new epoch of the standard projection name. Its streams do
// not change (see [Projections]); a disabled projection stays disabled.
func (p *Projections) Reset(ctx context.Context, name string) error {
	return p.change(ctx, name, func(ps *projectionState) (bool, error) {
		ps.Epoch++
		return true, nil
	})
}

// maxChangeAttempts bounds the retries of a change that loses races with
// other writers of the state stream.
const maxChangeAttempts = 8

// change applies fn to the state of the projection name and records the
// result, appending to the state stream with the version it read, again
// when another writer got there first.
func (p *Projections) change(ctx context.Context, name string, fn func(ps *projectionState) (bool, error)) error {
	if _, ok := projectionKinds[name]; !ok {
		return unknown(name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for range maxChangeAttempts {
		cur := p.cur.Load()
		next := &projectionsState{Projections: maps.Clone(cur.Projections)}
		ps := next.Projections[name]
		changed, err := fn(&ps)
		if err != nil || !changed {
			return err
		}
		ps.Version++
		next.Projections[name] = ps
		data, err := json.Marshal(next)
		if err != nil {
			return err
		}
		exp := cairn.NoStream
		if cur.version >= 0 {
			exp = cairn.Exact(cur.version)
		}
		// Readers see the new state before the event that records it
		// wakes any subscriber: one woken by it must read with the new
		// state, or, finding nothing new, it would wait for an event
		// that may never come. Until the append returns, readers see a
		// state not yet recorded; a failed append takes it back.
		p.cur.Store(next)
		res, err := p.store.Append(ctx, StateStream, exp, cairn.EventData{Type: stateType, Data: data})
		if errors.Is(err, cairn.ErrWrongExpectedVersion) {
			fresh, lerr := p.load(ctx)
			if lerr != nil {
				p.cur.Store(cur)
				return lerr
			}
			p.cur.Store(fresh)
			continue
		}
		if err != nil {
			p.cur.Store(cur)
			return fmt.Errorf("standard projection %s: %w", name, err)
		}
		p.cur.Store(&projectionsState{version: res.Version, Projections: next.Projections})
		return nil
	}
	return fmt.Errorf("standard projection %s: the state stream changed %d times meanwhile; try again", name, maxChangeAttempts)
}

// CheckQuery says whether query is a definition the standard projection
// name can have. KurrentDB's $by_category and $stream_by_category take the
// category's separator and whether it ends at the first or the last one
// ("first\n-", or a separator alone); cairn files every stream under the
// part of its id before the first '-' (KurrentDB's default), so it accepts
// only that, or an empty query, and refuses another separator or "last"
// with an error matching [cairn.ErrInvalidArgument]. The other standard
// projections take no query.
func CheckQuery(name, query string) error {
	if _, ok := projectionKinds[name]; !ok {
		return unknown(name)
	}
	q := strings.TrimSpace(strings.ReplaceAll(query, "\r", ""))
	if q == "" {
		return nil
	}
	if name != ByCategory && name != StreamByCategory {
		return &cairn.InvalidArgumentError{Field: "query", Reason: fmt.Sprintf("the standard projection %s takes no query, got %q", name, query)}
	}
	lines := strings.Split(q, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	ok := (len(lines) == 1 && lines[0] == cairn.CategorySeparator) ||
		(len(lines) == 2 && lines[0] == "first" && lines[1] == cairn.CategorySeparator)
	if !ok {
		return &cairn.InvalidArgumentError{Field: "query", Reason: fmt.Sprintf(
			"%s: cairn files every stream under the part of its id before the first %q (KurrentDB's default, \"first\\n%s\"); another separator, or \"last\", is not supported: got %q",
			name, cairn.CategorySeparator, cairn.CategorySeparator, query)}
	}
	return nil
}
