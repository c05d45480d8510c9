package users

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// HashParams are the cost of Argon2id (RFC 9106), the memory-hard
// function that hashes passwords. A hash records the parameters it was
// made with, so that changing them affects new hashes only.
type HashParams struct {
	// Time is the number of passes over the memory.
	Time uint32
	// MemoryKiB is the memory one hash fills, in KiB.
	MemoryKiB uint32
	// Threads is the parallelism of one hash.
	Threads uint8
}

// DefaultHashParams are the parameters of new hashes: 19 MiB of memory,
// two passes, one thread — the first of OWASP's recommended Argon2id
// configurations (its Password Storage Cheat Sheet), which costs about
// 50 ms of one core. A server verifies at most [Options.HashConcurrency]
// passwords at once, so hashing holds at most that many times 19 MiB.
var DefaultHashParams = HashParams{Time: 2, MemoryKiB: 19 * 1024, Threads: 1}

// Bounds on the parameters a stored hash may name. A hash beyond them never
// verifies: a user record that names a huge cost cannot make the server
// spend its memory.
const (
	maxHashTime      = 16
	maxHashMemoryKiB = 256 * 1024
	maxHashThreads   = 16
)

const (
	saltBytes = 16
	keyBytes  = 32
	// hashScheme names the format of stored hashes: the PHC string format
	// of Argon2id, "$argon2id$v=19$m=…,t=…,p=…$salt$hash" (unpadded
	// base64).
	hashScheme = "argon2id"
)

// hashPassword returns the stored form of password, a PHC string, and its
// salt in base64. It waits for a hashing slot.
func (db *DB) hashPassword(ctx context.Context, password string) (phc, salt string, err error) {
	s := make([]byte, saltBytes)
	if _, err := rand.Read(s); err != nil {
		return "", "", err
	}
	if err := db.acquireHash(ctx); err != nil {
		return "", "", err
	}
	p := db.opts.Hash
	key := argon2.IDKey([]byte(password), s, p.Time, p.MemoryKiB, p.Threads, keyBytes)
	db.releaseHash()
	b64 := base64.RawStdEncoding
	phc = fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s", hashScheme, argon2.Version,
		p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(s), b64.EncodeToString(key))
	return phc, base64.StdEncoding.EncodeToString(s), nil
}

// verifyPassword reports whether password matches phc, a hash made by
// hashPassword. A hash in another format, or beyond the bounds on its
// parameters, matches nothing. It waits for a hashing slot.
func (db *DB) verifyPassword(ctx context.Context, password, phc string) (bool, error) {
	p, salt, want, ok := parsePHC(phc)
	if !ok {
		db.opts.Logger.Warn("a stored password hash is not one cairn can verify; the password is refused", "format", phcFormat(phc))
		return false, nil
	}
	if err := db.acquireHash(ctx); err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	db.releaseHash()
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// parsePHC reads "$argon2id$v=19$m=M,t=T,p=P$salt$hash".
func parsePHC(phc string) (p HashParams, salt, key []byte, ok bool) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != hashScheme || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, false
	}
	var m, t, par uint64
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, false
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			par = n
		default:
			return p, nil, nil, false
		}
	}
	if m < 8 || m > maxHashMemoryKiB || t < 1 || t > maxHashTime || par < 1 || par > maxHashThreads {
		return p, nil, nil, false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return p, nil, nil, false
	}
	key, err = b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, false
	}
	return HashParams{Time: uint32(t), MemoryKiB: uint32(m), Threads: uint8(par)}, salt, key, true
}

// phcFormat names the scheme of a stored hash for a log line, without the
// hash itself.
func phcFormat(phc string) string {
	parts := strings.SplitN(phc, "$", 3)
	if len(parts) < 3 || parts[0] != "" {
		return "unknown"
	}
	return parts[1]
}

func (db *DB) acquireHash(ctx context.Context) error {
	select {
	case db.hashSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (db *DB) releaseHash() { <-db.hashSlots }
