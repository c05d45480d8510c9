package main

import (
	"fmt"
	"iter"

	"github.com/cairndb/cairn"
	"github.com/spf13/cobra"
)

func newReadCmd(g *globals) *cobra.Command {
	var (
		from     int64
		count    int
		backward bool
		q        queryFlags
		category string
	)
	cmd := &cobra.Command{
		Use:   "read [STREAM]",
		Short: "Print a stream's events, or the global log, as JSON lines",
		Long: `Print the events of STREAM, or of the global log when STREAM is omitted,
one JSON object per line. --from is a version for a stream and a position for
the global log; a backward read starts at the end unless --from is given.

--tag and --type read the events of the global log that carry every --tag
and have one of the --type (a query of dynamic consistency boundaries);
--query takes a whole query as JSON, whose items are ORed. A query reads the
store's index, so its cost grows with the events it matches.

--category reads the events of a category (the part of a stream id before
its first '-') through the index, as KurrentDB's $ce- stream lists them;
--from is then a number in the category.`,
		Example: `  cairn read order-1
  cairn read --backward --count 10
  cairn read --from 1000 --count 50
  cairn read --tag course:1 --type StudentSubscribed
  cairn read --query '{"items":[{"tags":["student:7"]},{"types":["CourseDefined"]}]}'
  cairn read --category order --count 10`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 0 {
				return fmt.Errorf("--count %d: must be positive, or 0 for no limit", count)
			}
			dir := cairn.Forward
			if backward {
				dir = cairn.Backward
			}
			fromSet := cmd.Flags().Changed("from")
			if fromSet && from < 0 {
				return fmt.Errorf("--from %d: must not be negative", from)
			}
			if q.set() && category != "" {
				return fmt.Errorf("--category and a query (--tag, --type, --query): give one of them")
			}
			if q.set() && len(args) == 1 {
				return fmt.Errorf("a query reads the global log: give no STREAM with --tag, --type or --query")
			}
			index, err := indexStream(category, args)
			if err != nil {
				return err
			}
			query, err := q.query()
			if err != nil {
				return err
			}
			return g.withExistingStore(cmd.Context(), func(s *cairn.Store) error {
				var events iter.Seq2[cairn.Event, error]
				if index != "" {
					start := from
					if backward && !fromSet {
						start = cairn.StreamEnd
					}
					events = indexEvents(cmd.Context(), s, index, start, dir)
				} else if q.set() {
					start := uint64(from)
					if backward && !fromSet {
						start = cairn.LogEnd
					}
					seq, _, err := s.Query(cmd.Context(), query, start, dir)
					if err != nil {
						return err
					}
					events = seq
				} else if len(args) == 1 {
					start := from
					if backward && !fromSet {
						start = cairn.StreamEnd
					}
					events = s.Stream(cmd.Context(), args[0], start, dir)
				} else {
					start := uint64(from)
					if backward && !fromSet {
						start = cairn.LogEnd
					}
					events = s.All(cmd.Context(), start, dir)
				}
				w := newEventWriter(cmd.OutOrStdout())
				n := 0
				for e, err := range events {
					if err != nil {
						return err
					}
					if err := w.write(e); err != nil {
						return err
					}
					if n++; count > 0 && n == count {
						break
					}
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.Int64Var(&from, "from", 0, "first version (stream) or position (global log) to read")
	f.IntVar(&count, "count", 0, "read at most this many events (0: all)")
	f.BoolVar(&backward, "backward", false, "read from the end towards the start")
	f.StringArrayVar(&q.tags, "tag", nil, "read the events that carry this tag (repeatable: all of them)")
	f.StringArrayVar(&q.types, "type", nil, "read the events of this type (repeatable: any of them)")
	f.StringVar(&q.json, "query", "", `read the events that match this query, as JSON: {"items":[{"types":[…],"tags":[…]}]}`)
	f.StringVar(&category, "category", "", "read the events of the streams of this category")
	return cmd
}
