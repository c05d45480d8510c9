package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The read-only commands refuse a nats:// store, which would make them a
// node of the cluster, and say to read through a node's server; nothing
// is created.
func TestReadOnlyCommandsRefuseClusterStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	store := "nats://127.0.0.1:1?dir=" + dir
	for _, args := range [][]string{
		{"read", "s", "--store", store},
		{"streams", "--store", store},
		{"stats", "--store", store},
		{"tail", "s", "--store", store},
		{"export", "--store", store},
	} {
		_, _, err := cairnCmd(t, args...)
		if err == nil || !strings.Contains(err.Error(), "--server cairn://") {
			t.Errorf("cairn %s: %v; want an error that says to use --server", strings.Join(args, " "), err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("cairn %s made %s (%v)", strings.Join(args, " "), dir, err)
		}
	}
}
