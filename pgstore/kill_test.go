package pgstore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/google/uuid"
)

// killChildEnv names the schema a child process of TestKilledWriter writes
// to.
const killChildEnv = "PGSTORE_KILL_CHILD_SCHEMA"

// TestKilledWriter runs writers in a child process, kills it with SIGKILL
// while they append, and checks what it left: every append it acknowledged
// is in the log once, no append is there in part, and the log and the
// streams are gapless.
func TestKilledWriter(t *testing.T) {
	if schema := os.Getenv(killChildEnv); schema != "" {
		killChild(schema)
		return
	}
	schema := pgtest.Schema(t, "cairn_test")
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	openSchema(t, schema, pgstore.Options{}) // create the schema before the child races to

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKilledWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), killChildEnv+"="+schema)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uuid.UUID]bool{} // first event ids of acknowledged appends
	lines := bufio.NewScanner(out)
	for len(acked) < 300 && lines.Scan() {
		if id, ok := strings.CutPrefix(lines.Text(), "ack "); ok {
			acked[uuid.MustParse(id)] = true
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) < 300 {
		t.Fatalf("the child acknowledged %d appends before it ended", len(acked))
	}

	s := cairn.NewStore(openSchema(t, schema, pgstore.Options{}), cairn.Options{})
	firsts := map[uuid.UUID]int{} // first event id → events of its append found
	versions := map[string]int64{}
	var next uint64
	for e, err := range s.All(ctx, 0, cairn.Forward) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Position != next {
			t.Fatalf("position %d where %d was expected", e.Position, next)
		}
		next++
		if e.Version != versions[e.StreamID] {
			t.Fatalf("stream %s: version %d where %d was expected", e.StreamID, e.Version, versions[e.StreamID])
		}
		versions[e.StreamID]++
		first := uuid.MustParse(string(e.Metadata))
		firsts[first]++
	}
	for id, n := range firsts {
		if n != 3 {
			t.Fatalf("append %s has %d of its 3 events", id, n)
		}
	}
	for id := range acked {
		if firsts[id] != 3 {
			t.Fatalf("acknowledged append %s is not in the log", id)
		}
	}
	t.Logf("%d appends acknowledged, %d in the log", len(acked), len(firsts))
}

// killChild appends three-event batches from 8 goroutines until it is
// killed, printing "ack <first event id>" for each acknowledged append.
func killChild(schema string) {
	engine, err := pgstore.Open(context.Background(), os.Getenv("CAIRN_TEST_POSTGRES"), pgstore.Options{Schema: schema})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := cairn.NewStore(engine, cairn.Options{})
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				first := uuid.New()
				events := make([]cairn.EventData, 3)
				for k := range events {
					events[k] = cairn.EventData{Type: "E", Metadata: []byte(first.String())}
				}
				events[0].ID = first
				if _, err := s.Append(context.Background(), fmt.Sprintf("w%d", w%4), cairn.Any, events...); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Printf("ack %s\n", first)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}
