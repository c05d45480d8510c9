package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/cairndb/cairn/natsstore"
	"github.com/cairndb/cairn/storeurl"
	natsurl "github.com/cairndb/cairn/storeurl/nats"
	"github.com/spf13/cobra"
)

// cairn nodes: the registry of a cluster replicated on NATS JetStream,
// read and changed without becoming a node of it.

func newNodesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the nodes of a cluster (--store nats://…) and what holds its log's trimming back",
		Long: `List the nodes of a cluster replicated on NATS JetStream, as its registry
holds them: each node's id, the address its server advertises, the last
record of the log it applied, when it last reported, and whether it is
alive. The log is trimmed below the lowest record every registered node
applied, so a node that is gone for good holds trimming back until it is
forgotten (cairn nodes forget ID).

The command connects to the NATS servers of --store and reads the registry;
it is not a node and keeps no copy of the log.`,
		Example: `  cairn nodes --store 'nats://h1:4222,h2:4222,h3:4222'`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRegistry(cmd.Context(), g, func(r *natsstore.Registry) error {
				return printNodes(cmd.Context(), cmd.OutOrStdout(), r)
			})
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "forget ID",
		Short: "Remove a node that is gone for good from a cluster's registry",
		Long: `Remove a node that is gone for good from a cluster's registry, so that it
no longer holds the log's trimming back and gossip no longer reports it: a
node lost with its disk, say, and replaced by a new one from a backup (the
new node has an id of its own). A node that is alive is refused: stop it
first. A forgotten node that starts again registers again; if the log was
trimmed past what it applied, it refuses to start and must be restored
from a backup of another node.`,
		Example: `  cairn nodes forget node-3f9a0c2d41e8b7a6 --store 'nats://h1:4222,h2:4222,h3:4222'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRegistry(cmd.Context(), g, func(r *natsstore.Registry) error {
				if err := r.Forget(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "forgot node %s\n", args[0])
				return nil
			})
		},
	})
	return cmd
}

// withRegistry opens the registry of the cluster --store names and runs fn.
func withRegistry(ctx context.Context, g *globals, fn func(*natsstore.Registry) error) error {
	if g.server != "" {
		return fmt.Errorf("cairn nodes reads a cluster's registry from its NATS servers: give --store nats://h1:4222,h2:4222,… instead of --server")
	}
	if kind, _, err := storeurl.Parse(g.store); err != nil {
		return err
	} else if kind != storeurl.Nats {
		return fmt.Errorf("--store %s is not a cluster: cairn nodes needs the cluster's NATS servers, --store nats://h1:4222,h2:4222,…", storeurl.Redact(g.store))
	}
	opts, err := natsurl.Parse(g.store)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := natsstore.OpenRegistry(ctx, opts)
	if err != nil {
		return err
	}
	defer r.Close()
	return fn(r)
}

func printNodes(ctx context.Context, w io.Writer, r *natsstore.Registry) error {
	ns, err := r.Nodes(ctx)
	if err != nil {
		return err
	}
	log, err := r.Log(ctx)
	if err != nil {
		return err
	}
	if log.Records == 0 {
		fmt.Fprintf(w, "log: no records (last record %d)\n", log.Last)
	} else {
		fmt.Fprintf(w, "log: records %d to %d (%d records, %d bytes)\n", log.First, log.Last, log.Records, log.Bytes)
	}
	if len(ns) == 0 {
		fmt.Fprintln(w, "no nodes registered")
		return nil
	}
	low := ns[0]
	for _, n := range ns {
		if n.Applied < low.Applied {
			low = n
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tAPPLIED\tBEHIND\tREPORTED\tSTATE")
	for _, n := range ns {
		addr := n.Address
		if addr == "" {
			addr = "-"
		}
		state := "alive"
		if !n.Alive {
			state = "down"
		}
		behind := uint64(0)
		if log.Last > n.Applied {
			behind = log.Last - n.Applied
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s ago\t%s\n", n.ID, addr, n.Applied, behind, time.Since(n.Reported).Round(100*time.Millisecond), state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !low.Alive && low.Applied < log.Last {
		fmt.Fprintf(w, "trimming waits for node %s, which is down (applied %d): once it is gone for good, cairn nodes forget %s\n", low.ID, low.Applied, low.ID)
	}
	for _, n := range ns {
		if n.Records < natsstore.RecordsPurgeSteps {
			fmt.Fprintf(w, "node %s is of an earlier build: compactions are logged as one record, which every node's applier waits for, until it is upgraded (or, gone for good, forgotten)\n", n.ID)
		}
	}
	return nil
}
