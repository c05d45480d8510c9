//go:build invariants || race

package invariants

// Enabled reports whether invariant checks run: true in this build, made
// with the race detector or the build tag invariants.
const Enabled = true
