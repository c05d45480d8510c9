//go:build !invariants && !race

package invariants

// Enabled reports whether invariant checks run: false in this build. Build
// with -race or -tags invariants to turn them on.
const Enabled = false
