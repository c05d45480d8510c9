package disk_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/storeurl"
	_ "github.com/cairndb/cairn/storeurl/disk"
)

// A directory path and a file:// URL open the embedded engine; what one
// wrote, the other reads.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := storeurl.Open(ctx, dir, storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Backend().(*diskstore.DB); !ok {
		t.Fatalf("storeurl opened %T", s.Backend())
	}
	if _, err := s.Append(ctx, "s", cairn.NoStream, cairn.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = storeurl.Open(ctx, "file://"+dir, storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.StreamVersion(ctx, "s"); err != nil || v != 0 {
		t.Fatalf("StreamVersion after reopening = %d, %v; want 0", v, err)
	}
}

// A directory that cannot be opened is an error that names it.
func TestOpenFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := storeurl.Open(context.Background(), file, storeurl.Options{}); err == nil {
		t.Fatal("Open of a file as a directory succeeded")
	}
}

func Example() {
	dir, err := os.MkdirTemp("", "cairn-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	store, err := storeurl.Open(ctx, filepath.Join(dir, "data"), storeurl.Options{})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	res, err := store.Append(ctx, "order-1", cairn.NoStream, cairn.EventData{Type: "OrderPlaced", Data: []byte(`{}`)})
	if err != nil {
		panic(err)
	}
	fmt.Println("version", res.Version)
	// Output: version 0
}
