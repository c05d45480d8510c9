package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/internal/cputime"
)

// BenchmarkLeastEngine measures how near to the raw file an embedded
// engine of cairn's contract can come at W2's shape (one durable 256-byte
// event per append, each writer on its own stream with an exact expected
// version) on the machine it runs on. Each run makes b.N appends three
// ways in turn, so that -count gives interleaved rounds:
//
//   - raw: the raw baseline of cairn bench ([FileBaseline]);
//   - least: the least such an engine does, laid out as diskstore's
//     group commit (a committer that takes every request waiting, checks
//     and writes them, and a syncer that syncs what was written while the
//     committer goes on, then answers the writers). The committer checks
//     each append's expected version and event ID, encodes the event with
//     its stream, version, position, time and a CRC-32C into the group's
//     frame, files it in an index, and writes the frame to a log whose
//     space was written with zeros ahead. Its index is Go maps in memory,
//     never written to disk: less than any engine does that reopens
//     without reading its whole log, so what it reaches bounds engines of
//     this layout from above;
//   - disk: W2 of cairn bench on the embedded engine (diskstore), through
//     the Store.
//
// It reports each one's appends/s and the process's CPU per append
// (raw-cpu-µs/op and so on), and least and disk against raw.
//
//	go test -run '^$' -bench LeastEngine -benchtime 256000x -count 5 ./bench
func BenchmarkLeastEngine(b *testing.B) {
	for _, writers := range []int{64, 256} {
		b.Run(fmt.Sprint("writers=", writers), func(b *testing.B) {
			appends := (b.N + writers - 1) / writers
			ctx := context.Background()
			var rate [3]float64
			for i, name := range []string{"raw", "least", "disk"} {
				dir := b.TempDir()
				cpu := cputime.Process()
				var elapsed time.Duration
				var err error
				switch name {
				case "raw":
					elapsed, err = rawAppends(ctx, dir, writers, appends)
				case "least":
					elapsed, err = leastEngine(dir, writers, appends)
				case "disk":
					elapsed, err = diskW2(ctx, dir, writers, appends)
				}
				if err != nil {
					b.Fatal(name, ": ", err)
				}
				n := float64(writers * appends)
				rate[i] = n / elapsed.Seconds()
				b.ReportMetric(rate[i], name+"-appends/s")
				b.ReportMetric(float64((cputime.Process()-cpu).Nanoseconds())/1e3/n, name+"-cpu-µs/op")
			}
			b.ReportMetric(rate[1]/rate[0], "least/raw")
			b.ReportMetric(rate[2]/rate[0], "disk/raw")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func rawAppends(ctx context.Context, dir string, writers, appends int) (time.Duration, error) {
	base, err := NewFileBaseline(dir)
	if err != nil {
		return 0, err
	}
	defer base.Close()
	_, elapsed, err := base.Append(ctx, writers, appends, 1, EventBytes)
	return elapsed, err
}

// diskW2 runs W2 as cairn bench does, on a new embedded store in dir, and
// returns the time its appends took.
func diskW2(ctx context.Context, dir string, writers, appends int) (time.Duration, error) {
	res, err := Run(ctx, Config{ // Run closes the store at its end
		Open: func(context.Context) (*cairn.Store, error) {
			db, err := diskstore.Open(dir, diskstore.Options{})
			if err != nil {
				return nil, err
			}
			return cairn.NewStore(db, cairn.Options{}), nil
		},
		Workloads: []string{"W2"},
		W2Writers: writers,
		W2Appends: appends,
		Out:       io.Discard,
	})
	if err != nil {
		return 0, err
	}
	for _, r := range res {
		if r.Workload == "W2" && r.Unit == "events/s" {
			return time.Duration(float64(writers*appends) / r.Value * float64(time.Second)), nil
		}
	}
	return 0, errors.New("W2 reported no throughput")
}

// leastReq is one append to the least engine: the writer's, reused for
// each of its appends.
type leastReq struct {
	stream   string
	expected int64 // the stream's last version; -1: it must not exist
	id       [16]byte
	typ      string
	data     []byte
	pos      uint64 // the event's position, once written
	err      error
	done     chan struct{}
}

var errLeastConflict = errors.New("wrong expected version")

// leastEngine makes appends appends from each of writers through the
// least engine (see BenchmarkLeastEngine), its log in dir, and returns the
// time they took.
func leastEngine(dir string, writers, appends int) (time.Duration, error) {
	const size = EventBytes
	f, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zeros := make([]byte, 1<<20)
	for range (writers*appends*(size+64))>>20 + 1 {
		if _, err := f.Write(zeros); err != nil {
			return 0, err
		}
	}
	if err := fdatasync(f); err != nil {
		return 0, err
	}

	reqs := make(chan *leastReq, writers)
	toSync := make(chan []*leastReq, 1) // one group waits while one syncs
	var stages sync.WaitGroup
	stages.Go(func() { // the committer
		defer close(toSync)
		heads := map[string]int64{}
		streams := map[string][]uint64{}
		ids := map[[16]byte]uint64{}
		table := crc32.MakeTable(crc32.Castagnoli)
		var off int64
		var pos uint64
		frame := make([]byte, 0, 1<<20)
		for r := range reqs {
			group := []*leastReq{r}
		gather:
			for {
				select {
				case r, ok := <-reqs:
					if !ok {
						break gather
					}
					group = append(group, r)
				default:
					break gather
				}
			}
			now := time.Now().UnixMicro()
			frame = frame[:0]
			for _, r := range group {
				last, ok := heads[r.stream]
				if !ok {
					last = -1
				}
				if last != r.expected {
					r.err = errLeastConflict
					continue
				}
				if p, dup := ids[r.id]; dup {
					r.pos = p // a retry: its first result
					continue
				}
				rec := len(frame)
				frame = binary.LittleEndian.AppendUint32(frame, 0) // its length, set below
				frame = binary.LittleEndian.AppendUint64(frame, pos)
				frame = binary.AppendUvarint(frame, uint64(last+1))
				frame = binary.AppendVarint(frame, now)
				frame = binary.AppendUvarint(frame, uint64(len(r.stream)))
				frame = append(frame, r.stream...)
				frame = binary.AppendUvarint(frame, uint64(len(r.typ)))
				frame = append(frame, r.typ...)
				frame = append(frame, r.id[:]...)
				frame = binary.AppendUvarint(frame, uint64(len(r.data)))
				frame = append(frame, r.data...)
				binary.LittleEndian.PutUint32(frame[rec:], uint32(len(frame)-rec-4))
				frame = binary.LittleEndian.AppendUint32(frame, crc32.Checksum(frame[rec:], table))
				heads[r.stream] = last + 1
				streams[r.stream] = append(streams[r.stream], pos)
				ids[r.id] = pos
				r.pos = pos
				pos++
			}
			if _, err := f.WriteAt(frame, off); err != nil {
				for _, r := range group {
					r.err = err
					r.done <- struct{}{}
				}
				continue
			}
			off += int64(len(frame))
			toSync <- group
		}
	})
	stages.Go(func() { // the syncer
		for group := range toSync {
			// Whatever was written since joins this sync.
		more:
			for {
				select {
				case g, ok := <-toSync:
					if !ok {
						break more
					}
					group = append(group, g...)
				default:
					break more
				}
			}
			err := fdatasync(f)
			for _, r := range group {
				if err != nil {
					r.err = err
				}
				r.done <- struct{}{}
			}
		}
	})

	var failed error
	var failOnce sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			r := &leastReq{stream: fmt.Sprint("w", w), expected: -1, typ: "E", data: make([]byte, size), done: make(chan struct{}, 1)}
			for k := range appends {
				binary.BigEndian.PutUint64(r.id[:], uint64(k))
				binary.BigEndian.PutUint64(r.id[8:], uint64(w))
				reqs <- r
				<-r.done
				if r.err != nil {
					failOnce.Do(func() { failed = r.err })
					return
				}
				r.expected++
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(reqs)
	stages.Wait()
	return elapsed, failed
}
