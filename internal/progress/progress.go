// Package progress shows how far a long piece of work has got: a bar with
// the rate and the time left, redrawn in place on a terminal, and plain
// lines every few seconds otherwise (a log file, a pipe, CI). At the end it
// prints a summary: what was done, how many bytes, how long it took, at what
// rate.
//
// The commands that move many events (export, import, bench, and later
// backup, restore, check and compaction) share it, so that they look the
// same:
//
//	p := progress.New(os.Stderr, "export", progress.Options{Total: n})
//	for … {
//		p.Add(1, int64(len(line)))
//	}
//	p.Done()
//
// A Reporter is safe for concurrent use: Add is two atomic additions, and
// drawing happens on a goroutine of its own, so that a stalled worker does
// not freeze the rate or the clock.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// Options configure a Reporter. The zero value draws plain lines every five
// seconds with no known total.
type Options struct {
	// Total is the number of items expected, 0 when unknown. With a total
	// the reporter shows a bar, the percentage and the time left.
	Total int64
	// TotalBytes is the number of bytes expected, 0 when unknown: without
	// a Total, the bar, percentage and time left follow the bytes (an
	// import measures the file it reads).
	TotalBytes int64
	// ByteRate shows the rate in bytes per second rather than items: for
	// work that copies files, whose sizes differ.
	ByteRate bool
	// Unit names the items ("events" when empty).
	Unit string
	// Terminal redraws one line in place, several times a second. Use
	// [IsTerminal] to decide.
	Terminal bool
	// Interval is the time between plain lines (default 5 s); on a
	// terminal, between redraws (default 200 ms).
	Interval time.Duration
	// Quiet prints nothing but the summary.
	Quiet bool
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// Reporter reports the progress of one piece of work.
type Reporter struct {
	w     io.Writer
	label string
	opts  Options
	start time.Time

	items      atomic.Int64
	bytes      atomic.Int64
	total      atomic.Int64
	totalBytes atomic.Int64

	mu    sync.Mutex // serialises writes to w; held by draw and Done
	drawn bool       // a terminal line is on screen (guarded by mu)
	ended bool       // Done was called (guarded by mu)

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New starts a Reporter writing to w. Call Done when the work ends.
func New(w io.Writer, label string, opts Options) *Reporter {
	if opts.Unit == "" {
		opts.Unit = "events"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
		if opts.Terminal {
			opts.Interval = 200 * time.Millisecond
		}
	}
	if w == nil {
		w = io.Discard
		opts.Quiet = true
	}
	r := &Reporter{w: w, label: label, opts: opts, start: opts.Now(), stop: make(chan struct{})}
	r.total.Store(opts.Total)
	r.totalBytes.Store(opts.TotalBytes)
	if !opts.Quiet {
		r.wg.Add(1)
		go r.loop()
	}
	return r
}

// IsTerminal reports whether w is a terminal, where a redrawn bar makes
// sense.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Add records n more items of size bytes in all.
func (r *Reporter) Add(n, bytes int64) {
	r.items.Add(n)
	r.bytes.Add(bytes)
}

// Reached records that n items are done in all, for work that counts
// cumulatively from several goroutines: the count only grows.
func (r *Reporter) Reached(n int64) {
	for {
		cur := r.items.Load()
		if n <= cur || r.items.CompareAndSwap(cur, n) {
			return
		}
	}
}

// SetTotal changes the number of items expected (0: unknown).
func (r *Reporter) SetTotal(n int64) { r.total.Store(n) }

// SetTotalBytes changes the number of bytes expected (0: unknown), which
// the bar follows when no number of items is expected.
func (r *Reporter) SetTotalBytes(n int64) { r.totalBytes.Store(n) }

func (r *Reporter) loop() {
	defer r.wg.Done()
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.draw()
		}
	}
}

// Summary is what a piece of work did.
type Summary struct {
	Items   int64
	Bytes   int64
	Elapsed time.Duration
}

// Rate returns the items per second.
func (s Summary) Rate() float64 { return perSecond(s.Items, s.Elapsed) }

// Format reads as "1200000 events, 245.1 MiB in 4.2s (285.7k events/s,
// 58.3 MiB/s)", with unit naming the items; without bytes, "2000 appends
// in 1.2s (1.7k appends/s)".
func (s Summary) Format(unit string) string {
	el := s.Elapsed.Round(time.Millisecond)
	if s.Bytes == 0 {
		return fmt.Sprintf("%d %s in %s (%s %s/s)", s.Items, unit, el, Count(s.Rate()), unit)
	}
	return fmt.Sprintf("%d %s, %s in %s (%s %s/s, %s/s)", s.Items, unit, Bytes(s.Bytes),
		el, Count(s.Rate()), unit, Bytes(int64(perSecond(s.Bytes, s.Elapsed))))
}

// Done stops the reporter and prints the summary line, "label: …". It
// returns the summary; calls after the first print nothing.
func (r *Reporter) Done() Summary {
	s := r.Summary()
	r.halt()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return s
	}
	r.ended = true
	if r.drawn {
		fmt.Fprint(r.w, "\r\x1b[K")
	}
	fmt.Fprintf(r.w, "%s: %s\n", r.label, s.Format(r.opts.Unit))
	return s
}

// Abort stops the reporter without a summary, clearing the bar: for work
// that failed, whose error is reported instead.
func (r *Reporter) Abort() {
	r.halt()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return
	}
	r.ended = true
	if r.drawn {
		fmt.Fprint(r.w, "\r\x1b[K")
	}
}

// halt stops the drawing goroutine and waits for it.
func (r *Reporter) halt() {
	r.stopOnce.Do(func() { close(r.stop) })
	r.wg.Wait()
}

// Summary returns what was done so far.
func (r *Reporter) Summary() Summary {
	return Summary{Items: r.items.Load(), Bytes: r.bytes.Load(), Elapsed: r.opts.Now().Sub(r.start)}
}

// draw prints the current state: a line redrawn in place on a terminal, a
// new line otherwise.
func (r *Reporter) draw() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return
	}
	line := r.Line()
	if r.opts.Terminal {
		fmt.Fprint(r.w, "\r"+line+"\x1b[K")
		r.drawn = true
		return
	}
	fmt.Fprintln(r.w, line)
}

// Line returns the progress as one line: with a total, "label [####    ]
// 45% 450000/1000000 events, 112.5 MiB, 230.1k events/s, ETA 2s"; without
// one, the count, bytes, rate and elapsed time.
func (r *Reporter) Line() string {
	s := r.Summary()
	total, totalBytes := r.total.Load(), r.totalBytes.Load()
	rate := s.Rate()
	var b strings.Builder
	b.WriteString(r.label)
	if r.opts.Terminal {
		b.WriteString(" ")
	} else {
		b.WriteString(": ")
	}
	done, all := s.Items, total
	if total <= 0 && totalBytes > 0 {
		done, all = s.Bytes, totalBytes
	}
	if all > 0 {
		pct := min(done*100/all, 100)
		if r.opts.Terminal {
			const width = 24
			fill := int(pct) * width / 100
			b.WriteString("[" + strings.Repeat("#", fill) + strings.Repeat(" ", width-fill) + "] ")
		}
		if total > 0 {
			fmt.Fprintf(&b, "%3d%% %d/%d %s", pct, s.Items, total, r.opts.Unit)
		} else {
			fmt.Fprintf(&b, "%3d%% %d %s", pct, s.Items, r.opts.Unit)
		}
	} else {
		fmt.Fprintf(&b, "%d %s", s.Items, r.opts.Unit)
	}
	if s.Bytes > 0 {
		fmt.Fprintf(&b, ", %s", Bytes(s.Bytes))
		if total <= 0 && totalBytes > 0 {
			fmt.Fprintf(&b, " of %s", Bytes(totalBytes))
		}
	}
	if r.opts.ByteRate {
		fmt.Fprintf(&b, ", %s/s", Bytes(int64(perSecond(s.Bytes, s.Elapsed))))
	} else {
		fmt.Fprintf(&b, ", %s %s/s", Count(rate), r.opts.Unit)
	}
	if perSec := perSecond(done, s.Elapsed); all > 0 && done < all && perSec > 0 {
		left := time.Duration(float64(all-done) / perSec * float64(time.Second))
		fmt.Fprintf(&b, ", ETA %s", left.Round(time.Second))
	} else {
		fmt.Fprintf(&b, ", %s", s.Elapsed.Round(time.Second))
	}
	return b.String()
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Count formats a count or rate: 950, 12.3k, 4.56M.
func Count(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// Bytes formats a size in binary units: 512 B, 12.0 KiB, 3.4 MiB, 1.2 GiB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
