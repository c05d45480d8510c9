package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cairndb/cairn/diskstore"
)

// Options configure a backup. The zero value hard-links what it can and
// keeps every generation.
type Options struct {
	// Copy copies the store's files even where the backup is on the
	// store's filesystem and could link them: the backup then shares no
	// bytes with the store.
	Copy bool
	// Keep removes, once the backup is complete, the oldest generations
	// but Keep. Zero keeps them all.
	Keep int
	// Source names the store in the manifest (a directory, a server's URL
	// without its password).
	Source string
	// Planned is called once the backup knows what it copies: the files
	// and bytes to copy or receive (not those it links).
	Planned func(files int, bytes int64)
	// Progress is called as files are written: files finished, and bytes
	// copied since the last call.
	Progress func(files, bytes int64)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *Options) planned(files int, bytes int64) {
	if o.Planned != nil {
		o.Planned(files, bytes)
	}
}

func (o *Options) progress(files, bytes int64) {
	if o.Progress != nil && (files != 0 || bytes != 0) {
		o.Progress(files, bytes)
	}
}

// Counts are files and their bytes.
type Counts struct {
	Files int
	Bytes int64
}

func (c *Counts) add(size int64) { c.Files++; c.Bytes += size }

// Result is what a backup wrote.
type Result struct {
	// Generation is the new generation.
	Generation
	// Copied counts the files copied (or received) from the store, and
	// the bytes; Linked those linked from the store; Reused those linked
	// from the generation before; Resumed the files whose first bytes
	// were copied from the generation before (the log's last segment),
	// and those bytes.
	Copied, Linked, Reused, Resumed Counts
	// Previous is the generation the backup reused files of, "" when it
	// reused none.
	Previous string
	// Removed are the generations that Options.Keep removed.
	Removed []string
}

// genWriter writes one generation into its partial directory, and
// renames it once complete.
type genWriter struct {
	s    *Set
	opts Options
	prev *Generation
	m    Manifest
	name string // the directory's name once complete
	dir  string // the partial directory
	res  Result
	buf  []byte
}

// begin starts a generation of the store store's backup.
func (s *Set) begin(store string, opts Options) (*genWriter, error) {
	w := &genWriter{s: s, opts: opts}
	n := 1
	if g, ok := s.Latest(); ok {
		if g.Manifest.Store != store {
			return nil, fmt.Errorf("backup set %s holds backups of another store (%s; this one is %s, a restored store gets an identity of its own): back this store up into a new directory", s.dir, g.Manifest.Store, store)
		}
		w.prev = &g
		n = g.Manifest.Generation + 1
	}
	if err := s.removeBroken(); err != nil {
		return nil, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	created := now().UTC().Truncate(time.Second)
	w.m = Manifest{Format: ManifestFormat, Store: store, Generation: n, Created: created, Source: opts.Source}
	w.name = generationName(n, created)
	w.dir = filepath.Join(s.dir, w.name+partialSuffix)
	if err := os.Mkdir(w.dir, 0o700); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := os.Mkdir(filepath.Join(w.dir, "log"), 0o700); err != nil {
		return nil, errors.Join(fmt.Errorf("backup: %w", err), w.abort())
	}
	return w, nil
}

// abort removes the partial generation.
func (w *genWriter) abort() error { return os.RemoveAll(w.dir) }

func (w *genWriter) path(name string) string { return filepath.Join(w.dir, filepath.FromSlash(name)) }

// reuse links f from the generation before (copying it if the link
// fails).
func (w *genWriter) reuse(ctx context.Context, f File) error {
	if w.prev == nil {
		return fmt.Errorf("backup: %s is to be reused, but the set holds no generation", f.Name)
	}
	p, ok := w.prev.Manifest.file(f.Name)
	if !ok || !p.Sealed || p.Size != f.Size {
		return fmt.Errorf("backup: %s is to be reused, but generation %s holds no sealed copy of %d bytes", f.Name, w.prev.Dir, f.Size)
	}
	from := filepath.Join(w.prev.Dir, filepath.FromSlash(f.Name))
	if linked(from, w.path(f.Name), f.Size) {
		w.res.Reused.add(f.Size)
		w.m.Files = append(w.m.Files, File{Name: f.Name, Size: f.Size, Sealed: true, Reused: true})
		w.opts.progress(1, 0)
		return nil
	}
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer src.Close()
	f.Prefix = 0
	if err := w.copy(ctx, f, src); err != nil {
		return err
	}
	w.m.Files[len(w.m.Files)-1].Reused = true
	return nil
}

// linked links from to to when both are on one filesystem and from has
// size bytes; it reports whether it did.
func linked(from, to string, size int64) bool {
	if err := os.Link(from, to); err != nil {
		return false
	}
	if st, err := os.Stat(to); err != nil || st.Size() != size {
		_ = os.Remove(to) // a link we just made; the file stays as it was
		return false
	}
	return true
}

// link links f from the store at path, and reports whether it did.
func (w *genWriter) link(f File, path string) bool {
	if !linked(path, w.path(f.Name), f.Size) {
		return false
	}
	w.res.Linked.add(f.Size)
	w.m.Files = append(w.m.Files, File{Name: f.Name, Size: f.Size, Sealed: f.Sealed})
	w.opts.progress(1, 0)
	return true
}

// copy copies the bytes of src after f.Prefix into the generation (the
// first f.Prefix from the generation before).
func (w *genWriter) copy(ctx context.Context, f File, src readerAt) error {
	out, err := w.create(ctx, f)
	if err != nil {
		return err
	}
	err = copyRange(ctx, out, src, f.Prefix, f.Size, w.buffer(), func(n int64) { w.opts.progress(0, n) })
	return w.close(out, f, err)
}

func (w *genWriter) buffer() []byte {
	if w.buf == nil {
		w.buf = make([]byte, chunkBytes)
	}
	return w.buf
}

// create creates the file for f in the generation, with its first
// f.Prefix bytes copied from the generation before.
func (w *genWriter) create(ctx context.Context, f File) (*os.File, error) {
	var prev *os.File
	if f.Prefix > 0 {
		var p File
		var ok bool
		if w.prev != nil {
			p, ok = w.prev.Manifest.file(f.Name)
		}
		if !ok || p.Size < f.Prefix {
			return nil, fmt.Errorf("backup: the first %d bytes of %s are to come from the generation before, which holds no such copy", f.Prefix, f.Name)
		}
		var err error
		if prev, err = os.Open(filepath.Join(w.prev.Dir, filepath.FromSlash(f.Name))); err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		defer prev.Close()
	}
	out, err := os.OpenFile(w.path(f.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if prev != nil {
		if err := copyRange(ctx, out, prev, 0, f.Prefix, w.buffer(), func(int64) {}); err != nil {
			return nil, errors.Join(fmt.Errorf("backup: %s: %w", f.Name, err), out.Close())
		}
	}
	return out, nil
}

// close completes the file for f, written with the outcome err: it gives
// it its length (zeros left unwritten are holes), syncs and closes it.
func (w *genWriter) close(out *os.File, f File, err error) error {
	if err == nil {
		err = out.Truncate(f.Size)
	}
	if err == nil {
		err = out.Sync()
	}
	if err = errors.Join(err, out.Close()); err != nil {
		return fmt.Errorf("backup: %s: %w", f.Name, err)
	}
	w.res.Copied.add(f.Size - f.Prefix)
	if f.Prefix > 0 {
		w.res.Resumed.add(f.Prefix)
	}
	w.m.Files = append(w.m.Files, File{Name: f.Name, Size: f.Size, Sealed: f.Sealed, Prefix: f.Prefix})
	w.opts.progress(1, 0)
	return nil
}

// finish makes the generation durable and complete: its files and
// directories synced, its manifest written last, its directory renamed.
// Then it removes the generations Options.Keep does not keep.
func (w *genWriter) finish(head uint64, compacted bool) (*Result, error) {
	w.m.Head, w.m.Compacted = head, compacted
	if err := errors.Join(syncDir(filepath.Join(w.dir, "log")), syncDir(w.dir)); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	b, err := w.m.Marshal()
	if err != nil {
		return nil, err
	}
	if err := writeFileSync(filepath.Join(w.dir, diskstore.BackupManifestName), b); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	final := filepath.Join(w.s.dir, w.name)
	if err := os.Rename(w.dir, final); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := syncDir(w.s.dir); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	w.res.Generation = Generation{Dir: final, Manifest: &w.m}
	if w.prev != nil && w.res.Reused.Files+w.res.Resumed.Files > 0 {
		w.res.Previous = w.prev.Dir
	}
	w.s.gens = append(w.s.gens, w.res.Generation)
	removed, err := w.s.prune(w.opts.Keep)
	w.res.Removed = removed
	if err != nil {
		return &w.res, err
	}
	return &w.res, nil
}

func writeFileSync(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Sync(), f.Close())
}

// Write backs up the store src into the set as a new generation: it
// reuses the sealed files of the newest generation that have not changed
// (and the part of the log's last segment it holds), links the store's
// other sealed files where it can (unless opts.Copy), and copies the
// rest. src is the caller's to close afterwards.
func (s *Set) Write(ctx context.Context, src *diskstore.Backup, opts Options) (res *Result, err error) {
	w, err := s.begin(src.StoreID(), opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && res == nil {
			err = errors.Join(err, w.abort())
		}
	}()
	var prev *Manifest
	if w.prev != nil {
		prev = w.prev.Manifest
	}
	files := src.Files()
	plan := plans(prev, src.StoreID(), files)
	canLink := func(f diskstore.BackupFile) (string, bool) {
		if opts.Copy || !f.Sealed {
			return "", false
		}
		p, ok := src.LocalPath(f.Name)
		return p, ok && sameDevice(p, s.dir)
	}
	var planned int
	var bytes int64
	for i, f := range files {
		if _, link := canLink(f); !plan[i].reuse && !link {
			planned++
			bytes += f.Size - plan[i].prefix
		}
	}
	opts.planned(planned, bytes)
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		bf := File{Name: f.Name, Size: f.Size, Sealed: f.Sealed}
		if plan[i].reuse {
			if err := w.reuse(ctx, bf); err != nil {
				return nil, err
			}
			continue
		}
		if p, ok := canLink(f); ok && w.link(bf, p) {
			continue
		}
		bf.Prefix = plan[i].prefix
		r, err := src.Open(f.Name)
		if err != nil {
			return nil, fmt.Errorf("backup: %s: %w", f.Name, err)
		}
		err = w.copy(ctx, bf, r)
		if cerr := r.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("backup: %s: %w", f.Name, cerr)
		}
		if err != nil {
			return nil, err
		}
	}
	return w.finish(src.Head(), src.Compacted())
}
