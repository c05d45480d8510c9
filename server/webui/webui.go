package webui

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/projections"
	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/auth"
	"github.com/cairndb/cairn/subscription"
)

// Path is where the UI lives: every path it serves starts with it.
const Path = "/ui/"

// Host is what the UI needs from the server that hosts it: the server
// listens, speaks TLS and routes the requests under [Path] to the UI; the
// UI authenticates them against Users and reads and manages what the
// other fields hand it. Store and Users are required.
type Host struct {
	// Store is the store the UI shows.
	Store *cairn.Store
	// Users authenticates the people who log in: a password at login or
	// in a request's basic credentials, and for each request that brings
	// a session cookie, the user again (a user whose credentials changed
	// since the login, by a new password, new groups, or being disabled
	// or deleted, is logged out).
	Users Authenticator
	// Access decides reads of streams and of $all against the stream
	// ACLs, for the logged-in user. Nil lets every user read everything.
	Access *acl.Checker
	// Links reads streams as KurrentDB clients see them: the standard
	// projections' streams ($ce-, $et-, …) and links resolved on request.
	// Nil reads the Store's streams alone.
	Links *links.Reader
	// Subscriptions runs the persistent subscriptions. Nil shows none.
	Subscriptions *subscription.Manager
	// Projections runs the projections. Nil shows none.
	Projections *projections.Manager
	// Scavenges starts, stops and reports scavenges. Nil offers none.
	Scavenges Scavenger
	// ReadRequests returns how many read requests the server has served
	// so far (reads of streams and $all, subscriptions), which the
	// dashboard draws as a rate. Nil draws no read rate.
	ReadRequests func() uint64
	// AuthFailed is told of each refused login or request: the client,
	// the user name it gave ("" for none) and why, without the password.
	// The server counts and logs them. Nil ignores them.
	AuthFailed func(r *http.Request, user, reason string)
	// Logger receives the UI's diagnostics. Nil discards them.
	Logger *slog.Logger
	// Done is closed when the server shuts down: live tails end. Nil
	// never closes.
	Done <-chan struct{}
}

// Authenticator says who a user is. *users.DB implements it; its errors
// (users.ErrBadCredentials, users.ErrDisabled, users.ErrNotFound) say why
// one is refused.
type Authenticator interface {
	// Authenticate verifies a user name and password.
	Authenticate(ctx context.Context, login, password string) (auth.Principal, error)
	// Principal returns the user named login, who authenticated before.
	Principal(ctx context.Context, login string) (auth.Principal, error)
	// CredentialChanges counts the changes of login's credentials seen so
	// far (password, groups, disabled, deleted; made here or, through the
	// password notifications, by another server). A session ends when
	// the count moves on from what it was before its login.
	CredentialChanges(login string) uint64
}

// Scavenge describes a scavenge, the engine's compaction run in the
// background.
type Scavenge struct {
	ID      string
	Running bool
	// Started is when it began; Ended when it ended (zero while it runs).
	Started, Ended time.Time
	// Stopped says it was stopped before it finished.
	Stopped bool
	// Err is why it failed; nil when it did not.
	Err error
	// BytesBefore and BytesAfter are the store's size on disk when it
	// began and ended; -1 when unknown.
	BytesBefore, BytesAfter int64
}

// Scavenger runs scavenges, one at a time, as KurrentDB's Operations
// service does; the server hands the UI the one its protocol serves, so
// that both see the same scavenge. It checks no permission: the UI lets
// only administrators and operators call StartScavenge and StopScavenge.
type Scavenger interface {
	// StartScavenge starts a scavenge, or returns the running one with
	// started false.
	StartScavenge() (s Scavenge, started bool)
	// StopScavenge stops the running scavenge id.
	StopScavenge(id string) error
	// LastScavenge returns the running scavenge, or the last one, and
	// false when none ever ran.
	LastScavenge() (Scavenge, bool)
}

// Options configure the UI. The zero value is ready to use.
type Options struct {
	// Secure marks the session cookie Secure: the browser sends it only
	// over TLS. Set it when the server speaks TLS.
	Secure bool
	// SessionIdle ends a session that made no request for this long.
	// Zero means 30 minutes.
	SessionIdle time.Duration
	// SessionMax ends a session this long after its login, in use or
	// not. Zero means 12 hours.
	SessionMax time.Duration
	// MaxSessions bounds the sessions held; a login beyond it ends the
	// one least recently used. Zero means 10,000.
	MaxSessions int
	// Now is the clock, for tests. Nil means time.Now.
	Now func() time.Time
}

func (o *Options) ensureDefaults() {
	if o.SessionIdle <= 0 {
		o.SessionIdle = 30 * time.Minute
	}
	if o.SessionMax <= 0 {
		o.SessionMax = 12 * time.Hour
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 10_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

//go:embed static
var staticFiles embed.FS

// UI is the web UI's handler. It is safe for concurrent use.
type UI struct {
	host     Host
	opts     Options
	log      *slog.Logger
	links    *links.Reader
	sessions *sessions
	rates    *sampler
	started  time.Time
	mux      *http.ServeMux
	handler  http.Handler
}

// New returns the UI of host. It panics when host lacks a Store or Users,
// which a server always has.
func New(host Host, opts Options) *UI {
	if host.Store == nil || host.Users == nil {
		panic("webui: a Host needs a Store and Users")
	}
	opts.ensureDefaults()
	if host.Logger == nil {
		host.Logger = slog.New(slog.DiscardHandler)
	}
	if host.AuthFailed == nil {
		host.AuthFailed = func(*http.Request, string, string) {}
	}
	lr := host.Links
	if lr == nil {
		lr = links.NewReader(host.Store, links.Options{})
	}
	u := &UI{
		host:     host,
		opts:     opts,
		log:      host.Logger,
		links:    lr,
		sessions: newSessions(opts),
		rates:    newSampler(host.Store, host.ReadRequests, opts.Now),
		started:  opts.Now(),
		mux:      http.NewServeMux(),
	}
	u.routes()
	// Forms and actions are refused when a browser says another site
	// sent them (Sec-Fetch-Site, Origin): with the SameSite=Strict
	// session cookie, the UI's defence against cross-site requests.
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "cross-origin request refused: the UI accepts forms only from its own pages", http.StatusForbidden)
	}))
	u.handler = csrf.Handler(u.mux)
	return u
}

// ServeHTTP serves the UI's paths, under [Path].
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Nothing but the UI's own files: no inline script, no other origin.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	u.handler.ServeHTTP(w, r)
}

func (u *UI) routes() {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // embedded at build time
	}
	files := http.StripPrefix(Path+"static/", http.FileServerFS(static))
	u.mux.Handle("GET "+Path+"static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	u.mux.HandleFunc("GET "+Path+"login", u.loginPage)
	u.mux.HandleFunc("POST "+Path+"login", u.login)
	u.mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Path, http.StatusMovedPermanently)
	})

	u.page("GET "+Path+"{$}", u.dashboard)
	u.api("GET "+Path+"api/dashboard", u.dashboardJSON)
	u.page("POST "+Path+"logout", u.logout)
	u.page("GET "+Path+"streams", u.streams)
	u.page("GET "+Path+"stream", u.stream)
	u.page("GET "+Path+"event", u.event)
	u.page("GET "+Path+"tail", u.tailPage)
	u.api("GET "+Path+"api/tail", u.tail)
	u.page("GET "+Path+"subscriptions", u.subscriptions)
	u.page("GET "+Path+"subscription", u.subscription)
	u.page("POST "+Path+"subscription/replay", u.replayParked)
	u.page("GET "+Path+"projections", u.projectionsPage)
	u.page("GET "+Path+"projection", u.projection)
	u.page("POST "+Path+"projection/{action}", u.projectionAction)
	u.page("GET "+Path+"scavenge", u.scavengePage)
	u.page("POST "+Path+"scavenge/start", u.startScavenge)
	u.page("POST "+Path+"scavenge/stop", u.stopScavenge)
	u.api("GET "+Path+"api/scavenge", u.scavengeJSON)
	u.page(Path, func(w http.ResponseWriter, r *http.Request, p auth.Principal) {
		u.fail(w, r, p, http.StatusNotFound, errors.New("no such page: "+r.URL.Path))
	})
}

// handlerFunc serves an authenticated request.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p auth.Principal)

// page registers a handler of pages: a request without credentials is sent
// to the login form.
func (u *UI) page(pattern string, h handlerFunc) {
	u.mux.Handle(pattern, u.authenticated(h, false))
}

// api registers a handler that scripts call: a request without
// credentials gets 401.
func (u *UI) api(pattern string, h handlerFunc) {
	u.mux.Handle(pattern, u.authenticated(h, true))
}

// isOperator reports whether p may manage the server: KurrentDB's rule for
// scavenges, persistent subscriptions and projections.
func isOperator(p auth.Principal) bool { return p.IsAdmin() || p.IsOps() }
