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
// Each implies tls=true.
//
// NATS credentials other than user:password in the URL: creds names a
// user credentials file (the user's JWT and NKey seed, as nsc and NATS
// operators hand out), nkey a file holding a user's NKey seed (SU…). The
// two, and user:password, are exclusive. Parse reads the file and checks
// that it holds what it should (for creds: a user JWT, unexpired, and the
// seed of that user); the connection reads it again each time it
// authenticates. Errors name the parameter and the file, never what the
// file holds.
//
// Parameter names are read in any case.
package nats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/natsstore"
	"github.com/cairndb/cairn/storeurl"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
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
	var credsKey, credsFile, nkeyKey, nkeyFile string
	file := func(k, val, kind string) (string, error) {
		if val == "" {
			return "", fmt.Errorf("%s is empty: name %s", k, kind)
		}
		if _, err := os.Stat(val); err != nil {
			return "", fmt.Errorf("%s=%q: %v", k, val, pathErr(err))
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
			if caFile, err = file(k, val, "a PEM file"); err != nil {
				return bad("%v", err)
			}
		case "tlscertfile":
			if certFile, err = file(k, val, "a PEM file"); err != nil {
				return bad("%v", err)
			}
		case "tlskeyfile":
			if keyFile, err = file(k, val, "a PEM file"); err != nil {
				return bad("%v", err)
			}
		case "creds":
			credsKey = k
			if credsFile, err = file(k, val, "a NATS user credentials (.creds) file"); err != nil {
				return bad("%v", err)
			}
		case "nkey":
			nkeyKey = k
			if nkeyFile, err = file(k, val, "a file holding a NATS user's NKey seed"); err != nil {
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
			return bad("unknown parameter %q: use dir, stream, replicas, node, creds, nkey, tls, tlsCAFile, tlsCertFile or tlsKeyFile", k)
		}
	}
	if credsKey != "" && nkeyKey != "" {
		return bad("%s and %s are two ways to authenticate to NATS: give one", credsKey, nkeyKey)
	}
	if user != "" && (credsKey != "" || nkeyKey != "") {
		return bad("%s and a user in the URL (user:password@) are two ways to authenticate to NATS: give one", credsKey+nkeyKey)
	}
	if credsKey != "" {
		if err := checkCreds(credsFile, time.Now()); err != nil {
			return bad("%s=%q: %v", credsKey, credsFile, err)
		}
		o.NATSOptions = append(o.NATSOptions, nats.UserCredentials(credsFile))
	}
	if nkeyKey != "" {
		opt, err := nkeyOption(nkeyFile)
		if err != nil {
			return bad("%s=%q: %v", nkeyKey, nkeyFile, err)
		}
		o.NATSOptions = append(o.NATSOptions, opt)
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

// pathErr drops the path from a file's error, which the caller names with
// its parameter.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkCreds checks that a user credentials file holds a user JWT, not
// expired at now, and the NKey seed of that user. Its errors say what is
// missing, never what the file holds.
func checkCreds(path string, now time.Time) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return pathErr(err)
	}
	defer wipe(b)
	token, err := nkeys.ParseDecoratedJWT(b)
	if err != nil {
		return errors.New("no user JWT in the file: want a NATS user credentials (.creds) file")
	}
	claims, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return errors.New("no valid user JWT in the file: want a NATS user credentials (.creds) file")
	}
	if claims.Expires != 0 && now.Unix() >= claims.Expires {
		return fmt.Errorf("the user JWT expired at %s", time.Unix(claims.Expires, 0).UTC().Format(time.RFC3339))
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return errors.New("no user NKey seed in the file: want a NATS user credentials (.creds) file, which holds the JWT and the seed")
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return errors.New("no valid user NKey seed in the file")
	}
	if pub != claims.Subject {
		return fmt.Errorf("the NKey seed is not the one of the JWT's user (%s)", claims.Subject)
	}
	return nil
}

// nkeyOption checks that a file holds a user's NKey seed and returns the
// option that authenticates with it. Its errors never show the seed.
func nkeyOption(path string) (nats.Option, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, pathErr(err)
	}
	defer wipe(b)
	if bytes.Contains(b, []byte("NATS USER JWT")) {
		return nil, errors.New("the file holds a user JWT: a user credentials (.creds) file goes in creds=")
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return nil, errors.New("no user NKey seed (SU…) in the file")
	}
	kp.Wipe()
	opt, err := nats.NkeyOptionFromSeed(path)
	if err != nil {
		return nil, errors.New("no user NKey seed (SU…) in the file")
	}
	return opt, nil
}

// wipe overwrites a secret read from a file.
func wipe(b []byte) {
	for i := range b {
		b[i] = 'x'
	}
}
