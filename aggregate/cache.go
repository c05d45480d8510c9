package aggregate

import (
	"container/list"
	"sync"
)

// hydrated is an aggregate's state after the event at version (-1: no
// event, the stream does not exist). The state was folded from base: from a
// snapshot at version base, or from the initial state with base+1 the first
// event folded. It is the aggregate's state for as long as the events base+1
// … version stay readable (and a snapshot at base continues into them):
// deleting or truncating the stream past base+1 makes it stale. origin is
// the version of the first event of the history the state reflects: 0,
// unless the stream's first events had been deleted or truncated when the
// history began (a snapshot keeps the origin of the state it records).
type hydrated[S any] struct {
	state   S
	version int64
	base    int64
	origin  int64
}

// cache is a bounded least-recently-used map from aggregate id to hydrated
// state. It is safe for concurrent use: one mutex guards the map and the
// recency list, and is never held during I/O. A nil *cache caches nothing.
type cache[S any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: most recently used; values are *cacheEntry[S]
	byID  map[string]*list.Element
}

type cacheEntry[S any] struct {
	id string
	h  hydrated[S]
}

func newCache[S any](max int) *cache[S] {
	if max <= 0 {
		return nil
	}
	return &cache[S]{max: max, order: list.New(), byID: map[string]*list.Element{}}
}

func (c *cache[S]) get(id string) (hydrated[S], bool) {
	if c == nil {
		return hydrated[S]{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byID[id]
	if !ok {
		return hydrated[S]{}, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry[S]).h, true
}

// put records h for id unless the cache already holds a newer version: the
// state at a version is the same wherever it was computed, so the highest
// version wins.
func (c *cache[S]) put(id string, h hydrated[S]) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byID[id]; ok {
		e := el.Value.(*cacheEntry[S])
		if h.version > e.h.version {
			e.h = h
		}
		c.order.MoveToFront(el)
		return
	}
	c.byID[id] = c.order.PushFront(&cacheEntry[S]{id: id, h: h})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byID, last.Value.(*cacheEntry[S]).id)
	}
}

func (c *cache[S]) remove(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byID[id]; ok {
		c.order.Remove(el)
		delete(c.byID, id)
	}
}

func (c *cache[S]) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
