package tiered

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"
	"sync/atomic"

	"github.com/cairndb/cairn/internal/mmap"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// A table is one immutable file of entries in key order:
//
//	table  := block* index footer
//	block  := entry* crc32c [4]          (of the block's entries)
//	entry  := uvarint key length ‖ uvarint (value length << 1 | tombstone)
//	          ‖ key ‖ value
//	index  := uvarint first key length ‖ first key of the table
//	          ‖ (uvarint last key length ‖ last key of a block
//	             ‖ uvarint offset ‖ uvarint length of the block)*
//	footer := index offset [8] ‖ index length [8] ‖ entries [8]
//	          ‖ crc32c of the index [4] ‖ magic "cTT1" [4]
//
// Integers in the footer are little-endian. A reader keeps the index in
// memory and reads one block per lookup, checking its CRC-32C.

const (
	footerLen  = 32
	tableMagic = "cTT1"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// tableWriter writes a table: entries in strictly increasing key order.
type tableWriter struct {
	f        vfs.File
	w        *bufio.Writer
	off      int64
	target   int
	block    []byte
	index    []byte // the block handles
	first    []byte
	last     []byte
	entries  uint64
	haveLast bool
}

func newTableWriter(f vfs.File, blockBytes int) *tableWriter {
	return &tableWriter{f: f, w: bufio.NewWriterSize(f, 256<<10), target: blockBytes, block: make([]byte, 0, blockBytes+blockBytes/4)}
}

// add appends an entry; its key must sort after the last one added.
func (tw *tableWriter) add(key, value []byte, tombstone bool) error {
	if tw.haveLast && bytes.Compare(key, tw.last) <= 0 {
		return &OrderError{Index: int(tw.entries), Key: bytes.Clone(key), Last: bytes.Clone(tw.last)}
	}
	if !tw.haveLast {
		tw.first = append(tw.first[:0], key...)
	}
	tw.last = append(tw.last[:0], key...)
	tw.haveLast = true
	vl := uint64(len(value)) << 1
	if tombstone {
		vl |= 1
	}
	tw.block = binary.AppendUvarint(tw.block, uint64(len(key)))
	tw.block = binary.AppendUvarint(tw.block, vl)
	tw.block = append(tw.block, key...)
	tw.block = append(tw.block, value...)
	tw.entries++
	if len(tw.block) >= tw.target {
		return tw.flushBlock()
	}
	return nil
}

func (tw *tableWriter) flushBlock() error {
	if len(tw.block) == 0 {
		return nil
	}
	tw.block = binary.LittleEndian.AppendUint32(tw.block, crc32.Checksum(tw.block, castagnoli))
	tw.index = binary.AppendUvarint(tw.index, uint64(len(tw.last)))
	tw.index = append(tw.index, tw.last...)
	tw.index = binary.AppendUvarint(tw.index, uint64(tw.off))
	tw.index = binary.AppendUvarint(tw.index, uint64(len(tw.block)))
	if _, err := tw.w.Write(tw.block); err != nil {
		return err
	}
	tw.off += int64(len(tw.block))
	tw.block = tw.block[:0]
	return nil
}

// finish writes the last block, the index and the footer, and syncs the
// file. It does not close it.
func (tw *tableWriter) finish() error {
	if err := tw.flushBlock(); err != nil {
		return err
	}
	idx := binary.AppendUvarint(nil, uint64(len(tw.first)))
	idx = append(idx, tw.first...)
	idx = append(idx, tw.index...)
	var foot [footerLen]byte
	binary.LittleEndian.PutUint64(foot[0:], uint64(tw.off))
	binary.LittleEndian.PutUint64(foot[8:], uint64(len(idx)))
	binary.LittleEndian.PutUint64(foot[16:], tw.entries)
	binary.LittleEndian.PutUint32(foot[24:], crc32.Checksum(idx, castagnoli))
	copy(foot[28:], tableMagic)
	if _, err := tw.w.Write(idx); err != nil {
		return err
	}
	if _, err := tw.w.Write(foot[:]); err != nil {
		return err
	}
	if err := tw.w.Flush(); err != nil {
		return err
	}
	return tw.f.Sync()
}

// blockHandle is where a block is, and the last key it holds.
type blockHandle struct {
	last     []byte
	off, len int64
}

// table is an open table.
type table struct {
	f       vfs.File
	name    string
	first   []byte
	blocks  []blockHandle
	entries uint64
	size    int64
	// data maps the file, when the filesystem allows (nil otherwise):
	// a block is read from it without a system call, and its checksum
	// checked once (verified, a bit a block).
	data     []byte
	verified []atomic.Uint64
}

// close unmaps and closes the table's file. No reader may use it after.
func (t *table) close() {
	mmap.Unmap(t.data)
	t.data = nil
	t.f.Close()
}

// openTable reads the footer and the index of the table in f, of size
// bytes, and checks them.
func openTable(f vfs.File, name string, size int64) (*table, error) {
	corrupt := func(format string, args ...any) error {
		return &CorruptError{File: name, Reason: fmt.Sprintf(format, args...)}
	}
	if size < footerLen {
		return nil, corrupt("%d bytes, fewer than a footer", size)
	}
	var foot [footerLen]byte
	if _, err := f.ReadAt(foot[:], size-footerLen); err != nil {
		return nil, fmt.Errorf("tiered: read the footer of %s: %w", name, err)
	}
	if string(foot[28:]) != tableMagic {
		return nil, corrupt("no table footer (magic %q)", foot[28:])
	}
	ioff := binary.LittleEndian.Uint64(foot[0:])
	ilen := binary.LittleEndian.Uint64(foot[8:])
	if ioff > uint64(size-footerLen) || ilen != uint64(size-footerLen)-ioff {
		return nil, corrupt("index at %d of %d bytes in a table of %d bytes", ioff, ilen, size)
	}
	idx := make([]byte, ilen)
	if _, err := f.ReadAt(idx, int64(ioff)); err != nil {
		return nil, fmt.Errorf("tiered: read the index of %s: %w", name, err)
	}
	if crc32.Checksum(idx, castagnoli) != binary.LittleEndian.Uint32(foot[24:]) {
		return nil, corrupt("the index fails its checksum")
	}
	t := &table{f: f, name: name, entries: binary.LittleEndian.Uint64(foot[16:]), size: size}
	r := idx
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(r)
		if k <= 0 || n > uint64(len(r)-k) {
			return nil, false
		}
		b := r[k : k+int(n)]
		r = r[k+int(n):]
		return b, true
	}
	num := func() (int64, bool) {
		n, k := binary.Uvarint(r)
		if k <= 0 || n > uint64(ioff) {
			return 0, false
		}
		r = r[k:]
		return int64(n), true
	}
	var ok bool
	if t.first, ok = field(); !ok {
		return nil, corrupt("the index's first key is cut short")
	}
	end := int64(0)
	for len(r) > 0 {
		var h blockHandle
		h.last, ok = field()
		if ok {
			h.off, ok = num()
		}
		if ok {
			h.len, ok = num()
		}
		if !ok {
			return nil, corrupt("block handle %d of the index is cut short", len(t.blocks))
		}
		if h.off != end || h.len < 4 || h.off+h.len > int64(ioff) {
			return nil, corrupt("block %d at %d of %d bytes, after blocks up to %d", len(t.blocks), h.off, h.len, end)
		}
		if n := len(t.blocks); n > 0 && bytes.Compare(h.last, t.blocks[n-1].last) <= 0 || n == 0 && bytes.Compare(h.last, t.first) < 0 {
			return nil, corrupt("block %d's last key is out of order", n)
		}
		end = h.off + h.len
		t.blocks = append(t.blocks, h)
	}
	if end != int64(ioff) {
		return nil, corrupt("blocks end at %d, the index begins at %d", end, ioff)
	}
	if (t.entries == 0) != (len(t.blocks) == 0) {
		return nil, corrupt("%d entries in %d blocks", t.entries, len(t.blocks))
	}
	return t, nil
}

// readBlock returns block i's entries, without the checksum, once it has
// checked them: from the mapping of the file, or read into buf (reusing
// it) when the file is not mapped.
func (t *table) readBlock(i int, buf []byte) ([]byte, error) {
	h := t.blocks[i]
	if t.data != nil {
		b := t.data[h.off : h.off+h.len : h.off+h.len]
		w, bit := &t.verified[i/64], uint64(1)<<(i%64)
		if w.Load()&bit != 0 {
			return b[:len(b)-4], nil
		}
		if err := t.check(i, b); err != nil {
			return nil, err
		}
		w.Or(bit)
		return b[:len(b)-4], nil
	}
	if int64(cap(buf)) < h.len {
		buf = make([]byte, h.len)
	}
	buf = buf[:h.len]
	if _, err := t.f.ReadAt(buf, h.off); err != nil {
		return nil, fmt.Errorf("tiered: read block %d of %s: %w", i, t.name, err)
	}
	if err := t.check(i, buf); err != nil {
		return nil, err
	}
	return buf[:len(buf)-4], nil
}

// check checks block i, b, against its checksum.
func (t *table) check(i int, b []byte) error {
	n := len(b) - 4
	if crc32.Checksum(b[:n], castagnoli) != binary.LittleEndian.Uint32(b[n:]) {
		return &CorruptError{File: t.name, Reason: fmt.Sprintf("block %d at %d fails its checksum", i, t.blocks[i].off)}
	}
	return nil
}

// seekBlock returns the first block whose last key is at least key, or
// len(t.blocks).
func (t *table) seekBlock(key []byte) int {
	return sort.Search(len(t.blocks), func(i int) bool { return bytes.Compare(t.blocks[i].last, key) >= 0 })
}

// tableIter reads a table's entries in order.
type tableIter struct {
	t     *table
	blk   int    // the block in buf
	buf   []byte // its storage
	rest  []byte // its entries after the current one
	key   []byte
	value []byte
	tomb  bool
	valid bool
	err   error
}

// load reads block i and positions the iterator before its first entry.
func (it *tableIter) load(i int) bool {
	it.valid = false
	if i >= len(it.t.blocks) {
		it.rest = nil
		it.blk = i
		return false
	}
	b, err := it.t.readBlock(i, it.buf)
	if err != nil {
		it.err = err
		return false
	}
	if it.t.data == nil {
		it.buf = b[:cap(b)] // kept for the next block
	}
	it.rest, it.blk = b, i
	return true
}

// next moves to the next entry.
func (it *tableIter) next() bool {
	for len(it.rest) == 0 {
		if it.err != nil || !it.load(it.blk+1) {
			return false
		}
	}
	r := it.rest
	kl, k1 := binary.Uvarint(r)
	if k1 <= 0 {
		return it.corrupt()
	}
	vl, k2 := binary.Uvarint(r[k1:])
	if k2 <= 0 {
		return it.corrupt()
	}
	r = r[k1+k2:]
	if kl > uint64(len(r)) || vl>>1 > uint64(len(r))-kl {
		return it.corrupt()
	}
	key := r[:kl]
	if it.valid && bytes.Compare(key, it.key) <= 0 {
		return it.corrupt()
	}
	it.key, it.value, it.tomb = key, r[kl:kl+vl>>1], vl&1 == 1
	it.rest = r[kl+vl>>1:]
	it.valid = true
	return true
}

func (it *tableIter) corrupt() bool {
	it.valid = false
	it.err = &CorruptError{File: it.t.name, Reason: fmt.Sprintf("block %d holds an entry cut short or out of order", it.blk)}
	return false
}

// seekGE moves to the first entry whose key is at least key.
func (it *tableIter) seekGE(key []byte) bool {
	it.err = nil
	if !it.load(it.t.seekBlock(key)) {
		return false
	}
	it.valid = false
	for it.next() {
		if bytes.Compare(it.key, key) >= 0 {
			return true
		}
	}
	return false
}

// first moves to the table's first entry.
func (it *tableIter) first() bool {
	it.err = nil
	if !it.load(0) {
		return false
	}
	return it.next()
}

// verify checks every block of t and its entries (see Snapshot.Verify).
func (t *table) verify() error {
	corrupt := func(format string, args ...any) error {
		return &CorruptError{File: t.name, Reason: fmt.Sprintf(format, args...)}
	}
	var buf, last []byte
	var n uint64
	for i, h := range t.blocks {
		var b []byte
		if t.data != nil {
			b = t.data[h.off : h.off+h.len]
		} else {
			if int64(cap(buf)) < h.len {
				buf = make([]byte, h.len)
			}
			b = buf[:h.len]
			if _, err := t.f.ReadAt(b, h.off); err != nil {
				return fmt.Errorf("tiered: read block %d of %s: %w", i, t.name, err)
			}
		}
		if err := t.check(i, b); err != nil {
			return err
		}
		it := tableIter{t: t, rest: b[:len(b)-4], blk: i}
		for len(it.rest) > 0 {
			if !it.next() {
				return it.err
			}
			if n == 0 && !bytes.Equal(it.key, t.first) {
				return corrupt("its first key is %q, its index says %q", it.key, t.first)
			}
			if last != nil && bytes.Compare(it.key, last) <= 0 {
				return corrupt("key %q in block %d follows key %q", it.key, i, last)
			}
			last = append(last[:0], it.key...)
			n++
		}
		if !bytes.Equal(last, h.last) {
			return corrupt("block %d ends at key %q, its index says %q", i, last, h.last)
		}
	}
	if n != t.entries {
		return corrupt("%d entries, its footer says %d", n, t.entries)
	}
	return nil
}

// lastBelow moves to the greatest entry whose key is less than upper, and
// reports whether there is one.
func (it *tableIter) lastBelow(upper []byte) bool {
	it.err = nil
	// Block i is the first whose last key is upper or more: the entry is
	// in it, before upper, or else the last of the block before.
	for i := it.t.seekBlock(upper); i >= 0; i-- {
		if i == len(it.t.blocks) {
			continue
		}
		if !it.load(i) {
			return false
		}
		var key, value []byte
		var tomb, found bool
		for len(it.rest) > 0 && it.next() {
			if bytes.Compare(it.key, upper) >= 0 {
				break
			}
			key, value, tomb, found = it.key, it.value, it.tomb, true
		}
		if it.err != nil {
			return false
		}
		if found {
			it.key, it.value, it.tomb, it.valid = key, value, tomb, true
			return true
		}
	}
	it.valid = false
	return false
}
