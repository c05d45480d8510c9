package tiered

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn/internal/mmap"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configure a [Set]. The zero value works.
type Options struct {
	// FS is the filesystem the set lives in; vfs.Default when nil.
	FS vfs.FS
	// MergeWidth is how many tables of a tier are merged into one of the
	// next; 8 when 0. At least 2.
	MergeWidth int
	// BlockBytes is the size a table's blocks are cut at (a lookup reads
	// one block a table); 4 KiB when 0.
	BlockBytes int
	// ReadOnly opens an existing set for reading only: nothing in the
	// directory is created, removed or changed (not even the files a
	// crash left, which the next Open for writing removes), no merge
	// runs, and Add fails with ErrReadOnly.
	ReadOnly bool
}

// ErrReadOnly is returned by Add on a set opened with Options.ReadOnly.
var ErrReadOnly = errors.New("tiered: the set was opened read-only")

// ErrCorrupt is matched by the errors of data that fails its checks.
var ErrCorrupt = errors.New("tiered: damaged data")

// ErrClosed is returned by the calls on a closed set.
var ErrClosed = errors.New("tiered: the set is closed")

// CorruptError says which file of a set is damaged, and how. It matches
// [ErrCorrupt].
type CorruptError struct {
	File   string
	Reason string
}

func (e *CorruptError) Error() string {
	return "tiered: " + e.File + " is damaged: " + e.Reason
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Entry is a key and its value, or a tombstone that hides the key's
// values in older tables.
type Entry struct {
	Key, Value []byte
	Delete     bool
}

// Set is a set of immutable sorted tables in one directory (see the
// package documentation). Its methods may be called concurrently.
//
// Locks: installMu is held by Add and by a merge while they write the
// manifest and make the new table list current, so that one replacement
// of the manifest follows the other; mu guards the fields marked so and
// the reference counts, and is never held across I/O but the removal of
// files no version holds.
type Set struct {
	fs   vfs.FS
	dir  string
	opts Options

	installMu sync.Mutex

	mu      sync.Mutex
	cur     *version // guarded by mu, replaced under installMu too
	nextNum uint64   // guarded by mu
	nextSeq uint64   // guarded by mu
	failed  error    // guarded by mu
	closed  bool     // guarded by mu

	wake   chan struct{} // a table was added: merge if a tier is full
	merged chan struct{} // a merge was installed: an Add waiting may go on
	quit   chan struct{} // closed by Close
	done   chan struct{} // closed when the merger exits
	stop   atomic.Bool   // a merge in progress gives up
}

// version is one list of the set's tables, and the mark that came with it.
type version struct {
	tables []*tableRef // newest first
	mark   []byte
	refs   int // guarded by Set.mu: its snapshots, and one while current
}

// tableRef is an open table and the number of versions that list it.
type tableRef struct {
	meta tableMeta
	t    *table
	refs int // guarded by Set.mu
}

// Open opens the set in dir, creating the directory when it does not
// exist. It removes the files of tables that no manifest lists (left by a
// crash while a table was written or merged).
func Open(dir string, opts Options) (*Set, error) {
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.MergeWidth == 0 {
		opts.MergeWidth = 8
	}
	if opts.BlockBytes == 0 {
		opts.BlockBytes = 4 << 10
	}
	if opts.MergeWidth < 2 {
		return nil, fmt.Errorf("tiered: MergeWidth %d: it must be at least 2", opts.MergeWidth)
	}
	fs := opts.FS
	if _, err := fs.Stat(dir); opts.ReadOnly && err != nil {
		return nil, fmt.Errorf("tiered: open %s read-only: %w", dir, err)
	} else if errors.Is(err, os.ErrNotExist) {
		// A new directory: its entry in its parent is made durable, or
		// a crash could lose the set with its directory.
		if err := fs.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := syncDir(fs, fs.PathDir(dir)); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	m, err := readManifest(fs, dir)
	if err != nil {
		return nil, err
	}
	s := &Set{fs: fs, dir: dir, opts: opts, nextNum: m.nextNum, nextSeq: m.nextSeq,
		wake: make(chan struct{}, 1), merged: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	v := &version{mark: m.mark, refs: 1}
	closeAll := func() {
		for _, r := range v.tables {
			r.t.close()
		}
	}
	listed := map[string]bool{}
	for _, meta := range m.tables {
		name := tableName(meta.num)
		listed[name] = true
		t, err := s.openTable(name)
		if errors.Is(err, os.ErrNotExist) {
			err = &CorruptError{File: manifestName, Reason: "it lists " + name + ", which is missing"}
		}
		if err != nil {
			closeAll()
			return nil, err
		}
		v.tables = append(v.tables, &tableRef{meta: meta, t: t, refs: 1})
	}
	s.cur = v
	if opts.ReadOnly {
		close(s.done) // no merger
		return s, nil
	}
	names, err := fs.List(dir)
	if err != nil {
		closeAll()
		return nil, err
	}
	for _, name := range names {
		if name == manifestTemp || strings.HasSuffix(name, ".tbl") && !listed[name] {
			if err := fs.Remove(fs.PathJoin(dir, name)); err != nil {
				closeAll()
				return nil, err
			}
		}
	}
	go s.mergeLoop()
	signal(s.wake) // tiers may be full: a crash came before their merge
	return s, nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (s *Set) openTable(name string) (*table, error) {
	path := s.fs.PathJoin(s.dir, name)
	f, err := s.fs.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	t, err := openTable(f, name, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	if t.data = mmap.Map(f, t.size); t.data != nil {
		t.verified = make([]atomic.Uint64, (len(t.blocks)+63)/64)
	}
	return t, nil
}

// check returns the error that calls on the set get, if any.
func (s *Set) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.failed
}

// fail records err as the reason the set takes no more writes.
func (s *Set) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = fmt.Errorf("tiered: the set failed and takes no writes: %w", err)
	}
	return s.failed
}

// Err returns the error that stopped the set taking writes (a failed
// write or merge), if any.
func (s *Set) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Add writes entries, in strictly increasing key order, as a new table,
// and records mark with it; it returns once both are durable. Its entries
// hide those of the same keys in tables added before. Entries out of
// order are refused with an [*OrderError], and nothing is written. An Add
// without entries records the mark alone.
//
// Adds that come faster than the set merges wait for the merges: an Add
// first waits while tier 0 holds 4×MergeWidth tables or more, so that a
// lookup never reads many more tables than the set's size calls for.
//
// entries is read once, while Add runs; the keys and values it yields
// need only stay valid until it yields the next.
func (s *Set) Add(mark []byte, entries iter.Seq[Entry]) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	for s.backlog() {
		select {
		case <-s.merged:
		case <-s.quit:
			return ErrClosed
		case <-s.done: // the merges stopped: the set failed
			return s.check()
		}
	}
	s.installMu.Lock()
	defer s.installMu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	s.mu.Lock()
	meta := tableMeta{num: s.nextNum, seq: s.nextSeq}
	s.nextNum++ // a merge may take the next number while the table is written
	s.nextSeq++
	s.mu.Unlock()
	t, err := s.writeTable(meta.num, func(tw *tableWriter) error {
		for e := range entries {
			if err := tw.add(e.Key, e.Value, e.Delete); err != nil {
				return err
			}
		}
		return nil
	})
	var oe *OrderError
	if errors.As(err, &oe) {
		return err
	}
	if err != nil {
		return s.fail(err)
	}
	s.mu.Lock()
	tables := slices.Clone(s.cur.tables)
	s.mu.Unlock()
	if t != nil {
		tables = append([]*tableRef{{meta: meta, t: t}}, tables...)
	}
	if err := s.install(tables, slices.Clone(mark)); err != nil {
		if t != nil {
			t.close()
		}
		return s.fail(err)
	}
	signal(s.wake)
	return nil
}

// backlog reports whether tier 0 holds 4×MergeWidth tables or more.
func (s *Set) backlog() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.cur.tables {
		if r.meta.tier == 0 {
			n++
		}
	}
	return n >= 4*s.opts.MergeWidth
}

// OrderError is the error of an [Set.Add] whose entries are out of order,
// or hold a key twice.
type OrderError struct {
	Index     int // the entry's
	Key, Last []byte
}

func (e *OrderError) Error() string {
	return fmt.Sprintf("tiered: entry %d's key %q does not sort after the key before it, %q: entries must be in increasing key order, each key once", e.Index, e.Key, e.Last)
}

// writeTable writes the table numbered num with fill, syncs it, and opens
// it for reading; a table without entries is not written (nil). A table
// that fails is removed.
func (s *Set) writeTable(num uint64, fill func(*tableWriter) error) (*table, error) {
	name := tableName(num)
	path := s.fs.PathJoin(s.dir, name)
	f, err := s.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, err
	}
	tw := newTableWriter(f, s.opts.BlockBytes)
	err = fill(tw)
	empty := err == nil && tw.entries == 0
	if err == nil && !empty {
		err = tw.finish()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || empty {
		_ = s.fs.Remove(path)
		return nil, err
	}
	return s.openTable(name)
}

// install writes the manifest of tables and mark and makes them current.
// The caller holds installMu.
func (s *Set) install(tables []*tableRef, mark []byte) error {
	s.mu.Lock()
	m := &manifest{mark: mark, nextNum: s.nextNum, nextSeq: s.nextSeq}
	s.mu.Unlock()
	for _, r := range tables {
		m.tables = append(m.tables, r.meta)
	}
	if err := writeManifest(s.fs, s.dir, m); err != nil {
		return err
	}
	v := &version{tables: tables, mark: mark, refs: 1}
	s.mu.Lock()
	for _, r := range tables {
		r.refs++
	}
	old := s.cur
	s.cur = v
	gone := s.releaseLocked(old)
	s.mu.Unlock()
	s.remove(gone)
	return nil
}

// releaseLocked drops a reference to v and returns the tables no version
// lists any more. The caller holds mu.
func (s *Set) releaseLocked(v *version) []*tableRef {
	if v.refs--; v.refs > 0 {
		return nil
	}
	var gone []*tableRef
	for _, r := range v.tables {
		if r.refs--; r.refs == 0 {
			gone = append(gone, r)
		}
	}
	return gone
}

// remove closes and deletes tables that no version lists: the manifest
// does not list them either. Once the set is closed it only closes them:
// the current tables' files stay, and Open removes those of the others.
func (s *Set) remove(gone []*tableRef) {
	s.mu.Lock()
	keep := s.closed || s.opts.ReadOnly
	s.mu.Unlock()
	for _, r := range gone {
		r.t.close()
		if !keep {
			_ = s.fs.Remove(s.fs.PathJoin(s.dir, r.t.name))
		}
	}
}

// Close stops the merges (one in progress gives up, leaving the tables it
// read) and closes the set. Snapshots still open stay readable until they
// are closed.
func (s *Set) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	s.stop.Store(true)
	close(s.quit)
	<-s.done
	s.installMu.Lock()
	s.mu.Lock()
	gone := s.releaseLocked(s.cur)
	s.mu.Unlock()
	s.installMu.Unlock()
	for _, r := range gone {
		r.t.close()
	}
	return nil
}

// TableInfo describes one table of a set.
type TableInfo struct {
	File    string
	Tier    int
	Entries uint64
	Bytes   int64
}

// Snapshot is the set as it was when [Set.Snapshot] was called: later
// adds and merges do not change what it reads. Close it when done.
type Snapshot struct {
	s    *Set
	v    *version
	once sync.Once
}

// Snapshot returns the set as it is now. It panics on a closed set.
func (s *Set) Snapshot() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed && s.cur.refs == 0 {
		panic("tiered: Snapshot of a closed set")
	}
	s.cur.refs++
	return &Snapshot{s: s, v: s.cur}
}

// Close releases the snapshot; the tables only it kept are removed.
func (sn *Snapshot) Close() {
	sn.once.Do(func() {
		sn.s.mu.Lock()
		gone := sn.s.releaseLocked(sn.v)
		sn.s.mu.Unlock()
		sn.s.remove(gone)
	})
}

// Mark returns the mark recorded by the last Add the snapshot holds (nil
// before the first). The caller must not modify it.
func (sn *Snapshot) Mark() []byte { return sn.v.mark }

// Tables describes the snapshot's tables, newest first.
func (sn *Snapshot) Tables() []TableInfo {
	out := make([]TableInfo, len(sn.v.tables))
	for i, r := range sn.v.tables {
		out[i] = TableInfo{File: r.t.name, Tier: r.meta.tier, Entries: r.t.entries, Bytes: r.t.size}
	}
	return out
}

// Get returns the value of key, and whether the snapshot holds it.
func (sn *Snapshot) Get(key []byte) ([]byte, bool, error) {
	var it tableIter
	for _, r := range sn.v.tables {
		t := r.t
		if len(t.blocks) == 0 || bytes.Compare(key, t.first) < 0 || bytes.Compare(key, t.blocks[len(t.blocks)-1].last) > 0 {
			continue
		}
		it.t, it.err = t, nil
		if !it.seekGE(key) {
			if it.err != nil {
				return nil, false, it.err
			}
			continue
		}
		if bytes.Equal(it.key, key) {
			if it.tomb {
				return nil, false, nil
			}
			return slices.Clone(it.value), true, nil
		}
	}
	return nil, false, nil
}

// NewIter returns an iterator over the snapshot's keys in increasing
// order, each with its newest value, tombstones left out. Position it
// with First or SeekGE.
func (sn *Snapshot) NewIter() *Iter {
	it := &Iter{its: make([]*tableIter, len(sn.v.tables))}
	for i, r := range sn.v.tables {
		it.its[i] = &tableIter{t: r.t}
	}
	return it
}

// Iter iterates over the entries of a snapshot, merging its tables. Key
// and Value are valid until the next call that moves it.
type Iter struct {
	its       []*tableIter // newest first
	keepTombs bool         // merges keep tombstones
	cur       *tableIter   // the entry the iterator is at
	err       error
}

// First moves to the first entry.
func (it *Iter) First() bool {
	for _, ti := range it.its {
		ti.first()
	}
	return it.settle()
}

// SeekGE moves to the first entry whose key is at least key.
func (it *Iter) SeekGE(key []byte) bool {
	for _, ti := range it.its {
		ti.seekGE(key)
	}
	return it.settle()
}

// Next moves to the next entry.
func (it *Iter) Next() bool {
	if it.cur == nil {
		return false
	}
	it.advance()
	return it.settle()
}

// advance moves every table iterator at the current key past it.
func (it *Iter) advance() {
	key := it.cur.key
	var at []*tableIter
	for _, ti := range it.its {
		if ti.valid && bytes.Equal(ti.key, key) {
			at = append(at, ti)
		}
	}
	for _, ti := range at {
		ti.next()
	}
}

// settle finds the least key among the tables, the newest table's entry
// of it winning, and skips it when it is a tombstone.
func (it *Iter) settle() bool {
	for {
		it.cur = nil
		for _, ti := range it.its {
			if ti.err != nil {
				it.err = ti.err
				return false
			}
			if ti.valid && (it.cur == nil || bytes.Compare(ti.key, it.cur.key) < 0) {
				it.cur = ti
			}
		}
		if it.cur == nil || !it.cur.tomb || it.keepTombs {
			return it.cur != nil
		}
		it.advance()
	}
}

// Key returns the key of the current entry.
func (it *Iter) Key() []byte { return it.cur.key }

// Value returns the value of the current entry.
func (it *Iter) Value() []byte { return it.cur.value }

// tombstone reports whether the current entry is a tombstone (merges only).
func (it *Iter) tombstone() bool { return it.cur.tomb }

// Err returns the error that stopped the iteration, if any.
func (it *Iter) Err() error { return it.err }

// mergeLoop is the merger goroutine: it merges the oldest tables of the
// lowest full tier, one merge at a time, until no tier is full.
func (s *Set) mergeLoop() {
	defer close(s.done)
	for {
		select {
		case <-s.quit:
			return
		case <-s.wake:
		}
		for !s.stop.Load() {
			sn, inputs, tier, last := s.pick()
			if inputs == nil {
				break
			}
			err := s.merge(inputs, tier, last)
			sn.Close()
			signal(s.merged)
			if err != nil {
				if !s.stop.Load() {
					s.fail(err)
				}
				return
			}
		}
	}
}

// pick returns the tables to merge next (newest first) in a snapshot that
// keeps them open, their tier, and whether they are the oldest of the
// set; nil inputs when no tier is full.
func (s *Set) pick() (*Snapshot, []*tableRef, int, bool) {
	sn := s.Snapshot()
	tables := sn.v.tables
	counts := map[int]int{}
	for _, r := range tables {
		counts[r.meta.tier]++
	}
	// The full tier with the most tables, the lowest of those: under
	// adds that keep tier 0 full, the tiers above are merged too.
	tier := -1
	for t := 0; t <= maxTier; t++ {
		if counts[t] >= s.opts.MergeWidth && (tier < 0 || counts[t] > counts[tier]) {
			tier = t
		}
	}
	if tier >= 0 {
		// The oldest MergeWidth tables of the tier: tables are newest
		// first, and every table of a tier is older than those of the
		// tier below, so they follow one another in the list.
		var inputs []*tableRef
		end := 0
		for i := len(tables) - 1; i >= 0 && len(inputs) < s.opts.MergeWidth; i-- {
			if tables[i].meta.tier == tier {
				inputs = append(inputs, tables[i])
				if end == 0 {
					end = i + 1
				}
			}
		}
		slices.Reverse(inputs)
		return sn, inputs, tier, end == len(tables)
	}
	sn.Close()
	return nil, nil, 0, false
}

// errStopped is a merge given up because the set is closing.
var errStopped = errors.New("tiered: merge stopped: the set is closing")

// merge writes the entries of inputs (newest first) as one table of the
// next tier, and installs it in their place. Tombstones are dropped when
// the inputs are the oldest tables: no older value is left to hide.
func (s *Set) merge(inputs []*tableRef, tier int, oldest bool) error {
	s.mu.Lock()
	meta := tableMeta{num: s.nextNum, tier: tier + 1, seq: inputs[0].meta.seq}
	s.nextNum++
	s.mu.Unlock()
	it := &Iter{keepTombs: !oldest}
	for _, r := range inputs {
		it.its = append(it.its, &tableIter{t: r.t})
	}
	t, err := s.writeTable(meta.num, func(tw *tableWriter) error {
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			if n++; n%4096 == 0 && s.stop.Load() {
				return errStopped
			}
			if err := tw.add(it.Key(), it.Value(), it.tombstone()); err != nil {
				return err
			}
		}
		return it.Err()
	})
	if err != nil {
		return err
	}
	var merged *tableRef
	if t != nil { // nil when the entries were tombstones, all dropped
		merged = &tableRef{meta: meta, t: t}
	}
	s.installMu.Lock()
	defer s.installMu.Unlock()
	if err := s.check(); err != nil {
		if merged != nil {
			s.remove([]*tableRef{merged})
		}
		return err
	}
	s.mu.Lock()
	var tables []*tableRef
	placed := false
	for _, r := range s.cur.tables {
		if slices.Contains(inputs, r) {
			if !placed && merged != nil {
				tables = append(tables, merged)
			}
			placed = true
			continue
		}
		tables = append(tables, r)
	}
	mark := s.cur.mark
	s.mu.Unlock()
	// A manifest that failed to be replaced may still list the merged
	// table: its file stays, and the set fails (Open sorts it out).
	return s.install(tables, mark)
}

// String describes the set's tables by tier, for logs and tests.
func (sn *Snapshot) String() string {
	var b strings.Builder
	for i, r := range sn.v.tables {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(r.meta.tier))
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(r.t.entries, 10))
	}
	return b.String()
}

// Settle waits until no tier is full: every merge the set's tables call
// for is done. It returns the error that stopped the merges, if any.
func (s *Set) Settle() error {
	if s.opts.ReadOnly {
		return s.check() // no merges run
	}
	for {
		if err := s.check(); err != nil {
			return err
		}
		sn, inputs, _, _ := s.pick()
		if inputs == nil {
			return nil
		}
		sn.Close()
		signal(s.wake)
		time.Sleep(time.Millisecond)
	}
}

// Verify reads every entry of the snapshot's tables and checks them: each
// block against its checksum (again, for blocks read before), the entries
// of a table in strictly increasing key order, each block's last key and
// the table's entry count as its index and footer give them. It returns
// the first problem, a [*CorruptError], or nil.
func (sn *Snapshot) Verify() error {
	for _, r := range sn.v.tables {
		if err := r.t.verify(); err != nil {
			return err
		}
	}
	return nil
}

// Checkpoint makes dir (which must not exist) a copy of the set as the
// snapshot holds it, which [Open] opens: its tables hard-linked (they are
// never written again), or copied where linking fails (another
// filesystem), and its manifest, with its mark. Everything is synced
// before it returns. Adds and merges may go on meanwhile.
func (sn *Snapshot) Checkpoint(dir string) error {
	s := sn.s
	fs := s.fs
	if _, err := fs.Stat(dir); err == nil {
		return fmt.Errorf("tiered: checkpoint to %s: it exists", dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m := &manifest{mark: sn.v.mark}
	for _, r := range sn.v.tables {
		m.tables = append(m.tables, r.meta)
		m.nextNum = max(m.nextNum, r.meta.num+1)
		m.nextSeq = max(m.nextSeq, r.meta.seq+1)
		from, to := fs.PathJoin(s.dir, r.t.name), fs.PathJoin(dir, r.t.name)
		if fs.Link(from, to) == nil {
			continue
		}
		if err := copyTable(fs, r.t, to); err != nil {
			return fmt.Errorf("tiered: checkpoint to %s: %w", dir, err)
		}
	}
	if err := writeManifest(fs, dir, m); err != nil {
		return fmt.Errorf("tiered: checkpoint to %s: %w", dir, err)
	}
	return syncDir(fs, fs.PathDir(dir))
}

// copyTable copies t's file to path, synced.
func copyTable(fs vfs.FS, t *table, path string) error {
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, io.NewSectionReader(t.f, 0, t.size))
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// Last returns the greatest key in [lower, upper) that the snapshot holds,
// and its value (copies), as its newest table has it: the last entry of a
// range, such as the last of a prefix's. ok is false when the range holds
// none.
func (sn *Snapshot) Last(lower, upper []byte) (key, value []byte, ok bool, err error) {
	for {
		var best *tableIter
		for _, r := range sn.v.tables {
			t := r.t
			if len(t.blocks) == 0 || bytes.Compare(t.first, upper) >= 0 || bytes.Compare(t.blocks[len(t.blocks)-1].last, lower) < 0 {
				continue
			}
			ti := &tableIter{t: t}
			if !ti.lastBelow(upper) {
				if ti.err != nil {
					return nil, nil, false, ti.err
				}
				continue
			}
			// Of equal keys, the newest table's (the first seen) wins.
			if bytes.Compare(ti.key, lower) >= 0 && (best == nil || bytes.Compare(ti.key, best.key) > 0) {
				best = ti
			}
		}
		if best == nil {
			return nil, nil, false, nil
		}
		if !best.tomb {
			return slices.Clone(best.key), slices.Clone(best.value), true, nil
		}
		upper = slices.Clone(best.key) // deleted: the last entry is below it
	}
}
