package subscription_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/subscription"
)

// deadline bounds a test that would otherwise hang on a bug; it is a guard,
// not a timing assertion.
func deadline(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ev(typ string, tags ...string) cairn.EventData {
	return cairn.EventData{Type: typ, Data: []byte(`{}`), Tags: tags}
}

func mustAppend(t testing.TB, s *cairn.Store, stream string, events ...cairn.EventData) cairn.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, cairn.Any, events...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

// nextEvent returns the next event message, skipping status messages.
func nextEvent(t testing.TB, ctx context.Context, sub *subscription.Subscription) subscription.Message {
	t.Helper()
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		if m.Kind == subscription.KindEvent {
			return m
		}
	}
}

func TestExactlyOnceInOrderUnderConcurrentWriters(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) { testExactlyOnce(t, eng) })
	}
}

func testExactlyOnce(t *testing.T, eng engine) {
	ctx := deadline(t)
	store := eng.open(t).store
	const (
		writers = 8
		appends = 60
		streams = 4 // per writer
	)
	// Some history before anyone subscribes.
	for i := range 50 {
		mustAppend(t, store, fmt.Sprintf("pre-%d", i%3), ev("Pre"))
	}
	type seen struct {
		all []cairn.Event
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		total  = 50 + writers*appends*2 // each append writes two events
		result []seen
		errs   = make(chan error, 16)
	)
	subscribe := func(from subscription.From, want int) {
		sub, err := subscription.All(ctx, store, from, subscription.Options{BufferSize: 7})
		if err != nil {
			errs <- err // may run on a writer's goroutine
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sub.Close()
			var s seen
			for len(s.all) < want {
				m, err := sub.Next(ctx)
				if err != nil {
					errs <- err
					return
				}
				if m.Kind == subscription.KindEvent {
					s.all = append(s.all, m.Event)
				}
			}
			mu.Lock()
			result = append(result, s)
			mu.Unlock()
		}()
	}
	subscribe(subscription.Start, total)
	subscribe(subscription.At(10), total-10)

	// Stream subscriptions, one of them on a stream that does not exist yet.
	type streamSeen struct {
		stream   string
		versions []int64
	}
	var streamResults []streamSeen
	subscribeStream := func(stream string, want int) {
		sub, err := subscription.Stream(ctx, store, stream, subscription.Start, subscription.Options{BufferSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sub.Close()
			r := streamSeen{stream: stream}
			for len(r.versions) < want {
				m, err := sub.Next(ctx)
				if err != nil {
					errs <- err
					return
				}
				if m.Kind == subscription.KindEvent {
					if m.Event.StreamID != stream {
						errs <- fmt.Errorf("subscription to %s delivered an event of %s", stream, m.Event.StreamID)
						return
					}
					r.versions = append(r.versions, m.Event.Version)
				}
			}
			mu.Lock()
			streamResults = append(streamResults, r)
			mu.Unlock()
		}()
	}
	subscribeStream("w0-s0", appends*2/streams)
	subscribeStream("w3-s1", appends*2/streams)

	// A filtered subscriber: the events of one writer, in order, with
	// checkpoints that only move forward.
	filtered, err := subscription.All(ctx, store, subscription.Start, subscription.Options{
		BufferSize:      5,
		CheckpointEvery: 3,
		Filter:          subscription.Filter{StreamPrefixes: []string{"w1-"}, EventTypes: []string{"B"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last uint64
		checkpoints := 0
		for n := 0; n < appends; {
			m, err := filtered.Next(ctx)
			if err != nil {
				errs <- err
				return
			}
			if m.Kind != subscription.KindEvent && m.Kind != subscription.KindCheckpoint {
				continue
			}
			if m.Position < last {
				errs <- fmt.Errorf("filtered: %v at position %d after %d", m.Kind, m.Position, last)
				return
			}
			last = m.Position
			if m.Kind == subscription.KindCheckpoint {
				checkpoints++
				continue
			}
			if e := m.Event; !strings.HasPrefix(e.StreamID, "w1-") || e.Type != "B" {
				errs <- fmt.Errorf("filtered: delivered %s of %s", e.Type, e.StreamID)
				return
			}
			n++
		}
		if checkpoints == 0 {
			errs <- errors.New("filtered: no checkpoint")
		}
	}()

	var writersWG sync.WaitGroup
	for w := range writers {
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			for i := range appends {
				stream := fmt.Sprintf("w%d-s%d", w, i%streams)
				if _, err := store.Append(ctx, stream, cairn.Any, ev("A"), ev("B")); err != nil {
					errs <- err
					return
				}
				if w == 0 && i == appends/2 {
					// A subscriber that starts while writers are running.
					subscribe(subscription.Start, total)
				}
			}
		}()
	}
	writersWG.Wait()
	// A subscriber that starts after the writers finished.
	subscribe(subscription.Start, total)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	if len(result) != 4 {
		t.Fatalf("%d $all subscribers finished, want 4", len(result))
	}
	for _, r := range result {
		first := r.all[0].Position
		if first != 0 && first != 10 {
			t.Fatalf("first position %d, want 0 or 10", first)
		}
		versions := map[string]int64{}
		for i, e := range r.all {
			if e.Position != first+uint64(i) {
				t.Fatalf("event %d has position %d, want %d: gap or duplicate", i, e.Position, first+uint64(i))
			}
			if v, ok := versions[e.StreamID]; ok && e.Version != v+1 {
				t.Fatalf("stream %s: version %d after %d", e.StreamID, e.Version, v)
			}
			versions[e.StreamID] = e.Version
		}
	}
	for _, r := range streamResults {
		for i, v := range r.versions {
			if v != int64(i) {
				t.Fatalf("stream %s: delivered version %d at index %d", r.stream, v, i)
			}
		}
	}
}

func TestFromPositions(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	for i := range 10 {
		mustAppend(t, store, fmt.Sprintf("s-%d", i%2), ev("E"))
	}
	cases := []struct {
		name  string
		from  subscription.From
		first uint64
	}{
		{"start", subscription.Start, 0},
		{"at", subscription.At(4), 4},
		{"after", subscription.After(4), 5},
	}
	for _, c := range cases {
		sub, err := subscription.All(ctx, store, c.from, subscription.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if m := nextEvent(t, ctx, sub); m.Position != c.first {
			t.Errorf("%s: first position %d, want %d", c.name, m.Position, c.first)
		}
	}

	// End: only what is appended after the subscription is created, even
	// though the first Next comes later.
	sub, err := subscription.All(ctx, store, subscription.End, subscription.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := mustAppend(t, store, "late", ev("Late"))
	if m := nextEvent(t, ctx, sub); m.Position != res.Position {
		t.Errorf("from End: got position %d, want %d", m.Position, res.Position)
	}

	// A stream from a version, and from its end.
	ssub, err := subscription.Stream(ctx, store, "s-1", subscription.After(2), subscription.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m := nextEvent(t, ctx, ssub); m.Event.Version != 3 || m.Event.StreamID != "s-1" {
		t.Errorf("stream after 2: got %s@%d", m.Event.StreamID, m.Event.Version)
	}
	esub, err := subscription.Stream(ctx, store, "s-1", subscription.End, subscription.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, store, "s-1", ev("New"))
	if m := nextEvent(t, ctx, esub); m.Event.Version != 5 || m.Event.Type != "New" {
		t.Errorf("stream from End: got %s@%d", m.Event.Type, m.Event.Version)
	}
}

func TestCaughtUpThenLive(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	mustAppend(t, store, "a", ev("E"), ev("E"))
	sub, err := subscription.All(ctx, store, subscription.Start, subscription.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		kinds    []subscription.Kind
		caughtUp subscription.Message
	)
	for range 3 {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, m.Kind)
		if m.Kind == subscription.KindCaughtUp {
			caughtUp = m
		}
	}
	want := []subscription.Kind{subscription.KindEvent, subscription.KindEvent, subscription.KindCaughtUp}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	if caughtUp.Position != 2 {
		t.Fatalf("caught up at %d, want 2 (the next position)", caughtUp.Position)
	}
	// Live: a Next that is waiting receives an event appended later.
	got := make(chan subscription.Message, 1)
	go func() {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	res := mustAppend(t, store, "b", ev("Live"))
	if m := <-got; m.Kind != subscription.KindEvent || m.Position != res.Position || m.Lag != 0 {
		t.Fatalf("live message %+v, want the event at %d with no lag", m, res.Position)
	}
}

func TestStreamThatDoesNotExistYetIsDeletedAndTombstoned(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	sub, err := subscription.Stream(ctx, store, "later", subscription.Start, subscription.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := sub.Next(ctx); err != nil || m.Kind != subscription.KindCaughtUp || m.Position != 0 {
		t.Fatalf("first message %+v, %v; want caught up at version 0", m, err)
	}
	mustAppend(t, store, "other", ev("X"))
	mustAppend(t, store, "later", ev("One"), ev("Two"))
	for _, want := range []string{"One", "Two"} {
		if m := nextEvent(t, ctx, sub); m.Event.Type != want {
			t.Fatalf("got %s, want %s", m.Event.Type, want)
		}
	}
	// Soft delete: the subscription waits, then sees the recreated stream's
	// new events, whose versions continue.
	if err := store.DeleteStream(ctx, "later", cairn.Any); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, store, "later", ev("Three"))
	if m := nextEvent(t, ctx, sub); m.Event.Type != "Three" || m.Event.Version != 2 {
		t.Fatalf("after recreation got %s@%d, want Three@2", m.Event.Type, m.Event.Version)
	}
	// Tombstone: the subscription ends with ErrStreamDeleted.
	if err := store.TombstoneStream(ctx, "later", cairn.Any); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, store, "other", ev("Wake"))
	for {
		_, err := sub.Next(ctx)
		if err != nil {
			if !errors.Is(err, cairn.ErrStreamDeleted) {
				t.Fatalf("got %v, want ErrStreamDeleted", err)
			}
			break
		}
	}
	if _, err := sub.Next(ctx); !errors.Is(err, cairn.ErrStreamDeleted) {
		t.Fatalf("Next after the end: %v, want the same error", err)
	}
}

func TestFilterAndCheckpoints(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	for i := range 100 {
		typ := "Noise"
		if i%25 == 24 {
			typ = "OrderPlaced"
		}
		mustAppend(t, store, fmt.Sprintf("order-%d", i%4), ev(typ))
	}
	sub, err := subscription.All(ctx, store, subscription.Start, subscription.Options{
		Filter:          subscription.Filter{EventTypePrefixes: []string{"Order"}},
		CheckpointEvery: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	var events, checkpoints []uint64
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind == subscription.KindCaughtUp {
			break
		}
		switch m.Kind {
		case subscription.KindEvent:
			events = append(events, m.Position)
		case subscription.KindCheckpoint:
			checkpoints = append(checkpoints, m.Position)
		}
	}
	if fmt.Sprint(events) != "[24 49 74 99]" {
		t.Errorf("filtered events at %v, want [24 49 74 99]", events)
	}
	if fmt.Sprint(checkpoints) != "[9 19 29 39 49 59 69 79 89 99]" {
		t.Errorf("checkpoints at %v, want every 10 scanned events", checkpoints)
	}
}

func TestFilterMatch(t *testing.T) {
	e := &cairn.Event{StreamID: "order-1", EventData: cairn.EventData{Type: "OrderPlaced", Tags: []string{"eu", "vip"}}}
	cases := []struct {
		f    subscription.Filter
		want bool
	}{
		{subscription.Filter{}, true},
		{subscription.Filter{StreamPrefixes: []string{"invoice-", "order-"}}, true},
		{subscription.Filter{StreamPrefixes: []string{"invoice-"}}, false},
		{subscription.Filter{StreamRegexp: `^order-\d+$`}, true},
		{subscription.Filter{StreamRegexp: `^order-x`}, false},
		{subscription.Filter{EventTypes: []string{"OrderPlaced"}}, true},
		{subscription.Filter{EventTypes: []string{"Order"}}, false},
		{subscription.Filter{EventTypes: []string{"X"}, EventTypePrefixes: []string{"Order"}}, true},
		{subscription.Filter{EventTypeRegexp: "Placed$"}, true},
		{subscription.Filter{Tags: []string{"us", "vip"}}, true},
		{subscription.Filter{Tags: []string{"us"}}, false},
		{subscription.Filter{StreamPrefixes: []string{"order-"}, Tags: []string{"us"}}, false},
	}
	for i, c := range cases {
		if got := c.f.Match(e); got != c.want {
			t.Errorf("case %d %+v: Match = %v, want %v", i, c.f, got, c.want)
		}
	}
}

func TestBadInputNamesTheField(t *testing.T) {
	ctx := context.Background()
	store := memstore.Open()
	cases := []struct {
		field string
		open  func() error
	}{
		{"filter.stream_regexp", func() error {
			_, err := subscription.All(ctx, store, subscription.Start, subscription.Options{Filter: subscription.Filter{StreamRegexp: "("}})
			return err
		}},
		{"filter.tags[1]", func() error {
			_, err := subscription.All(ctx, store, subscription.Start, subscription.Options{Filter: subscription.Filter{Tags: []string{"a", ""}}})
			return err
		}},
		{"buffer size", func() error {
			_, err := subscription.All(ctx, store, subscription.Start, subscription.Options{BufferSize: -1})
			return err
		}},
		{"stream", func() error {
			_, err := subscription.Stream(ctx, store, "", subscription.Start, subscription.Options{})
			return err
		}},
		{"stream", func() error {
			_, err := subscription.Stream(ctx, store, "$all", subscription.Start, subscription.Options{})
			return err
		}},
		{"from", func() error {
			_, err := subscription.Stream(ctx, store, "s", subscription.After(math.MaxInt64), subscription.Options{})
			return err
		}},
	}
	for _, c := range cases {
		err := c.open()
		var ia *cairn.InvalidArgumentError
		if !errors.As(err, &ia) || ia.Field != c.field || !errors.Is(err, cairn.ErrInvalidArgument) {
			t.Errorf("got %v, want an invalid %s", err, c.field)
		}
	}
}

func TestFellBehind(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	sub, err := subscription.All(ctx, store, subscription.Start, subscription.Options{BufferSize: 10, MaxLag: 50})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := sub.Next(ctx); err != nil || m.Kind != subscription.KindCaughtUp {
		t.Fatalf("got %v, %v; want caught up", m.Kind, err)
	}
	for range 100 {
		mustAppend(t, store, "s", ev("E"))
	}
	m, err := sub.Next(ctx)
	if err != nil || m.Kind != subscription.KindFellBehind || m.Lag <= 50 {
		t.Fatalf("got %+v, %v; want fell behind by more than 50", m, err)
	}
	n := 0
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind == subscription.KindCaughtUp {
			break
		}
		if m.Kind != subscription.KindEvent {
			t.Fatalf("unexpected %v", m.Kind)
		}
		if want := uint64(99 - n); m.Lag != want {
			t.Fatalf("event %d: lag %d, want %d", n, m.Lag, want)
		}
		n++
	}
	if n != 100 {
		t.Fatalf("delivered %d events after falling behind, want 100", n)
	}
}

// TestCancelEndsPromptlyWithoutLeaks checks that a Next waiting for live
// events returns when its context is cancelled or the subscription closed,
// and that no goroutine outlives the subscriptions.
func TestCancelEndsPromptlyWithoutLeaks(t *testing.T) {
	store := memstore.Open()
	mustAppend(t, store, "s", ev("E"))
	before := runtime.NumGoroutine()

	subCtx, cancelSub := context.WithCancel(context.Background())
	var subs []*subscription.Subscription
	for range 20 {
		sub, err := subscription.All(subCtx, store, subscription.Start, subscription.Options{})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	callCtx, cancelCall := context.WithCancel(context.Background())
	results := make(chan error, len(subs))
	for i, sub := range subs {
		go func() {
			ctx := context.Background()
			if i == 0 {
				ctx = callCtx
			}
			for {
				if _, err := sub.Next(ctx); err != nil {
					results <- err
					return
				}
			}
		}()
	}
	cancelCall()
	if err := <-results; !errors.Is(err, context.Canceled) {
		t.Fatalf("call context: %v", err)
	}
	subs[1].Close()
	if err := <-results; !errors.Is(err, subscription.ErrClosed) {
		t.Fatalf("close: %v", err)
	}
	cancelSub()
	for range len(subs) - 2 {
		if err := <-results; !errors.Is(err, context.Canceled) {
			t.Fatalf("subscription context: %v", err)
		}
	}
	// The subscription whose call was cancelled is still usable until its
	// own context ends.
	if _, err := subs[0].Next(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("after the subscription context ended: %v", err)
	}
	waitGoroutines(t, before)
}

// waitGoroutines waits until at most n goroutines run; goroutines that have
// returned may take a moment to disappear from the count.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	for i := 0; ; i++ {
		if runtime.NumGoroutine() <= n {
			return
		}
		if i == 500 {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines remain, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSlowConsumerMemoryBounded reads a large log slowly and checks that the
// subscription never holds more than one page, and that the heap does not
// grow with the log: each event has its own payload, so a subscription that
// kept the events it delivered would hold the whole log again.
func TestSlowConsumerMemoryBounded(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	const (
		n    = 10000
		size = 4 << 10 // bytes per event: the log holds 40 MB
	)
	batch := make([]cairn.EventData, 100)
	for i := 0; i < n; i += len(batch) {
		for j := range batch {
			data := make([]byte, size)
			binary.BigEndian.PutUint64(data, uint64(i+j))
			batch[j] = cairn.EventData{Type: "Big", ContentType: cairn.ContentBinary, Data: data}
		}
		if _, err := store.Append(ctx, "big", cairn.Any, batch...); err != nil {
			t.Fatal(err)
		}
	}
	const buffer = 64
	sub, err := subscription.All(ctx, store, subscription.Start, subscription.Options{BufferSize: buffer})
	if err != nil {
		t.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := heap()
	var peak uint64
	maxBuffered := 0
	for i := range n {
		m := nextEvent(t, ctx, sub)
		if m.Position != uint64(i) || len(m.Event.Data) != size || binary.BigEndian.Uint64(m.Event.Data) != uint64(i) {
			t.Fatalf("got position %d with %d bytes, want position %d with its own %d bytes", m.Position, len(m.Event.Data), i, size)
		}
		maxBuffered = max(maxBuffered, sub.Buffered())
		if i%1000 == 999 {
			peak = max(peak, heap())
		}
	}
	if maxBuffered > buffer+1 {
		t.Errorf("up to %d messages buffered, want at most %d", maxBuffered, buffer+1)
	}
	// A page holds 256 KB; the log 40 MB. Allow 4 MB of noise.
	if peak > base+4<<20 {
		t.Errorf("heap grew from %d to %d bytes while a slow consumer read", base, peak)
	}
}

// TestStoreCloseEndsSubscribers checks that closing the store ends a catch-up
// subscription and a persistent consumer that wait for events, with an
// error matching cairn.ErrClosed.
func TestStoreCloseEndsSubscribers(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	mustAppend(t, store, "s", ev("E"))
	sub, err := subscription.All(ctx, store, subscription.End, subscription.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := subscription.NewManager(store, subscription.ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(ctx, "s", "g", subscription.Settings{Start: subscription.End}); err != nil {
		t.Fatal(err)
	}
	c, err := m.Connect(ctx, "s", "g", subscription.ConsumerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() {
		for {
			if _, err := sub.Next(ctx); err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() { _, err := c.Next(ctx); errs <- err }()
	// Let both reach their wait; if one has not, it finds the store closed
	// all the same.
	for range 2 {
		runtime.Gosched()
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, cairn.ErrClosed) {
			t.Fatalf("got %v, want ErrClosed", err)
		}
	}
}
