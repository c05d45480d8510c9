// Package mmap maps files read-only, where the system and the filesystem
// allow it, so that reads of them cost no system call. A caller falls
// back to reading the file when Map returns nil. A disk that fails under
// a read of a mapping stops the process (SIGBUS) instead of failing the
// read, as with any mapped file.
package mmap
