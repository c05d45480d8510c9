// Package cputime reads the CPU time this process has used, for figures
// reported per operation (benchmarks, cairn bench): on a shared machine the
// CPU an operation costs moves much less than its wall time.
package cputime

import "time"

// Process returns the CPU time (user and system) that this process has
// used so far, or -1 where the system does not tell.
func Process() time.Duration { return process() }
