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
	before := Process()
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	busy := Process() - before
	if busy < 20*time.Millisecond {
		t.Errorf("50 ms of work took %v of CPU", busy)
	}
	before = Process()
	time.Sleep(100 * time.Millisecond)
	if idle := Process() - before; idle > 50*time.Millisecond {
		t.Errorf("100 ms of sleep took %v of CPU", idle)
	}
}
