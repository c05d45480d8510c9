package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/server"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// screenshots is where TestWebUIScreenshots writes the README's pictures of
// the web UI:
//
//	go test ./server -run TestWebUIScreenshots -webui.screenshots=$PWD/docs/images
var screenshots = flag.String("webui.screenshots", "", "write PNG screenshots of the web UI's pages to this directory (TestWebUIScreenshots)")

// TestWebUIScreenshots fills a server with orders, a JavaScript projection
// and a persistent subscription with parked events, runs a load for the
// dashboard's charts, and takes a picture of each page. It runs only with
// -webui.screenshots, and takes about a minute.
func TestWebUIScreenshots(t *testing.T) {
	if *screenshots == "" {
		t.Skip("give -webui.screenshots DIR to take the pictures")
	}
	if err := os.MkdirAll(*screenshots, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := diskstore.Open(t.TempDir(), diskstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := startOn(t, db, projectionOptions())
	ctx := context.Background()
	c := ts.client(t)
	customers := []string{"ada", "grace", "edsger", "barbara", "ken", "margaret"}
	skus := []string{"CAIRN-MUG", "STONE-S", "STONE-M", "STONE-L", "TRAIL-MAP"}
	order := func(n int) []kurrentdb.EventData {
		placed := fmt.Sprintf(`{"order":"order-%d","customer":%q,"lines":[{"sku":%q,"qty":%d,"price":12.5},{"sku":%q,"qty":1,"price":4}],"total":%.2f,"currency":"EUR"}`,
			n, customers[n%len(customers)], skus[n%len(skus)], 1+n%3, skus[(n+2)%len(skus)], 12.5*float64(1+n%3)+4)
		meta := fmt.Sprintf(`{"$correlationId":%q,"user":%q,"source":"web-shop"}`, uuid.NewString(), customers[n%len(customers)])
		evs := []kurrentdb.EventData{{EventID: uuid.New(), EventType: "OrderPlaced", ContentType: kurrentdb.ContentTypeJson, Data: []byte(placed), Metadata: []byte(meta)}}
		if n%4 != 0 {
			evs = append(evs, kurrentdb.EventData{EventID: uuid.New(), EventType: "OrderPaid", ContentType: kurrentdb.ContentTypeJson, Data: []byte(fmt.Sprintf(`{"order":"order-%d","method":"card"}`, n)), Metadata: []byte(meta)})
		}
		if n%3 == 1 {
			evs = append(evs, kurrentdb.EventData{EventID: uuid.New(), EventType: "OrderShipped", ContentType: kurrentdb.ContentTypeJson, Data: []byte(fmt.Sprintf(`{"order":"order-%d","carrier":"post"}`, n)), Metadata: []byte(meta)})
		}
		return evs
	}
	for n := 1001; n <= 1040; n++ {
		if _, err := c.AppendToStream(ctx, fmt.Sprintf("order-%d", n), kurrentdb.AppendToStreamOptions{}, order(n)...); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range customers {
		if _, err := c.AppendToStream(ctx, "customer-"+name, kurrentdb.AppendToStreamOptions{}, jsonEvent("CustomerRegistered", fmt.Sprintf(`{"name":%q}`, name))); err != nil {
			t.Fatal(err)
		}
	}
	var cart []kurrentdb.EventData
	for i, sku := range []string{"STONE-S", "STONE-M", "CAIRN-MUG", "STONE-S", "TRAIL-MAP", "STONE-L", "STONE-M", "CAIRN-MUG"} {
		typ := "ItemAdded"
		if i == 3 || i == 6 {
			typ = "ItemRemoved"
		}
		cart = append(cart, jsonEvent(typ, fmt.Sprintf(`{"sku":%q,"qty":%d}`, sku, 1+i%2)))
	}
	cart = append(cart, jsonEvent("CheckedOut", `{"order":"order-1040"}`))
	if _, err := c.AppendToStream(ctx, "cart-7", kurrentdb.AppendToStreamOptions{}, cart...); err != nil {
		t.Fatal(err)
	}
	pc := ts.projections(t)
	if err := pc.Create(ctx, "revenue-by-customer", `fromCategory('order')
.when({
	$init: function () { return { orders: 0, revenue: 0, byCustomer: {} }; },
	OrderPlaced: function (s, e) {
		s.orders += 1;
		s.revenue += e.data.total;
		s.byCustomer[e.data.customer] = (s.byCustomer[e.data.customer] || 0) + e.data.total;
	}
})
.outputState()`, kurrentdb.CreateProjectionOptions{}); err != nil {
		t.Fatal(err)
	}
	// A group whose consumer parks the orders it cannot bill.
	orders := &kurrentdb.SubscriptionFilter{Type: kurrentdb.StreamFilterType, Prefixes: []string{"order-"}}
	if err := c.CreatePersistentSubscriptionToAll(ctx, "billing", kurrentdb.PersistentAllSubscriptionOptions{Filter: orders, StartFrom: kurrentdb.Start{}}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePersistentSubscription(ctx, "customer-ada", "mailer", kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.Start{}}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubscribeToPersistentSubscriptionToAll(ctx, "billing", kurrentdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	go func() {
		for {
			m := sub.Recv()
			if m.SubscriptionDropped != nil {
				return
			}
			if m.EventAppeared == nil {
				continue
			}
			e := m.EventAppeared.Event
			if strings.Contains(string(e.Event.Data), `"edsger"`) && e.Event.EventType == "OrderPlaced" {
				_ = sub.Nack("payment provider refused the card", kurrentdb.NackActionPark, e)
				continue
			}
			_ = sub.Ack(e)
		}
	}()

	// A load for the charts: appends at a rate that rises and falls, and
	// reads, while the test samples the dashboard as an open page would.
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopLoad()
		wg.Wait()
	}()
	began := time.Now()
	wg.Add(3)
	go func() {
		defer wg.Done()
		for n := 2000; loadCtx.Err() == nil; n++ {
			rate := 60 + 50*math.Sin(time.Since(began).Seconds()/6)
			if _, err := c.AppendToStream(loadCtx, fmt.Sprintf("order-%d", n), kurrentdb.AppendToStreamOptions{}, order(n)...); err != nil {
				return
			}
			time.Sleep(time.Duration(float64(time.Second) / rate))
		}
	}()
	go func() {
		defer wg.Done()
		for n := 0; loadCtx.Err() == nil; n++ {
			rs, err := c.ReadStream(loadCtx, fmt.Sprintf("order-%d", 1001+n%40), kurrentdb.ReadStreamOptions{}, 10)
			if err == nil {
				_, _ = drain(rs, nil)
			}
			rate := 30 + 25*math.Cos(time.Since(began).Seconds()/9)
			time.Sleep(time.Duration(float64(time.Second) / rate))
		}
	}()
	base := "https://localhost" + ts.addr[strings.LastIndexByte(ts.addr, ':'):]
	go func() {
		defer wg.Done()
		client := ts.httpClient(t)
		for loadCtx.Err() == nil {
			req, _ := http.NewRequestWithContext(loadCtx, "GET", base+"/ui/api/dashboard", nil)
			req.SetBasicAuth("admin", server.DefaultAdminPassword)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
			time.Sleep(2 * time.Second)
		}
	}()

	b := newBrowser(t, 1280, 800)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(*screenshots, "webui-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.do(t, "log in",
		chromedp.Navigate(base+"/ui/login"),
		page("login"),
		chromedp.SendKeys(chromedp.CSS(`input[name=user]`), "admin"),
	)
	shot("login")
	b.do(t, "log in",
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), server.DefaultAdminPassword),
		chromedp.Click(chromedp.CSS(`.login button[type=submit]`)),
		page("dashboard"),
		chromedp.Navigate(base+"/ui/streams?q=order-10"),
		page("streams"),
	)
	shot("streams")
	b.do(t, "stream", chromedp.Navigate(base+"/ui/stream?id=cart-7"), page("stream"))
	shot("stream")
	b.do(t, "$all", chromedp.Navigate(base+"/ui/stream?id=%24all"), page("stream"))
	shot("all")
	b.do(t, "event", chromedp.Navigate(base+"/ui/event?stream=order-1002&version=0"), page("event"),
		chromedp.WaitVisible(chromedp.CSS(`pre.json span.k`)))
	shot("event")
	b.do(t, "tail", chromedp.Navigate(base+"/ui/tail?stream=order-"), page("tail"),
		chromedp.WaitVisible(chromedp.CSS(`#tail-status.live`)), chromedp.Sleep(4*time.Second))
	shot("tail")
	until(t, "parked events", func() (bool, string) {
		info, err := c.GetPersistentSubscriptionInfoToAll(ctx, "billing", kurrentdb.GetPersistentSubscriptionOptions{})
		if err != nil || info.Stats == nil {
			return false, fmt.Sprint(err)
		}
		return info.Stats.ParkedMessagesCount >= 5, fmt.Sprint(info.Stats.ParkedMessagesCount, " parked")
	})
	b.do(t, "subscription", chromedp.Navigate(base+"/ui/subscription?stream=%24all&group=billing"), page("subscription"))
	shot("subscription")
	b.do(t, "projections", chromedp.Navigate(base+"/ui/projections"), page("projections"))
	shot("projections")
	b.do(t, "projection", chromedp.Navigate(base+"/ui/projection?name=revenue-by-customer"), page("projection"),
		chromedp.WaitVisible(chromedp.CSS(`pre.json span.k`)))
	shot("projection")
	b.do(t, "scavenge", chromedp.Navigate(base+"/ui/scavenge"), page("scavenge"),
		chromedp.Click(chromedp.CSS(`form[action="/ui/scavenge/start"] button`)),
		chromedp.WaitVisible(`//span[@data-field="outcome" and text()="finished"]`))
	shot("scavenge")
	// The dashboard last, when the load has run for most of a minute.
	if wait := 50*time.Second - time.Since(began); wait > 0 {
		time.Sleep(wait)
	}
	b.do(t, "dashboard", chromedp.Navigate(base+"/ui/"), page("dashboard"),
		chromedp.WaitVisible(chromedp.CSS(`#chart-reads svg polyline`)))
	shot("dashboard")
	b.checkConsole(t)
}

// httpClient returns an HTTP client that trusts the test server's CA.
func (ts *testServer) httpClient(t testing.TB) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(ts.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
