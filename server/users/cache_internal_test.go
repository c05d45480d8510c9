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
