package projections_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/projections"
)

const killEnv = "PROJECTIONS_KILL_CHILD"

// routerQuery counts and sums the source events, emits a copy of each to
// one of four streams and links each from a fifth.
const routerQuery = `
fromCategory('src').when({
	$init: function () { return { count: 0, sum: 0 }; },
	Tick: function (s, e) {
		s.count++;
		s.sum += e.body.n;
		emit('out-' + (e.body.n % 4), 'Copied', { n: e.body.n });
		linkTo('links', e);
	}
}).outputState()`

// stateQuery is routerQuery without its emits: the reference.
const stateQuery = `
fromCategory('src').when({
	$init: function () { return { count: 0, sum: 0 }; },
	Tick: function (s, e) { s.count++; s.sum += e.body.n; }
})`

// serialEngine hides the engine's atomic batches: the Store appends a
// batch's requests one after the other, and the projection writes its
// checkpoint's events one by one.
type serialEngine struct{ cairn.Backend }

func openKillStore(t testing.TB, dir, mode string, noSync bool) *cairn.Store {
	db, err := diskstore.Open(dir, diskstore.Options{MemTableBytes: 256 << 10, SegmentBytes: 256 << 10, NoSync: noSync})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	var b cairn.Backend = db
	if mode == "serial" {
		b = serialEngine{db}
	}
	return cairn.NewStore(b, cairn.Options{})
}

func killOptions() projections.Options {
	o := testOptions()
	o.CheckpointHandledThreshold = 20
	o.CheckpointAfter = time.Millisecond
	return o
}

// TestKillChild is the child process of TestKill9; it does nothing in a
// normal test run. It runs the router projection while appending source
// events, and prints each append's first number, until it is killed.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(killEnv)
	if dir == "" {
		t.Skip("run by TestKill9")
	}
	round, _ := strconv.Atoi(os.Getenv(killEnv + "_ROUND"))
	store := openKillStore(t, dir, os.Getenv(killEnv+"_MODE"), false)
	ctx := context.Background()
	m, err := projections.NewManager(ctx, store, killOptions())
	if err != nil {
		fmt.Println("MANAGER", err)
		os.Exit(2)
	}
	if _, err := m.Create(ctx, "router", routerQuery, projections.CreateOptions{Emit: true}); err != nil && !errors.Is(err, projections.ErrExists) {
		fmt.Println("CREATE", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	rng := rand.New(rand.NewPCG(uint64(round), 3))
	n := round * 1_000_000
	for {
		k := 1 + rng.IntN(8)
		evs := make([]cairn.EventData, k)
		for i := range evs {
			evs[i] = cairn.EventData{Type: "Tick", Data: fmt.Appendf(nil, `{"n":%d}`, n+i)}
		}
		if _, err := store.Append(ctx, "src-1", cairn.Any, evs...); err != nil {
			fmt.Println("APPEND", err)
			os.Exit(2)
		}
		fmt.Fprintf(out, "%d\n", n)
		out.Flush()
		n += k
		if st, _ := m.Statistics(ctx, "router"); strings.HasPrefix(st.Status, "Faulted") {
			fmt.Println("FAULTED", st.StateReason)
			os.Exit(2)
		}
	}
}

// TestKill9 kills, with SIGKILL, a process that runs a continuous projection
// that emits and links while events are appended to its source, several
// times, then runs the projection to the end and checks that every event it
// emitted is there exactly once, in order, and that its state is what a run
// from scratch computes. It does so on an engine whose batches are atomic,
// and on the same engine with atomic batches hidden, where a kill can land
// between two of a checkpoint's appends and only the events' ids keep the
// restarted projection from writing them twice.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for _, mode := range []string{"atomic", "serial"} {
		t.Run(mode, func(t *testing.T) { kill9(t, mode) })
	}
}

func kill9(t *testing.T, mode string) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), killEnv+"="+dir, killEnv+"_MODE="+mode, killEnv+"_ROUND="+strconv.Itoa(round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAt := 30 + rng.IntN(300)
		stall := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		acks := 0
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, err := strconv.Atoi(sc.Text()); err != nil {
				t.Fatalf("child: %s", sc.Text())
			}
			if acks++; acks == killAt {
				_ = cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		err = cmd.Wait()
		stall.Stop()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL || acks < killAt {
			t.Fatalf("round %d: the child ended after %d appends (%v) before it was killed", round, acks, err)
		}
		store := openKillStore(t, dir, mode, false)
		t.Logf("round %d: killed after %d appends; %d emitted events lie beyond the last checkpoint", round, acks, beyondCheckpoint(t, store))
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// The kills are over: the last run need not sync, and may take its
	// time to catch up on a loaded machine (without atomic batches it
	// appends every event it emits on its own).
	store := openKillStore(t, dir, mode, true)
	defer store.Close()
	m := newManager(t, store, killOptions())
	defer func(p time.Duration) { patience = p }(patience)
	patience = 2 * time.Minute
	src := readStream(t, store, "src-1")
	want := map[string]any{"count": float64(len(src)), "sum": float64(0)}
	var sum int
	for _, e := range src {
		var b struct{ N int }
		if err := json.Unmarshal(e.Data, &b); err != nil {
			t.Fatal(err)
		}
		sum += b.N
	}
	want["sum"] = float64(sum)
	wantJSON, _ := json.Marshal(want)
	waitState(t, m, "router", "", string(wantJSON))
	create(t, m, "reference", stateQuery, projections.CreateOptions{Mode: projections.Transient})
	waitStatus(t, m, "reference", "Completed")
	waitState(t, m, "reference", "", string(wantJSON))
	if err := m.Disable(context.Background(), "router"); err != nil {
		t.Fatal(err)
	}

	// Every source event was emitted exactly once, to its stream, in
	// order, and linked exactly once, in order.
	copies := map[int]int{}
	for k := range 4 {
		last := -1
		for _, e := range readStream(t, store, fmt.Sprintf("out-%d", k)) {
			var b struct{ N int }
			if err := json.Unmarshal(e.Data, &b); err != nil {
				t.Fatal(err)
			}
			if b.N%4 != k || b.N <= last {
				t.Fatalf("out-%d holds %d after %d", k, b.N, last)
			}
			last = b.N
			copies[b.N]++
		}
	}
	links := readStream(t, store, "links")
	if len(links) != len(src) {
		t.Fatalf("%d links for %d source events", len(links), len(src))
	}
	for i, e := range src {
		var b struct{ N int }
		_ = json.Unmarshal(e.Data, &b)
		if copies[b.N] != 1 {
			t.Fatalf("source event %d (n=%d) was emitted %d times", i, b.N, copies[b.N])
		}
		if got, want := string(links[i].Data), fmt.Sprintf("%d@src-1", e.Version); got != want || links[i].Type != "$>" {
			t.Fatalf("link %d is %s %q, want $> %q", i, links[i].Type, got, want)
		}
	}
	if len(copies) != len(src) {
		t.Fatalf("%d events emitted for %d source events", len(copies), len(src))
	}
	t.Logf("%d source events, each emitted and linked once", len(src))
}

// beyondCheckpoint counts the events the router emitted for source events
// after its last checkpoint: the writes of a checkpoint cut short by the
// kill, which the restarted projection must recognise.
func beyondCheckpoint(t *testing.T, store *cairn.Store) int {
	cps := readStream(t, store, "$projections-router-checkpoint")
	next := -1
	if len(cps) > 0 {
		var tag struct {
			C int `json:"$c"`
		}
		if err := json.Unmarshal(cps[len(cps)-1].Metadata, &tag); err != nil {
			t.Fatal(err)
		}
		next = tag.C
	}
	srcPos := map[string]int{}
	for _, e := range readStream(t, store, "src-1") {
		srcPos[e.ID.String()] = int(e.Position)
	}
	n := 0
	for _, e := range readStream(t, store, "links") {
		var meta struct {
			CausedBy string `json:"$causedBy"`
		}
		if json.Unmarshal(e.Metadata, &meta) == nil && srcPos[meta.CausedBy] > next {
			n++
		}
	}
	return n
}
