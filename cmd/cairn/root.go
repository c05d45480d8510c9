package main

import (
	"context"
	"errors"

	"github.com/cairndb/cairn"
	"github.com/spf13/cobra"
)

// errSilent ends the command with a failure status after it has already told
// the user why.
var errSilent = errors.New("silent failure")

// DefaultStore is the store commands open when --store is not given.
const DefaultStore = "./cairn-data"

// globals holds what every command shares: the flags, and how to open the
// store (tests replace openStore to share one in-memory store between
// commands).
type globals struct {
	store     string
	server    string
	openStore func(ctx context.Context, url string, mode openMode) (*cairn.Store, error)
}

// openMode says whether a command may create or change the store.
type openMode int

const (
	// readWrite opens the store, creating it if it does not exist.
	readWrite openMode = iota
	// readOnly opens an existing store without writing to it, and refuses
	// a location that holds none.
	readOnly
)

func newRootCmd() *cobra.Command {
	return newRootCmdWith(&globals{openStore: openURL})
}

func newRootCmdWith(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "cairn",
		Short:         "cairn is an event store for event-sourced systems",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.store, "store", DefaultStore, "the store: memory:, a directory, postgres://user:pass@host/db, cairn://host:port, or nats://h1:4222,h2:4222?dir=./node1 (a cluster node)")
	root.PersistentFlags().StringVar(&g.server, "server", "", "use a running cairn server instead of --store, by the URL cairn serve prints: cairn://user:password@host:port[?tls=true&tlsCAFile=ca.crt]")
	root.AddCommand(
		newAppendCmd(g),
		newReadCmd(g),
		newStreamsCmd(g),
		newStatsCmd(g),
		newTailCmd(g),
		newExportCmd(g),
		newImportCmd(g),
		newBackupCmd(g),
		newRestoreCmd(),
		newCheckCmd(g),
		newVersionCmd(),
		newServeCmd(g), newCertsCmd(),
		newBenchCmd(g),
		newNodesCmd(g),
	)
	return root
}

// target returns the URL of the store the command works on: --server when
// given (which must name a server), else --store.
func (g *globals) target() (string, error) {
	if g.server != "" {
		return g.server, checkServerURL(g.server)
	}
	return g.store, checkStoreURL(g.store)
}

// withStore opens the store named by --server or --store for reading and
// writing, runs fn, and closes the store.
func (g *globals) withStore(ctx context.Context, fn func(*cairn.Store) error) error {
	return g.with(ctx, readWrite, fn)
}

// withExistingStore opens the store for reading only: it never creates a
// store, and refuses a location that holds none.
func (g *globals) withExistingStore(ctx context.Context, fn func(*cairn.Store) error) error {
	return g.with(ctx, readOnly, fn)
}

func (g *globals) with(ctx context.Context, mode openMode, fn func(*cairn.Store) error) (err error) {
	url, err := g.target()
	if err != nil {
		return err
	}
	s, err := g.openStore(ctx, url, mode)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); err == nil && cerr != nil && !errors.Is(cerr, cairn.ErrClosed) {
			err = cerr
		}
		err = explainServerError(url, err)
	}()
	return fn(s)
}
