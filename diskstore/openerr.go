package diskstore

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
)

// damagedWhileOpening keeps err, damage pebble reported, for Open to fail
// with, and reports true, unless Open has succeeded.
func (d *DB) damagedWhileOpening(err error) bool {
	d.openMu.Lock()
	defer d.openMu.Unlock()
	if d.opened.Load() {
		return false
	}
	if d.damage == nil {
		d.damage = err
	}
	return true
}

// indexFault marks an error of the index (pebble, or a record in it) met
// by Open, as opposed to one of the log, so that Open can say which is
// damaged.
type indexFault struct{ err error }

func (e indexFault) Error() string { return e.err.Error() }

func (e indexFault) Unwrap() error { return e.err }

// errNoRebuild is the error of a replay from the start of a compacted log.
var errNoRebuild = errors.New("the index is missing or empty and the log was compacted")

// indexError is the error of an Open that found the index damaged.
type indexError struct {
	msg   string
	cause error
}

func (e *indexError) Error() string { return e.msg }

func (e *indexError) Unwrap() error { return e.cause }

func (e *indexError) Is(target error) bool {
	return target == ErrIndexDamaged || target == cairn.ErrCorrupt
}

// openError returns the error of an Open of dir that failed with err. When
// the index is damaged (pebble reports corruption, or misses a file it
// lists), it says so in one line, and how to recover: move the index
// aside and have Open rebuild it from the log, unless the log was
// compacted.
func (d *DB) openError(dir string, err error) error {
	logDir := d.opts.FS.PathJoin(dir, "log")
	var fault indexFault
	switch {
	case errors.Is(err, errNoRebuild):
		return &indexError{msg: fmt.Sprintf("diskstore: open %s: the index is missing or empty, and the log (%s) was compacted, so the index cannot be rebuilt from it: "+
			"put back the index's files (every entry of %s except the directory log) or restore the store from a backup", dir, logDir, dir)}
	case errors.As(err, &fault) && (pebble.IsCorruptionError(fault.err) || errors.Is(fault.err, os.ErrNotExist) || errors.Is(fault.err, cairn.ErrCorrupt)):
		cause := fault.err
		d.openMu.Lock()
		if d.damage != nil {
			cause = d.damage // it names the damaged file
		}
		d.openMu.Unlock()
		how := fmt.Sprintf("the log (%s) holds every event, and the index can be rebuilt from it: "+
			"move every entry of %s except the directory log elsewhere (keep them until the store has opened), then open the store again, which replays the whole log", logDir, dir)
		if seglog.Compacted(d.opts.FS, logDir) {
			how = fmt.Sprintf("the log (%s) was compacted, so the index cannot be rebuilt from it: restore the store from a backup", logDir)
		}
		return &indexError{msg: fmt.Sprintf("diskstore: open %s: the index is damaged (%s); %s", dir, oneLine(cause), how), cause: cause}
	}
	return fmt.Errorf("diskstore: open %s: %w", dir, wrapErr(err))
}

// oneLine returns the text of err on one line, without the detail carrier
// pebble joins to the errors of damaged files.
func oneLine(err error) string {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "<corruption detail carrier>" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}
