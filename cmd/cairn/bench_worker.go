package main

import (
	"context"
	"os"
	"os/exec"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/bench"
	"github.com/cairndb/cairn/storeurl"
	"github.com/spf13/cobra"
)

// newBenchWorkerCmd is the hidden subcommand that bench runs in the worker
// processes of M1: it reads its task from standard input (so that the
// store's URL is not on a command line) and answers on standard output.
func newBenchWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "worker",
		Short:  "Run one worker process of bench's M1 (started by bench itself)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return bench.Worker(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), func(ctx context.Context, url string) (*cairn.Store, error) {
				return storeurl.Open(ctx, url, storeurl.Options{})
			})
		},
	}
}

// benchWorker returns a function that makes the command of a worker
// process: this executable, running newBenchWorkerCmd, with its errors on
// this process's standard error.
func benchWorker() (func(ctx context.Context) *exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) *exec.Cmd {
		cmd := exec.CommandContext(ctx, exe, "bench", "worker")
		cmd.Stderr = os.Stderr
		return cmd
	}, nil
}
