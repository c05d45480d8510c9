package server

import (
	"context"

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
