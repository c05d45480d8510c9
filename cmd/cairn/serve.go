package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/backup"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/server/tracing"
	"github.com/cairndb/cairn/server/users"
	"github.com/cairndb/cairn/storeurl"
	"github.com/spf13/cobra"
)

// The environment variables read when --admin-password and --ops-password
// are not given.
const (
	envAdminPassword = "CAIRN_ADMIN_PASSWORD"
	envOpsPassword   = "CAIRN_OPS_PASSWORD"
)

func newServeCmd(g *globals) *cobra.Command {
	var (
		listen, httpListen string
		advertise          string
		tlsCert, tlsKey    string
		tlsClientCA        string
		certsDir           string
		adminPassword      string
		opsPassword        string
		insecure, jsonLogs bool
		httpPublic         bool
		atomPub            bool
		noUI               bool
		shutdownTimeout    time.Duration
		maxAppendBytes     int
		logLevel           slog.Level
		otlpEndpoint       string
		pprof              bool
		cpuprofile         string
		cluster            clusterFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a store over the KurrentDB gRPC protocol and cairn.v1",
		Long: `Serve the store named by --store (by default the embedded engine in
./cairn-data) to the official KurrentDB clients and to cairn's own clients,
on one gRPC port, which also answers KurrentDB's HTTP/1.1 calls (/ping,
/info, /health/live, /gossip, /stats) and serves the admin web UI at /ui/
(https://localhost:2113/ in a browser; log in as a user of the store).
/metrics (Prometheus) and /health are served on an HTTP port of their
own.

Security: every request but discovery must authenticate, as a user kept in
the store (basic auth: user name and password), or with --tls-client-ca by
a client certificate whose common name is the user's name. Stream ACLs
($acl in stream metadata, defaults in $settings) decide what each user may
do, as in KurrentDB.

TLS: with --tls-cert and --tls-key the server speaks TLS with that
certificate. Without them, on loopback, it speaks TLS with a development
CA and a certificate for localhost, 127.0.0.1 and ::1 that it makes on its
first start in --certs-dir (by default certs in the store's directory,
./cairn-data/certs, or ./cairn-certs for a store that is not a
directory), and prints the connection string that trusts them:
kurrentdb://admin:changeit@localhost:2113?tls=true&tlsCAFile=…/ca.crt.
--insecure serves plaintext instead, on loopback only: cairn's commands
and the Node.js client send their credentials over it, but the official
Go client sends none without TLS, so it cannot use such a server. Beyond
loopback the server needs --tls-cert and --tls-key, and refuses to start
while admin or ops has the default password "changeit". The HTTP port
has neither TLS nor authentication: beyond loopback it is refused unless
--http-public says to serve /metrics and /health to anyone who reaches it.

On its first start with a store, cairn serve creates the users admin (in
$admins) and ops (in $ops), as KurrentDB does, with the passwords of
--admin-password (else $CAIRN_ADMIN_PASSWORD, else "changeit") and
--ops-password (else $CAIRN_OPS_PASSWORD, else "changeit"). Later starts
keep the users as the store has them: change passwords with the Users
service.

SIGTERM or Ctrl-C stops taking new requests, ends subscriptions, lets
in-flight appends finish (up to --shutdown-timeout) and closes the store.`,
		Example: `  cairn serve
  # then: kurrentdb://admin:changeit@localhost:2113?tls=true&tlsCAFile=$PWD/cairn-data/certs/ca.crt
  cairn serve --store memory: --insecure   # plaintext; not for the Go client
  cairn certs --dir ./certs && CAIRN_ADMIN_PASSWORD=… CAIRN_OPS_PASSWORD=… cairn serve \
      --listen 0.0.0.0:2113 --tls-cert certs/node.crt --tls-key certs/node.key
  # then: kurrentdb://admin:…@localhost:2113?tls=true&tlsCAFile=certs/ca.crt
  cairn certs --dir ./certs --user ada && cairn serve --tls-cert certs/node.crt \
      --tls-key certs/node.key --tls-client-ca certs/ca.crt
  # then: kurrentdb://localhost:2113?tls=true&tlsCAFile=certs/ca.crt&userCertFile=certs/user-ada.crt&userKeyFile=certs/user-ada.key
  # a node of a cluster on an existing NATS cluster (see docs/cluster.md):
  cairn serve --store 'nats://h1:4222,h2:4222,h3:4222' --data ./node1 --listen 0.0.0.0:2113 …
  # three nodes on one machine, each with an embedded NATS server (n2, n3 alike):
  cairn certs --dir ./certs && cairn serve --data ./n1 --listen 127.0.0.1:2113 --http-listen 127.0.0.1:2114 \
      --tls-cert certs/node.crt --tls-key certs/node.key --nats-embedded --nats-listen 127.0.0.1:4222 \
      --nats-cluster 127.0.0.1:6222 --nats-routes 127.0.0.1:6223,127.0.0.1:6224`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			begun := time.Now()
			var handler slog.Handler = slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: logLevel})
			if jsonLogs {
				handler = slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: logLevel})
			}
			log := slog.New(handler)

			if maxAppendBytes < 0 {
				return fmt.Errorf("--max-append-bytes %d: must be positive, or 0 for the default", maxAppendBytes)
			}
			if err := checkListen("--listen", listen); err != nil {
				return err
			}
			if httpListen != "" {
				if err := checkListen("--http-listen", httpListen); err != nil {
					return err
				}
			}
			if pprof {
				if err := server.CheckPprof(httpListen); err != nil {
					return err
				}
			}
			if otlpEndpoint != "" {
				if err := tracing.CheckEndpoint(otlpEndpoint); err != nil {
					return fmt.Errorf("--otlp-endpoint: %w", err)
				}
			}
			if (tlsCert == "") != (tlsKey == "") {
				return errors.New("--tls-cert and --tls-key go together")
			}
			if insecure && tlsCert != "" {
				return errors.New("--insecure turns TLS off: drop it, or drop --tls-cert and --tls-key")
			}
			if tlsClientCA != "" && insecure {
				return errors.New("--tls-client-ca needs TLS: drop --insecure")
			}
			if !cmd.Flags().Changed("admin-password") {
				adminPassword = os.Getenv(envAdminPassword)
			}
			if !cmd.Flags().Changed("ops-password") {
				opsPassword = os.Getenv(envOpsPassword)
			}
			if err := checkServeTLS(listen, tlsCert, certsDir, insecure); err != nil {
				return err
			}
			if err := server.CheckHTTPExposure(httpListen, httpPublic); err != nil {
				return err
			}
			opts := server.Options{
				Logger:          log,
				AdminPassword:   adminPassword,
				OpsPassword:     opsPassword,
				Metrics:         server.NewMetrics(),
				Advertise:       advertise,
				ShutdownTimeout: shutdownTimeout,
				MaxAppendBytes:  maxAppendBytes,
				AtomPub:         atomPub,
				DisableWebUI:    noUI,
				SystemEvents:    true,
				Pprof:           pprof,
			}
			caFile := ""
			if tlsCert != "" {
				cfg, err := server.LoadTLS(tlsCert, tlsKey)
				if err != nil {
					return err
				}
				opts.TLS, caFile = cfg, caFileFor(tlsCert)
			} else if insecure {
				log.Warn("--insecure: serving plaintext on loopback; requests must still authenticate, and the official Go client sends credentials only over TLS", "addr", listen)
			}
			if tlsClientCA != "" {
				var err error
				if opts.ClientCAs, err = server.LoadCertPool(tlsClientCA); err != nil {
					return fmt.Errorf("--tls-client-ca: %w", err)
				}
			}
			if httpListen != "" && !server.IsLoopback(httpListen) {
				log.Warn("--http-public: /metrics and /health are served beyond loopback without TLS or authentication", "addr", httpListen)
			}

			ctx := cmd.Context()
			if err := checkStoreURL(g.store); err != nil {
				return err
			}
			if err := checkServeStore(g.store); err != nil {
				return err
			}
			if cpuprofile != "" {
				stop, err := startCPUProfile(cpuprofile)
				if err != nil {
					return err
				}
				defer func() {
					if err := stop(); err != nil {
						log.Error("writing the CPU profile", "err", err)
					}
				}()
			}
			tr, stopTracing, err := startTracing(ctx, log, otlpEndpoint)
			if err != nil {
				return err
			}
			defer stopTracing()
			hooks := opts.Metrics.Hooks()
			if tr != nil {
				opts.Tracing, hooks = tr, tr.Hooks(hooks)
			}
			nd, err := cluster.prepare(g.store, cmd.Flags().Changed("store"), log)
			if err != nil {
				return err
			}
			defer nd.stop()
			g.store = nd.store
			adv := advertise
			if adv == "" {
				adv = listen
			}
			store, err := storeurl.Open(ctx, g.store, storeurl.Options{
				Store:   cairn.Options{Logger: log, Hooks: hooks},
				NodeDir: nd.nodeDir, Advertise: adv,
			})
			if err != nil {
				if kind, dir, _ := storeurl.Parse(g.store); kind == storeurl.Dir && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)) {
					return fmt.Errorf("the store in %s is in use by another process, most likely a running cairn server: stop it first, or serve another --store", dir)
				}
				return err
			}
			defer func() {
				if err := store.Close(); err != nil {
					log.Error("closing the store", "err", err)
				} else {
					log.Info("store closed")
				}
			}()
			if tlsCert == "" && !insecure {
				// After the store: the default directory is in the store's.
				if certsDir == "" && cluster.data != "" {
					certsDir = filepath.Join(cluster.data, "certs") // a cluster node's directory
				}
				if certsDir == "" {
					certsDir = defaultCertsDir(g.store)
				}
				if opts.TLS, caFile, err = devTLS(certsDir, log); err != nil {
					return err
				}
			}

			lis, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			if db, ok := store.Backend().(backup.Source); ok {
				opts.Backup = backup.StreamFunc(db)
			}
			srv, err := server.New(ctx, store, opts)
			if err != nil {
				lis.Close()
				return err
			}
			if err := srv.CheckDefaultPasswords(ctx, listen); err != nil {
				lis.Close()
				if serr := srv.Shutdown(context.Background()); serr != nil {
					log.Warn("stopping the server", "err", serr)
				}
				return err
			}
			warnIgnoredPasswords(ctx, log, srv, map[string]string{"admin": adminPassword, "ops": opsPassword})
			errc := make(chan error, 2)
			served := make(chan struct{}) // closed when Serve has returned
			go func() {
				defer close(served)
				errc <- srv.Serve(lis)
			}()

			var web *http.Server
			httpAddr := httpListen // as bound, for the log: a port 0 becomes the one chosen
			if httpListen != "" {
				hl, err := net.Listen("tcp", httpListen)
				if err != nil {
					_ = srv.Shutdown(context.Background())
					return fmt.Errorf("--http-listen: %w", err)
				}
				httpAddr = hl.Addr().String()
				web = srv.HTTPServer()
				go func() {
					if err := web.Serve(hl); !errors.Is(err, http.ErrServerClosed) {
						errc <- fmt.Errorf("http: %w", err)
					}
				}()
			}
			_, adminErr := srv.Users().Authenticate(ctx, "admin", server.DefaultAdminPassword)
			ends := endpointsFor(lis.Addr(), adminErr == nil, caFile)
			log.Info("cairn serving", "store", storeurl.Redact(g.store), "grpc", lis.Addr().String(), "http", httpAddr,
				"tls", opts.TLS != nil, "connect", ends.kurrent, "startup", time.Since(begun).Round(time.Microsecond).String())
			ends.print(cmd.OutOrStdout(), opts.TLS != nil)

			var serveErr error
			select {
			case <-ctx.Done():
				log.Info("shutting down: no new requests; finishing in-flight ones", "bound", shutdownTimeout.String())
			case serveErr = <-errc:
				log.Error("server failed", "err", serveErr)
			}
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				log.Warn("in-flight requests cut short", "err", err)
			}
			// Serve logs as it starts: it must be done before the command
			// returns and its log's writer is let go.
			<-served
			if web != nil {
				_ = web.Shutdown(sctx)
			}
			return serveErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:2113", "the gRPC address (KurrentDB protocol and cairn.v1)")
	f.StringVar(&advertise, "advertise", "", "the host:port gossip tells clients to use (default: the listen address, or the host name on 0.0.0.0)")
	f.StringVar(&httpListen, "http-listen", "127.0.0.1:2114", "the HTTP address of /metrics and /health; empty turns it off")
	f.BoolVar(&httpPublic, "http-public", false, "allow --http-listen beyond loopback: /metrics and /health to anyone, without TLS or authentication")
	f.BoolVar(&atomPub, "enable-atom-pub-over-http", false, "serve KurrentDB's AtomPub append (POST /streams/{stream}) on the gRPC port, authenticated; off by default, as in KurrentDB 25")
	f.BoolVar(&noUI, "disable-admin-ui", false, "do not serve the admin web UI (/ui/ on the gRPC port)")
	f.StringVar(&tlsCert, "tls-cert", "", "PEM certificate of the node (turns TLS on)")
	f.StringVar(&tlsKey, "tls-key", "", "PEM private key of the node")
	f.StringVar(&tlsClientCA, "tls-client-ca", "", "PEM certificates of the authorities whose client certificates authenticate users (by common name)")
	f.BoolVar(&insecure, "insecure", false, "serve plaintext (loopback only); requests still authenticate, and the official Go client, which sends credentials only over TLS, cannot connect")
	f.StringVar(&certsDir, "certs-dir", "", "where serve keeps the development CA and certificate it makes when TLS has no --tls-cert (default: certs in the store's directory, else ./cairn-certs)")
	f.StringVar(&adminPassword, "admin-password", "", "the admin user's password when a new store creates it (default $"+envAdminPassword+", else \"changeit\")")
	f.StringVar(&opsPassword, "ops-password", "", "the ops user's password when a new store creates it (default $"+envOpsPassword+", else \"changeit\")")
	f.IntVar(&maxAppendBytes, "max-append-bytes", 0, "the largest append, its events encoded plus 128 bytes each; larger ones are refused (default: the largest event plus 1 MiB, 17 MiB)")
	f.DurationVar(&shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long a shutdown waits for in-flight requests")
	f.TextVar(&logLevel, "log-level", slog.LevelInfo, "debug, info, warn or error")
	f.BoolVar(&jsonLogs, "log-json", false, "log JSON lines instead of text")
	f.BoolVar(&pprof, "pprof", false, "serve Go's profiles (/debug/pprof/) on the HTTP port, to loopback clients only")
	f.StringVar(&otlpEndpoint, "otlp-endpoint", "", "trace with OpenTelemetry, exporting spans over OTLP/gRPC to this collector URL (http://host:4317 plaintext, https:// TLS); default $"+tracing.EnvTracesEndpoint+" or $"+tracing.EnvEndpoint+", else no tracing")
	// For cairn bench --server-cpuprofile, which starts the server.
	f.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of the server's run to this file")
	if err := f.MarkHidden("cpuprofile"); err != nil {
		panic(err)
	}
	cluster.register(f)
	return cmd
}

// checkListen refuses an address that is not host:port, saying what to
// write instead.
func checkListen(flag, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		if _, perr := strconv.ParseUint(addr, 10, 16); perr == nil {
			return fmt.Errorf("%s %s: the host is missing: use 127.0.0.1:%s for this machine only, or 0.0.0.0:%s for every interface", flag, addr, addr, addr)
		}
		return fmt.Errorf("%s %q: want host:port, such as 127.0.0.1:2113: %w", flag, addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%s %q: port %q is not a number from 0 to 65535", flag, addr, port)
	}
	return nil
}

// caFileFor returns the CA certificate that clients need to trust the node
// certificate cert: the ca.crt beside it, as cairn certs writes it, by its
// absolute path.
func caFileFor(cert string) string {
	ca := filepath.Join(filepath.Dir(cert), "ca.crt")
	if abs, err := filepath.Abs(ca); err == nil {
		ca = abs
	}
	if _, err := os.Stat(ca); err != nil {
		return "CA-THAT-SIGNED-" + filepath.Base(cert)
	}
	return ca
}

// warnIgnoredPasswords logs a warning for each built-in user whose
// configured password is not the one the store has: the configuration
// applies only when the user is created, on a store's first start.
func warnIgnoredPasswords(ctx context.Context, log *slog.Logger, srv *server.Server, configured map[string]string) {
	for _, name := range []string{"admin", "ops"} {
		password := configured[name]
		if password == "" {
			continue
		}
		if _, err := srv.Users().Authenticate(ctx, name, password); errors.Is(err, users.ErrBadCredentials) {
			log.Warn("the configured password of a built-in user is not the store's: it applies only when a new store creates the user; change the password with the Users service", "user", name)
		}
	}
}

// startCPUProfile writes a CPU profile to path until the function it
// returns is called.
func startCPUProfile(path string) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
