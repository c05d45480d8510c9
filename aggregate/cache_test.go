package aggregate

import "testing"

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newCache[int](2)
	c.put("a", hydrated[int]{state: 1, version: 0})
	c.put("b", hydrated[int]{state: 2, version: 0})
	c.get("a") // b is now the least recently used
	c.put("c", hydrated[int]{state: 3, version: 0})
	if c.len() != 2 {
		t.Fatalf("cache holds %d entries, want 2", c.len())
	}
	if _, ok := c.get("b"); ok {
		t.Error("b was not evicted")
	}
	for _, id := range []string{"a", "c"} {
		if _, ok := c.get(id); !ok {
			t.Errorf("%s was evicted", id)
		}
	}
}

func TestCacheKeepsNewestVersion(t *testing.T) {
	c := newCache[int](4)
	c.put("a", hydrated[int]{state: 5, version: 5})
	c.put("a", hydrated[int]{state: 3, version: 3})
	if h, _ := c.get("a"); h.version != 5 || h.state != 5 {
		t.Errorf("an older state replaced a newer one: %+v", h)
	}
	c.remove("a")
	if _, ok := c.get("a"); ok {
		t.Error("remove left the entry")
	}
	var off *cache[int] = newCache[int](-1)
	off.put("a", hydrated[int]{})
	if _, ok := off.get("a"); ok || off.len() != 0 {
		t.Error("a disabled cache kept an entry")
	}
}
