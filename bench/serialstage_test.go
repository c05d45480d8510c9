package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BenchmarkSerialStage measures what the serial work of an engine's
// committer leaves of the raw file's rate: W2's shape at 256 writers, one
// 256-byte record per append, through a group commit laid out as
// diskstore's (a committer that takes every record waiting, spends the
// serial cost on each, and writes them; a syncer that syncs what was
// written, one sync at a time, while the committer goes on with the
// next, and then answers the writers), with the committer's serial cost
// per record as the parameter. The file's space is written with zeros
// ahead, as the engine's log is, so that its syncs carry data alone. It
// reports appends/s; with a cost of 0 it is a raw file's group commit.
//
// The cost is spent spinning, so it stands for the committer's own CPU
// (checks, encoding, the index's memtable) and not for the rest of an
// engine's CPU, which the writers and the background work would add.
func BenchmarkSerialStage(b *testing.B) {
	for _, cost := range []time.Duration{0, 500 * time.Nanosecond, time.Microsecond, 2 * time.Microsecond, 3 * time.Microsecond} {
		b.Run(fmt.Sprint("cost=", cost), func(b *testing.B) {
			serialStage(b, 256, cost)
		})
	}
}

func serialStage(b *testing.B, writers int, cost time.Duration) {
	const size = 256
	f, err := os.Create(filepath.Join(b.TempDir(), "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	zeros := make([]byte, 1<<20)
	for range (b.N*size)>>20 + 1 {
		if _, err := f.Write(zeros); err != nil {
			b.Fatal(err)
		}
	}
	if err := fdatasync(f); err != nil {
		b.Fatal(err)
	}

	type written struct {
		dones []chan error
	}
	reqs := make(chan chan error, writers)
	toSync := make(chan written, 1) // one group waits while one syncs
	var stages sync.WaitGroup
	stages.Go(func() { // the committer
		defer close(toSync)
		var off int64
		buf := make([]byte, 0, 1<<20)
		for done := range reqs {
			group := []chan error{done}
		gather:
			for {
				select {
				case done, ok := <-reqs:
					if !ok {
						break gather
					}
					group = append(group, done)
				default:
					break gather
				}
			}
			for start := time.Now(); time.Since(start) < time.Duration(len(group))*cost; {
			}
			buf = buf[:0]
			for range group {
				buf = append(buf, make([]byte, size)...)
			}
			if _, err := f.WriteAt(buf, off); err != nil {
				b.Error(err)
				return
			}
			off += int64(len(buf))
			toSync <- written{group}
		}
	})
	stages.Go(func() { // the syncer
		for w := range toSync {
			// Whatever was written since joins this sync.
			group := w.dones
		more:
			for {
				select {
				case w, ok := <-toSync:
					if !ok {
						break more
					}
					group = append(group, w.dones...)
				default:
					break more
				}
			}
			err := fdatasync(f)
			for _, done := range group {
				done <- err
			}
		}
	})

	b.SetBytes(size)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range writers {
		n := b.N / writers
		if w < b.N%writers {
			n++
		}
		wg.Go(func() {
			done := make(chan error, 1)
			for range n {
				reqs <- done
				if err := <-done; err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	close(reqs)
	stages.Wait()
}
