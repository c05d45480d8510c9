package diskstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrNotRepairable is matched (with errors.Is) by the error of a [Repair]
// that found problems a rebuild of the index does not repair: damage in
// the log, or any problem of a compacted store.
var ErrNotRepairable = errors.New("diskstore: rebuilding the index does not repair the store")

// Repair checks the store in dir offline and, when rebuilding its index
// from the log repairs every problem found ([CheckReport.Repairable]),
// rebuilds it: it moves the index's files aside into a directory of the
// store's, opens the store (which replays the whole log into a new index,
// as Open does when the index is gone), checks it again, and removes the
// old index's files once the store passes. If the rebuild fails, it puts
// the old files back.
//
// It returns the report of the check before, and of the check after a
// rebuild (nil when nothing was rebuilt). A store with nothing wrong is
// left as it is; one that a rebuild cannot repair is left as it is, with
// an error matching [ErrNotRepairable].
func Repair(ctx context.Context, dir string, opts CheckOptions) (before, after *CheckReport, err error) {
	before, err = Check(ctx, dir, opts)
	if err != nil || before.OK() {
		return before, nil, err
	}
	if !before.Repairable() {
		return before, nil, fmt.Errorf("%w: %s", ErrNotRepairable, before.Advice())
	}
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	if err := refuseBackupDir(fs, dir); err != nil {
		return before, nil, fmt.Errorf("%w: restore the backup into a new directory, and repair that", err)
	}
	aside := fs.PathJoin(dir, "index.before-repair-"+time.Now().UTC().Format("20060102T150405Z"))
	moved, err := moveIndexFiles(fs, dir, aside)
	if err != nil {
		return before, nil, errors.Join(fmt.Errorf("diskstore: repair: moving the index aside: %w", err), putBack(fs, dir, aside, moved))
	}
	db, err := Open(dir, Options{FS: fs, Logger: opts.Logger})
	if err == nil {
		err = db.Close()
	}
	if err != nil {
		return before, nil, errors.Join(fmt.Errorf("diskstore: repair: rebuilding the index from the log: %w", err), putBack(fs, dir, aside, moved))
	}
	after, err = Check(ctx, dir, opts)
	if err != nil {
		return before, nil, fmt.Errorf("diskstore: repair: checking the rebuilt index (the old one's files are in %s): %w", aside, err)
	}
	if !after.OK() {
		return before, after, fmt.Errorf("diskstore: repair: the rebuilt index still has problems (the old one's files are in %s)", aside)
	}
	if err := fs.RemoveAll(aside); err != nil {
		return before, after, fmt.Errorf("diskstore: repair: the index is rebuilt, but removing the old one's files (%s): %w", aside, err)
	}
	return before, after, nil
}

// moveIndexFiles moves the index's files (every file in dir but its lock)
// into aside, and returns their names.
func moveIndexFiles(fs vfs.FS, dir, aside string) ([]string, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, err
	}
	if err := fs.MkdirAll(aside, 0o755); err != nil {
		return nil, err
	}
	var moved []string
	for _, name := range names {
		st, err := fs.Stat(fs.PathJoin(dir, name))
		if err != nil {
			return moved, err
		}
		if st.IsDir() || name == "LOCK" {
			continue
		}
		if err := fs.Rename(fs.PathJoin(dir, name), fs.PathJoin(aside, name)); err != nil {
			return moved, err
		}
		moved = append(moved, name)
	}
	return moved, syncDirs(fs, dir, aside)
}

// putBack undoes moveIndexFiles after a failed rebuild: it removes what
// the rebuild wrote and moves the old files back.
func putBack(fs vfs.FS, dir, aside string, moved []string) error {
	names, err := fs.List(dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		st, err := fs.Stat(fs.PathJoin(dir, name))
		if err != nil || st.IsDir() || name == "LOCK" {
			continue
		}
		if err := fs.Remove(fs.PathJoin(dir, name)); err != nil {
			return err
		}
	}
	for _, name := range moved {
		if err := fs.Rename(fs.PathJoin(aside, name), fs.PathJoin(dir, name)); err != nil {
			return err
		}
	}
	if err := syncDirs(fs, dir); err != nil {
		return err
	}
	return fs.RemoveAll(aside)
}

func syncDirs(fs vfs.FS, dirs ...string) error {
	for _, dir := range dirs {
		d, err := fs.OpenDir(dir)
		if err != nil {
			return err
		}
		if err := errors.Join(d.Sync(), d.Close()); err != nil {
			return err
		}
	}
	return nil
}
