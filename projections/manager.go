package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// Manager runs the projections of one Store.
//
// # Where the state lives
//
// Everything a projection needs to survive a restart is kept in the store,
// in system streams named as KurrentDB names them (see the package
// documentation), written through [cairn.Store.System]. A Manager reads
// them when it starts and runs every enabled projection from its last
// checkpoint.
//
// # Concurrency
//
// A Manager is safe for concurrent use. Each projection runs on its own
// goroutine, which owns its JavaScript runtime; the Manager's calls reach it
// between two events. Operations on one projection are serialized; a
// projection should be run by one Manager at a time: a second Manager
// running the same projection on the same store makes one of them fault at
// its next checkpoint (the checkpoint stream is written with an expected
// version), so that no event is emitted twice.
//
// Lock order: regMu, then a projection's mu, then mu.
type Manager struct {
	store    *cairn.Store
	opts     Options
	log      *slog.Logger
	dog      *watchdog
	builtins map[string]Builtin

	// regMu serializes the changes of the registry; held across I/O.
	regMu sync.Mutex
	reg   *registry

	// mu guards the fields below; never held across I/O.
	mu          sync.Mutex
	projections map[string]*projection
	order       []string
	closed      bool
}

// projection is one projection of the Manager.
type projection struct {
	name      string
	transient bool

	// mu serializes the operations on the projection; held across I/O.
	mu      sync.Mutex
	deleted bool

	// Written under mu, read without it (Statistics).
	def atomic.Pointer[definition]
	r   atomic.Pointer[runner]
}

// NewManager reads the projections stored in store and starts the enabled
// ones. The Manager writes the projections' streams through store's
// [cairn.Store.System] view. Close it to stop them.
func NewManager(ctx context.Context, store *cairn.Store, opts Options) (*Manager, error) {
	if store == nil {
		return nil, invalidf("store", "must not be nil")
	}
	opts.EnsureDefaults()
	m := &Manager{
		store:       store.System(),
		opts:        opts,
		log:         opts.Logger,
		builtins:    map[string]Builtin{},
		projections: map[string]*projection{},
	}
	for _, b := range opts.Builtins {
		n := b.Name()
		if !strings.HasPrefix(n, "$") {
			return nil, invalidf("builtins", "the name %q does not start with '$'", n)
		}
		if _, dup := m.builtins[n]; dup {
			return nil, invalidf("builtins", "%q is given twice", n)
		}
		m.builtins[n] = b
	}
	m.dog = newWatchdog(opts.HandlerTimeout, opts.MemoryBudget)
	if err := m.load(ctx); err != nil {
		m.dog.close()
		return nil, err
	}
	return m, nil
}

// load reads the registry and the definitions, and starts the projections.
func (m *Manager) load(ctx context.Context) error {
	reg, err := readRegistry(ctx, m.store)
	if err != nil {
		return err
	}
	m.reg = reg
	for _, name := range reg.order {
		def, ok, err := readDefinition(ctx, m.store, newNames(name, nil))
		if err != nil {
			return fmt.Errorf("read projection %q: %w", name, err)
		}
		if !ok {
			m.log.Warn("a registered projection has no definition; skipping it", "projection", name)
			continue
		}
		def.ProjectionID = reg.ids[name]
		p := &projection{name: name}
		p.def.Store(&def)
		m.add(p)
		m.startRunner(p, def)
	}
	return nil
}

// limits returns the limits of the Manager's scripts.
func (m *Manager) limits() scriptLimits { return m.opts.limits(m.store.MaxEventBytes()) }

func (m *Manager) add(p *projection) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.projections[p.name] = p
	m.order = append(m.order, p.name)
}

// startRunner gives p a runner for def, started when def is enabled.
func (m *Manager) startRunner(p *projection, def definition) {
	r := m.newRunner(p.name, def)
	p.r.Store(r)
	if def.Enabled {
		// The runner's goroutine is alive; it answers at once.
		_, _ = r.send(context.Background(), ctlMsg{kind: ctlStart})
	}
}

// get returns the projection called name, or ErrNotFound.
func (m *Manager) get(op, name string) (*projection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, opError(op, name, ErrClosed)
	}
	p, ok := m.projections[name]
	if !ok {
		return nil, opError(op, name, ErrNotFound)
	}
	return p, nil
}

// lock returns the projection called name, locked for an operation.
func (m *Manager) lock(op, name string) (*projection, error) {
	p, err := m.get(op, name)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.deleted {
		p.mu.Unlock()
		return nil, opError(op, name, ErrNotFound)
	}
	return p, nil
}

// CreateOptions are the settings of a new projection.
type CreateOptions struct {
	// Mode is how the projection runs; the zero value is Continuous.
	Mode Mode
	// Emit allows the query to call emit and linkTo. Only continuous
	// projections may emit.
	Emit bool
	// TrackEmittedStreams records every stream the projection emits to in
	// $projections-<name>-emittedstreams, so that Delete can delete them.
	// It needs Emit.
	TrackEmittedStreams bool
	// Disabled creates the projection stopped; Enable starts it.
	Disabled bool
}

// Create stores a new projection running query and starts it, unless
// opts.Disabled. The name may be empty for a OneTime projection, which then
// gets a generated one; Create returns the name. A query that does not
// compile, throws or selects no events is refused with an error matching
// cairn.ErrInvalidArgument, and nothing is stored.
func (m *Manager) Create(ctx context.Context, name, query string, opts CreateOptions) (string, error) {
	if name == "" && opts.Mode == OneTime {
		name = uuid.NewString()
	}
	if err := m.checkCreate(name, query, opts); err != nil {
		return "", opError("create", name, err)
	}
	m.regMu.Lock()
	defer m.regMu.Unlock()
	m.mu.Lock()
	_, exists := m.projections[name]
	closed := m.closed
	m.mu.Unlock()
	switch {
	case closed:
		return "", opError("create", name, ErrClosed)
	case exists:
		return "", opError("create", name, ErrExists)
	}
	def := definition{
		HandlerType:         "JS",
		Query:               query,
		Mode:                opts.Mode.String(),
		Enabled:             !opts.Disabled,
		EmitEnabled:         opts.Emit,
		TrackEmittedStreams: opts.TrackEmittedStreams,
		CheckpointsDisabled: !opts.Mode.checkpoints(),
	}
	p := &projection{name: name, transient: opts.Mode == Transient}
	if !p.transient {
		if err := m.register(ctx, name, &def); err != nil {
			return "", opError("create", name, err)
		}
	}
	p.def.Store(&def)
	m.add(p)
	m.startRunner(p, def)
	return name, nil
}

func (m *Manager) checkCreate(name, query string, opts CreateOptions) error {
	if opts.Mode > Transient {
		return invalidf("mode", "unknown mode %d", opts.Mode)
	}
	if _, ok := m.builtins[name]; ok {
		return ErrBuiltin
	}
	if err := validateName(name); err != nil {
		return err
	}
	if opts.Emit && !opts.Mode.checkpoints() {
		return invalidf("emit", "only continuous projections may emit")
	}
	if opts.TrackEmittedStreams && !opts.Emit {
		return invalidf("track emitted streams", "EmitEnabled must be set to true to track emitted streams")
	}
	return m.checkQuery(name, query)
}

// checkQuery compiles query and runs its definition, to refuse what would
// only fault.
func (m *Manager) checkQuery(name, query string) error {
	sc, err := compileScript(name, query, m.limits(), m.dog, m.log)
	if err != nil {
		return err
	}
	sc.close()
	n := newNames(name, &sc.spec)
	for _, s := range []string{n.checkpoint(), n.emitted(), n.partitions(), n.result} {
		if err := cairn.ValidateSystemStreamID(s); err != nil {
			return invalidf("name", "%q makes the stream id %q: %v", name, s, err)
		}
	}
	return nil
}

// register stores a new projection's definition and its $ProjectionCreated
// event in the registry, in one batch; the registry event is the commit
// point. Called with regMu held.
func (m *Manager) register(ctx context.Context, name string, def *definition) error {
	for attempt := 0; ; attempt++ {
		def.ProjectionID = m.reg.version + 1
		de, err := def.event()
		if err != nil {
			return err
		}
		res, err := m.store.AppendBatch(ctx,
			cairn.AppendRequest{Stream: newNames(name, nil).definition(), Expected: cairn.Any, Events: []cairn.EventData{de}},
			cairn.AppendRequest{Stream: RegistryStream, Expected: m.reg.expected(), Events: []cairn.EventData{{
				Type: typeCreated, ContentType: cairn.ContentBinary, Data: []byte(name),
			}}},
		)
		if errors.Is(err, cairn.ErrWrongExpectedVersion) && attempt < 3 {
			// Another Manager changed the registry: read it again.
			reg, rerr := readRegistry(ctx, m.store)
			if rerr != nil {
				return rerr
			}
			m.reg = reg
			if _, ok := reg.ids[name]; ok {
				return ErrExists
			}
			continue
		}
		if err != nil {
			return err
		}
		v := res[1].Version
		m.reg.version = v
		m.reg.ids[name] = v
		m.reg.order = append(m.reg.order, name)
		if v != def.ProjectionID {
			// The registry stream was deleted once and its versions
			// went on: store the id it really has.
			def.ProjectionID = v
			return m.persist(ctx, name, def)
		}
		return nil
	}
}

// persist stores a changed definition.
func (m *Manager) persist(ctx context.Context, name string, def *definition) error {
	e, err := def.event()
	if err != nil {
		return err
	}
	_, err = m.store.Append(ctx, newNames(name, nil).definition(), cairn.Any, e)
	return err
}

// change applies f to a copy of p's definition, bumps its version, stores
// it (unless p is transient) and makes it p's definition. Called with p.mu
// held.
func (m *Manager) change(ctx context.Context, p *projection, f func(*definition)) (definition, error) {
	def := *p.def.Load()
	f(&def)
	def.Version++
	if !p.transient {
		if err := m.persist(ctx, p.name, &def); err != nil {
			return definition{}, err
		}
	}
	p.def.Store(&def)
	return def, nil
}

// replaceRunner stops p's runner (after a checkpoint when checkpoint is set)
// and gives p a new one for def. Called with p.mu held.
func (m *Manager) replaceRunner(ctx context.Context, p *projection, def definition, checkpoint bool) error {
	err := p.r.Load().stop(ctx, checkpoint)
	m.startRunner(p, def)
	return err
}

// UpdateOptions are the changes Update makes besides the query.
type UpdateOptions struct {
	// Emit, when not nil, allows or forbids emitting.
	Emit *bool
}

// Update replaces the query of a projection. A running projection writes a
// checkpoint and continues from it with the new query; its state carries
// over (Reset starts it again from the beginning).
func (m *Manager) Update(ctx context.Context, name, query string, opts UpdateOptions) error {
	if b, ok := m.builtins[name]; ok {
		if u, ok := b.(BuiltinUpdater); ok {
			return u.Update(ctx, query)
		}
		return opError("update", name, ErrBuiltin)
	}
	p, err := m.lock("update", name)
	if err != nil {
		return err
	}
	defer p.mu.Unlock()
	old := p.def.Load()
	if opts.Emit != nil && *opts.Emit && !old.mode().checkpoints() {
		return opError("update", name, invalidf("emit", "only continuous projections may emit"))
	}
	if err := m.checkQuery(name, query); err != nil {
		return opError("update", name, err)
	}
	def, err := m.change(ctx, p, func(d *definition) {
		d.Query = query
		if opts.Emit != nil {
			d.EmitEnabled = *opts.Emit
		}
	})
	if err != nil {
		return opError("update", name, err)
	}
	return opError("update", name, m.replaceRunner(ctx, p, def, true))
}

// Enable starts a projection, and keeps it running across restarts. A
// projection that runs already is left alone; a faulted one starts again
// from its last checkpoint.
func (m *Manager) Enable(ctx context.Context, name string) error {
	if b, ok := m.builtins[name]; ok {
		return opError("enable", name, b.Enable(ctx))
	}
	p, err := m.lock("enable", name)
	if err != nil {
		return err
	}
	defer p.mu.Unlock()
	if p.def.Load().Enabled && p.r.Load().snapshot().status == statusRunning {
		return nil
	}
	def, err := m.change(ctx, p, func(d *definition) { d.Enabled = true })
	if err != nil {
		return opError("enable", name, err)
	}
	return opError("enable", name, m.replaceRunner(ctx, p, def, false))
}

// Disable stops a projection after writing its checkpoint, and keeps it
// stopped across restarts.
func (m *Manager) Disable(ctx context.Context, name string) error {
	return m.disable(ctx, "disable", name, true)
}

// Abort stops a projection without writing a checkpoint: what it did since
// its last checkpoint is discarded, and done again when it is enabled.
func (m *Manager) Abort(ctx context.Context, name string) error {
	return m.disable(ctx, "abort", name, false)
}

func (m *Manager) disable(ctx context.Context, op, name string, checkpoint bool) error {
	if b, ok := m.builtins[name]; ok {
		return opError(op, name, b.Disable(ctx, checkpoint))
	}
	p, err := m.lock(op, name)
	if err != nil {
		return err
	}
	defer p.mu.Unlock()
	def, err := m.change(ctx, p, func(d *definition) { d.Enabled = false })
	if err != nil {
		return opError(op, name, err)
	}
	r := p.r.Load()
	if !checkpoint && def.mode().checkpoints() {
		// Forget what was not written: a new runner reads the last
		// checkpoint when it is needed.
		if err := r.stop(ctx, false); err != nil {
			return opError(op, name, err)
		}
		nr := m.newRunner(p.name, def)
		nr.setStatus(statusAborted, "")
		p.r.Store(nr)
		return nil
	}
	_, err = r.send(ctx, ctlMsg{kind: ctlStop, checkpoint: checkpoint, aborted: !checkpoint})
	return opError(op, name, err)
}

// Reset makes a projection start again from the beginning of its source,
// with its initial state, in a new epoch: its checkpoints so far are
// ignored, and the events it emits again get new ids (delete the streams
// it emitted to first, if they must not hold them twice).
func (m *Manager) Reset(ctx context.Context, name string) error {
	if b, ok := m.builtins[name]; ok {
		return opError("reset", name, b.Reset(ctx))
	}
	p, err := m.lock("reset", name)
	if err != nil {
		return err
	}
	defer p.mu.Unlock()
	def, err := m.change(ctx, p, func(d *definition) { d.Epoch = d.Version + 1 })
	if err != nil {
		return opError("reset", name, err)
	}
	return opError("reset", name, m.replaceRunner(ctx, p, def, false))
}

// State returns the state of a projection's partition as JSON ("" is the
// projection's own state, or its shared state when it is partitioned), or
// nil when it has none.
func (m *Manager) State(ctx context.Context, name, partition string) (json.RawMessage, error) {
	return m.query(ctx, "state", name, partition, ctlState)
}

// Result returns the result of a projection's partition as JSON: its state
// after transformBy and filterBy; nil when it has none.
func (m *Manager) Result(ctx context.Context, name, partition string) (json.RawMessage, error) {
	return m.query(ctx, "result", name, partition, ctlResult)
}

func (m *Manager) query(ctx context.Context, op, name, partition string, kind ctlKind) (json.RawMessage, error) {
	if _, ok := m.builtins[name]; ok {
		return nil, nil
	}
	p, err := m.get(op, name)
	if err != nil {
		return nil, err
	}
	b, err := p.r.Load().send(ctx, ctlMsg{kind: kind, partition: partition})
	if errors.Is(err, ErrClosed) {
		// The runner was replaced while we asked it; ask the new one.
		b, err = p.r.Load().send(ctx, ctlMsg{kind: kind, partition: partition})
	}
	if err != nil {
		return nil, opError(op, name, err)
	}
	return b, nil
}

// RestartSubsystem stops every projection (writing their checkpoints),
// forgets the transient ones, reads the stored projections again and starts
// the enabled ones, as KurrentDB's restart of its projection subsystem does.
func (m *Manager) RestartSubsystem(ctx context.Context) error {
	m.regMu.Lock()
	defer m.regMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	all := make([]*projection, 0, len(m.projections))
	for _, p := range m.projections {
		all = append(all, p)
	}
	m.projections, m.order = map[string]*projection{}, nil
	m.mu.Unlock()
	err := m.stopAll(ctx, all)
	if lerr := m.load(ctx); lerr != nil {
		return errors.Join(err, lerr)
	}
	return err
}

// stopAll stops the projections' runners after their checkpoints, in
// parallel.
func (m *Manager) stopAll(ctx context.Context, all []*projection) error {
	var wg sync.WaitGroup
	errs := make([]error, len(all))
	for i, p := range all {
		wg.Go(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.deleted = true
			if err := p.r.Load().stop(ctx, true); err != nil {
				errs[i] = opError("stop", p.name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close stops every projection after writing its checkpoint, waiting until
// ctx is done at most; the projections still running then stop without
// one. The store is the caller's to close afterwards.
func (m *Manager) Close(ctx context.Context) error {
	m.regMu.Lock()
	defer m.regMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	all := make([]*projection, 0, len(m.projections))
	for _, p := range m.projections {
		all = append(all, p)
	}
	m.mu.Unlock()
	err := m.stopAll(ctx, all)
	m.dog.close()
	return err
}
