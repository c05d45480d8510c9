package main

import (
	"context"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
)

func TestReadCategoryAndType(t *testing.T) {
	c := newCLI(t)
	if !links.HasIndex(cairn.NewStore(keepOpen{c.b}, cairn.Options{})) {
		t.Skip("the memory engine keeps no index yet")
	}
	c.must("", "append", "order-1", "OrderPlaced", `{"n":0}`)
	c.must("", "append", "invoice-1", "InvoiceSent", `{}`)
	c.must("", "append", "order-2", "OrderPlaced", `{"n":1}`)
	c.must("", "append", "order-1", "OrderShipped", `{"n":2}`)

	got := decodeLines(t, c.must("", "read", "--category", "order"))
	if len(got) != 3 || got[0].Stream != "order-1" || got[1].Stream != "order-2" || got[2].Type != "OrderShipped" || string(got[2].Data) != `{"n":2}` {
		t.Fatalf("read --category order = %+v", got)
	}
	if got := decodeLines(t, c.must("", "read", "--category", "order", "--from", "1", "--count", "1")); len(got) != 1 || got[0].Stream != "order-2" {
		t.Fatalf("read --category order --from 1 --count 1 = %+v", got)
	}
	if got := decodeLines(t, c.must("", "read", "--type", "OrderPlaced", "--backward")); len(got) != 2 || got[0].Stream != "order-2" || got[1].Stream != "order-1" {
		t.Fatalf("read --type OrderPlaced --backward = %+v", got)
	}
	if out := c.must("", "read", "--category", "nothing"); out != "" {
		t.Fatalf("read --category nothing = %q, want nothing", out)
	}
	for _, args := range [][]string{
		{"read", "--category", "order", "--type", "X"},
		{"read", "order-1", "--category", "order"},
		{"read", "--category", "a-b"},
		{"tail", "--category", "order", "--type", "X"},
	} {
		if _, err := c.run("", args...); err == nil {
			t.Errorf("cairn %s: no error", strings.Join(args, " "))
		}
	}
}

func TestTailCategory(t *testing.T) {
	c := newCLI(t)
	shared := cairn.NewStore(keepOpen{c.b}, cairn.Options{})
	if !links.HasIndex(shared) {
		t.Skip("the memory engine keeps no index yet")
	}
	c.must("", "append", "order-1", "OrderPlaced", "{}")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := &globals{openStore: func(context.Context, string, openMode) (*cairn.Store, error) { return shared, nil }}
	cmd := newRootCmdWith(g)
	out := &syncBuffer{}
	cmd.SetOut(out)
	cmd.SetArgs([]string{"tail", "--category", "order", "--from", "0", "--count", "3"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	for _, stream := range []string{"shop-1", "order-2", "order-1"} {
		if _, err := shared.Append(ctx, stream, cairn.Any, cairn.EventData{Type: "E", Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("tail: %v", err)
	}
	got := decodeLines(t, out.String())
	if len(got) != 3 || got[0].Stream != "order-1" || got[1].Stream != "order-2" || got[2].Stream != "order-1" || got[2].Version != 1 {
		t.Fatalf("tail --category order printed %+v", got)
	}
}
