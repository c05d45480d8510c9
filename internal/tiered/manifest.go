package tiered

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The manifest names the set's tables and holds its mark:
//
//	manifest := magic "cTM1" [4] ‖ uvarint mark length ‖ mark
//	            ‖ uvarint next file number ‖ uvarint next sequence
//	            ‖ uvarint tables ‖ (uvarint number ‖ uvarint tier
//	            ‖ uvarint sequence)* ‖ crc32c [4] of all before
//
// It is replaced whole: written to MANIFEST.tmp, synced, renamed over
// MANIFEST, and the directory synced. A crash leaves the old manifest or
// the new one; Open removes every table file the manifest does not name.

const (
	manifestName  = "MANIFEST"
	manifestTemp  = "MANIFEST.tmp"
	manifestMagic = "cTM1"
)

// tableMeta is a manifest's entry for one table.
type tableMeta struct {
	num  uint64 // the file is tableName(num)
	tier int
	seq  uint64 // a newer table has a greater one
}

type manifest struct {
	mark    []byte
	nextNum uint64
	nextSeq uint64
	tables  []tableMeta // newest first
}

func tableName(num uint64) string { return fmt.Sprintf("%016x.tbl", num) }

func (m *manifest) encode() []byte {
	b := []byte(manifestMagic)
	b = binary.AppendUvarint(b, uint64(len(m.mark)))
	b = append(b, m.mark...)
	b = binary.AppendUvarint(b, m.nextNum)
	b = binary.AppendUvarint(b, m.nextSeq)
	b = binary.AppendUvarint(b, uint64(len(m.tables)))
	for _, t := range m.tables {
		b = binary.AppendUvarint(b, t.num)
		b = binary.AppendUvarint(b, uint64(t.tier))
		b = binary.AppendUvarint(b, t.seq)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeManifest(b []byte) (*manifest, error) {
	corrupt := func(reason string) error { return &CorruptError{File: manifestName, Reason: reason} }
	if len(b) < len(manifestMagic)+4 || string(b[:len(manifestMagic)]) != manifestMagic {
		return nil, corrupt("not a manifest")
	}
	n := len(b) - 4
	if crc32.Checksum(b[:n], castagnoli) != binary.LittleEndian.Uint32(b[n:]) {
		return nil, corrupt("fails its checksum")
	}
	r := b[len(manifestMagic):n]
	bad := false
	num := func() uint64 {
		v, k := binary.Uvarint(r)
		if k <= 0 {
			bad = true
			return 0
		}
		r = r[k:]
		return v
	}
	m := &manifest{}
	ml := num()
	if bad || ml > uint64(len(r)) {
		return nil, corrupt("its mark is cut short")
	}
	m.mark = append([]byte{}, r[:ml]...)
	r = r[ml:]
	m.nextNum, m.nextSeq = num(), num()
	count := num()
	if bad || count > uint64(len(r)) {
		return nil, corrupt("its list of tables is cut short")
	}
	for range count {
		t := tableMeta{num: num(), tier: int(num()), seq: num()}
		if bad || t.num >= m.nextNum || t.seq >= m.nextSeq || t.tier > maxTier {
			return nil, corrupt("a table's entry is cut short or out of range")
		}
		if k := len(m.tables); k > 0 && m.tables[k-1].seq <= t.seq {
			return nil, corrupt("its tables are out of order")
		}
		m.tables = append(m.tables, t)
	}
	if bad || len(r) != 0 {
		return nil, corrupt("it has bytes after its list of tables")
	}
	return m, nil
}

// maxTier bounds a table's tier: a set of eight files a tier would need
// more tables than there are numbers.
const maxTier = 64

// readManifest reads the manifest in dir; a directory without one holds
// an empty set.
func readManifest(fs vfs.FS, dir string) (*manifest, error) {
	f, err := fs.Open(fs.PathJoin(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return &manifest{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("tiered: read %s: %w", manifestName, err)
	}
	return decodeManifest(b)
}

// writeManifest replaces the manifest in dir by m, durably.
func writeManifest(fs vfs.FS, dir string, m *manifest) error {
	tmp := fs.PathJoin(dir, manifestTemp)
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if _, err := f.Write(m.encode()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fs.Rename(tmp, fs.PathJoin(dir, manifestName)); err != nil {
		return err
	}
	return syncDir(fs, dir)
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
