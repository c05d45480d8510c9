package kurrentdbsvc

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/auth"
	"github.com/cairndb/cairn/server/kurrentdbsvc/userspb"
	"github.com/cairndb/cairn/server/users"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The trailers of KurrentDB's user errors.
const (
	trailerLoginName      = "login-name"
	exceptionUserNotFound = "user-not-found"
	exceptionUserConflict = "user-conflict"
)

// usersService serves KurrentDB's Users service on the user database of
// the host. As in KurrentDB, only administrators create, update, delete,
// enable and disable users and reset passwords; a user changes its own
// password, giving the current one, and reads its own details, while an
// administrator reads anyone's.
type usersService struct {
	userspb.UnimplementedUsersServer
	s  *Services
	db *users.DB
}

// admin returns nil when the request is an administrator's.
func (u *usersService) admin(ctx context.Context, what string) error {
	p, _ := auth.FromContext(ctx)
	if p.IsAdmin() {
		return nil
	}
	return accessDenied(ctx, fmt.Errorf("%w: user %q may not %s: it takes an administrator", acl.ErrAccessDenied, p.Name, what))
}

// userError converts an error of the user database to the status and
// trailers KurrentDB answers with.
func userError(ctx context.Context, login string, err error) error {
	switch {
	case errors.Is(err, users.ErrNotFound):
		setTrailer(ctx, trailerException, exceptionUserNotFound, trailerLoginName, login)
		return status.Errorf(codes.NotFound, "User '%s' is not found.", login)
	case errors.Is(err, users.ErrExists):
		setTrailer(ctx, trailerException, exceptionUserConflict, trailerLoginName, login)
		return status.Errorf(codes.FailedPrecondition, "Conflict: user '%s' exists with another password.", login)
	case errors.Is(err, users.ErrBadCredentials):
		return accessDenied(ctx, err)
	}
	return rpcError(ctx, "", err)
}

func (u *usersService) Create(ctx context.Context, req *userspb.CreateReq) (*userspb.CreateResp, error) {
	o := req.GetOptions()
	if err := u.admin(ctx, "create users"); err != nil {
		return nil, err
	}
	err := u.db.Create(ctx, users.NewUser{Login: o.GetLoginName(), FullName: o.GetFullName(), Groups: o.GetGroups(), Password: o.GetPassword()})
	if err != nil {
		return nil, userError(ctx, o.GetLoginName(), err)
	}
	u.s.log.Info("user created", "user", o.GetLoginName(), "groups", o.GetGroups())
	return &userspb.CreateResp{}, nil
}

func (u *usersService) Update(ctx context.Context, req *userspb.UpdateReq) (*userspb.UpdateResp, error) {
	o := req.GetOptions()
	if err := u.admin(ctx, "update users"); err != nil {
		return nil, err
	}
	if err := u.db.Update(ctx, o.GetLoginName(), o.GetFullName(), o.GetGroups()); err != nil {
		return nil, userError(ctx, o.GetLoginName(), err)
	}
	u.s.log.Info("user updated", "user", o.GetLoginName(), "groups", o.GetGroups())
	return &userspb.UpdateResp{}, nil
}

func (u *usersService) Delete(ctx context.Context, req *userspb.DeleteReq) (*userspb.DeleteResp, error) {
	login := req.GetOptions().GetLoginName()
	if err := u.admin(ctx, "delete users"); err != nil {
		return nil, err
	}
	if err := u.db.Delete(ctx, login); err != nil {
		return nil, userError(ctx, login, err)
	}
	u.s.log.Info("user deleted", "user", login)
	return &userspb.DeleteResp{}, nil
}

func (u *usersService) Enable(ctx context.Context, req *userspb.EnableReq) (*userspb.EnableResp, error) {
	login := req.GetOptions().GetLoginName()
	if err := u.admin(ctx, "enable users"); err != nil {
		return nil, err
	}
	if err := u.db.Enable(ctx, login); err != nil {
		return nil, userError(ctx, login, err)
	}
	u.s.log.Info("user enabled", "user", login)
	return &userspb.EnableResp{}, nil
}

func (u *usersService) Disable(ctx context.Context, req *userspb.DisableReq) (*userspb.DisableResp, error) {
	login := req.GetOptions().GetLoginName()
	if err := u.admin(ctx, "disable users"); err != nil {
		return nil, err
	}
	if err := u.db.Disable(ctx, login); err != nil {
		return nil, userError(ctx, login, err)
	}
	u.s.log.Info("user disabled", "user", login)
	return &userspb.DisableResp{}, nil
}

func (u *usersService) ResetPassword(ctx context.Context, req *userspb.ResetPasswordReq) (*userspb.ResetPasswordResp, error) {
	o := req.GetOptions()
	if err := u.admin(ctx, "reset passwords"); err != nil {
		return nil, err
	}
	if err := u.db.ResetPassword(ctx, o.GetLoginName(), o.GetNewPassword()); err != nil {
		return nil, userError(ctx, o.GetLoginName(), err)
	}
	u.s.log.Info("password reset", "user", o.GetLoginName())
	return &userspb.ResetPasswordResp{}, nil
}

// ChangePassword changes the caller's own password: as in KurrentDB, no
// one changes another user's password this way (an administrator resets
// it).
func (u *usersService) ChangePassword(ctx context.Context, req *userspb.ChangePasswordReq) (*userspb.ChangePasswordResp, error) {
	o := req.GetOptions()
	p, _ := auth.FromContext(ctx)
	if p.Name != o.GetLoginName() {
		return nil, accessDenied(ctx, fmt.Errorf("%w: user %q may not change the password of %q: a user changes its own password; an administrator resets others'", acl.ErrAccessDenied, p.Name, o.GetLoginName()))
	}
	if err := u.db.ChangePassword(ctx, o.GetLoginName(), o.GetCurrentPassword(), o.GetNewPassword()); err != nil {
		return nil, userError(ctx, o.GetLoginName(), err)
	}
	u.s.log.Info("password changed", "user", o.GetLoginName())
	return &userspb.ChangePasswordResp{}, nil
}

// Details sends the user named in the request, or every user when none is.
// An administrator reads anyone; a user reads itself only.
func (u *usersService) Details(req *userspb.DetailsReq, out grpc.ServerStreamingServer[userspb.DetailsResp]) error {
	ctx := out.Context()
	login := req.GetOptions().GetLoginName()
	p, _ := auth.FromContext(ctx)
	if !p.IsAdmin() && (login == "" || login != p.Name) {
		what := "list users"
		if login != "" {
			what = fmt.Sprintf("read the details of %q", login)
		}
		return accessDenied(ctx, fmt.Errorf("%w: user %q may not %s: a user reads its own details; an administrator reads anyone's", acl.ErrAccessDenied, p.Name, what))
	}
	var list []users.User
	if login == "" {
		var err error
		if list, err = u.db.List(ctx); err != nil {
			return userError(ctx, "", err)
		}
	} else {
		one, err := u.db.Get(ctx, login)
		if err != nil {
			return userError(ctx, login, err)
		}
		list = []users.User{one}
	}
	for _, one := range list {
		d := &userspb.DetailsResp_UserDetails{
			LoginName: one.Login,
			FullName:  one.FullName,
			Groups:    one.Groups,
			Disabled:  one.Disabled,
		}
		if !one.Updated.IsZero() {
			d.LastUpdated = &userspb.DetailsResp_UserDetails_DateTime{TicksSinceEpoch: one.Updated.UnixNano() / 100}
		}
		if err := out.Send(&userspb.DetailsResp{UserDetails: d}); err != nil {
			return err
		}
	}
	return nil
}
