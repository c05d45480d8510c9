package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/cairndb/cairn"
	"github.com/dop251/goja"
)

// runStatus is where a runner is in its life.
type runStatus uint8

const (
	statusStopped runStatus = iota
	statusRunning
	statusFaulted
	statusCompleted
	statusAborted
)

// runner runs one version of one projection's definition on its own
// goroutine, which owns the JavaScript runtime, the states and everything
// not yet written. The Manager talks to it through ctl; the goroutine
// answers between two events, or while it waits for new ones. Statistics
// are published under mu.
type runner struct {
	m     *Manager
	name  string
	def   definition
	mode  Mode
	store *cairn.Store
	log   *slog.Logger

	ctl  chan ctlMsg
	done chan struct{}
	// ctx is cancelled to stop the goroutine without a checkpoint.
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	stats runStats

	// Owned by the runner goroutine.
	processing bool
	exit       bool
	loaded     bool
	loadErr    error
	script     *script
	spec       querySpec
	names      names
	src        source
	pos        uint64          // the position to read next
	wait       <-chan struct{} // the store's change signal, when caught up
	root       *partState      // the state of a projection without partitions
	shared     *partState      // the shared state of a bi-state projection
	cache      *partCache
	evicted    map[string][]byte // dirty partitions out of the cache
	newParts   []string
	emits      []pendingEvent
	emitBytes  int
	tracked    map[string]bool
	newTracked []string
	cpVersion  int64 // of the checkpoint stream's last event; -1: none
	lastCP     mark
	lastCPTime time.Time
	cpCount    int
	handled    int // events handled since the last checkpoint
	scanned    int // events scanned since the last checkpoint
}

// runStats is what Statistics reports of a runner.
type runStats struct {
	status         runStatus
	reason         string
	position       string
	lastCheckpoint string
	progress       float32
	processed      int64
	partitions     int32
	buffered       int64
	pendingWrites  int32
	writing        bool
	reading        bool
	coreTime       time.Duration
}

type pendingEvent struct {
	stream string
	event  cairn.EventData
}

type ctlKind uint8

const (
	ctlStart ctlKind = iota
	ctlStop
	ctlExit
	ctlState
	ctlResult
)

type ctlMsg struct {
	kind ctlKind
	// checkpoint: stop or exit after writing what is pending.
	checkpoint bool
	// aborted: the status after ctlStop is Aborted.
	aborted   bool
	partition string
	reply     chan ctlReply
}

type ctlReply struct {
	data []byte
	err  error
}

func (m *Manager) newRunner(name string, def definition) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{
		m:         m,
		name:      name,
		def:       def,
		mode:      def.mode(),
		store:     m.store,
		log:       m.log.With("projection", name),
		ctl:       make(chan ctlMsg),
		done:      make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
		cpVersion: -1,
		evicted:   map[string][]byte{},
		cache:     newPartCache(m.opts.PartitionCacheSize),
	}
	r.stats.position = "C:-1/P:-1"
	go r.run()
	return r
}

// send delivers a message to the runner goroutine and waits for its reply.
func (r *runner) send(ctx context.Context, msg ctlMsg) ([]byte, error) {
	msg.reply = make(chan ctlReply, 1)
	select {
	case r.ctl <- msg:
	case <-r.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case rep := <-msg.reply:
		return rep.data, rep.err
	case <-r.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stop ends the runner's goroutine: after writing what is pending when
// checkpoint is set, at once otherwise.
func (r *runner) stop(ctx context.Context, checkpoint bool) error {
	if !checkpoint {
		r.cancel()
		<-r.done
		return nil
	}
	_, err := r.send(ctx, ctlMsg{kind: ctlExit, checkpoint: true})
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	if err != nil {
		// The context ended first: stop without the checkpoint.
		r.cancel()
	}
	<-r.done
	return err
}

func (r *runner) snapshot() runStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *runner) setStatus(st runStatus, reason string) {
	r.mu.Lock()
	r.stats.status, r.stats.reason = st, reason
	r.mu.Unlock()
}

func (r *runner) run() {
	defer close(r.done)
	defer func() {
		if r.script != nil {
			r.script.close()
		}
	}()
	for !r.exit {
		if r.processing && r.wait == nil {
			if err := r.step(); err != nil {
				r.fail(err)
			}
			continue
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if r.processing {
			if d, ok := r.checkpointWait(); ok {
				timer = time.NewTimer(d)
				fire = timer.C
			}
		}
		select {
		case msg := <-r.ctl:
			r.handle(msg)
		case <-r.wait:
			r.wait = nil
		case <-fire:
			if err := r.checkpoint(); err != nil {
				r.fail(err)
			}
		case <-r.ctx.Done():
			r.exit = true
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// fail faults the projection, unless the runner is being stopped.
func (r *runner) fail(err error) {
	if r.ctx.Err() != nil {
		r.exit = true
		return
	}
	r.processing, r.wait = false, nil
	r.log.Warn("projection faulted", "reason", err)
	r.setStatus(statusFaulted, err.Error())
}

// poll handles the messages waiting for the runner, between two events.
func (r *runner) poll() {
	for {
		select {
		case msg := <-r.ctl:
			r.handle(msg)
		default:
			return
		}
	}
}

func (r *runner) handle(msg ctlMsg) {
	var rep ctlReply
	switch msg.kind {
	case ctlStart:
		if err := r.load(); err != nil {
			r.fail(err)
			break
		}
		r.processing, r.wait = true, nil
		r.setStatus(statusRunning, "")
	case ctlStop, ctlExit:
		if r.processing && msg.checkpoint {
			rep.err = r.checkpoint()
		}
		r.processing, r.wait = false, nil
		if msg.kind == ctlExit {
			r.exit = true
		} else if msg.aborted {
			r.setStatus(statusAborted, "")
		} else if r.snapshot().status != statusFaulted {
			r.setStatus(statusStopped, "")
		}
	case ctlState:
		rep.data, rep.err = r.state(msg.partition)
	case ctlResult:
		rep.data, rep.err = r.result(msg.partition)
	}
	msg.reply <- rep
}

// load compiles the query and reads the last checkpoint, once.
func (r *runner) load() error {
	if r.loaded {
		return r.loadErr
	}
	r.loaded = true
	r.loadErr = r.loadOnce()
	return r.loadErr
}

func (r *runner) loadOnce() error {
	o := &r.m.opts
	sc, err := compileScript(r.name, r.def.Query, o.limits(), r.m.dog, r.log)
	if err != nil {
		return err
	}
	r.script, r.spec = sc, sc.spec
	r.names = newNames(r.name, &r.spec)
	r.src = newSource(r.store, &r.spec)
	r.lastCP = mark{id: r.def.ProjectionID, epoch: r.def.Epoch, version: r.def.Version, stream: r.src.stream()}
	var rootJSON, sharedJSON []byte
	if r.mode.checkpoints() {
		cp, ok, ver, err := readCheckpoint(r.ctx, r.store, r.names.checkpoint())
		if err != nil {
			return fmt.Errorf("read the checkpoint: %w", err)
		}
		r.cpVersion = ver
		if ok && cp.at.sameRun(r.lastCP) {
			if cp.at.stream != r.src.stream() {
				return fmt.Errorf("the checkpoint is a position in %s but the query reads %s: reset the projection to process its events again", sourceName(cp.at.stream), sourceName(r.src.stream()))
			}
			r.lastCP.next = cp.at.next
			rootJSON, sharedJSON = cp.state, cp.shared
		}
	}
	r.pos = r.lastCP.next
	r.lastCPTime = time.Now()
	if !r.spec.partitioned() {
		r.root = &partState{json: rootJSON, fresh: rootJSON == nil && !r.hasCheckpoint()}
	}
	if r.spec.BiState {
		r.shared = &partState{json: sharedJSON, fresh: sharedJSON == nil}
	}
	if err := sc.call("$init", func() error { return r.initStates() }); err != nil {
		return err
	}
	if r.def.TrackEmittedStreams {
		r.tracked = map[string]bool{}
		for e, err := range r.store.Stream(r.ctx, r.names.emitted(), 0, cairn.Forward) {
			if errors.Is(err, cairn.ErrStreamNotFound) {
				break
			}
			if err != nil {
				return fmt.Errorf("read the emitted streams: %w", err)
			}
			r.tracked[string(e.Data)] = true
		}
	}
	r.publish(false)
	return nil
}

func (r *runner) hasCheckpoint() bool { return r.lastCP.next > 0 }

func sourceName(stream string) string {
	if stream == "" {
		return "$all"
	}
	return "stream " + strconv.Quote(stream)
}

// initStates gives the root and shared states their initial values, as
// KurrentDB does when a projection starts, so that State shows $init's
// state before the first event.
func (r *runner) initStates() error {
	for _, ps := range []*partState{r.root, r.shared} {
		if ps == nil || !ps.fresh {
			continue
		}
		var v goja.Value
		var err error
		if ps == r.shared {
			v, err = r.script.initSharedState()
		} else {
			v, err = r.script.initState()
		}
		if err != nil {
			return err
		}
		b, err := r.script.marshal(v, r.m.opts.MaxStateBytes, "the initial state")
		if err != nil {
			return err
		}
		ps.value, ps.json, ps.fresh = v, b, false
	}
	return nil
}

// step reads one page of the source and processes it.
func (r *runner) step() error {
	if err := r.load(); err != nil {
		return err
	}
	changed := r.store.Changes()
	r.mu.Lock()
	r.stats.reading = true
	r.mu.Unlock()
	pg, err := r.src.read(r.ctx, r.pos, r.m.opts.ReadBatch)
	r.mu.Lock()
	r.stats.reading = false
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("read the source: %w", err)
	}
	for i := range pg.events {
		r.poll()
		if !r.processing {
			return nil
		}
		ev := &pg.events[i]
		if err := r.process(ev); err != nil {
			return err
		}
		r.pos = ev.pos + 1
		r.setBuffered(len(pg.events) - i - 1)
		if r.checkpointDue() {
			if err := r.checkpoint(); err != nil {
				return err
			}
		}
	}
	r.scanned += int(pg.next - r.pos)
	r.pos = pg.next
	if !pg.atEnd {
		r.publish(false)
		return nil
	}
	r.wait = changed
	if !r.mode.checkpoints() {
		r.processing, r.wait = false, nil
		r.publish(true)
		r.setStatus(statusCompleted, "")
		return nil
	}
	if _, ok := r.checkpointWait(); ok && r.checkpointElapsed() {
		if err := r.checkpoint(); err != nil {
			return err
		}
	}
	r.publish(true)
	return nil
}

func (r *runner) setBuffered(n int) {
	r.mu.Lock()
	r.stats.buffered = int64(n)
	r.mu.Unlock()
}

// publish updates the statistics after a page.
func (r *runner) publish(atEnd bool) {
	var head uint64
	if !atEnd {
		head, _ = r.src.head(r.ctx)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.position = mark{stream: r.src.stream(), next: r.pos}.String()
	r.stats.lastCheckpoint = r.lastCP.String()
	switch {
	case atEnd || head <= r.pos:
		r.stats.progress = 100
	default:
		r.stats.progress = float32(float64(r.pos) / float64(head) * 100)
	}
	r.stats.partitions = int32(r.cache.len())
	if !r.spec.partitioned() {
		r.stats.partitions = 1
	}
	r.stats.pendingWrites = int32(len(r.emits))
	r.stats.buffered = 0
}

// process runs the query on one event.
func (r *runner) process(ev *sourceEvent) error {
	s := r.script
	if !s.passes(ev) {
		r.scanned++
		return nil
	}
	start := time.Now()
	defer func() {
		r.mu.Lock()
		r.stats.coreTime += time.Since(start)
		r.stats.processed++
		r.mu.Unlock()
	}()
	key := ""
	if r.spec.partitioned() {
		var ok bool
		err := s.call("partitionBy", func() error {
			var err error
			key, ok, err = s.partitionOf(ev)
			return err
		})
		if err != nil {
			return err
		}
		if !ok {
			r.scanned++
			return nil
		}
	}
	ps := r.root
	if r.spec.partitioned() {
		var err error
		if ps, err = r.partition(key); err != nil {
			return err
		}
	}
	call := "handler " + strconv.Quote(handlerName(s, ev.Type))
	err := s.call(call, func() error { return r.apply(ps, ev, key) })
	if err != nil {
		return err
	}
	r.handled++
	return nil
}

func handlerName(s *script, eventType string) string {
	if _, ok := s.handlers[eventType]; ok {
		return eventType
	}
	if s.anyHandler != nil {
		return "$any"
	}
	return eventType
}

// apply runs the handler of ev on partition ps, inside a guarded call.
func (r *runner) apply(ps *partState, ev *sourceEvent, key string) error {
	s := r.script
	lim := r.m.opts.MaxStateBytes
	created := false
	if ps.fresh {
		v, err := s.initState()
		if err != nil {
			return err
		}
		ps.value, ps.fresh, created = v, false, true
	} else if ps.value == nil {
		v, err := s.unmarshal(ps.json)
		if err != nil {
			return err
		}
		ps.value = v
	}
	if r.shared != nil && r.shared.value == nil {
		v, err := s.unmarshal(r.shared.json)
		if err != nil {
			return err
		}
		r.shared.value = v
	}
	env := s.envelope(ev, key)
	s.beginHandler(ev.ID.String(), r.def.EmitEnabled && r.mode.checkpoints())
	defer s.endHandler()
	if created && r.spec.partitioned() {
		if err := s.partitionCreated(ps.value, env); err != nil {
			return err
		}
	}
	arg := ps.value
	if r.shared != nil {
		arg = s.rt.NewArray(ps.value, r.shared.value)
	}
	ns, err := s.handle(arg, env, ev.Type)
	if err != nil {
		return err
	}
	if s.violation != nil {
		return s.violation
	}
	newState, newShared := ns, goja.Value(nil)
	if r.shared != nil {
		newShared = r.shared.value
		if arr, ok := ns.(*goja.Object); ok && arr.ClassName() == "Array" {
			newState, newShared = arr.Get("0"), arr.Get("1")
		}
	}
	stateJSON, err := s.marshal(newState, lim, "the state")
	if err != nil {
		return err
	}
	var sharedJSON []byte
	if r.shared != nil {
		if sharedJSON, err = s.marshal(newShared, lim, "the shared state"); err != nil {
			return err
		}
	}
	// Commit: nothing above failed.
	ps.value, ps.json, ps.dirty = newState, stateJSON, true
	if created && r.spec.partitioned() {
		r.newParts = append(r.newParts, key)
	}
	if r.shared != nil {
		r.shared.value, r.shared.json, r.shared.dirty = newShared, sharedJSON, true
	}
	for i, e := range s.emits {
		r.addEmit(ev, i, e)
	}
	return nil
}

func (r *runner) addEmit(ev *sourceEvent, i int, e emitted) {
	ct := cairn.ContentJSON
	if e.binary {
		ct = cairn.ContentBinary
	}
	data := cairn.EventData{
		ID:          eventID(r.name, r.def.ProjectionID, r.def.Epoch, "emit", strconv.FormatUint(ev.pos, 10), strconv.Itoa(i)),
		Type:        e.typ,
		ContentType: ct,
		Data:        e.data,
		Metadata:    e.meta,
	}
	r.emits = append(r.emits, pendingEvent{stream: e.stream, event: data})
	r.emitBytes += len(e.data) + len(e.meta)
	if r.tracked != nil && !r.tracked[e.stream] {
		r.tracked[e.stream] = true
		r.newTracked = append(r.newTracked, e.stream)
	}
}

// partition returns the state of partition key: cached, evicted but not
// yet written, stored, or fresh.
func (r *runner) partition(key string) (*partState, error) {
	if ps := r.cache.get(key); ps != nil {
		return ps, nil
	}
	ps := &partState{key: key}
	if b, ok := r.evicted[key]; ok {
		ps.json, ps.dirty = b, true
		delete(r.evicted, key)
	} else if r.mode.checkpoints() {
		stream := r.names.partitionState(key)
		if err := cairn.ValidateSystemStreamID(stream); err != nil {
			return nil, fmt.Errorf("partition %q: %w", key, err)
		}
		b, ok, err := readPartitionState(r.ctx, r.store, stream, r.lastCP)
		if err != nil {
			return nil, fmt.Errorf("read the state of partition %q: %w", key, err)
		}
		ps.json, ps.fresh = b, !ok
	} else {
		ps.fresh = true
	}
	if old := r.cache.put(ps); old != nil && old.dirty {
		r.evicted[old.key] = old.json
	}
	return ps, nil
}

// state returns the JSON state of a partition for the State call.
func (r *runner) state(partition string) ([]byte, error) {
	if err := r.load(); err != nil && r.script == nil {
		return nil, nil
	}
	switch {
	case !r.spec.partitioned():
		if partition != "" {
			return nil, nil
		}
		return r.root.json, nil
	case partition == "":
		if r.shared != nil {
			return r.shared.json, nil
		}
		return nil, nil
	}
	if ps := r.cache.get(partition); ps != nil {
		return ps.json, nil
	}
	if b, ok := r.evicted[partition]; ok {
		return b, nil
	}
	if !r.mode.checkpoints() {
		return nil, nil
	}
	stream := r.names.partitionState(partition)
	if cairn.ValidateSystemStreamID(stream) != nil {
		return nil, nil
	}
	b, _, err := readPartitionState(r.ctx, r.store, stream, r.lastCP)
	return b, err
}

// result returns the JSON result of a partition: its state through
// transformBy and filterBy.
func (r *runner) result(partition string) ([]byte, error) {
	st, err := r.state(partition)
	if err != nil || st == nil || r.script == nil {
		return st, err
	}
	return r.transform(st)
}

// transform computes a result from a state's JSON, on a copy of the state:
// a transform that changes its argument does not change the state.
func (r *runner) transform(st []byte) ([]byte, error) {
	s := r.script
	if len(s.transforms) == 0 || st == nil {
		return st, nil
	}
	var out []byte
	err := s.call("transformBy", func() error {
		v, err := s.unmarshal(st)
		if err != nil {
			return err
		}
		res, err := s.result(v)
		if err != nil || res == nil {
			return err
		}
		out, err = s.marshal(res, r.m.opts.MaxStateBytes, "the result")
		return err
	})
	return out, err
}
