package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/aggregate"
)

// Account is the state of a bank account. Amounts are in cents.
type Account struct {
	Open      bool
	Owner     string
	Balance   int64
	Overdraft int64 // how far below zero the balance may go
}

// Command is a request to change an account: [Open], [Deposit] or
// [Withdraw].
type Command interface{ isCommand() }

// Open opens an account for Owner, with an overdraft limit.
type Open struct {
	Owner     string
	Overdraft int64
}

// Deposit puts Amount on the account.
type Deposit struct{ Amount int64 }

// Withdraw takes Amount from the account, within its overdraft.
type Withdraw struct{ Amount int64 }

func (Open) isCommand()     {}
func (Deposit) isCommand()  {}
func (Withdraw) isCommand() {}

// Event records a change of an account: [Opened], [Deposited] or
// [Withdrawn].
type Event interface{ isEvent() }

// Opened records the opening of an account.
type Opened struct {
	Owner     string `json:"owner"`
	Overdraft int64  `json:"overdraft"`
}

// Deposited records a deposit.
type Deposited struct {
	Amount int64 `json:"amount"`
}

// Withdrawn records a withdrawal.
type Withdrawn struct {
	Amount int64 `json:"amount"`
}

func (Opened) isEvent()    {}
func (Deposited) isEvent() {}
func (Withdrawn) isEvent() {}

// The domain errors.
var (
	ErrAlreadyOpen       = errors.New("the account is already open")
	ErrNotOpen           = errors.New("the account is not open")
	ErrOverdraftExceeded = errors.New("overdraft limit exceeded")
)

// Decide is the account's business logic: the events a command records, or
// the reason it is refused.
func Decide(a Account, c Command) ([]Event, error) {
	switch c := c.(type) {
	case Open:
		switch {
		case a.Open:
			return nil, ErrAlreadyOpen
		case strings.TrimSpace(c.Owner) == "":
			return nil, errors.New("open: the owner must not be empty")
		case c.Overdraft < 0:
			return nil, fmt.Errorf("open: the overdraft limit %s is negative", cents(c.Overdraft))
		}
		return []Event{Opened{Owner: c.Owner, Overdraft: c.Overdraft}}, nil
	case Deposit:
		switch {
		case !a.Open:
			return nil, ErrNotOpen
		case c.Amount <= 0:
			return nil, fmt.Errorf("deposit: the amount %s is not positive", cents(c.Amount))
		}
		return []Event{Deposited{Amount: c.Amount}}, nil
	case Withdraw:
		switch {
		case !a.Open:
			return nil, ErrNotOpen
		case c.Amount <= 0:
			return nil, fmt.Errorf("withdraw: the amount %s is not positive", cents(c.Amount))
		case a.Balance-c.Amount < -a.Overdraft:
			return nil, fmt.Errorf("withdraw %s from a balance of %s with an overdraft of %s: %w",
				cents(c.Amount), cents(a.Balance), cents(a.Overdraft), ErrOverdraftExceeded)
		}
		return []Event{Withdrawn{Amount: c.Amount}}, nil
	}
	return nil, fmt.Errorf("unknown command %T", c)
}

// Evolve applies an event to the account.
func Evolve(a Account, e Event) Account {
	switch e := e.(type) {
	case Opened:
		a.Open, a.Owner, a.Overdraft = true, e.Owner, e.Overdraft
	case Deposited:
		a.Balance += e.Amount
	case Withdrawn:
		a.Balance -= e.Amount
	}
	return a
}

// NewCodec returns the codec of account events, under their stored names.
func NewCodec() *aggregate.Codec[Event] {
	c := aggregate.NewCodec[Event](nil)
	aggregate.MustRegister[Opened](c, "AccountOpened")
	aggregate.MustRegister[Deposited](c, "MoneyDeposited")
	aggregate.MustRegister[Withdrawn](c, "MoneyWithdrawn")
	return c
}

// BalancesTable is the read model the balance projection maintains: one row
// per account id.
const BalancesTable = "bank_balances"

// Balance is a row of [BalancesTable].
type Balance struct {
	Owner   string `json:"owner"`
	Balance int64  `json:"balance"`
	Version int64  `json:"version"` // of the last event projected
}

// category is the accounts' stream category: account 42 is stream
// "account-42".
const category = "account"

// BalanceProjection keeps [BalancesTable] up to date, in the same
// transaction as the account's events.
func BalanceProjection(codec *aggregate.Codec[Event]) cairn.Projection {
	return codec.Projection(func(ctx context.Context, tx cairn.Tx, e Event, rec cairn.Event) error {
		id := strings.TrimPrefix(rec.StreamID, category+"-")
		var row Balance
		old, ok, err := tx.Get(ctx, BalancesTable, id)
		if err != nil {
			return err
		}
		if ok {
			if err := json.Unmarshal(old, &row); err != nil {
				return fmt.Errorf("balance of %s: %w", id, err)
			}
		}
		switch e := e.(type) {
		case Opened:
			row.Owner = e.Owner
		case Deposited:
			row.Balance += e.Amount
		case Withdrawn:
			row.Balance -= e.Amount
		}
		row.Version = rec.Version
		b, err := json.Marshal(row)
		if err != nil {
			return err
		}
		return tx.Put(ctx, BalancesTable, id, b)
	})
}

// Accounts is the repository of accounts.
type Accounts = aggregate.Repository[Account, Command, Event]

// NewAccounts returns the repository of accounts in store, with the
// balance projection and a snapshot every 100 events.
func NewAccounts(store *cairn.Store) (*Accounts, error) {
	codec := NewCodec()
	return aggregate.New(store, aggregate.Definition[Account, Command, Event]{
		Category:    category,
		Decide:      Decide,
		Evolve:      Evolve,
		Codec:       codec,
		Projections: []cairn.Projection{BalanceProjection(codec)},
	}, aggregate.Options{SnapshotEvery: 100})
}

// cents formats an amount in cents as dollars.
func cents(n int64) string {
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	return fmt.Sprintf("%s$%d.%02d", sign, n/100, n%100)
}
