package revguard

import (
	"strconv"
	"testing"
)

func TestDropCacheIsBounded(t *testing.T) {
	for _, size := range []int{1, 7, 64, 1000, 4096} {
		c := newDropCache(size)
		for i := range 10 * size {
			c.learn("k"+strconv.Itoa(i), Revision(i), c.now())
		}
		if n := c.len(); n > size || n < size*9/10 {
			t.Errorf("size %d: holds %d entries", size, n)
		}
	}
	if newDropCache(0) != nil {
		t.Error("size 0 made a cache")
	}
}

// An entry in use survives a stream of one-off keys (second chance).
func TestDropCacheKeepsUsedEntries(t *testing.T) {
	c := newDropCache(64)
	c.learn("hot", 5, c.now())
	for i := range 1000 {
		if _, _, ok := c.drop("hot", 5); !ok {
			t.Fatalf("after %d other keys the used entry was evicted", i)
		}
		c.learn("cold"+strconv.Itoa(i), 1, c.now())
	}
}

func TestDropCacheEpoch(t *testing.T) {
	c := newDropCache(8)
	epoch := c.now()
	c.learn("a", 5, epoch)
	if out, _, ok := c.drop("a", 4); !ok || out != Stale {
		t.Fatalf("drop(4) = %v %v", out, ok)
	}
	c.invalidate()
	if _, _, ok := c.drop("a", 4); ok {
		t.Fatal("an entry from before invalidate was trusted")
	}
	c.learn("a", 9, epoch) // an answer read before invalidate
	if _, _, ok := c.drop("a", 4); ok {
		t.Fatal("an answer read before invalidate was learned")
	}
	c.learn("a", 3, c.now())
	if out, _, ok := c.drop("a", 3); !ok || out != Duplicate {
		t.Fatalf("drop(3) after relearning = %v %v", out, ok)
	}
	if _, _, ok := c.drop("a", 4); ok {
		t.Fatal("the old, higher revision outlived invalidate")
	}
}

// len returns the number of entries held, trusted or not.
func (c *dropCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.slots)
		s.mu.Unlock()
	}
	return n
}
