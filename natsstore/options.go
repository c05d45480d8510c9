package natsstore

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
)

// Options configure a node. Dir and one of URL or Conn are required.
type Options struct {
	// Dir is the node's directory: its copy of the store (the embedded
	// engine, in Dir/store) and its node id (Dir/node-id).
	Dir string
	// URL names the NATS servers, comma-separated
	// ("nats://h1:4222,nats://h2:4222"), each with the user and password
	// to authenticate with, if any ("nats://user:password@h1:4222").
	// Ignored when Conn is set.
	URL string
	// Conn is a connection to NATS that the node uses instead of dialling
	// URL; the node does not close it.
	Conn *nats.Conn
	// NATSOptions are added to the connection the node (or a Registry)
	// dials: credentials other than a user and password in URL, such as
	// nats.UserCredentials (a user's .creds file) or
	// nats.NkeyOptionFromSeed (a user's NKey seed), and TLS, such as
	// nats.RootCAs and nats.ClientCert. storeurl/nats fills them from a
	// nats:// URL's creds, nkey and tls parameters. Ignored when Conn is
	// set.
	NATSOptions []nats.Option
	// Stream is the name of the JetStream stream that holds the log.
	// Zero means "CAIRN". Nodes of one cluster name the same stream.
	Stream string
	// Replicas is the stream's replication factor when the node creates
	// it. Zero means 3; a NATS cluster needs at least as many servers.
	Replicas int
	// NodeID names the node in the cluster. Zero means the id kept in
	// Dir/node-id, created (random) the first time.
	NodeID string
	// Advertise is the address clients reach this node's server at
	// (host:port), which gossip reports. Empty for a node that serves no
	// clients.
	Advertise string
	// NoSync opens the node's copy without fsync, for tests and
	// benchmarks only; the log is as durable as the NATS servers make it.
	NoSync bool
	// Logger receives diagnostics. Nil discards them.
	Logger *slog.Logger
	// MaxRecordBytes bounds one record of the log. Zero means the most
	// the NATS servers accept in one message.
	MaxRecordBytes int
	// PublishTimeout bounds how long a writer tries to log a record
	// (through a NATS leader election, say) before it fails the writes in
	// it. Zero means 30 seconds.
	PublishTimeout time.Duration
	// TrimEvery is how often the node trims the log below the sequence
	// every node of the cluster has applied. Zero means every minute;
	// negative never.
	TrimEvery time.Duration
	// TrimKeep is how many records below that sequence trimming keeps, so
	// that a node restored from a slightly older backup can still catch
	// up. Zero keeps none.
	TrimKeep uint64
	// ReportEvery is how often the node reports itself (its address and
	// applied sequence) in the cluster's registry. Zero means every second.
	ReportEvery time.Duration
}

var streamName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (o *Options) ensureDefaults() error {
	if o.Dir == "" {
		return fmt.Errorf("natsstore: no directory for the node's copy (Options.Dir)")
	}
	if o.URL == "" && o.Conn == nil {
		return fmt.Errorf("natsstore: no NATS servers to connect to (Options.URL)")
	}
	if o.Stream == "" {
		o.Stream = "CAIRN"
	}
	if !streamName.MatchString(o.Stream) {
		return fmt.Errorf("natsstore: stream name %q: use 1 to 64 letters, digits, '-' or '_'", o.Stream)
	}
	if o.Replicas == 0 {
		o.Replicas = 3
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		return fmt.Errorf("natsstore: %d replicas: JetStream takes 1 to 5", o.Replicas)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 30 * time.Second
	}
	if o.TrimEvery == 0 {
		o.TrimEvery = time.Minute
	}
	if o.ReportEvery <= 0 {
		o.ReportEvery = time.Second
	}
	return nil
}

// subject is the subject the log's records are published on.
func (o *Options) subject() string { return "cairn.log." + o.Stream }

// bucket is the key-value bucket of the cluster's registry of nodes.
func (o *Options) bucket() string { return o.Stream + "_nodes" }
