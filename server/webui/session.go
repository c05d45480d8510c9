package webui

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cairndb/cairn/server/auth"
	"github.com/cairndb/cairn/server/users"
)

// cookieName is the session cookie's name.
const cookieName = "cairn_session"

// uiHeader marks the requests of the UI's own scripts: refused, they get
// 401 without a basic-auth challenge, so that the browser shows no
// password dialog and the script sends the page to the login form.
const uiHeader = "X-Cairn-UI"

// session is a logged-in user. changes is the user's CredentialChanges
// count before the login: the session is stale once the count moves on.
type session struct {
	user    string
	changes uint64
	created time.Time
	used    time.Time
}

// sessions are the logged-in users, in memory: a restart logs everyone
// out. A session is known by the SHA-256 of its token, so that the map
// holds nothing a browser could present.
type sessions struct {
	opts Options

	mu   sync.Mutex // guards byID; a leaf
	byID map[[32]byte]*session
}

func newSessions(opts Options) *sessions {
	return &sessions{opts: opts, byID: map[[32]byte]*session{}}
}

func tokenKey(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// create starts a session for user, whose credentials had changed changes
// times before the login, and returns its token: 256 random bits.
func (s *sessions) create(user string, changes uint64) string {
	token := rand.Text() + rand.Text() // 2 × 128 bits, base32
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if len(s.byID) >= s.opts.MaxSessions {
		s.dropLeastRecentLocked()
	}
	s.byID[tokenKey(token)] = &session{user: user, changes: changes, created: now, used: now}
	return token
}

// lookup returns the user of a live session, and the count of its
// credentials' changes before the login, and marks it used.
func (s *sessions) lookup(token string) (string, uint64, bool) {
	now := s.opts.Now()
	key := tokenKey(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byID[key]
	if !ok {
		return "", 0, false
	}
	if s.expired(ss, now) {
		delete(s.byID, key)
		return "", 0, false
	}
	ss.used = now
	return ss.user, ss.changes, true
}

func (s *sessions) end(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, tokenKey(token))
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.used) >= s.opts.SessionIdle || now.Sub(ss.created) >= s.opts.SessionMax
}

func (s *sessions) sweepLocked(now time.Time) {
	for k, ss := range s.byID {
		if s.expired(ss, now) {
			delete(s.byID, k)
		}
	}
}

func (s *sessions) dropLeastRecentLocked() {
	var oldest [32]byte
	var at time.Time
	for k, ss := range s.byID {
		if at.IsZero() || ss.used.Before(at) {
			oldest, at = k, ss.used
		}
	}
	delete(s.byID, oldest)
}

// authenticated wraps h: a request must bring basic credentials or the
// cookie of a live session, whose user is looked up again (a user
// disabled or deleted since the login is refused, and a session whose
// user's credentials changed since the login has ended). Refused, a page request
// is sent to the login form; a script's request (api) gets 401, with a
// basic-auth challenge unless the UI's own script sent it.
func (u *UI) authenticated(h handlerFunc, api bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := u.identify(r)
		if err != nil {
			u.log.Warn("web UI: authentication could not be decided", "err", err)
			http.Error(w, "authentication: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if id.refused != "" {
			if id.refused != noCredentials {
				u.host.AuthFailed(r, id.user, id.refused)
			}
			u.refuse(w, r, api)
			return
		}
		h(w, r, id.p)
	})
}

// noCredentials is why a request that brought none, or the cookie of a
// session that ended, is refused: no failure, but a login to come.
const noCredentials = "no credentials"

// identity is who a request says it is.
type identity struct {
	p       auth.Principal // who it is, when it is not refused
	user    string         // the user it named, "" for none
	refused string         // why it is refused; "" when it is not
}

// identify returns who makes r, refused or not, or the error that kept it
// from deciding (the store could not be read).
func (u *UI) identify(r *http.Request) (identity, error) {
	ctx := r.Context()
	if name, password, ok := r.BasicAuth(); ok {
		p, err := u.host.Users.Authenticate(ctx, name, password)
		if why, refused := refusal(err); refused {
			return identity{user: name, refused: why}, nil
		}
		return identity{p: p, user: name}, err
	}
	if _, present := r.Header["Authorization"]; present {
		return identity{refused: "malformed credentials"}, nil
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return identity{refused: noCredentials}, nil
	}
	name, changes, ok := u.sessions.lookup(c.Value)
	if !ok {
		return identity{refused: noCredentials}, nil // ended: log in again
	}
	p, err := u.host.Users.Principal(ctx, name)
	if why, refused := refusal(err); refused {
		u.sessions.end(c.Value)
		return identity{user: name, refused: why}, nil
	}
	if err == nil && u.host.Users.CredentialChanges(name) != changes {
		// A new password (or groups, or a user deleted and created
		// again) since the login: the session ends, and the user logs
		// in again.
		u.sessions.end(c.Value)
		return identity{refused: noCredentials}, nil
	}
	return identity{p: p, user: name}, err
}

// refusal says why err refuses a user, and false when err is nil or an
// error that decides nothing (the store could not be read).
func refusal(err error) (string, bool) {
	switch {
	case errors.Is(err, users.ErrDisabled):
		return "user disabled", true
	case errors.Is(err, users.ErrBadCredentials):
		return "invalid credentials", true
	case errors.Is(err, users.ErrNotFound):
		return "user deleted", true
	}
	return "", false
}

// refuse answers a request that did not authenticate: a browser's page
// request that brought no credentials goes to the login form; any other
// gets 401, with a basic-auth challenge for a client that is not the UI's
// own script.
func (u *UI) refuse(w http.ResponseWriter, r *http.Request, api bool) {
	_, basic := r.Header["Authorization"]
	if api || basic || r.Method != http.MethodGet {
		// The UI's scripts (and its EventSource, which cannot set a
		// header) get no challenge: a browser would show a password
		// dialog in place of the login form.
		if r.Header.Get(uiHeader) == "" && r.Header.Get("Accept") != "text/event-stream" {
			w.Header().Set("WWW-Authenticate", `Basic realm="cairn", charset="UTF-8"`)
		}
		http.Error(w, "Unauthorized: log in at "+Path+"login", http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, Path+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

// safeNext returns where to go after the login: a path of the UI, never
// another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Path) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Path
	}
	return next
}

type loginData struct {
	Next  string
	User  string
	Error string
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, http.StatusOK, "login", auth.Principal{}, "Log in", loginData{Next: safeNext(r.URL.Query().Get("next"))})
}

// login checks the form's user and password and starts a session.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	name, password := r.PostForm.Get("user"), r.PostForm.Get("password")
	next := safeNext(r.PostForm.Get("next"))
	data := loginData{Next: next, User: name}
	// Read before the password is verified: a change of the user's
	// credentials from then on ends the session.
	changes := u.host.Users.CredentialChanges(name)
	_, err := u.host.Users.Authenticate(r.Context(), name, password)
	if why, refused := refusal(err); refused {
		u.host.AuthFailed(r, name, why)
		data.Error = "Wrong user name or password, or the user is disabled."
		u.render(w, r, http.StatusUnauthorized, "login", auth.Principal{}, "Log in", data)
		return
	}
	if err != nil {
		data.Error = "The server could not check the password: " + err.Error()
		u.render(w, r, http.StatusServiceUnavailable, "login", auth.Principal{}, "Log in", data)
		return
	}
	http.SetCookie(w, u.cookie(u.sessions.create(name, changes), 0))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if c, err := r.Cookie(cookieName); err == nil {
		u.sessions.end(c.Value)
	}
	http.SetCookie(w, u.cookie("", -1))
	http.Redirect(w, r, Path+"login", http.StatusSeeOther)
}

// cookie is the session cookie: for the UI's paths only, out of scripts'
// reach, sent by the browser to this site alone; maxAge -1 deletes it.
func (u *UI) cookie(token string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     cookieName,
		Value:    token,
		Path:     Path,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   u.opts.Secure,
		SameSite: http.SameSiteStrictMode,
	}
}
