package diskstore_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// refusingFS is read-only media: every write fails with EROFS.
type refusingFS struct{ vfs.FS }

var errROFS = &os.PathError{Op: "write", Path: "(read-only media)", Err: syscall.EROFS}

func (refusingFS) Create(string, vfs.DiskWriteCategory) (vfs.File, error) { return nil, errROFS }
func (refusingFS) Link(string, string) error                              { return errROFS }
func (refusingFS) OpenReadWrite(string, vfs.DiskWriteCategory, ...vfs.OpenOption) (vfs.File, error) {
	return nil, errROFS
}
func (refusingFS) Remove(string) error                { return errROFS }
func (refusingFS) RemoveAll(string) error             { return errROFS }
func (refusingFS) Rename(string, string) error        { return errROFS }
func (refusingFS) MkdirAll(string, os.FileMode) error { return errROFS }
func (refusingFS) ReuseForWrite(string, string, vfs.DiskWriteCategory) (vfs.File, error) {
	return nil, errROFS
}
func (f refusingFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	file, err := f.FS.Open(name, opts...)
	return refusingFile{file}, err
}
func (f refusingFS) OpenDir(name string) (vfs.File, error) {
	file, err := f.FS.OpenDir(name)
	return refusingFile{file}, err
}
func (f refusingFS) Lock(name string) (io.Closer, error) { return f.FS.Open(name) }

type refusingFile struct{ vfs.File }

func (refusingFile) Write([]byte) (int, error)          { return 0, errROFS }
func (refusingFile) WriteAt([]byte, int64) (int, error) { return 0, errROFS }
func (refusingFile) Preallocate(int64, int64) error     { return errROFS }
func (refusingFile) Sync() error                        { return errROFS }
func (refusingFile) SyncData() error                    { return errROFS }
func (refusingFile) SyncTo(int64) (bool, error)         { return false, errROFS }

// tree returns every file under dir with a digest of its contents.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = fmt.Sprintf("%x", sha256.Sum256(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("the directory held %d files, now %d", len(before), len(after))
	}
	for p, h := range before {
		if after[p] != h {
			t.Fatalf("%s changed", p)
		}
	}
}

// A store opened read-only serves every read, refuses every write, and
// neither writes nor creates anything: it works on read-only media.
func TestReadOnlyServesReadsOnReadOnlyMedia(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "db")
	db, err := diskstore.Open(dir, diskstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	for i := range 50 {
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i%5), cairn.Any, cairn.EventData{Type: "E", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TruncateStream(ctx, "s-0", 3); err != nil {
		t.Fatal(err)
	}
	want, err := s.ReadAll(ctx, 0, 100, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := tree(t, dir)

	ro, err := diskstore.Open(dir, diskstore.Options{ReadOnly: true, FS: refusingFS{vfs.Default}})
	if err != nil {
		t.Fatalf("read-only open on read-only media: %v", err)
	}
	r := cairn.NewStore(ro, cairn.Options{})
	got, err := r.ReadAll(ctx, 0, 100, cairn.Forward)
	if err != nil || len(got) != len(want) || got[49].ID != want[49].ID {
		t.Fatalf("read-only ReadAll = %d events, %v; want %d", len(got), err, len(want))
	}
	if first, err := r.ReadStream(ctx, "s-0", 0, 1, cairn.Forward); err != nil || first[0].Version != 3 {
		t.Fatalf("read-only read of the truncated stream = %v, %v", first, err)
	}
	if v, err := r.StreamVersion(ctx, "s-4"); err != nil || v != 9 {
		t.Fatalf("read-only StreamVersion = %d, %v", v, err)
	}
	if err := r.Health(ctx); err != nil {
		t.Fatalf("read-only Health: %v", err)
	}
	writes := map[string]error{
		"append":   func() error { _, err := r.Append(ctx, "s-1", cairn.Any, cairn.EventData{Type: "E"}); return err }(),
		"delete":   r.DeleteStream(ctx, "s-1", cairn.Any),
		"truncate": r.TruncateStream(ctx, "s-1", 1),
		"compact":  r.Compact(ctx),
		"snapshot": r.CommitSnapshot(ctx, cairn.Snapshot{StreamID: "s-1", Version: 1}),
	}
	for op, err := range writes {
		if !errors.Is(err, diskstore.ErrReadOnly) {
			t.Errorf("%s on a read-only store: %v, want ErrReadOnly", op, err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatalf("close read-only: %v", err)
	}
	sameTree(t, before, tree(t, dir))
}

// A read-only open of a directory that holds no store says so and creates
// nothing.
func TestReadOnlyRefusesWhatIsNoStore(t *testing.T) {
	parent := t.TempDir()
	missing := filepath.Join(parent, "missing")
	if _, err := diskstore.Open(missing, diskstore.Options{ReadOnly: true}); !errors.Is(err, diskstore.ErrNoStore) {
		t.Fatalf("read-only open of a missing directory: %v, want ErrNoStore", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the read-only open created %s", missing)
	}
	other := filepath.Join(parent, "other")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := tree(t, other)
	if _, err := diskstore.Open(other, diskstore.Options{ReadOnly: true}); !errors.Is(err, diskstore.ErrNoStore) {
		t.Fatalf("read-only open of a directory of other files: %v, want ErrNoStore", err)
	}
	sameTree(t, before, tree(t, other))
}

// A store whose index lags its log (a crash) is refused read-only with
// ErrNeedsRecovery; a read-write open recovers it, and then it opens
// read-only.
func TestReadOnlyRefusesAStoreThatNeedsRecovery(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewCrashableMem()
	db, err := diskstore.Open("db", diskstore.Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Append(ctx, "s", cairn.NoStream, []cairn.EventData{{ID: [16]byte{1}, Type: "E"}}); err != nil {
		t.Fatal(err)
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	db.Close()
	if _, err := diskstore.Open("db", diskstore.Options{FS: crashed, ReadOnly: true}); !errors.Is(err, diskstore.ErrNeedsRecovery) {
		t.Fatalf("read-only open after a crash: %v, want ErrNeedsRecovery", err)
	}
	rw, err := diskstore.Open("db", diskstore.Options{FS: crashed})
	if err != nil {
		t.Fatal(err)
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := diskstore.Open("db", diskstore.Options{FS: crashed, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open after recovery: %v", err)
	}
	if v, err := ro.StreamVersion(ctx, "s"); err != nil || v != 0 {
		t.Fatalf("StreamVersion after recovery = %d, %v", v, err)
	}
	ro.Close()
}

// holdEnv names the directory a child process holds open for writing.
const holdEnv = "DISKSTORE_TEST_HOLD"

// TestHoldStore is the child of TestReadOnlyExcludedByAWriter: it opens the
// store for writing and holds it until its standard input closes.
func TestHoldStore(t *testing.T) {
	dir := os.Getenv(holdEnv)
	if dir == "" {
		t.Skip("run by TestReadOnlyExcludedByAWriter")
	}
	db, err := diskstore.Open(dir, diskstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("holding")
	io.Copy(io.Discard, os.Stdin)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// Another process that holds the store for writing (a server) excludes a
// read-only open with EAGAIN, and once it is gone the read-only open works.
func TestReadOnlyExcludedByAWriter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db, err := diskstore.Open(dir, diskstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestHoldStore$")
	child.Env = append(os.Environ(), holdEnv+"="+dir)
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "holding\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	if _, err := diskstore.Open(dir, diskstore.Options{ReadOnly: true}); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("read-only open of a store another process writes: %v, want EAGAIN", err)
	}
	stdin.Close()
	go io.Copy(io.Discard, stdout)
	if err := child.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	ro, err := diskstore.Open(dir, diskstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open once the writer is gone: %v", err)
	}
	ro.Close()
}
