package users

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn/server/auth"
)

// cached is a verified credential: who it is, until when it is trusted,
// and when it was verified.
type cached struct {
	p       auth.Principal
	at      stamp
	expires time.Time
}

// stamp is when a credential was verified: the count of the user's changes
// and of the drops of the whole cache seen then. An entry whose stamp is
// not the current one is stale.
type stamp struct {
	gen, epoch uint64
}

// maxCached bounds the credential cache before expired entries are swept.
const maxCached = 4096

// Authenticate returns the principal of a user name and password: the user
// and its groups. An unknown user or a wrong password is
// ErrBadCredentials, a disabled user ErrDisabled; an unknown user costs the
// same hash as a known one, so that timing does not tell which exist.
//
// What it verified it trusts for [Options.CacheTTL] without hashing again:
// the cache holds a keyed hash (HMAC-SHA-256, with a key of this process)
// of the name and password, never the password. A change of the user
// through this DB — password, groups, disabled, deleted — drops its
// entries before the change returns; one through another server when
// [DB.Watch] reads its notification.
func (db *DB) Authenticate(ctx context.Context, login, password string) (auth.Principal, error) {
	p, _, _, err := db.authenticate(ctx, login, password)
	return p, err
}

// A Memo remembers the credentials that one client connection last
// authenticated with ([DB.AuthenticateMemo]), so that its next requests
// that send the same are recognised ([DB.Recall]) without the keyed hash
// of the cache. It holds the credentials as the client sent them: keep it
// no longer than the connection, which holds them anyway (HTTP/2's header
// table). The zero Memo remembers nothing; it is safe for concurrent use.
type Memo struct {
	last atomic.Pointer[memoEntry]
}

type memoEntry struct {
	credentials string
	login       string
	c           cached
}

// Recall returns the principal that credentials, the header a request of
// m's connection sent, authenticated, when they are those m remembers, and
// they would still be trusted from the cache: the user did not change
// since and [Options.CacheTTL] has not passed since they were verified.
func (db *DB) Recall(m *Memo, credentials string) (auth.Principal, bool) {
	e := m.last.Load()
	if e == nil || e.credentials != credentials || !time.Now().Before(e.c.expires) {
		return auth.Principal{}, false
	}
	db.mu.Lock()
	now := db.stampLocked(e.login)
	db.mu.Unlock()
	if now != e.c.at {
		return auth.Principal{}, false
	}
	return e.c.p, true
}

// AuthenticateMemo is Authenticate for login and password parsed from
// credentials, the header a request of m's connection sent; what it
// verified, m remembers for Recall.
func (db *DB) AuthenticateMemo(ctx context.Context, m *Memo, credentials, login, password string) (auth.Principal, error) {
	p, c, ok, err := db.authenticate(ctx, login, password)
	if err == nil && ok {
		m.last.Store(&memoEntry{credentials: credentials, login: login, c: c})
	}
	return p, err
}

// authenticate is Authenticate; it also returns the cache entry that now
// trusts the credentials, and false when none does (the user changed
// during the verification).
func (db *DB) authenticate(ctx context.Context, login, password string) (auth.Principal, cached, bool, error) {
	key := db.key("password", login, password)
	for {
		at, c, ok := db.lookup(key, login)
		if ok {
			return c.p, c, true, nil
		}
		f, lead := db.join(key, at)
		if lead {
			f.p, f.c, f.ok, f.err = db.verify(ctx, key, at, login, password)
			db.land(key, f)
			return f.p, f.c, f.ok, f.err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return auth.Principal{}, cached{}, false, ctx.Err()
		}
		if !isContextErr(f.err) {
			return f.p, f.c, f.ok, f.err
		}
		// The verification gave up on its own request's context: try
		// again, perhaps leading it.
	}
}

// A flight is a verification of credentials under way, which the requests
// that bring the same credentials at once wait for rather than hash them
// again: a pool of connections that open together (clients reconnecting
// after a restart, say) costs one hash, not one per connection.
type flight struct {
	at      stamp // the user's changes when it started
	waiters int   // requests waiting for it; guarded by DB.mu
	done    chan struct{}
	// Set before done is closed.
	p   auth.Principal
	c   cached
	ok  bool
	err error
}

// join returns the verification of the credentials key that started under
// at, and false; or, when none runs, a new one that the caller leads, and
// true. One started under other changes of the user is not joined: what
// it read may be what a change replaced. The new one takes its place for
// the requests that follow.
func (db *DB) join(key [32]byte, at stamp) (*flight, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if f, ok := db.flights[key]; ok && f.at == at {
		f.waiters++
		return f, false
	}
	f := &flight{at: at, done: make(chan struct{})}
	db.flights[key] = f
	return f, true
}

// land ends f, the verification of key, and wakes its waiters.
func (db *DB) land(key [32]byte, f *flight) {
	db.mu.Lock()
	if db.flights[key] == f {
		delete(db.flights, key)
	}
	db.mu.Unlock()
	close(f.done)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// verify verifies login and password against the user's record, and
// caches what it verified under key unless the user changed since at.
func (db *DB) verify(ctx context.Context, key [32]byte, at stamp, login, password string) (auth.Principal, cached, bool, error) {
	if ValidateLogin(login) != nil {
		return auth.Principal{}, cached{}, false, db.refuse(ctx, password)
	}
	cur, err := db.read(ctx, login)
	if errors.Is(err, ErrNotFound) {
		return auth.Principal{}, cached{}, false, db.refuse(ctx, password)
	}
	if err != nil {
		return auth.Principal{}, cached{}, false, err
	}
	match, err := db.verifyPassword(ctx, password, cur.Hash)
	if err != nil {
		return auth.Principal{}, cached{}, false, err
	}
	if !match {
		return auth.Principal{}, cached{}, false, fmt.Errorf("%w: wrong password for %q", ErrBadCredentials, login)
	}
	if cur.Disabled {
		return auth.Principal{}, cached{}, false, fmt.Errorf("%w: %q", ErrDisabled, login)
	}
	p := principal(cur)
	c, ok := db.remember(key, login, at, p)
	return p, c, ok, nil
}

// refuse spends a hash on a user that does not exist, as verifying one
// that does would, and returns ErrBadCredentials.
func (db *DB) refuse(ctx context.Context, password string) error {
	db.dummyOnce.Do(func() {
		// The dummy's cost is that of new hashes; if it cannot be made,
		// refusals are merely faster.
		if h, _, err := db.hashPassword(context.WithoutCancel(ctx), "cairn: no such user"); err == nil {
			db.dummy = h
		}
	})
	if db.dummy != "" {
		if _, err := db.verifyPassword(ctx, password, db.dummy); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: no such user", ErrBadCredentials)
}

// Principal returns the principal of the user named login, who
// authenticated by other means than a password (a client certificate):
// ErrNotFound when there is no such user, ErrDisabled when it is disabled.
// It is cached as Authenticate's results are.
func (db *DB) Principal(ctx context.Context, login string) (auth.Principal, error) {
	key := db.key("principal", login, "")
	at, c, ok := db.lookup(key, login)
	if ok {
		return c.p, nil
	}
	if ValidateLogin(login) != nil {
		return auth.Principal{}, fmt.Errorf("%w: %q", ErrNotFound, login)
	}
	cur, err := db.read(ctx, login)
	if err != nil {
		return auth.Principal{}, err
	}
	if cur.Disabled {
		return auth.Principal{}, fmt.Errorf("%w: %q", ErrDisabled, login)
	}
	p := principal(cur)
	db.remember(key, login, at, p)
	return p, nil
}

func principal(s stored) auth.Principal {
	return auth.Principal{Name: s.LoginName, Groups: slices.Clone(s.Groups)}
}

// key returns the cache key of a credential, a keyed hash: the cache never
// holds a password. It runs on every authenticated request, so it reuses
// its hash state and buffer (db.keys) and allocates nothing.
func (db *DB) key(kind, login, secret string) [32]byte {
	h, _ := db.keys.Get().(*keyHash)
	if h == nil {
		h = &keyHash{mac: hmac.New(sha256.New, db.cacheKey[:])}
	}
	h.buf = h.buf[:0]
	for _, s := range [...]string{kind, login, secret} {
		// Length-prefixed, so that no two triples share an encoding.
		h.buf = strconv.AppendInt(h.buf, int64(len(s)), 10)
		h.buf = append(h.buf, ':')
		h.buf = append(h.buf, s...)
	}
	h.mac.Reset()
	h.mac.Write(h.buf) // a hash.Hash never fails to write
	var k [32]byte
	h.mac.Sum(k[:0])
	clear(h.buf) // it held the password
	db.keys.Put(h)
	return k
}

// keyHash is the state of key, kept in db.keys between calls.
type keyHash struct {
	mac hash.Hash
	buf []byte
}

// lookup returns the cached principal of key if it is still trusted, and
// in any case the stamp of login to verify under.
func (db *DB) lookup(key [32]byte, login string) (stamp, cached, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	now := db.stampLocked(login)
	e, ok := db.cache[key]
	if !ok || e.at != now || !time.Now().Before(e.expires) {
		return now, cached{}, false
	}
	return now, e, true
}

func (db *DB) stampLocked(login string) stamp {
	return stamp{gen: db.gens[login], epoch: db.epoch}
}

// remember caches p under key, unless login changed, or the cache was
// dropped, since at: a credential verified against an old record must not
// outlive it. It returns the entry it cached, and false when it did not.
func (db *DB) remember(key [32]byte, login string, at stamp, p auth.Principal) (cached, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.stampLocked(login) != at {
		return cached{}, false
	}
	now := time.Now()
	if len(db.cache) >= maxCached {
		db.sweepLocked(now)
	}
	e := cached{p: p, at: at, expires: now.Add(db.opts.CacheTTL)}
	db.cache[key] = e
	return e, true
}

// sweepLocked drops the entries that expired or went stale; if none did,
// it drops them all, as a cache this full holds many live credentials.
func (db *DB) sweepLocked(now time.Time) {
	for k, e := range db.cache {
		if !now.Before(e.expires) || e.at != db.stampLocked(e.p.Name) {
			delete(db.cache, k)
		}
	}
	if len(db.cache) >= maxCached {
		clear(db.cache)
	}
}

// invalidate drops what is cached of login: its change count moves on, so
// that its entries no longer match, and so does any verification running.
func (db *DB) invalidate(login string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.gens[login]++
}

// changed records a change of login's credentials, made through this DB
// or read from the password notifications: what is cached of login is
// dropped, and its CredentialChanges count moves on.
func (db *DB) changed(login string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.gens[login]++
	db.changes[login]++
}

// CredentialChanges returns how many changes of login's credentials this
// DB has seen since it was made: a password changed or reset, groups
// updated, the user disabled or deleted, through this DB or through
// another server sharing the Store (read from the password notifications
// by [DB.Watch]). The count only grows, and moves on before the change
// through this DB returns. A session opened when the count was n, read
// before the password was verified, is stale once the count is not n: so
// a change of a user ends its sessions, as the web UI's.
func (db *DB) CredentialChanges(login string) uint64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.changes[login]
}

// invalidateAll drops the whole cache.
func (db *DB) invalidateAll() {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.epoch++
	clear(db.cache)
}
