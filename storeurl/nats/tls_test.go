package nats_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/storeurl"
	natsurl "github.com/cairndb/cairn/storeurl/nats"
	natsserver "github.com/nats-io/nats-server/v2/server"
)

// A cluster's NATS servers that speak TLS and verify their clients'
// certificates: a node reaches them with the URL's tlsCAFile, tlsCertFile
// and tlsKeyFile, and without them is refused.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certs, err := server.GenerateCerts(dir, server.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	user, err := server.GenerateUserCert(dir, "node", server.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := natsserver.GenTLSConfig(&natsserver.TLSConfigOpts{CertFile: certs.NodeCert, KeyFile: certs.NodeKey, CaFile: certs.CACert, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(dir, "js"),
		TLS: true, TLSVerify: true, TLSConfig: tlsConfig, TLSTimeout: 5,
		NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("the NATS server did not start")
	}
	base := "nats://" + srv.Addr().String() + "?replicas=1&dir=" + filepath.Join(dir, "node")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	s, err := storeurl.Open(ctx, base+"&tlsCAFile="+certs.CACert+"&TLSCertFile="+user.Cert+"&tlsKeyFile="+user.Key, storeurl.Options{NoSync: true})
	if err != nil {
		t.Fatalf("opening a node with the CA and a client certificate: %v", err)
	}
	if _, err := s.Append(ctx, "order-1", cairn.NoStream, cairn.EventData{Type: "Placed", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ name, params, want string }{
		{"no CA", "&tlsCertFile=" + user.Cert + "&tlsKeyFile=" + user.Key, "certificate"},
		{"no client certificate", "&tlsCAFile=" + certs.CACert, "connect"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			s, err := storeurl.Open(ctx, base+c.params, storeurl.Options{NoSync: true})
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}

	for _, bad := range []struct{ params, want string }{
		{"&tlsCertFile=" + user.Cert, "go together"},
		{"&tlsCAFile=" + filepath.Join(dir, "missing.crt"), "missing.crt"},
		{"&tlsCAFile=", "empty"},
		{"&tls=false&tlsCAFile=" + certs.CACert, "tls=false"},
		{"&tls=maybe", "true or false"},
	} {
		if _, err := natsurl.Parse(base + bad.params); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Parse(…%s): %v; want an error saying %q", bad.params, err, bad.want)
		}
	}
}
