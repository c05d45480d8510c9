package main

import (
	"fmt"
	"strings"

	"github.com/cairndb/cairn"
	"github.com/spf13/cobra"
)

func newStreamsCmd(g *globals) *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "List the streams of a store, one id per line, in byte order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withExistingStore(cmd.Context(), func(s *cairn.Store) error {
				out := cmd.OutOrStdout()
				for id, err := range s.Streams(cmd.Context()) {
					if err != nil {
						return err
					}
					if !strings.HasPrefix(id, prefix) {
						if id > prefix {
							break // ids are sorted: none further can match
						}
						continue
					}
					fmt.Fprintln(out, id)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "list only streams whose id starts with this prefix")
	return cmd
}
