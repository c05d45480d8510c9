package remotestore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/cairndb/cairn/api/cairnv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// maxMessageBytes bounds one response: a page of events of up to 16 MiB each
// would not fit in gRPC's default 4 MiB.
const maxMessageBytes = 256 << 20

// Dial connects to the server at addr (host:port). The connection is made
// lazily; the first call reports a server that cannot be reached.
func Dial(addr string, opts Options) (*Store, error) {
	if addr == "" {
		return nil, fmt.Errorf("remotestore: empty server address: use host:port")
	}
	creds := insecure.NewCredentials()
	if opts.TLS != nil {
		creds = credentials.NewTLS(opts.TLS)
	}
	dopts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)),
	}
	if opts.Username != "" || opts.Password != "" {
		dopts = append(dopts, grpc.WithPerRPCCredentials(basicAuth{
			header: "Basic " + base64.StdEncoding.EncodeToString([]byte(opts.Username+":"+opts.Password)),
			secure: opts.TLS != nil,
		}))
	}
	conn, err := grpc.NewClient(addr, dopts...)
	if err != nil {
		return nil, fmt.Errorf("remotestore: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{conn: conn, c: cairnv1.NewCairnClient(conn), log: log, ctx: ctx, cancel: cancel}, nil
}

// Open connects to the server that raw names:
//
//	cairn://[user:password@]host:port[?tls=true&tlsCAFile=ca.crt&tlsVerifyCert=false]
//
// kurrentdb:// and esdb:// URLs of the same form are accepted too, and the
// parameters' names in any case (tlsCAFile or tlscafile), as KurrentDB's
// connection strings have them. TLS is off unless tls=true.
func Open(raw string, opts Options) (*Store, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its message would repeat the URL, password included
		}
		return nil, fmt.Errorf("server URL: %w", err)
	}
	shown := u.Redacted()
	switch u.Scheme {
	case "cairn", "kurrentdb", "esdb":
	default:
		return nil, fmt.Errorf("server URL %q: unknown scheme %q: use cairn://host:port", shown, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("server URL %q: no host: use cairn://host:port", shown)
	}
	if u.User != nil {
		opts.Username = u.User.Username()
		opts.Password, _ = u.User.Password()
	}
	// Parameter names are case-insensitive, as in KurrentDB's connection
	// strings (tlsCAFile, tlsVerifyCert).
	q := url.Values{}
	for key, vals := range u.Query() {
		k := strings.ToLower(key)
		switch k {
		case "tls", "tlscafile", "tlsverifycert":
		default:
			return nil, fmt.Errorf("server URL %q: unknown parameter %q (known: tls, tlsCAFile, tlsVerifyCert)", shown, key)
		}
		q[k] = append(q[k], vals...)
	}
	if v := q.Get("tls"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("server URL %q: tls=%q is not true or false", shown, v)
		}
		if on && opts.TLS == nil {
			opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	if opts.TLS != nil {
		if file := q.Get("tlscafile"); file != "" {
			pem, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("server URL %q: tlscafile: %w", shown, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("server URL %q: tlscafile %s holds no PEM certificate", shown, file)
			}
			opts.TLS.RootCAs = pool
		}
		if v := q.Get("tlsverifycert"); v == "false" {
			opts.TLS.InsecureSkipVerify = true
		}
	}
	return Dial(u.Host, opts)
}

// basicAuth sends a basic authorization header with every call.
type basicAuth struct {
	header string
	secure bool
}

func (a basicAuth) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": a.header}, nil
}

func (a basicAuth) RequireTransportSecurity() bool { return a.secure }
