package main

import (
	"fmt"

	"github.com/cairndb/cairn/server"
	"github.com/spf13/cobra"
)

func newCertsCmd() *cobra.Command {
	var (
		dir  string
		opts server.CertOptions
	)
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make a development CA and node certificate for cairn serve",
		Long: `Make a certificate authority and a node certificate signed by it (ECDSA
P-256), for development: ca.crt, ca.key, node.crt and node.key in --dir.
The node certificate is valid for localhost, 127.0.0.1 and ::1, plus every
--host. Clients trust the server through ca.crt. Keep ca.key private:
whoever holds it can make certificates the clients trust.`,
		Example: `  cairn certs --dir ./certs --host db.internal
  cairn serve --tls-cert certs/node.crt --tls-key certs/node.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := server.GenerateCerts(dir, opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "CA certificate:   %s\nCA key:           %s\nnode certificate: %s\nnode key:         %s\n",
				files.CACert, files.CAKey, files.NodeCert, files.NodeKey)
			fmt.Fprintf(out, "\ncairn serve --tls-cert %s --tls-key %s\nkurrentdb://admin:PASSWORD@localhost:2113?tls=true&tlscafile=%s\n",
				files.NodeCert, files.NodeKey, files.CACert)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "./certs", "the directory to write the files to")
	cmd.Flags().StringSliceVar(&opts.Hosts, "host", nil, "an extra DNS name or IP address for the node certificate (repeatable)")
	cmd.Flags().DurationVar(&opts.Validity, "validity", 0, "how long the certificates are valid (default 365 days)")
	cmd.Flags().BoolVar(&opts.Overwrite, "force", false, "overwrite existing files")
	return cmd
}
