package pgstore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/google/uuid"
)

// writerChildEnv tells a child process of TestGaplessFollowerProcesses what
// to write: "schema process writers appends".
const writerChildEnv = "PGSTORE_WRITER_CHILD"

// TestGaplessFollowerProcesses is TestGaplessFollower across processes:
// child processes append, some with one writer each (their appends go one
// at a time, as append_one), some with several (their appends form
// groups), half of the writers with exact expected versions, while this
// process follows the global log. Commits of different processes overlap
// (each makes its own durable mark); the follower must still see every
// position once and in order, never skipping an event that committed late,
// and every append a child acknowledged.
func TestGaplessFollowerProcesses(t *testing.T) {
	if spec := os.Getenv(writerChildEnv); spec != "" {
		writerChild(spec)
		return
	}
	schema := pgtest.Schema(t, "cairn_test")
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	follower := cairn.NewStore(openSchema(t, schema, pgstore.Options{}), cairn.Options{ReadBatch: 7})

	writers := []int{1, 1, 1, 1, 3, 3}
	const appends = 40
	var (
		mu    sync.Mutex
		acked = map[uuid.UUID]bool{} // ids of the events of acknowledged appends
		wg    sync.WaitGroup
	)
	for p, n := range writers {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGaplessFollowerProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d %d", writerChildEnv, schema, p, n, appends))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lines := bufio.NewScanner(out)
			for lines.Scan() {
				if ids, ok := strings.CutPrefix(lines.Text(), "ack "); ok {
					mu.Lock()
					for _, id := range strings.Fields(ids) {
						acked[uuid.MustParse(id)] = true
					}
					mu.Unlock()
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("writer process %d: %v", p, err)
			}
		}()
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()

	seen := map[uuid.UUID]bool{}
	streamVersions := map[string]int64{}
	var next uint64
	for done := false; !done; {
		changed := follower.Changes()
		select {
		case <-writing:
			done = true // read once more after the last commit, then stop
		default:
		}
		for e, err := range follower.All(ctx, next, cairn.Forward) {
			if err != nil {
				t.Fatalf("follower at %d: %v", next, err)
			}
			if e.Position != next {
				t.Fatalf("follower expected position %d, got %d (stream %s version %d)", next, e.Position, e.StreamID, e.Version)
			}
			if seen[e.ID] {
				t.Fatalf("event %s seen twice", e.ID)
			}
			seen[e.ID] = true
			if want := streamVersions[e.StreamID]; e.Version != want {
				t.Fatalf("stream %s: version %d at position %d, want %d", e.StreamID, e.Version, e.Position, want)
			}
			streamVersions[e.StreamID]++
			next++
		}
		if !done {
			select {
			case <-changed:
			case <-writing:
			case <-ctx.Done():
				t.Fatalf("follower stuck at position %d: %v", next, ctx.Err())
			}
		}
	}
	if t.Failed() {
		return
	}
	total := 0
	for p, n := range writers {
		for w := range n {
			total += int(streamVersions[fmt.Sprintf("p%d-w%d", p, w)])
		}
	}
	if len(acked) != total || int(next) != total {
		t.Fatalf("follower saw %d events in the writers' streams, %d in all; the writers acknowledged %d", total, next, len(acked))
	}
	for id := range acked {
		if !seen[id] {
			t.Fatalf("event %s was acknowledged but not seen", id)
		}
	}
}

// writerChild runs the writers of one process of
// TestGaplessFollowerProcesses, printing "ack <ids>" for each acknowledged
// append.
func writerChild(spec string) {
	f := strings.Fields(spec)
	schema := f[0]
	p, _ := strconv.Atoi(f[1])
	writers, _ := strconv.Atoi(f[2])
	appends, _ := strconv.Atoi(f[3])
	ctx := context.Background()
	engine, err := pgstore.Open(ctx, os.Getenv(pgtest.EnvURL), pgstore.Options{Schema: schema})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := cairn.NewStore(engine, cairn.Options{})
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("p%d-w%d", p, w)
			exact := (p+w)%2 == 0
			v := int64(-1)
			for i := range appends {
				events := make([]cairn.EventData, 1+(p+w+i)%3)
				ids := make([]string, len(events))
				for k := range events {
					events[k] = cairn.EventData{ID: uuid.New(), Type: "E", Data: fmt.Appendf(nil, `{"p":%d,"w":%d,"i":%d}`, p, w, i)}
					ids[k] = events[k].ID.String()
				}
				expected := cairn.Any
				if exact {
					expected = cairn.NoStream
					if v >= 0 {
						expected = cairn.Exact(v)
					}
				}
				res, err := s.Append(ctx, stream, expected, events...)
				if err != nil {
					fmt.Fprintf(os.Stderr, "process %d writer %d append %d: %v\n", p, w, i, err)
					os.Exit(1)
				}
				v = res.Version
				mu.Lock()
				fmt.Printf("ack %s\n", strings.Join(ids, " "))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
