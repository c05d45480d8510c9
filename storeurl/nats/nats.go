// Package nats registers the replicated engine (natsstore) with storeurl,
// for nats:// URLs. Import it for its side effect:
//
//	import _ "github.com/cairndb/cairn/storeurl/nats"
//
// The URL names the NATS servers and, in its parameters, the node:
//
//	nats://[user:password@]h1:4222,h2:4222,h3:4222?dir=./node1&stream=CAIRN&replicas=3&node=n1
//
// dir is the directory of the node's copy (storeurl.Options.NodeDir when
// absent); stream the JetStream stream of the cluster's log (CAIRN);
// replicas its replication factor when the node creates it (3); node the
// node's id (kept in dir when absent). storeurl.Options.NoSync opens the
// copy without fsync.
//
// For NATS servers that speak TLS: tls=true refuses a server that does not;
// tlsCAFile names the PEM file of the certificate authorities to trust
// (otherwise the system's); tlsCertFile and tlsKeyFile name the client
// certificate and key to present, for servers that verify their clients.
// Each implies tls=true. Parameter names are read in any case.
package nats

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/natsstore"
	"github.com/cairndb/cairn/storeurl"
	"github.com/nats-io/nats.go"
)

func init() { storeurl.Register(storeurl.Nats, open) }

func open(ctx context.Context, raw string, opts storeurl.Options) (cairn.Backend, error) {
	o, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		o.Dir = opts.NodeDir
	}
	if o.Dir == "" {
		return nil, fmt.Errorf("store %q: a nats:// store needs a directory for the node's copy: add ?dir=./node1 (or --data)", storeurl.Redact(raw))
	}
	o.NoSync = opts.NoSync
	o.Logger = opts.Store.Logger
	o.Advertise = opts.Advertise
	db, err := natsstore.Open(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("store %q: %w", storeurl.Redact(raw), err)
	}
	return db, nil
}

// Parse returns the options a nats:// URL names: its servers as
// natsstore.Options.URL, and its parameters.
func Parse(raw string) (natsstore.Options, error) {
	bad := func(format string, args ...any) (natsstore.Options, error) {
		return natsstore.Options{}, fmt.Errorf("store %q: %s", storeurl.Redact(raw), fmt.Sprintf(format, args...))
	}
	rest, ok := strings.CutPrefix(raw, "nats://")
	if !ok {
		return bad("not a nats:// URL")
	}
	hosts, query, _ := strings.Cut(rest, "?")
	hosts = strings.TrimSuffix(hosts, "/")
	var user string
	if i := strings.LastIndexByte(hosts, '@'); i >= 0 {
		user, hosts = hosts[:i+1], hosts[i+1:]
	}
	if hosts == "" {
		return bad("no NATS server: write nats://host:4222[,host2:4222…]")
	}
	var urls []string
	for _, h := range strings.Split(hosts, ",") {
		if h == "" || strings.ContainsAny(h, "/ ") {
			return bad("server %q: want host:port", h)
		}
		urls = append(urls, "nats://"+user+h)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return bad("parameters: %v", err)
	}
	o := natsstore.Options{URL: strings.Join(urls, ",")}
	var secure, tlsGiven bool
	var caFile, certFile, keyFile string
	file := func(k, val string) (string, error) {
		if val == "" {
			return "", fmt.Errorf("%s is empty: name a PEM file", k)
		}
		if _, err := os.Stat(val); err != nil {
			return "", fmt.Errorf("%s=%q: %v", k, val, err)
		}
		return val, nil
	}
	for k, v := range q {
		val := v[len(v)-1]
		switch strings.ToLower(k) {
		case "tls":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return bad("tls=%q: want true or false", val)
			}
			secure, tlsGiven = b, true
		case "tlscafile":
			if caFile, err = file(k, val); err != nil {
				return bad("%v", err)
			}
		case "tlscertfile":
			if certFile, err = file(k, val); err != nil {
				return bad("%v", err)
			}
		case "tlskeyfile":
			if keyFile, err = file(k, val); err != nil {
				return bad("%v", err)
			}
		case "dir":
			o.Dir = val
		case "stream":
			o.Stream = val
		case "node":
			o.NodeID = val
		case "replicas":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 5 {
				return bad("replicas=%q: want 1 to 5", val)
			}
			o.Replicas = n
		default:
			return bad("unknown parameter %q: use dir, stream, replicas, node, tls, tlsCAFile, tlsCertFile or tlsKeyFile", k)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return bad("tlsCertFile and tlsKeyFile go together: the client certificate and its key")
	}
	if secure || caFile != "" || certFile != "" {
		if !secure && tlsGiven {
			return bad("tls=false with a TLS file: drop one")
		}
		o.NATSOptions = append(o.NATSOptions, nats.Secure())
	}
	if caFile != "" {
		o.NATSOptions = append(o.NATSOptions, nats.RootCAs(caFile))
	}
	if certFile != "" {
		o.NATSOptions = append(o.NATSOptions, nats.ClientCert(certFile, keyFile))
	}
	return o, nil
}
