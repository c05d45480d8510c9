package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cairndb/cairn/internal/buildinfo"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/server/kurrentdbsvc/userspb"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// nodeHTTP calls the node's HTTP API on the gRPC port.
type nodeHTTP struct {
	t    *testing.T
	c    *http.Client
	base string
}

func (n nodeHTTP) do(method, path, user string, header map[string]string, body string) (*http.Response, string) {
	n.t.Helper()
	req, err := http.NewRequest(method, n.base+path, strings.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	if user != "" {
		name, pass, _ := strings.Cut(user, ":")
		req.SetBasicAuth(name, pass)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := n.c.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return resp, string(b)
}

// checkNodeHTTP checks KurrentDB's HTTP endpoints on the gRPC port, then
// that a gRPC client still works on it, and returns the client.
func checkNodeHTTP(t *testing.T, n nodeHTTP, admin string, grpcCall func() error) {
	resp, body := n.do("GET", "/ping", "", nil, "")
	if resp.StatusCode != 200 || body != `{"text":"Ping request successfully handled"}` {
		t.Errorf("/ping: %d %s", resp.StatusCode, body)
	}
	if resp.ProtoMajor != 1 {
		t.Errorf("/ping answered over HTTP/%d, want HTTP/1.1", resp.ProtoMajor)
	}
	var info struct {
		ESVersion      string          `json:"esVersion"`
		State          string          `json:"state"`
		Features       map[string]bool `json:"features"`
		Authentication struct {
			Type string `json:"type"`
		} `json:"authentication"`
	}
	resp, body = n.do("GET", "/info", "", nil, "")
	if err := json.Unmarshal([]byte(body), &info); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/info: %d %s", resp.StatusCode, body)
	}
	// Every call authenticates, over TLS or not.
	wantAuth := "internal"
	if !strings.HasPrefix(info.ESVersion, buildinfo.Protocol) || info.State != "leader" || info.Features == nil || info.Authentication.Type != wantAuth {
		t.Errorf("/info: %s, want esVersion %s…, state leader, features, authentication %s", body, buildinfo.Protocol, wantAuth)
	}
	if resp, body := n.do("GET", "/health/live", "", nil, ""); resp.StatusCode != 204 {
		t.Errorf("/health/live: %d %s, want 204", resp.StatusCode, body)
	}
	var g struct {
		Members []struct {
			State     string `json:"state"`
			IsAlive   bool   `json:"isAlive"`
			Port      int    `json:"httpEndPointPort"`
			ESVersion string `json:"esVersion"`
		} `json:"members"`
	}
	resp, body = n.do("GET", "/gossip", "", nil, "")
	if err := json.Unmarshal([]byte(body), &g); err != nil || resp.StatusCode != 200 || len(g.Members) != 1 ||
		g.Members[0].State != "Leader" || !g.Members[0].IsAlive || g.Members[0].Port == 0 || g.Members[0].ESVersion != info.ESVersion {
		t.Errorf("/gossip: %d %s, want one alive leader with its port and version", resp.StatusCode, body)
	}

	// /stats needs credentials when they are required, and right ones
	// always.
	if resp, _ := n.do("GET", "/stats", admin, nil, ""); resp.StatusCode != 200 {
		t.Errorf("/stats with credentials: %d", resp.StatusCode)
	}
	if resp, _ := n.do("GET", "/stats", "admin:wrong", nil, ""); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("/stats with a wrong password: %d, want 401 with a challenge", resp.StatusCode)
	}
	if resp, _ := n.do("GET", "/stats", "", nil, ""); resp.StatusCode != 401 {
		t.Errorf("/stats without credentials: %d, want 401", resp.StatusCode)
	}
	// AtomPub is off by default, as in KurrentDB 25.
	if resp, _ := n.do("POST", "/streams/atom", admin, map[string]string{"Content-Type": "application/json", "ES-EventType": "E"}, `{}`); resp.StatusCode != 404 {
		t.Errorf("AtomPub append when off: %d, want 404", resp.StatusCode)
	}

	// gRPC on the same port.
	if err := grpcCall(); err != nil {
		t.Errorf("gRPC beside HTTP: %v", err)
	}
}

func TestNodeHTTPPlaintext(t *testing.T) {
	ts := startPlaintext(t, server.Options{})
	// The Go client sends no credentials without TLS: a generated one.
	users := ts.usersAs(t, "admin", server.DefaultAdminPassword)
	checkNodeHTTP(t, nodeHTTP{t: t, c: &http.Client{}, base: "http://" + ts.addr}, "admin:changeit", func() error {
		stream, err := users.Details(context.Background(), &userspb.DetailsReq{Options: &userspb.DetailsReq_Options{LoginName: "admin"}})
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	})
}

func TestNodeHTTPOverTLS(t *testing.T) {
	ts, files := startTLS(t)
	pem, err := os.ReadFile(files.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	port := ts.addr[strings.LastIndexByte(ts.addr, ':'):]
	grpcClient := connect(t, "kurrentdb://admin:s3cret@localhost"+port+"?tls=true&tlscafile="+files.CACert)
	// A client that offers http/1.1 by ALPN, one that offers none, and
	// one that offers both, as a browser does: it gets HTTP/1.1.
	for _, protos := range [][]string{{"http/1.1"}, nil, {"h2", "http/1.1"}} {
		t.Run(fmt.Sprint("alpn ", protos), func(t *testing.T) {
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, NextProtos: protos}}}
			checkNodeHTTP(t, nodeHTTP{t: t, c: c, base: "https://localhost" + port}, "admin:s3cret", func() error {
				_, err := grpcClient.AppendToStream(context.Background(), "after-http", kurrentdb.AppendToStreamOptions{}, events(1, "E")...)
				return err
			})
		})
	}
}

// TestAtomPubAppend appends through KurrentDB's AtomPub API, turned on: a
// single event with its headers, an array of events, the expected version
// and its conflict, and the authentication it needs.
func TestAtomPubAppend(t *testing.T) {
	ts, files := startTLSWith(t, server.Options{AtomPub: true})
	pem, err := os.ReadFile(files.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	port := ts.addr[strings.LastIndexByte(ts.addr, ':'):]
	n := nodeHTTP{t: t, c: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, base: "https://localhost" + port}
	const admin = "admin:s3cret"
	one := map[string]string{"Content-Type": "application/json", "ES-EventType": "OrderPlaced", "ES-EventId": "fbf4a1a1-b4a3-4dfe-a01f-ec52c34e16e4", "ES-ExpectedVersion": "-1"}
	if resp, _ := n.do("POST", "/streams/order-1", "", one, `{"total":42}`); resp.StatusCode != 401 {
		t.Errorf("append without credentials: %d, want 401", resp.StatusCode)
	}
	resp, body := n.do("POST", "/streams/order-1", admin, one, `{"total":42}`)
	if resp.StatusCode != 201 || resp.Header.Get("Location") != n.base+"/streams/order-1/0" {
		t.Fatalf("append one event: %d %s, Location %q", resp.StatusCode, body, resp.Header.Get("Location"))
	}
	many := map[string]string{"Content-Type": "application/vnd.eventstore.events+json", "ES-ExpectedVersion": "0"}
	resp, body = n.do("POST", "/streams/order-1", admin, many, `[
		{"eventId":"0b0c1e2a-7e3f-4f67-9d4b-35d4b0a1c001","eventType":"OrderShipped","data":{"by":"post"}},
		{"eventId":"0b0c1e2a-7e3f-4f67-9d4b-35d4b0a1c002","eventType":"OrderPaid","data":{"amount":42},"metadata":{"user":"ada"}}]`)
	if resp.StatusCode != 201 || resp.Header.Get("Location") != n.base+"/streams/order-1/1" {
		t.Fatalf("append an array: %d %s, Location %q", resp.StatusCode, body, resp.Header.Get("Location"))
	}
	resp, _ = n.do("POST", "/streams/order-1", admin, map[string]string{"Content-Type": "application/json", "ES-EventType": "Late", "ES-ExpectedVersion": "0"}, `{}`)
	if resp.StatusCode != 400 || resp.Header.Get("ES-CurrentVersion") != "2" {
		t.Errorf("append with a stale version: %d, ES-CurrentVersion %q; want 400 and 2", resp.StatusCode, resp.Header.Get("ES-CurrentVersion"))
	}
	c := connect(t, "kurrentdb://admin:s3cret@localhost"+port+"?tls=true&tlscafile="+files.CACert)
	evs, err := drain(c.ReadStream(context.Background(), "order-1", kurrentdb.ReadStreamOptions{}, 10))
	if err != nil || len(evs) != 3 {
		t.Fatalf("read back: %d events, %v", len(evs), err)
	}
	e := evs[0].Event
	if e.EventType != "OrderPlaced" || e.EventID.String() != one["ES-EventId"] || string(e.Data) != `{"total":42}` || e.ContentType != "application/json" {
		t.Errorf("first event %s %s %s %s", e.EventType, e.EventID, e.Data, e.ContentType)
	}
	if e := evs[2].Event; e.EventType != "OrderPaid" || string(e.UserMetadata) != `{"user":"ada"}` {
		t.Errorf("third event %s %s", e.EventType, e.UserMetadata)
	}
}

// TestSystemEventsOfANewStore: with SystemEvents (cairn serve sets it), a
// new store starts with the default ACLs in $settings, as a new KurrentDB
// node's $all shows them; a store that holds events is left as it is.
func TestSystemEventsOfANewStore(t *testing.T) {
	ts := start(t, server.Options{SystemEvents: true})
	c := ts.client(t)
	evs, err := drain(c.ReadAll(context.Background(), kurrentdb.ReadAllOptions{}, 100))
	if err != nil || len(evs) == 0 {
		t.Fatalf("$all of a new store: %d events, %v", len(evs), err)
	}
	e := evs[0].Event
	var acl struct {
		User   map[string]string `json:"$userStreamAcl"`
		System map[string]string `json:"$systemStreamAcl"`
	}
	if e.StreamID != "$settings" || e.EventType != "$settings" || json.Unmarshal(e.Data, &acl) != nil ||
		acl.User["$r"] != "$all" || acl.System["$w"] != "$admins" {
		t.Errorf("first event %s/%s %s, want the default ACLs in $settings", e.StreamID, e.EventType, e.Data)
	}
	// Then the built-in users, as a new KurrentDB node writes them.
	var streams []string
	for _, ev := range evs[1:] {
		streams = append(streams, ev.Event.StreamID)
	}
	for _, want := range []string{"$user-admin", "$user-ops", "$users"} {
		if !slices.Contains(streams, want) {
			t.Errorf("a new store's $all holds no event of %s: %v", want, streams)
		}
	}

	again := startOn(t, ts.store.Backend(), server.Options{SystemEvents: true})
	evs2, err := drain(again.client(t).ReadAll(context.Background(), kurrentdb.ReadAllOptions{}, 100))
	if err != nil || len(evs2) != len(evs) {
		t.Errorf("a second start wrote again: %d events, then %d, %v", len(evs), len(evs2), err)
	}
}
