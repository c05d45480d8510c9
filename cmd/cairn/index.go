package main

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
)

// indexStream returns the category stream ($ce-<category>) that --category
// names, and "" when it is not given.
func indexStream(category string, args []string) (string, error) {
	switch {
	case category == "":
		return "", nil
	case len(args) > 0:
		return "", fmt.Errorf("--category reads the index: drop STREAM")
	}
	if _, ok := cairn.Category(category + cairn.CategorySeparator); !ok || len(category) >= cairn.MaxStreamIDBytes {
		return "", fmt.Errorf("--category %q: a category is the part of a stream id before its first %q", category, cairn.CategorySeparator)
	}
	return links.CategoryPrefix + category, nil
}

// indexEvents returns the events that the stream of the standard
// projections lists, from number from in direction dir: the events
// themselves, their links resolved. Entries whose event is gone are
// skipped. A category or type with no event gives none.
func indexEvents(ctx context.Context, s *cairn.Store, stream string, from int64, dir cairn.Direction) iter.Seq2[cairn.Event, error] {
	r := links.NewReader(s, links.Options{})
	return func(yield func(cairn.Event, error) bool) {
		for {
			page, err := r.ReadStream(ctx, stream, from, 256, cairn.DefaultReadBatchBytes, dir, true)
			if err != nil {
				if !errors.Is(err, cairn.ErrStreamNotFound) {
					yield(cairn.Event{}, err)
				}
				return
			}
			for _, e := range page.Events {
				if e.Target != nil && !yield(*e.Target, nil) {
					return
				}
			}
			if !page.More || len(page.Events) == 0 {
				return
			}
			last := page.Events[len(page.Events)-1].Event.Version
			if dir == cairn.Forward {
				from = last + 1
			} else if from = last - 1; from < 0 {
				return
			}
		}
	}
}
