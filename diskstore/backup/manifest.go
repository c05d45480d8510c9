package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairndb/cairn/diskstore"
)

// ManifestFormat is the version of the manifest this package writes and
// reads.
const ManifestFormat = 1

// Manifest describes one generation; it is its directory's BACKUP.json.
type Manifest struct {
	Format int `json:"format"`
	// Store is the identity of the store backed up.
	Store string `json:"store"`
	// Generation numbers the set's generations from 1.
	Generation int `json:"generation"`
	// Created is when the backup began.
	Created time.Time `json:"created"`
	// Source names the store: its directory, or its server's URL without
	// the password.
	Source string `json:"source,omitempty"`
	// Head is the position after the last event the backup holds: every
	// event at a lower position acknowledged before the backup began.
	Head uint64 `json:"head"`
	// Compacted says the store's log was compacted: the index cannot be
	// rebuilt from this backup's log.
	Compacted bool `json:"compacted,omitempty"`
	// Files are the generation's files, relative to its directory.
	Files []File `json:"files"`
}

// File is one file of a generation.
type File struct {
	// Name is the path in the generation, with slashes.
	Name string `json:"name"`
	// Size is the file's length.
	Size int64 `json:"size"`
	// Sealed files never change in the store: a later backup may reuse
	// this copy.
	Sealed bool `json:"sealed,omitempty"`
	// Reused says the file was linked from the generation before, not
	// copied from the store.
	Reused bool `json:"reused,omitempty"`
	// Prefix is the number of first bytes copied from the generation
	// before rather than from the store: the part of the log's last
	// segment that the generation before holds already.
	Prefix int64 `json:"prefix,omitempty"`
}

// Bytes returns the total size of the files.
func (m *Manifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

func (m *Manifest) file(name string) (File, bool) {
	for _, f := range m.Files {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}

// Marshal returns the manifest as BACKUP.json holds it.
func (m *Manifest) Marshal() ([]byte, error) { return json.MarshalIndent(m, "", "  ") }

// ParseManifest reads a manifest, checking that every file name stays
// within its generation.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("backup manifest: %w", err)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("backup manifest: format %d; this build reads format %d", m.Format, ManifestFormat)
	}
	if m.Store == "" {
		return nil, errors.New("backup manifest: no store identity")
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if !validName(f.Name) {
			return nil, fmt.Errorf("backup manifest: file name %q is not a path inside the backup", f.Name)
		}
		if f.Size < 0 || f.Prefix < 0 || f.Prefix > f.Size || (f.Reused && f.Prefix > 0) {
			return nil, fmt.Errorf("backup manifest: file %s: size %d, prefix %d", f.Name, f.Size, f.Prefix)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("backup manifest: file %s is listed twice", f.Name)
		}
		seen[f.Name] = true
	}
	return &m, nil
}

// validName reports whether name is a file of a store's directory: a name
// in it, or in its log directory.
func validName(name string) bool {
	if name == "" || name != path.Clean(name) || strings.Contains(name, `\`) || name == diskstore.BackupManifestName {
		return false
	}
	dir, base := path.Split(name)
	return (dir == "" || dir == "log/") && base != "" && base != "." && base != ".." && !strings.HasPrefix(base, ".")
}

// readManifest reads the manifest of the generation in dir.
func readManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, diskstore.BackupManifestName))
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return m, nil
}

// plan is what a backup does with one file of the store.
type plan struct {
	// reuse links the copy that the generation before holds.
	reuse bool
	// prefix copies the first prefix bytes from the generation before,
	// the rest from the store.
	prefix int64
}

// plans returns, for each file of cur, how much of it the generation
// before (prev, a backup of the store store) holds already. A sealed file
// of the same name and size in both is reused whole: sealed files never
// change. Of the log's last segment, which grows, the bytes prev copied
// are copied from prev: the log's bytes before a frame that was durable
// are never written again. Compaction may punch holes in either, and the
// earlier copy then holds more than the store's index needs, never less.
func plans(prev *Manifest, store string, cur []diskstore.BackupFile) []plan {
	out := make([]plan, len(cur))
	if prev == nil || prev.Store != store {
		return out
	}
	for i, f := range cur {
		p, ok := prev.file(f.Name)
		switch {
		case !ok || p.Size == 0:
		case f.Sealed && p.Sealed && p.Size == f.Size:
			out[i].reuse = true
		case strings.HasPrefix(f.Name, "log/") && strings.HasSuffix(f.Name, ".log") && p.Size <= f.Size:
			out[i].prefix = p.Size
		}
	}
	return out
}
