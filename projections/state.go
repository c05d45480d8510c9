package projections

import "github.com/cairndb/cairn"

// state returns the JSON state of a partition for the State call.
func (r *runner) state(partition string) ([]byte, error) {
	if err := r.load(); err != nil {
		return nil, err
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
	if err != nil || st == nil {
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
