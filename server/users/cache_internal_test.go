package users

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairndb/cairn/memstore"
)

// A credential verified once is trusted without a hash: with the only
// hashing slot taken, it still authenticates, while one never verified
// waits for the slot.
func TestCachedCredentialsCostNoHash(t *testing.T) {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	db := New(store, Options{HashConcurrency: 1, Hash: HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err := db.Create(ctx, NewUser{Login: "ada", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "ada", "s3cret"); err != nil {
		t.Fatal(err)
	}

	db.hashSlots <- struct{}{} // no hash can run now
	for range 100 {
		if _, err := db.Authenticate(ctx, "ada", "s3cret"); err != nil {
			t.Fatalf("a cached credential: %v", err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := db.Authenticate(short, "ada", "other"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a credential never verified: %v, want it to wait for a hash", err)
	}
	<-db.hashSlots

	// A change drops the cached credential: the next call hashes again.
	if err := db.ResetPassword(ctx, "ada", "n3w"); err != nil {
		t.Fatal(err)
	}
	db.hashSlots <- struct{}{}
	short, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := db.Authenticate(short, "ada", "s3cret"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the old credential after a reset: %v, want it verified again", err)
	}
	<-db.hashSlots
}

// The cache expires: after CacheTTL a credential is verified again.
func TestCachedCredentialsExpire(t *testing.T) {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	db := New(store, Options{HashConcurrency: 1, CacheTTL: time.Nanosecond, Hash: HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err := db.Create(ctx, NewUser{Login: "ada", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "ada", "s3cret"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	db.hashSlots <- struct{}{}
	defer func() { <-db.hashSlots }()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := db.Authenticate(short, "ada", "s3cret"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an expired credential: %v, want it verified again", err)
	}
}

// The watcher drops a credential another server changed, from the
// notification alone: here it has started (and dropped the cache it found)
// before the credential is cached and changed.
func TestWatchReadsNotifications(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := memstore.Open()
	defer store.Close()
	// A TTL longer than the test: only a notification can drop the entry.
	opts := Options{CacheTTL: time.Hour, Hash: HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}}
	here, there := New(store, opts), New(store, opts)
	if err := there.Create(ctx, NewUser{Login: "ada", Password: "one"}); err != nil {
		t.Fatal(err)
	}
	watched := make(chan error, 1)
	go func() { watched <- here.Watch(ctx) }()
	for started := false; !started; {
		here.mu.Lock()
		started = here.epoch > 0
		here.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	if _, err := here.Authenticate(ctx, "ada", "one"); err != nil {
		t.Fatal(err)
	}
	if err := there.ResetPassword(ctx, "ada", "two"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := here.Authenticate(ctx, "ada", "one")
		if errors.Is(err, ErrBadCredentials) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other server's reset is not in force here: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-watched; err != nil {
		t.Errorf("Watch: %v", err)
	}
}

// A connection's Memo recalls the credentials it authenticated with as
// long as the cache would trust them: not other credentials, not after a
// change of the user, a drop of the whole cache or the TTL.
func TestMemoRecallsWhatTheCacheTrusts(t *testing.T) {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	db := New(store, Options{Hash: HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	for _, login := range []string{"ada", "bob"} {
		if err := db.Create(ctx, NewUser{Login: login, Password: "s3cret"}); err != nil {
			t.Fatal(err)
		}
	}
	const header = "Basic YWRhOnMzY3JldA=="
	var m Memo
	if _, ok := db.Recall(&m, header); ok {
		t.Fatal("an empty memo recalled credentials")
	}
	remember := func() {
		t.Helper()
		if p, err := db.AuthenticateMemo(ctx, &m, header, "ada", "s3cret"); err != nil || p.Name != "ada" {
			t.Fatalf("AuthenticateMemo: %+v, %v", p, err)
		}
		if p, ok := db.Recall(&m, header); !ok || p.Name != "ada" {
			t.Fatalf("Recall after AuthenticateMemo: %+v, %v", p, ok)
		}
	}
	remember()
	if _, ok := db.Recall(&m, header+"x"); ok {
		t.Error("other credentials recalled")
	}
	if _, err := db.AuthenticateMemo(ctx, &m, "Basic wrong", "ada", "wrong"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("a wrong password: %v", err)
	}
	if _, ok := db.Recall(&m, "Basic wrong"); ok {
		t.Error("refused credentials recalled")
	}
	if _, ok := db.Recall(&m, header); !ok {
		t.Error("a refusal made the memo forget what it verified")
	}
	if err := db.Disable(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, ok := db.Recall(&m, header); !ok {
		t.Error("another user's change made the memo forget")
	}
	for name, change := range map[string]func() error{
		"a disable":           func() error { return db.Disable(ctx, "ada") },
		"a group update":      func() error { return db.Update(ctx, "ada", "Ada", []string{"x"}) },
		"a password reset":    func() error { return db.ResetPassword(ctx, "ada", "s3cret") },
		"a drop of the cache": func() error { db.invalidateAll(); return nil },
		"a notification":      func() error { db.changed("ada"); return nil },
	} {
		if err := db.Enable(ctx, "ada"); err != nil {
			t.Fatal(err)
		}
		remember()
		if err := change(); err != nil {
			t.Fatal(err)
		}
		if _, ok := db.Recall(&m, header); ok {
			t.Errorf("recalled after %s", name)
		}
	}
	if err := db.Enable(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	short := New(store, Options{CacheTTL: time.Nanosecond, Hash: HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	var n Memo
	if _, err := short.AuthenticateMemo(ctx, &n, header, "ada", "s3cret"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	if _, ok := short.Recall(&n, header); ok {
		t.Error("recalled after the TTL")
	}
}
