package diskstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// Backups.
//
// A backup is a copy of the store's files that is itself a store, holding
// every event acknowledged before the backup began. [DB.BeginBackup] makes
// the files to copy consistent while writes go on:
//
//   - a checkpoint of the index (pebble's DB.Checkpoint, hard links to its
//     tables in a directory of the store's): the index as last flushed,
//     whose marker names the last frame it holds;
//   - then the head: the marker of the last frame readers see, read from
//     the current view once the checkpoint is taken, so at or after the
//     checkpoint's marker and after every write acknowledged before;
//   - the log's segments up to the head: whole for those the log has gone
//     on from (sealed: written once, never appended to again), the head's
//     segment up to the head's frame.
//
// Opened, such a copy is a store after a crash at the head: Open replays
// the frames between the checkpoint's marker and the head, as it does
// after a crash. No write waits for a backup.
//
// Compaction frees parts of the log that only such a replay reads (frames'
// headers and index writes before the marker it flushed): while a backup
// is copying, compaction does not free anything (it waits, see Compact),
// and it never punches holes in a segment that has other names than its
// own (hard links, which a backup on the same filesystem makes), whose
// bytes the backup's older index may still point at.

const (
	// BackupManifestName names the file that makes a directory a backup
	// rather than a store (package diskstore/backup writes it last). Open
	// refuses to open such a directory for writing, which would change
	// the backup: restore it instead. A read-only open is allowed.
	BackupManifestName = "BACKUP.json"
	// StoreIDName names the file, in the log's directory, that holds the
	// store's identity: an incremental backup reuses only copies of the
	// same store's files. A restored store gets an identity of its own.
	StoreIDName = "STORE-ID"
	// backupStage names the directory, in the store's, that holds the
	// index's checkpoint while a backup copies it.
	backupStage = ".backup-checkpoint"
)

// gate admits one holder at a time; its zero value is open.
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func (g *gate) enter(ctx context.Context) error {
	g.once.Do(func() { g.ch = make(chan struct{}, 1) })
	select {
	case g.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) leave() { <-g.ch }

// refuseBackupDir refuses to open a backup for writing.
func refuseBackupDir(fs vfs.FS, dir string) error {
	if _, err := fs.Stat(fs.PathJoin(dir, BackupManifestName)); err == nil {
		return fmt.Errorf("diskstore: open %s: the directory is a backup (it holds %s): opening it for writing would change it; restore it into a new directory (cairn restore) and open that", dir, BackupManifestName)
	}
	return nil
}

// BackupFile is one file of a backup.
type BackupFile struct {
	// Name is the file's path relative to the store's directory, with
	// slashes: "000012.sst", "log/0000000000000003.log".
	Name string
	// Size is the number of bytes of the file that belong to the backup,
	// from its start: the whole file, or the head's segment up to the
	// head.
	Size int64
	// Sealed files never change: the index's tables, and the segments the
	// log has gone on from. An incremental backup may reuse an earlier
	// copy of a sealed file of the same store, name and size.
	Sealed bool
}

// Backup is a consistent set of the store's files, from [DB.BeginBackup]
// until Close: copy the first Size bytes of each, and the copy is a store
// that holds every event acknowledged before BeginBackup was called.
type Backup struct {
	fs        vfs.FS
	dir       string // the store's directory
	stage     string // the checkpoint's directory
	files     []BackupFile
	head      marker
	id        string
	compacted bool
	d         *DB
	closeOnce sync.Once
	closeErr  error
}

// BeginBackup starts a backup: it checkpoints the index, records the head
// and lists the files to copy (see the comment at the top of backup.go).
// Writes go on meanwhile; compaction waits until the backup is closed
// before it frees anything, and so does another backup. Close the Backup
// when the files are copied.
func (d *DB) BeginBackup(ctx context.Context) (*Backup, error) {
	if d.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	if err := d.backups.enter(ctx); err != nil {
		return nil, err
	}
	b, err := d.beginBackup(ctx)
	if err != nil {
		d.backups.leave()
		return nil, err
	}
	return b, nil
}

func (d *DB) beginBackup(ctx context.Context) (*Backup, error) {
	fs := d.opts.FS
	logDir := d.log.Dir()
	dir := fs.PathDir(logDir)
	b := &Backup{fs: fs, dir: dir, stage: fs.PathJoin(dir, backupStage), d: d}
	id, err := d.storeID()
	if err != nil {
		return nil, fmt.Errorf("diskstore: backup: the store's identity: %w", err)
	}
	b.id = id
	// A checkpoint left by a backup that did not finish (the process
	// stopped) would fail this one.
	if err := fs.RemoveAll(b.stage); err != nil {
		return nil, fmt.Errorf("diskstore: backup: %w", err)
	}
	if err := d.pdb.Checkpoint(b.stage); err != nil {
		return nil, fmt.Errorf("diskstore: backup: checkpoint of the index: %w", wrapErr(err))
	}
	fail := func(err error) (*Backup, error) {
		return nil, errors.Join(fmt.Errorf("diskstore: backup: %w", err), fs.RemoveAll(b.stage))
	}
	// The head, once the checkpoint is taken: every write acknowledged
	// before BeginBackup is visible, and the checkpoint holds no frame
	// after it (the index is flushed only once its writes are durable,
	// and readers see them before their writers are answered).
	v, err := d.acquire(ctx)
	if err != nil {
		return fail(err)
	}
	m, ok, err := d.marker(v.snap)
	d.releaseView(v)
	if err != nil {
		return fail(err)
	}
	segs := d.log.Segments()
	if !ok {
		// No frame was ever written: the first segment, empty.
		m = marker{seg: 1}
		if len(segs) > 0 {
			m.seg = segs[0]
		}
	}
	b.head = m
	names, err := fs.List(b.stage)
	if err != nil {
		return fail(err)
	}
	slices.Sort(names)
	for _, name := range names {
		st, err := fs.Stat(fs.PathJoin(b.stage, name))
		if err != nil {
			return fail(err)
		}
		if st.IsDir() {
			continue
		}
		sealed := strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".blob")
		b.files = append(b.files, BackupFile{Name: name, Size: st.Size(), Sealed: sealed})
	}
	// An empty lock file (never a link to the store's: locks belong to
	// the file): a backup is a store's directory in every respect, so
	// that it can be checked (read-only opens take the lock shared).
	b.files = append(b.files, BackupFile{Name: "LOCK"})
	b.compacted = d.log.Compacted()
	if b.compacted {
		b.files = append(b.files, BackupFile{Name: "log/" + seglog.CompactedNote})
	}
	for _, s := range segs {
		if s > m.seg {
			break
		}
		f := BackupFile{Name: "log/" + seglog.SegmentName(s), Size: m.end}
		if s < m.seg {
			if f.Size, err = d.log.Size(s); err != nil {
				return fail(err)
			}
			f.Sealed = true
		}
		b.files = append(b.files, f)
	}
	return b, nil
}

// Files returns the files to copy, the index's first, then the log's in
// order.
func (b *Backup) Files() []BackupFile { return slices.Clone(b.files) }

// Head returns the position after the last event the backup holds: every
// event at a lower position that was ever acknowledged.
func (b *Backup) Head() uint64 { return b.head.next }

// StoreID returns the identity of the store backed up.
func (b *Backup) StoreID() string { return b.id }

// Compacted reports whether the store's log was compacted: the backup's
// index cannot be rebuilt from its log.
func (b *Backup) Compacted() bool { return b.compacted }

// path returns where the file of the backup named name is.
func (b *Backup) path(name string) (string, error) {
	i := slices.IndexFunc(b.files, func(f BackupFile) bool { return f.Name == name })
	if i < 0 {
		return "", fmt.Errorf("diskstore: backup: no file %q", name)
	}
	if rest, ok := strings.CutPrefix(name, "log/"); ok {
		return b.fs.PathJoin(b.fs.PathJoin(b.dir, "log"), rest), nil
	}
	if name == "LOCK" {
		return b.fs.PathJoin(b.dir, name), nil
	}
	return b.fs.PathJoin(b.stage, name), nil
}

// Open opens the file of the backup named name, for reading. Read its
// first Size bytes only: the head's segment goes on.
func (b *Backup) Open(name string) (vfs.File, error) {
	p, err := b.path(name)
	if err != nil {
		return nil, err
	}
	return b.fs.Open(p)
}

// LocalPath returns the path of the file of the backup named name on the
// operating system's filesystem, to link it rather than copy it; ok is
// false when the store lives on another filesystem (in memory, in tests).
func (b *Backup) LocalPath(name string) (path string, ok bool) {
	if b.fs != vfs.Default {
		return "", false
	}
	p, err := b.path(name)
	return p, err == nil
}

// Close ends the backup: it removes the index's checkpoint and lets
// compaction and other backups go on.
func (b *Backup) Close() error {
	b.closeOnce.Do(func() {
		b.closeErr = b.fs.RemoveAll(b.stage)
		b.d.backups.leave()
	})
	return b.closeErr
}

// storeID returns the store's identity, making one the first time.
func (d *DB) storeID() (string, error) {
	fs := d.opts.FS
	p := fs.PathJoin(d.log.Dir(), StoreIDName)
	id, err := readStoreID(fs, p)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return id, err
	}
	return writeStoreID(fs, d.log.Dir(), uuid.NewString())
}

func readStoreID(fs vfs.FS, path string) (string, error) {
	f, err := fs.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 128))
	if err != nil {
		return "", err
	}
	id, err := uuid.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return id.String(), nil
}

// writeStoreID durably writes id as the identity of the store whose log
// is in logDir.
func writeStoreID(fs vfs.FS, logDir, id string) (string, error) {
	p := fs.PathJoin(logDir, StoreIDName)
	tmp := p + ".tmp"
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return "", err
	}
	_, err = io.WriteString(f, id+"\n")
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		return "", err
	}
	if err := fs.Rename(tmp, p); err != nil {
		return "", err
	}
	d, err := fs.OpenDir(logDir)
	if err != nil {
		return "", err
	}
	return id, errors.Join(d.Sync(), d.Close())
}

// NewStoreID gives the store in dir (on the operating system's filesystem)
// an identity of its own, as a restore does: backups of it never reuse
// files of backups of the store it was restored from.
func NewStoreID(dir string) error {
	_, err := writeStoreID(vfs.Default, vfs.Default.PathJoin(dir, "log"), uuid.NewString())
	return err
}
