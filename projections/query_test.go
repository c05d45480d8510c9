package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/projections"
)

func create(t testing.TB, m *projections.Manager, name, query string, opts projections.CreateOptions) {
	t.Helper()
	if _, err := m.Create(context.Background(), name, query, opts); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

func TestForeachStreamKeepsAStatePerStream(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	appendJSON(t, store, "order-1", "Placed", `{"amount":10}`, `{"amount":5}`)
	appendJSON(t, store, "order-2", "Placed", `{"amount":7}`)
	create(t, m, "totals", `
		fromCategory('order')
		.foreachStream()
		.when({
			$init: function () { return { total: 0, n: 0 }; },
			Placed: function (s, e) { s.total += e.body.amount; s.n++; }
		})
		.transformBy(function (s) { return { average: s.total / s.n }; })`, projections.CreateOptions{})
	waitState(t, m, "totals", "order-1", `{"total":15,"n":2}`)
	waitState(t, m, "totals", "order-2", `{"total":7,"n":1}`)
	res, err := m.Result(context.Background(), "totals", "order-1")
	if err != nil || string(res) != `{"average":7.5}` {
		t.Fatalf("result of order-1: %s, %v", res, err)
	}
	// The transform worked on a copy: the state is unchanged.
	waitState(t, m, "totals", "order-1", `{"total":15,"n":2}`)
	// Each partition's result is written to its result stream at the
	// checkpoint.
	eventually(t, "result stream of order-2", func() (bool, string) {
		evs := readStream(t, store, "$projections-totals-order-2-result")
		if len(evs) == 0 {
			return false, "none"
		}
		last := evs[len(evs)-1]
		return last.Type == "Result" && string(last.Data) == `{"average":7}`, string(last.Data)
	})
	eventually(t, "partition catalog", func() (bool, string) {
		evs := readStream(t, store, "$projections-totals-partitions")
		return len(evs) == 2 && string(evs[0].Data) == "order-1" && string(evs[1].Data) == "order-2", ""
	})
}

func TestPartitionByUsesWhatTheFunctionReturns(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	appendJSON(t, store, "sale-1", "Sold", `{"region":"north","qty":2}`, `{"region":"south","qty":1}`)
	appendJSON(t, store, "sale-2", "Sold", `{"region":"north","qty":3}`, `{"qty":100}`)
	create(t, m, "regions", `
		fromAll()
		.partitionBy(function (e) { return e.body.region; })
		.when({
			$init: function () { return { qty: 0 }; },
			$created: function (s, e) { s.createdBy = e.sequenceNumber + '@' + e.streamId; },
			Sold: function (s, e) { s.qty += e.body.qty; }
		})`, projections.CreateOptions{})
	waitState(t, m, "regions", "north", `{"qty":5,"createdBy":"0@sale-1"}`)
	waitState(t, m, "regions", "south", `{"qty":1,"createdBy":"1@sale-1"}`)
	// The event without a region went to no partition.
	waitState(t, m, "regions", "undefined", `null`)
}

func TestBiStateHandlersGetTheSharedState(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	appendJSON(t, store, "user-1", "Visited", `{}`, `{}`)
	appendJSON(t, store, "user-2", "Visited", `{}`)
	create(t, m, "visits", `
		fromCategory('user')
		.foreachStream()
		.when({
			$init: function () { return { mine: 0 }; },
			$initShared: function () { return { all: 0 }; },
			Visited: function (s, e) { s[0].mine++; s[1].all++; return s; }
		})`, projections.CreateOptions{})
	waitState(t, m, "visits", "user-1", `{"mine":2}`)
	waitState(t, m, "visits", "user-2", `{"mine":1}`)
	waitState(t, m, "visits", "", `{"all":3}`)
}

func TestSelectors(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	appendJSON(t, store, "a-1", "T", `{}`)
	appendJSON(t, store, "b-1", "T", `{}`, `{}`)
	appendJSON(t, store, "a", "T", `{}`) // no category: not in fromCategory('a')
	appendJSON(t, store, "c-1", "U", `{}`)
	count := `.when({ $init: function () { return { n: 0 }; }, $any: function (s) { s.n++; } })`
	for name, sel := range map[string]string{
		"stream":   `fromStream('b-1')`,
		"streams":  `fromStreams(['a-1', 'b-1'])`,
		"streams2": `fromStreams('a-1', 'c-1')`,
		"category": `fromCategory('a')`,
		"cats":     `fromCategories(['a', 'b'])`,
		"all":      `fromAll()`,
		"ce":       `fromStream('$ce-b')`,
		"et":       `fromStreams(['$et-U', 'a'])`,
	} {
		create(t, m, name, sel+count, projections.CreateOptions{})
	}
	for name, want := range map[string]string{
		"stream": `{"n":2}`, "streams": `{"n":3}`, "streams2": `{"n":2}`, "category": `{"n":1}`,
		"cats": `{"n":3}`, "all": `{"n":5}`, "ce": `{"n":2}`, "et": `{"n":2}`,
	} {
		waitState(t, m, name, "", want)
	}
}

func TestHandlersSeeTheEventAsKurrentDBDescribesIt(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	if _, err := store.Append(context.Background(), "shop-7", cairn.Any,
		cairn.EventData{Type: "Opened", Data: []byte(`{"x":1}`), Metadata: []byte(`{"by":"ann"}`)},
		cairn.EventData{Type: "Blob", ContentType: cairn.ContentBinary, Data: []byte("raw bytes")},
		cairn.EventData{Type: "Opened", Data: []byte(`not json`)},
		cairn.EventData{Type: "Opened", Data: []byte(`  `)},
	); err != nil {
		t.Fatal(err)
	}
	create(t, m, "seen", `
		fromCategory('shop')
		.when({
			$init: function () { return { events: [] }; },
			$any: function (s, e) {
				s.events.push({
					streamId: e.streamId, sequenceNumber: e.sequenceNumber, eventType: e.eventType,
					body: e.body, data: e.data, bodyRaw: e.bodyRaw, isJson: e.isJson,
					metadata: e.metadata, metadataRaw: e.metadataRaw, partition: e.partition,
					category: e.category, idLength: e.eventId.length, linkMetadata: e.linkMetadata
				});
			}
		})`, projections.CreateOptions{})
	waitState(t, m, "seen", "", `{"events":[
		{"streamId":"shop-7","sequenceNumber":0,"eventType":"Opened","body":{"x":1},"data":{"x":1},
		 "bodyRaw":"{\"x\":1}","isJson":true,"metadata":{"by":"ann"},"metadataRaw":"{\"by\":\"ann\"}",
		 "partition":"","category":"shop","idLength":36},
		{"streamId":"shop-7","sequenceNumber":1,"eventType":"Blob","bodyRaw":"raw bytes","isJson":false,
		 "metadataRaw":"","partition":"","category":"shop","idLength":36}
	]}`)
}

func TestHandlerReturnValueReplacesTheState(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	appendJSON(t, store, "x-1", "A", `{"v":1}`, `{"v":2}`)
	appendJSON(t, store, "x-1", "B", `{"v":3}`)
	create(t, m, "last", `
		fromStream('x-1').when({
			A: function (s, e) { return { last: e.body.v }; },
			B: function (s, e) { return 'a string'; }
		})`, projections.CreateOptions{})
	waitState(t, m, "last", "", `"a string"`)
}

func TestEmitAndLinkTo(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	appendJSON(t, store, "order-1", "OrderPlaced", `{"id":1,"total":10}`)
	appendJSON(t, store, "order-2", "OrderPlaced", `{"id":2,"total":99}`)
	create(t, m, "router", `
		fromCategory('order').when({
			OrderPlaced: function (s, e) {
				if (e.body.total > 50) {
					emit('big-orders', 'BigOrder', { id: e.body.id }, { source: e.streamId });
				}
				linkTo('all-orders', e);
				linkStreamTo('order-streams', e.streamId);
				copyTo('nowhere', e);
			}
		})`, projections.CreateOptions{Emit: true, TrackEmittedStreams: true})
	eventually(t, "emitted events", func() (bool, string) {
		return len(readStream(t, store, "all-orders")) == 2, ""
	})
	big := readStream(t, store, "big-orders")
	if len(big) != 1 || big[0].Type != "BigOrder" || string(big[0].Data) != `{"id":2}` || big[0].ContentType != cairn.ContentJSON {
		t.Fatalf("big-orders: %+v", big)
	}
	var meta map[string]any
	if err := json.Unmarshal(big[0].Metadata, &meta); err != nil || meta["source"] != "order-2" || meta["$causedBy"] == nil {
		t.Fatalf("metadata %s: %v", big[0].Metadata, err)
	}
	links := readStream(t, store, "all-orders")
	for i, l := range links {
		want := []string{"0@order-1", "0@order-2"}[i]
		if l.Type != "$>" || string(l.Data) != want || l.ContentType != cairn.ContentBinary {
			t.Fatalf("link %d: %s %q", i, l.Type, l.Data)
		}
	}
	refs := readStream(t, store, "order-streams")
	if len(refs) != 2 || refs[0].Type != "$@" || string(refs[1].Data) != "order-2" {
		t.Fatalf("stream references: %+v", refs)
	}
	if evs := readStream(t, store, "nowhere"); len(evs) != 0 {
		t.Fatalf("copyTo wrote %d events; KurrentDB's copyTo does nothing", len(evs))
	}
	tracked := readStream(t, store, "$projections-router-emittedstreams")
	var names []string
	for _, e := range tracked {
		names = append(names, string(e.Data))
	}
	if strings.Join(names, ",") != "big-orders,all-orders,order-streams" && strings.Join(names, ",") != "all-orders,order-streams,big-orders" {
		t.Fatalf("tracked streams: %v", names)
	}
}

func TestEmitWithoutEmitEnabledFaults(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	appendJSON(t, store, "order-1", "OrderPlaced", `{}`)
	create(t, m, "sneaky", `
		fromAll().when({ $any: function (s, e) {
			try { emit('out', 'X', {}); } catch (err) { /* swallowed */ }
		} })`, projections.CreateOptions{})
	st := waitStatus(t, m, "sneaky", "Faulted (Enabled)")
	if !strings.Contains(st.StateReason, "'emit' is not allowed by the projection/configuration/mode") {
		t.Fatalf("state reason: %q", st.StateReason)
	}
	if evs := readStream(t, store, "out"); len(evs) != 0 {
		t.Fatalf("emitted %d events", len(evs))
	}
}

func TestAThrowingHandlerFaultsItsProjectionOnly(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	create(t, m, "thrower", `
		fromAll().when({ Bad: function (s, e) { throw new Error('boom: ' + e.body.why); } })`, projections.CreateOptions{})
	create(t, m, "count", countQuery, projections.CreateOptions{})
	appendJSON(t, store, "x-1", "Good", `{}`)
	appendJSON(t, store, "x-1", "Bad", `{"why":"bad data"}`)
	appendJSON(t, store, "x-1", "Good", `{}`)
	st := waitStatus(t, m, "thrower", "Faulted (Enabled)")
	if !strings.Contains(st.StateReason, "Error: boom: bad data") || !strings.Contains(st.StateReason, `handler "Bad"`) {
		t.Fatalf("state reason: %q", st.StateReason)
	}
	waitState(t, m, "count", "", `{"count":3}`)
	appendJSON(t, store, "x-1", "Good", `{}`)
	waitState(t, m, "count", "", `{"count":4}`)
}

func TestCreateRefusesBadQueries(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	for _, tc := range []struct{ name, query, want string }{
		{"syntax", `fromAll().when({`, "SyntaxError"},
		{"nothing", `var x = 1;`, "selects no events"},
		{"option", `options({ noSuchOption: true }); fromAll();`, "Unrecognized option: noSuchOption"},
		{"throws", `throw new Error('at definition');`, "at definition"},
		{"twice", `fromAll(); fromStream('x');`, "already selects"},
		{"chain", `fromAll().when({}).foreachStream()`, "no member 'foreachStream'"},
	} {
		_, err := m.Create(context.Background(), tc.name, tc.query, projections.CreateOptions{})
		if !errors.Is(err, cairn.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an invalid argument mentioning %q", tc.name, err, tc.want)
		}
	}
	if got := m.List(context.Background()); len(got) != 0 {
		t.Fatalf("refused queries were stored: %+v", got)
	}
	_, err := m.Create(context.Background(), "track", countQuery, projections.CreateOptions{TrackEmittedStreams: true})
	if !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Fatalf("tracking without emit: %v", err)
	}
	_, err = m.Create(context.Background(), "$mine", countQuery, projections.CreateOptions{})
	if !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Fatalf("a name starting with $: %v", err)
	}
}

func TestOptionsAreAccepted(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	appendJSON(t, store, "account-1", "myEventType", `{}`, `{}`)
	create(t, m, "demo", `
		options({
			resultStreamName: "my_demo_projection_result",
			$includeLinks: false,
			reorderEvents: false,
			processingLag: 0
		})
		fromStream('account-1')
		.when({
			$init: function () { return { count: 0 }; },
			myEventType: function (state, event) { state.count += 1; }
		})
		.transformBy(function (state) { return { Total: state.count }; })
		.outputState()`, projections.CreateOptions{})
	eventually(t, "result stream", func() (bool, string) {
		evs := readStream(t, store, "my_demo_projection_result")
		if len(evs) == 0 {
			return false, "none"
		}
		return string(evs[len(evs)-1].Data) == `{"Total":2}`, string(evs[len(evs)-1].Data)
	})
}

func TestFilterByMakesNoResult(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	appendJSON(t, store, "x-1", "A", `{}`)
	create(t, m, "filtered", `
		fromAll().when({ $init: function () { return { n: 0 }; }, $any: function (s) { s.n++; } })
		.filterBy(function (s) { return s.n > 1; })`, projections.CreateOptions{})
	waitState(t, m, "filtered", "", `{"n":1}`)
	if res, err := m.Result(context.Background(), "filtered", ""); err != nil || res != nil {
		t.Fatalf("result: %s, %v", res, err)
	}
	appendJSON(t, store, "x-1", "A", `{}`)
	waitState(t, m, "filtered", "", `{"n":2}`)
	if res, err := m.Result(context.Background(), "filtered", ""); err != nil || string(res) != `{"n":2}` {
		t.Fatalf("result: %s, %v", res, err)
	}
}

func TestFromAllSkipsSystemStreams(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	create(t, m, "all", `fromAll().when({ $init: function () { return { streams: {} }; }, $any: function (s, e) { s.streams[e.streamId] = true; } })`, projections.CreateOptions{})
	if _, err := store.System().Append(context.Background(), "$system", cairn.Any, cairn.EventData{Type: "X", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.System().Append(context.Background(), "$$user-1", cairn.Any, cairn.EventData{Type: "$metadata", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	appendJSON(t, store, "user-1", "X", `{}`)
	waitState(t, m, "all", "", `{"streams":{"$$user-1":true,"user-1":true}}`)
}

func TestFromStreamResolvesLinksAndIncludeLinksPassesThem(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	ctx := context.Background()
	appendJSON(t, store, "order-1", "Placed", `{"n":1}`, `{"n":2}`)
	if _, err := store.Append(ctx, "refs", cairn.Any,
		cairn.EventData{Type: "$>", ContentType: cairn.ContentBinary, Data: []byte("1@order-1"), Metadata: []byte(`{"why":"second"}`)},
		cairn.EventData{Type: "$>", ContentType: cairn.ContentBinary, Data: []byte("7@order-1")}, // no such event
		cairn.EventData{Type: "$>", ContentType: cairn.ContentBinary, Data: []byte("0@order-1")},
	); err != nil {
		t.Fatal(err)
	}
	create(t, m, "resolved", `fromStream('refs').when({
		$init: function () { return { seen: [] }; },
		$any: function (s, e) { s.seen.push([e.streamId, e.sequenceNumber, e.body.n, e.linkMetadata]); }
	})`, projections.CreateOptions{})
	waitState(t, m, "resolved", "", `{"seen":[["order-1",1,2,{"why":"second"}],["order-1",0,1,null]]}`)
	create(t, m, "links", `options({ $includeLinks: true }); fromAll().when({
		$init: function () { return { links: 0, others: 0 }; },
		$any: function (s, e) { if (e.eventType === '$>') s.links++; else s.others++; }
	})`, projections.CreateOptions{})
	waitState(t, m, "links", "", `{"links":3,"others":2}`)
}
