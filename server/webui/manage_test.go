package webui_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/projections"
)

// Projections: any user sees their statistics, state and result;
// enabling, disabling, aborting and resetting one take an operator.
func TestProjections(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := f.projs.Create(ctx, "order-count", `fromCategory('order')
		.when({ $init: function () { return { count: 0 }; }, OrderPlaced: function (s, e) { s.count += 1; } })
		.outputState()`, projections.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.append("order-1", jsonEvent("OrderPlaced", `{}`))
	f.append("order-2", jsonEvent("OrderPlaced", `{}`))
	for {
		state, err := f.projs.State(ctx, "order-count", "")
		if err != nil {
			t.Fatal(err)
		}
		if string(state) == `{"count":2}` {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	expect(t, "the list", f.get("/ui/projections", ada), http.StatusOK, ">order-count</a>", "Continuous", "Running")
	page := "/ui/projection?name=order-count"
	r := f.get(page, ada)
	expect(t, "a projection for a user", r, http.StatusOK, "Running", "{\n  &#34;count&#34;: 2\n}", "take an administrator or an operator")
	if strings.Contains(r.body, `action="/ui/projection/disable"`) {
		t.Error("a user is offered to disable the projection")
	}
	expect(t, "a projection for ops", f.get(page, ops), http.StatusOK, `action="/ui/projection/disable"`, `action="/ui/projection/reset"`)
	expect(t, "an unknown projection", f.get("/ui/projection?name=nope", ada), http.StatusNotFound)

	form := url.Values{"name": {"order-count"}}
	for _, action := range []string{"enable", "disable", "abort", "reset"} {
		expect(t, "a user "+action+"s", f.post("/ui/projection/"+action, ada, form), http.StatusForbidden, "takes an administrator or an operator")
	}
	if st, _ := f.projs.Statistics(ctx, "order-count"); st.Status != "Running" {
		t.Fatalf("after refused actions the projection is %s", st.Status)
	}
	r = f.post("/ui/projection/disable", ops, form)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != page+"&done=disable" {
		t.Fatalf("disable: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	if st, _ := f.projs.Statistics(ctx, "order-count"); st.Enabled {
		t.Fatalf("after disable the projection is %s, enabled", st.Status)
	}
	expect(t, "after disable", f.get(r.Header.Get("Location"), ops), http.StatusOK, "Done: disable.", "Stopped")
	expect(t, "enable", f.post("/ui/projection/enable", admin, form), http.StatusSeeOther)
	if st, _ := f.projs.Statistics(ctx, "order-count"); !st.Enabled {
		t.Fatalf("after enable the projection is %s, not enabled", st.Status)
	}
	expect(t, "reset", f.post("/ui/projection/reset", admin, form), http.StatusSeeOther)
	if st, _ := f.projs.Statistics(ctx, "order-count"); st.Epoch == 0 {
		t.Errorf("after reset the projection is in epoch %d", st.Epoch)
	}
	expect(t, "an unknown action", f.post("/ui/projection/explode", admin, form), http.StatusNotFound)
	expect(t, "an action on an unknown projection", f.post("/ui/projection/enable", admin, url.Values{"name": {"nope"}}), http.StatusNotFound)
}

// Scavenges: any user sees the last one; starting and stopping one take an
// operator.
func TestScavenge(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	expect(t, "no scavenge yet", f.get("/ui/scavenge", ada), http.StatusOK, "No scavenge has run", "take an administrator or an operator")
	expect(t, "a user starts one", f.post("/ui/scavenge/start", ada, nil), http.StatusForbidden)
	if _, ok := f.scav.LastScavenge(); ok {
		t.Fatal("a user started a scavenge")
	}
	r := f.post("/ui/scavenge/start", ops, nil)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/ui/scavenge" {
		t.Fatalf("start: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	sc, ok := f.scav.LastScavenge()
	if !ok || !sc.Running {
		t.Fatal("ops started no scavenge")
	}
	expect(t, "a running scavenge", f.get("/ui/scavenge", ops), http.StatusOK, sc.ID, ">running<", "2.0 KiB", `action="/ui/scavenge/stop"`)
	var st struct {
		ID      string `json:"id"`
		Running bool   `json:"running"`
		Outcome string `json:"outcome"`
	}
	r = f.get("/ui/api/scavenge", ada)
	if err := json.Unmarshal([]byte(r.body), &st); err != nil || st.ID != sc.ID || !st.Running || st.Outcome != "running" {
		t.Errorf("the scavenge's figures: %s, %v", r.body, err)
	}
	expect(t, "a user stops it", f.post("/ui/scavenge/stop", ada, url.Values{"id": {sc.ID}}), http.StatusForbidden)
	expect(t, "stop another", f.post("/ui/scavenge/stop", ops, url.Values{"id": {"nope"}}), http.StatusNotFound)
	expect(t, "stop it", f.post("/ui/scavenge/stop", ops, url.Values{"id": {sc.ID}}), http.StatusSeeOther)
	expect(t, "a stopped scavenge", f.get("/ui/scavenge", ada), http.StatusOK, ">stopped<", "1.0 KiB")
}

// sse reads a stream of server-sent events.
type sse struct {
	t    *testing.T
	r    *bufio.Reader
	stop func()
}

// event is one server-sent event: its name ("" for a message), id and
// data.
type event struct{ name, id, data string }

func (f *fixture) tail(query string, as who, lastID string) *sse {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/ui/api/tail?"+query, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(as.basic)))
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		f.t.Fatalf("tail: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sse{t: f.t, r: bufio.NewReader(resp.Body), stop: func() { cancel(); resp.Body.Close() }}
	f.t.Cleanup(s.stop)
	return s
}

// next returns the next event, skipping comments.
func (s *sse) next() event {
	s.t.Helper()
	var e event
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("reading the tail: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if e != (event{}) {
				return e
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			e.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			e.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			e.data = strings.TrimPrefix(line, "data: ")
		default:
			s.t.Fatalf("unexpected line in the tail: %q", line)
		}
	}
}

// tailed is a tail's event as the page's script reads it.
type tailed struct {
	Position uint64 `json:"position"`
	Stream   string `json:"stream"`
	Version  int64  `json:"version"`
	Type     string `json:"type"`
	Preview  string `json:"preview"`
}

func (s *sse) event() tailed {
	s.t.Helper()
	e := s.next()
	if e.name != "" {
		s.t.Fatalf("tail sent %q (%s), want an event", e.name, e.data)
	}
	var ev tailed
	if err := json.Unmarshal([]byte(e.data), &ev); err != nil {
		s.t.Fatalf("%v: %s", err, e.data)
	}
	if e.id != fmt.Sprint(ev.Position) {
		t := s.t
		t.Errorf("event id %q, want its position %d", e.id, ev.Position)
	}
	return ev
}

func (s *sse) expect(name string) event {
	s.t.Helper()
	e := s.next()
	if e.name != name {
		s.t.Fatalf("tail sent %+v, want %q", e, name)
	}
	return e
}

// The live tail sends the last matching events, then each new matching
// one as it commits; it resumes after the id a reconnecting browser
// received; it needs the right to read $all, and ends with the server.
func TestTail(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.append("order-1", jsonEvent("OrderPlaced", `{"total":1}`))
	f.append("customer-1", jsonEvent("Registered", `{}`))
	f.append("order-2", jsonEvent("OrderPlaced", `{"total":2}`), jsonEvent("OrderPaid", `{}`))

	s := f.tail("stream=order-&type=OrderPla", admin, "")
	for _, want := range []string{"order-1", "order-2"} {
		if ev := s.event(); ev.Stream != want || ev.Type != "OrderPlaced" {
			t.Fatalf("backlog event %+v, want %s's OrderPlaced", ev, want)
		}
	}
	s.expect("live")
	f.append("customer-2", jsonEvent("Registered", `{}`))
	f.append("order-2", jsonEvent("OrderPaid", `{}`))
	res := f.append("order-3", jsonEvent("OrderPlaced", `{"total": 3}`))
	if ev := s.event(); ev.Stream != "order-3" || ev.Position != res.Position || ev.Preview != `{"total": 3}` {
		t.Fatalf("live event %+v, want order-3's", ev)
	}
	s.stop()

	// System events only on request.
	s = f.tail("system=1&stream=%24user-ada", admin, "")
	if ev := s.event(); ev.Stream != "$user-ada" {
		t.Fatalf("system event %+v", ev)
	}
	s.stop()

	// A browser that reconnects resumes after the last event it got.
	s = f.tail("", admin, fmt.Sprint(res.Position-1))
	s.expect("live")
	if ev := s.event(); ev.Position != res.Position {
		t.Fatalf("resumed at %+v, want position %d", ev, res.Position)
	}
	s.stop()

	// The server's shutdown ends it.
	s = f.tail("", admin, "")
	for e := s.next(); e.name != "live"; e = s.next() {
	}
	close(f.done)
	if _, err := s.r.ReadString('\n'); err == nil {
		t.Error("the tail went on after the server's shutdown")
	}

	r := f.get("/ui/api/tail", ada)
	expect(t, "a user tails", r, http.StatusForbidden, "needs the right to read $all")
	expect(t, "a bad Last-Event-ID", f.do("GET", "/ui/api/tail", who{basic: admin.basic, header: map[string]string{"Last-Event-ID": "x"}}, nil), http.StatusBadRequest)
	expect(t, "the tail's page", f.get("/ui/tail?stream=order-", admin), http.StatusOK, `name="stream" value="order-"`)
	expect(t, "the tail's page for a user", f.get("/ui/tail", ada), http.StatusForbidden)
}

// A tail that falls far behind the log skips to its head, and says so.
func TestTailSkips(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	evs := make([]cairn.EventData, 1000)
	for i := range evs {
		evs[i] = jsonEvent("E", `{}`)
	}
	var last cairn.AppendResult
	for range 11 {
		last = f.append("load", evs...)
	}
	s := f.tail("", admin, "0")
	s.expect("live")
	n := 0
	for {
		e := s.next()
		if e.name == "skipped" {
			break
		}
		if e.name != "" {
			t.Fatalf("tail sent %+v", e)
		}
		n++
	}
	if n == 0 || n > 1000 {
		t.Errorf("%d events before the skip, want a read's worth", n)
	}
	res := f.append("after", jsonEvent("E", `{}`))
	if ev := s.event(); ev.Position != res.Position || res.Position != last.Position+1 {
		t.Errorf("after the skip %+v, want the next event, at %d", ev, res.Position)
	}
}
