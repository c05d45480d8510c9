package main

import (
	"encoding/json"
	"errors"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/storeurl"
	"github.com/spf13/cobra"
)

// stats is what `cairn stats` prints.
type stats struct {
	// Store is where the figures come from: the server (--server), or the
	// store (--store).
	Store string `json:"store"`
	// Events is the number of positions the log gave: every event
	// appended, including those of streams deleted since, and of those
	// that compaction removed.
	Events    uint64  `json:"events"`
	Head      *uint64 `json:"head_position"`
	Streams   int     `json:"streams"`
	DiskBytes *int64  `json:"disk_bytes,omitempty"`
	Healthy   bool    `json:"healthy"`
	Health    string  `json:"health,omitempty"`
}

func newStatsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Print what a store holds, as JSON",
		Long: `Stats prints, as JSON, what the store (--store) or the server's store
(--server) holds: where it is, the log's head position, how many events the
log has numbered (every event appended, those of deleted streams and those
compaction removed included), how many streams, its bytes on disk, and
whether it is healthy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			url, err := g.target()
			if err != nil {
				return err
			}
			return g.withExistingStore(ctx, func(s *cairn.Store) error {
				st := stats{Store: storeurl.Redact(url), Healthy: true}
				last, err := s.ReadAll(ctx, cairn.LogEnd, 1, cairn.Backward)
				if err != nil {
					return err
				}
				if len(last) == 1 {
					head := last[0].Position
					st.Head, st.Events = &head, head+1
				}
				for _, err := range s.Streams(ctx) {
					if err != nil {
						return err
					}
					st.Streams++
				}
				if n, err := s.DiskBytes(ctx); err == nil {
					st.DiskBytes = &n
				} else if !errors.Is(err, cairn.ErrNotSupported) {
					return err
				}
				if err := s.Health(ctx); err != nil {
					st.Healthy, st.Health = false, err.Error()
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			})
		},
	}
}
