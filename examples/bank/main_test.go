package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/cairndb/cairn/memstore"
)

func Example() {
	store := memstore.Open()
	defer store.Close()
	if err := run(context.Background(), os.Stdout, store, ""); err != nil {
		panic(err)
	}
	// Output:
	// alice  open for Alice           balance    $0.00 (version 0)
	// bob    open for Bob             balance    $0.00 (version 0)
	// alice  deposit $120.00          balance  $120.00 (version 1)
	// bob    deposit $30.00           balance   $30.00 (version 1)
	// alice  withdraw $150.00         balance  -$30.00 (version 2)
	// alice  withdraw $25.00          refused: withdraw $25.00 from a balance of -$30.00 with an overdraft of $50.00: overdraft limit exceeded
	// bob    withdraw $30.00          balance    $0.00 (version 2)
	// bob    open for Robert          refused: the account is already open
	// carol  deposit $0.01            refused: the account is not open
	// alice's balance as of version 1: $120.00
	// balances read model:
	//   alice  Alice   -$30.00
	//   bob    Bob       $0.00
}

// Concurrent withdrawals never take an account past its overdraft, and the
// read model agrees with the account.
func TestOverdraftUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	accounts, err := NewAccounts(store)
	if err != nil {
		t.Fatal(err)
	}
	defer accounts.Close()
	for _, c := range []Command{Open{Owner: "Dana", Overdraft: 50_00}, Deposit{Amount: 50_00}} {
		if _, err := accounts.Handle(ctx, "dana", c); err != nil {
			t.Fatal(err)
		}
	}
	const workers = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	paid, refused := 0, 0
	for range workers {
		wg.Go(func() {
			_, err := accounts.Handle(ctx, "dana", Withdraw{Amount: 10_00})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				paid++
			case errors.Is(err, ErrOverdraftExceeded):
				refused++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if paid != 10 || refused != workers-10 {
		t.Errorf("%d withdrawals paid and %d refused, want 10 and %d", paid, refused, workers-10)
	}
	acct, version, err := accounts.Fetch(ctx, "dana")
	if err != nil || acct.Balance != -50_00 || version != 11 {
		t.Fatalf("account %+v at version %d, %v; want -$50.00 at version 11", acct, version, err)
	}
	raw, ok, err := store.ReadModelGet(ctx, BalancesTable, "dana")
	if err != nil || !ok {
		t.Fatalf("balance row: %v, %v", ok, err)
	}
	var row Balance
	if err := json.Unmarshal(raw, &row); err != nil {
		t.Fatal(err)
	}
	if row != (Balance{Owner: "Dana", Balance: -50_00, Version: 11}) {
		t.Errorf("balance row %+v", row)
	}
}

func TestDecideRejectsBadCommands(t *testing.T) {
	open := Account{Open: true, Owner: "Eve", Balance: 10}
	for name, tc := range map[string]struct {
		state Account
		cmd   Command
	}{
		"empty owner":       {Account{}, Open{Owner: " "}},
		"negative limit":    {Account{}, Open{Owner: "Eve", Overdraft: -1}},
		"zero deposit":      {open, Deposit{}},
		"negative withdraw": {open, Withdraw{Amount: -5}},
		"deposit closed":    {Account{}, Deposit{Amount: 5}},
		"overdraft":         {open, Withdraw{Amount: 11}},
	} {
		if events, err := Decide(tc.state, tc.cmd); err == nil {
			t.Errorf("%s: accepted with %v", name, events)
		}
	}
}
