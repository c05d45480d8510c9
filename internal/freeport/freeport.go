// Package freeport finds loopback addresses that are free for a server a
// test starts later: another process, or an embedded server that a test's
// setup names before it listens.
//
// A port from the kernel's ephemeral range, the one that listening on
// port 0 hands out, may be taken again between the moment it is found free
// and the moment the server binds it: any outgoing connection may get it as
// its source port, and a node that dials a peer's port before the peer
// listens may connect to itself (TCP's simultaneous open) and hold it. So
// Addr looks below that range, where the kernel hands nothing out on its
// own, and falls back to port 0 only where the range is unknown or leaves
// no room.
//
// Nor does Addr hand out the same port twice in a process: a test that
// names the addresses of several servers before any of them listens (a
// cluster's nodes, their HTTP and NATS ports) would otherwise get the same
// free port for two of them once in a few hundred clusters, and the second
// server to start would fail to bind it.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
)

// given holds the ports Addr handed out in this process.
var given struct {
	sync.Mutex
	ports map[int]bool
}

// take records port as handed out, and reports whether it was not before.
func take(port int) bool {
	given.Lock()
	defer given.Unlock()
	if given.ports[port] {
		return false
	}
	if given.ports == nil {
		given.ports = map[int]bool{}
	}
	given.ports[port] = true
	return true
}

// lowest is the lowest port Addr takes: above the ports that system
// services commonly use.
const lowest = 10000

// Addr is a loopback address ("127.0.0.1:port") on which nothing listens.
func Addr() (string, error) {
	if lo := ephemeralLow(); lo-lowest >= 1000 {
		for range 100 {
			port := lowest + rand.IntN(lo-lowest)
			if !take(port) {
				continue
			}
			lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				continue
			}
			addr := lis.Addr().String()
			lis.Close()
			return addr, nil
		}
	}
	for range 100 {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("freeport: %w", err)
		}
		addr := lis.Addr().(*net.TCPAddr)
		lis.Close()
		if take(addr.Port) {
			return addr.String(), nil
		}
	}
	return "", fmt.Errorf("freeport: no port free that was not handed out before")
}

// ephemeralLow is the lowest port of the kernel's ephemeral range, or 0
// where the kernel does not say.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		return 0
	}
	return lo
}
