package pgstore_test

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/google/uuid"
)

// cutProxy forwards TCP connections to PostgreSQL. Armed with some bytes,
// it passes on the first client message that contains them, waits for the
// server's answer (by then the statement has run and committed), throws the
// answer away and closes both connections: the client loses the outcome of
// a write that happened.
type cutProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	trap    []byte
	fired   bool
	dropped []byte // the answer the client never saw
	// stall keeps the trapped connection open and silent instead of
	// closing it, until the client hangs up.
	stall bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *cutProxy) arm(trap []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trap, p.fired = trap, false
}

func (p *cutProxy) hasFired() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fired
}

func (p *cutProxy) droppedAnswer() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

func (p *cutProxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	cut := make(chan struct{})      // closed before the trapped message goes out
	answered := make(chan struct{}) // closed when its answer came back
	// Server → client, until the cut.
	go func() {
		defer close(answered)
		buf := make([]byte, 64<<10)
		for {
			n, err := server.Read(buf)
			if err != nil {
				client.Close()
				return
			}
			select {
			case <-cut:
				// The answer to the trapped message: dropped, once
				// it is whole (up to ReadyForQuery).
				p.mu.Lock()
				p.dropped = append(p.dropped, buf[:n]...)
				whole := bytes.Contains(p.dropped, []byte{'Z', 0, 0, 0, 5})
				p.mu.Unlock()
				if whole {
					return
				}
				continue
			default:
			}
			if _, err := client.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		hit := p.trap != nil && !p.fired && bytes.Contains(buf[:n], p.trap)
		if hit {
			p.fired = true
		}
		p.mu.Unlock()
		if hit {
			close(cut)
		}
		if _, err := server.Write(buf[:n]); err != nil {
			return
		}
		if hit {
			// Once the server answers, the write has committed.
			<-answered
			p.mu.Lock()
			stall := p.stall
			p.mu.Unlock()
			if stall {
				// Silent: whatever the client sends is swallowed,
				// until it says goodbye (Terminate) or hangs up.
				for {
					n, err := client.Read(buf)
					if err != nil || bytes.Contains(buf[:n], []byte{'X', 0, 0, 0, 4}) {
						break
					}
				}
			}
			return // closes both connections
		}
	}
}

// TestLostConnectionDuringAppend loses the connection after PostgreSQL has
// committed an append but before the engine hears of it: the engine tries
// again on a new connection, recognises its own append by the first event's
// id, returns its result, and the events are in the log once.
func TestLostConnectionDuringAppend(t *testing.T) {
	raw := pgtest.URL(t)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Skip("CAIRN_TEST_POSTGRES is not a URL with a host; the proxy needs one")
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	schema := pgtest.Schema(t, "cairn_test")
	direct := cairn.NewStore(openSchema(t, schema, pgstore.Options{}), cairn.Options{})
	engine, err := pgstore.Open(context.Background(), u.String(), pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(engine, cairn.Options{})
	defer s.Close()
	ctx := context.Background()

	if _, err := s.Append(ctx, "s", cairn.NoStream, cairn.EventData{Type: "Before"}); err != nil {
		t.Fatal(err)
	}
	events := []cairn.EventData{{ID: uuid.New(), Type: "A"}, {ID: uuid.New(), Type: "B"}}
	proxy.arm(events[0].ID[:])
	res, err := s.Append(ctx, "s", cairn.Exact(0), events...)
	if err != nil {
		t.Fatalf("append across the lost connection: %v", err)
	}
	if !proxy.hasFired() {
		t.Fatal("the proxy never cut the connection")
	}
	// The answer the engine never saw reports the statement complete
	// ("SELECT 1") and the server ready again ('Z'): the first attempt
	// committed, and the engine's second attempt recognised it.
	if answer := proxy.droppedAnswer(); !bytes.Contains(answer, []byte("SELECT 1")) || !bytes.Contains(answer, []byte{'Z', 0, 0, 0, 5, 'I'}) {
		t.Fatalf("the cut answer %q is not a completed, committed statement", answer)
	}
	if res.Version != 2 || res.Position != 2 {
		t.Fatalf("result %+v, want version 2 position 2", res)
	}
	log, err := direct.ReadAll(ctx, 0, 10, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 3 || log[1].ID != events[0].ID || log[2].ID != events[1].ID {
		t.Fatalf("log after the lost connection has %d events: %+v", len(log), log)
	}
}

// TestStalledConnectionDuringAppend: the connection goes silent after
// PostgreSQL has committed an append (the answer never comes, the
// connection is not closed). The engine gives the attempt up after
// GroupTimeout, tries again on another connection, recognises its append
// by the first event's id, and returns its result; the events are in the
// log once.
func TestStalledConnectionDuringAppend(t *testing.T) {
	raw := pgtest.URL(t)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Skip("CAIRN_TEST_POSTGRES is not a URL with a host; the proxy needs one")
	}
	proxy := newCutProxy(t, u.Host)
	proxy.stall = true
	u.Host = proxy.ln.Addr().String()
	schema := pgtest.Schema(t, "cairn_test")
	direct := cairn.NewStore(openSchema(t, schema, pgstore.Options{}), cairn.Options{})
	engine, err := pgstore.Open(context.Background(), u.String(), pgstore.Options{Schema: schema, GroupTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(engine, cairn.Options{})
	defer s.Close()
	ctx := context.Background()
	events := []cairn.EventData{{ID: uuid.New(), Type: "A"}, {ID: uuid.New(), Type: "B"}}
	proxy.arm(events[0].ID[:])
	res, err := s.Append(ctx, "s", cairn.NoStream, events...)
	if err != nil {
		t.Fatalf("append across the stalled connection: %v", err)
	}
	if !proxy.hasFired() {
		t.Fatal("the proxy never stalled the connection")
	}
	if answer := proxy.droppedAnswer(); !bytes.Contains(answer, []byte{'Z', 0, 0, 0, 5, 'I'}) {
		t.Fatalf("the withheld answer %q is not a committed statement", answer)
	}
	if res.Version != 1 || res.Position != 1 {
		t.Fatalf("result %+v, want version 1 position 1", res)
	}
	log, err := direct.ReadAll(ctx, 0, 10, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || log[0].ID != events[0].ID || log[1].ID != events[1].ID {
		t.Fatalf("log after the stalled connection has %d events: %+v", len(log), log)
	}
}
