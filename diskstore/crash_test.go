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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// TestCrashUnsynced crashes the store in-process: writers append
// concurrently, and at a random moment the filesystem is cloned keeping only
// what was synced (and, in some rounds, a random part of what was not). The
// store reopened on the clone must hold every acknowledged append, whole,
// and nothing half-written, with gapless positions. Then every append the
// writers submitted, acknowledged or not, is submitted again with its event
// IDs and expectation, as clients retry after a crash: each acknowledged
// one must get the result it was acknowledged with, the others succeed, and
// every append and event ID must be in the log once. The rounds run with
// random event IDs and with time-ordered ones.
func TestCrashUnsynced(t *testing.T) {
	t.Parallel()
	for _, ids := range idKinds {
		for round, unsynced := range []int{0, 30, 70, 100, 0, 50} {
			t.Run(fmt.Sprintf("%s-round%d-unsynced%d", ids.name, round, unsynced), func(t *testing.T) {
				t.Parallel()
				crashUnsynced(t, round, unsynced, ids.gen)
			})
		}
	}
}

func crashUnsynced(t *testing.T, round, unsynced int, ids func(seed uint64) func() uuid.UUID) {
	rng := rand.New(rand.NewPCG(uint64(round), 42))
	fs := vfs.NewCrashableMem()
	// Odd rounds use small segments (the crash may come as the log goes
	// on in a new one) and a small memtable (the index is flushed again
	// and again while groups are in flight).
	opts := diskstore.Options{FS: unlinked(fs)}
	if round%2 == 1 {
		opts.SegmentBytes = 8 << 10
		opts.MemTableBytes = 64 << 10
	}
	_, log, stop := startWriters(t, opts, 8, func(w int) func() uuid.UUID { return ids(uint64(round)<<8 | uint64(w)) })
	target := 100 + rng.IntN(400)
	for len(log.snapshot()) < target {
		<-log.grow
	}
	acked := log.snapshot()
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(uint64(round), 7))})
	stop()

	opts.FS = unlinked(crashed)
	s := reopenAndRetry(t, opts, log, acked)
	defer s.Close()
	// The store takes writes after the crash, continuing the log.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	wr := writer{prefix: "after", newID: ids(1 << 32), onAck: func(ack) {
		if n++; n == 20 {
			cancel()
		}
	}}
	if err := wr.run(ctx, s); err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
	verify(t, s, nil)
}

// TestCrashBeforeRetryRecordsIngested: the retry records of the frames
// after the index's ID mark are in no index on disk, though the marker may
// be past them (pebble flushed the memtable, and the ingest of the retry
// records that went with it had not happened). The crash here comes at
// such a moment: the second ingest is held back until the copy is taken,
// once pebble has flushed. The store reopened on the copy holds every
// acknowledged append, and recognises the retry of each: Open derives the
// retry records from the frames after the ID mark.
func TestCrashBeforeRetryRecordsIngested(t *testing.T) {
	for _, ids := range idKinds {
		t.Run(ids.name, func(t *testing.T) { crashBeforeIngest(t, ids.gen) })
	}
}

func crashBeforeIngest(t *testing.T, ids func(seed uint64) func() uuid.UUID) {
	var ingests atomic.Int32
	held, release := make(chan struct{}), make(chan struct{})
	defer diskstore.SetIngestStarting(func() {
		if ingests.Add(1) == 2 {
			close(held)
			<-release
		}
	})()
	fs := vfs.NewCrashableMem()
	opts := diskstore.Options{FS: unlinked(fs), MemTableBytes: 64 << 10}
	db, log, stop := startWriters(t, opts, 4, func(w int) func() uuid.UUID { return ids(uint64(w)) })
	// The flush that goes with the held ingest starts after it is handed
	// off: wait for pebble to finish it.
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatal("the store never handed off a second batch of retry records")
	}
	flushed := db.Metrics().Flush.Count
	deadline := time.Now().Add(time.Minute)
	for db.Metrics().Flush.Count == flushed || db.Metrics().Flush.NumInProgress > 0 {
		if time.Now().After(deadline) {
			t.Fatal("pebble never flushed its memtable")
		}
		time.Sleep(time.Millisecond)
	}
	acked := log.snapshot()
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	close(release)
	stop()

	marker, idMark, err := diskstore.IndexMarks(crashed, "db")
	if err != nil {
		t.Fatal(err)
	}
	if idMark < 0 || marker <= idMark {
		t.Fatalf("the crash came with the index's marker at position %d and its ID mark at %d: not the case tested", marker, idMark)
	}
	opts.FS = unlinked(crashed)
	_ = reopenAndRetry(t, opts, log, acked).Close()
}

// TestCrashBeforeFlushAfterIngest: the opposite order of
// TestCrashBeforeRetryRecordsIngested. The retry records that go with a
// flush of pebble's memtable were ingested, and the flush is not done
// when the crash comes: the index's ID mark is past its marker. Copies of
// the filesystem are taken while writers go on until one is in that
// state. It passes the offline check as it is (its retry records point at
// events the index does not hold yet, which Open replays), and reopened
// holds every acknowledged append and recognises the retry of each.
func TestCrashBeforeFlushAfterIngest(t *testing.T) {
	mem := vfs.NewCrashableMem()
	opts := diskstore.Options{FS: unlinked(mem), MemTableBytes: 64 << 10}
	_, log, stop := startWriters(t, opts, 4, func(w int) func() uuid.UUID { return idKinds[0].gen(uint64(w)) })
	var crashed *vfs.MemFS
	var acked []ack
	for deadline := time.Now().Add(2 * time.Minute); crashed == nil; {
		if time.Now().After(deadline) {
			t.Fatal("no copy taken after an ingest and before the flush that went with it")
		}
		acked = log.snapshot()
		c := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
		marker, idMark, err := diskstore.IndexMarks(c, "db")
		if err != nil {
			t.Fatal(err)
		}
		if idMark > marker {
			crashed = c
		}
	}
	stop()

	rep, err := diskstore.Check(context.Background(), "db", diskstore.CheckOptions{FS: crashed, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("check of the crashed store: %v", rep.Problems)
	}
	opts.FS = unlinked(crashed)
	_ = reopenAndRetry(t, opts, log, acked).Close()
}

// unlinked is the filesystem for a store on the crashable MemFS fs that
// crash copies are taken of while it is open: it refuses hard links, and
// pebble copies the tables it ingests instead. MemFS.Link takes the lock
// that CrashClone takes for writing twice for reading, which deadlocks
// when a CrashClone waits between the two.
func unlinked(fs *vfs.MemFS) vfs.FS { return unlinkedFS{fs} }

type unlinkedFS struct{ vfs.FS }

func (unlinkedFS) Link(oldname, newname string) error {
	return fmt.Errorf("link %s %s: refused, for crash copies", oldname, newname)
}

// reopenAndRetry opens the store after a crash, checks that it holds the
// acknowledged appends, retries every append attempted and checks it
// again.
func reopenAndRetry(t *testing.T, opts diskstore.Options, log *ackLog, acked []ack) *cairn.Store {
	t.Helper()
	db, err := diskstore.Open("db", opts)
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	verify(t, s, acked)
	verify(t, s, retryAll(t, s, log.attempts(), acked))
	return s
}

// startWriters opens the store with opts and starts writers on it, the
// w-th making its event IDs with newID(w), each attempt and
// acknowledgement logged. stop stops them and closes the store.
func startWriters(t *testing.T, opts diskstore.Options, writers int, newID func(w int) func() uuid.UUID) (db *diskstore.DB, log *ackLog, stop func()) {
	t.Helper()
	db, err := diskstore.Open("db", opts)
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	log = &ackLog{grow: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	for w := range writers {
		wr := writer{prefix: "r", w: w, newID: newID(w), onTry: log.try, onAck: log.add}
		wg.Go(func() { _ = wr.run(ctx, s) })
	}
	return db, log, func() {
		cancel()
		wg.Wait()
		_ = s.Close()
	}
}

const childEnv = "DISKSTORE_KILL_CHILD"

// TestKillChild is the child process of TestKill9; it does nothing in a
// normal test run. It prints each attempt (TRY) before it submits it and
// each acknowledgement (ACK) after.
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
	seed, _ := strconv.ParseUint(os.Getenv(childEnv+"_SEED"), 10, 64)
	ids := idKinds[0].gen
	for _, k := range idKinds {
		if k.name == os.Getenv(childEnv+"_IDS") {
			ids = k.gen
		}
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	emit := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		out.WriteString(line + "\n")
		out.Flush()
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wr := writer{prefix: prefix, w: w, newID: ids(seed<<8 | uint64(w)),
			onTry: func(a attempt) { emit(a.String()) },
			onAck: func(a ack) { emit(a.String()) }}
		wg.Go(func() {
			err := wr.run(context.Background(), s)
			fmt.Fprintln(os.Stderr, "writer stopped:", err)
		})
	}
	wg.Wait()
	os.Exit(3)
}

// TestKill9 runs a child process that appends from many goroutines and
// prints each attempt and acknowledgement, kills it with SIGKILL at a
// random moment, reopens the store and checks that every acknowledged
// append is there, once, at its versions and positions, with nothing
// half-written. Then it submits again every append the children ever
// attempted, acknowledged or not, with its event IDs and expectation, as
// clients retry after a crash: an acknowledged one must get the result it
// was acknowledged with, the others succeed, and every append and event ID
// must be in the log once. Each round continues the same store; the rounds
// run with random event IDs, then with time-ordered ones.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	t.Parallel()
	for _, ids := range idKinds {
		t.Run(ids.name, func(t *testing.T) {
			t.Parallel()
			kill9(t, ids.name)
		})
	}
}

func kill9(t *testing.T, ids string) {
	dir := t.TempDir()
	var all []ack
	var attempts []attempt
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+dir, childEnv+"_PREFIX=k"+strconv.Itoa(round),
			childEnv+"_IDS="+ids, childEnv+"_SEED="+strconv.FormatUint(seed+uint64(round), 10))
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
		ids := map[string][]uuid.UUID{} // of the appends attempted, by tag
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if a, ok := parseAttempt(sc.Text()); ok {
				attempts = append(attempts, a)
				for _, r := range a.reqs {
					ids[r.id] = r.ids
				}
				continue
			}
			a, ok := parseAck(sc.Text())
			if !ok {
				t.Fatalf("child: %s", sc.Text())
			}
			a.ids = ids[a.id]
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
		verify(t, s, retryAll(t, s, attempts, all))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
