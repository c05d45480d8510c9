package main

import (
	"fmt"
	"runtime"

	"github.com/cairndb/cairn/internal/buildinfo"
	"github.com/spf13/cobra"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print cairn's version, and the version the server advertises",
		Long: `Print cairn's version: the one set at build time with
  -ldflags "-X github.com/cairndb/cairn/internal/buildinfo.version=v1.2.3",
else the module version of go install …@v1.2.3, else "devel". The server
(cairn serve) advertises the same version to clients, after the KurrentDB
protocol version the official clients check.`,
		Args: cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "cairn %s (server version %s) %s %s/%s\n",
				buildinfo.Version(), buildinfo.Advertised(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
