package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairndb/cairn/diskstore"
)

// RestoreOptions configure [Restore]. The zero value links what it can.
type RestoreOptions struct {
	// Copy copies every file, where the restored store could share the
	// backup's sealed files by hard links.
	Copy bool
	// Planned and Progress are as in [Options].
	Planned  func(files int, bytes int64)
	Progress func(files, bytes int64)
	// Logger receives the engine's diagnostics while the restored store is
	// opened. Nil discards them.
	Logger *slog.Logger
}

// RestoreResult is what a restore did.
type RestoreResult struct {
	// Generation is the backup restored.
	Generation Generation
	// Copied and Linked count the files copied and linked.
	Copied, Linked Counts
}

// Restore restores the backup that from names (a generation, or a set's
// newest generation) into dir, which must be a new or empty directory. It
// links the backup's sealed files where it can (unless opts.Copy), copies
// the rest (always the segment the restored store appends to), gives the
// store an identity of its own, and opens it once, which replays the
// frames its index lacks. On failure it removes what it wrote.
func Restore(ctx context.Context, from, dir string, opts RestoreOptions) (res *RestoreResult, err error) {
	g, err := Find(from)
	if err != nil {
		return nil, err
	}
	cleanup, err := emptyDir(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, cleanup())
		}
	}()
	if err := os.Mkdir(filepath.Join(dir, "log"), 0o700); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	m := g.Manifest
	last := "" // the segment the restored store appends to
	for _, f := range m.Files {
		if strings.HasPrefix(f.Name, "log/") && strings.HasSuffix(f.Name, ".log") && f.Name > last {
			last = f.Name
		}
	}
	res = &RestoreResult{Generation: g}
	var planned int
	var bytes int64
	for _, f := range m.Files {
		if opts.Copy || !f.Sealed || f.Name == last {
			planned++
			bytes += f.Size
		}
	}
	progress := Options{Progress: opts.Progress}
	if opts.Planned != nil {
		opts.Planned(planned, bytes)
	}
	buf := make([]byte, chunkBytes)
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		src := filepath.Join(g.Dir, filepath.FromSlash(f.Name))
		dst := filepath.Join(dir, filepath.FromSlash(f.Name))
		st, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("restore: the backup %s lacks %s: %w", g.Dir, f.Name, err)
		}
		if st.Size() != f.Size {
			return nil, fmt.Errorf("restore: the backup %s is damaged: %s holds %d bytes, its manifest says %d", g.Dir, f.Name, st.Size(), f.Size)
		}
		if !opts.Copy && f.Sealed && f.Name != last && linked(src, dst, f.Size) {
			res.Linked.add(f.Size)
			progress.progress(1, 0)
			continue
		}
		if err := copyFile(ctx, src, dst, f.Size, buf, func(n int64) { progress.progress(0, n) }); err != nil {
			return nil, fmt.Errorf("restore: %s: %w", f.Name, err)
		}
		res.Copied.add(f.Size)
		progress.progress(1, 0)
	}
	if err := diskstore.NewStoreID(dir); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := errors.Join(syncDir(filepath.Join(dir, "log")), syncDir(dir)); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	// Opening the store replays the frames after its index's checkpoint,
	// as after a crash, and flushes the index: the store is then as if
	// closed cleanly.
	db, err := diskstore.Open(dir, diskstore.Options{Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("restore: opening the restored store: %w", err)
	}
	if err := db.Close(); err != nil {
		return nil, fmt.Errorf("restore: closing the restored store: %w", err)
	}
	return res, nil
}

// copyFile copies the first size bytes of src to a new file dst, and
// syncs it.
func copyFile(ctx context.Context, src, dst string, size int64, buf []byte, progress func(int64)) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = copyRange(ctx, out, in, 0, size, buf, progress)
	if err == nil {
		err = out.Truncate(size)
	}
	if err == nil {
		err = out.Sync()
	}
	return errors.Join(err, out.Close())
}

// emptyDir makes sure dir is a new or empty directory, creating it if
// needed, and returns what removes what a failed restore wrote there.
func emptyDir(dir string) (cleanup func() error, err error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		return func() error { return os.RemoveAll(dir) }, nil
	case err != nil:
		return nil, fmt.Errorf("restore: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("restore: %s is a file: restore into a new or empty directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if len(entries) > 0 {
		return nil, fmt.Errorf("restore: %s is not empty (it holds %s): restore writes only into a new or empty directory, so that it never overwrites a store", dir, entries[0].Name())
	}
	return func() error {
		entries, err := os.ReadDir(dir)
		for _, e := range entries {
			err = errors.Join(err, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
		return err
	}, nil
}
