package webui_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cairndb/cairn/server/users"
)

// A session ends when its user's credentials change: the password changed
// or reset, the user disabled or deleted (even when enabled or created
// again before the session is next used). The user logs in again; other
// users' sessions go on.
func TestSessionEndsWhenCredentialsChange(t *testing.T) {
	f := newFixture(t, fixtureOptions{noSubs: true})
	ctx := context.Background()
	password := adaPassword
	for _, c := range []struct {
		what   string
		change func() error
	}{
		{"password changed", func() error {
			return f.users.ChangePassword(ctx, "ada", password, password+"1")
		}},
		{"password reset", func() error { return f.users.ResetPassword(ctx, "ada", password+"1") }},
		{"user disabled and enabled again", func() error {
			if err := f.users.Disable(ctx, "ada"); err != nil {
				return err
			}
			return f.users.Enable(ctx, "ada")
		}},
		{"user deleted and created again", func() error {
			if err := f.users.Delete(ctx, "ada"); err != nil {
				return err
			}
			return f.users.Create(ctx, users.NewUser{Login: "ada", Password: password})
		}},
	} {
		session := f.login("ada", password)
		other := f.login("admin", adminPassword)
		expect(t, "ada's session before the change", f.get("/ui/", session), http.StatusOK, ">ada<")
		if err := c.change(); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if c.what == "password changed" || c.what == "password reset" {
			password += "1"
		}
		expectLogin(t, "ada's session after the "+c.what, f.get("/ui/", session))
		if r := f.get("/ui/api/dashboard", session); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("a script's call with ada's session after the %s: %d, want 401", c.what, r.StatusCode)
		}
		expect(t, "admin's session after ada's "+c.what, f.get("/ui/", other), http.StatusOK, ">admin<")
		expect(t, "a new session of ada after the "+c.what, f.get("/ui/", f.login("ada", password)), http.StatusOK, ">ada<")
	}
	// Updating a user's groups is a change of its credentials too.
	session := f.login("ada", password)
	if err := f.users.Update(ctx, "ada", "Ada", []string{"$ops"}); err != nil {
		t.Fatal(err)
	}
	expectLogin(t, "ada's session after her groups changed", f.get("/ui/", session))
}

// A change of the user made through another server sharing the store ends
// the session too, once the password notification reaches this server's
// user database (users.DB.Watch, which the server runs).
func TestSessionEndsWhenAnotherServerChangesCredentials(t *testing.T) {
	f := newFixture(t, fixtureOptions{noSubs: true})
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() { watched <- f.users.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-watched; err != nil {
			t.Error(err)
		}
	})
	session := f.login("ada", adaPassword)
	expect(t, "ada's session", f.get("/ui/", session), http.StatusOK, ">ada<")

	elsewhere := users.New(f.store, users.Options{Hash: users.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err := elsewhere.ResetPassword(context.Background(), "ada", "new-pw"); err != nil {
		t.Fatal(err)
	}
	// The notification arrives when the store signals the commit; wait
	// for it, within a generous bound.
	deadline := time.Now().Add(30 * time.Second)
	for f.get("/ui/api/dashboard", session).StatusCode == http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("ada's session still works 30 s after another server reset her password")
		}
		time.Sleep(10 * time.Millisecond)
	}
	expectLogin(t, "ada's session after another server reset her password", f.get("/ui/", session))
}
