package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cairndb/cairn"
)

// Mode is how a projection runs.
type Mode uint8

const (
	// Continuous projections run until disabled, checkpoint their
	// progress, may emit events, and resume after a restart.
	Continuous Mode = iota
	// OneTime projections run to the end of the log as it is when they
	// start and complete; they do not checkpoint or emit. Their
	// definition is kept, and they run again after a restart.
	OneTime
	// Transient projections are one-time projections that are not stored:
	// they live in the Manager's memory until deleted or the Manager
	// closes.
	Transient
)

var modeNames = []string{"Continuous", "OneTime", "Transient"}

// String returns the mode's name as in the KurrentDB protocol.
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", m)
}

func parseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if n == s {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown projection mode %q", s)
}

// checkpoints reports whether projections of mode m checkpoint, and so may
// emit.
func (m Mode) checkpoints() bool { return m == Continuous }

// definition is a projection as stored in $projections-<name>, one
// $ProjectionUpdated event per change, with the field names of
// KurrentDB's persisted state.
type definition struct {
	HandlerType         string `json:"HandlerType"`
	Query               string `json:"Query"`
	Mode                string `json:"Mode"`
	Enabled             bool   `json:"Enabled"`
	EmitEnabled         bool   `json:"EmitEnabled"`
	TrackEmittedStreams bool   `json:"TrackEmittedStreams"`
	CheckpointsDisabled bool   `json:"CheckpointsDisabled"`
	// Epoch changes on Reset: checkpoints of an earlier epoch are
	// ignored, so the projection starts again from the beginning.
	Epoch int64 `json:"Epoch"`
	// Version counts the changes of the definition.
	Version int64 `json:"Version"`
	// ProjectionID is the version of the $ProjectionCreated event in the
	// registry: a projection deleted and created again under the same
	// name gets a new one, and ignores the old one's checkpoints.
	ProjectionID int64 `json:"ProjectionId"`
}

func (d *definition) mode() Mode {
	m, _ := parseMode(d.Mode)
	return m
}

func (d *definition) event() (cairn.EventData, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return cairn.EventData{}, err
	}
	return cairn.EventData{Type: typeUpdated, Data: b}, nil
}

// registry is what $projections-$all says: the projections that exist and
// their ids.
type registry struct {
	ids     map[string]int64
	order   []string
	version int64 // of the registry stream's last event; -1 when it has none
}

// readRegistry reads $projections-$all.
func readRegistry(ctx context.Context, store *cairn.Store) (*registry, error) {
	r := &registry{ids: map[string]int64{}, version: -1}
	for e, err := range store.Stream(ctx, RegistryStream, 0, cairn.Forward) {
		if errors.Is(err, cairn.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", RegistryStream, err)
		}
		r.version = e.Version
		name := string(e.Data)
		switch e.Type {
		case typeCreated:
			if _, ok := r.ids[name]; !ok {
				r.order = append(r.order, name)
			}
			r.ids[name] = e.Version
		case typeDeleted:
			delete(r.ids, name)
		}
	}
	live := r.order[:0]
	for _, n := range r.order {
		if _, ok := r.ids[n]; ok {
			live = append(live, n)
		}
	}
	r.order = live
	return r, nil
}

// expected returns the registry's expected version for the next append.
func (r *registry) expected() cairn.ExpectedVersion {
	if r.version < 0 {
		return cairn.NoStream
	}
	return cairn.Exact(r.version)
}

// readDefinition returns the last definition stored for name.
func readDefinition(ctx context.Context, store *cairn.Store, n names) (definition, bool, error) {
	evs, err := store.ReadStream(ctx, n.definition(), cairn.StreamEnd, 1, cairn.Backward)
	if errors.Is(err, cairn.ErrStreamNotFound) || (err == nil && len(evs) == 0) {
		return definition{}, false, nil
	}
	if err != nil {
		return definition{}, false, err
	}
	var d definition
	if err := json.Unmarshal(evs[0].Data, &d); err != nil {
		return definition{}, false, fmt.Errorf("%s: %w: %v", n.definition(), cairn.ErrCorrupt, err)
	}
	if _, err := parseMode(d.Mode); err != nil {
		return definition{}, false, fmt.Errorf("%s: %w: %v", n.definition(), cairn.ErrCorrupt, err)
	}
	return d, true, nil
}
