package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

func newAppendCmd(g *globals) *cobra.Command {
	var (
		expected int64
		metadata string
		tags     []string
		id       string
		binary   bool
	)
	cmd := &cobra.Command{
		Use:   "append STREAM TYPE [DATA]",
		Short: "Append an event to a stream",
		Long: `Append one event to STREAM and print the version and position it got.

DATA is the event's payload, JSON by default; "-" or no DATA reads it from
standard input. --expected takes the numeric form of the expected version:
-1 the stream must not exist, -2 any (the default), -4 the stream must exist,
n ≥ 0 the stream's current version must be n.`,
		Example: `  cairn append order-1 OrderPlaced '{"total": 42}' --expected -1
  echo '{"total": 42}' | cairn append order-1 OrderPlaced --tag vip`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			exp, err := cairn.ParseExpectedVersion(expected)
			if err != nil {
				return fmt.Errorf("--expected: %w", err)
			}
			e := cairn.EventData{Type: args[1], Tags: tags}
			if id != "" {
				if e.ID, err = uuid.Parse(id); err != nil {
					return fmt.Errorf("--id %q: not a UUID: %w", id, err)
				}
			}
			if len(args) == 3 && args[2] != "-" {
				e.Data = []byte(args[2])
			} else {
				if e.Data, err = io.ReadAll(cmd.InOrStdin()); err != nil {
					return fmt.Errorf("read data from standard input: %w", err)
				}
			}
			if binary {
				e.ContentType = cairn.ContentBinary
			} else {
				e.Data = []byte(strings.TrimSpace(string(e.Data)))
				if !json.Valid(e.Data) {
					return fmt.Errorf("data is not valid JSON (use --binary for other content): %.80q", e.Data)
				}
			}
			if metadata != "" {
				var obj map[string]json.RawMessage
				if err := json.Unmarshal([]byte(metadata), &obj); err != nil || obj == nil {
					return fmt.Errorf("--metadata must be a JSON object, such as '{\"user\":\"ada\"}': %.80q", metadata)
				}
				e.Metadata = []byte(metadata)
			}
			return g.withStore(cmd.Context(), func(s *cairn.Store) error {
				res, err := s.Append(cmd.Context(), args[0], exp, e)
				if err != nil {
					return err
				}
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{
					"stream": args[0], "version": res.Version, "position": res.Position,
				})
			})
		},
	}
	f := cmd.Flags()
	f.Int64Var(&expected, "expected", -2, "expected version: -1 no stream, -2 any, -4 stream exists, n ≥ 0 exact")
	f.StringVar(&metadata, "metadata", "", "event metadata, a JSON object")
	f.StringArrayVar(&tags, "tag", nil, "a tag (repeatable)")
	f.StringVar(&id, "id", "", "the event id (a UUID); generated when absent")
	f.BoolVar(&binary, "binary", false, "store DATA as opaque bytes instead of JSON")
	return cmd
}
