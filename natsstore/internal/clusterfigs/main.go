// Command clusterfigs measures what docs/cluster.md's figures need from a
// running cluster, beside cairn bench and jsbench:
//
//	clusterfigs leader NATSURL [STREAM]    the server that leads the log's
//	                                       stream (CAIRN), and its last sequence
//	clusterfigs lag NATSURL SECONDS        each node's apply lag behind the log
//	clusterfigs failover CAIRNURL PID      kill -9 PID under a steady writer,
//	                                       time it to the next acknowledged append
//
// lag reads the log's last sequence from the stream every 20 ms and each
// node's applied sequence from the cluster's registry (written once a
// second, with the time it was read); a node's lag at a report is how long
// the log had by then held the first record the node had not applied (0
// when the log held none), to the sampling's 20 ms.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/storeurl"
	_ "github.com/cairndb/cairn/storeurl/remote"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "clusterfigs:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 3 && len(os.Args) != 4 {
		return errors.New("usage: clusterfigs leader NATSURL [STREAM] | lag NATSURL SECONDS | failover CAIRNURL PID")
	}
	ctx := context.Background()
	switch os.Args[1] {
	case "leader":
		js, close, err := connect(os.Args[2])
		if err != nil {
			return err
		}
		defer close()
		name := "CAIRN"
		if len(os.Args) == 4 {
			name = os.Args[3]
		}
		s, err := js.Stream(ctx, name)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		fmt.Println(info.Cluster.Leader, info.State.LastSeq)
		return nil
	case "lag":
		secs, err := strconv.Atoi(os.Args[3])
		if err != nil {
			return err
		}
		return lag(ctx, os.Args[2], time.Duration(secs)*time.Second)
	case "failover":
		pid, err := strconv.Atoi(os.Args[3])
		if err != nil {
			return err
		}
		return failover(ctx, os.Args[2], pid)
	}
	return fmt.Errorf("unknown command %q", os.Args[1])
}

func connect(url string) (jetstream.JetStream, func(), error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}

type sample struct {
	at  time.Time
	seq uint64
}

func lag(ctx context.Context, url string, d time.Duration) error {
	js, close, err := connect(url)
	if err != nil {
		return err
	}
	defer close()
	stream, err := js.Stream(ctx, "CAIRN")
	if err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, "CAIRN_nodes")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var log []sample // the log's last sequence over time
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			info, err := stream.Info(ctx)
			if err == nil {
				mu.Lock()
				log = append(log, sample{time.Now(), info.State.LastSeq})
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return err
	}
	type report struct {
		at      time.Time
		applied uint64
	}
	reports := map[string][]report{}
	for e := range w.Updates() {
		if e == nil || e.Operation() != jetstream.KeyValuePut {
			continue // the end of the initial values, or a node that left
		}
		var n struct {
			ID       string    `json:"id"`
			Address  string    `json:"address"`
			Applied  uint64    `json:"applied"`
			Reported time.Time `json:"reported"`
		}
		if err := json.Unmarshal(e.Value(), &n); err != nil {
			return err
		}
		id := n.Address
		if id == "" {
			id = n.ID
		}
		reports[id] = append(reports[id], report{n.Reported, n.Applied})
	}
	mu.Lock()
	defer mu.Unlock()
	for id, rs := range reports {
		var lags []time.Duration
		var behind []uint64
		for _, r := range rs {
			// The log's last sequence when the node reported, and since
			// when the log held the record after the one it applied.
			i, _ := slices.BinarySearchFunc(log, r.at, func(s sample, t time.Time) int { return s.at.Compare(t) })
			if i == 0 || i >= len(log) {
				continue
			}
			last := log[i-1].seq
			if last <= r.applied {
				lags = append(lags, 0)
				behind = append(behind, 0)
				continue
			}
			behind = append(behind, last-r.applied)
			j := slices.IndexFunc(log, func(s sample) bool { return s.seq > r.applied })
			lags = append(lags, r.at.Sub(log[j].at))
		}
		if len(lags) == 0 {
			continue
		}
		slices.Sort(lags)
		slices.Sort(behind)
		p := func(q int) int { return min(len(lags)-1, len(lags)*q/100) }
		fmt.Printf("node %s: %d reports, apply lag p50 %v p99 %v max %v; records behind p50 %d p99 %d max %d\n",
			id, len(lags), lags[p(50)].Round(time.Millisecond), lags[p(99)].Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond),
			behind[p(50)], behind[p(99)], behind[len(behind)-1])
	}
	return nil
}

func failover(ctx context.Context, url string, pid int) error {
	s, err := storeurl.Open(ctx, url, storeurl.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	stream := fmt.Sprintf("failover-%d", time.Now().UnixNano())
	var killed time.Time
	var afterAny, afterIssued time.Duration
	var lastAck time.Time
	var gap time.Duration
	deadline := time.Now().Add(90 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if killed.IsZero() && i == 300 {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				return err
			}
			killed = time.Now()
		}
		issued := time.Now()
		ev := cairn.EventData{Type: "Ticked", Data: []byte(`{}`)}
		if _, err := s.Append(ctx, stream, cairn.Any, ev); err != nil {
			fmt.Fprintln(os.Stderr, "append:", err)
			continue
		}
		now := time.Now()
		if !lastAck.IsZero() {
			gap = max(gap, now.Sub(lastAck))
		}
		lastAck = now
		if !killed.IsZero() {
			if afterAny == 0 {
				afterAny = now.Sub(killed)
			}
			if issued.After(killed) {
				afterIssued = now.Sub(killed)
				break
			}
		}
	}
	if afterIssued == 0 {
		return errors.New("no append acknowledged after the kill")
	}
	fmt.Printf("kill -9 %d at %s: next acknowledged append after %v (first issued after the kill: %v); longest gap between acknowledgements %v\n",
		pid, killed.UTC().Format("15:04:05.000"), afterAny.Round(time.Millisecond), afterIssued.Round(time.Millisecond), gap.Round(time.Millisecond))
	return nil
}
