package projections

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cairndb/cairn"
	"github.com/dop251/goja"
)

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
	sc, err := compileScript(r.name, r.def.Query, r.m.limits(), r.m.dog, r.log)
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
	// Answer between pages too: a page may hold no event the query
	// selects.
	r.poll()
	if !r.processing {
		return nil
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
	r.stats.src, r.stats.next = r.src, r.pos
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
	if ev.deleted != nil {
		return r.processDeleted(ev)
	}
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
	switch {
	case r.spec.ByStream:
		key = ev.StreamID
	case r.spec.ByCustom:
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
	err := s.call(s.handlerCall(ev.Type), func() error { return r.apply(ps, ev, key) })
	if err != nil {
		return err
	}
	r.handled++
	return nil
}

// processDeleted calls $deleted for the partition of the stream ev
// deleted. A stream of which the projection has seen no event has no
// partition, and its deletion is skipped.
func (r *runner) processDeleted(ev *sourceEvent) error {
	key := ev.deleted.Stream
	ps, err := r.partition(key)
	if err != nil {
		return err
	}
	if ps.fresh {
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
	if err := r.script.call(`handler "$deleted"`, func() error { return r.apply(ps, ev, key) }); err != nil {
		return err
	}
	r.handled++
	return nil
}

// handlerCall names the call of the handler of eventType, for budgets and
// faults: `handler "OrderPlaced"`, or `handler "$any"`.
func (s *script) handlerCall(eventType string) string {
	name := eventType
	if _, ok := s.handlers[eventType]; !ok && s.anyHandler != nil {
		name = "$any"
	}
	if c, ok := s.callNames[name]; ok {
		return c
	}
	c := "handler " + strconv.Quote(name)
	if len(s.callNames) < 1024 {
		s.callNames[name] = c
	}
	return c
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
	ns, err := s.handle(arg, env, ev)
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
