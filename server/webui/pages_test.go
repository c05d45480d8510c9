package webui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/subscription"
)

// The dashboard shows the head, the size on disk and the health, and its
// script gets the rates between the samples its calls take: events
// appended and read requests per second.
func TestDashboard(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	head := f.append("order-1", jsonEvent("OrderPlaced", `{}`))
	expect(t, "the dashboard", f.get("/ui/", ada), http.StatusOK,
		fmt.Sprintf(`data-field="head">%d<`, head.Position), "healthy", "memory (memstore)", `id="chart-appends"`)

	type figures struct {
		Head      int64  `json:"head"`
		DiskBytes int64  `json:"diskBytes"`
		Healthy   bool   `json:"healthy"`
		Engine    string `json:"engine"`
		Groups    int    `json:"groups"`
		Appends   []struct {
			T int64   `json:"t"`
			V float64 `json:"v"`
		} `json:"appends"`
		Reads []struct {
			V float64 `json:"v"`
		} `json:"reads"`
	}
	read := func() figures {
		t.Helper()
		r := f.get("/ui/api/dashboard", ada)
		expect(t, "the dashboard's figures", r, http.StatusOK)
		var fg figures
		if err := json.Unmarshal([]byte(r.body), &fg); err != nil {
			t.Fatalf("%v: %s", err, r.body)
		}
		return fg
	}
	fg := read()
	if fg.Head != int64(head.Position) || !fg.Healthy || fg.DiskBytes < 0 {
		t.Errorf("figures %+v", fg)
	}
	// 20 events and 6 reads in 2 seconds.
	var evs []cairn.EventData
	for range 20 {
		evs = append(evs, jsonEvent("E", `{}`))
	}
	f.append("load", evs...)
	f.reads.Add(6)
	f.advance(2 * time.Second)
	fg = read()
	n := len(fg.Appends)
	if n == 0 || fg.Appends[n-1].V != 10 || len(fg.Reads) == 0 || fg.Reads[len(fg.Reads)-1].V != 3 {
		t.Fatalf("rates %+v %+v, want 10 appends and 3 reads a second last", fg.Appends, fg.Reads)
	}
	// Within a second no new sample is taken.
	f.advance(500 * time.Millisecond)
	if again := read(); len(again.Appends) != n {
		t.Errorf("%d rates after half a second, want %d", len(again.Appends), n)
	}
}

// The stream list needs the right to read $all; it hides the system
// streams unless asked, searches by substring, and pages.
func TestStreamList(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for i := range 60 {
		f.append(fmt.Sprintf("order-%02d", i), jsonEvent("OrderPlaced", `{}`))
	}
	f.append("customer-1", jsonEvent("Registered", `{}`), jsonEvent("Renamed", `{}`))
	r := f.get("/ui/streams", admin)
	expect(t, "the first page", r, http.StatusOK, ">customer-1<", ">order-00<", ">order-48<", "after=order-48")
	if strings.Contains(r.body, ">order-49<") || strings.Contains(r.body, "$user-admin") {
		t.Errorf("the first page shows more than 50 streams, or system streams:\n%s", r.body)
	}
	if !regexp.MustCompile(`>customer-1</a></td><td class="num">1<`).MatchString(r.body) {
		t.Errorf("the list does not give customer-1's last version, 1:\n%s", r.body)
	}
	expect(t, "the second page", f.get("/ui/streams?after=order-48", admin), http.StatusOK, ">order-49<", ">order-59<")
	r = f.get("/ui/streams?q=order-5", admin)
	expect(t, "a search", r, http.StatusOK, ">order-50<", ">order-59<")
	if strings.Contains(r.body, ">order-49<") || strings.Contains(r.body, ">customer-1<") {
		t.Errorf("the search shows streams without order-5:\n%s", r.body)
	}
	expect(t, "system streams", f.get("/ui/streams?system=1&q=%24user", admin), http.StatusOK, ">$user-admin<", ">$user-ada<")
	expect(t, "no match", f.get("/ui/streams?q=nothing", admin), http.StatusOK, "No stream whose id contains “nothing”")
	if r := f.get("/ui/streams?open=order-07", admin); r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "id=order-07") {
		t.Errorf("open a stream: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	// $all's readers only: administrators by default.
	expect(t, "a user lists the streams", f.get("/ui/streams", ada), http.StatusForbidden, "needs the right to read $all")
}

var rowNumbers = regexp.MustCompile(`<td class="num"><a href="/ui/event\?[^"]*">(\d+)</a></td>`)

// numbers returns the event numbers a page of a stream shows, in order.
func numbers(body string) string {
	var out []string
	for _, m := range rowNumbers.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return strings.Join(out, " ")
}

// link returns the href of the link whose text is text.
func link(t *testing.T, body, text string) string {
	t.Helper()
	m := regexp.MustCompile(`<a href="([^"]*)">` + regexp.QuoteMeta(text) + `</a>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no link %q in:\n%s", text, body)
	}
	return html.UnescapeString(m[1])
}

// A stream reads backwards from its end by default, forwards from its
// start on request, a page at a time, with links to the pages around.
func TestStreamPaging(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	var evs []cairn.EventData
	for i := range 45 {
		evs = append(evs, jsonEvent("Step", fmt.Sprintf(`{"i":%d}`, i)))
	}
	f.append("job-1", evs...)
	seq := func(from, to int) string {
		var out []string
		for i := from; ; {
			out = append(out, fmt.Sprint(i))
			if i == to {
				return strings.Join(out, " ")
			}
			if from < to {
				i++
			} else {
				i--
			}
		}
	}
	r := f.get("/ui/stream?id=job-1", ada)
	expect(t, "the newest page", r, http.StatusOK, "Last version 44", "reading backward")
	if got := numbers(r.body); got != seq(44, 25) {
		t.Fatalf("the newest page shows %s", got)
	}
	r = f.get(link(t, r.body, "Older →"), ada)
	if got := numbers(r.body); got != seq(24, 5) {
		t.Fatalf("the older page shows %s", got)
	}
	older := f.get(link(t, r.body, "Older →"), ada)
	if got := numbers(older.body); got != seq(4, 0) || strings.Contains(older.body, "Older →") {
		t.Fatalf("the oldest page backward shows %s, or offers an older one", got)
	}
	r = f.get(link(t, r.body, "← Newer"), ada)
	if got := numbers(r.body); got != seq(44, 25) {
		t.Fatalf("back to the newer page: %s", got)
	}
	r = f.get(link(t, r.body, "Oldest ⇥"), ada)
	expect(t, "forward", r, http.StatusOK, "reading forward")
	if got := numbers(r.body); got != seq(0, 19) {
		t.Fatalf("the first page forward shows %s", got)
	}
	r = f.get(link(t, r.body, "Later →"), ada)
	if got := numbers(r.body); got != seq(20, 39) {
		t.Fatalf("the next page forward shows %s", got)
	}
	later := f.get(link(t, r.body, "Later →"), ada)
	if got := numbers(later.body); got != seq(40, 44) {
		t.Fatalf("the last page forward shows %s", got)
	}
	r = f.get(link(t, r.body, "← Earlier"), ada)
	if got := numbers(r.body); got != seq(0, 19) {
		t.Fatalf("the earlier page forward shows %s", got)
	}
	r = f.get("/ui/stream?id=job-1&dir=forward&from=40&count=3", ada)
	if got := numbers(r.body); got != "40 41 42" {
		t.Fatalf("3 from 40: %s", got)
	}

	for _, bad := range []string{"dir=sideways", "from=-3", "from=x", "count=0", "count=201"} {
		expect(t, bad, f.get("/ui/stream?id=job-1&"+bad, ada), http.StatusBadRequest)
	}
	expect(t, "no id", f.get("/ui/stream", ada), http.StatusBadRequest, "which stream?")
	expect(t, "a stream that does not exist", f.get("/ui/stream?id=nope", ada), http.StatusNotFound)
}

// $all reads as a stream numbered by position, for its readers only.
func TestAllStream(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	res := f.append("order-1", jsonEvent("OrderPlaced", `{"total":1}`))
	r := f.get("/ui/stream?id=%24all", admin)
	expect(t, "$all", r, http.StatusOK, fmt.Sprintf("Last position %d", res.Position),
		fmt.Sprintf(`<a href="/ui/event?position=%d">%d</a>`, res.Position, res.Position), ">order-1<", "$user-admin")
	expect(t, "$all for a user", f.get("/ui/stream?id=%24all", ada), http.StatusForbidden)
	expect(t, "an event of $all", f.get(fmt.Sprintf("/ui/event?position=%d", res.Position), admin), http.StatusOK, "OrderPlaced", "&#34;total&#34;: 1")
	expect(t, "an event of $all for a user", f.get(fmt.Sprintf("/ui/event?position=%d", res.Position), ada), http.StatusForbidden)
	expect(t, "a position past the end", f.get("/ui/event?position=999999", admin), http.StatusNotFound)
	expect(t, "a position that is no number", f.get("/ui/event?position=x", admin), http.StatusBadRequest)
}

// A stream's ACL decides who may read it in the UI, as over the protocols.
func TestStreamACL(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.append("secret-1", jsonEvent("Secret", `{"pin":1234}`))
	if _, err := f.store.System().Append(context.Background(), "$$secret-1", cairn.Any, jsonEvent("$metadata", `{"$acl":{"$r":"ops"}}`)); err != nil {
		t.Fatal(err)
	}
	expect(t, "ada reads", f.get("/ui/stream?id=secret-1", ada), http.StatusForbidden, "access denied")
	expect(t, "ada reads an event", f.get("/ui/event?stream=secret-1&version=0", ada), http.StatusForbidden)
	expect(t, "ops reads", f.get("/ui/stream?id=secret-1", ops), http.StatusOK, "Secret")
	expect(t, "ops reads an event", f.get("/ui/event?stream=secret-1&version=0", ops), http.StatusOK, "1234")
	// A link to it does not show its content to who may not read it.
	f.append("public-1", cairn.EventData{Type: links.LinkType, Data: links.Data("secret-1", 0)})
	r := f.get("/ui/stream?id=public-1", ada)
	expect(t, "a link to a secret", r, http.StatusOK, "0@secret-1")
	if strings.Contains(r.body, "1234") || strings.Contains(r.body, ">Secret<") {
		t.Errorf("ada sees the secret through a link:\n%s", r.body)
	}
	expect(t, "ops follows the link", f.get("/ui/stream?id=public-1", ops), http.StatusOK, ">Secret</a>", "1234")
}

// An event's page shows its facts, its data and metadata pretty-printed
// (JSON indented, binary as a hex dump), escaped; a link names its target.
func TestEventPage(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	_, err := f.store.Append(ctx, "order-1", cairn.NoStream,
		cairn.EventData{Type: "OrderPlaced", Data: []byte(`{"total":42,"note":"<script>alert(1)</script>"}`), Metadata: []byte(`{"user":"ada"}`), Tags: []string{"vip"}},
		cairn.EventData{Type: "<b>Odd</b>", ContentType: cairn.ContentBinary, Data: []byte{0, 1, 2, 'h', 'i', 0xff}},
	)
	if err != nil {
		t.Fatal(err)
	}
	r := f.get("/ui/event?stream=order-1&version=0", ada)
	expect(t, "a JSON event", r, http.StatusOK, "OrderPlaced", "application/json", ">vip<",
		"{\n  &#34;total&#34;: 42,\n  &#34;note&#34;: &#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;\n}",
		"&#34;user&#34;: &#34;ada&#34;", `href="/ui/event?stream=order-1&amp;version=1">Next →`)
	if strings.Contains(r.body, "<script>alert") {
		t.Error("the page holds the event's data unescaped")
	}
	r = f.get("/ui/event?stream=order-1&version=1", ada)
	expect(t, "a binary event", r, http.StatusOK, "&lt;b&gt;Odd&lt;/b&gt;", "application/octet-stream",
		"00000000  00 01 02 68 69 ff", "|...hi.|", "← Previous")
	expect(t, "a version past the end", f.get("/ui/event?stream=order-1&version=7", ada), http.StatusNotFound)
	expect(t, "a bad version", f.get("/ui/event?stream=order-1&version=-1", ada), http.StatusBadRequest)
	expect(t, "no stream", f.get("/ui/event?version=0", ada), http.StatusBadRequest)

	f.append("index-1", cairn.EventData{Type: links.LinkType, Data: links.Data("order-1", 0)})
	r = f.get("/ui/event?stream=index-1&version=0", ada)
	expect(t, "a link", r, http.StatusOK, "Link to", `href="/ui/event?stream=order-1&amp;version=0">0@order-1</a> (OrderPlaced)`)
}

// Pages the UI has not are 404, for who is logged in.
func TestNotFound(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	expect(t, "an unknown page", f.get("/ui/nope", ada), http.StatusNotFound, "no such page")
	// Without a subscription manager, projections or scavenges, their
	// pages say so.
	g := newFixture(t, fixtureOptions{noSubs: true})
	expect(t, "subscriptions", g.get("/ui/subscriptions", admin), http.StatusNotFound, "no persistent subscriptions")
	expect(t, "projections", g.get("/ui/projections", admin), http.StatusNotFound, "no projections")
	expect(t, "scavenge", g.get("/ui/scavenge", admin), http.StatusNotFound, "no scavenge")
	expect(t, "the dashboard", g.get("/ui/", admin), http.StatusOK)
}

// Persistent subscriptions: any user sees the groups and their
// statistics; the parked events and their replay take an operator.
func TestSubscriptions(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f.append("job-1", jsonEvent("Job", `{"n":1}`), jsonEvent("Job", `{"n":2}`))
	if err := f.subs.Create(ctx, "job-1", "workers", subscription.Settings{}); err != nil {
		t.Fatal(err)
	}
	c, err := f.subs.Connect(ctx, "job-1", "workers", subscription.ConsumerOptions{InFlight: 10, Name: "worker-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	first, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Nack(ctx, subscription.Park, "cannot <handle> it", first.Event.ID); err != nil {
		t.Fatal(err)
	}
	second, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(ctx, second.Event.ID); err != nil {
		t.Fatal(err)
	}

	expect(t, "the list", f.get("/ui/subscriptions", ada), http.StatusOK, ">job-1<", ">workers</a>", `<td class="num warn">1</td>`)
	page := "/ui/subscription?group=workers&stream=job-1"
	r := f.get(page, ada)
	expect(t, "a group for a user", r, http.StatusOK, "worker-a", "1 parked. Seeing and replaying them takes an administrator or an operator")
	if strings.Contains(r.body, "cannot &lt;handle&gt; it") {
		t.Error("a user sees the parked events")
	}
	expect(t, "a group for ops", f.get(page, ops), http.StatusOK, `0@job-1`, "cannot &lt;handle&gt; it", "Replay parked events")
	expect(t, "an unknown group", f.get("/ui/subscription?stream=job-1&group=nope", ops), http.StatusNotFound)

	form := url.Values{"stream": {"job-1"}, "group": {"workers"}}
	expect(t, "a user replays", f.post("/ui/subscription/replay", ada, form), http.StatusForbidden, "takes an administrator or an operator")
	bad := url.Values{"stream": {"job-1"}, "group": {"workers"}, "max": {"-1"}}
	expect(t, "a bad max", f.post("/ui/subscription/replay", ops, bad), http.StatusBadRequest)
	r = f.post("/ui/subscription/replay", ops, form)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != page+"&replayed=1" {
		t.Fatalf("replay: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	again, err := c.Next(ctx)
	if err != nil || again.Event.ID != first.Event.ID || !again.Replayed {
		t.Fatalf("after the replay the consumer got %+v, %v; want the parked event again", again, err)
	}
	expect(t, "after the replay", f.get(r.Header.Get("Location"), ops), http.StatusOK, "1 parked events delivered again", "replaying")
	expect(t, "replay of an unknown group", f.post("/ui/subscription/replay", ops, url.Values{"stream": {"job-1"}, "group": {"nope"}}), http.StatusNotFound)
}
