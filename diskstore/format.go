package diskstore

import (
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
const FormatVersion = 2

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
)

// formatMagic starts the value of the format key.
const formatMagic = "cairn-diskstore"

var (
	formatKey = []byte{prefixFormat}
	markerKey = []byte{prefixMarker}
	// applyMarkKey holds the mark of the last group applied (see Apply).
	applyMarkKey = []byte{prefixApplied}
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
