package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
)

// Chunk is one message of a backup streamed from a server: the first
// holds the manifest, each of the others a piece of a file.
type Chunk struct {
	// Manifest is the backup's manifest (as BACKUP.json holds it, its
	// generation left to the receiver), in the first chunk only. Files
	// marked Reused are not sent: the receiver links them from its
	// newest generation.
	Manifest []byte
	// File, Offset and Data are a piece of a file: Data goes at Offset.
	// The files come in the manifest's order, each piece after the one
	// before; ranges of zeros are not sent.
	File   string
	Offset int64
	Data   []byte
}

// Send streams the backup src, for [Set.Receive] at the other end.
// previous is the manifest of the receiver's newest generation (nil for
// none): the sealed files it holds unchanged are marked Reused and not
// sent, and of the log's last segment only what it lacks is sent (File's
// Prefix). Each chunk's Data is its own: send may keep it.
func Send(ctx context.Context, src *diskstore.Backup, previous []byte, send func(Chunk) error) error {
	var prev *Manifest
	if len(previous) > 0 {
		var err error
		if prev, err = ParseManifest(previous); err != nil {
			return &cairn.InvalidArgumentError{Field: "previous", Reason: err.Error()}
		}
	}
	files := src.Files()
	plan := plans(prev, src.StoreID(), files)
	m := Manifest{Format: ManifestFormat, Store: src.StoreID(), Created: time.Now().UTC().Truncate(time.Second), Head: src.Head(), Compacted: src.Compacted()}
	for i, f := range files {
		m.Files = append(m.Files, File{Name: f.Name, Size: f.Size, Sealed: f.Sealed, Reused: plan[i].reuse, Prefix: plan[i].prefix})
	}
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	if err := send(Chunk{Manifest: b}); err != nil {
		return err
	}
	for i, f := range files {
		if plan[i].reuse || f.Size == plan[i].prefix {
			continue
		}
		r, err := src.Open(f.Name)
		if err != nil {
			return fmt.Errorf("backup: %s: %w", f.Name, err)
		}
		err = sendFile(ctx, r, f, plan[i].prefix, send)
		if cerr := r.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sendFile sends the bytes of the file f from from on.
func sendFile(ctx context.Context, r readerAt, f diskstore.BackupFile, from int64, send func(Chunk) error) error {
	var p []byte
	for off := from; off < f.Size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(chunkBytes, f.Size-off)
		if int64(cap(p)) < n {
			p = make([]byte, chunkBytes)
		}
		p = p[:n]
		if err := readFull(r, p, off); err != nil {
			return fmt.Errorf("backup: %s: %w", f.Name, err)
		}
		if !allZero(p) {
			if err := send(Chunk{File: f.Name, Offset: off, Data: p}); err != nil {
				return err
			}
			p = nil // the receiver's now
		}
		off += n
	}
	return nil
}

// Source takes backups of an embedded engine's store: a [diskstore.DB],
// or a cluster node (natsstore.DB), whose copy is one.
type Source interface {
	BeginBackup(ctx context.Context) (*diskstore.Backup, error)
}

// StreamFunc returns what streams a backup of db for a server's Backup
// call (cairn.v1; its type is cairnsvc.BackupFunc's): each call takes a
// backup with db's BeginBackup ([diskstore.DB.BeginBackup]) and sends it
// with [Send].
func StreamFunc(db Source) func(ctx context.Context, previous []byte, send func(manifest []byte, file string, offset int64, data []byte) error) error {
	return func(ctx context.Context, previous []byte, send func(manifest []byte, file string, offset int64, data []byte) error) error {
		if len(previous) > 0 {
			if _, err := ParseManifest(previous); err != nil {
				return &cairn.InvalidArgumentError{Field: "previous", Reason: err.Error()}
			}
		}
		b, err := db.BeginBackup(ctx)
		if err != nil {
			return err
		}
		err = Send(ctx, b, previous, func(c Chunk) error { return send(c.Manifest, c.File, c.Offset, c.Data) })
		return errors.Join(err, b.Close())
	}
}

// Receive writes a backup streamed by [Send] as the set's new generation:
// recv returns each chunk in turn, then io.EOF. The request that started
// the stream should carry [Set.PreviousManifest].
func (s *Set) Receive(ctx context.Context, recv func() (Chunk, error), opts Options) (res *Result, err error) {
	first, err := recv()
	if err != nil {
		return nil, err
	}
	if first.Manifest == nil {
		return nil, errors.New("backup: the stream does not begin with a manifest")
	}
	m, err := ParseManifest(first.Manifest)
	if err != nil {
		return nil, err
	}
	w, err := s.begin(m.Store, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && res == nil {
			err = errors.Join(err, w.abort())
		}
	}()
	var planned int
	var bytes int64
	for _, f := range m.Files {
		if !f.Reused {
			planned++
			bytes += f.Size - f.Prefix
		}
	}
	opts.planned(planned, bytes)
	rc := receiver{w: w, ctx: ctx, files: m.Files}
	defer func() {
		if rc.cur != nil {
			_ = rc.cur.Close() // the generation is incomplete, and removed
		}
	}()
	for {
		c, err := recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := rc.take(c); err != nil {
			return nil, err
		}
	}
	if err := rc.through(len(m.Files)); err != nil {
		return nil, err
	}
	return w.finish(m.Head, m.Compacted)
}

// receiver writes the files of a streamed backup in the manifest's order.
type receiver struct {
	w     *genWriter
	ctx   context.Context
	files []File
	next  int      // the index of the next file to start
	cur   *os.File // the file being written, files[next-1]
	at    int64    // the bytes of cur accounted for in progress
}

// take writes one chunk.
func (rc *receiver) take(c Chunk) error {
	if err := rc.ctx.Err(); err != nil {
		return err
	}
	if c.Manifest != nil {
		return errors.New("backup: a second manifest in the stream")
	}
	if rc.cur == nil || rc.files[rc.next-1].Name != c.File {
		i := rc.next
		for i < len(rc.files) && rc.files[i].Name != c.File {
			i++
		}
		if i == len(rc.files) || rc.files[i].Reused {
			return fmt.Errorf("backup: the stream sends %q, not a file to receive next", c.File)
		}
		if err := rc.through(i); err != nil {
			return err
		}
		if err := rc.start(); err != nil {
			return err
		}
	}
	f := rc.files[rc.next-1]
	if c.Offset < rc.at || c.Offset+int64(len(c.Data)) > f.Size {
		return fmt.Errorf("backup: the stream sends %d bytes of %s at %d, outside its %d bytes or before what it sent", len(c.Data), f.Name, c.Offset, f.Size)
	}
	if _, err := rc.cur.WriteAt(c.Data, c.Offset); err != nil {
		return fmt.Errorf("backup: %s: %w", f.Name, err)
	}
	end := c.Offset + int64(len(c.Data))
	rc.w.opts.progress(0, end-rc.at)
	rc.at = end
	return nil
}

// through completes every file before the i-th: the one being written,
// then those the stream sent nothing of (reused, empty, all zeros).
func (rc *receiver) through(i int) error {
	if err := rc.end(); err != nil {
		return err
	}
	for ; rc.next < i; rc.next++ {
		f := rc.files[rc.next]
		if f.Reused {
			if err := rc.w.reuse(rc.ctx, f); err != nil {
				return err
			}
			continue
		}
		out, err := rc.w.create(rc.ctx, f)
		if err != nil {
			return err
		}
		rc.w.opts.progress(0, f.Size-f.Prefix)
		if err := rc.w.close(out, f, nil); err != nil {
			return err
		}
	}
	return nil
}

// start creates the next file (its prefix copied from the generation
// before).
func (rc *receiver) start() error {
	f := rc.files[rc.next]
	out, err := rc.w.create(rc.ctx, f)
	if err != nil {
		return err
	}
	rc.cur, rc.at = out, f.Prefix
	rc.next++
	return nil
}

// end completes the file being written.
func (rc *receiver) end() error {
	if rc.cur == nil {
		return nil
	}
	f := rc.files[rc.next-1]
	rc.w.opts.progress(0, f.Size-rc.at)
	out := rc.cur
	rc.cur = nil
	return rc.w.close(out, File{Name: f.Name, Size: f.Size, Sealed: f.Sealed, Prefix: f.Prefix}, nil)
}
