package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server"
	"github.com/chromedp/chromedp"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// The web UI in a real browser: Debian's Chromium, headless, driven over
// the DevTools protocol (chromedp). Without Chromium the tests are skipped,
// unless CI=true, where CI installs it (.ci/run) and they must run.

// chromium returns the path of a Chromium or Chrome binary, or skips the
// test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium found, and CI=true: install it (apt-get install chromium)")
	}
	t.Skip("no Chromium found (apt-get install chromium): the web UI's browser test is skipped")
	return ""
}

// browser is a headless Chromium tab that records what its console
// reports: errors, uncaught exceptions, and the browser's own error log
// (failed loads, Content-Security-Policy violations).
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
}

func newBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-dev-shm-usage", true),
		// The test servers' certificates come from a throwaway CA.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(width, height),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	b := &browser{ctx: ctx}
	// Errors and warnings of the console API, uncaught exceptions, and
	// the browser's own log (failed loads, Content-Security-Policy
	// violations) at warning and error.
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				b.problem("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line)
			}
		}
	}()
	return b
}

func (b *browser) problem(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// do runs the actions, failing the test with step's name.
func (b *browser) do(t *testing.T, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	for i, a := range actions {
		ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
		err := chromedp.Do(ctx, a)
		cancel()
		if err != nil {
			// Say where the browser is, with a fresh context: b.ctx may
			// be past its deadline.
			where, body := "?", "?"
			ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			if loc, err := chromedp.Run(ctx, chromedp.Location()); err == nil {
				where = loc
			}
			if text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main"))); err == nil {
				body = text
			}
			cancel()
			t.Fatalf("%s, action %d: %v\nat %s, which shows:\n%s", step, i+1, err, where, body)
		}
	}
}

// text returns the visible text of the first element sel selects.
func (b *browser) text(t *testing.T, sel chromedp.CSS) string {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("the text of %s: %v", sel, err)
	}
	return s
}

// checkConsole fails the test for each problem the console reported.
func (b *browser) checkConsole(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("browser console: %s", p)
	}
}

// page waits for the page whose template is name.
func page(name string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(`body[data-page="` + name + `"]`))
}

// TestWebUIInABrowser logs in through the form, follows the navigation to
// every page, sees a stream appended during the test in the live tail and
// in the stream browser, opens its event, starts a scavenge, and checks
// that the console stayed free of errors. The server speaks TLS, as it
// must beyond loopback: the browser, which offers HTTP/2 and HTTP/1.1,
// reaches the HTTP side of the gRPC port.
func TestWebUIInABrowser(t *testing.T) {
	ts := start(t, server.Options{})
	ctx := context.Background()
	c := ts.client(t)
	if _, err := c.AppendToStream(ctx, "order-1", kurrentdb.AppendToStreamOptions{}, jsonEvent("OrderPlaced", `{"total":42,"lines":[{"sku":"A-1","qty":2}]}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePersistentSubscription(ctx, "order-1", "billing", kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.Start{}}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, 1280, 900)
	base := "https://localhost" + ts.addr[strings.LastIndexByte(ts.addr, ':'):]

	// / leads to the UI, which asks for a login.
	before := ts.next(t) - 1
	b.do(t, "log in",
		chromedp.Navigate(base+"/"),
		page("login"),
		chromedp.SendKeys(chromedp.CSS(`input[name=user]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), server.DefaultAdminPassword),
		chromedp.Click(chromedp.CSS(`.login button[type=submit]`)),
		page("dashboard"),
		// The script draws the charts once it has the figures.
		chromedp.WaitVisible(chromedp.CSS(`#chart-appends svg polyline, #chart-appends svg text`)),
	)
	head := b.text(t, `[data-field=head]`)
	after := ts.next(t) - 1
	if h, err := strconv.ParseUint(head, 10, 64); err != nil || h < before || h > after {
		t.Errorf("dashboard head position %q, want the log's last position, %d to %d", head, before, after)
	}

	// The live tail shows an event appended while it is open.
	b.do(t, "open the live tail",
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/tail"]`)),
		page("tail"),
		chromedp.WaitVisible(chromedp.CSS(`#tail-status.live`)),
		chromedp.WaitVisible(`//tbody[@id="tail-rows"]//a[text()="order-1"]`), // the backlog
	)
	if _, err := ts.store.Append(ctx, "browser-1", cairn.NoStream, cairn.EventData{Type: "Appended", Data: []byte(`{"during":"the test"}`), Metadata: []byte(`{"by":"ada"}`)}); err != nil {
		t.Fatal(err)
	}
	b.do(t, "see the new stream in the live tail",
		chromedp.WaitVisible(`//tbody[@id="tail-rows"]//a[text()="browser-1"]`))

	// The stream browser finds it, reads it, and shows its event.
	b.do(t, "find the new stream",
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/streams"]`)),
		page("streams"),
		chromedp.SendKeys(chromedp.CSS(`input[name=q]`), "browser"),
		chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=q][value="browser"]`)), // the search's page
		chromedp.WaitVisible(`//table//a[text()="browser-1"]`),
		chromedp.Click(`//table//a[text()="browser-1"]`),
		page("stream"),
		chromedp.Click(chromedp.CSS(`table.events tbody a`)),
		page("event"),
		chromedp.WaitVisible(chromedp.CSS(`pre.json span.k`)), // highlighted by the script
	)
	data := b.text(t, `pre.json`)
	if !strings.Contains(data, `"during": "the test"`) {
		t.Errorf("event page data %q, want the appended data pretty-printed", data)
	}

	// The other pages.
	b.do(t, "visit the other pages",
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/subscriptions"]`)),
		page("subscriptions"),
		chromedp.Click(`//table//a[text()="billing"]`),
		page("subscription"),
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/projections"]`)),
		page("projections"),
		chromedp.Click(`//table//a[text()="$by_category"]`),
		page("projection"),
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/scavenge"]`)),
		page("scavenge"),
		chromedp.Click(chromedp.CSS(`form[action="/ui/scavenge/start"] button`)),
		page("scavenge"),
		chromedp.WaitVisible(chromedp.CSS(`[data-field=outcome]`)),
	)
	outcome := b.text(t, `[data-field=outcome]`)
	b.do(t, "log out",
		chromedp.Click(chromedp.CSS(`nav a[href="/ui/"]`)),
		page("dashboard"),
		chromedp.Click(chromedp.CSS(`.logout button`)),
		page("login"),
	)
	if outcome != "running" && outcome != "finished" {
		t.Errorf("scavenge outcome %q, want running or finished", outcome)
	}
	b.checkConsole(t)
}
