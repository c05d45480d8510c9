package webui_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/projections"
	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/users"
	"github.com/cairndb/cairn/server/webui"
	"github.com/cairndb/cairn/subscription"
)

// The users of the fixture: the built-in admin and ops, and ada, a user
// of no group.
const (
	adminPassword = "admin-pw"
	opsPassword   = "ops-pw"
	adaPassword   = "ada-pw"
)

// fixture is a UI over a memory store, served by httptest, with a clock
// the test moves.
type fixture struct {
	t      *testing.T
	store  *cairn.Store
	users  *users.DB
	subs   *subscription.Manager
	projs  *projections.Manager
	scav   *fakeScavenger
	reads  atomic.Uint64
	done   chan struct{}
	srv    *httptest.Server
	client *http.Client

	mu       sync.Mutex
	now      time.Time
	failures []string // "user: reason" of each refusal the host was told of
}

type fixtureOptions struct {
	secure bool
	noSubs bool // no persistent subscriptions, projections or scavenges
}

func newFixture(t *testing.T, fo fixtureOptions) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, store: memstore.Open(), now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), scav: &fakeScavenger{}, done: make(chan struct{})}
	f.users = users.New(f.store, users.Options{Hash: users.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err := f.users.Bootstrap(ctx, users.Builtin{AdminPassword: adminPassword, OpsPassword: opsPassword}); err != nil {
		t.Fatal(err)
	}
	if err := f.users.Create(ctx, users.NewUser{Login: "ada", Password: adaPassword}); err != nil {
		t.Fatal(err)
	}
	host := webui.Host{
		Store:        f.store,
		Users:        f.users,
		Access:       acl.NewChecker(f.store),
		ReadRequests: f.reads.Load,
		AuthFailed: func(r *http.Request, user, reason string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.failures = append(f.failures, user+": "+reason)
		},
		Done: f.done,
	}
	if !fo.noSubs {
		subs, err := subscription.NewManager(f.store, subscription.ManagerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		projs, err := projections.NewManager(ctx, f.store, projections.Options{})
		if err != nil {
			t.Fatal(err)
		}
		f.subs, f.projs = subs, projs
		host.Subscriptions, host.Projections, host.Scavenges = subs, projs, f.scav
	}
	ui := webui.New(host, webui.Options{Secure: fo.secure, Now: f.clock})
	f.srv = httptest.NewServer(ui)
	f.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(func() {
		select {
		case <-f.done:
		default:
			close(f.done)
		}
		f.srv.Close()
		if f.projs != nil {
			if err := f.projs.Close(ctx); err != nil {
				t.Error(err)
			}
		}
		if f.subs != nil {
			if err := f.subs.Close(ctx); err != nil {
				t.Error(err)
			}
		}
		f.store.Close()
	})
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *fixture) authFailures() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.failures...)
}

// who makes a request: basic credentials ("user:password"), a session
// cookie, or nobody.
type who struct {
	basic  string
	cookie *http.Cookie
	header map[string]string
}

var (
	nobody = who{}
	admin  = who{basic: "admin:" + adminPassword}
	ops    = who{basic: "ops:" + opsPassword}
	ada    = who{basic: "ada:" + adaPassword}
)

// response is an answer, read.
type response struct {
	*http.Response
	body string
}

func (f *fixture) do(method, path string, as who, form url.Values) response {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if as.basic != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(as.basic)))
	}
	if as.cookie != nil {
		req.AddCookie(as.cookie)
	}
	for k, v := range as.header {
		req.Header.Set(k, v)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{Response: resp, body: string(b)}
}

func (f *fixture) get(path string, as who) response {
	f.t.Helper()
	return f.do("GET", path, as, nil)
}

func (f *fixture) post(path string, as who, form url.Values) response {
	f.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return f.do("POST", path, as, form)
}

// login logs in through the form and returns the session.
func (f *fixture) login(user, password string) who {
	f.t.Helper()
	r := f.post("/ui/login", nobody, url.Values{"user": {user}, "password": {password}, "next": {"/ui/"}})
	if r.StatusCode != http.StatusSeeOther {
		f.t.Fatalf("login of %s: %d %s", user, r.StatusCode, r.body)
	}
	for _, c := range r.Cookies() {
		if c.Name == "cairn_session" {
			return who{cookie: c}
		}
	}
	f.t.Fatalf("login of %s set no session cookie", user)
	return who{}
}

func (f *fixture) append(stream string, events ...cairn.EventData) cairn.AppendResult {
	f.t.Helper()
	res, err := f.store.Append(context.Background(), stream, cairn.Any, events...)
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

func jsonEvent(typ, data string) cairn.EventData {
	return cairn.EventData{Type: typ, Data: []byte(data)}
}

// expect fails the test unless r has the status and its body holds each
// of wants.
func expect(t *testing.T, what string, r response, status int, wants ...string) {
	t.Helper()
	if r.StatusCode != status {
		t.Errorf("%s: status %d, want %d; body:\n%s", what, r.StatusCode, status, r.body)
		return
	}
	for _, w := range wants {
		if !strings.Contains(r.body, w) {
			t.Errorf("%s: the body lacks %q:\n%s", what, w, r.body)
		}
	}
}

// expectLogin fails the test unless r sends the browser to the login form.
func expectLogin(t *testing.T, what string, r response) {
	t.Helper()
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/ui/login?next=") {
		t.Errorf("%s: %d to %q, want 303 to the login form", what, r.StatusCode, r.Header.Get("Location"))
	}
}

// fakeScavenger records what the UI asks of the server's scavenges.
type fakeScavenger struct {
	mu  sync.Mutex
	cur *webui.Scavenge
}

func (s *fakeScavenger) StartScavenge() (webui.Scavenge, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.cur.Running {
		return *s.cur, false
	}
	s.cur = &webui.Scavenge{ID: fmt.Sprintf("scavenge-%d", time.Now().UnixNano()), Running: true, Started: time.Now(), BytesBefore: 2048, BytesAfter: -1}
	return *s.cur, true
}

func (s *fakeScavenger) StopScavenge(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.cur.ID != id {
		return errors.New("no such scavenge")
	}
	s.cur.Running, s.cur.Stopped, s.cur.Ended, s.cur.BytesAfter = false, true, time.Now(), 1024
	return nil
}

func (s *fakeScavenger) LastScavenge() (webui.Scavenge, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return webui.Scavenge{}, false
	}
	return *s.cur, true
}
