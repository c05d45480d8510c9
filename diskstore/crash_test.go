package diskstore_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestCrashUnsynced crashes the store in-process: writers append
// concurrently, and at a random moment the filesystem is cloned keeping only
// what was synced (and, in some rounds, a random part of what was not). The
// store reopened on the clone must hold every acknowledged append, whole,
// and nothing half-written, with gapless positions.
func TestCrashUnsynced(t *testing.T) {
	for round, unsynced := range []int{0, 30, 70, 100, 0, 50} {
		t.Run(fmt.Sprintf("round%d-unsynced%d", round, unsynced), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(round), 42))
			fs := vfs.NewCrashableMem()
			// Odd rounds use small segments (the crash may come as the
			// log goes on in a new one) and a small memtable (the index
			// is flushed again and again while groups are in flight).
			opts := diskstore.Options{FS: fs}
			if round%2 == 1 {
				opts.SegmentBytes = 8 << 10
				opts.MemTableBytes = 64 << 10
			}
			db, err := diskstore.Open("db", opts)
			if err != nil {
				t.Fatal(err)
			}
			s := cairn.NewStore(db, cairn.Options{})
			ctx, cancel := context.WithCancel(context.Background())
			log := &ackLog{grow: make(chan struct{}, 1)}
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() { _ = write(ctx, s, "r", w, log.add) })
			}
			target := 100 + rng.IntN(400)
			for len(log.snapshot()) < target {
				<-log.grow
			}
			acked := log.snapshot()
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(uint64(round), 7))})
			cancel()
			wg.Wait()
			_ = s.Close()

			opts.FS = crashed
			db, err = diskstore.Open("db", opts)
			if err != nil {
				t.Fatalf("reopen after crash: %v", err)
			}
			s = cairn.NewStore(db, cairn.Options{})
			defer s.Close()
			verify(t, s, acked)
			// The store takes writes after the crash, continuing the log.
			ctx, cancel = context.WithCancel(context.Background())
			defer cancel()
			n := 0
			if err := write(ctx, s, "after", 0, func(ack) {
				if n++; n == 20 {
					cancel()
				}
			}); err != nil && ctx.Err() == nil {
				t.Fatal(err)
			}
			verify(t, s, nil)
		})
	}
}

const childEnv = "DISKSTORE_KILL_CHILD"

// TestKillChild is the child process of TestKill9; it does nothing in a
// normal test run.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("run by TestKill9")
	}
	// A small memtable and small segments: the index is flushed, and the
	// log moves to new segments, while the child is killed.
	db, err := diskstore.Open(dir, diskstore.Options{MemTableBytes: 256 << 10, SegmentBytes: 256 << 10})
	if err != nil {
		fmt.Println("OPEN", err)
		os.Exit(2)
	}
	s := cairn.NewStore(db, cairn.Options{})
	prefix := os.Getenv(childEnv + "_PREFIX")
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			err := write(context.Background(), s, prefix, w, func(a ack) {
				mu.Lock()
				defer mu.Unlock()
				out.WriteString(a.String() + "\n")
				out.Flush()
			})
			fmt.Fprintln(os.Stderr, "writer stopped:", err)
		})
	}
	wg.Wait()
	os.Exit(3)
}

// TestKill9 runs a child process that appends from many goroutines and
// prints each acknowledgement, kills it with SIGKILL at a random moment,
// reopens the store and checks that every acknowledged append is there,
// once, at its versions and positions, with nothing half-written. Each round
// continues the same store.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	var all []ack
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+dir, childEnv+"_PREFIX=k"+strconv.Itoa(round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill the child after a random number of acknowledgements, so
		// that it dies in the middle of its work, whatever the speed of
		// the machine.
		killAt := 200 + rng.IntN(2000)
		// A child that stalls is killed too, and the round fails.
		stall := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		var acks []ack
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			a, ok := parseAck(sc.Text())
			if !ok {
				t.Fatalf("child: %s", sc.Text())
			}
			acks = append(acks, a)
			if len(acks) == killAt {
				_ = cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		err = cmd.Wait()
		stall.Stop()
		if len(acks) < killAt {
			t.Fatalf("round %d: the child stalled after %d acknowledgements", round, len(acks))
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child ended with %v before it was killed", err)
		}
		all = append(all, acks...)

		db, err := diskstore.Open(dir, diskstore.Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		s := cairn.NewStore(db, cairn.Options{})
		t.Logf("round %d: killed after %d acknowledgements", round, len(acks))
		verify(t, s, all)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
