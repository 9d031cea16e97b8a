package revguard

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// dropCache remembers, for a bounded number of entities, a revision known
// to be applied in the store, so that a duplicate or stale delivery of one of
// them is dropped without a store call. It rests on applied revisions only
// growing: a revision once seen applied stays at or below the applied one,
// so an event at or below it is a drop whatever else happened since. The two
// ways a revision falls, Set and Forget, bump the epoch when called through
// the guard, and an entry learned under an older epoch is not trusted.
//
// It never answers "apply": a miss goes to the store, which decides.
type dropCache struct {
	seed   maphash.Seed
	epoch  atomic.Uint64
	shards []cacheShard
}

// cacheShard is one lock's worth of entries, evicted by CLOCK (second
// chance): a hit only sets a bit, so reads do not reorder a list.
type cacheShard struct {
	mu    sync.Mutex
	index map[string]int32
	slots []cacheSlot
	limit int
	hand  int
	_     [40]byte // keeps two shards' locks off one cache line
}

type cacheSlot struct {
	key   string
	rev   Revision
	epoch uint64
	used  bool
}

// newDropCache returns a cache of at most size entries, or nil for size 0.
func newDropCache(size int) *dropCache {
	if size <= 0 {
		return nil
	}
	n := 1
	for n < 64 && size/(2*n) >= 64 { // shards of at least 64 entries
		n *= 2
	}
	c := &dropCache{seed: maphash.MakeSeed(), shards: make([]cacheShard, n)}
	for i := range c.shards {
		limit := size / n
		if i < size%n {
			limit++
		}
		c.shards[i] = cacheShard{index: make(map[string]int32, limit), limit: limit}
	}
	return c
}

func (c *dropCache) shard(key string) *cacheShard {
	return &c.shards[maphash.String(c.seed, key)&uint64(len(c.shards)-1)] //nolint:gosec // G115: newDropCache makes at least one shard
}

// now returns the epoch to pass to learn for what a store call started now
// will tell.
func (c *dropCache) now() uint64 {
	if c == nil {
		return 0
	}
	return c.epoch.Load()
}

// drop tells whether rev is known to be at or below key's applied revision,
// and which drop it is: Duplicate when rev is the highest revision the cache
// saw applied (a newer one applied since by another process would make the
// store say Stale), Stale when below it.
func (c *dropCache) drop(key string, rev Revision) (Outcome, Revision, bool) {
	if c == nil {
		return 0, 0, false
	}
	epoch := c.epoch.Load()
	s := c.shard(key)
	s.mu.Lock()
	i, ok := s.index[key]
	if !ok {
		s.mu.Unlock()
		return 0, 0, false
	}
	e := &s.slots[i]
	applied, fresh := e.rev, e.epoch == epoch
	e.used = fresh
	s.mu.Unlock()
	switch {
	case !fresh || rev > applied:
		return 0, 0, false
	case rev == applied:
		return Duplicate, applied, true
	}
	return Stale, applied, true
}

// learn records that rev was applied to key, as a store call that began at
// epoch said.
func (c *dropCache) learn(key string, rev Revision, epoch uint64) {
	if c == nil || c.epoch.Load() != epoch {
		return
	}
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.index[key]; ok {
		e := &s.slots[i]
		if e.epoch != epoch || rev > e.rev {
			e.rev, e.epoch = rev, epoch
		}
		e.used = true
		return
	}
	if len(s.slots) < s.limit {
		s.index[key] = int32(len(s.slots)) //nolint:gosec // G115: below s.limit; 2^31 slots in one shard would take some 80 GB
		s.slots = append(s.slots, cacheSlot{key: key, rev: rev, epoch: epoch})
		return
	}
	for s.slots[s.hand].used {
		s.slots[s.hand].used = false
		s.hand = (s.hand + 1) % len(s.slots)
	}
	e := &s.slots[s.hand]
	delete(s.index, e.key)
	*e = cacheSlot{key: key, rev: rev, epoch: epoch}
	s.index[key] = int32(s.hand) //nolint:gosec // G115: an index into s.slots, as above
	s.hand = (s.hand + 1) % len(s.slots)
}

// invalidate makes every entry untrusted. The guard calls it before and
// after a Set or Forget, so that neither an entry learned before nor a store
// answer read while the change was under way survives it.
func (c *dropCache) invalidate() {
	if c != nil {
		c.epoch.Add(1)
	}
}

// learnReply tells the drop cache what a Claim that began at epoch answered:
// an advance granted is recorded at once, whatever its handler then does.
func (g *Guard[T]) learnReply(req *Request, res Reply, epoch uint64) {
	g.learn(req.Key, res.State, req.Rev, res.Verdict == Granted && req.Advance, epoch)
}

// learn tells the drop cache what a store call that began at epoch saw:
// st.Applied was applied then, and so was rev when the call applied it.
func (g *Guard[T]) learn(key string, st State, rev Revision, applied bool, epoch uint64) {
	switch {
	case g.cache == nil:
	case applied:
		g.cache.learn(key, max(rev, st.Applied), epoch)
	case st.Exists:
		g.cache.learn(key, st.Applied, epoch)
	}
}
