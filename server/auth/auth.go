// Package auth says who makes a request: the principal that the server
// authenticated, carried in the request's context. The server (package
// server) puts it there before any service sees the request; every
// protocol's services read it from there, so that they need nothing of the
// server itself.
//
// A request without a principal is anonymous: the server lets one through
// only where it serves requests without credentials (discovery calls, and
// plaintext on loopback; see package server).
package auth

import "context"

// Principal is who makes a request: a user that the server authenticated.
type Principal struct {
	// Name is the user name the request presented.
	Name string
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
