package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a fake clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLineShowsRateAndTimeLeft(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	r := New(&syncBuffer{}, "export", Options{Total: 1000, Now: c.now, Quiet: true})
	r.Add(250, 250<<10)
	c.advance(5 * time.Second)
	if got, want := r.Line(), "export:  25% 250/1000 events, 250.0 KiB, 50 events/s, ETA 15s"; got != want {
		t.Fatalf("plain line = %q, want %q", got, want)
	}
	term := New(&syncBuffer{}, "import", Options{Total: 1000, Now: c.now, Quiet: true, Terminal: true})
	term.Add(500, 0)
	c.advance(time.Second)
	if got, want := term.Line(), "import [############            ]  50% 500/1000 events, 500 events/s, ETA 1s"; got != want {
		t.Fatalf("terminal line = %q, want %q", got, want)
	}
	byBytes := New(&syncBuffer{}, "import", Options{TotalBytes: 4 << 20, Now: c.now, Quiet: true})
	byBytes.Add(100, 1<<20)
	c.advance(time.Second)
	if got, want := byBytes.Line(), "import:  25% 100 events, 1.0 MiB of 4.0 MiB, 100 events/s, ETA 3s"; got != want {
		t.Fatalf("line by bytes = %q, want %q", got, want)
	}
	copies := New(&syncBuffer{}, "backup", Options{Now: c.now, Quiet: true, Unit: "files", ByteRate: true})
	copies.SetTotalBytes(8 << 20)
	copies.Add(3, 2<<20)
	c.advance(time.Second)
	if got, want := copies.Line(), "backup:  25% 3 files, 2.0 MiB of 8.0 MiB, 2.0 MiB/s, ETA 3s"; got != want {
		t.Fatalf("line of copies = %q, want %q", got, want)
	}
	unknown := New(&syncBuffer{}, "bench", Options{Now: c.now, Quiet: true, Unit: "appends"})
	unknown.Add(3000, 0)
	c.advance(2 * time.Second)
	if got, want := unknown.Line(), "bench: 3000 appends, 1.5k appends/s, 2s"; got != want {
		t.Fatalf("line without a total = %q, want %q", got, want)
	}
}

func TestPlainLinesThenSummary(t *testing.T) {
	var out syncBuffer
	r := New(&out, "export", Options{Total: 10, Interval: time.Millisecond})
	r.Add(4, 100)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "export:  40% 4/10 events") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line after 10s: %q", out.String())
		}
		time.Sleep(time.Millisecond)
	}
	r.Add(6, 100)
	s := r.Done()
	if s.Items != 10 || s.Bytes != 200 {
		t.Fatalf("summary = %+v", s)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "export: 10 events, 200 B in ") || !strings.Contains(last, "events/s") {
		t.Fatalf("summary line = %q", last)
	}
	if strings.Contains(out.String(), "\r") {
		t.Fatalf("plain output holds a carriage return: %q", out.String())
	}
	// Done is final: nothing more is printed.
	n := len(out.String())
	r.Done()
	r.Abort()
	if len(out.String()) != n {
		t.Fatalf("a second Done printed %q", out.String()[n:])
	}
}

func TestTerminalRedrawsInPlaceAndClears(t *testing.T) {
	var out syncBuffer
	r := New(&out, "import", Options{Total: 100, Terminal: true, Interval: time.Millisecond})
	r.Add(50, 0)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "\rimport [") {
		if time.Now().After(deadline) {
			t.Fatalf("no bar after 10s: %q", out.String())
		}
		time.Sleep(time.Millisecond)
	}
	r.Abort()
	if got := out.String(); !strings.HasSuffix(got, "\r\x1b[K") || strings.Contains(got, "\n") {
		t.Fatalf("after Abort the terminal holds %q, want the bar cleared and no summary", got)
	}
}

func TestQuietPrintsOnlyTheSummary(t *testing.T) {
	var out syncBuffer
	r := New(&out, "x", Options{Quiet: true, Interval: time.Millisecond})
	r.Add(1, 1)
	time.Sleep(5 * time.Millisecond)
	r.Done()
	if got := out.String(); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "x: 1 events") {
		t.Fatalf("quiet output = %q", got)
	}
}

func TestFormats(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	for v, want := range map[float64]string{12: "12", 12345: "12.3k", 4_560_000: "4.56M"} {
		if got := Count(v); got != want {
			t.Errorf("Count(%v) = %q, want %q", v, got, want)
		}
	}
}
