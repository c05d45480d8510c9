package bench

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Baseline is the raw reference the figures of a run are compared with: the
// same appends, made as simply as the storage allows. [FileBaseline] appends
// records to a file with fdatasync; other engines plug in their own (for
// example plain INSERTs into a table).
type Baseline interface {
	// Name says what the baseline is, for the report.
	Name() string
	// Append runs writers goroutines, each making appends appends of
	// perAppend records of size bytes, and returns each append's latency
	// and the wall time of the whole run.
	Append(ctx context.Context, writers, appends, perAppend, size int) (latencies []time.Duration, elapsed time.Duration, err error)
	// Close releases the baseline's resources.
	Close() error
}

// BaselineReader is implemented by baselines that can read back what they
// appended, as the reference for reading the whole log.
type BaselineReader interface {
	// ReadAll reads every record appended so far and returns how many.
	ReadAll(ctx context.Context) (records int, elapsed time.Duration, err error)
}

// FileBaseline appends fixed-size records to one file and makes them
// durable with fdatasync, with the simplest group commit: one goroutine
// writes every record waiting at a moment with one write and one fdatasync,
// then acknowledges them.
type FileBaseline struct {
	path    string
	f       *os.File
	size    int // record size of the records written
	records int
}

// NewFileBaseline creates the baseline's file in dir.
func NewFileBaseline(dir string) (*FileBaseline, error) {
	path := filepath.Join(dir, "raw-baseline.log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	return &FileBaseline{path: path, f: f}, nil
}

// Name implements [Baseline].
func (b *FileBaseline) Name() string { return "raw file + fdatasync" }

type pending struct {
	n    int
	done chan error
}

// Append implements [Baseline].
func (b *FileBaseline) Append(ctx context.Context, writers, appends, perAppend, size int) ([]time.Duration, time.Duration, error) {
	b.size = size
	reqs := make(chan pending, writers)
	stop := make(chan struct{})
	var committer sync.WaitGroup
	committer.Go(func() {
		buf := make([]byte, 0, 1<<20)
		for {
			var group []pending
			select {
			case p := <-reqs:
				group = append(group, p)
			case <-stop:
				return
			}
		drain:
			for {
				select {
				case p := <-reqs:
					group = append(group, p)
				default:
					break drain
				}
			}
			buf = buf[:0]
			for _, p := range group {
				for range p.n * size {
					buf = append(buf, 'x')
				}
			}
			_, err := b.f.Write(buf)
			if err == nil {
				err = fdatasync(b.f)
			}
			for _, p := range group {
				p.done <- err
			}
		}
	})
	dones := make([]chan error, writers)
	for w := range dones {
		dones[w] = make(chan error, 1)
	}
	all, elapsed, err := timeWriters(writers, appends, func(w, _ int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		reqs <- pending{n: perAppend, done: dones[w]}
		return <-dones[w]
	})
	close(stop)
	committer.Wait()
	b.records += writers * appends * perAppend
	return all, elapsed, err
}

// timeWriters runs writers goroutines, each calling do for its appends
// in turn (w the writer, i the append) until a call fails, and
// returns every append's latency, the wall time of the whole run and the
// writers' errors.
func timeWriters(writers, appends int, do func(w, i int) error) ([]time.Duration, time.Duration, error) {
	lat := make([][]time.Duration, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for i := range appends {
				t := time.Now()
				if err := do(w, i); err != nil {
					errs[w] = err
					return
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return all, elapsed, errors.Join(errs...)
}

// ReadAll implements [BaselineReader]: it reads the file from the start and
// cuts it into records.
func (b *FileBaseline) ReadAll(ctx context.Context) (int, time.Duration, error) {
	start := time.Now()
	f, err := os.Open(b.path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	n, rest := 0, 0
	var sum byte
	for {
		m, err := f.Read(buf[rest:])
		m += rest
		i := 0
		for ; i+b.size <= m; i += b.size {
			rec := buf[i : i+b.size]
			sum ^= rec[0]
			n++
		}
		rest = copy(buf, buf[i:m])
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, time.Since(start), err
		}
	}
	_ = sum
	return n, time.Since(start), nil
}

// Close implements [Baseline]; it removes the file.
func (b *FileBaseline) Close() error {
	return errors.Join(b.f.Close(), os.Remove(b.path))
}
