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
	srv := startNATS(t, &natsserver.Options{TLS: true, TLSVerify: true, TLSConfig: tlsConfig, TLSTimeout: 5})
	base := "nats://" + srv.Addr().String() + "?replicas=1&dir=" + filepath.Join(dir, "node")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	appendAndRead(ctx, t, base+"&tlsCAFile="+certs.CACert+"&TLSCertFile="+user.Cert+"&tlsKeyFile="+user.Key)

	for _, c := range []struct{ name, params, want string }{
		{"no CA", "&tlsCertFile=" + user.Cert + "&tlsKeyFile=" + user.Key, "certificate"},
		{"no client certificate", "&tlsCAFile=" + certs.CACert, "connect"},
	} {
		t.Run(c.name, func(t *testing.T) { refused(ctx, t, base+c.params, c.want) })
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

// startNATS starts an in-process NATS server with JetStream, on a free
// port of 127.0.0.1, with the authentication or TLS o sets, and shuts it
// down when the test ends.
func startNATS(t *testing.T, o *natsserver.Options) *natsserver.Server {
	t.Helper()
	o.Host, o.Port = "127.0.0.1", -1
	o.JetStream, o.StoreDir = true, filepath.Join(t.TempDir(), "js")
	o.NoSigs, o.NoLog = true, true
	srv, err := natsserver.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("the NATS server did not start")
	}
	return srv
}

// appendAndRead opens the node url names, appends an event, reads it
// back, and closes the node.
func appendAndRead(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	s, err := storeurl.Open(ctx, url, storeurl.Options{NoSync: true})
	if err != nil {
		t.Fatalf("opening %s: %v", storeurl.Redact(url), err)
	}
	_, err = s.Append(ctx, "order-1", cairn.NoStream, cairn.EventData{Type: "Placed", Data: []byte(`{}`)})
	var events []cairn.Event
	if err == nil {
		events, err = s.ReadStream(ctx, "order-1", 0, 10, cairn.Forward)
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Type != "Placed" {
		t.Fatalf("read back %+v", events)
	}
}

// refused checks that opening the node url names fails with an error
// that says want.
func refused(ctx context.Context, t *testing.T, url, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := storeurl.Open(ctx, url, storeurl.Options{NoSync: true})
	if err == nil {
		s.Close()
		t.Fatal("opened")
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}
