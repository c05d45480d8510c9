package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/natsstore"
	"github.com/cairndb/cairn/storeurl"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// hostPort matches what looks like a server's address without a scheme:
// localhost:2113, 127.0.0.1:2113, [::1]:2113.
var hostPort = regexp.MustCompile(`^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]+$`)

// checkServerURL refuses a --server that does not name a server.
func checkServerURL(raw string) error {
	if hostPort.MatchString(raw) {
		return fmt.Errorf("--server %s: a server URL starts with its scheme: use --server cairn://%s", raw, raw)
	}
	kind, _, err := storeurl.Parse(raw)
	if err != nil {
		return fmt.Errorf("--server: %w", err)
	}
	if kind != storeurl.Remote {
		return fmt.Errorf("--server %q is not a server URL: use cairn://host:port (for a directory or a database, use --store)", storeurl.Redact(raw))
	}
	return nil
}

// checkStoreURL refuses a --store that looks like a server's address, which
// would otherwise name a directory.
func checkStoreURL(raw string) error {
	if hostPort.MatchString(raw) {
		return fmt.Errorf("--store %s looks like a server's address: use --server cairn://%s (or --store ./%s for a directory of that name)", raw, raw, raw)
	}
	return nil
}

// openURL opens the store url names. In readOnly mode a directory must hold
// a store already, and is opened without writing to it.
func openURL(ctx context.Context, url string, mode openMode) (*cairn.Store, error) {
	kind, dir, err := storeurl.Parse(url)
	if err != nil {
		return nil, err
	}
	if kind == storeurl.Dir && mode == readOnly {
		return openExistingDir(dir)
	}
	if kind == storeurl.Nats && mode == readOnly {
		// Opening a nats:// store makes this process a node of the
		// cluster: a copy of the whole log in a directory of its own, and
		// an entry in the cluster's registry that holds trimming back.
		return nil, fmt.Errorf("--store %s would make this command a node of the cluster (a copy of the log, and an entry in its registry): read through a node's server instead, with --server cairn://USER:PASSWORD@NODE:PORT (the URL cairn serve prints)", storeurl.Redact(url))
	}
	s, err := openPassing(ctx, url, storeurl.Options{})
	if err != nil && kind == storeurl.Dir {
		return nil, explainDirError(dir, err)
	}
	return s, err
}

// openPassing opens the store url names for a command that ends. A
// cluster node (nats://) that such a command opens leaves the cluster's
// registry as it closes, so that it does not hold the log's trimming back
// (its directory keeps its copy: opened again, it joins again and replays
// the log from where it stopped, if the log still holds that).
func openPassing(ctx context.Context, url string, opts storeurl.Options) (*cairn.Store, error) {
	s, err := storeurl.Open(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	if db, ok := s.Backend().(*natsstore.DB); ok {
		db.LeaveOnClose()
	}
	return s, nil
}

// openExistingDir opens the embedded engine in dir read-only, after
// checking that dir holds a store.
func openExistingDir(dir string) (*cairn.Store, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("no store at %s: the directory does not exist; name a store with --store DIR, a server with --server cairn://HOST:PORT, or start one with: cairn serve --store %s", dir, dir)
	case err != nil:
		return nil, fmt.Errorf("store %s: %w", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("no store at %s: it is a file, not a store's directory", dir)
	}
	db, err := diskstore.Open(dir, diskstore.Options{ReadOnly: true})
	if errors.Is(err, diskstore.ErrNeedsRecovery) {
		// The store was not closed cleanly: recovering its index writes to
		// it, as any open for writing would.
		db, err = diskstore.Open(dir, diskstore.Options{})
	}
	if err != nil {
		return nil, explainDirError(dir, err)
	}
	return cairn.NewStore(db, cairn.Options{}), nil
}

// explainDirError turns the errors a user meets opening a directory into
// what to do about them.
func explainDirError(dir string, err error) error {
	switch {
	case errors.Is(err, diskstore.ErrNoStore):
		return fmt.Errorf("no store at %s: the directory holds no cairn store (other files are there, or none)", dir)
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK):
		return fmt.Errorf("the store in %s is in use by another process, most likely a running cairn server: "+
			"go through the server with --server %s (the URL it printed as it started), or stop it first", dir, serverHint(dir))
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("the store in %s is on read-only media: read, streams, stats, tail and export work there, nothing that writes: %w", dir, err)
	}
	return err
}

// serverHint is the --server URL of a server of dir on its default
// address, as cairn serve prints it: over TLS with the development CA it
// keeps in dir, when it is there.
func serverHint(dir string) string {
	ca := devCertFiles(defaultCertsDir(dir)).CACert
	if _, err := os.Stat(ca); err != nil {
		return "cairn://admin:PASSWORD@localhost:2113"
	}
	if abs, err := filepath.Abs(ca); err == nil {
		ca = abs
	}
	return "'cairn://admin:PASSWORD@localhost:2113?tls=true&tlsCAFile=" + queryValue.Replace(ca) + "'"
}

// explainServerError adds to the errors of a server (raw, a cairn:// URL)
// what to change in the URL: TLS, which cairn serve speaks unless told
// --insecure, and credentials, which it always requires.
func explainServerError(raw string, err error) error {
	if err == nil {
		return nil
	}
	if kind, _, perr := storeurl.Parse(raw); perr != nil || kind != storeurl.Remote {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	u, uerr := url.Parse(raw)
	if uerr != nil {
		return err
	}
	tlsOn := false
	for k, v := range u.Query() {
		if strings.EqualFold(k, "tls") && len(v) > 0 && strings.EqualFold(v[0], "true") {
			tlsOn = true
		}
	}
	switch {
	case st.Code() == codes.Unavailable && !tlsOn && strings.Contains(st.Message(), "server preface"):
		return fmt.Errorf("%w\nthe server may speak TLS, as cairn serve does unless --insecure: add ?tls=true&tlsCAFile=… to the URL "+
			"(cairn serve prints it; the CA of its development certificate is certs/ca.crt in its store's directory)", err)
	case st.Code() == codes.Unauthenticated && u.User == nil:
		return fmt.Errorf("%w\nthe server requires a user: cairn://admin:PASSWORD@%s", err, u.Host)
	}
	return err
}
