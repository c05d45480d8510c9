package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/export"
	"github.com/cairndb/cairn/internal/progress"
	"github.com/spf13/cobra"
)

func newImportCmd(g *globals) *cobra.Command {
	var (
		opts  export.ImportOptions
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Read an export into a store, any engine, without duplicates",
		Long: `Import appends the events of an export (cairn export) to the store named by
--store or --server, in the export's order, each stream's events at the
versions they had; then it truncates, deletes and tombstones streams as the
export says. FILE "-" reads standard input.

An import can be run again: after an interruption (Ctrl-C, a crash, a cut
file) the same command finishes the work, recognising by their ids the
events already imported, and writes none twice. A target stream holding
other events at the same versions stops the import with an error naming
them.

The target engine assigns positions and creation times: the events keep
their relative order and their versions. A stream whose first versions
were truncated and compacted away in the source is filled with placeholder
events (type $import-placeholder) that are truncated away again.`,
		Example: `  cairn import backup.jsonl --store ./restored
  cairn export --store ./cairn-data | cairn import - --store postgres://cairn@localhost/cairn`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if opts.BatchEvents < 0 {
				return fmt.Errorf("--batch %d: must be positive", opts.BatchEvents)
			}
			var in io.Reader = cmd.InOrStdin()
			var size int64
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
					size = fi.Size()
				}
				in = f
			}
			return g.withStore(ctx, func(s *cairn.Store) error {
				p := newProgress(cmd, "import", quiet, progress.Options{TotalBytes: size})
				opts.Progress = p.Add
				st, err := export.Import(ctx, s, in, opts)
				if err != nil {
					p.Abort()
					if errors.Is(err, context.Canceled) {
						return fmt.Errorf("import interrupted after reading %d events: run the same command again to finish; the events already imported are recognised by their ids", st.Events)
					}
					return err
				}
				p.Done()
				fmt.Fprintf(cmd.ErrOrStderr(), "import: %d events of %d streams", st.Events, st.Streams)
				if st.Placeholders > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), ", and %d placeholders below truncated streams", st.Placeholders)
				}
				fmt.Fprintln(cmd.ErrOrStderr())
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.BatchEvents, "batch", 0, "events per atomic append (default 1000); run an interrupted import again with the same value")
	f.BoolVarP(&quiet, "quiet", "q", false, "print no progress, only the summary")
	return cmd
}
