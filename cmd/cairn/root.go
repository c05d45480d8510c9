package main

import (
	"context"
	"errors"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/storeurl"
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
	openStore func(ctx context.Context, url string) (*cairn.Store, error)
}

func newRootCmd() *cobra.Command {
	g := &globals{openStore: func(ctx context.Context, url string) (*cairn.Store, error) {
		return storeurl.Open(ctx, url, storeurl.Options{})
	}}
	return newRootCmdWith(g)
}

func newRootCmdWith(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "cairn",
		Short:         "cairn is an event store for event-sourced systems",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.store, "store", DefaultStore, "the store: memory:, a directory, postgres://user:pass@host/db, or cairn://host:port")
	root.PersistentFlags().StringVar(&g.server, "server", "", "use a running cairn server instead of --store: cairn://[user:password@]host:port[?tls=true&tlscafile=ca.crt]")
	root.AddCommand(
		newAppendCmd(g),
		newReadCmd(g),
		newStreamsCmd(g),
		newStatsCmd(g),
		newTailCmd(g),
		newVersionCmd(),
		newServeCmd(g), newCertsCmd(),
		newBenchCmd(g),
	)
	return root
}

// withStore opens the store named by --store, runs fn, and closes the store.
func (g *globals) withStore(ctx context.Context, fn func(*cairn.Store) error) (err error) {
	url := g.store
	if g.server != "" {
		url = g.server
	}
	s, err := g.openStore(ctx, url)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); err == nil && cerr != nil && !errors.Is(cerr, cairn.ErrClosed) {
			err = cerr
		}
	}()
	return fn(s)
}
