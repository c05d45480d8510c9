package server_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"

	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// A client certificate signed by the server's client CA authenticates its
// common name as the user, as KurrentDB's user certificates do: over TLS,
// with no password; a certificate of an unknown or disabled user, or a
// node's certificate, does not; and basic credentials, when a client sends
// both, win.
func TestUserCertificates(t *testing.T) {
	dir := t.TempDir()
	files, err := server.GenerateCerts(dir, server.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := server.LoadTLS(files.NodeCert, files.NodeKey)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := server.LoadCertPool(files.CACert)
	if err != nil {
		t.Fatal(err)
	}
	ts := start(t, server.Options{TLS: cfg, ClientCAs: pool})
	ts.ca = files.CACert
	ts.createUser(t, "ada", "ada-pw", "accounting")
	ctx := context.Background()

	certFor := func(user string) string {
		t.Helper()
		uf, err := server.GenerateUserCert(dir, user, server.CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tls.LoadX509KeyPair(uf.Cert, uf.Key); err != nil {
			t.Fatal(err)
		}
		return "&userCertFile=" + uf.Cert + "&userKeyFile=" + uf.Key
	}
	adaCert := certFor("ada")
	appendTo := func(c *kurrentdb.Client, stream string) error {
		_, err := c.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{}, events(1, "E")...)
		return err
	}

	// ada by certificate: a user of her own, with her groups.
	ada := connect(t, ts.url("", "", adaCert))
	if err := appendTo(ada, "by-cert"); err != nil {
		t.Fatalf("an append with ada's certificate: %v", err)
	}
	if _, err := drain(ada.ReadAll(ctx, kurrentdb.ReadAllOptions{}, 1)); !denied(err) {
		t.Errorf("ada by certificate reading $all: %v, want ErrorCodeAccessDenied: she is not an admin", err)
	}
	var a kurrentdb.Acl
	a.AddReadRoles("accounting")
	var meta kurrentdb.StreamMetadata
	meta.SetAcl(a)
	if _, err := ts.client(t).SetStreamMetadata(ctx, "books", kurrentdb.AppendToStreamOptions{}, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := drain(ada.ReadStream(ctx, "books", kurrentdb.ReadStreamOptions{}, 1)); err != nil && errorCode(err) != kurrentdb.ErrorCodeResourceNotFound {
		t.Errorf("ada by certificate reading a stream her group may read: %v", err)
	}
	// The admin's certificate makes an admin.
	adminByCert := connect(t, ts.url("", "", certFor("admin")))
	if _, err := drain(adminByCert.ReadAll(ctx, kurrentdb.ReadAllOptions{}, 1)); err != nil {
		t.Errorf("the admin by certificate reading $all: %v", err)
	}

	// Refused: an unknown user's certificate, a node certificate, no
	// credentials at all.
	unknown := connect(t, ts.url("", "", certFor("nobody")))
	if err := appendTo(unknown, "by-cert"); errorCode(err) != kurrentdb.ErrorCodeUnauthenticated {
		t.Errorf("the certificate of an unknown user: %v, want ErrorCodeUnauthenticated", err)
	}
	node := connect(t, ts.url("", "", "&userCertFile="+files.NodeCert+"&userKeyFile="+files.NodeKey))
	if err := appendTo(node, "by-cert"); errorCode(err) != kurrentdb.ErrorCodeUnauthenticated {
		t.Errorf("a node certificate: %v, want ErrorCodeUnauthenticated", err)
	}
	none := connect(t, ts.url("", "", ""))
	if err := appendTo(none, "by-cert"); errorCode(err) != kurrentdb.ErrorCodeUnauthenticated {
		t.Errorf("no credentials: %v, want ErrorCodeUnauthenticated", err)
	}
	// Basic credentials win over the certificate: a wrong password with a
	// valid certificate is refused.
	wrong := connect(t, ts.url("ada", "wrong", adaCert))
	if err := appendTo(wrong, "by-cert"); errorCode(err) != kurrentdb.ErrorCodeUnauthenticated {
		t.Errorf("a wrong password with ada's certificate: %v, want ErrorCodeUnauthenticated", err)
	}

	// A disabled user's certificate is refused at once.
	if _, err := ts.usersAs(t, "admin", "changeit").Disable(ctx, disableReq("ada")); err != nil {
		t.Fatal(err)
	}
	if err := appendTo(ada, "by-cert"); errorCode(err) != kurrentdb.ErrorCodeUnauthenticated {
		t.Errorf("a disabled user's certificate: %v, want ErrorCodeUnauthenticated", err)
	}

	// A certificate signed by another CA is refused at the handshake.
	other := t.TempDir()
	if _, err := server.GenerateCerts(other, server.CertOptions{}); err != nil {
		t.Fatal(err)
	}
	uf, err := server.GenerateUserCert(other, "admin", server.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	forged := connect(t, ts.url("", "", "&userCertFile="+uf.Cert+"&userKeyFile="+uf.Key+"&maxDiscoverAttempts=1"))
	if err := appendTo(forged, "by-cert"); err == nil {
		t.Error("a certificate signed by another CA was accepted")
	}
	if v, err := ts.store.StreamVersion(ctx, "by-cert"); err != nil || v != 0 {
		t.Errorf("by-cert holds version %d, %v; want only ada's append", v, err)
	}
}

func TestGenerateUserCertRefusesBadNames(t *testing.T) {
	dir := t.TempDir()
	if _, err := server.GenerateUserCert(dir, "ada", server.CertOptions{}); err == nil || !strings.Contains(err.Error(), "ca.crt") {
		t.Errorf("a user certificate without a CA: %v, want an error naming ca.crt", err)
	}
	if _, err := server.GenerateCerts(dir, server.CertOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "../etc", "a/b", ".hidden", "a b"} {
		if _, err := server.GenerateUserCert(dir, name, server.CertOptions{}); err == nil {
			t.Errorf("GenerateUserCert(%q) made a certificate", name)
		}
	}
	if _, err := server.GenerateUserCert(dir, "ada", server.CertOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := server.GenerateUserCert(dir, "ada", server.CertOptions{}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("a second certificate for ada: %v, want an error saying it exists", err)
	}
}
