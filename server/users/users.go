package users

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairndb/cairn"
)

// The streams and event types in which users are kept, as KurrentDB keeps
// them.
const (
	// UsersStream lists the users ever created: one EventUser per
	// creation, whose data is the login name (not JSON).
	UsersStream = "$users"
	// UserStreamPrefix starts the stream of one user, "$user-" and its
	// login name: an EventUserCreated, then an EventUserUpdated per change,
	// each holding the whole record (a JSON object: loginName, fullName,
	// salt, hash, disabled, groups). Deleting a user deletes its stream.
	UserStreamPrefix = "$user-"
	// PasswordNotificationsStream gets an EventPasswordChanged
	// ({"loginName": …}) whenever a user's credentials change: password,
	// groups, disabled, deleted. Servers sharing the Store drop the
	// credentials they cached for that user when they read one.
	PasswordNotificationsStream = "$users-password-notifications"

	EventUser            = "$User"
	EventUserCreated     = "$UserCreated"
	EventUserUpdated     = "$UserUpdated"
	EventPasswordChanged = "$PasswordChanged"

	// eventMetadata is the type of a stream metadata event.
	eventMetadata = "$metadata"
	metaPrefix    = "$$"
)

// StreamOf returns the stream that keeps the user named login.
func StreamOf(login string) string { return UserStreamPrefix + login }

// Errors of the user database.
var (
	// ErrNotFound: no user has that login name (or it was deleted).
	ErrNotFound = errors.New("user not found")
	// ErrExists: a user with that login name exists.
	ErrExists = errors.New("user exists")
	// ErrBadCredentials: no such user, or the password is wrong.
	ErrBadCredentials = errors.New("invalid credentials")
	// ErrDisabled: the user exists but is disabled.
	ErrDisabled = errors.New("user is disabled")
)

// User is what the database tells of a user; its password never leaves it.
type User struct {
	Login    string
	FullName string
	Groups   []string
	Disabled bool
	// Updated is when the user was created or last changed.
	Updated time.Time
}

// record is a user as stored: the data of its events, in KurrentDB's
// field names. Hash is a PHC string (see hashPassword), Salt its salt.
type record struct {
	LoginName string   `json:"loginName"`
	FullName  string   `json:"fullName"`
	Salt      string   `json:"salt"`
	Hash      string   `json:"hash"`
	Disabled  bool     `json:"disabled"`
	Groups    []string `json:"groups"`
}

// Options configure a [DB]. The zero value is ready to use.
type Options struct {
	// Hash are the Argon2id parameters of new password hashes. Zero means
	// DefaultHashParams.
	Hash HashParams
	// HashConcurrency bounds the passwords hashed or verified at once
	// (each holds Hash.MemoryKiB); others wait. Zero means GOMAXPROCS.
	HashConcurrency int
	// CacheTTL bounds how long a verified password is trusted without
	// hashing it again. A change through this DB drops the user's cached
	// credentials at once; one made by another server sharing the Store
	// when [DB.Watch] reads its notification, and at the latest after
	// CacheTTL. Zero means DefaultCacheTTL.
	CacheTTL time.Duration
	// Logger receives diagnostics. Nil discards them.
	Logger *slog.Logger
}

// DefaultCacheTTL is the default of [Options.CacheTTL].
const DefaultCacheTTL = 30 * time.Second

// DB is the user database of a Store: users and their groups, kept in the
// Store's system streams as KurrentDB keeps them, with passwords hashed by
// Argon2id. It authenticates requests, and caches what it verified (see
// [DB.Authenticate]) so that a request costs a hash only once per
// [Options.CacheTTL].
//
// A DB is safe for concurrent use. Changes to one user are serialised by
// the Store: each writes with the version it read, and one that loses a
// race reads again and retries.
type DB struct {
	store *cairn.Store // the system view
	opts  Options
	log   *slog.Logger

	hashSlots chan struct{} // a slot per hash running
	cacheKey  [32]byte      // keys the credential cache
	keys      sync.Pool     // of *keyHash: the cache key's hash state
	dummyOnce sync.Once
	dummy     string // a hash verified for unknown users, so that they take as long

	// mu guards the credential cache and changes. gens counts the
	// changes of each user seen, epoch the drops of the whole cache; an
	// entry made under older counts is stale. changes counts the changes
	// of each user's credentials, those that write a password
	// notification (see CredentialChanges).
	mu      sync.Mutex
	gens    map[string]uint64
	epoch   uint64
	cache   map[[32]byte]cached
	changes map[string]uint64
	// flights are the verifications under way, by credentials (see
	// flight).
	flights map[[32]byte]*flight
}

// New returns the user database kept in store. It reads and writes nothing
// until it is used; [DB.Bootstrap] creates the built-in users.
func New(store *cairn.Store, opts Options) *DB {
	if opts.Hash == (HashParams{}) {
		opts.Hash = DefaultHashParams
	}
	if opts.HashConcurrency <= 0 {
		opts.HashConcurrency = runtime.GOMAXPROCS(0)
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	db := &DB{
		store:     store.System(),
		opts:      opts,
		log:       opts.Logger,
		hashSlots: make(chan struct{}, opts.HashConcurrency),
		gens:      map[string]uint64{},
		cache:     map[[32]byte]cached{},
		changes:   map[string]uint64{},
		flights:   map[[32]byte]*flight{},
	}
	if _, err := rand.Read(db.cacheKey[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return db
}

// ValidateLogin returns an error when login cannot name a user: it must be
// a valid stream name once prefixed with "$$$user-" (non-empty UTF-8
// without control characters, at most 504 bytes), must not start with '$'
// (the system's roles, such as $admins, do) and must not hold ':', which
// basic authentication cannot carry in a user name.
func ValidateLogin(login string) error {
	switch {
	case login == "":
		return &cairn.InvalidArgumentError{Field: "login_name", Reason: "must not be empty"}
	case strings.HasPrefix(login, "$"):
		return &cairn.InvalidArgumentError{Field: "login_name", Reason: fmt.Sprintf("%q starts with '$', which is reserved for the system's roles", login)}
	case strings.Contains(login, ":"):
		return &cairn.InvalidArgumentError{Field: "login_name", Reason: fmt.Sprintf("%q holds ':', which basic authentication cannot carry in a user name", login)}
	}
	if err := cairn.ValidateSystemStreamID(metaPrefix + StreamOf(login)); err != nil {
		var iae *cairn.InvalidArgumentError
		if errors.As(err, &iae) {
			return &cairn.InvalidArgumentError{Field: "login_name", Reason: iae.Reason}
		}
		return err
	}
	return nil
}

// validGroups checks the groups of a user: names without control
// characters, as a stream ACL may name them.
func validGroups(groups []string) error {
	for i, g := range groups {
		if err := cairn.ValidateSystemStreamID(g); err != nil || g == cairn.AllStream {
			return &cairn.InvalidArgumentError{Field: fmt.Sprintf("groups[%d]", i), Reason: fmt.Sprintf("%q is not a group name: non-empty, at most 512 bytes, no control characters", g)}
		}
	}
	return nil
}

// stored is a user's record with the version and time of the event that
// holds it.
type stored struct {
	record
	version int64
	updated time.Time
}

func (s stored) user() User {
	return User{Login: s.LoginName, FullName: s.FullName, Groups: slices.Clone(s.Groups), Disabled: s.Disabled, Updated: s.updated}
}

// read returns the user named login as stored, or ErrNotFound.
func (db *DB) read(ctx context.Context, login string) (stored, error) {
	events, err := db.store.ReadStream(ctx, StreamOf(login), cairn.StreamEnd, 1, cairn.Backward)
	if errors.Is(err, cairn.ErrStreamNotFound) || (err == nil && len(events) == 0) {
		return stored{}, fmt.Errorf("%w: %q", ErrNotFound, login)
	}
	if err != nil {
		return stored{}, err
	}
	e := events[0]
	var r record
	if err := json.Unmarshal(e.Data, &r); err != nil {
		return stored{}, fmt.Errorf("user %q: the record at version %d of %s is not a user: %w", login, e.Version, e.StreamID, err)
	}
	r.LoginName = login
	return stored{record: r, version: e.Version, updated: e.Created}, nil
}

// Get returns the user named login, or ErrNotFound.
func (db *DB) Get(ctx context.Context, login string) (User, error) {
	if err := ValidateLogin(login); err != nil {
		return User{}, fmt.Errorf("%w: %q", ErrNotFound, login)
	}
	s, err := db.read(ctx, login)
	if err != nil {
		return User{}, err
	}
	return s.user(), nil
}

// List returns every user, by login name.
func (db *DB) List(ctx context.Context) ([]User, error) {
	logins, err := db.everCreated(ctx)
	if err != nil {
		return nil, err
	}
	var out []User
	for _, login := range logins {
		s, err := db.read(ctx, login)
		if errors.Is(err, ErrNotFound) {
			continue // deleted
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s.user())
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Login, b.Login) })
	return out, nil
}

// everCreated returns the login names of $users, each once, in order.
func (db *DB) everCreated(ctx context.Context) ([]string, error) {
	var logins []string
	seen := map[string]bool{}
	for e, err := range db.store.Stream(ctx, UsersStream, 0, cairn.Forward) {
		if errors.Is(err, cairn.ErrStreamNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		login := string(e.Data)
		if !seen[login] {
			seen[login] = true
			logins = append(logins, login)
		}
	}
	return logins, nil
}
