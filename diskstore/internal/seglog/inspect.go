package seglog

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"slices"
)

// What an offline check of the log needs beyond what the engine reads:
// frames whose checksum fails, and the next intact frame after damage.

// ReadAt reads len(p) bytes of segment n at off.
func (l *Log) ReadAt(n uint64, off int64, p []byte) error { return l.readAt(n, off, p) }

// InspectFrame reads the frame at off in segment n, whatever its checksum
// says: ok is false when no frame starts there (no magic, or lengths that
// run past the segment's size), intact whether its checksum holds.
func (l *Log) InspectFrame(n uint64, off, size int64, buf []byte) (frame []byte, ok, intact bool, err error) {
	if size-off < HeaderLen {
		return buf, false, false, nil
	}
	buf = slices.Grow(buf[:0], HeaderLen)[:HeaderLen]
	if err := l.readAt(n, off, buf); err != nil {
		return buf, false, false, err
	}
	if string(buf[:4]) != FrameMagic {
		return buf, false, false, nil
	}
	ev := int64(binary.LittleEndian.Uint32(buf[4:]))
	ix := int64(binary.LittleEndian.Uint32(buf[8:]))
	if ev+ix > maxFrameBody || off+HeaderLen+ev+ix > size {
		return buf, false, false, nil
	}
	buf = slices.Grow(buf, int(ev+ix))[:HeaderLen+ev+ix]
	if err := l.readAt(n, off+HeaderLen, buf[HeaderLen:]); err != nil {
		return buf, false, false, err
	}
	c := crc32.Update(0, crcTable, buf[:12])
	intact = crc32.Update(c, crcTable, buf[HeaderLen:]) == binary.LittleEndian.Uint32(buf[12:])
	return buf, true, intact, nil
}

// NextFrame returns the offset of the first intact frame of segment n at
// or after from (before size), and false when there is none.
func (l *Log) NextFrame(n uint64, from, size int64) (int64, bool, error) {
	const window = 1 << 20
	buf := make([]byte, window+len(FrameMagic)-1)
	var frame []byte
	for at := from; at < size; at += window {
		p := buf[:min(int64(len(buf)), size-at)]
		if err := l.readAt(n, at, p); err != nil {
			return 0, false, err
		}
		for i := 0; ; {
			k := bytes.Index(p[i:], []byte(FrameMagic))
			if k < 0 || int64(i+k) >= window {
				break
			}
			off := at + int64(i+k)
			var ok, intact bool
			var err error
			frame, ok, intact, err = l.InspectFrame(n, off, size, frame)
			if err != nil {
				return 0, false, err
			}
			if ok && intact {
				return off, true, nil
			}
			i += k + 1
		}
	}
	return 0, false, nil
}

// FrameEvents returns the event records of a frame read by InspectFrame.
func FrameEvents(frame []byte) []byte {
	ev := binary.LittleEndian.Uint32(frame[4:])
	return frame[HeaderLen : HeaderLen+int(ev)]
}
