package projections

import (
	"container/list"

	"github.com/dop251/goja"
)

// partState is the state of one partition as a runner holds it.
type partState struct {
	key string
	// value is the live JavaScript state; nil until first needed, when it
	// is parsed from json.
	value goja.Value
	// json is the state as of the last event processed (or as loaded),
	// serialized; nil is a null state.
	json []byte
	// dirty: changed since the last checkpoint.
	dirty bool
	// fresh: never initialised; $init (and $created) run on its first
	// event.
	fresh bool
}

// partCache keeps the most recently used partitions' states; a runner
// keeps the states of the others in the store.
type partCache struct {
	max int
	ll  *list.List
	m   map[string]*list.Element
}

func newPartCache(max int) *partCache {
	return &partCache{max: max, ll: list.New(), m: map[string]*list.Element{}}
}

func (c *partCache) get(key string) *partState {
	if e, ok := c.m[key]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*partState)
	}
	return nil
}

// put adds ps and returns the partition it evicted, if any.
func (c *partCache) put(ps *partState) *partState {
	c.m[ps.key] = c.ll.PushFront(ps)
	if c.ll.Len() <= c.max {
		return nil
	}
	e := c.ll.Back()
	c.ll.Remove(e)
	old := e.Value.(*partState)
	delete(c.m, old.key)
	return old
}

func (c *partCache) len() int { return c.ll.Len() }

// each calls f for every cached partition.
func (c *partCache) each(f func(*partState)) {
	for e := c.ll.Front(); e != nil; e = e.Next() {
		f(e.Value.(*partState))
	}
}
