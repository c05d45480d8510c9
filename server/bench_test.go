package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/server/users"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
)

const benchWriters = 64

// BenchmarkAppend64 appends one 100-byte JSON event per append from 64
// goroutines, each on a stream of its own, through the official client (64
// clients, so 64 connections, over TLS, as admin) and, in the same run,
// straight to the Store.
// It reports both costs per append and client/inprocess, the price of the
// network protocol.
//
//	go test -run '^$' -bench Append64 -benchtime 2000x ./server
func BenchmarkAppend64(b *testing.B) {
	engines := map[string]func(b *testing.B) cairn.Backend{
		"memory": func(*testing.B) cairn.Backend { return memstore.New() },
		"disk": func(b *testing.B) cairn.Backend {
			db, err := diskstore.Open(b.TempDir(), diskstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return db
		},
	}
	for _, name := range []string{"memory", "disk"} {
		b.Run(name, func(b *testing.B) {
			data := []byte(fmt.Sprintf(`{"payload":%q}`, make([]byte, 84)))

			local := cairn.NewStore(engines[name](b), cairn.Options{})
			inproc := run64(b, b.N, func(w, i int) error {
				_, err := local.Append(context.Background(), fmt.Sprintf("local-%d", w), cairn.Any,
					cairn.EventData{Type: "Bench", Data: data})
				return err
			})
			local.Close()

			ts := startOn(b, engines[name](b), server.Options{})
			clients := make([]*kurrentdb.Client, benchWriters)
			for w := range clients {
				clients[w] = ts.client(b)
				// Connect before the clock runs.
				if _, err := clients[w].AppendToStream(context.Background(), fmt.Sprintf("warm-%d", w), kurrentdb.AppendToStreamOptions{},
					kurrentdb.EventData{EventID: uuid.New(), EventType: "Warm", ContentType: kurrentdb.ContentTypeJson, Data: data}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			remote := run64(b, b.N, func(w, i int) error {
				_, err := clients[w].AppendToStream(context.Background(), fmt.Sprintf("remote-%d", w), kurrentdb.AppendToStreamOptions{},
					kurrentdb.EventData{EventID: uuid.New(), EventType: "Bench", ContentType: kurrentdb.ContentTypeJson, Data: data})
				return err
			})
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64(inproc.Nanoseconds())/n, "inprocess-ns/append")
			b.ReportMetric(float64(remote.Nanoseconds())/n, "client-ns/append")
			b.ReportMetric(remote.Seconds()/inproc.Seconds(), "client/inprocess")
			b.ReportMetric(n/remote.Seconds(), "client-appends/s")
		})
	}
}

// run64 performs n calls of fn spread over 64 goroutines and returns the
// wall time they took. fn gets the goroutine's number and the call's.
func run64(b *testing.B, n int, fn func(w, i int) error) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	began := time.Now()
	for w := range benchWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(w, i); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	return time.Since(began)
}

// BenchmarkAppendAuth appends one 100-byte JSON event per call, one call at
// a time, through the v1 Append RPC over plaintext, every call carrying
// basic credentials, and reports the latency of an append. "cached" is a
// server as configured by default, which verifies a password once and then
// trusts it for its cache's TTL, with the admin, whom no ACL binds;
// "user" the same with a user that is not an admin, whose every append
// reads the stream's metadata and $settings for the ACLs; "hashed" has a
// cache TTL of a nanosecond, so that every call pays the Argon2id hash of
// the default parameters.
//
//	go test -run '^$' -bench AppendAuth -benchtime 2000x ./server
func BenchmarkAppendAuth(b *testing.B) {
	data := []byte(fmt.Sprintf(`{"payload":%q}`, make([]byte, 84)))
	for _, tc := range []struct {
		name string
		user string
		ttl  time.Duration
	}{{"cached", "admin", 0}, {"user", "ada", 0}, {"hashed", "admin", time.Nanosecond}} {
		b.Run(tc.name, func(b *testing.B) {
			ts := startPlaintext(b, server.Options{Users: users.Options{Hash: users.DefaultHashParams, CacheTTL: tc.ttl}})
			password := server.DefaultAdminPassword
			if tc.user != "admin" {
				password = "s3cret"
				ts.createUser(b, tc.user, password)
			}
			client := api.NewStreamsClient(ts.connAs(b, tc.user, password))
			appendOne := func(stream string) error {
				as, err := client.Append(context.Background())
				if err != nil {
					return err
				}
				if err := as.Send(&api.AppendReq{Content: &api.AppendReq_Options_{Options: &api.AppendReq_Options{
					StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte(stream)},
					ExpectedStreamRevision: &api.AppendReq_Options_Any{Any: &shared.Empty{}},
				}}}); err != nil {
					return err
				}
				if err := as.Send(&api.AppendReq{Content: &api.AppendReq_ProposedMessage_{ProposedMessage: &api.AppendReq_ProposedMessage{
					Id:       &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
					Metadata: map[string]string{"type": "Bench", "content-type": "application/json"},
					Data:     data,
				}}}); err != nil {
					return err
				}
				resp, err := as.CloseAndRecv()
				if err != nil {
					return err
				}
				if resp.GetSuccess() == nil {
					return fmt.Errorf("append: %v", resp)
				}
				return nil
			}
			if err := appendOne("warm"); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if err := appendOne("bench"); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/append")
		})
	}
}
