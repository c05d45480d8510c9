package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every page, script call and action refuses a request without
// credentials: a page sends the browser to the login form, a script's
// call gets 401.
func TestEveryPathAuthenticates(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	pages := []string{"/ui/", "/ui/streams", "/ui/stream?id=order-1", "/ui/event?stream=order-1&version=0",
		"/ui/tail", "/ui/subscriptions", "/ui/subscription?stream=s&group=g", "/ui/projections",
		"/ui/projection?name=p", "/ui/scavenge", "/ui/nope"}
	for _, p := range pages {
		expectLogin(t, "GET "+p, f.get(p, nobody))
		// A client that brings basic credentials is told they are wrong.
		if r := f.get(p, who{basic: "admin:wrong"}); r.StatusCode != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s with a wrong password: %d, want 401 with a challenge", p, r.StatusCode)
		}
	}
	if r := f.get("/ui/", nobody); r.Header.Get("Location") != "/ui/login?next=%2Fui%2F" {
		t.Errorf("the login form is not told where to come back: %q", r.Header.Get("Location"))
	}
	scripts := []string{"/ui/api/dashboard", "/ui/api/tail", "/ui/api/scavenge"}
	for _, p := range scripts {
		r := f.get(p, nobody)
		if r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("GET %s without credentials: %d, challenge %q; want 401 with a basic challenge", p, r.StatusCode, r.Header.Get("WWW-Authenticate"))
		}
		// The UI's own scripts (and an EventSource) get no challenge,
		// which would make the browser show a password dialog.
		for _, h := range []map[string]string{{"X-Cairn-UI": "1"}, {"Accept": "text/event-stream"}} {
			r := f.get(p, who{header: h})
			if r.StatusCode != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != "" {
				t.Errorf("GET %s by the UI's script (%v): %d, challenge %q; want 401 without one", p, h, r.StatusCode, r.Header.Get("WWW-Authenticate"))
			}
		}
	}
	actions := []string{"/ui/logout", "/ui/subscription/replay", "/ui/projection/enable", "/ui/scavenge/start", "/ui/scavenge/stop"}
	for _, p := range actions {
		if r := f.post(p, nobody, nil); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without credentials: %d, want 401", p, r.StatusCode)
		}
	}
	if f.scav.cur != nil {
		t.Error("a refused request started a scavenge")
	}
	// Wrong credentials are reported to the host (which counts and logs
	// them); a request with none is not a failure.
	if got := f.authFailures(); len(got) != len(pages) || got[0] != "admin: invalid credentials" {
		t.Errorf("failures told to the host: %q, want one per wrong password", got)
	}
	// The login form, its style and script need no credentials.
	expect(t, "the login form", f.get("/ui/login", nobody), http.StatusOK, `<form method="post" action="/ui/login">`)
	for _, p := range []string{"/ui/static/app.js", "/ui/static/app.css", "/ui/static/favicon.svg"} {
		expect(t, p, f.get(p, nobody), http.StatusOK)
	}
	// /ui goes to /ui/.
	if r := f.get("/ui", nobody); r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
}

// Basic credentials work on every request, as the node's HTTP API takes
// them; malformed ones, and a disabled user's, are refused.
func TestBasicCredentials(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	expect(t, "admin", f.get("/ui/", admin), http.StatusOK, "Dashboard", `<span class="who"`, ">admin<")
	expect(t, "ada", f.get("/ui/", ada), http.StatusOK, ">ada<")
	r := f.get("/ui/api/dashboard", who{header: map[string]string{"Authorization": "Bearer abc"}})
	expect(t, "malformed credentials", r, http.StatusUnauthorized)
	if err := f.users.Disable(context.Background(), "ada"); err != nil {
		t.Fatal(err)
	}
	expect(t, "a disabled user", f.get("/ui/api/dashboard", ada), http.StatusUnauthorized)
	if got := f.authFailures(); !slices.Equal(got, []string{": malformed credentials", "ada: user disabled"}) {
		t.Errorf("failures told to the host: %q", got)
	}
}

// The login form starts a session whose cookie a browser keeps to this
// site's /ui/ only, out of scripts' reach; the user is looked up at each
// request, so that one disabled since is logged out; a session ends after
// its idle time, at logout, and with a wrong password none starts.
func TestLoginSession(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	r := f.post("/ui/login", nobody, url.Values{"user": {"ada"}, "password": {"wrong"}, "next": {"/ui/streams"}})
	expect(t, "a wrong password", r, http.StatusUnauthorized, "Wrong user name or password", `value="ada"`)
	if len(r.Cookies()) != 0 {
		t.Errorf("a wrong password set cookies: %v", r.Cookies())
	}
	if got := f.authFailures(); !slices.Equal(got, []string{"ada: invalid credentials"}) {
		t.Errorf("failures told to the host: %q", got)
	}

	r = f.post("/ui/login", nobody, url.Values{"user": {"ada"}, "password": {adaPassword}, "next": {"/ui/streams?q=x"}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/ui/streams?q=x" {
		t.Fatalf("login: %d to %q, want 303 to the page asked for", r.StatusCode, r.Header.Get("Location"))
	}
	cookies := r.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login set %d cookies, want 1", len(cookies))
	}
	c := cookies[0]
	if c.Name != "cairn_session" || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" || c.Secure || len(c.Value) < 40 {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/, not Secure without TLS, a long token", c)
	}
	session := who{cookie: c}
	expect(t, "a page with the session", f.get("/ui/", session), http.StatusOK, ">ada<")

	// Idle for less than 30 minutes, then for 30.
	f.advance(29 * time.Minute)
	expect(t, "after 29 idle minutes", f.get("/ui/", session), http.StatusOK)
	f.advance(30 * time.Minute)
	expectLogin(t, "after 30 idle minutes", f.get("/ui/", session))

	// A user disabled since the login is logged out, and stays so.
	session = f.login("ada", adaPassword)
	ctx := context.Background()
	if err := f.users.Disable(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	expectLogin(t, "a disabled user's session", f.get("/ui/", session))
	if err := f.users.Enable(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	expectLogin(t, "the session of a user disabled then enabled", f.get("/ui/", session))

	// Logout ends the session and deletes the cookie.
	session = f.login("ada", adaPassword)
	r = f.post("/ui/logout", session, nil)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/ui/login" {
		t.Errorf("logout: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	if cs := r.Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Errorf("logout cookies %+v, want the session cookie deleted", cs)
	}
	expectLogin(t, "after logout", f.get("/ui/", session))

	// No session lasts more than 12 hours, in use or not.
	session = f.login("ada", adaPassword)
	for range 25 {
		f.advance(29 * time.Minute)
		if r := f.get("/ui/api/dashboard", session); r.StatusCode != http.StatusOK {
			break
		}
	}
	if r := f.get("/ui/api/dashboard", session); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("a session used for 12 hours: %d, want 401", r.StatusCode)
	}
}

// The login goes back only to a page of the UI, never to another site.
func TestLoginNext(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for next, want := range map[string]string{
		"/ui/tail?stream=a":        "/ui/tail?stream=a",
		"https://evil.example/ui/": "/ui/",
		"//evil.example/ui/":       "/ui/",
		"/ui/\\evil":               "/ui/",
		"/metrics":                 "/ui/",
		"":                         "/ui/",
	} {
		r := f.post("/ui/login", nobody, url.Values{"user": {"ada"}, "password": {adaPassword}, "next": {next}})
		if loc := r.Header.Get("Location"); r.StatusCode != http.StatusSeeOther || loc != want {
			t.Errorf("next %q: %d to %q, want %q", next, r.StatusCode, loc, want)
		}
	}
	r := f.get("/ui/login?next="+url.QueryEscape("https://evil.example/"), nobody)
	expect(t, "the form of an outside next", r, http.StatusOK, `name="next" value="/ui/"`)
}

// Over TLS the cookie is Secure: the browser sends it over TLS only.
func TestSecureCookie(t *testing.T) {
	f := newFixture(t, fixtureOptions{secure: true})
	r := f.post("/ui/login", nobody, url.Values{"user": {"ada"}, "password": {adaPassword}})
	if cs := r.Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Errorf("cookies %+v, want one Secure", cs)
	}
}

// A form that another site makes a browser send is refused, logged in or
// not; the headers keep the pages from being framed or sniffed.
func TestCrossSiteAndHeaders(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	session := f.login("admin", adminPassword)
	crossSite := who{cookie: session.cookie, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}
	for _, p := range []string{"/ui/scavenge/start", "/ui/logout", "/ui/login"} {
		if r := f.post(p, crossSite, url.Values{"user": {"admin"}, "password": {adminPassword}}); r.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site POST %s: %d, want 403", p, r.StatusCode)
		}
	}
	other := who{cookie: session.cookie, header: map[string]string{"Origin": "https://evil.example"}}
	if r := f.post("/ui/scavenge/start", other, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("POST from another origin: %d, want 403", r.StatusCode)
	}
	if f.scav.cur != nil {
		t.Error("a cross-site form started a scavenge")
	}
	same := who{cookie: session.cookie, header: map[string]string{"Sec-Fetch-Site": "same-origin"}}
	if r := f.post("/ui/scavenge/start", same, nil); r.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin POST: %d, want 303", r.StatusCode)
	}
	r := f.get("/ui/", session)
	for h, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
	} {
		if !strings.Contains(r.Header.Get(h), want) {
			t.Errorf("header %s = %q, want %q in it", h, r.Header.Get(h), want)
		}
	}
}
