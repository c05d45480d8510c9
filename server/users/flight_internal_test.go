package users

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn/memstore"
)

// flightDB returns a DB with one hashing slot and the user ada, whose
// credentials are not cached.
func flightDB(t *testing.T) *DB {
	t.Helper()
	store := memstore.Open()
	t.Cleanup(func() { store.Close() })
	db := New(store, Options{HashConcurrency: 1, Hash: HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err := db.Create(context.Background(), NewUser{Login: "ada", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	return db
}

// waitWaiters waits until the verification of ada's credentials running
// has n requests waiting for it.
func waitWaiters(t *testing.T, db *DB, password string, n int) {
	t.Helper()
	key := db.key("password", "ada", password)
	deadline := time.Now().Add(10 * time.Second)
	for {
		db.mu.Lock()
		f := db.flights[key]
		got := 0
		if f != nil {
			got = f.waiters
		}
		db.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests wait for the verification running, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitHashing waits until n goroutines wait for a hashing slot: they have
// read the user's record.
func waitHashing(t *testing.T, n int) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := strings.Count(string(buf[:runtime.Stack(buf, true)]), "users.(*DB).acquireHash")
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests wait for a hashing slot, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Requests that bring the same credentials at once wait for one
// verification: with the only hashing slot taken, the first waits for it
// and the others for the first, and all are answered by its hash.
func TestConcurrentVerificationsShareOneHash(t *testing.T) {
	ctx := context.Background()
	db := flightDB(t)
	for _, password := range []string{"s3cret", "wrong"} {
		db.hashSlots <- struct{}{} // no hash can run now
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, errs[i] = db.Authenticate(ctx, "ada", password) })
		}
		waitWaiters(t, db, password, n-1)
		<-db.hashSlots
		wg.Wait()
		for i, err := range errs {
			switch {
			case password == "s3cret" && err != nil:
				t.Errorf("request %d with the password: %v", i, err)
			case password == "wrong" && !errors.Is(err, ErrBadCredentials):
				t.Errorf("request %d with a wrong password: %v, want ErrBadCredentials", i, err)
			}
		}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if len(db.flights) != 0 {
		t.Errorf("%d verifications still registered", len(db.flights))
	}
}

// A request that arrives after a change of the user does not take the
// answer of a verification that read the user before it: disabled while
// a verification of its password waits for a hash, ada is refused to the
// request that follows, which the verification would have let in.
func TestVerificationBeforeAChangeIsNotShared(t *testing.T) {
	ctx := context.Background()
	db := flightDB(t)
	db.hashSlots <- struct{}{}
	first := make(chan error, 1)
	go func() {
		_, err := db.Authenticate(ctx, "ada", "s3cret")
		first <- err
	}()
	waitHashing(t, 1)
	if err := db.Disable(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() {
		_, err := db.Authenticate(ctx, "ada", "s3cret")
		second <- err
	}()
	waitHashing(t, 2) // the second verifies on its own
	<-db.hashSlots
	if err := <-second; !errors.Is(err, ErrDisabled) {
		t.Errorf("the request after the change: %v, want ErrDisabled", err)
	}
	if err := <-first; err != nil {
		t.Errorf("the request before the change: %v", err)
	}
}

// A request whose verification gives up on its context does not fail
// those that wait for it: one of them verifies instead.
func TestCancelledVerificationIsTakenOver(t *testing.T) {
	ctx := context.Background()
	db := flightDB(t)
	db.hashSlots <- struct{}{}
	short, cancel := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() {
		_, err := db.Authenticate(short, "ada", "s3cret")
		first <- err
	}()
	waitHashing(t, 1)
	second := make(chan error, 1)
	go func() {
		_, err := db.Authenticate(ctx, "ada", "s3cret")
		second <- err
	}()
	waitWaiters(t, db, "s3cret", 1)
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled request: %v", err)
	}
	<-db.hashSlots
	if err := <-second; err != nil {
		t.Errorf("the request that waited for it: %v", err)
	}
}
