package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/export"
	"github.com/cairndb/cairn/internal/progress"
	"github.com/cairndb/cairn/storeurl"
	"github.com/spf13/cobra"
)

func newExportCmd(g *globals) *cobra.Command {
	var (
		opts   export.Options
		output string
		force  bool
		quiet  bool
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the log, or some streams, as JSON lines that import reads",
		Long: `Export writes the store's log as JSON lines: a header, every event with
every field (id, stream, version, position, type, content type, data,
metadata, tags, creation time), each stream's state (live, truncated,
deleted, tombstoned) before its first event, and an end record. Stream
metadata ($$stream) goes along with its stream. Data is embedded as JSON
when it is compact JSON, base64 otherwise (data_base64), so that every byte
comes back. Events appended after the export starts are not exported.

--stream and --prefix limit the export to streams (repeatable); a prefix
such as "order-" exports a category. Without --output the export goes to
standard output. With it, the file appears only once the export is
complete, readable by its owner only (it holds every event). Progress and a
summary go to standard error.

Export opens a directory read-only: it works on read-only media, and
against a store a server holds use --server.`,
		Example: `  cairn export -o backup.jsonl
  cairn export --stream order-1 | jq 'select(.id) | .data'
  cairn export --prefix order- -o orders.jsonl --server cairn://localhost:2113`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if output != "" && output != "-" && !force {
				if _, err := os.Stat(output); err == nil {
					return fmt.Errorf("--output %s exists: pass --force to overwrite it", output)
				}
			}
			return g.withExistingStore(ctx, func(s *cairn.Store) error {
				url, _ := g.target()
				opts.Source = storeurl.Redact(url)
				var total int64
				if len(opts.Streams) == 0 && len(opts.Prefixes) == 0 {
					last, err := s.ReadAll(ctx, cairn.LogEnd, 1, cairn.Backward)
					if err != nil {
						return err
					}
					if len(last) == 1 {
						total = int64(last[0].Position) + 1 // at most: compaction leaves gaps
					}
				}
				var w io.Writer = cmd.OutOrStdout()
				toStdout := output == "" || output == "-"
				var file *os.File
				if !toStdout {
					var err error
					file, err = os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*.partial")
					if err != nil {
						return fmt.Errorf("--output: %w", err)
					}
					defer func() {
						if file != nil {
							file.Close()
							os.Remove(file.Name())
						}
					}()
					w = file
				}
				// The bar would mix with events printed on the same terminal.
				p := newProgress(cmd, "export", quiet || (toStdout && isTerminal(w)), progress.Options{Total: total})
				opts.Progress = p.Add
				st, err := export.Write(ctx, s, w, opts)
				if err != nil {
					p.Abort()
					return err
				}
				if file != nil {
					if err := errors.Join(file.Sync(), file.Close()); err != nil {
						return fmt.Errorf("--output: %w", err)
					}
					if err := os.Rename(file.Name(), output); err != nil {
						return fmt.Errorf("--output: %w", err)
					}
					file = nil
				}
				p.Done()
				if !toStdout {
					fmt.Fprintf(cmd.ErrOrStderr(), "export: %s holds %d events of %d streams (%s)\n", output, st.Events, st.Streams, progress.Bytes(st.Bytes))
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "", "write the export to this file (default: standard output)")
	f.BoolVar(&force, "force", false, "overwrite --output if it exists")
	f.StringArrayVar(&opts.Streams, "stream", nil, "export this stream (repeatable)")
	f.StringArrayVar(&opts.Prefixes, "prefix", nil, "export the streams whose ids start with this prefix, such as a category \"order-\" (repeatable)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print no progress, only the summary")
	return cmd
}
