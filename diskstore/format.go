package diskstore

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// FormatVersion is the version of the on-disk format this package reads and
// writes. It is recorded under the format key when a store is created and
// checked at every open.
//
// Version 3 added the index of categories, types, tags, first events and
// correlation ids (the 'x' records); [Open] builds it for a store of
// version 2, once, and records version 3 (see migrate.go).
//
// Version 4 took the retry records out of the frames' index writes (Open
// derives them from the frames) and added the ID mark (the 'I' record):
// the index holds the retry records of the frames up to it (ids.go). Open
// records version 4 in a store of version 3 at once, with an ID mark equal
// to its marker; a build that reads version 3 only would replay a frame
// of version 4 without its retry records.
//
// Version 5 took the runs out of pebble's memtable: they reach the index
// with the retry records, in the tables ingested up to the ID mark, and
// Open takes those of the frames after it into memory (runs.go). The
// frames are as in version 4. Open records version 5 in a store of version
// 4 or 3 once it has flushed the runs it replayed; a build that reads
// version 4 only would lose the runs of the frames after the ID mark.
const FormatVersion = 5

// formatNoIndex is the version before the index of categories, types and
// tags, formatIDsInFrames the version before the ID mark, and
// formatRunsInIndex the version before runs in memory: the older versions
// Open converts.
const (
	formatNoIndex     = 2
	formatIDsInFrames = 3
	formatRunsInIndex = 4
)

// Key prefixes. See the package documentation for the layout.
const (
	prefixMarker   = 'A'
	prefixApplied  = 'R'
	prefixFormat   = 'F'
	prefixLocator  = 'L'
	prefixEvent    = 'z' // not a key: events are sealed with eventKey(pos)
	prefixRun      = 'r'
	prefixMeta     = 'm'
	prefixID       = 'i'
	prefixSnapshot = 's'
	prefixTable    = 't'
	prefixList     = 'x'
	prefixCut      = 'P'
	prefixIDMark   = 'I'
)

// formatMagic starts the value of the format key.
const formatMagic = "cairn-diskstore"

var (
	formatKey = []byte{prefixFormat}
	markerKey = []byte{prefixMarker}
	// applyMarkKey holds the mark of the last group applied (see Apply).
	applyMarkKey = []byte{prefixApplied}
	// cutKey is set once compaction has removed any event from the log.
	cutKey = []byte{prefixCut}
	// idMarkKey holds the ID mark: the frame up to which the index holds
	// every retry record (ids.go).
	idMarkKey = []byte{prefixIDMark}
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// seal appends the checksum of key and payload in front of payload:
// the stored value is crc32c(key ‖ payload) ‖ payload.
func checksum(key, payload []byte) uint32 {
	c := crc32.Update(0, crcTable, key)
	return crc32.Update(c, crcTable, payload)
}

func seal(key, payload []byte) []byte {
	v := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(v, checksum(key, payload))
	copy(v[4:], payload)
	return v
}

// unseal checks the checksum of a stored value and returns its payload.
func unseal(key, value []byte) ([]byte, error) {
	if len(value) < 4 {
		return nil, corruptf(key, "value of %d bytes is too short", len(value))
	}
	payload := value[4:]
	if binary.BigEndian.Uint32(value) != checksum(key, payload) {
		return nil, corruptf(key, "checksum mismatch")
	}
	return payload, nil
}

// corruptError reports stored data that failed an integrity check.
type corruptError struct {
	key    []byte
	reason string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("diskstore: corrupt data at key %q: %s", e.key, e.reason)
}

func (e *corruptError) Unwrap() error { return cairn.ErrCorrupt }

func corruptf(key []byte, format string, args ...any) error {
	return &corruptError{key: append([]byte(nil), key...), reason: fmt.Sprintf(format, args...)}
}

// Keys.

func eventKey(pos uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixEvent
	binary.BigEndian.PutUint64(k[1:], pos)
	return k
}

func putEventKey(k []byte, pos uint64) {
	k[0] = prefixEvent
	binary.BigEndian.PutUint64(k[1:], pos)
}

// streamPrefix returns p ‖ stream ‖ 0x00. Stream ids never contain NUL, so
// the keys of one stream sort together and streams sort by id.
func streamPrefix(p byte, stream string) []byte {
	k := make([]byte, 0, len(stream)+11)
	k = append(k, p)
	k = append(k, stream...)
	return append(k, 0)
}

func runKey(stream string, version int64) []byte {
	return appendRunKey(make([]byte, 0, len(stream)+10), stream, version)
}

func appendRunKey(dst []byte, stream string, version int64) []byte {
	dst = append(dst, prefixRun)
	dst = append(dst, stream...)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint64(dst, uint64(version))
}

func runKeyVersion(k []byte) int64 {
	return int64(binary.BigEndian.Uint64(k[len(k)-8:]))
}

func metaKey(stream string) []byte {
	k := make([]byte, 0, len(stream)+1)
	return append(append(k, prefixMeta), stream...)
}

func idKey(id uuid.UUID) []byte {
	k := make([]byte, 17)
	k[0] = prefixID
	copy(k[1:], id[:])
	return k
}

func snapshotKey(stream string) []byte {
	k := make([]byte, 0, len(stream)+1)
	return append(append(k, prefixSnapshot), stream...)
}

func tableKey(table, key string) []byte {
	k := streamPrefix(prefixTable, table)
	return append(k, key...)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// locatorKey returns the key of the locator of the run that starts at pos:
// 'L' ‖ pos [8]. Locators list the log's runs in position order.
func locatorKey(pos uint64) []byte {
	return appendLocatorKey(make([]byte, 0, 9), pos)
}

func appendLocatorKey(dst []byte, pos uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, prefixLocator), pos)
}

var locatorBounds = pebble.IterOptions{LowerBound: []byte{prefixLocator}, UpperBound: []byte{prefixLocator + 1}}

func sealInPlace(key, value []byte) {
	binary.BigEndian.PutUint32(value, checksum(key, value[4:]))
}

// maxListValue is the longest index key value kept as it is in the keys of
// its list; a longer one (only a correlation id can be longer: types and
// tags are at most 256 bytes, stream ids 512) is kept as its SHA-256.
const maxListValue = 512

// appendListPrefix appends the prefix of the keys of the list key:
// 'x' ‖ kind [1] ‖ uvarint length of the value ‖ the value (or, past
// maxListValue bytes, its SHA-256). The length makes the prefixes of two
// lists never prefixes of one another, whatever bytes the values hold.
func appendListPrefix(dst []byte, key cairn.IndexKey) []byte {
	dst = append(dst, prefixList, byte(key.Kind))
	dst = binary.AppendUvarint(dst, uint64(len(key.Value)))
	if len(key.Value) > maxListValue {
		sum := sha256.Sum256([]byte(key.Value))
		return append(dst, sum[:]...)
	}
	return append(dst, key.Value...)
}

// appendBlockKey appends the key of the block of list key whose first
// entry has number n: the list's prefix ‖ n [8].
func appendBlockKey(dst []byte, key cairn.IndexKey, n uint64) []byte {
	return binary.BigEndian.AppendUint64(appendListPrefix(dst, key), n)
}

// blockKeyNumber is the number of the first entry of the block under k.
func blockKeyNumber(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(k)-8:]) }

var listBounds = pebble.IterOptions{LowerBound: []byte{prefixList}, UpperBound: []byte{prefixList + 1}}
