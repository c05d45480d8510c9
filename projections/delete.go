package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cairndb/cairn"
)

// DeleteOptions say which of a projection's streams Delete deletes too.
type DeleteOptions struct {
	// DeleteEmittedStreams deletes the streams the projection emitted to,
	// if it tracked them (CreateOptions.TrackEmittedStreams).
	DeleteEmittedStreams bool
	// DeleteStateStream deletes the result streams.
	DeleteStateStream bool
	// DeleteCheckpointStream deletes the checkpoint stream and the
	// partitions' state streams.
	DeleteCheckpointStream bool
}

// Delete deletes a stopped or faulted projection (any transient one), and
// the streams opts names. A running projection is refused with ErrRunning:
// disable it first.
func (m *Manager) Delete(ctx context.Context, name string, opts DeleteOptions) error {
	if _, ok := m.builtins[name]; ok {
		return opError("delete", name, ErrBuiltin)
	}
	m.regMu.Lock()
	defer m.regMu.Unlock()
	p, err := m.lock("delete", name)
	if err != nil {
		return err
	}
	defer p.mu.Unlock()
	r := p.r.Load()
	if !p.transient && r.snapshot().status == statusRunning {
		return opError("delete", name, fmt.Errorf("%w: disable it first", ErrRunning))
	}
	def := *p.def.Load()
	if err := r.stop(ctx, false); err != nil {
		return opError("delete", name, err)
	}
	if !p.transient {
		res, err := m.store.Append(ctx, RegistryStream, m.reg.expected(), cairn.EventData{
			Type: typeDeleted, ContentType: cairn.ContentBinary, Data: []byte(name),
		})
		if err != nil {
			m.startRunner(p, def)
			return opError("delete", name, err)
		}
		m.reg.version = res.Version
		delete(m.reg.ids, name)
		m.reg.order = slices.DeleteFunc(m.reg.order, func(s string) bool { return s == name })
	}
	p.deleted = true
	m.mu.Lock()
	delete(m.projections, name)
	m.order = slices.DeleteFunc(m.order, func(s string) bool { return s == name })
	m.mu.Unlock()
	if p.transient {
		return nil
	}
	return opError("delete", name, m.deleteStreams(ctx, name, def, opts))
}

// deleteStreams deletes a deleted projection's streams, as opts asks, and
// its definition stream. Streams that do not exist are skipped.
func (m *Manager) deleteStreams(ctx context.Context, name string, def definition, opts DeleteOptions) error {
	n := newNames(name, nil)
	if sc, err := compileScript(name, def.Query, m.limits(), m.dog, m.log); err == nil {
		n = newNames(name, &sc.spec)
		sc.close()
	}
	var parts []string
	if opts.DeleteCheckpointStream || opts.DeleteStateStream {
		for e, err := range m.store.Stream(ctx, n.partitions(), 0, cairn.Forward) {
			if errors.Is(err, cairn.ErrStreamNotFound) {
				break
			}
			if err != nil {
				return err
			}
			parts = append(parts, string(e.Data))
		}
	}
	var streams []string
	if opts.DeleteEmittedStreams && def.EmitEnabled && def.TrackEmittedStreams {
		for e, err := range m.store.Stream(ctx, n.emitted(), 0, cairn.Forward) {
			if errors.Is(err, cairn.ErrStreamNotFound) {
				break
			}
			if err != nil {
				return err
			}
			streams = append(streams, string(e.Data))
		}
		streams = append(streams, n.emitted())
	}
	if opts.DeleteStateStream {
		streams = append(streams, n.result)
		for _, p := range parts {
			streams = append(streams, n.resultOf(p))
		}
	}
	if opts.DeleteCheckpointStream {
		streams = append(streams, n.checkpoint(), n.partitions())
		for _, p := range parts {
			streams = append(streams, n.partitionState(p))
		}
	}
	streams = append(streams, n.definition())
	seen := map[string]bool{}
	for _, s := range streams {
		if seen[s] {
			continue
		}
		seen[s] = true
		err := m.store.DeleteStream(ctx, s, cairn.Any)
		if err != nil && !errors.Is(err, cairn.ErrStreamNotFound) && !errors.Is(err, cairn.ErrStreamDeleted) && !errors.Is(err, cairn.ErrInvalidArgument) {
			return fmt.Errorf("delete %q: %w", s, err)
		}
	}
	return nil
}
