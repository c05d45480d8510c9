package users_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server/users"
)

// cheap is a low Argon2id cost for tests that hash often.
var cheap = users.Options{Hash: users.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}}

func open(t *testing.T, opts users.Options) (*users.DB, *cairn.Store) {
	t.Helper()
	store := memstore.Open()
	t.Cleanup(func() { store.Close() })
	db := users.New(store, opts)
	if err := db.Bootstrap(context.Background(), users.Builtin{AdminPassword: "changeit", OpsPassword: "opspass"}); err != nil {
		t.Fatal(err)
	}
	return db, store
}

// The built-in users are kept as KurrentDB keeps users: a $user-<login>
// stream of records with KurrentDB's fields, the stream's ACL in its
// metadata, a $User line in $users, and passwords never in the clear.
func TestBootstrapWritesKurrentDBLayout(t *testing.T) {
	ctx := context.Background()
	db, store := open(t, users.Options{})

	events, err := store.ReadStream(ctx, "$user-admin", 0, 10, cairn.Forward)
	if err != nil || len(events) != 1 || events[0].Type != "$UserCreated" {
		t.Fatalf("$user-admin: %+v, %v", events, err)
	}
	var rec map[string]any
	if err := json.Unmarshal(events[0].Data, &rec); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"loginName", "fullName", "salt", "hash", "disabled", "groups"} {
		if _, ok := rec[key]; !ok {
			t.Errorf("the admin's record lacks %s: %s", key, events[0].Data)
		}
	}
	if rec["loginName"] != "admin" || fmt.Sprint(rec["groups"]) != "[$admins]" || rec["disabled"] != false {
		t.Errorf("the admin's record: %s", events[0].Data)
	}
	hash, _ := rec["hash"].(string)
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(string(events[0].Data), "changeit") {
		t.Errorf("the admin's password is stored as %q, want an Argon2id hash with the default parameters", hash)
	}
	meta, err := store.ReadStream(ctx, "$$$user-admin", 0, 10, cairn.Forward)
	if err != nil || len(meta) != 1 || string(meta[0].Data) != `{"$acl":{"$w":"$admins","$d":"$admins","$mw":"$admins"}}` {
		t.Errorf("$$$user-admin: %+v, %v", meta, err)
	}
	list, err := store.ReadStream(ctx, "$users", 0, 10, cairn.Forward)
	if err != nil || len(list) != 2 || string(list[0].Data) != "admin" || string(list[1].Data) != "ops" || list[0].Type != "$User" {
		t.Errorf("$users: %+v, %v", list, err)
	}
	notif, err := store.ReadStream(ctx, "$$$users-password-notifications", 0, 10, cairn.Forward)
	if err != nil || len(notif) != 1 || string(notif[0].Data) != `{"$maxAge":3600}` {
		t.Errorf("the password notifications' metadata: %+v, %v", notif, err)
	}

	ops, err := db.Get(ctx, "ops")
	if err != nil || ops.FullName == "" || !slices.Equal(ops.Groups, []string{"$ops"}) {
		t.Errorf("ops: %+v, %v", ops, err)
	}
	if p, err := db.Authenticate(ctx, "ops", "opspass"); err != nil || !p.IsOps() {
		t.Errorf("ops with its password: %+v, %v", p, err)
	}
}

// Bootstrap creates a built-in user only in a store that never held it: a
// later start keeps its password, and a deleted admin stays deleted.
func TestBootstrapOnce(t *testing.T) {
	ctx := context.Background()
	db, store := open(t, cheap)
	if err := db.ResetPassword(ctx, "admin", "n3w"); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	again := users.New(store, cheap)
	if err := again.Bootstrap(ctx, users.Builtin{AdminPassword: "changeit", OpsPassword: "changeit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := again.Authenticate(ctx, "admin", "n3w"); err != nil {
		t.Errorf("admin's changed password after a second bootstrap: %v", err)
	}
	if _, err := again.Authenticate(ctx, "admin", "changeit"); !errors.Is(err, users.ErrBadCredentials) {
		t.Errorf("the configured password after a second bootstrap: %v, want ErrBadCredentials", err)
	}
	if _, err := again.Get(ctx, "ops"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("the deleted ops after a second bootstrap: %v, want ErrNotFound", err)
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	db, _ := open(t, cheap)
	if err := db.Create(ctx, users.NewUser{Login: "ada", Groups: []string{"accounting"}, Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	if p, err := db.Authenticate(ctx, "ada", "s3cret"); err != nil || p.Name != "ada" || !p.InRole("accounting") || p.IsAdmin() {
		t.Errorf("right password: %+v, %v", p, err)
	}
	for _, c := range [][2]string{{"ada", "wrong"}, {"ada", ""}, {"bob", "s3cret"}, {"", ""}, {"$admins", "x"}} {
		if _, err := db.Authenticate(ctx, c[0], c[1]); !errors.Is(err, users.ErrBadCredentials) {
			t.Errorf("Authenticate(%q, %q) = %v, want ErrBadCredentials", c[0], c[1], err)
		}
	}
	if err := db.Disable(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "ada", "s3cret"); !errors.Is(err, users.ErrDisabled) {
		t.Errorf("a disabled user: %v, want ErrDisabled", err)
	}
	if _, err := db.Principal(ctx, "ada"); !errors.Is(err, users.ErrDisabled) {
		t.Errorf("a disabled user's principal: %v, want ErrDisabled", err)
	}
	if err := db.Enable(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "ada", "s3cret"); err != nil {
		t.Errorf("enabled again: %v", err)
	}
	if _, err := db.Principal(ctx, "nobody"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("the principal of an unknown user: %v, want ErrNotFound", err)
	}
}

// Every change of a user's credentials is in force for the next
// authentication, although the previous one was cached.
func TestChangesDropCachedCredentials(t *testing.T) {
	ctx := context.Background()
	db, _ := open(t, cheap)
	if err := db.Create(ctx, users.NewUser{Login: "ada", Groups: []string{"a"}, Password: "one"}); err != nil {
		t.Fatal(err)
	}
	mustAuth := func(password string) {
		t.Helper()
		if _, err := db.Authenticate(ctx, "ada", password); err != nil {
			t.Fatalf("Authenticate(ada, %s): %v", password, err)
		}
	}
	mustAuth("one")
	if err := db.ChangePassword(ctx, "ada", "one", "two"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "ada", "one"); !errors.Is(err, users.ErrBadCredentials) {
		t.Errorf("the old password after a change: %v, want ErrBadCredentials", err)
	}
	mustAuth("two")
	if err := db.ResetPassword(ctx, "ada", "three"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "ada", "two"); !errors.Is(err, users.ErrBadCredentials) {
		t.Errorf("the old password after a reset: %v, want ErrBadCredentials", err)
	}
	mustAuth("three")
	if err := db.Update(ctx, "ada", "Ada", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	if p, err := db.Authenticate(ctx, "ada", "three"); err != nil || !slices.Equal(p.Groups, []string{"b"}) {
		t.Errorf("groups after an update: %+v, %v", p, err)
	}
	if _, err := db.Principal(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if err := db.Disable(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "ada", "three"); !errors.Is(err, users.ErrDisabled) {
		t.Errorf("after disabling: %v, want ErrDisabled", err)
	}
	if _, err := db.Principal(ctx, "ada"); !errors.Is(err, users.ErrDisabled) {
		t.Errorf("the principal after disabling: %v, want ErrDisabled", err)
	}
	if err := db.Enable(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	mustAuth("three")
	if err := db.Delete(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "ada", "three"); !errors.Is(err, users.ErrBadCredentials) {
		t.Errorf("after deleting: %v, want ErrBadCredentials", err)
	}
}

// A server drops the credentials it cached when another server sharing the
// Store changes them, once it reads the notification.
func TestWatchDropsOtherServersChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A TTL longer than the test: only a notification can drop the entry.
	opts := cheap
	opts.CacheTTL = time.Hour
	here, store := open(t, opts)
	there := users.New(store, opts)
	if err := there.Create(ctx, users.NewUser{Login: "ada", Password: "one"}); err != nil {
		t.Fatal(err)
	}
	if _, err := here.Authenticate(ctx, "ada", "one"); err != nil {
		t.Fatal(err)
	}
	watched := make(chan error, 1)
	go func() { watched <- here.Watch(ctx) }()
	if err := there.Disable(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := here.Authenticate(ctx, "ada", "one")
		if errors.Is(err, users.ErrDisabled) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other server's disable is not in force here: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-watched; err != nil {
		t.Errorf("Watch: %v", err)
	}
}

func TestCreate(t *testing.T) {
	ctx := context.Background()
	db, store := open(t, cheap)
	u := users.NewUser{Login: "ada", FullName: "Ada", Groups: []string{"a", "b"}, Password: "s3cret"}
	if err := db.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := db.Get(ctx, "ada")
	if err != nil || got.FullName != "Ada" || !slices.Equal(got.Groups, u.Groups) || got.Disabled || time.Since(got.Updated) > time.Minute {
		t.Errorf("Get: %+v, %v", got, err)
	}
	// As in KurrentDB: the same user again is no change; another password
	// is a conflict.
	before, _ := store.StreamVersion(ctx, "$users")
	if err := db.Create(ctx, u); err != nil {
		t.Errorf("creating the same user again: %v", err)
	}
	if after, _ := store.StreamVersion(ctx, "$users"); after != before {
		t.Errorf("creating the same user again wrote to $users")
	}
	u.Password = "other"
	if err := db.Create(ctx, u); !errors.Is(err, users.ErrExists) {
		t.Errorf("creating it with another password: %v, want ErrExists", err)
	}
	// A deleted user's name can be taken again, and it is listed once.
	if err := db.Delete(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if err := db.Create(ctx, u); err != nil {
		t.Fatalf("creating a deleted user again: %v", err)
	}
	all, err := db.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range all {
		names = append(names, u.Login)
	}
	if !slices.Equal(names, []string{"ada", "admin", "ops"}) {
		t.Errorf("List: %v", names)
	}

	for _, bad := range []users.NewUser{
		{Login: "", Password: "x"},
		{Login: "$admins", Password: "x"},
		{Login: "a:b", Password: "x"},
		{Login: "a\x01b", Password: "x"},
		{Login: strings.Repeat("a", 600), Password: "x"},
		{Login: "bob", Password: ""},
		{Login: "bob", Password: "x", Groups: []string{""}},
	} {
		if err := db.Create(ctx, bad); !errors.Is(err, cairn.ErrInvalidArgument) {
			t.Errorf("Create(%q, groups %q, password %q) = %v, want an invalid argument", bad.Login, bad.Groups, bad.Password, err)
		}
	}
	for name, err := range map[string]error{
		"update":  db.Update(ctx, "nobody", "", nil),
		"enable":  db.Enable(ctx, "nobody"),
		"disable": db.Disable(ctx, "nobody"),
		"delete":  db.Delete(ctx, "nobody"),
		"reset":   db.ResetPassword(ctx, "nobody", "x"),
		"change":  db.ChangePassword(ctx, "nobody", "x", "y"),
	} {
		if !errors.Is(err, users.ErrNotFound) {
			t.Errorf("%s of an unknown user: %v, want ErrNotFound", name, err)
		}
	}
	if err := db.ChangePassword(ctx, "ada", "wrong", "new"); !errors.Is(err, users.ErrBadCredentials) {
		t.Errorf("a change with a wrong current password: %v, want ErrBadCredentials", err)
	}
}

// Concurrent changes of one user all take effect: each that loses a race
// reads the record again and retries.
func TestConcurrentChanges(t *testing.T) {
	ctx := context.Background()
	db, _ := open(t, cheap)
	if err := db.Create(ctx, users.NewUser{Login: "ada", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				errs <- db.Disable(ctx, "ada")
			} else {
				errs <- db.Update(ctx, "ada", fmt.Sprint("name ", i), []string{"g"})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a concurrent change: %v", err)
		}
	}
	u, err := db.Get(ctx, "ada")
	if err != nil || !u.Disabled || !slices.Equal(u.Groups, []string{"g"}) {
		t.Errorf("after concurrent changes: %+v, %v; want disabled and in g", u, err)
	}
}

// A stored hash cairn cannot verify never authenticates.
func TestForeignHashNeverVerifies(t *testing.T) {
	ctx := context.Background()
	db, store := open(t, cheap)
	rec := `{"loginName":"legacy","fullName":"","salt":"c2FsdA==","hash":"aGFzaA==","disabled":false,"groups":[]}`
	if _, err := store.System().Append(ctx, "$user-legacy", cairn.NoStream, cairn.EventData{Type: "$UserCreated", Data: []byte(rec)}); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", "aGFzaA==", "hash"} {
		if _, err := db.Authenticate(ctx, "legacy", pw); !errors.Is(err, users.ErrBadCredentials) {
			t.Errorf("a foreign hash and %q: %v, want ErrBadCredentials", pw, err)
		}
	}
}

// Servers starting together on one store create the built-in users once,
// and each starts.
func TestConcurrentBootstrap(t *testing.T) {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- users.New(store, cheap).Bootstrap(ctx, users.Builtin{AdminPassword: "a", OpsPassword: "o"})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a concurrent bootstrap: %v", err)
		}
	}
	if v, err := store.StreamVersion(ctx, "$user-admin"); err != nil || v != 0 {
		t.Errorf("$user-admin at version %d, %v; want one creation", v, err)
	}
}

// CredentialChanges moves on with every change of a user's credentials made
// through the DB (a password changed or reset, groups updated, the user
// disabled or deleted), before the change returns, and with each one
// another server makes, once Watch reads its notification; not with an
// enable, a refused change, or another user's change.
func TestCredentialChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, store := open(t, cheap)
	if err := db.Create(ctx, users.NewUser{Login: "ada", Password: "one"}); err != nil {
		t.Fatal(err)
	}
	last := db.CredentialChanges("ada")
	step := func(what string, moves bool, change func() error) {
		t.Helper()
		err := change()
		if moves && err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		now := db.CredentialChanges("ada")
		if moved := now != last; moved != moves {
			t.Errorf("%s: the count went from %d to %d; want it to move: %v", what, last, now, moves)
		}
		last = now
	}
	step("a password change", true, func() error { return db.ChangePassword(ctx, "ada", "one", "two") })
	step("a password change with a wrong current password", false, func() error { return db.ChangePassword(ctx, "ada", "wrong", "x") })
	step("a password reset", true, func() error { return db.ResetPassword(ctx, "ada", "three") })
	step("a groups update", true, func() error { return db.Update(ctx, "ada", "Ada", []string{"g"}) })
	step("a disable", true, func() error { return db.Disable(ctx, "ada") })
	step("an enable", false, func() error { return db.Enable(ctx, "ada") })
	step("another user's password reset", false, func() error { return db.ResetPassword(ctx, "ops", "x") })
	step("a delete", true, func() error { return db.Delete(ctx, "ada") })
	step("a creation", false, func() error { return db.Create(ctx, users.NewUser{Login: "ada", Password: "one"}) })

	watched := make(chan error, 1)
	go func() { watched <- db.Watch(ctx) }()
	there := users.New(store, cheap)
	if err := there.ResetPassword(ctx, "ada", "four"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for db.CredentialChanges("ada") == last {
		if time.Now().After(deadline) {
			t.Fatal("another server's password reset did not move the count here")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-watched; err != nil {
		t.Errorf("Watch: %v", err)
	}
}
