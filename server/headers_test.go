package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/metadata"
)

// sendRawHeaders opens an HTTP/2 connection to addr and sends one gRPC
// request whose headers carry a field of pad bytes, without heeding the
// header list size the server advertises, as a hostile client would. It
// reports whether the server answered the request (with response headers)
// rather than refusing the stream or the connection.
func sendRawHeaders(t *testing.T, addr string, pad int) bool {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: "/event_store.client.server_features.ServerFeatures/GetSupportedMethods"},
		{Name: ":authority", Value: addr},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
		// Wrong credentials: the server must not read the rest before it
		// refuses them.
		{Name: "authorization", Value: "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:guess"))},
		{Name: "x-pad", Value: strings.Repeat("a", pad)},
	} {
		if err := enc.WriteField(f); err != nil {
			t.Fatal(err)
		}
	}
	// The header block in frames of the default maximum size; a server
	// that refuses may close the connection while they are written.
	const frame = 16 << 10
	b := block.Bytes()
	first := b[:min(frame, len(b))]
	b = b[len(first):]
	werr := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndHeaders: len(b) == 0})
	for werr == nil && len(b) > 0 {
		n := min(frame, len(b))
		werr = fr.WriteContinuation(1, n == len(b), b[:n])
		b = b[n:]
	}
	if werr == nil {
		werr = fr.WriteData(1, true, []byte{0, 0, 0, 0, 0}) // an empty message
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("no answer to the request: %v", err)
			}
			return false // the server closed the connection
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			if f.StreamID == 1 {
				return true
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return false
			}
		case *http2.GoAwayFrame:
			return false
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil && werr == nil {
					werr = err
				}
			}
		}
	}
}

// TestLargeHeadersRefused checks that the server refuses a request whose
// headers pass its bound before it authenticates it, where gRPC-Go's
// default would read 16 MiB of them, and serves one within the bound.
func TestLargeHeadersRefused(t *testing.T) {
	ts := startPlaintext(t, server.Options{}) // raw HTTP/2 frames
	if sendRawHeaders(t, ts.addr, 1<<20) {
		t.Fatal("the server answered a request with 1 MiB of headers")
	}
	if !sendRawHeaders(t, ts.addr, 100) {
		t.Fatal("the server refused a request with small headers")
	}

	// The official clients' headers are well within the bound.
	conn := ts.conn(t)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-pad", strings.Repeat("a", server.DefaultMaxHeaderBytes/2))
	if _, err := serverfeatures.NewServerFeaturesClient(conn).GetSupportedMethods(ctx, &shared.Empty{}); err != nil {
		t.Fatalf("a request with %d bytes of headers: %v", server.DefaultMaxHeaderBytes/2, err)
	}
}

// TestHTTPServerBoundsHeaders checks the bound on the headers of the
// /metrics and /health port, where net/http's default is 1 MiB.
func TestHTTPServerBoundsHeaders(t *testing.T) {
	ts := start(t, server.Options{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	web := ts.HTTPServer()
	go web.Serve(lis)
	defer web.Close()
	get := func(pad int) int {
		req, err := http.NewRequest("GET", "http://"+lis.Addr().String()+"/health", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Pad", strings.Repeat("a", pad))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(1 << 20); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("/health with 1 MiB of headers: %d, want 431", code)
	}
	if code := get(1 << 10); code != http.StatusOK {
		t.Errorf("/health with 1 KiB of headers: %d, want 200", code)
	}
}
