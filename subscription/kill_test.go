package subscription_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/subscription"
)

const killDirEnv = "CAIRN_SUBSCRIPTION_KILL_DIR"

// TestPersistentCheckpointSurvivesKill acks events in a child process on the
// embedded engine (durable settings), kills it with SIGKILL, and checks that
// the group resumes exactly at its stored checkpoint, which is at least the
// last checkpoint the child saw written.
func TestPersistentCheckpointSurvivesKill(t *testing.T) {
	if dir := os.Getenv(killDirEnv); dir != "" {
		killChild(dir)
		return
	}
	ctx := deadline(t)
	dir := t.TempDir()
	open := func() *cairn.Store {
		db, err := diskstore.Open(dir, diskstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return cairn.NewStore(db, cairn.Options{})
	}
	store := open()
	batch := make([]cairn.EventData, 100)
	for range 20 {
		for i := range batch {
			batch[i] = ev("E")
		}
		if _, err := store.Append(ctx, "s", cairn.Any, batch...); err != nil {
			t.Fatal(err)
		}
	}
	m := newManager(t, store)
	if err := m.Create(ctx, subscription.AllStream, "g", subscription.Settings{CheckpointAfter: 3}); err != nil {
		t.Fatal(err)
	}
	m.Close(ctx)
	store.Close()

	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestPersistentCheckpointSurvivesKill$")
	child.Env = append(os.Environ(), killDirEnv+"="+dir)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var last uint64
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if v, ok := strings.CutPrefix(lines.Text(), "checkpoint "); ok {
			if last, err = strconv.ParseUint(v, 10, 64); err != nil {
				t.Fatal(err)
			}
			if last >= 300 {
				break
			}
		}
	}
	if last < 300 {
		t.Fatalf("the child stopped at checkpoint %d: %v", last, lines.Err())
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()

	store = open()
	defer store.Close()
	m = newManager(t, store)
	info, err := m.Info(ctx, subscription.AllStream, "g")
	if err != nil {
		t.Fatal(err)
	}
	if info.Checkpoint < last {
		t.Fatalf("checkpoint after the kill %d, but the child saw %d written", info.Checkpoint, last)
	}
	c := connect(t, ctx, m, subscription.AllStream, "g", subscription.ConsumerOptions{})
	if d := next(t, ctx, c); d.Event.Position != info.Checkpoint {
		t.Fatalf("resumed at position %d, want the checkpoint %d", d.Event.Position, info.Checkpoint)
	}
}

// killChild acks events forever, printing each checkpoint written, until it
// is killed.
func killChild(dir string) {
	ctx := context.Background()
	db, err := diskstore.Open(dir, diskstore.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	store := cairn.NewStore(db, cairn.Options{})
	m, err := subscription.NewManager(store, subscription.ManagerOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	c, err := m.Connect(ctx, subscription.AllStream, "g", subscription.ConsumerOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for {
		d, err := c.Next(ctx)
		if err == nil {
			err = c.Ack(ctx, d.Event.ID)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		info, err := m.Info(ctx, subscription.AllStream, "g")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("checkpoint %d\n", info.Checkpoint)
	}
}
