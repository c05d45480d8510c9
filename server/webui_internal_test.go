package server

import (
	"crypto/tls"
	"net"
	"slices"
	"testing"
)

// readRequests counts the calls whose method reads, of every service.
func TestReadRequests(t *testing.T) {
	m := NewMetrics()
	for method, n := range map[string]int{
		"event_store.client.streams.Streams/Read":                                  3,
		"event_store.client.persistent_subscriptions.PersistentSubscriptions/Read": 2,
		"cairn.v1.Cairn/ReadStream":                                                1,
		"cairn.v1.Cairn/ReadAll":                                                   1,
		"umadb.v1.DCB/Read":                                                        1,
		"event_store.client.streams.Streams/Append":                                5,
		"cairn.v1.Cairn/StreamVersion":                                             4,
	} {
		for range n {
			m.requests.WithLabelValues(method, "OK").Inc()
		}
	}
	m.requests.WithLabelValues("event_store.client.streams.Streams/Read", "Unauthenticated").Inc()
	if got := m.readRequests(); got != 9 {
		t.Errorf("readRequests = %d, want 9", got)
	}
}

// withALPN gives HTTP/1.1 to a client that offers it, a browser among
// them, and h2 to one that offers h2 alone, a gRPC client; also when the
// configuration chooses a configuration per client.
func TestALPN(t *testing.T) {
	files, err := GenerateCerts(t.TempDir(), CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadTLS(files.NodeCert, files.NodeKey)
	if err != nil {
		t.Fatal(err)
	}
	perClient := cfg.Clone()
	perClient.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return cfg, nil }
	for name, server := range map[string]*tls.Config{"static": cfg, "per client": perClient} {
		for _, c := range []struct {
			offer []string
			want  string
		}{
			{[]string{"h2"}, "h2"},
			{[]string{"h2", "http/1.1"}, "http/1.1"},
			{[]string{"http/1.1", "h2"}, "http/1.1"},
			{[]string{"http/1.1"}, "http/1.1"},
			{nil, ""},
		} {
			a, b := net.Pipe()
			done := make(chan string, 1)
			go func() {
				s := tls.Server(a, withALPN(server))
				if err := s.Handshake(); err != nil {
					done <- "error: " + err.Error()
					return
				}
				done <- s.ConnectionState().NegotiatedProtocol
				a.Close()
			}()
			cl := tls.Client(b, &tls.Config{InsecureSkipVerify: true, NextProtos: slices.Clone(c.offer)})
			if err := cl.Handshake(); err != nil {
				t.Fatalf("%s, offer %v: %v", name, c.offer, err)
			}
			got := <-done
			b.Close()
			if got != c.want || cl.ConnectionState().NegotiatedProtocol != c.want {
				t.Errorf("%s, offer %v: server %q, client %q; want %q", name, c.offer, got, cl.ConnectionState().NegotiatedProtocol, c.want)
			}
		}
	}
}
