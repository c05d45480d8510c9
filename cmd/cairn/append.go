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
		cond     queryFlags
		after    int64
	)
	cmd := &cobra.Command{
		Use:   "append STREAM TYPE [DATA]",
		Short: "Append an event to a stream",
		Long: `Append one event to STREAM and print the version and position it got.

DATA is the event's payload, JSON by default; "-" or no DATA reads it from
standard input. --expected takes the numeric form of the expected version:
-1 the stream must not exist, -2 any (the default), -4 the stream must exist,
n ≥ 0 the stream's current version must be n.

--if-none-match TAG makes the append conditional (dynamic consistency
boundaries): it is refused, and nothing written, when an event carrying
every such tag (and, with --if-none-match-type, of one of those types) was
appended after position --after, or at all without --after. The condition
is checked atomically with the write and with --expected.`,
		Example: `  cairn append order-1 OrderPlaced '{"total": 42}' --expected -1
  echo '{"total": 42}' | cairn append order-1 OrderPlaced --tag vip
  cairn append user-7 UserRegistered '{"name": "ann"}' --tag username:ann --if-none-match username:ann
  cairn append course-1 StudentSubscribed '{}' --tag course:1 --if-none-match course:1 --after 41`,
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
			var condition *cairn.AppendCondition
			if cond.set() {
				q, err := cond.query()
				if err != nil {
					return err
				}
				condition = &cairn.AppendCondition{FailIfEventsMatch: q}
				if cmd.Flags().Changed("after") {
					if after < 0 {
						return fmt.Errorf("--after %d: must not be negative", after)
					}
					condition.After = new(uint64(after))
				}
			} else if cmd.Flags().Changed("after") {
				return fmt.Errorf("--after needs a condition: give --if-none-match")
			}
			return g.withStore(cmd.Context(), func(s *cairn.Store) error {
				var res cairn.AppendResult
				var err error
				if condition != nil {
					res, err = s.AppendIf(cmd.Context(), args[0], exp, *condition, e)
				} else {
					res, err = s.Append(cmd.Context(), args[0], exp, e)
				}
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
	f.StringArrayVar(&cond.tags, "if-none-match", nil, "append only if no event carrying this tag (repeatable: all of them) was appended after --after")
	f.StringArrayVar(&cond.types, "if-none-match-type", nil, "with --if-none-match: only events of this type (repeatable: any of them) fail the condition")
	f.Int64Var(&after, "after", 0, "the position after which a matching event fails the condition (default: any position)")
	return cmd
}
