package cputime

import (
	"runtime"
	"testing"
	"time"
)

// Work on the CPU shows in the process's CPU time; sleeping does not.
func TestProcess(t *testing.T) {
	if Process() < 0 {
		t.Skip("the CPU time is not measured on " + runtime.GOOS)
	}
	// Work until the CPU time shows 20 ms of it: on a busy machine the
	// process gets a share of a core, so wall time bounds the wait only.
	before := Process()
	start := time.Now()
	for Process()-before < 20*time.Millisecond {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("10 s of work took %v of CPU", Process()-before)
		}
	}
	before = Process()
	time.Sleep(100 * time.Millisecond)
	if idle := Process() - before; idle > 50*time.Millisecond {
		t.Errorf("100 ms of sleep took %v of CPU", idle)
	}
}
