package mmap_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cairndb/cairn/internal/mmap"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// A file on disk reads through its mapping, what is written after it was
// mapped included; a file in memory is not mapped.
func TestMap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := vfs.Default.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := mmap.Map(f, 4096)
	if b == nil {
		if runtime.GOOS != "windows" && runtime.GOOS != "plan9" {
			t.Fatal("a file on disk was not mapped")
		}
		t.Skip("no mapping on " + runtime.GOOS)
	}
	defer mmap.Unmap(b)
	if string(b[:5]) != "hello" {
		t.Fatalf("mapping reads %q", b[:5])
	}
	if _, err := f.WriteAt([]byte(", world"), 5); err != nil {
		t.Fatal(err)
	}
	if string(b[:12]) != "hello, world" {
		t.Fatalf("after a write, the mapping reads %q", b[:12])
	}
	mf, err := vfs.NewMem().Create("f", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if mmap.Map(mf, 4096) != nil {
		t.Fatal("a file in memory was mapped")
	}
}
