package seglog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/cairndb/cairn"
)

const (
	// FrameMagic starts every frame.
	FrameMagic = "cLF1"
	// HeaderLen is the length of a frame's header.
	HeaderLen = 16
	// maxFrameBody bounds a frame's body: a frame that claims more is
	// taken for the torn end of the log.
	maxFrameBody = 1 << 31
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// BeginFrame starts the frame in buf: the header, filled in by SealFrame.
func BeginFrame(buf []byte) []byte {
	return append(buf[:0], make([]byte, HeaderLen)...)
}

// SealFrame fills in the header of frame, whose body holds events bytes of
// events followed by the index batch.
func SealFrame(frame []byte, events int) {
	copy(frame, FrameMagic)
	binary.LittleEndian.PutUint32(frame[4:], uint32(events))
	binary.LittleEndian.PutUint32(frame[8:], uint32(len(frame)-HeaderLen-events))
	c := crc32.Update(0, crcTable, frame[:12])
	binary.LittleEndian.PutUint32(frame[12:], crc32.Update(c, crcTable, frame[HeaderLen:]))
}

// ReadFrame reads the frame at off in segment n. ok is false when there is
// no whole, intact frame there: the end of the log.
func (l *Log) ReadFrame(n uint64, off, size int64, buf []byte) (frame []byte, ok bool, err error) {
	if size-off < HeaderLen {
		return buf, false, nil
	}
	buf = slices.Grow(buf[:0], HeaderLen)[:HeaderLen]
	if err := l.readAt(n, off, buf); err != nil {
		return buf, false, err
	}
	if string(buf[:4]) != FrameMagic {
		return buf, false, nil
	}
	ev := int64(binary.LittleEndian.Uint32(buf[4:]))
	ix := int64(binary.LittleEndian.Uint32(buf[8:]))
	if ev+ix > maxFrameBody || off+HeaderLen+ev+ix > size {
		return buf, false, nil
	}
	buf = slices.Grow(buf, int(ev+ix))[:HeaderLen+ev+ix]
	if err := l.readAt(n, off+HeaderLen, buf[HeaderLen:]); err != nil {
		return buf, false, err
	}
	c := crc32.Update(0, crcTable, buf[:12])
	if crc32.Update(c, crcTable, buf[HeaderLen:]) != binary.LittleEndian.Uint32(buf[12:]) {
		return buf, false, nil
	}
	return buf, true, nil
}

// CheckTail checks that what follows the last whole frame of segment n, at
// off, is the torn end of the log: a frame that was being written when the
// process stopped, never acknowledged. A damaged frame followed by an
// intact one is corruption of acknowledged data, and is reported.
//
// A segment that the log goes on from was synced whole before the next one
// was created: after its last frame there is nothing but zeros (space
// allocated ahead), and anything else is damage.
func (l *Log) CheckTail(n uint64, off, size int64) error {
	if off > size {
		return fmt.Errorf("diskstore: %w: log segment %d ends at %d, before its frames (%d)", cairn.ErrCorrupt, n, size, off)
	}
	l.mu.RLock()
	_, later := l.files[n+1]
	l.mu.RUnlock()
	if later {
		return l.checkZeros(n, off, size)
	}
	var hdr [HeaderLen]byte
	if size-off < HeaderLen {
		return nil
	}
	if err := l.readAt(n, off, hdr[:]); err != nil {
		return err
	}
	if string(hdr[:4]) != FrameMagic {
		return nil
	}
	next := off + HeaderLen + int64(binary.LittleEndian.Uint32(hdr[4:])) + int64(binary.LittleEndian.Uint32(hdr[8:]))
	if next >= size {
		return nil
	}
	if _, ok, err := l.ReadFrame(n, next, size, nil); err != nil || ok {
		return errors.Join(err, fmt.Errorf("diskstore: %w: log segment %d: damaged frame at offset %d before intact ones", cairn.ErrCorrupt, n, off))
	}
	return nil
}

// checkZeros checks that segment n holds only zeros from off to size.
func (l *Log) checkZeros(n uint64, off, size int64) error {
	buf := make([]byte, min(size-off, 1<<20))
	for at := off; at < size; at += int64(len(buf)) {
		p := buf[:min(int64(len(buf)), size-at)]
		if err := l.readAt(n, at, p); err != nil {
			return err
		}
		if i := slices.IndexFunc(p, func(b byte) bool { return b != 0 }); i >= 0 {
			return fmt.Errorf("diskstore: %w: log segment %d: damaged data at offset %d, after its last whole frame (at %d) and before segment %d", cairn.ErrCorrupt, n, at+int64(i), off, n+1)
		}
	}
	return nil
}

// FrameIndex returns the index batch of a frame read by ReadFrame.
func FrameIndex(frame []byte) []byte {
	ev := binary.LittleEndian.Uint32(frame[4:])
	return frame[HeaderLen+int(ev):]
}
