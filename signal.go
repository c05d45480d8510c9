package cairn

import (
	"sync"
)

// signal broadcasts "new events are durable" by closing a channel.
type signal struct {
	mu     sync.Mutex
	ch     chan struct{}
	head   uint64
	seen   bool
	closed bool
}

func (g *signal) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch == nil {
		g.ch = make(chan struct{})
	}
	return g.ch
}

// close wakes every waiter, now and from now on.
func (g *signal) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.closed = true
	if g.ch == nil {
		g.ch = make(chan struct{})
	}
	close(g.ch) // and keep it: wait returns it from now on
}

func (g *signal) fire(head uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.seen || head > g.head {
		g.head, g.seen = head, true
	}
	if g.ch != nil && !g.closed {
		close(g.ch)
		g.ch = nil
	}
}

// wake wakes the waiters without a new head.
func (g *signal) wake() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch != nil && !g.closed {
		close(g.ch)
		g.ch = nil
	}
}

func (g *signal) last() (uint64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.head, g.seen
}
