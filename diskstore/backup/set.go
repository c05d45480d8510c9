package backup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairndb/cairn/diskstore"
)

// lockName names the lock file of a set: one backup at a time writes to
// it.
const lockName = ".lock"

// partialSuffix ends the name of a generation being written.
const partialSuffix = ".partial"

// Generation is one complete backup of a set.
type Generation struct {
	// Dir is the generation's directory.
	Dir string
	// Manifest is its BACKUP.json.
	Manifest *Manifest
}

// Set is a directory of backups of one store, open for a backup to be
// added: it is locked against other backups until Close.
type Set struct {
	dir    string
	lock   io.Closer
	gens   []Generation
	broken []string // what interrupted backups left
}

// OpenSet opens the backup set in dir, creating the directory if it does
// not exist, and locks it. It refuses a directory that holds anything but
// generations: a store, one generation of a set, or other files.
func OpenSet(dir string) (*Set, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("backup set: %w", err)
	}
	// Refuse what is not a set before writing the lock file into it.
	if err := (&Set{dir: dir}).scan(); err != nil {
		return nil, err
	}
	lock, err := lockFile(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("backup set %s: %w", dir, err)
	}
	s := &Set{dir: dir, lock: lock}
	if err := s.scan(); err != nil {
		return nil, errors.Join(err, lock.Close())
	}
	return s, nil
}

// scan finds the set's generations, oldest first, and what interrupted
// backups left; it refuses anything else.
func (s *Set) scan() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("backup set: %w", err)
	}
	var other []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == lockName:
		case name == diskstore.BackupManifestName:
			return fmt.Errorf("%s is one generation of a backup set, not a set: name the set (%s)", s.dir, filepath.Dir(s.dir))
		case e.IsDir() && strings.HasSuffix(name, partialSuffix) && generationNumber(strings.TrimSuffix(name, partialSuffix)) > 0:
			s.broken = append(s.broken, name)
		case e.IsDir() && generationNumber(name) > 0:
			m, err := readManifest(filepath.Join(s.dir, name))
			if err != nil {
				return fmt.Errorf("backup set %s: generation %s: %w", s.dir, name, err)
			}
			s.gens = append(s.gens, Generation{Dir: filepath.Join(s.dir, name), Manifest: m})
		default:
			other = append(other, name)
		}
	}
	if len(other) > 0 {
		if len(other) > 3 {
			other = append(other[:3], "…")
		}
		return fmt.Errorf("%s holds files that are not backups (%s): a backup goes into a new or empty directory, or into a backup set", s.dir, strings.Join(other, ", "))
	}
	slices.SortFunc(s.gens, func(a, b Generation) int { return a.Manifest.Generation - b.Manifest.Generation })
	if n := len(s.gens); n > 0 {
		if store := s.gens[n-1].Manifest.Store; slices.ContainsFunc(s.gens, func(g Generation) bool { return g.Manifest.Store != store }) {
			return fmt.Errorf("backup set %s holds backups of several stores", s.dir)
		}
	}
	return nil
}

// generationNumber returns the number a generation's directory name
// starts with, 0 when name is not a generation's.
func generationNumber(name string) int {
	num, stamp, ok := strings.Cut(name, "-")
	if !ok || len(num) != 6 {
		return 0
	}
	if _, err := time.Parse(stampLayout, stamp); err != nil {
		return 0
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

const stampLayout = "20060102T150405Z"

func generationName(n int, created time.Time) string {
	return fmt.Sprintf("%06d-%s", n, created.UTC().Format(stampLayout))
}

// Dir returns the set's directory.
func (s *Set) Dir() string { return s.dir }

// Generations returns the set's complete generations, oldest first.
func (s *Set) Generations() []Generation { return slices.Clone(s.gens) }

// Latest returns the newest generation, and false when the set has none.
func (s *Set) Latest() (Generation, bool) {
	if len(s.gens) == 0 {
		return Generation{}, false
	}
	return s.gens[len(s.gens)-1], true
}

// PreviousManifest returns the newest generation's manifest as it is
// stored, for a server to leave out what the set holds already (see
// [Send]); nil when the set is empty.
func (s *Set) PreviousManifest() ([]byte, error) {
	g, ok := s.Latest()
	if !ok {
		return nil, nil
	}
	return os.ReadFile(filepath.Join(g.Dir, diskstore.BackupManifestName))
}

// Close unlocks the set.
func (s *Set) Close() error { return s.lock.Close() }

// removeBroken removes what interrupted backups left.
func (s *Set) removeBroken() error {
	for _, name := range s.broken {
		if err := os.RemoveAll(filepath.Join(s.dir, name)); err != nil {
			return fmt.Errorf("backup set: removing the interrupted backup %s: %w", name, err)
		}
	}
	s.broken = nil
	return nil
}

// prune removes the oldest generations but keep; keep <= 0 keeps them all.
// Generations share files by hard links, so removing one frees only what
// no other holds.
func (s *Set) prune(keep int) ([]string, error) {
	var removed []string
	for keep > 0 && len(s.gens) > keep {
		g := s.gens[0]
		if err := os.RemoveAll(g.Dir); err != nil {
			return removed, fmt.Errorf("backup set: removing the old generation %s: %w", g.Dir, err)
		}
		removed = append(removed, g.Dir)
		s.gens = s.gens[1:]
	}
	return removed, syncDir(s.dir)
}

// Find returns the generation that path names: a generation's directory,
// or a set, whose newest generation it returns.
func Find(path string) (Generation, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Generation{}, fmt.Errorf("backup %s: %w", path, err)
	}
	if !fi.IsDir() {
		return Generation{}, fmt.Errorf("backup %s is a file, not a backup's directory", path)
	}
	if _, err := os.Stat(filepath.Join(path, diskstore.BackupManifestName)); err == nil {
		m, err := readManifest(path)
		if err != nil {
			return Generation{}, err
		}
		return Generation{Dir: path, Manifest: m}, nil
	}
	s := &Set{dir: path}
	if err := s.scan(); err != nil {
		return Generation{}, err
	}
	g, ok := s.Latest()
	if !ok {
		return Generation{}, fmt.Errorf("%s holds no backup: neither a backup set (cairn backup %s) with a complete generation, nor one generation of one", path, path)
	}
	return g, nil
}

// List returns the complete generations of the set in dir, oldest first.
func List(dir string) ([]Generation, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("backup set: %w", err)
	}
	s := &Set{dir: dir}
	if err := s.scan(); err != nil {
		return nil, err
	}
	return s.gens, nil
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
