package server_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/server/kurrentdbsvc/userspb"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// usersAs returns a Users client that authenticates as user.
func (ts *testServer) usersAs(t testing.TB, user, password string) userspb.UsersClient {
	t.Helper()
	return userspb.NewUsersClient(ts.connAs(t, user, password))
}

// createUser creates a user through the Users service, as the admin.
func (ts *testServer) createUser(t testing.TB, login, password string, groups ...string) {
	t.Helper()
	_, err := ts.usersAs(t, "admin", server.DefaultAdminPassword).Create(context.Background(), &userspb.CreateReq{Options: &userspb.CreateReq_Options{
		LoginName: login, Password: password, FullName: login + " " + login, Groups: groups,
	}})
	if err != nil {
		t.Fatalf("create %s: %v", login, err)
	}
}

// details reads the Users service's details: of login, or of everyone.
func details(ctx context.Context, c userspb.UsersClient, login string) ([]*userspb.DetailsResp_UserDetails, error) {
	stream, err := c.Details(ctx, &userspb.DetailsReq{Options: &userspb.DetailsReq_Options{LoginName: login}})
	if err != nil {
		return nil, err
	}
	var out []*userspb.DetailsResp_UserDetails
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, resp.GetUserDetails())
	}
}

// trailer calls fn and returns its "exception" trailer and error.
func trailer(fn func(opt grpc.CallOption) error) (string, error) {
	var md metadata.MD
	err := fn(grpc.Trailer(&md))
	if v := md.Get("exception"); len(v) > 0 {
		return v[0], err
	}
	return "", err
}

// Every call of the Users service, through its generated client, as the
// administrator and as the user itself.
func TestUsersService(t *testing.T) {
	ts := start(t, server.Options{})
	ctx := context.Background()
	admin := ts.usersAs(t, "admin", server.DefaultAdminPassword)

	// The built-in users exist on a new store.
	all, err := details(ctx, admin, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range all {
		names = append(names, d.GetLoginName())
	}
	if !slices.Equal(names, []string{"admin", "ops"}) || !slices.Equal(all[0].GetGroups(), []string{"$admins"}) || !slices.Equal(all[1].GetGroups(), []string{"$ops"}) {
		t.Fatalf("details of a new store: %v", all)
	}

	if _, err := admin.Create(ctx, &userspb.CreateReq{Options: &userspb.CreateReq_Options{
		LoginName: "ada", Password: "s3cret", FullName: "Ada Lovelace", Groups: []string{"accounting", "audit"},
	}}); err != nil {
		t.Fatal(err)
	}
	one, err := details(ctx, admin, "ada")
	if err != nil || len(one) != 1 {
		t.Fatalf("details of ada: %v, %v", one, err)
	}
	d := one[0]
	updated := time.Unix(0, d.GetLastUpdated().GetTicksSinceEpoch()*100)
	if d.GetFullName() != "Ada Lovelace" || !slices.Equal(d.GetGroups(), []string{"accounting", "audit"}) || d.GetDisabled() || time.Since(updated) > time.Minute || time.Since(updated) < 0 {
		t.Errorf("details of ada: %v (updated %v)", d, updated)
	}

	// The user reads itself, and changes its own password.
	ada := ts.usersAs(t, "ada", "s3cret")
	if self, err := details(ctx, ada, "ada"); err != nil || len(self) != 1 {
		t.Errorf("ada reading itself: %v, %v", self, err)
	}
	if _, err := ada.ChangePassword(ctx, &userspb.ChangePasswordReq{Options: &userspb.ChangePasswordReq_Options{
		LoginName: "ada", CurrentPassword: "wrong", NewPassword: "n3w",
	}}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a change with a wrong current password: %v, want PermissionDenied", err)
	}
	if _, err := ada.ChangePassword(ctx, &userspb.ChangePasswordReq{Options: &userspb.ChangePasswordReq_Options{
		LoginName: "ada", CurrentPassword: "s3cret", NewPassword: "n3w",
	}}); err != nil {
		t.Fatalf("ada changing its password: %v", err)
	}
	// The old password is refused at once, the new one accepted.
	if _, err := details(ctx, ada, "ada"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("the old password right after the change: %v, want Unauthenticated", err)
	}
	ada = ts.usersAs(t, "ada", "n3w")
	if _, err := details(ctx, ada, "ada"); err != nil {
		t.Errorf("the new password: %v", err)
	}

	// Update, disable, enable, reset, as the admin.
	if _, err := admin.Update(ctx, &userspb.UpdateReq{Options: &userspb.UpdateReq_Options{LoginName: "ada", FullName: "Ada King", Groups: []string{"board"}}}); err != nil {
		t.Fatal(err)
	}
	if one, _ := details(ctx, admin, "ada"); len(one) != 1 || one[0].GetFullName() != "Ada King" || !slices.Equal(one[0].GetGroups(), []string{"board"}) {
		t.Errorf("after update: %v", one)
	}
	if _, err := admin.Disable(ctx, &userspb.DisableReq{Options: &userspb.DisableReq_Options{LoginName: "ada"}}); err != nil {
		t.Fatal(err)
	}
	if one, _ := details(ctx, admin, "ada"); len(one) != 1 || !one[0].GetDisabled() {
		t.Errorf("after disable: %v", one)
	}
	if _, err := details(ctx, ada, "ada"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("a disabled user: %v, want Unauthenticated", err)
	}
	if _, err := admin.Enable(ctx, &userspb.EnableReq{Options: &userspb.EnableReq_Options{LoginName: "ada"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := details(ctx, ada, "ada"); err != nil {
		t.Errorf("enabled again: %v", err)
	}
	if _, err := admin.ResetPassword(ctx, &userspb.ResetPasswordReq{Options: &userspb.ResetPasswordReq_Options{LoginName: "ada", NewPassword: "r3set"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := details(ctx, ada, "ada"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("the password before a reset: %v, want Unauthenticated", err)
	}
	ada = ts.usersAs(t, "ada", "r3set")
	if _, err := details(ctx, ada, "ada"); err != nil {
		t.Errorf("the reset password: %v", err)
	}

	// What only an administrator may do.
	for name, call := range map[string]func(grpc.CallOption) error{
		"create": func(o grpc.CallOption) error {
			_, err := ada.Create(ctx, &userspb.CreateReq{Options: &userspb.CreateReq_Options{LoginName: "eve", Password: "x"}}, o)
			return err
		},
		"update": func(o grpc.CallOption) error {
			_, err := ada.Update(ctx, &userspb.UpdateReq{Options: &userspb.UpdateReq_Options{LoginName: "ada", Groups: []string{"$admins"}}}, o)
			return err
		},
		"disable": func(o grpc.CallOption) error {
			_, err := ada.Disable(ctx, &userspb.DisableReq{Options: &userspb.DisableReq_Options{LoginName: "ops"}}, o)
			return err
		},
		"enable": func(o grpc.CallOption) error {
			_, err := ada.Enable(ctx, &userspb.EnableReq{Options: &userspb.EnableReq_Options{LoginName: "ada"}}, o)
			return err
		},
		"delete": func(o grpc.CallOption) error {
			_, err := ada.Delete(ctx, &userspb.DeleteReq{Options: &userspb.DeleteReq_Options{LoginName: "ops"}}, o)
			return err
		},
		"reset": func(o grpc.CallOption) error {
			_, err := ada.ResetPassword(ctx, &userspb.ResetPasswordReq{Options: &userspb.ResetPasswordReq_Options{LoginName: "admin", NewPassword: "x"}}, o)
			return err
		},
		"change another's password": func(o grpc.CallOption) error {
			_, err := ada.ChangePassword(ctx, &userspb.ChangePasswordReq{Options: &userspb.ChangePasswordReq_Options{LoginName: "admin", CurrentPassword: "changeit", NewPassword: "x"}}, o)
			return err
		},
		"list users": func(grpc.CallOption) error { _, err := details(ctx, ada, ""); return err },
		"read another": func(grpc.CallOption) error {
			_, err := details(ctx, ada, "admin")
			return err
		},
	} {
		if _, err := trailer(call); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s as a user: %v, want PermissionDenied", name, err)
		}
	}

	exception, err := trailer(func(o grpc.CallOption) error {
		_, err := ada.Enable(ctx, &userspb.EnableReq{Options: &userspb.EnableReq_Options{LoginName: "ada"}}, o)
		return err
	})
	if status.Code(err) != codes.PermissionDenied || exception != "access-denied" {
		t.Errorf("a user enabling itself: %v, trailer %q; want PermissionDenied, access-denied", err, exception)
	}

	// KurrentDB's errors: not found, conflict.
	exception, err = trailer(func(o grpc.CallOption) error {
		_, err := admin.Disable(ctx, &userspb.DisableReq{Options: &userspb.DisableReq_Options{LoginName: "nobody"}}, o)
		return err
	})
	if status.Code(err) != codes.NotFound || exception != "user-not-found" {
		t.Errorf("disabling an unknown user: %v, trailer %q; want NotFound, user-not-found", err, exception)
	}
	exception, err = trailer(func(o grpc.CallOption) error {
		_, err := admin.Create(ctx, &userspb.CreateReq{Options: &userspb.CreateReq_Options{LoginName: "ada", Password: "other"}}, o)
		return err
	})
	if status.Code(err) != codes.FailedPrecondition || exception != "user-conflict" {
		t.Errorf("creating ada again with another password: %v, trailer %q; want FailedPrecondition, user-conflict", err, exception)
	}
	if _, err := admin.Create(ctx, &userspb.CreateReq{Options: &userspb.CreateReq_Options{LoginName: "$admins", Password: "x"}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a login name starting with '$': %v, want InvalidArgument", err)
	}

	// Deleting refuses the user's credentials at once.
	if _, err := admin.Delete(ctx, &userspb.DeleteReq{Options: &userspb.DeleteReq_Options{LoginName: "ada"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := details(ctx, ada, "ada"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("a deleted user: %v, want Unauthenticated", err)
	}
	if _, err := details(ctx, admin, "ada"); status.Code(err) != codes.NotFound {
		t.Errorf("details of a deleted user: %v, want NotFound", err)
	}

	// The server advertises the service.
	c := ts.client(t)
	if _, err := c.Gossip(ctx); err != nil {
		t.Fatal(err)
	}
}

// Users live in the store: they survive a restart, with their passwords,
// and the built-in admin keeps its changed password however the server is
// configured.
func TestUsersSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	open := func() *testServer {
		db, err := diskstore.Open(dir, diskstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return startOn(t, db, server.Options{AdminPassword: "first-start"})
	}
	first := open()
	if _, err := first.usersAs(t, "admin", "first-start").Create(ctx, &userspb.CreateReq{Options: &userspb.CreateReq_Options{
		LoginName: "ada", Password: "s3cret", Groups: []string{"accounting"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := first.usersAs(t, "admin", "first-start").ResetPassword(ctx, &userspb.ResetPasswordReq{Options: &userspb.ResetPasswordReq_Options{LoginName: "admin", NewPassword: "changed"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := first.usersAs(t, "admin", "changed").Disable(ctx, &userspb.DisableReq{Options: &userspb.DisableReq_Options{LoginName: "ops"}}); err != nil {
		t.Fatal(err)
	}
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	first.store.Close()

	second := open()
	if _, err := details(ctx, second.usersAs(t, "ada", "s3cret"), "ada"); err != nil {
		t.Errorf("ada after a restart: %v", err)
	}
	c := second.clientAs(t, "admin", "changed")
	if _, err := c.AppendToStream(ctx, "after-restart", kurrentdb.AppendToStreamOptions{}, events(1, "E")...); err != nil {
		t.Errorf("admin with its changed password after a restart: %v", err)
	}
	if _, err := details(ctx, second.usersAs(t, "admin", "first-start"), "admin"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("admin with the configured password after a restart: %v, want Unauthenticated", err)
	}
	if _, err := details(ctx, second.usersAs(t, "ops", server.DefaultOpsPassword), "ops"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("ops, disabled, after a restart: %v, want Unauthenticated", err)
	}
}

// The Go client sees a changed password refused at once: the credential
// it used a moment ago is not served from a cache.
func TestPasswordChangeRefusesOldCredentialsAtOnce(t *testing.T) {
	ts := start(t, server.Options{})
	ctx := context.Background()
	ts.createUser(t, "ada", "one")
	old := ts.clientAs(t, "ada", "one")
	for range 3 {
		if _, err := old.AppendToStream(ctx, "ada-stream", kurrentdb.AppendToStreamOptions{}, events(1, "E")...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.usersAs(t, "ada", "one").ChangePassword(ctx, &userspb.ChangePasswordReq{Options: &userspb.ChangePasswordReq_Options{
		LoginName: "ada", CurrentPassword: "one", NewPassword: "two"}}); err != nil {
		t.Fatal(err)
	}
	_, err := old.AppendToStream(ctx, "ada-stream", kurrentdb.AppendToStreamOptions{}, events(1, "E")...)
	if errorCode(err) != kurrentdb.ErrorCodeUnauthenticated {
		t.Fatalf("an append with the old password: %v, want ErrorCodeUnauthenticated", err)
	}
	_, err = drain(old.ReadStream(ctx, "ada-stream", kurrentdb.ReadStreamOptions{}, 10))
	if errorCode(err) != kurrentdb.ErrorCodeUnauthenticated {
		t.Fatalf("a read with the old password: %v, want ErrorCodeUnauthenticated", err)
	}
	if evs, err := drain(ts.clientAs(t, "ada", "two").ReadStream(ctx, "ada-stream", kurrentdb.ReadStreamOptions{}, 10)); err != nil || len(evs) != 3 {
		t.Fatalf("a read with the new password: %d events, %v", len(evs), err)
	}
}

func disableReq(login string) *userspb.DisableReq {
	return &userspb.DisableReq{Options: &userspb.DisableReq_Options{LoginName: login}}
}
