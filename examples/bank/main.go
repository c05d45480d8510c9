// Command bank is a runnable example of cairn's aggregates: bank accounts
// that are opened, credited and debited within an overdraft limit, with a
// balance read model updated in the same transaction as the events.
//
//	go run ./examples/bank                 # in memory
//	go run ./examples/bank -store ./data   # any store URL cairn accepts
//
// The account logic is two plain functions, [Decide] and [Evolve]; the
// aggregate package hydrates accounts, retries on concurrent writes,
// snapshots and runs the projection.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/storeurl"
	_ "github.com/cairndb/cairn/storeurl/disk"
	_ "github.com/cairndb/cairn/storeurl/postgres"
	_ "github.com/cairndb/cairn/storeurl/remote"
	"github.com/google/uuid"
)

func main() {
	storeURL := flag.String("store", "memory:", "the store: memory:, a directory, or postgres://…")
	flag.Parse()
	ctx := context.Background()
	store, err := storeurl.Open(ctx, *storeURL, storeurl.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
	defer store.Close()
	// Fresh account ids keep runs on a persistent store apart.
	suffix := ""
	if *storeURL != "memory:" {
		suffix = "-" + uuid.NewString()[:8]
	}
	if err := run(ctx, os.Stdout, store, suffix); err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

// run plays a short story of two accounts and prints what happens.
func run(ctx context.Context, w io.Writer, store *cairn.Store, suffix string) error {
	accounts, err := NewAccounts(store)
	if err != nil {
		return err
	}
	defer accounts.Close()

	alice, bob := "alice"+suffix, "bob"+suffix
	steps := []struct {
		id  string
		cmd Command
	}{
		{alice, Open{Owner: "Alice", Overdraft: 50_00}},
		{bob, Open{Owner: "Bob"}},
		{alice, Deposit{Amount: 120_00}},
		{bob, Deposit{Amount: 30_00}},
		{alice, Withdraw{Amount: 150_00}}, // into the overdraft: allowed
		{alice, Withdraw{Amount: 25_00}},  // beyond it: refused
		{bob, Withdraw{Amount: 30_00}},
		{bob, Open{Owner: "Robert"}}, // already open: refused
		{"carol" + suffix, Deposit{Amount: 1}},
	}
	for _, s := range steps {
		res, err := accounts.Handle(ctx, s.id, s.cmd)
		switch {
		case errors.Is(err, ErrOverdraftExceeded), errors.Is(err, ErrAlreadyOpen), errors.Is(err, ErrNotOpen):
			fmt.Fprintf(w, "%-6s %-24s refused: %v\n", s.id, describe(s.cmd), err)
		case err != nil:
			return err
		default:
			fmt.Fprintf(w, "%-6s %-24s balance %8s (version %d)\n", s.id, describe(s.cmd), cents(res.State.Balance), res.Version)
		}
	}

	past, err := accounts.Replay(ctx, alice, 1)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "alice's balance as of version 1: %s\n", cents(past.Balance))

	fmt.Fprintln(w, "balances read model:")
	for _, a := range []struct{ name, id string }{{"alice", alice}, {"bob", bob}} {
		raw, ok, err := store.ReadModelGet(ctx, BalancesTable, a.id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no balance row for %s", a.id)
		}
		var row Balance
		if err := json.Unmarshal(raw, &row); err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-6s %-6s %8s\n", a.name, row.Owner, cents(row.Balance))
	}
	return nil
}

func describe(c Command) string {
	switch c := c.(type) {
	case Open:
		return fmt.Sprintf("open for %s", c.Owner)
	case Deposit:
		return "deposit " + cents(c.Amount)
	case Withdraw:
		return "withdraw " + cents(c.Amount)
	}
	return fmt.Sprintf("%T", c)
}
