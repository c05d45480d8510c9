package server

import (
	"context"
	"fmt"

	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/projections"
)

// startProjections starts the projections stored in the Store, which the
// KurrentDB services then serve. A store the Manager cannot read leaves
// them unserved, and says why.
func (s *Server) startProjections() {
	opts := s.opts.Projections
	if opts.Logger == nil {
		opts.Logger = s.log
	}
	if s.standard != nil {
		for _, name := range links.Names() {
			opts.Builtins = append(opts.Builtins, standardProjection{p: s.standard, name: name})
		}
	}
	m, err := projections.NewManager(context.Background(), s.store, opts)
	if err != nil {
		s.log.Warn("projections are off", "reason", err)
		return
	}
	s.projections = m
}

// stopProjections writes the projections' checkpoints and stops them,
// within ShutdownTimeout.
func (s *Server) stopProjections(ctx context.Context) error {
	if s.projections == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	return s.projections.Close(ctx)
}

// standardProjection is one of KurrentDB's standard projections, which
// the links package serves from the Store's index, as the projections
// Manager lists and manages it.
type standardProjection struct {
	p    *links.Projections
	name string
}

var _ projections.BuiltinUpdater = standardProjection{}

func (b standardProjection) Name() string { return b.name }

// Statistics reports a running projection at the head of the log, and a
// stopped one where it was disabled: the index files every event in the
// commit that writes it, so an enabled standard projection is never behind.
func (b standardProjection) Statistics(ctx context.Context) projections.Statistics {
	st, err := b.p.Status(ctx, b.name)
	if err != nil {
		return projections.Statistics{Status: "Faulted (Enabled)", StateReason: err.Error(), Enabled: true}
	}
	pos := fmt.Sprintf("C:%d/P:%d", st.Position, st.Position)
	out := projections.Statistics{
		Status:         "Running",
		Enabled:        st.Enabled,
		Position:       pos,
		LastCheckpoint: pos,
		Progress:       100,
		Version:        st.Version,
		Epoch:          st.Epoch,
	}
	if !st.Enabled {
		out.Status = "Stopped"
	}
	return out
}

func (b standardProjection) Enable(ctx context.Context) error { return b.p.Enable(ctx, b.name) }

// Disable stops the projection; an Abort (checkpoint false) does the same,
// as the index has no progress of its own to record.
func (b standardProjection) Disable(ctx context.Context, _ bool) error {
	return b.p.Disable(ctx, b.name)
}

func (b standardProjection) Reset(ctx context.Context) error { return b.p.Reset(ctx, b.name) }

// Update accepts the queries KurrentDB's standard projections take that
// describe what cairn's index files (see [links.CheckQuery]); nothing
// changes.
func (b standardProjection) Update(_ context.Context, query string) error {
	return links.CheckQuery(b.name, query)
}
