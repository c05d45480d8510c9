package natsstore

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// An embedded NATS server, so that cairn nodes can form a cluster with
// nothing else installed: each node runs one, the servers route to each
// other and replicate the log among themselves.

// ServerOptions configure an embedded NATS server.
type ServerOptions struct {
	// Name names the server; unique in its cluster. Zero means one made
	// from Listen.
	Name string
	// Dir is where JetStream keeps its files.
	Dir string
	// Listen is the address clients connect to. Zero means 127.0.0.1:4222.
	Listen string
	// ClusterListen is the address other servers route to. Empty runs a
	// server alone (a log of one replica: set Options.Replicas to 1).
	ClusterListen string
	// Routes are the other servers' ClusterListen addresses (host:port).
	Routes []string
	// ClusterName names the NATS cluster. Zero means "cairn".
	ClusterName string
	// NoSync lets JetStream acknowledge writes before they reach the disk
	// (its default of a sync every two minutes): for tests only. Otherwise
	// every write is synced before it is acknowledged (sync_interval:
	// always), the only setting under which an acknowledged write survives
	// the loss of power of a majority of the servers.
	NoSync bool
	// MaxPayload bounds one message, and so one record of the log. Zero
	// means 8 MiB.
	MaxPayload int32
	// Logs sends the server's own log to standard error.
	Logs bool
}

// Server is an embedded NATS server.
type Server struct{ s *server.Server }

// StartServer starts an embedded NATS server with JetStream and waits until
// it takes connections.
func StartServer(o ServerOptions) (*Server, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:4222"
	}
	host, port, err := splitHostPort("listen", o.Listen)
	if err != nil {
		return nil, err
	}
	if o.Name == "" {
		o.Name = "cairn-" + strings.NewReplacer(":", "-", ".", "-").Replace(o.Listen)
	}
	if o.ClusterName == "" {
		o.ClusterName = "cairn"
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = 8 << 20
	}
	if o.Dir == "" {
		return nil, fmt.Errorf("natsstore: no directory for the NATS server's JetStream files")
	}
	opts := &server.Options{
		ServerName:         o.Name,
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           o.Dir,
		MaxPayload:         o.MaxPayload,
		MaxPending:         int64(o.MaxPayload) * 8,
		NoSigs:             true,
		NoLog:              !o.Logs,
		JetStreamMaxMemory: 256 << 20,
	}
	if !o.NoSync {
		opts.SyncAlways = true
	}
	if o.ClusterListen != "" {
		ch, cp, err := splitHostPort("cluster listen", o.ClusterListen)
		if err != nil {
			return nil, err
		}
		opts.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: ch, Port: cp}
		for _, r := range o.Routes {
			if _, _, err := splitHostPort("route", r); err != nil {
				return nil, err
			}
			opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats-route", Host: r})
		}
	}
	// A taken port would otherwise show only as a server that never gets
	// ready (after ReadyForConnections' 30 seconds): say so at once.
	if err := checkFree("listen", o.Listen); err != nil {
		return nil, err
	}
	if o.ClusterListen != "" {
		if err := checkFree("cluster listen", o.ClusterListen); err != nil {
			return nil, err
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsstore: NATS server: %w", err)
	}
	if o.Logs {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("natsstore: the NATS server on %s did not start (is the port taken?)", o.Listen)
	}
	return &Server{s: s}, nil
}

func splitHostPort(what, addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("natsstore: %s address %q: want host:port", what, addr)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("natsstore: %s address %q: bad port", what, addr)
	}
	return h, n, nil
}

// ClientURL returns the URL clients connect to.
func (s *Server) ClientURL() string { return s.s.ClientURL() }

// Shutdown stops the server.
func (s *Server) Shutdown() {
	s.s.Shutdown()
	s.s.WaitForShutdown()
}

// checkFree reports an error wrapping the system's (syscall.EADDRINUSE
// for a port in use) when addr cannot be listened on, as when another
// node on this machine already serves it.
func checkFree(what, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("natsstore: NATS server %s address %s: %w (is another node running with these flags?)", what, addr, err)
	}
	return l.Close()
}
