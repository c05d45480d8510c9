package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/cairndb/cairn/bench"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// newBenchFloorCmd is the hidden subcommand that bench starts for
// --grpc-floor: a gRPC server that answers every v1 append at once and
// keeps nothing (bench.NewFloor). Like the server bench starts, it logs a
// JSON line with its address once it serves, and stops on SIGTERM.
func newBenchFloorCmd() *cobra.Command {
	var listen, cert, key string
	var plaintext bool
	cmd := &cobra.Command{
		Use:    "floor",
		Short:  "Serve the gRPC floor of the wire workloads (started by bench itself)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts []grpc.ServerOption
			switch {
			case plaintext:
			case cert == "" || key == "":
				return errors.New("the floor needs --tls-cert and --tls-key, or --insecure")
			default:
				pair, err := tls.LoadX509KeyPair(cert, key)
				if err != nil {
					return fmt.Errorf("--tls-cert, --tls-key: %w", err)
				}
				opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})))
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			s := bench.NewFloor(opts...)
			served := make(chan error, 1)
			go func() { served <- s.Serve(l) }()
			slog.New(slog.NewJSONHandler(os.Stderr, nil)).Info(floorServing, "grpc", l.Addr().String())
			select {
			case err := <-served:
				return err
			case <-cmd.Context().Done():
				s.Stop()
				return nil
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:0", "address to serve on")
	f.StringVar(&cert, "tls-cert", "", "the server's certificate (PEM)")
	f.StringVar(&key, "tls-key", "", "its private key (PEM)")
	f.BoolVar(&plaintext, "insecure", false, "serve plaintext")
	return cmd
}

// floorServing is the message of the floor's line that gives its address.
const floorServing = "floor serving"
