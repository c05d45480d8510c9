// Package auth says who makes a request: the principal that the server
// authenticated, carried in the request's context. The server (package
// server) puts it there before any service sees the request; every
// protocol's services read it from there, so that they need nothing of the
// server itself.
//
// A principal is a user and the groups it belongs to, as KurrentDB has
// them: a user's roles are its own name, its groups, and [RoleAll], which
// every user holds. The groups [RoleAdmins] and [RoleOps] are the system's;
// as in KurrentDB, the user named "admin" is an administrator and the user
// named "ops" an operator whatever their groups.
//
// A request without a principal is anonymous: the server lets one through
// only to the discovery calls (server features and gossip); see package
// server.
package auth

import (
	"context"
	"slices"
)

// The system's roles, as KurrentDB names them in stream ACLs and groups.
const (
	// RoleAll is every user: an ACL that grants it grants everyone.
	RoleAll = "$all"
	// RoleAdmins is the administrators' group: they may do anything,
	// whatever a stream's ACL says.
	RoleAdmins = "$admins"
	// RoleOps is the operators' group: they may run operations
	// (scavenges) and manage persistent subscriptions.
	RoleOps = "$ops"
)

// The built-in users, which the server creates on its first start.
const (
	// AdminUser is the built-in administrator, in RoleAdmins.
	AdminUser = "admin"
	// OpsUser is the built-in operator, in RoleOps.
	OpsUser = "ops"
)

// Principal is who makes a request: a user that the server authenticated.
type Principal struct {
	// Name is the user's login name.
	Name string
	// Groups are the groups the user belongs to.
	Groups []string
}

// InRole reports whether p holds role: RoleAll, its own name, or one of
// its groups.
func (p Principal) InRole(role string) bool {
	return role == RoleAll || role == p.Name || slices.Contains(p.Groups, role)
}

// IsAdmin reports whether p is an administrator: in RoleAdmins, or the
// built-in admin.
func (p Principal) IsAdmin() bool {
	return p.Name == AdminUser || slices.Contains(p.Groups, RoleAdmins)
}

// IsOps reports whether p is an operator: in RoleOps, or the built-in ops
// user. An administrator is not an operator by this test; callers that
// admit both ask for both.
func (p Principal) IsOps() bool {
	return p.Name == OpsUser || slices.Contains(p.Groups, RoleOps)
}

type principalKey struct{}

// NewContext returns a copy of ctx that carries p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal that ctx carries, and false for an
// anonymous request.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
