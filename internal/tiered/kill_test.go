package tiered_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairndb/cairn/internal/tiered"
)

const childEnv = "TIERED_KILL_CHILD"

// TestKillChild is the child process of TestKill9; it does nothing in a
// normal test run. It adds the crash test's batches from the one after
// the set's mark on, and prints ACK and the batch's number once each Add
// returns.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("run by TestKill9")
	}
	s, err := tiered.Open(dir, tiered.Options{MergeWidth: 2, BlockBytes: 128})
	if err != nil {
		fmt.Println("OPEN", err)
		os.Exit(2)
	}
	sn := s.Snapshot()
	next := 1
	if m := sn.Mark(); m != nil {
		n, _ := strconv.Atoi(string(m))
		next = n + 1
	}
	sn.Close()
	out := bufio.NewWriter(os.Stdout)
	for i := next; ; i++ {
		if err := s.Add([]byte(strconv.Itoa(i)), slices.Values(addEntries(i))); err != nil {
			fmt.Println("ADD", err)
			os.Exit(2)
		}
		fmt.Fprintf(out, "ACK %d\n", i)
		out.Flush()
	}
}

// TestKill9 runs a child process that adds batches to a set (merging
// tables two at a time, so that merges are under way), kills it with
// SIGKILL after a random number of acknowledged adds, and opens the set:
// it must hold every acknowledged add, and be the set after exactly the
// add its mark names, with no table file the manifest does not list. Each
// round goes on with the same set.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := filepath.Join(t.TempDir(), "set")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	acked := 0
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAt := 10 + rng.IntN(300)
		stall := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		n := 0
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			i, err := strconv.Atoi(strings.TrimPrefix(line, "ACK "))
			if err != nil || !strings.HasPrefix(line, "ACK ") {
				t.Fatalf("child: %s", line)
			}
			acked = i
			if n++; n == killAt {
				_ = cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		err = cmd.Wait()
		stall.Stop()
		if n < killAt {
			t.Fatalf("round %d: the child stalled after %d adds", round, n)
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child ended with %v before it was killed", err)
		}

		// Opened to merge nothing, so that the files it leaves can be
		// counted against the tables it lists.
		s, err := tiered.Open(dir, tiered.Options{MergeWidth: 1 << 20})
		if err != nil {
			t.Fatalf("round %d: open after the kill: %v", round, err)
		}
		sn := s.Snapshot()
		mark, err := strconv.Atoi(string(sn.Mark()))
		if err != nil || mark < acked {
			t.Fatalf("round %d: the set's mark is %q; add %d was acknowledged", round, sn.Mark(), acked)
		}
		m := model{}
		for i := 1; i <= mark; i++ {
			for _, e := range addEntries(i) {
				if e.Delete {
					delete(m, string(e.Key))
				} else {
					m[string(e.Key)] = string(e.Value)
				}
			}
		}
		checkSnapshot(t, rng, sn, m, 400)
		if err := sn.Verify(); err != nil {
			t.Fatal(err)
		}
		tables := len(sn.Tables())
		names, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		files := 0
		for _, e := range names {
			if strings.HasSuffix(e.Name(), ".tbl") {
				files++
			}
		}
		sn.Close()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if files != tables {
			t.Fatalf("round %d: %d table files after Open, %d tables listed", round, files, tables)
		}
		t.Logf("round %d: killed after add %d acknowledged; the set holds %d adds in %d tables", round, acked, mark, tables)
		acked = mark
	}
}
