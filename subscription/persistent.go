package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	"github.com/google/uuid"
)

// Errors of persistent subscriptions. They are wrapped with the stream and
// group they concern; test with errors.Is.
var (
	// ErrGroupNotFound: no persistent subscription has that stream and group.
	ErrGroupNotFound = errors.New("persistent subscription not found")
	// ErrGroupExists: Create found a group of that name on the stream.
	ErrGroupExists = errors.New("persistent subscription already exists")
	// ErrTooManyConsumers: the group has MaxSubscriberCount consumers.
	ErrTooManyConsumers = errors.New("persistent subscription has its maximum number of consumers")
	// ErrGroupDeleted: the group was deleted while a consumer was reading.
	ErrGroupDeleted = errors.New("persistent subscription deleted")
)

const (
	maxGroupNameBytes   = 256
	registryCASAttempts = 16
	// The ids of the snapshots that hold the state: '$' keeps them apart
	// from any stream an application can write.
	registryID     = "$subscriptions"
	stateIDPrefix  = "$subscription-"
	parkedIDSuffix = "-parked"
	// noVersion, as the lower bound of GetSnapshot, accepts any version.
	noVersion int64 = -1
)

// ManagerOptions configure a [Manager]. The zero value is ready to use.
type ManagerOptions struct {
	// Logger receives diagnostics. Nil discards them.
	Logger *slog.Logger
	// Links reads the groups' streams; a group on one of the standard
	// projections' streams ($ce-, $et-, $streams, $category-, $bc-) reads
	// it from the index. Nil reads with every standard projection
	// enabled.
	Links *links.Reader
}

// Manager runs the persistent subscriptions of one Store: named groups on
// $all or on a stream, whose consumers share the events, acknowledge them,
// and resume after a restart from the group's checkpoint.
//
// # Where the state lives
//
// Everything a group needs to survive a restart is kept in the store itself,
// through the engine's [cairn.Snapshotter], under ids starting with '$' that
// applications cannot write: the registry of groups and their settings (one
// record, "$subscriptions", changed with compare-and-set on its revision),
// and per group its checkpoint and its parked events. Snapshots are not
// events, so none of this appears in $all. A checkpoint is stored as the
// snapshot's version, which the engine keeps only when it is newer: a
// checkpoint never moves back, even when two writers race.
//
// # Delivery
//
// Delivery is at least once. A group reads the log in order; each event
// is assigned to one consumer at a time, chosen by the group's [Strategy]
// (round-robin unless set otherwise) among those below their in-flight
// limit, and waits in that consumer's queue until its Next returns it; the
// consumer acks it, or nacks it to retry, skip or park it. An event is
// retried after a nack with retry, when MessageTimeout passes after Next
// returned it without an answer, and when its consumer leaves holding it;
// after MaxRetryCount retries it is parked: recorded in the group's parked
// list, from which [Manager.ReplayParked] delivers it again. Events still in
// a consumer's queue are not retries when they go back to the group, because
// the consumer leaves or has not called Next within MessageTimeout: a slow
// consumer with a large in-flight limit does not park events it never
// received. The checkpoint is the first
// event not yet processed (acked, skipped or parked) and is written every
// CheckpointAfter processed events, when the last consumer leaves and when
// the Manager closes; after a crash, the events after the last checkpoint
// written are delivered again.
//
// # Concurrency
//
// A Manager and its Consumers are safe for concurrent use. They start no
// goroutine: a consumer's Next reads the log, waits for new events and
// enforces message timeouts itself. A group should be served by one Manager
// at a time; two Managers (say on two nodes sharing a PostgreSQL store)
// serving the same group deliver events twice and may lose each other's
// parked entries, though neither moves the checkpoint back. Groups created,
// updated or deleted through another Manager are seen here the next time a
// call looks them up (Connect, Info, List, ReplayParked).
type Manager struct {
	store *cairn.Store
	snap  cairn.Snapshotter
	log   *slog.Logger
	links *links.Reader

	// Locks: mu guards groups and closed. It is taken before a group's
	// locks (a group is stopped or asked its definition with mu held),
	// never while one is held.
	mu     sync.Mutex
	groups map[groupKey]*group
	closed bool
}

type groupKey struct{ stream, group string }

// NewManager returns the Manager of the persistent subscriptions stored in
// store. The store's engine must implement [cairn.Snapshotter]; otherwise
// the error matches [cairn.ErrNotSupported].
func NewManager(store *cairn.Store, opts ManagerOptions) (*Manager, error) {
	if store == nil {
		return nil, invalid("store", "must not be nil")
	}
	sn, ok := store.Backend().(cairn.Snapshotter)
	if !ok {
		return nil, fmt.Errorf("persistent subscriptions need an engine that stores snapshots: %w", cairn.ErrNotSupported)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Links == nil {
		opts.Links = links.NewReader(store, links.Options{})
	}
	return &Manager{store: store, snap: sn, log: opts.Logger, links: opts.Links, groups: map[groupKey]*group{}}, nil
}

func checkGroup(stream, group string) error {
	if stream != AllStream {
		// Any stream, system streams too, as in KurrentDB: the standard
		// projections' streams ($ce-order) are what groups often follow.
		if err := cairn.ValidateSystemStreamID(stream); err != nil {
			return err
		}
	}
	switch {
	case group == "":
		return invalid("group", "must not be empty")
	case len(group) > maxGroupNameBytes:
		return invalidf("group", "is %d bytes long, the limit is %d", len(group), maxGroupNameBytes)
	case !utf8.ValidString(group):
		return invalidf("group", "%q is not valid UTF-8", group)
	}
	for i, r := range group {
		if r < 0x20 || r == 0x7f {
			return invalidf("group", "%q has a control character (%U) at byte %d", group, r, i)
		}
	}
	return nil
}

func groupErr(stream, group string, err error) error {
	return fmt.Errorf("persistent subscription %q on %s: %w", group, stream, err)
}

func (m *Manager) readRegistry(ctx context.Context) (registry, int64, error) {
	var r registry
	s, ok, err := m.snap.GetSnapshot(ctx, registryID, noVersion, math.MaxInt64)
	if err != nil || !ok {
		return r, 0, err
	}
	if err := json.Unmarshal(s.Data, &r); err != nil {
		return r, 0, fmt.Errorf("persistent subscriptions registry: %w: %v", cairn.ErrCorrupt, err)
	}
	return r, s.Version, nil
}

// change applies fn to the stored registry with compare-and-set: it writes
// the next revision and reads it back, and starts again when another writer
// got there first. done reports whether a registry read back holds the
// change (a write that lost the race is a no-op, since the engine keeps a
// snapshot only when it is newer).
func (m *Manager) change(ctx context.Context, fn func(r *registry) error, done func(r *registry) bool) error {
	for range registryCASAttempts {
		r, rev, err := m.readRegistry(ctx)
		if err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
		data, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := m.snap.CommitSnapshot(ctx, cairn.Snapshot{StreamID: registryID, Version: rev + 1, Data: data}); err != nil {
			return err
		}
		after, _, err := m.readRegistry(ctx)
		if err != nil {
			return err
		}
		if done(&after) {
			return nil
		}
	}
	return errors.New("persistent subscriptions registry: too many concurrent changes, try again")
}

// Create creates the group on stream (AllStream for the global log). A start
// at End is taken now: the group delivers the events committed after Create
// returns.
func (m *Manager) Create(ctx context.Context, stream, group string, s Settings) error {
	if err := checkGroup(stream, group); err != nil {
		return err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	start, ok := s.Start.first()
	if ok && stream != AllStream && start > math.MaxInt64 {
		return invalidf("settings.start", "version %d is beyond the largest version", start)
	}
	if !ok {
		last, err := m.store.ReadAll(ctx, cairn.LogEnd, 1, cairn.Backward)
		if err != nil {
			return err
		}
		if start, err = endOf(ctx, m.links, stream, last); err != nil {
			return err
		}
	}
	d := definition{Stream: stream, Group: group, ID: uuid.New(), ChangeID: uuid.New(), Start: start, StartAtEnd: !ok, Created: time.Now().UTC()}
	d.set(s)
	err := m.change(ctx, func(r *registry) error {
		if i := r.find(stream, group); i >= 0 {
			if r.Groups[i].ID == d.ID {
				return nil
			}
			return groupErr(stream, group, ErrGroupExists)
		}
		r.Groups = append(r.Groups, d)
		return nil
	}, func(r *registry) bool {
		i := r.find(stream, group)
		return i >= 0 && r.Groups[i].ID == d.ID
	})
	if err == nil {
		m.log.Info("persistent subscription created", "stream", stream, "group", group)
	}
	return err
}

// Update replaces the settings of a group. Its consumers stay connected and
// the new limits apply to what happens next. The filter cannot change
// (delete and create the group again), and Start is ignored.
func (m *Manager) Update(ctx context.Context, stream, group string, s Settings) error {
	if err := checkGroup(stream, group); err != nil {
		return err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	change := uuid.New()
	var updated definition
	err := m.change(ctx, func(r *registry) error {
		i := r.find(stream, group)
		if i < 0 {
			return groupErr(stream, group, ErrGroupNotFound)
		}
		d := &r.Groups[i]
		if !filterEqual(d.Filter, s.Filter) {
			return invalid("settings.filter", "cannot change; delete the group and create it again")
		}
		d.set(s)
		d.ChangeID = change
		updated = *d
		return nil
	}, func(r *registry) bool {
		i := r.find(stream, group)
		return i >= 0 && r.Groups[i].ChangeID == change
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	g := m.groups[groupKey{stream, group}]
	m.mu.Unlock()
	if g != nil {
		g.update(updated)
	}
	return nil
}

func filterEqual(a, b Filter) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// Delete deletes a group. Its consumers' Next return an error matching
// [ErrGroupDeleted]. The group's checkpoint and parked list are left behind
// as unreferenced records; a group created again under the same name starts
// afresh.
func (m *Manager) Delete(ctx context.Context, stream, group string) error {
	if err := checkGroup(stream, group); err != nil {
		return err
	}
	err := m.change(ctx, func(r *registry) error {
		i := r.find(stream, group)
		if i < 0 {
			return groupErr(stream, group, ErrGroupNotFound)
		}
		r.Groups = slices.Delete(r.Groups, i, i+1)
		return nil
	}, func(r *registry) bool { return r.find(stream, group) < 0 })
	if err != nil {
		return err
	}
	m.mu.Lock()
	g := m.groups[groupKey{stream, group}]
	delete(m.groups, groupKey{stream, group})
	m.mu.Unlock()
	if g != nil {
		g.stop(groupErr(stream, group, ErrGroupDeleted))
	}
	m.log.Info("persistent subscription deleted", "stream", stream, "group", group)
	return nil
}

// group returns the running group, loading it from the store when needed.
func (m *Manager) group(ctx context.Context, stream, group string) (*group, error) {
	if err := checkGroup(stream, group); err != nil {
		return nil, err
	}
	r, _, err := m.readRegistry(ctx)
	if err != nil {
		return nil, err
	}
	i := r.find(stream, group)
	if i < 0 {
		return nil, groupErr(stream, group, ErrGroupNotFound)
	}
	return m.running(ctx, r.Groups[i])
}

// running returns the running group of the stored definition d.
func (m *Manager) running(ctx context.Context, d definition) (*group, error) {
	stream, group := d.Stream, d.Group
	key := groupKey{stream, group}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	g := m.groups[key]
	m.mu.Unlock()
	if err := d.check(); err != nil {
		return nil, err
	}
	if g != nil && g.def().ID == d.ID {
		if g.def().ChangeID != d.ChangeID {
			g.update(d) // updated by another Manager
		}
		return g, nil
	}
	// Not running here, or deleted and created again elsewhere.
	fresh, err := loadGroup(ctx, m, d)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if cur := m.groups[key]; cur != nil {
		if cur.def().ID == d.ID {
			return cur, nil // loaded concurrently
		}
		cur.stop(groupErr(stream, group, ErrGroupDeleted))
	}
	m.groups[key] = fresh
	return fresh, nil
}

// Connect adds a consumer to a group.
func (m *Manager) Connect(ctx context.Context, stream, group string, opts ConsumerOptions) (*Consumer, error) {
	if opts.InFlight < 0 {
		return nil, invalidf("in_flight", "must not be negative, got %d", opts.InFlight)
	}
	g, err := m.group(ctx, stream, group)
	if err != nil {
		return nil, err
	}
	return g.connect(opts)
}

// Info describes a group.
func (m *Manager) Info(ctx context.Context, stream, group string) (Info, error) {
	g, err := m.group(ctx, stream, group)
	if err != nil {
		return Info{}, err
	}
	return g.info(), nil
}

// List describes the groups on stream, or every group when stream is empty.
func (m *Manager) List(ctx context.Context, stream string) ([]Info, error) {
	r, _, err := m.readRegistry(ctx)
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, d := range r.Groups {
		if stream != "" && d.Stream != stream {
			continue
		}
		g, err := m.running(ctx, d)
		if err != nil {
			return nil, err
		}
		out = append(out, g.info())
	}
	return out, nil
}

// ReplayParked delivers parked events of the group again, at most max of
// them (all when max ≤ 0), oldest first, and returns how many. A replayed
// event leaves the parked list when it is acked or skipped; a nack with park,
// or reaching the retry limit again, keeps it there.
func (m *Manager) ReplayParked(ctx context.Context, stream, group string, max int) (int, error) {
	g, err := m.group(ctx, stream, group)
	if err != nil {
		return 0, err
	}
	return g.replay(ctx, max)
}

// ParkedEvent is an event in a group's parked list: delivered until the
// group's retry limit, or parked by a consumer's nack, and not delivered
// again until [Manager.ReplayParked].
type ParkedEvent struct {
	ID       uuid.UUID
	Stream   string
	Version  int64
	Position uint64
	// Reason is the consumer's reason for the nack that parked it, or why
	// the group parked it.
	Reason string
	// Parked is when it was parked, in UTC.
	Parked time.Time
	// Replaying says a replay has delivered it again and it awaits its
	// answer.
	Replaying bool
}

// Parked returns the parked events of the group, oldest first: the first
// max of them (all when max ≤ 0), and how many there are in all.
func (m *Manager) Parked(ctx context.Context, stream, group string, max int) ([]ParkedEvent, int, error) {
	g, err := m.group(ctx, stream, group)
	if err != nil {
		return nil, 0, err
	}
	list, total := g.parkedEvents(max)
	return list, total, nil
}

// Close writes the checkpoints of the running groups and disconnects their
// consumers, whose Next then return ErrClosed. It returns the first error
// from writing a checkpoint.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	groups := m.groups
	m.groups = map[groupKey]*group{}
	m.mu.Unlock()
	var first error
	for _, g := range groups {
		if err := g.checkpoint(ctx, true); err != nil && first == nil {
			first = err
		}
		g.stop(ErrClosed)
	}
	return first
}
