package tiered_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cairndb/cairn/internal/tiered"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// model is what a set must hold: each key's newest value.
type model map[string]string

// batch makes a sorted batch of n entries over a key space of keys keys,
// a fifth of them tombstones, and applies it to m.
func batch(rng *rand.Rand, m model, n, keys int, tag string) []tiered.Entry {
	seen := map[string]bool{}
	var out []tiered.Entry
	for range n {
		k := fmt.Sprintf("k%06d", rng.IntN(keys))
		if seen[k] {
			continue
		}
		seen[k] = true
		e := tiered.Entry{Key: []byte(k)}
		if rng.IntN(5) == 0 {
			e.Delete = true
			delete(m, k)
		} else {
			// Values of every size, some longer than a block.
			v := tag + strings.Repeat("v", rng.IntN(3)*rng.IntN(200))
			e.Value = []byte(v)
			m[k] = v
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b tiered.Entry) int { return bytes.Compare(a.Key, b.Key) })
	return out
}

// checkSnapshot checks that sn holds exactly m, by Get of every key it
// might hold and by iterating from the start and from random keys.
func checkSnapshot(t *testing.T, rng *rand.Rand, sn *tiered.Snapshot, m model, keys int) {
	t.Helper()
	for i := range keys {
		k := fmt.Sprintf("k%06d", i)
		v, ok, err := sn.Get([]byte(k))
		if err != nil {
			t.Fatalf("Get %s: %v", k, err)
		}
		want, in := m[k]
		if ok != in || string(v) != want {
			t.Fatalf("Get %s = %q, %v; want %q, %v (tables %s)", k, v, ok, want, in, sn)
		}
	}
	want := slices.Sorted(maps.Keys(m))
	it := sn.NewIter()
	var got []string
	for ok := it.First(); ok; ok = it.Next() {
		if string(it.Value()) != m[string(it.Key())] {
			t.Fatalf("iterating: %s = %q, want %q", it.Key(), it.Value(), m[string(it.Key())])
		}
		got = append(got, string(it.Key()))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("iterating: %d keys, want %d (tables %s)", len(got), len(want), sn)
	}
	for range 20 {
		lo, hi := rng.IntN(keys+1), rng.IntN(keys+1)
		if lo > hi {
			lo, hi = hi, lo
		}
		if rng.IntN(4) == 0 {
			lo = max(0, hi-rng.IntN(3)) // narrow ranges: few keys, or none
		}
		lower, upper := fmt.Sprintf("k%06d", lo), fmt.Sprintf("k%06d", hi)
		j, _ := slices.BinarySearch(want, upper)
		wantOK := j > 0 && want[j-1] >= lower
		k, v, ok, err := sn.Last([]byte(lower), []byte(upper))
		if err != nil {
			t.Fatal(err)
		}
		if ok != wantOK || ok && (string(k) != want[j-1] || string(v) != m[want[j-1]]) {
			t.Fatalf("Last(%s, %s) = %s, %q, %v; want %v (tables %s)", lower, upper, k, v, ok, wantOK, sn)
		}
	}
	for range 5 {
		from := fmt.Sprintf("k%06d", rng.IntN(keys+1))
		i, _ := slices.BinarySearch(want, from)
		var got []string
		for ok := it.SeekGE([]byte(from)); ok && len(got) < 20; ok = it.Next() {
			got = append(got, string(it.Key()))
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		if w := want[i:min(i+20, len(want))]; !slices.Equal(got, w) {
			t.Fatalf("SeekGE(%s): %v, want %v", from, got, w)
		}
	}
}

// A set holds the newest value of every key added and hides the deleted
// ones, through merges of every tier, reopening, and snapshots that keep
// reading the set as it was when they were taken.
func TestSetAgainstModel(t *testing.T) {
	for _, width := range []int{2, 3, 8} {
		t.Run(fmt.Sprint("width=", width), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(width), 1))
			// Tables in memory are read with ReadAt; on disk, through
			// a mapping of their files.
			var fs vfs.FS = vfs.NewMem()
			dir := "set"
			if width == 3 {
				fs, dir = vfs.Default, filepath.Join(t.TempDir(), "set")
			}
			opts := tiered.Options{FS: fs, MergeWidth: width, BlockBytes: 256}
			s, err := tiered.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			m := model{}
			const keys = 2000
			type held struct {
				sn *tiered.Snapshot
				m  model
			}
			var snaps []held
			for round := range 120 {
				mark := []byte(fmt.Sprint(round))
				if err := s.Add(mark, slices.Values(batch(rng, m, 1+rng.IntN(150), keys, fmt.Sprint(round, ":")))); err != nil {
					t.Fatal(err)
				}
				switch rng.IntN(10) {
				case 0:
					snaps = append(snaps, held{s.Snapshot(), maps.Clone(m)})
				case 1:
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					if s, err = tiered.Open(dir, opts); err != nil {
						t.Fatal(err)
					}
				case 2:
					if err := s.Settle(); err != nil {
						t.Fatal(err)
					}
				}
				if round%10 == 9 {
					sn := s.Snapshot()
					if string(sn.Mark()) != string(mark) {
						t.Fatalf("mark %q, want %q", sn.Mark(), mark)
					}
					checkSnapshot(t, rng, sn, m, keys)
					sn.Close()
				}
			}
			if err := s.Settle(); err != nil {
				t.Fatal(err)
			}
			sn := s.Snapshot()
			tables := sn.Tables()
			tiers := map[int]int{}
			for _, ti := range tables {
				tiers[ti.Tier]++
			}
			for tier, n := range tiers {
				if n >= width {
					t.Errorf("tier %d holds %d tables after Settle, merged at %d", tier, n, width)
				}
			}
			if len(tiers) < 2 {
				t.Errorf("tables %s: no merge happened", sn)
			}
			checkSnapshot(t, rng, sn, m, keys)
			if err := sn.Verify(); err != nil {
				t.Fatal(err)
			}
			sn.Close()
			for _, h := range snaps {
				checkSnapshot(t, rng, h.sn, h.m, keys)
				h.sn.Close()
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// Every table file left is one the manifest lists.
			names, err := fs.List(dir)
			if err != nil {
				t.Fatal(err)
			}
			files := 0
			for _, n := range names {
				if strings.HasSuffix(n, ".tbl") {
					files++
				}
			}
			if files != len(tables) {
				t.Errorf("%d table files in the directory, %d tables in the set", files, len(tables))
			}
		})
	}
}

// Readers, adds and merges run at once (run with -race).
func TestSetConcurrentReaders(t *testing.T) {
	s, err := tiered.Open(t.TempDir(), tiered.Options{MergeWidth: 2, BlockBytes: 512})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const adds, per = 64, 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 2))
			for {
				select {
				case <-stop:
					return
				default:
				}
				sn := s.Snapshot()
				// Keys are written once each, with their add's number:
				// every key the snapshot holds reads back whole.
				it := sn.NewIter()
				n := 0
				for ok := it.SeekGE(fmt.Appendf(nil, "%08d", rng.IntN(adds*per))); ok && n < 100; ok = it.Next() {
					if !bytes.HasPrefix(it.Value(), it.Key()) {
						t.Errorf("key %s has value %s", it.Key(), it.Value())
					}
					n++
				}
				if err := it.Err(); err != nil {
					t.Error(err)
				}
				sn.Close()
			}
		})
	}
	for a := range adds {
		var es []tiered.Entry
		for i := range per {
			k := fmt.Appendf(nil, "%08d", i*adds+a)
			es = append(es, tiered.Entry{Key: k, Value: append(k, "-value"...)})
		}
		if err := s.Add(nil, slices.Values(es)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if err := s.Settle(); err != nil {
		t.Fatal(err)
	}
	sn := s.Snapshot()
	defer sn.Close()
	n := 0
	it := sn.NewIter()
	for ok := it.First(); ok; ok = it.Next() {
		if want := fmt.Sprintf("%08d", n); string(it.Key()) != want {
			t.Fatalf("key %d is %s, want %s", n, it.Key(), want)
		}
		n++
	}
	if n != adds*per {
		t.Fatalf("%d keys, want %d", n, adds*per)
	}
}

// Entries out of order, or a key twice, are refused with an error that
// says which, and nothing is written: not a table, not the mark.
func TestAddRefusesEntriesOutOfOrder(t *testing.T) {
	fs := vfs.NewMem()
	s, err := tiered.Open("set", tiered.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Add([]byte("m1"), slices.Values([]tiered.Entry{{Key: []byte("a")}})); err != nil {
		t.Fatal(err)
	}
	for _, keys := range [][]string{{"b", "a"}, {"a", "c", "c"}} {
		var es []tiered.Entry
		for _, k := range keys {
			es = append(es, tiered.Entry{Key: []byte(k), Value: []byte("x")})
		}
		err := s.Add([]byte("m2"), slices.Values(es))
		var oe *tiered.OrderError
		if !errors.As(err, &oe) || !strings.Contains(err.Error(), "increasing key order") {
			t.Fatalf("Add %v: %v, want an error about the order", keys, err)
		}
	}
	sn := s.Snapshot()
	defer sn.Close()
	if string(sn.Mark()) != "m1" || len(sn.Tables()) != 1 {
		t.Fatalf("after refused adds: mark %q, %d tables; want m1, 1", sn.Mark(), len(sn.Tables()))
	}
	if err := s.Err(); err != nil {
		t.Fatalf("a refused add failed the set: %v", err)
	}
}

// Damage to a table or to the manifest is reported with an error naming
// the file and matching ErrCorrupt; it is never read as entries.
func TestDamageIsReported(t *testing.T) {
	for _, onDisk := range []bool{false, true} {
		t.Run(map[bool]string{false: "in memory", true: "on disk, mapped"}[onDisk], func(t *testing.T) {
			damage(t, onDisk)
		})
	}
}

func damage(t *testing.T, onDisk bool) {
	var dir string
	newFS := func(t *testing.T) vfs.FS {
		if onDisk {
			dir = filepath.Join(t.TempDir(), "set")
			return vfs.Default
		}
		dir = "set"
		return vfs.NewMem()
	}
	fill := func(t *testing.T, fs vfs.FS) {
		s, err := tiered.Open(dir, tiered.Options{FS: fs, BlockBytes: 64})
		if err != nil {
			t.Fatal(err)
		}
		var es []tiered.Entry
		for i := range 100 {
			es = append(es, tiered.Entry{Key: fmt.Appendf(nil, "k%03d", i), Value: []byte("value")})
		}
		if err := s.Add([]byte("mark"), slices.Values(es)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	flip := func(t *testing.T, fs vfs.FS, name string, at func(size int64) int64) {
		f, err := fs.OpenReadWrite(fs.PathJoin(dir, name), vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		off := at(st.Size())
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, off); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0x40
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	wantCorrupt := func(t *testing.T, err error, file string) {
		t.Helper()
		var ce *tiered.CorruptError
		if !errors.Is(err, tiered.ErrCorrupt) || !errors.As(err, &ce) || ce.File != file {
			t.Fatalf("got %v, want damage reported in %s", err, file)
		}
	}
	table := "0000000000000000.tbl"
	t.Run("a block", func(t *testing.T) {
		fs := newFS(t)
		fill(t, fs)
		flip(t, fs, table, func(int64) int64 { return 70 }) // the second block
		s, err := tiered.Open(dir, tiered.Options{FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sn := s.Snapshot()
		defer sn.Close()
		if v, ok, err := sn.Get([]byte("k000")); err != nil || !ok || string(v) != "value" {
			t.Fatalf("an intact block: %q, %v, %v", v, ok, err)
		}
		_, _, err = sn.Get([]byte("k008"))
		wantCorrupt(t, err, table)
		it := sn.NewIter()
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		if n != 6 {
			t.Fatalf("iterated over %d entries of a table damaged after its first block of 6", n)
		}
		wantCorrupt(t, it.Err(), table)
		wantCorrupt(t, sn.Verify(), table)
	})
	t.Run("the index", func(t *testing.T) {
		fs := newFS(t)
		fill(t, fs)
		flip(t, fs, table, func(size int64) int64 { return size - 40 })
		_, err := tiered.Open(dir, tiered.Options{FS: fs})
		wantCorrupt(t, err, table)
	})
	t.Run("the manifest", func(t *testing.T) {
		fs := newFS(t)
		fill(t, fs)
		flip(t, fs, "MANIFEST", func(size int64) int64 { return size / 2 })
		_, err := tiered.Open(dir, tiered.Options{FS: fs})
		wantCorrupt(t, err, "MANIFEST")
	})
	t.Run("a missing table", func(t *testing.T) {
		fs := newFS(t)
		fill(t, fs)
		if err := fs.Remove(fs.PathJoin(dir, table)); err != nil {
			t.Fatal(err)
		}
		_, err := tiered.Open(dir, tiered.Options{FS: fs})
		wantCorrupt(t, err, "MANIFEST")
		if !strings.Contains(err.Error(), table) {
			t.Fatalf("%v: does not name the missing table", err)
		}
	})
}

// noLinks is a filesystem on which hard links fail, as across devices.
type noLinks struct{ vfs.FS }

func (noLinks) Link(oldname, newname string) error {
	return errors.New("links across devices are not supported")
}

// A checkpoint taken while adds and merges go on opens as the set the
// snapshot held, mark included, and stays so once the set has merged
// away and removed the tables it was taken from: linked, or copied where
// links fail.
func TestCheckpoint(t *testing.T) {
	for _, name := range []string{"linked", "copied"} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			var fs vfs.FS = vfs.Default
			if name == "copied" {
				fs = noLinks{vfs.Default}
			}
			opts := tiered.Options{FS: fs, MergeWidth: 2, BlockBytes: 256}
			s, err := tiered.Open(filepath.Join(root, "set"), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			rng := rand.New(rand.NewPCG(7, 7))
			m := model{}
			const keys = 1000
			add := func(round int) {
				if err := s.Add(fmt.Appendf(nil, "%d", round), slices.Values(batch(rng, m, 1+rng.IntN(100), keys, fmt.Sprint(round, ":")))); err != nil {
					t.Fatal(err)
				}
			}
			for round := range 20 {
				add(round)
			}
			sn := s.Snapshot()
			held := maps.Clone(m)
			for round := 20; round < 60; round++ {
				add(round)
			}
			copyDir := filepath.Join(root, "copy")
			if err := sn.Checkpoint(copyDir); err != nil {
				t.Fatal(err)
			}
			if err := sn.Checkpoint(copyDir); err == nil {
				t.Fatal("a checkpoint over an existing directory was taken")
			}
			sn.Close()
			for round := 60; round < 80; round++ {
				add(round)
			}
			if err := s.Settle(); err != nil {
				t.Fatal(err)
			}
			c, err := tiered.Open(copyDir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			csn := c.Snapshot()
			defer csn.Close()
			if string(csn.Mark()) != "19" {
				t.Fatalf("the checkpoint's mark is %q, want 19", csn.Mark())
			}
			checkSnapshot(t, rng, csn, held, keys)
			if err := csn.Verify(); err != nil {
				t.Fatal(err)
			}
			// The set goes on as it was.
			now := s.Snapshot()
			defer now.Close()
			checkSnapshot(t, rng, now, m, keys)
		})
	}
}

// Adds faster than the set merges (each one synced, back to back) wait
// for the merges: no tier holds many more tables than MergeWidth calls
// for, so that lookups read few.
func TestAddsWaitForMerges(t *testing.T) {
	const width = 2
	s, err := tiered.Open(t.TempDir(), tiered.Options{MergeWidth: width, BlockBytes: 128})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	most := 0
	for i := 1; i <= 300; i++ {
		if err := s.Add(nil, slices.Values(addEntries(i))); err != nil {
			t.Fatal(err)
		}
		sn := s.Snapshot()
		tiers := map[int]int{}
		for _, ti := range sn.Tables() {
			tiers[ti.Tier]++
		}
		for tier, n := range tiers {
			most = max(most, n)
			if n > 4*width+1 {
				t.Fatalf("after add %d, tier %d holds %d tables (%s)", i, tier, n, sn)
			}
		}
		sn.Close()
	}
	t.Logf("at most %d tables in a tier", most)
}

// A set opened read-only reads as it was written, changes nothing in its
// directory (not even a file a crash left), merges nothing and refuses
// adds; a directory that does not exist is refused.
func TestReadOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "set")
	// Written without merges: seven tables of tier 0.
	s, err := tiered.Open(dir, tiered.Options{MergeWidth: 100, BlockBytes: 128})
	if err != nil {
		t.Fatal(err)
	}
	m := model{}
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range 7 {
		if err := s.Add([]byte("m"), slices.Values(batch(rng, m, 50, 500, fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A table file a crash left behind.
	left := filepath.Join(dir, "00000000000000ff.tbl")
	if err := os.WriteFile(left, []byte("half a table"), 0o644); err != nil {
		t.Fatal(err)
	}
	listing := func() []string {
		var out []string
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(e.Name(), info.Size(), info.ModTime().UnixNano()))
		}
		return out
	}
	before := listing()

	// Opened read-only with a width at which tier 0 is full.
	r, err := tiered.Open(dir, tiered.Options{MergeWidth: 2, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(nil, slices.Values([]tiered.Entry{{Key: []byte("k")}})); !errors.Is(err, tiered.ErrReadOnly) {
		t.Fatalf("Add on a read-only set: %v", err)
	}
	if err := r.Settle(); err != nil {
		t.Fatal(err)
	}
	sn := r.Snapshot()
	checkSnapshot(t, rng, sn, m, 500)
	sn.Close()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if after := listing(); !slices.Equal(before, after) {
		t.Fatalf("a read-only open changed the directory:\nbefore %v\nafter  %v", before, after)
	}
	if _, err := tiered.Open(filepath.Join(t.TempDir(), "none"), tiered.Options{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read-only open of a missing directory: %v", err)
	}
}
