package kurrentdbsvc

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/auth"
	rpcerrors "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// exceptionAccessDenied is KurrentDB's trailer for a refused request.
const exceptionAccessDenied = "access-denied"

// allow returns nil when the request's principal may perform op on stream,
// and otherwise the status KurrentDB refuses it with: PermissionDenied,
// which the clients report as access denied. Without an ACL checker
// (Host.Access) everything is allowed.
func (s *Services) allow(ctx context.Context, op acl.Operation, stream string) error {
	if s.access == nil {
		return nil
	}
	err := s.access.Check(ctx, op, stream)
	if errors.Is(err, acl.ErrAccessDenied) {
		return accessDenied(ctx, err)
	}
	if err != nil {
		return rpcError(ctx, stream, err)
	}
	return nil
}

// readable reports whether the request's principal may read stream. A
// link to an event of a stream it may not read resolves to the link alone
// (links.Options.Readable), in reads, catch-up subscriptions and
// persistent subscriptions alike.
func (s *Services) readable(ctx context.Context, stream string) (bool, error) {
	if s.access == nil {
		return true, nil
	}
	err := s.access.Check(ctx, acl.Read, stream)
	if errors.Is(err, acl.ErrAccessDenied) {
		return false, nil
	}
	return err == nil, err
}

// allowOperator returns nil when the request's principal is an
// administrator or an operator: KurrentDB's rule for scavenges and for
// managing persistent subscriptions.
func (s *Services) allowOperator(ctx context.Context, what string) error {
	if s.access == nil {
		return nil
	}
	p, _ := auth.FromContext(ctx)
	if p.IsAdmin() || p.IsOps() {
		return nil
	}
	return accessDenied(ctx, fmt.Errorf("%w: user %q may not %s: it takes an administrator or an operator", acl.ErrAccessDenied, p.Name, what))
}

// allowUser returns nil when the request has a principal: KurrentDB's rule
// for the statistics of persistent subscriptions.
func (s *Services) allowUser(ctx context.Context, what string) error {
	if s.access == nil {
		return nil
	}
	if _, ok := auth.FromContext(ctx); ok {
		return nil
	}
	return accessDenied(ctx, fmt.Errorf("%w: %s takes an authenticated user", acl.ErrAccessDenied, what))
}

// accessDenied is the status of a refused request, with KurrentDB's
// trailer.
func accessDenied(ctx context.Context, err error) error {
	setTrailer(ctx, trailerException, exceptionAccessDenied)
	return status.Error(codes.PermissionDenied, err.Error())
}

// v2AccessDenied is the status of a refused v2 append, with the details the
// v2 protocol defines.
func v2AccessDenied(ctx context.Context, err error) error {
	st := status.New(codes.PermissionDenied, err.Error())
	detail := &rpcerrors.AccessDeniedErrorDetails{Operation: "append"}
	var d *acl.DeniedError
	if errors.As(err, &d) {
		detail.Username = &d.User
		perm := d.Op.String() + " " + d.Stream
		detail.Permission = &perm
	}
	if withDetail, derr := st.WithDetails(protoadapt.MessageV1Of(detail)); derr == nil {
		st = withDetail
	}
	return st.Err()
}
