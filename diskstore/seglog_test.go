package diskstore

import (
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The names of the log's package, for the tests of this one that build
// and damage log segments.
var (
	segmentName      = seglog.SegmentName
	parseSegmentName = seglog.ParseSegmentName
	records          = seglog.Records
	frameIndex       = seglog.FrameIndex
	beginFrame       = seglog.BeginFrame
	sealFrame        = seglog.SealFrame
)

const (
	frameHeader = seglog.HeaderLen
	frameMagic  = seglog.FrameMagic
)

func openLog(fs vfs.FS, dir string, limit int64, noSync bool) (*seglog.Log, error) {
	return seglog.Open(fs, dir, limit, noSync)
}
