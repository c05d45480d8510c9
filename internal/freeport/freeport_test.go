package freeport

import (
	"net"
	"strconv"
	"testing"
)

// The address is free, on loopback, and below the ephemeral range where
// the kernel has one.
func TestAddr(t *testing.T) {
	lo := ephemeralLow()
	seen := map[string]bool{}
	for range 20 {
		addr, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		if host != "127.0.0.1" {
			t.Errorf("%s: not on loopback", addr)
		}
		p, _ := strconv.Atoi(port)
		if lo-lowest >= 1000 && (p < lowest || p >= lo) {
			t.Errorf("%s: outside %d–%d, below the ephemeral range", addr, lowest, lo-1)
		}
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s is not free: %v", addr, err)
			continue
		}
		lis.Close()
		seen[addr] = true
	}
	if len(seen) < 10 {
		t.Errorf("20 calls gave %d addresses; want them spread", len(seen))
	}
}

// No port is handed out twice in a process, though each is closed again
// at once: a test names its servers' addresses before they listen.
func TestAddrNeverTwice(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		addr, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
	}
}

// A port that is taken is not handed out.
func TestAddrSkipsTaken(t *testing.T) {
	addr, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	for range 200 {
		a, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		if a == addr {
			t.Fatalf("%s handed out while a listener holds it", a)
		}
	}
}
