package diskstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The offline check of a store: Check reads every frame of the log and
// every entry of the index, checks each against its checksum, the index
// against the log and the log against the index, and says what is wrong
// and whether rebuilding the index repairs it; Repair rebuilds it.
//
// What it checks:
//
//   - the log (check_log.go): every frame's checksum, the records and
//     index batch in it, that its marker and positions follow the frame
//     before, every event's checksum; zeros after the last frame of a
//     segment the log has gone on from; no segment missing. A compacted
//     log has holes where compaction freed what no replay needs: its
//     frames are read only after the index's marker, its events through
//     the index.
//   - the index (check_index.go): every value's checksum; locators in
//     order, without overlaps, pointing at the records of their positions;
//     runs contiguous per stream, pointing at the records of their
//     stream's versions at their positions, within a locator; retry
//     records pointing at the first event of their append; each stream's
//     head (its last run) and state against the events the log holds for
//     it; the marker at the end of a frame of the log; the blocks of the
//     lists of categories, types and tags well formed, numbered on from
//     0 without gaps, at rising positions below the index's last.
//   - for a log never compacted (check_replay.go): the index entry by entry
//     against the index rebuilt from the log (every frame's index writes
//     replayed into a scratch database, and the events of frames written
//     before the lists existed filed as Open's replay files them),
//     whatever kinds of entry it holds.

// CheckOptions configure [Check] and [Repair]. The zero value checks a
// store on the operating system's filesystem.
type CheckOptions struct {
	// FS is the filesystem the store lives on; nil means the operating
	// system's.
	FS vfs.FS
	// TempDir is where the check rebuilds the index from the log, to
	// compare it with the store's: a scratch database about as large as
	// the index, removed when the check ends. Empty means os.TempDir().
	TempDir string
	// Planned is called with the bytes the check expects to read, once it
	// knows (again when it knows better).
	Planned func(bytes int64)
	// Progress is called as the check reads: events checked (each counted
	// once) and bytes read since the last call.
	Progress func(events, bytes int64)
	// Logger receives the engine's diagnostics while Repair rebuilds the
	// index. Nil discards them.
	Logger *slog.Logger
}

func (o *CheckOptions) progress(events, bytes int64) {
	if o.Progress != nil && (events != 0 || bytes != 0) {
		o.Progress(events, bytes)
	}
}

// Problem is one thing [Check] found wrong.
type Problem struct {
	// File is where: a segment of the log ("log/0000000000000001.log"),
	// or "index".
	File string
	// Offset is the offset in File, -1 when it does not apply.
	Offset int64
	// Stream, Version and Position name the stream, version and position
	// concerned; "" and -1 when they do not apply or are not known.
	Stream   string
	Version  int64
	Position int64
	// Message says what is wrong.
	Message string
	// Index is set for a problem of the index, which rebuilding the index
	// from the log repairs when the log is sound and was never compacted.
	// Any other problem is the log's: restore the store from a backup.
	Index bool
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Offset >= 0 {
		fmt.Fprintf(&b, " offset %d", p.Offset)
	}
	b.WriteString(": ")
	var what []string
	if p.Stream != "" {
		what = append(what, fmt.Sprintf("stream %q", p.Stream))
	}
	if p.Version >= 0 {
		what = append(what, fmt.Sprintf("version %d", p.Version))
	}
	if p.Position >= 0 {
		what = append(what, fmt.Sprintf("position %d", p.Position))
	}
	if len(what) > 0 {
		b.WriteString(strings.Join(what, " "))
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// CheckReport is what [Check] found.
type CheckReport struct {
	// Dir is the store's directory.
	Dir string
	// Segments, LogBytes and Frames describe the log; Frames counts those
	// read (a compacted log's only after the index's marker).
	Segments int
	LogBytes int64
	Frames   int64
	// Events is the number of events checked; Streams the number of
	// streams the index knows.
	Events  int64
	Streams int64
	// IndexEntries is the number of entries in the index; ListBlocks
	// the number of blocks of its lists of categories, types and tags.
	IndexEntries int64
	ListBlocks   int64
	// Head is the position after the last event the index holds.
	Head uint64
	// Lag counts the frames of the log after the last one the index
	// holds: the store was not closed cleanly (or is a backup), and the
	// next open replays them.
	Lag int64
	// Compacted says the log was compacted: the index cannot be rebuilt
	// from it.
	Compacted bool
	// Compared says the index was compared, entry by entry, with an
	// index rebuilt from the log.
	Compared bool
	// Problems lists what is wrong, Notes what is worth knowing but not
	// wrong.
	Problems []Problem
	Notes    []string
}

// OK reports whether the check found nothing wrong.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 }

// Repairable reports whether rebuilding the index from the log repairs
// every problem found: there are some, each is the index's, and the log
// is sound and was never compacted.
func (r *CheckReport) Repairable() bool {
	if r.OK() || r.Compacted {
		return false
	}
	for _, p := range r.Problems {
		if !p.Index {
			return false
		}
	}
	return true
}

// Advice says, in a sentence, what to do about the problems found.
func (r *CheckReport) Advice() string {
	switch {
	case r.OK():
		return "nothing to do"
	case r.Repairable():
		return "the log is sound: rebuilding the index from it repairs every problem (cairn check --repair)"
	case r.Compacted:
		return "the log was compacted, so the index cannot be rebuilt from it: restore the store from a backup"
	}
	return "the log itself is damaged, which rebuilding the index does not repair: restore the store from a backup"
}

// checker is the state of one check.
type checker struct {
	dir  string
	fs   vfs.FS
	opts CheckOptions
	d    *DB // pdb (nil when the index cannot be opened) and log
	r    *CheckReport

	mark    marker // the index's marker
	hasMark bool
	// idMark is the index's ID mark (ids.go): it holds the retry
	// records of the frames up to it.
	idMark    marker
	hasIDMark bool
	// overlay holds, over the index, the runs of the frames the marker
	// covers and the ID mark does not, which Open takes into memory
	// (runs.go): the index the checks read (nil: none).
	overlay *pebble.Batch
	// markFrame is set once the scan finds the frame the marker ends.
	markFrame  bool
	logDamaged bool

	replay *replayIndex // the index rebuilt from the log; nil when not built

	locs    []locRange              // the index's locators, in order
	tally   map[string]*streamTally // the events the log holds, by stream, through the locators
	metas   map[string]meta         // the streams' state records
	damaged map[uint64]int          // damaged events, by position: index in r.Problems
	lr      seglog.Reader
	vals    [][]byte
	sc      strCache
	key     [9]byte
	// The block and the list being read (check_index.go).
	blk  block
	list listState
	// alike counts the problems of each kind, alikeFirst lists the kinds
	// with more than maxAlike.
	alike      map[string]int
	alikeFirst []alikeKind
	// The records of the locator read last by eventAt, copied.
	cached     uint64
	cachedVals [][]byte
	cachedBuf  []byte
	rbuf       []byte // the buffer of random reads
	// ids counts the retry records, idsMatched those a run matched.
	ids, idsMatched int64
}

// Check checks the store in dir offline: it opens nothing for writing,
// and refuses (with an error) a store that a process holds for writing. It
// returns an error when it cannot check (no store there, the store in use,
// a read that fails); what it finds wrong is in the report.
func Check(ctx context.Context, dir string, opts CheckOptions) (*CheckReport, error) {
	c, err := openChecker(dir, opts)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if err := c.run(ctx); err != nil {
		return nil, err
	}
	return c.r, nil
}

func openChecker(dir string, opts CheckOptions) (*checker, error) {
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	fs := opts.FS
	if _, err := fs.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("diskstore: check %s: %w", dir, ErrNoStore)
		}
		return nil, fmt.Errorf("diskstore: check %s: %w", dir, err)
	}
	c := &checker{
		dir: dir, fs: fs, opts: opts,
		r:       &CheckReport{Dir: dir},
		d:       &DB{opts: Options{FS: fs, ReadOnly: true}},
		tally:   map[string]*streamTally{},
		metas:   map[string]meta{},
		damaged: map[uint64]int{},
		alike:   map[string]int{},
	}
	c.d.opts.ensureDefaults()
	c.d.lg = c.d.opts.Logger
	logDir := fs.PathJoin(dir, "log")
	_, lerr := fs.Stat(logDir)
	po := c.d.pebbleOptions()
	po.ReadOnly = true
	po.FS = checkLockFS{sharedLockFS{fs}}
	pdb, err := pebble.Open(dir, po)
	switch {
	case err == nil:
		c.d.pdb = pdb
		if ierr := c.d.init(); ierr != nil {
			if errors.Is(ierr, ErrNoStore) && errors.Is(lerr, os.ErrNotExist) {
				c.close()
				return nil, fmt.Errorf("diskstore: check %s: %w", dir, ErrNoStore)
			}
			c.indexProblem("", -1, -1, "the format record: %v", ierr)
		}
	case errors.Is(err, ErrNoStore) && errors.Is(lerr, os.ErrNotExist):
		return nil, fmt.Errorf("diskstore: check %s: %w", dir, ErrNoStore)
	case isLocked(err):
		return nil, fmt.Errorf("diskstore: check %s: the store is in use by another process (a running server?): check it once it is stopped, or check a backup of it: %w", dir, err)
	default:
		c.indexProblem("", -1, -1, "the index cannot be opened: %s", oneLine(err))
	}
	if errors.Is(lerr, os.ErrNotExist) {
		c.problem("no log", Problem{File: "log", Offset: -1, Version: -1, Position: -1, Message: "the log's directory is missing"})
		return c, nil
	}
	if lerr != nil {
		c.close()
		return nil, fmt.Errorf("diskstore: check %s: %w", dir, lerr)
	}
	lg, err := seglog.Open(fs, logDir, c.d.opts.SegmentBytes, true)
	if err != nil {
		c.close()
		return nil, fmt.Errorf("diskstore: check %s: the log: %w", dir, err)
	}
	c.d.log = lg
	c.lr = lg.NewReader()
	return c, nil
}

func (c *checker) close() {
	if c.overlay != nil {
		_ = c.overlay.Close()
	}
	if c.replay != nil {
		c.replay.close()
	}
	if c.d.log != nil {
		c.lr.Release()
		_ = c.d.log.Close() // opened for reading
	}
	if c.d.pdb != nil {
		_ = c.d.pdb.Close() // opened read-only
	}
}

// checkLockFS takes the directory's lock shared, as a read-only open does,
// but a directory without a lock file (a store copied without it) is
// checked without one: no process holds it, since the first open of a
// store makes the file.
type checkLockFS struct{ sharedLockFS }

func (fs checkLockFS) Lock(name string) (io.Closer, error) {
	if _, err := fs.Stat(name); errors.Is(err, os.ErrNotExist) {
		return io.NopCloser(nil), nil
	}
	return fs.sharedLockFS.Lock(name)
}

// isLocked reports whether err is that of a lock another process holds.
func isLocked(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && pe.Op == "lock"
}

// maxAlike bounds the problems of one kind reported one by one: damage
// can make every entry after it wrong.
const maxAlike = 10

// problem records p, of the kind kind, and returns its index in the
// report; -1 when too many of its kind were reported already (they are
// counted, and summed up at the end).
func (c *checker) problem(kind string, p Problem) int {
	if !p.Index && p.File != "index" {
		c.logDamaged = true
	}
	if c.alike[kind]++; c.alike[kind] > maxAlike {
		if c.alike[kind] == maxAlike+1 {
			c.alikeFirst = append(c.alikeFirst, alikeKind{kind, p})
		}
		return -1
	}
	c.r.Problems = append(c.r.Problems, p)
	return len(c.r.Problems) - 1
}

// alikeKind is a kind of problem reported more than maxAlike times.
type alikeKind struct {
	kind  string
	first Problem // the first not reported
}

// sumAlike reports how many problems of each kind were left out.
func (c *checker) sumAlike() {
	for _, a := range c.alikeFirst {
		p := a.first
		p.Message = fmt.Sprintf("and %d more problems like the one before: %s", c.alike[a.kind]-maxAlike, p.Message)
		c.r.Problems = append(c.r.Problems, p)
	}
}

// indexProblem records a problem of the index about a stream's version
// and position (-1 where they do not apply).
func (c *checker) indexProblem(stream string, version int64, pos int64, format string, args ...any) {
	c.problem(format, Problem{File: "index", Offset: -1, Stream: stream, Version: version, Position: pos, Message: fmt.Sprintf(format, args...), Index: true})
}

// logProblem records damage in segment seg at offset off.
func (c *checker) logProblem(seg uint64, off int64, pos int64, format string, args ...any) int {
	return c.problem(format, Problem{File: segmentFile(seg), Offset: off, Version: -1, Position: pos, Message: fmt.Sprintf(format, args...)})
}

// numbers names one number or a range: "version 3", "versions 3 to 5".
func numbers(word string, first, last int64) string {
	if first == last {
		return fmt.Sprintf("%s %d", word, first)
	}
	return fmt.Sprintf("%ss %d to %d", word, first, last)
}

// numbersAre is numbers followed by the verb: "version 3 is", "versions 3
// to 5 are".
func numbersAre(word string, first, last int64) string {
	if first == last {
		return numbers(word, first, last) + " is"
	}
	return numbers(word, first, last) + " are"
}

func segmentFile(seg uint64) string { return "log/" + seglog.SegmentName(seg) }

func (c *checker) note(format string, args ...any) {
	c.r.Notes = append(c.r.Notes, fmt.Sprintf(format, args...))
}

// run checks the log, then the index against it.
func (c *checker) run(ctx context.Context) error {
	defer c.sumAlike()
	if c.d.pdb != nil {
		m, ok, err := c.d.marker(c.d.pdb)
		if err != nil {
			if !errorsIsCorrupt(err) {
				return err
			}
			c.indexProblem("", -1, -1, "the marker (the end of the last frame the index holds): %v", err)
		}
		c.mark, c.hasMark = m, ok
		c.r.Head = m.next
		c.idMark, c.hasIDMark = m, ok
		if !c.d.idsInIndex {
			c.idMark, c.hasIDMark, err = readMarkerAt(c.d.pdb, idMarkKey)
			if err != nil {
				if !errorsIsCorrupt(err) {
					return err
				}
				c.indexProblem("", -1, -1, "the ID mark (the end of the last frame whose retry records the index holds): %v", err)
			}
		}
	}
	if c.d.log == nil {
		return nil
	}
	c.r.Compacted = c.d.log.Compacted()
	if err := c.checkLog(ctx); err != nil {
		return err
	}
	if c.d.pdb == nil {
		return nil
	}
	if err := c.checkIndex(ctx); err != nil {
		return err
	}
	if c.replay != nil && !c.logDamaged {
		if err := c.compare(ctx); err != nil {
			return err
		}
		c.r.Compared = true
	}
	if c.r.Compacted {
		c.note("the log was compacted: its frames before the index's marker were checked through the index, and the index cannot be rebuilt from it")
	} else if !c.r.Compared && c.d.pdb != nil {
		c.note("the index was not compared with the log's own record of it: the log is damaged")
	}
	if c.d.migrate {
		c.note("the store is in on-disk format %d, without the index of categories, types and tags: the next open for writing builds it", formatNoIndex)
	}
	if _, err := c.fs.Stat(c.fs.PathJoin(c.dir, backupStage)); err == nil {
		c.note("%s is the index's checkpoint of a backup that did not finish: the next backup removes it", backupStage)
	}
	return nil
}
