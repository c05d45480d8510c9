package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CertOptions configure [GenerateCerts]. The zero value makes a node
// certificate for localhost, 127.0.0.1 and ::1, valid for a year.
type CertOptions struct {
	// Hosts are extra DNS names or IP addresses the node certificate is
	// valid for.
	Hosts []string
	// Validity is how long the certificates are valid. Zero means 365 days.
	Validity time.Duration
	// Overwrite replaces existing files; otherwise GenerateCerts refuses to
	// touch a directory that already holds them.
	Overwrite bool
}

// CertFiles are the paths GenerateCerts wrote.
type CertFiles struct {
	CACert, CAKey, NodeCert, NodeKey string
}

// GenerateCerts makes a development certificate authority and a node
// certificate signed by it, with ECDSA P-256 keys, in dir: ca.crt, ca.key,
// node.crt and node.key. Keys are written readable by the owner only.
// Clients trust the server with the CA certificate, for example
// kurrentdb://admin:changeit@localhost:2113?tls=true&tlscafile=ca.crt.
//
// The CA is meant for development: anyone with ca.key can make certificates
// that clients of this CA trust.
func GenerateCerts(dir string, opts CertOptions) (CertFiles, error) {
	files := CertFiles{
		CACert:   filepath.Join(dir, "ca.crt"),
		CAKey:    filepath.Join(dir, "ca.key"),
		NodeCert: filepath.Join(dir, "node.crt"),
		NodeKey:  filepath.Join(dir, "node.key"),
	}
	if opts.Validity <= 0 {
		opts.Validity = 365 * 24 * time.Hour
	}
	if !opts.Overwrite {
		for _, p := range []string{files.CACert, files.CAKey, files.NodeCert, files.NodeKey} {
			if _, err := os.Stat(p); err == nil {
				return files, fmt.Errorf("certs: %s exists; remove it or overwrite", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return files, fmt.Errorf("certs: %w", err)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return files, fmt.Errorf("certs: %w", err)
	}
	now := time.Now().Add(-5 * time.Minute)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return files, fmt.Errorf("certs: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "cairn development CA", Organization: []string{"cairn"}},
		NotBefore:             now,
		NotAfter:              now.Add(opts.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return files, fmt.Errorf("certs: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return files, fmt.Errorf("certs: CA certificate: %w", err)
	}
	nodeKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return files, fmt.Errorf("certs: node key: %w", err)
	}
	nodeTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "cairn node", Organization: []string{"cairn"}},
		NotBefore:    now,
		NotAfter:     now.Add(opts.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range opts.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			nodeTmpl.IPAddresses = append(nodeTmpl.IPAddresses, ip)
		} else if h != "" {
			nodeTmpl.DNSNames = append(nodeTmpl.DNSNames, h)
		}
	}
	nodeDER, err := x509.CreateCertificate(rand.Reader, nodeTmpl, ca, &nodeKey.PublicKey, caKey)
	if err != nil {
		return files, fmt.Errorf("certs: node certificate: %w", err)
	}
	if err := writePEM(files.CACert, "CERTIFICATE", caDER, 0o644); err != nil {
		return files, err
	}
	if err := writeKey(files.CAKey, caKey); err != nil {
		return files, err
	}
	if err := writePEM(files.NodeCert, "CERTIFICATE", nodeDER, 0o644); err != nil {
		return files, err
	}
	if err := writeKey(files.NodeKey, nodeKey); err != nil {
		return files, err
	}
	return files, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("certs: %s: %w", path, err)
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func writePEM(path, kind string, der []byte, perm os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
	if err := os.WriteFile(path, data, perm); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

// UserCertFiles are the paths GenerateUserCert wrote.
type UserCertFiles struct {
	Cert, Key string
}

// GenerateUserCert makes a certificate with which the user named user
// authenticates (see [Options.ClientCAs]), signed by the development CA
// that [GenerateCerts] wrote in dir (ca.crt and ca.key), with an ECDSA
// P-256 key: user-NAME.crt and user-NAME.key in dir. Its common name is the
// user name; it serves client authentication only, so that it cannot pass
// for a node's certificate. The name must be a login name made of letters,
// digits and ._@- (it names the files).
//
// A Go client uses it with userCertFile and userKeyFile in its connection
// string: kurrentdb://localhost:2113?tls=true&tlscafile=ca.crt&userCertFile=user-ada.crt&userKeyFile=user-ada.key.
func GenerateUserCert(dir, user string, opts CertOptions) (UserCertFiles, error) {
	if user == "" || strings.Trim(user, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-") != "" || strings.HasPrefix(user, ".") {
		return UserCertFiles{}, fmt.Errorf("certs: user %q: use letters, digits and ._@- (not leading '.')", user)
	}
	files := UserCertFiles{
		Cert: filepath.Join(dir, "user-"+user+".crt"),
		Key:  filepath.Join(dir, "user-"+user+".key"),
	}
	if opts.Validity <= 0 {
		opts.Validity = 365 * 24 * time.Hour
	}
	if !opts.Overwrite {
		for _, p := range []string{files.Cert, files.Key} {
			if _, err := os.Stat(p); err == nil {
				return files, fmt.Errorf("certs: %s exists; remove it or overwrite", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return files, fmt.Errorf("certs: %w", err)
			}
		}
	}
	ca, caKey, err := loadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	if err != nil {
		return files, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return files, fmt.Errorf("certs: user key: %w", err)
	}
	now := time.Now().Add(-5 * time.Minute)
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: user},
		NotBefore:    now,
		NotAfter:     now.Add(opts.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return files, fmt.Errorf("certs: user certificate: %w", err)
	}
	if err := writePEM(files.Cert, "CERTIFICATE", der, 0o644); err != nil {
		return files, err
	}
	if err := writeKey(files.Key, key); err != nil {
		return files, err
	}
	return files, nil
}

// loadCA reads a CA certificate and its private key from PEM files.
func loadCA(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: the CA (%s, %s): %w", certFile, keyFile, err)
	}
	ca, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %s: %w", certFile, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || !ca.IsCA {
		return nil, nil, fmt.Errorf("certs: %s is not a certificate authority with a signing key", certFile)
	}
	return ca, signer, nil
}

// LoadCertPool reads the PEM certificates in file, the authorities of
// [Options.ClientCAs].
func LoadCertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("tls: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// LoadTLS returns a TLS configuration serving the certificate and key in
// the given PEM files, TLS 1.2 at least.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load %s and %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
