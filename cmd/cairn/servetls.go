package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/storeurl"
)

// What cairn serve does about TLS: without --tls-cert and --tls-key, and
// without --insecure, it serves TLS on loopback with a development CA and
// node certificate of its own, made on its first start in the certificate
// directory, so that every official client connects with no setup (the Go
// client sends credentials only over TLS).

// defaultCertsDir is the certificate directory of a server of store that
// names none (--certs-dir): certs in the store's directory for the
// embedded engine, ./cairn-certs for any other store.
func defaultCertsDir(store string) string {
	if kind, dir, err := storeurl.Parse(store); err == nil && kind == storeurl.Dir {
		return filepath.Join(dir, "certs")
	}
	return "./cairn-certs"
}

// checkServeTLS refuses what serve cannot do securely on listen: beyond
// loopback it needs a certificate of its own (the development one names
// loopback only) and TLS; and a --certs-dir it would not use.
func checkServeTLS(listen, tlsCert, certsDir string, insecure bool) error {
	if certsDir != "" && (insecure || tlsCert != "") {
		return errors.New("--certs-dir holds the development certificate, which serve uses only without --tls-cert and --insecure: drop one or the other")
	}
	if insecure || tlsCert != "" {
		return server.CheckExposure(listen, tlsCert != "")
	}
	if server.IsLoopback(listen) {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s, beyond loopback, with the development certificate, which names this machine's loopback only: "+
		"give --tls-cert and --tls-key (cairn certs --dir ./certs --host NAME makes a pair for the name clients use)", listen)
}

// devCertFiles are the files of the development CA and node certificate
// in dir, as server.GenerateCerts writes them.
func devCertFiles(dir string) server.CertFiles {
	return server.CertFiles{
		CACert:   filepath.Join(dir, "ca.crt"),
		CAKey:    filepath.Join(dir, "ca.key"),
		NodeCert: filepath.Join(dir, "node.crt"),
		NodeKey:  filepath.Join(dir, "node.key"),
	}
}

// devTLS returns the TLS configuration of the development certificate in
// dir and the absolute path of the CA certificate clients trust. It makes
// the CA and the certificate (server.GenerateCerts: localhost, 127.0.0.1
// and ::1) when dir holds none of them, and again when they have expired.
// A directory that holds some of the files but not all, or a certificate
// that its CA did not sign, is an error that says what to do: cairn does
// not replace what it did not make whole.
func devTLS(dir string, log *slog.Logger) (*tls.Config, string, error) {
	files := devCertFiles(dir)
	var present, missing []string
	for _, p := range []string{files.CACert, files.NodeCert, files.NodeKey} {
		switch _, err := os.Stat(p); {
		case err == nil:
			present = append(present, filepath.Base(p))
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, filepath.Base(p))
		default:
			return nil, "", fmt.Errorf("development certificate: %w", err)
		}
	}
	switch {
	case len(present) == 0:
		if _, err := server.GenerateCerts(dir, server.CertOptions{Overwrite: true}); err != nil {
			return nil, "", fmt.Errorf("making the development certificate in %s: %w", dir, err)
		}
		log.Info("made a development CA and a certificate for localhost, 127.0.0.1 and ::1", "dir", dir)
	case len(missing) > 0:
		return nil, "", fmt.Errorf("the certificate directory %s holds %s but not %s: remove those files to have cairn serve make a new development CA and certificate, "+
			"or give --tls-cert and --tls-key", dir, strings.Join(present, ", "), strings.Join(missing, ", "))
	}
	cfg, err := server.LoadTLS(files.NodeCert, files.NodeKey)
	if err != nil {
		return nil, "", err
	}
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", files.NodeCert, err)
	}
	if time.Now().After(leaf.NotAfter) {
		if _, err := server.GenerateCerts(dir, server.CertOptions{Overwrite: true}); err != nil {
			return nil, "", fmt.Errorf("replacing the expired development certificate in %s: %w", dir, err)
		}
		log.Warn("the development certificate had expired: made a new CA and certificate; clients holding a copy of the old ca.crt need the new one", "dir", dir, "expired", leaf.NotAfter)
		return devTLS(dir, log)
	}
	pool, err := server.LoadCertPool(files.CACert)
	if err != nil {
		return nil, "", err
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		return nil, "", fmt.Errorf("%s is not a certificate for localhost signed by %s (%v): remove the files of %s to have cairn serve make new ones, or give --tls-cert and --tls-key",
			files.NodeCert, files.CACert, err, dir)
	}
	ca := files.CACert
	if abs, err := filepath.Abs(ca); err == nil {
		ca = abs
	}
	return cfg, ca, nil
}

// endpoints are how clients reach a server: the connection string of the
// KurrentDB clients and the --server URL of cairn's commands.
type endpoints struct {
	kurrent, cairn string
}

// endpointsFor returns the endpoints of a server listening on addr. The
// user is admin, with its password when it is still the default one
// (anyone knows it) and PASSWORD otherwise; ca is the CA certificate
// clients trust, empty for plaintext.
func endpointsFor(addr net.Addr, defaultPassword bool, ca string) endpoints {
	host := addr.String()
	if h, port, err := net.SplitHostPort(host); err == nil {
		if server.IsLoopback(host) {
			// The name the development certificate and every client know.
			h = "localhost"
		} else if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
			if name, err := os.Hostname(); err == nil && name != "" {
				h = name
			}
		}
		host = net.JoinHostPort(h, port)
	}
	password := "PASSWORD"
	if defaultPassword {
		password = server.DefaultAdminPassword
	}
	rest := "admin:" + password + "@" + host
	if ca == "" {
		return endpoints{kurrent: "kurrentdb://" + rest + "?tls=false", cairn: "cairn://" + rest}
	}
	params := "?tls=true&tlsCAFile=" + queryValue.Replace(ca)
	return endpoints{kurrent: "kurrentdb://" + rest + params, cairn: "cairn://" + rest + params}
}

// queryValue escapes what would end or change a value in a query, and
// nothing else, so that a path stays readable.
var queryValue = strings.NewReplacer("%", "%25", "&", "%26", "#", "%23", "+", "%2B", " ", "%20")

// print writes the endpoints for a person to copy.
func (e endpoints) print(w io.Writer, tlsOn bool) {
	fmt.Fprintf(w, "KurrentDB clients connect with:\n  %s\n", e.kurrent)
	if !tlsOn {
		fmt.Fprintln(w, "  (the official Go client sends no credentials without TLS: it cannot use this server; serve without --insecure)")
	}
	fmt.Fprintf(w, "cairn's commands reach it with:\n  --server '%s'\n", e.cairn)
}
