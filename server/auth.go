package server

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"slices"
	"strings"

	"github.com/cairndb/cairn/server/auth"
	"github.com/cairndb/cairn/server/users"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// User returns the authenticated user of an RPC's context, and false for an
// anonymous request: the name of its [auth.Principal].
func User(ctx context.Context) (string, bool) {
	p, ok := auth.FromContext(ctx)
	return p.Name, ok
}

// authenticate establishes who makes an RPC and puts the principal in its
// context. Every RPC but discovery must authenticate, over TLS or not: by
// basic authentication (a user name and password of the user database),
// or, with TLS and Options.ClientCAs, by a client certificate; basic
// credentials, when present, win, as the official clients send them. A
// request without valid credentials is refused with Unauthenticated. The
// password never reaches a log.
func (s *Server) authenticate(ctx context.Context, method string) (context.Context, error) {
	if s.anonymous[method] {
		return ctx, nil
	}
	// ValueFromIncomingContext copies only this header, where
	// FromIncomingContext would copy them all.
	if values := metadata.ValueFromIncomingContext(ctx, "authorization"); len(values) > 0 {
		// The connection remembers the credentials it last
		// authenticated with, as long as the cache would trust them.
		memo := connMemo(ctx)
		if memo != nil {
			if p, ok := s.users.Recall(memo, values[0]); ok {
				return auth.NewContext(ctx, p), nil
			}
		}
		user, password, ok := parseBasic(values[0])
		if !ok {
			return ctx, s.refuse(ctx, "", method, "malformed credentials")
		}
		var p auth.Principal
		var err error
		if memo != nil {
			p, err = s.users.AuthenticateMemo(ctx, memo, values[0], user, password)
		} else {
			p, err = s.users.Authenticate(ctx, user, password)
		}
		switch {
		case errors.Is(err, users.ErrDisabled):
			return ctx, s.refuse(ctx, user, method, "user disabled")
		case errors.Is(err, users.ErrBadCredentials):
			// Only the user name is logged: the header holds the password.
			return ctx, s.refuse(ctx, user, method, "invalid credentials")
		case err != nil:
			return ctx, authError(err)
		}
		return auth.NewContext(ctx, p), nil
	}
	name, reason := certificateUser(ctx)
	if name == "" {
		return ctx, s.refuse(ctx, "", method, reason)
	}
	p, err := s.users.Principal(ctx, name)
	switch {
	case errors.Is(err, users.ErrNotFound):
		return ctx, s.refuse(ctx, name, method, "client certificate of an unknown user")
	case errors.Is(err, users.ErrDisabled):
		return ctx, s.refuse(ctx, name, method, "user disabled")
	case err != nil:
		return ctx, authError(err)
	}
	return auth.NewContext(ctx, p), nil
}

// refuse counts and logs a failed authentication and returns its status.
func (s *Server) refuse(ctx context.Context, user, method, reason string) error {
	s.metrics.authFailures.Inc()
	s.authLog.failed(peerHost(ctx), user, method, reason)
	return status.Error(codes.Unauthenticated, reason)
}

// authError is the status of an authentication that could not be decided:
// the store could not be read, or the client went.
func authError(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Unavailable, "authentication: "+err.Error())
}

// certificateUser returns the user named by the client certificate of an
// RPC's connection, verified against Options.ClientCAs: its common name.
// A certificate that may serve as a server's (it has the server
// authentication extended key usage) is a node's, not a user's. When there
// is no user it returns "" and why.
func certificateUser(ctx context.Context) (string, string) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", "no credentials"
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return "", "no credentials"
	}
	leaf := info.State.VerifiedChains[0][0]
	if slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return "", "the client certificate is a node certificate (server authentication), not a user's"
	}
	if leaf.Subject.CommonName == "" {
		return "", "the client certificate names no user (no common name)"
	}
	return leaf.Subject.CommonName, ""
}

// peerHost returns the address of an RPC's client without its port, which
// changes with every connection.
func peerHost(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "unknown"
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return p.Addr.String()
	}
	return host
}

// parseBasic returns the user name and password of a basic Authorization
// header, and false when it is not one.
func parseBasic(header string) (string, string, bool) {
	scheme, payload, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "basic") {
		return "", "", false
	}
	payload = strings.TrimSpace(payload)
	// Decoded on the stack when it fits, as credentials do.
	var in, out [256]byte
	var src, raw []byte
	if len(payload) <= len(in) {
		src, raw = in[:copy(in[:], payload)], out[:base64.StdEncoding.DecodedLen(len(payload))]
	} else {
		src, raw = []byte(payload), make([]byte, base64.StdEncoding.DecodedLen(len(payload)))
	}
	n, err := base64.StdEncoding.Decode(raw, src)
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw[:n]), ":")
}

// authUnary authenticates a unary call (see observeUnary).
func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// authStream authenticates a stream call, then runs it through
// endOnShutdown (see observeUnary).
func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		if info.IsClientStream && !info.IsServerStream {
			drain(ss)
		}
		return err
	}
	return s.endOnShutdown(srv, &ctxStream{ServerStream: ss, ctx: ctx}, info, handler)
}

// drain reads and discards what a client-streaming caller sends, up to
// drainLimit messages, until it half-closes. A client still sending when
// the RPC ends sees only "EOF" on its send; once it has half-closed, it
// receives the status. A caller that keeps the stream open holds only its
// own call, as any open stream does, until it goes or the server stops.
func drain(ss grpc.ServerStream) {
	for range drainLimit {
		if ss.RecvMsg(&emptypb.Empty{}) != nil {
			return
		}
	}
}

// drainLimit bounds the messages drain reads from a refused caller.
const drainLimit = 1024

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *ctxStream) Context() context.Context { return c.ctx }

// memoConn is a routed gRPC connection. Its remote address, which gRPC
// gives each of its requests as the peer's, carries the connection's
// users.Memo: the credentials it last authenticated with.
type memoConn struct {
	net.Conn
	addr *memoAddr
}

func (c *memoConn) RemoteAddr() net.Addr { return c.addr }

// memoAddr is a connection's remote address, and its users.Memo.
type memoAddr struct {
	net.Addr
	memo users.Memo
}

// connMemo returns the users.Memo of the connection of an RPC's context,
// nil when it has none (it did not come through the router).
func connMemo(ctx context.Context) *users.Memo {
	if p, ok := peer.FromContext(ctx); ok {
		if a, ok := p.Addr.(*memoAddr); ok {
			return &a.memo
		}
	}
	return nil
}
