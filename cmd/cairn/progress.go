package main

import (
	"io"

	"github.com/cairndb/cairn/internal/progress"
	"github.com/spf13/cobra"
)

// newProgress starts a progress reporter on the command's standard error:
// a bar on a terminal, plain lines every few seconds otherwise, and a
// summary at the end. quiet keeps only the summary.
func newProgress(cmd *cobra.Command, label string, quiet bool, opts progress.Options) *progress.Reporter {
	w := cmd.ErrOrStderr()
	opts.Terminal = progress.IsTerminal(w)
	opts.Quiet = opts.Quiet || quiet
	return progress.New(w, label, opts)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool { return progress.IsTerminal(w) }
