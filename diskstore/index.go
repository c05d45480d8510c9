package diskstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/invariants"
	"github.com/cockroachdb/pebble/v2"
)

// measureMemtable sets memCap to the capacity of pebble's memtable, or to
// a lower bound of it when pebble's metrics do not tell it alone. Open calls
// it once the index is flushed; capacities never shrink while the store is
// open.
func (d *DB) measureMemtable() {
	d.memCap = min(d.opts.MemTableBytes, 256<<10)
	if m := d.pdb.Metrics().MemTable; m.Count == 1 {
		d.memCap = max(m.Size, d.memCap)
	}
}

// growMemtable has pebble start a memtable of the configured size. rotate
// calls it, once, in place of a flush, while nothing is in flight.
//
// Pebble starts with a memtable of 256 KiB and doubles the next one only
// when one fills up: a flush the engine asks for while the memtable is less
// than half full (by the bytes pebble counts, which memSize overestimates)
// keeps the next one the same size. The engine cannot let a memtable fill
// up, since pebble would then set it aside by itself with writes that are
// not durable yet; so the memtable would stay small, flushed every few
// hundred appends. Instead, growMemtable applies one spacer entry
// (spacerBytes), for which pebble sets the memtable aside (it holds only
// durable writes) and starts one large enough, which the spacer holds more
// than half of; then it deletes the spacer and flushes: the next memtable
// has the configured size. Its capacity is read back from pebble, so that
// the engine's accounting holds whatever pebble did.
//
// The writers wait while it runs, once per Open, mostly while the spacer's
// bytes are written twice (into the batch, then into the memtable) on
// memory the process touches for the first time: the spacer is as small
// as the growth allows.
func (d *DB) growMemtable() error {
	d.grown = true
	n := spacerBytes(d.opts.MemTableBytes)
	// The memtable set aside for the spacer, and the spacer's.
	d.sealed.Add(2)
	b := d.pdb.NewBatchWithSize(n + 64)
	op := b.SetDeferred(len(spacerKey), n)
	copy(op.Key, spacerKey)
	clear(op.Value)
	err := op.Finish()
	if err == nil {
		err = d.pdb.Apply(b, pebble.NoSync)
	}
	_ = b.Close()
	if err == nil {
		err = d.pdb.Delete(spacerKey, pebble.NoSync)
	}
	if err == nil {
		err = d.pdb.Flush()
	}
	if err != nil {
		return err
	}
	if m := d.pdb.Metrics().MemTable; m.Count == 1 {
		d.memCap = max(m.Size, d.memCap)
	}
	return nil
}

// spacerBytes is the size of growMemtable's spacer for a memtable of m
// bytes configured. Pebble's memtables double in size from 256 KiB up to
// m, and a batch that does not fit makes it start the first of those sizes
// that holds the batch. The spacer must make it start the first size s
// that reaches half of m (the one after is then m), fill more than half of
// s (a flush of a memtable less than half full keeps the next one its
// size), and stay under half of m (pebble's threshold for a batch flushed
// on its own): half of s and a sixteenth of s more, or midway between half
// of s and half of m when that is less.
func spacerBytes(m uint64) int {
	s := uint64(256 << 10)
	for s < m/2 {
		s *= 2
	}
	s = min(s, m)
	return int(s/2 + min(s/16, (m/2-s/2)/2))
}

// spacerKey is the key of growMemtable's spacer, outside every kind of
// record (readers scan the ranges of their kind only).
var spacerKey = []byte{'~'}

// noteFlushed counts n memtables that pebble flushed. Pebble must never
// flush more than the engine set aside: a memtable it set aside by itself
// could hold index writes of a group whose frame is not durable yet, and a
// crash would leave the index holding writes the log lacks. In production
// the breach is logged at ERROR; with invariants enabled it panics.
func (d *DB) noteFlushed(n int64) {
	flushed, sealed := d.flushed.Add(n), d.sealed.Load()
	if flushed <= sealed {
		return
	}
	d.lg.Error("diskstore: pebble flushed a memtable the engine did not set aside", "flushed", flushed, "sealed", sealed)
	if invariants.Enabled {
		invariants.Failf("diskstore: pebble flushed %d memtables, the engine set aside %d: the index may hold writes the log lacks", flushed, sealed)
	}
}

// wrapErr marks pebble's corruption errors with cairn.ErrCorrupt.
func wrapErr(err error) error {
	if err != nil && pebble.IsCorruptionError(err) && !errors.Is(err, cairn.ErrCorrupt) {
		return fmt.Errorf("diskstore: %w: %s", cairn.ErrCorrupt, err.Error())
	}
	return err
}

// pebbleLogger routes pebble's messages to the slog logger. Pebble calls
// Fatalf when its commit pipeline cannot continue (a failed WAL write or
// sync, a failed MANIFEST write): instead of exiting the process, the store
// records the failure and refuses further writes.
type pebbleLogger struct{ d *DB }

func (l pebbleLogger) Infof(format string, args ...any) {
	if l.d.lg.Enabled(context.Background(), slog.LevelDebug) {
		l.d.lg.Debug("pebble: " + fmt.Sprintf(format, args...))
	}
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	if l.d.lg.Enabled(context.Background(), slog.LevelWarn) {
		l.d.lg.Warn("pebble: " + fmt.Sprintf(format, args...))
	}
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	err := fmt.Errorf("pebble: "+format, args...)
	for _, a := range args {
		if cause, ok := a.(error); ok {
			// Keep the cause (an errno such as ENOSPC) for errors.Is.
			err = fmt.Errorf("%s: %w", err, cause)
			break
		}
	}
	l.d.fail(err)
}
