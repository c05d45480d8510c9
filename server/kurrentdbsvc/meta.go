package kurrentdbsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	"github.com/google/uuid"
)

// metaPrefix starts the name of a stream's metadata stream: "$$order-1"
// holds the metadata of "order-1".
const metaPrefix = "$$"

// The system properties of stream metadata that reads enforce.
const (
	metaMaxCount       = "$maxCount"
	metaMaxAge         = "$maxAge"
	metaTruncateBefore = "$tb"
)

// metaStream returns the stream whose metadata stream name is, and whether
// name is one.
func metaStream(name string) (string, bool) {
	return strings.CutPrefix(name, metaPrefix)
}

// streamMeta is what reads enforce of a stream's metadata.
type streamMeta struct {
	maxCount int64         // 0: no limit
	maxAge   time.Duration // 0: no limit
	before   int64         // $tb: versions below are hidden
}

// visibility returns the lowest visible version of a stream whose last
// version is last, and the oldest visible creation time (zero: any).
func (m streamMeta) visibility(last int64, now time.Time) (int64, time.Time) {
	lowest := m.before
	if m.maxCount > 0 {
		lowest = max(lowest, last-m.maxCount+1)
	}
	var oldest time.Time
	if m.maxAge > 0 {
		oldest = now.Add(-m.maxAge)
	}
	return lowest, oldest
}

// metadataOf reads the metadata that applies to stream: the last event of
// its metadata stream. A metadata stream itself keeps only its last event,
// as in KurrentDB.
func (s *Services) metadataOf(ctx context.Context, stream string) (streamMeta, error) {
	if _, ok := metaStream(stream); ok {
		return streamMeta{maxCount: 1}, nil
	}
	last, err := s.store.ReadStream(ctx, metaPrefix+stream, cairn.StreamEnd, 1, cairn.Backward)
	if errors.Is(err, cairn.ErrStreamNotFound) || (err == nil && len(last) == 0) {
		return streamMeta{}, nil
	}
	if err != nil {
		return streamMeta{}, err
	}
	return parseMeta(last[0].Data), nil
}

// parseMeta reads the enforced properties; values that are missing, or not
// non-negative integers, impose nothing.
func parseMeta(data []byte) streamMeta {
	var props map[string]any
	if json.Unmarshal(data, &props) != nil {
		return streamMeta{}
	}
	num := func(key string) int64 {
		f, ok := props[key].(float64)
		// float64(math.MaxInt64) is 2^63, one past the largest int64.
		if !ok || f < 0 || f >= math.MaxInt64 || f != math.Trunc(f) {
			return 0
		}
		return int64(f)
	}
	return streamMeta{
		maxCount: num(metaMaxCount),
		maxAge:   time.Duration(min(num(metaMaxAge), math.MaxInt64/int64(time.Second))) * time.Second,
		before:   num(metaTruncateBefore),
	}
}

// appendMeta appends to a metadata stream. Every event must be a JSON
// object; the Store refuses names starting with '$', so the metadata stream
// is written through the engine, after the same checks the Store makes.
//
// The Store's notifications and hooks do not see these appends; the
// server wakes its own subscribers.
func (s *Services) appendMeta(ctx context.Context, name string, exp cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	target, _ := metaStream(name)
	validate := cairn.ValidateStreamID
	if s.access != nil {
		// ACLs decide who writes the metadata of a system stream ($all's
		// included), as in KurrentDB: administrators, by default.
		validate = func(id string) error {
			if id == cairn.AllStream {
				return nil
			}
			return cairn.ValidateSystemStreamID(id)
		}
	}
	if err := validate(target); err != nil {
		return cairn.AppendResult{}, fmt.Errorf("metadata stream %q: %w", name, err)
	}
	if len(events) == 0 {
		cur, err := s.currentVersion(ctx, name)
		if err != nil {
			return cairn.AppendResult{}, err
		}
		if err := exp.Check(name, cur); err != nil {
			return cairn.AppendResult{}, err
		}
		head, _ := s.head(ctx)
		return cairn.AppendResult{Version: cur, Position: head}, nil
	}
	// The caller checked the data (checkWrite).
	for i := range events {
		e := &events[i]
		if e.Type == "" || len(e.Type) > cairn.MaxTypeBytes {
			return cairn.AppendResult{}, &cairn.InvalidArgumentError{Field: fmt.Sprintf("events[%d].type", i), Reason: "must be 1 to 256 bytes"}
		}
		if n := len(e.Data) + len(e.Metadata); n > cairn.DefaultMaxEventBytes {
			return cairn.AppendResult{}, &cairn.InvalidArgumentError{
				Field: fmt.Sprintf("events[%d]", i), Reason: fmt.Sprintf("data and metadata are %d bytes, the limit is %d", n, cairn.DefaultMaxEventBytes)}
		}
		e.ContentType = cairn.ContentJSON
		if e.ID == uuid.Nil {
			id, err := uuid.NewV7()
			if err != nil {
				return cairn.AppendResult{}, err
			}
			e.ID = id
		}
	}
	res, err := s.store.Backend().Append(ctx, name, exp, events)
	if err == nil {
		s.local.fire()
	}
	return res, err
}

// Visibility returns what the stream metadata of store ($tb, $maxCount,
// $maxAge) lets readers of a stream see, as [links.Options.Visible] takes
// it: the lowest version and the oldest creation time. The services
// resolve links with it; a host gives it to the reader of its persistent
// subscriptions, so that they resolve links as reads do.
func Visibility(store *cairn.Store) func(ctx context.Context, stream string) (int64, time.Time, error) {
	s := &Services{store: store, links: links.NewReader(store, links.Options{})}
	return s.visibleOf
}

// visibleOf returns the lowest version and the oldest creation time of
// stream that its metadata lets readers see: a link to an event outside
// them resolves to nothing.
func (s *Services) visibleOf(ctx context.Context, stream string) (int64, time.Time, error) {
	meta, err := s.metadataOf(ctx, stream)
	if err != nil {
		return 0, time.Time{}, err
	}
	last, err := s.currentVersion(ctx, stream)
	if err != nil {
		return 0, time.Time{}, err
	}
	lowest, oldest := meta.visibility(last, time.Now())
	return lowest, oldest, nil
}
