package links_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
)

// engines opens a fresh store on each engine that keeps the index, and
// skips, saying so, those that do not (yet).
func engines(t *testing.T, test func(t *testing.T, s *cairn.Store)) {
	open := map[string]func(t *testing.T) *cairn.Store{
		"memory": func(t *testing.T) *cairn.Store {
			s := cairn.NewStore(memstore.New(), cairn.Options{})
			t.Cleanup(func() { s.Close() })
			return s
		},
		"disk": func(t *testing.T) *cairn.Store {
			db, err := diskstore.Open(t.TempDir(), diskstore.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			s := cairn.NewStore(db, cairn.Options{})
			t.Cleanup(func() { s.Close() })
			return s
		},
		"postgres": func(t *testing.T) *cairn.Store {
			url := pgtest.URL(t)
			db, err := pgstore.Open(context.Background(), url, pgstore.Options{Schema: pgtest.Schema(t, "links")})
			if err != nil {
				t.Fatal(err)
			}
			s := cairn.NewStore(db, cairn.Options{})
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	for _, name := range []string{"memory", "disk", "postgres"} {
		t.Run(name, func(t *testing.T) {
			s := open[name](t)
			if !links.HasIndex(s) {
				t.Skipf("the %s engine keeps no index yet: its standard projection streams are not served", name)
			}
			test(t, s)
		})
	}
}

func appendOK(t *testing.T, s *cairn.Store, stream string, events ...cairn.EventData) cairn.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, cairn.Any, events...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

func ev(typ string) cairn.EventData { return cairn.EventData{Type: typ, Data: []byte(`{}`)} }

func read(t *testing.T, r *links.Reader, stream string, from int64, count int, dir cairn.Direction, resolve bool) links.Page {
	t.Helper()
	p, err := r.ReadStream(context.Background(), stream, from, count, 0, dir, resolve)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return p
}

// describe renders a page as "number:link data->target stream@version".
func describe(p links.Page) []string {
	var out []string
	for _, e := range p.Events {
		s := fmt.Sprintf("%d:%s", e.Event.Version, e.Event.Data)
		if e.Link {
			if e.Target == nil {
				s += "->none"
			} else {
				s += fmt.Sprintf("->%s@%d", e.Target.StreamID, e.Target.Version)
			}
		}
		out = append(out, s)
	}
	return out
}

func same(t *testing.T, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		data    string
		stream  string
		version int64
		ok      bool
	}{
		{"0@order-1", "order-1", 0, true},
		{"12@a@b", "a@b", 12, true},
		{"-1@order-1", "", 0, false},
		{"+1@order-1", "", 0, false},
		{"x@order-1", "", 0, false},
		{"1@", "", 0, false},
		{"@order", "", 0, false},
		{"order-1", "", 0, false},
		{"99999999999999999999@s", "", 0, false},
	} {
		s, v, ok := links.Parse([]byte(c.data))
		if s != c.stream || v != c.version || ok != c.ok {
			t.Errorf("Parse(%q) = %q, %d, %v; want %q, %d, %v", c.data, s, v, ok, c.stream, c.version, c.ok)
		}
	}
	if got := string(links.Data("order-1", 7)); got != "7@order-1" {
		t.Errorf("Data = %q", got)
	}
}

func TestVirtual(t *testing.T) {
	for stream, want := range map[string]cairn.IndexKey{
		"$ce-order":       {Kind: cairn.IndexCategory, Value: "order"},
		"$et-OrderPlaced": {Kind: cairn.IndexType, Value: "OrderPlaced"},
		"$streams":        {Kind: cairn.IndexStreams},
		"$category-order": {Kind: cairn.IndexCategoryStreams, Value: "order"},
		"$bc-7f3e":        {Kind: cairn.IndexCorrelation, Value: "7f3e"},
		"$ce-a-b":         {Kind: cairn.IndexCategory, Value: "a-b"},
		"$et-$>":          {Kind: cairn.IndexType, Value: "$>"},
	} {
		got, ok := links.Virtual(stream)
		if !ok || got != want {
			t.Errorf("Virtual(%q) = %v, %v; want %v", stream, got, ok, want)
		}
		if links.StreamOf(want) != stream {
			t.Errorf("StreamOf(%v) = %q, want %q", want, links.StreamOf(want), stream)
		}
	}
	for _, stream := range []string{"$ce-", "order-1", "$all", "$$order-1", "$streamsx", "$et-"} {
		if _, ok := links.Virtual(stream); ok {
			t.Errorf("Virtual(%q) is true", stream)
		}
	}
}

func TestCategoryStreamReadsAsLinks(t *testing.T) {
	engines(t, func(t *testing.T, s *cairn.Store) {
		ctx := context.Background()
		appendOK(t, s, "order-1", ev("OrderPlaced"))
		appendOK(t, s, "invoice-1", ev("InvoiceSent"))
		appendOK(t, s, "order-2", ev("OrderPlaced"), ev("OrderShipped"))
		appendOK(t, s, "order-1", ev("OrderShipped"))
		r := links.NewReader(s, links.Options{})

		p := read(t, r, "$ce-order", 0, 10, cairn.Forward, false)
		same(t, describe(p), []string{"0:0@order-1", "1:0@order-2", "2:1@order-2", "3:1@order-1"})
		for i, e := range p.Events {
			if e.Event.Type != links.LinkType || e.Event.StreamID != "$ce-order" || e.Event.ContentType != cairn.ContentBinary {
				t.Errorf("entry %d = %+v, want a binary $> event of $ce-order", i, e.Event)
			}
			if i > 0 && e.Event.Position <= p.Events[i-1].Event.Position {
				t.Errorf("positions do not ascend: %d after %d", e.Event.Position, p.Events[i-1].Event.Position)
			}
		}
		again := read(t, r, "$ce-order", 0, 10, cairn.Forward, false)
		for i := range p.Events {
			if again.Events[i].Event.ID != p.Events[i].Event.ID {
				t.Errorf("entry %d has id %s, then %s: a link's id must not change", i, p.Events[i].Event.ID, again.Events[i].Event.ID)
			}
		}

		resolved := read(t, r, "$ce-order", 0, 10, cairn.Forward, true)
		same(t, describe(resolved), []string{"0:0@order-1->order-1@0", "1:0@order-2->order-2@0", "2:1@order-2->order-2@1", "3:1@order-1->order-1@1"})
		if ev, link := resolved.Events[2].Parts(); ev.Type != "OrderShipped" || link.Version != 2 {
			t.Errorf("Parts = %+v, %+v", ev, link)
		}

		back := read(t, r, "$ce-order", cairn.StreamEnd, 2, cairn.Backward, true)
		same(t, describe(back), []string{"3:1@order-1->order-1@1", "2:1@order-2->order-2@1"})
		if !back.More {
			t.Error("a backward read that stopped at its count says it is at the start")
		}
		if v, err := r.StreamVersion(ctx, "$ce-order"); err != nil || v != 3 {
			t.Errorf("StreamVersion($ce-order) = %d, %v; want 3", v, err)
		}

		same(t, describe(read(t, r, "$et-OrderPlaced", 0, 10, cairn.Forward, false)), []string{"0:0@order-1", "1:0@order-2"})
		same(t, describe(read(t, r, "$streams", 0, 10, cairn.Forward, false)), []string{"0:0@order-1", "1:0@invoice-1", "2:0@order-2"})
		cs := read(t, r, "$category-order", 0, 10, cairn.Forward, true)
		same(t, describe(cs), []string{"0:order-1", "1:order-2"})
		if cs.Events[0].Event.Type != links.StreamReferenceType || cs.Events[0].Link {
			t.Errorf("$category- event = %+v, want a $@ stream reference", cs.Events[0])
		}
		if p := read(t, r, "$ce-order", 4, 10, cairn.Forward, true); len(p.Events) != 0 || p.More {
			t.Errorf("a read past the end = %v", describe(p))
		}
	})
}

func TestStreamWithoutEntriesIsNotFound(t *testing.T) {
	engines(t, func(t *testing.T, s *cairn.Store) {
		ctx := context.Background()
		appendOK(t, s, "order-1", ev("OrderPlaced"))
		r := links.NewReader(s, links.Options{})
		for _, stream := range []string{"$ce-nothing", "$et-Nothing", "$category-nothing", "$bc-nothing", "$ce-a-b", "$et-$>"} {
			if _, err := r.ReadStream(ctx, stream, 0, 10, 0, cairn.Forward, true); !errors.Is(err, cairn.ErrStreamNotFound) {
				t.Errorf("read %s: %v, want stream not found", stream, err)
			}
			if _, err := r.StreamVersion(ctx, stream); !errors.Is(err, cairn.ErrStreamNotFound) {
				t.Errorf("StreamVersion(%s): %v, want stream not found", stream, err)
			}
		}
	})
}

func TestLinkToGoneEventResolvesToTheLinkAlone(t *testing.T) {
	engines(t, func(t *testing.T, s *cairn.Store) {
		ctx := context.Background()
		appendOK(t, s, "order-1", ev("OrderPlaced"), ev("OrderShipped"))
		appendOK(t, s, "order-2", ev("OrderPlaced"), ev("OrderShipped"))
		appendOK(t, s, "order-3", ev("OrderPlaced"))
		if err := s.DeleteStream(ctx, "order-1", cairn.Any); err != nil {
			t.Fatal(err)
		}
		if err := s.TruncateStream(ctx, "order-2", 1); err != nil {
			if errors.Is(err, cairn.ErrNotSupported) {
				t.Skip("no truncation")
			}
			t.Fatal(err)
		}
		hidden := func(ctx context.Context, stream string) (int64, time.Time, error) {
			if stream == "order-3" {
				return 1, time.Time{}, nil // as a $tb of 1 would
			}
			return 0, time.Time{}, nil
		}
		r := links.NewReader(s, links.Options{Visible: hidden})
		same(t, describe(read(t, r, "$ce-order", 0, 10, cairn.Forward, true)), []string{
			"0:0@order-1->none", "1:1@order-1->none", "2:0@order-2->none", "3:1@order-2->order-2@1", "4:0@order-3->none",
		})
		// Without resolving, the links are all there, as KurrentDB keeps them.
		same(t, describe(read(t, r, "$ce-order", 0, 10, cairn.Forward, false)), []string{
			"0:0@order-1", "1:1@order-1", "2:0@order-2", "3:1@order-2", "4:0@order-3",
		})

		// A stream recreated after a delete: the old versions stay gone.
		appendOK(t, s, "order-1", ev("OrderReopened"))
		p := read(t, r, "$ce-order", 0, 10, cairn.Forward, true)
		same(t, describe(p)[:2], []string{"0:0@order-1->none", "1:1@order-1->none"})
		same(t, describe(p)[5:], []string{"5:2@order-1->order-1@2"})
	})
}

func TestApplicationLinks(t *testing.T) {
	engines(t, func(t *testing.T, s *cairn.Store) {
		ctx := context.Background()
		appendOK(t, s, "order-1", ev("OrderPlaced"), ev("OrderShipped"))
		link := func(data string) cairn.EventData {
			return cairn.EventData{Type: links.LinkType, ContentType: cairn.ContentBinary, Data: []byte(data)}
		}
		appendOK(t, s, "vip-orders", link("1@order-1"), link("5@order-1"), link("not a link"), link("0@nowhere"), link("1@$ce-order"))
		r := links.NewReader(s, links.Options{})
		same(t, describe(read(t, r, "vip-orders", 0, 10, cairn.Forward, true)), []string{
			"0:1@order-1->order-1@1", "1:5@order-1->none", "2:not a link", "3:0@nowhere->none", "4:1@$ce-order->$ce-order@1",
		})
		page, err := s.ReadAll(ctx, 0, 100, cairn.Forward)
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Resolve(ctx, page)
		if err != nil {
			t.Fatal(err)
		}
		if e, l := res[2].Parts(); l == nil || e == nil || e.Type != "OrderShipped" {
			t.Errorf("$all read: the first link resolves to %+v, %+v", e, l)
		}

		// $ce-vip has the application's links; KurrentDB's $by_category
		// links to what a link names, and so does cairn.
		same(t, describe(read(t, r, "$ce-vip", 0, 2, cairn.Forward, true)), []string{"0:1@order-1->order-1@1", "1:5@order-1->none"})
		// KurrentDB files no link under $et-$>.
		if _, err := r.ReadStream(ctx, "$et-$>", 0, 10, 0, cairn.Forward, false); !errors.Is(err, cairn.ErrStreamNotFound) {
			t.Errorf("read $et-$>: %v, want not found", err)
		}
	})
}

func TestCorrelationStream(t *testing.T) {
	engines(t, func(t *testing.T, s *cairn.Store) {
		meta := func(id string) cairn.EventData {
			return cairn.EventData{Type: "Step", Data: []byte(`{}`), Metadata: []byte(`{"$correlationId":"` + id + `"}`)}
		}
		appendOK(t, s, "saga-1", meta("c1"), meta("c2"))
		appendOK(t, s, "saga-2", meta("c1"))
		r := links.NewReader(s, links.Options{})
		same(t, describe(read(t, r, "$bc-c1", 0, 10, cairn.Forward, true)), []string{"0:0@saga-1->saga-1@0", "1:0@saga-2->saga-2@0"})
	})
}

func TestSizedRead(t *testing.T) {
	engines(t, func(t *testing.T, s *cairn.Store) {
		big := cairn.EventData{Type: "Big", Data: make([]byte, 1000)}
		for i := range 5 {
			appendOK(t, s, fmt.Sprintf("big-%d", i), big)
		}
		r := links.NewReader(s, links.Options{})
		p, err := r.ReadStream(context.Background(), "$ce-big", 0, 10, 2500, cairn.Forward, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) != 3 || !p.More {
			t.Errorf("a read of 2500 bytes of 1000-byte events returned %d events, more=%v; want 3, true", len(p.Events), p.More)
		}
	})
}

// A link to an event of a stream the reader may not read resolves to the
// link alone, as a link to a gone event does; the stream is asked once per
// read, whatever the number of links to it.
func TestLinkToUnreadableStreamResolvesToTheLinkAlone(t *testing.T) {
	engines(t, func(t *testing.T, s *cairn.Store) {
		appendOK(t, s, "order-1", ev("OrderPlaced"), ev("OrderShipped"))
		appendOK(t, s, "secret-1", ev("OrderPlaced"))
		link := func(data string) cairn.EventData {
			return cairn.EventData{Type: links.LinkType, ContentType: cairn.ContentBinary, Data: []byte(data)}
		}
		appendOK(t, s, "vip-orders", link("0@order-1"), link("0@secret-1"), link("1@order-1"), link("0@$ce-secret"), link("0@$ce-order"))
		asked := map[string]int{}
		r := links.NewReader(s, links.Options{Readable: func(_ context.Context, stream string) (bool, error) {
			asked[stream]++
			return stream != "secret-1" && stream != "$ce-secret", nil
		}})
		same(t, describe(read(t, r, "vip-orders", 0, 10, cairn.Forward, true)), []string{
			"0:0@order-1->order-1@0", "1:0@secret-1->none", "2:1@order-1->order-1@1", "3:0@$ce-secret->none", "4:0@$ce-order->$ce-order@0",
		})
		for stream, n := range asked {
			if n != 1 {
				t.Errorf("Readable asked about %s %d times in one read, want once", stream, n)
			}
		}
		// The category streams' links, resolved.
		same(t, describe(read(t, r, "$ce-secret", 0, 10, cairn.Forward, true)), []string{"0:0@secret-1->none"})
		same(t, describe(read(t, r, "$ce-order", 0, 10, cairn.Forward, true)), []string{"0:0@order-1->order-1@0", "1:1@order-1->order-1@1"})
		// Unresolved, every link is there.
		same(t, describe(read(t, r, "$ce-secret", 0, 10, cairn.Forward, false)), []string{"0:0@secret-1"})
		// Resolve, for events read from the log.
		events, err := s.ReadStream(context.Background(), "vip-orders", 0, 10, cairn.Forward)
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Resolve(context.Background(), events)
		if err != nil {
			t.Fatal(err)
		}
		if res[1].Target != nil || res[0].Target == nil {
			t.Errorf("Resolve: link to secret-1 resolved to %v, link to order-1 to %v", res[1].Target, res[0].Target)
		}
	})
}
