package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/subscription"
	"github.com/spf13/cobra"
)

func newTailCmd(g *globals) *cobra.Command {
	var (
		from     int64
		filter   subscription.Filter
		maxCount int
		category string
	)
	cmd := &cobra.Command{
		Use:   "tail [STREAM]",
		Short: "Follow new events of a stream, or of the global log, as JSON lines",
		Long: `Print events as they are appended, one JSON object per line, until
interrupted. By default only events appended from now on are printed; --from
starts at a version (stream) or position (global log) and prints the history
first. Filters apply to the global log. --category follows the events of a
category through the index; --from is then a number in the category.`,
		Example: `  cairn tail
  cairn tail order-1 --from 0
  cairn tail --stream-prefix order- --type OrderPlaced
  cairn tail --category order --from 0`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			start := subscription.End
			if cmd.Flags().Changed("from") {
				if from < 0 {
					return fmt.Errorf("--from %d: must not be negative", from)
				}
				start = subscription.At(uint64(from))
			}
			if maxCount < 0 {
				return fmt.Errorf("--count %d: must be positive, or 0 for no limit", maxCount)
			}
			if len(args) == 1 && !filter.IsZero() {
				return fmt.Errorf("filters apply to the global log: drop STREAM, or the filter flags")
			}
			if err := filter.Validate(); err != nil {
				return err
			}
			if category != "" {
				if !filter.IsZero() {
					return fmt.Errorf("--category follows a category: drop the filter flags")
				}
				stream, err := indexStream(category, args)
				if err != nil {
					return err
				}
				args = []string{stream}
			}
			ctx := cmd.Context()
			return g.withExistingStore(ctx, func(s *cairn.Store) error {
				opts := subscription.Options{Filter: filter, CheckpointEvery: -1, ResolveLinks: category != ""}
				var sub *subscription.Subscription
				var err error
				if len(args) == 1 {
					sub, err = subscription.Stream(ctx, s, args[0], start, opts)
				} else {
					sub, err = subscription.All(ctx, s, start, opts)
				}
				if err != nil {
					return err
				}
				defer sub.Close()
				w := newEventWriter(cmd.OutOrStdout())
				n := 0
				for msg, err := range sub.Messages(ctx) {
					if err != nil {
						if errors.Is(err, context.Canceled) {
							return nil // interrupted: the normal end of tail
						}
						return err
					}
					if msg.Kind != subscription.KindEvent {
						continue
					}
					e := &msg.Event
					if category != "" {
						if e = msg.Target; e == nil {
							continue // its event is gone
						}
					}
					if err := w.write(*e); err != nil {
						return err
					}
					if n++; maxCount > 0 && n == maxCount {
						return nil
					}
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.Int64Var(&from, "from", 0, "start at this version (stream) or position (global log), printing history first")
	f.IntVar(&maxCount, "count", 0, "stop after this many events (0: follow until interrupted)")
	f.StringArrayVar(&filter.StreamPrefixes, "stream-prefix", nil, "only events of streams with this prefix (repeatable)")
	f.StringArrayVar(&filter.EventTypes, "type", nil, "only events of this type (repeatable)")
	f.StringArrayVar(&filter.Tags, "tag", nil, "only events with this tag (repeatable)")
	f.StringVar(&category, "category", "", "follow the events of the streams of this category")
	return cmd
}
