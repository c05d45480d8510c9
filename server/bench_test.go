package server_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

const benchWriters = 64

// BenchmarkAppend64 appends one 100-byte JSON event per append from 64
// goroutines, each on a stream of its own, through the official client (64
// clients, so 64 connections) and, in the same run, straight to the Store.
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

			store := cairn.NewStore(engines[name](b), cairn.Options{})
			defer store.Close()
			srv := server.New(store, server.Options{})
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go srv.Serve(lis)
			defer srv.Shutdown(context.Background())
			clients := make([]*kurrentdb.Client, benchWriters)
			for w := range clients {
				clients[w] = connect(b, "kurrentdb://"+lis.Addr().String()+"?tls=false")
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
