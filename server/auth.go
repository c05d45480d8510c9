package server

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"strings"

	"github.com/cairndb/cairn/server/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
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

// authenticate checks the basic-auth credentials of an RPC. Presented
// credentials must be valid; missing ones are refused when the server runs
// with TLS. The password never reaches a log.
func (s *Server) authenticate(ctx context.Context, method string) (context.Context, error) {
	if s.anonymous[method] {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get("authorization")
	if len(values) == 0 {
		if s.opts.TLS == nil {
			return ctx, nil
		}
		s.metrics.authFailures.Inc()
		s.authLog.failed(peerHost(ctx), "", method, "no credentials")
		return ctx, status.Error(codes.Unauthenticated, "credentials are required")
	}
	user, ok := s.checkBasic(values[0])
	if !ok {
		s.metrics.authFailures.Inc()
		// Only the user name is logged: the header holds the password.
		s.authLog.failed(peerHost(ctx), user, method, "invalid credentials")
		return ctx, status.Error(codes.Unauthenticated, "invalid credentials")
	}
	return auth.NewContext(ctx, auth.Principal{Name: user}), nil
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

// checkBasic returns the user named by an Authorization header and whether
// its password is right. It compares in constant time.
func (s *Server) checkBasic(header string) (string, bool) {
	scheme, payload, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "basic") {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(payload))
	if err != nil {
		return "", false
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", false
	}
	want, known := s.users[user]
	if !known {
		// Compare anyway, so that timing does not reveal which users exist.
		subtle.ConstantTimeCompare([]byte(password), []byte(password+"x"))
		return user, false
	}
	return user, subtle.ConstantTimeCompare([]byte(password), []byte(want)) == 1
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		if info.IsClientStream && !info.IsServerStream {
			drain(ss)
		}
		return err
	}
	return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
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
