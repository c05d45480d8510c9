// Command jsbench measures JetStream's own durable publish, the baseline
// of a cairn cluster's figures: one 256-byte message per acknowledgement,
// from one publisher (2000 messages) and from 64 at once (200 each), to a
// new stream of three replicas in file storage, which it deletes
// afterwards. Run it against the NATS servers of a cluster (with
// sync_interval: always, as cairn's embedded servers run):
//
//	go run ./natsstore/internal/jsbench nats://127.0.0.1:4221
package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "jsbench:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: jsbench nats://host:port")
	}
	nc, err := nats.Connect(os.Args[1])
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	name := fmt.Sprintf("JSBENCH%d", time.Now().UnixNano()%1_000_000)
	subject := "jsbench." + name
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage, Replicas: 3}); err != nil {
		return err
	}
	defer js.DeleteStream(ctx, name)
	data := make([]byte, 256)
	for _, writers := range []int{1, 64} {
		n := 2000 / writers
		if writers == 64 {
			n = 200
		}
		var mu sync.Mutex
		var lat []time.Duration
		var first error
		var wg sync.WaitGroup
		start := time.Now()
		for range writers {
			wg.Go(func() {
				for range n {
					t0 := time.Now()
					_, err := js.Publish(ctx, subject, data)
					mu.Lock()
					if err != nil && first == nil {
						first = err
					}
					lat = append(lat, time.Since(t0))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if first != nil {
			return first
		}
		elapsed := time.Since(start)
		slices.Sort(lat)
		fmt.Printf("JetStream publish, %2d writers: %6.0f messages/s, latency p50 %v p99 %v\n", writers,
			float64(len(lat))/elapsed.Seconds(), lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond))
	}
	return nil
}
