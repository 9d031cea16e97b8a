// Package memstore is the in-process revguard.Store: a sharded map, safe for
// concurrent use. It is the default for a single process and for tests; its
// state lives as long as the process, so it guards one consumer process only.
package memstore

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/revguard/revguard"
)

const shards = 64

// Store is an in-process revguard.Store. The zero value is not usable; call New.
type Store struct {
	seed   maphash.Seed
	now    func() time.Time
	epoch  time.Time
	shards [shards]shard
}

type shard struct {
	mu sync.Mutex
	m  map[id]entry
	_  [40]byte // keeps neighbouring shards' locks off one cache line
}

type id struct{ ns, key string }

type entry struct {
	applied revguard.Revision
	exists  bool
	last    revguard.Token // the token that recorded applied

	claimed bool
	rev     revguard.Revision
	token   revguard.Token
	until   time.Duration // since epoch
}

var _ revguard.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithClock makes leases expire on now instead of the system's monotonic
// clock, so tests can move time. The default is the monotonic clock.
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now == nil {
			panic("memstore: WithClock(nil)")
		}
		s.now = now
	}
}

// New returns an empty Store.
func New(opts ...Option) *Store {
	s := &Store{seed: maphash.MakeSeed()}
	for _, o := range opts {
		o(s)
	}
	if s.now == nil {
		s.epoch = time.Now()
	} else {
		s.epoch = s.now()
	}
	for i := range s.shards {
		s.shards[i].m = make(map[id]entry)
	}
	return s
}

// clock reads the monotonic clock alone unless WithClock set another: a
// full time.Now costs three times as much on some machines.
func (s *Store) clock() time.Duration {
	if s.now == nil {
		return time.Since(s.epoch)
	}
	return s.now().Sub(s.epoch)
}

func (s *Store) shard(key string) *shard {
	return &s.shards[maphash.String(s.seed, key)%shards]
}

// Claim implements revguard.Store.
func (s *Store) Claim(ctx context.Context, req revguard.Request) (revguard.Reply, error) {
	if err := ctx.Err(); err != nil {
		return revguard.Reply{}, err
	}
	sh := s.shard(req.Key)
	k := id{req.Namespace, req.Key}
	sh.mu.Lock()
	e := sh.m[k]
	res, e, changed := s.claim(&req, e)
	if changed {
		sh.m[k] = e
	}
	sh.mu.Unlock()
	return res, nil
}

func (s *Store) claim(req *revguard.Request, e entry) (revguard.Reply, entry, bool) {
	res := revguard.Reply{State: revguard.State{Applied: e.applied, Exists: e.exists}}
	if req.Advance && e.exists && e.applied == req.Rev && e.last == req.Token {
		res.Verdict = revguard.Granted
		return res, e, false
	}
	res.Verdict = req.Decide(res.State)
	if res.Verdict != revguard.Granted {
		return res, e, false
	}
	// The clock is read only past the drop path: on this machine a clock
	// read costs as much as the rest of a drop.
	var now time.Duration
	if e.claimed || !req.Advance {
		now = s.clock()
	}
	if e.claimed && e.until > now && (e.token != req.Token || e.rev != req.Rev) {
		res.Verdict = revguard.Busy
		return res, e, false
	}
	if req.Advance {
		e.applied, e.exists, e.last, e.claimed = req.Rev, true, req.Token, false
	} else {
		e.claimed, e.rev, e.token, e.until = true, req.Rev, req.Token, now+req.Lease
	}
	return res, e, true
}

// ClaimBatch implements revguard.Store.
func (s *Store) ClaimBatch(ctx context.Context, reqs []revguard.Request) ([]revguard.Reply, error) {
	out := make([]revguard.Reply, len(reqs))
	for i := range reqs {
		r, err := s.Claim(ctx, reqs[i])
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

// Renew implements revguard.Store.
func (s *Store) Renew(ctx context.Context, ns, key string, token revguard.Token, lease time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shard(key)
	k := id{ns, key}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, now := sh.m[k], s.clock()
	if !e.claimed || e.token != token || e.until <= now {
		return fmt.Errorf("%w: %q holds no claim by this token", revguard.ErrLeaseLost, key)
	}
	e.until = now + lease
	sh.m[k] = e
	return nil
}

// Commit implements revguard.Store.
func (s *Store) Commit(ctx context.Context, ns, key string, token revguard.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shard(key)
	k := id{ns, key}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[k]
	// The live claim comes first: a token that recorded the applied
	// revision and claims again must get its new claim committed.
	if e.claimed && e.token == token && e.until > s.clock() {
		e.applied, e.exists, e.last, e.claimed = e.rev, true, token, false
		sh.m[k] = e
		return nil
	}
	if e.exists && e.last == token {
		return nil
	}
	return fmt.Errorf("%w: %q holds no claim by this token", revguard.ErrLeaseLost, key)
}

// CommitBatch implements revguard.Store.
func (s *Store) CommitBatch(ctx context.Context, commits []revguard.Commit) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]error, len(commits))
	for i, c := range commits {
		out[i] = s.Commit(ctx, c.Namespace, c.Key, c.Token)
	}
	return out, nil
}

// Release implements revguard.Store.
func (s *Store) Release(ctx context.Context, ns, key string, token revguard.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shard(key)
	k := id{ns, key}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[k]
	if !ok || !e.claimed || e.token != token {
		return nil
	}
	if !e.exists {
		delete(sh.m, k)
		return nil
	}
	e.claimed = false
	sh.m[k] = e
	return nil
}

// Peek implements revguard.Store.
func (s *Store) Peek(ctx context.Context, ns, key string) (revguard.State, error) {
	if err := ctx.Err(); err != nil {
		return revguard.State{}, err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	e := sh.m[id{ns, key}]
	sh.mu.Unlock()
	return revguard.State{Applied: e.applied, Exists: e.exists}, nil
}

// Set implements revguard.Store.
func (s *Store) Set(ctx context.Context, ns, key string, rev revguard.Revision) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	sh.m[id{ns, key}] = entry{applied: rev, exists: true}
	sh.mu.Unlock()
	return nil
}

// Forget implements revguard.Store.
func (s *Store) Forget(ctx context.Context, ns, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	delete(sh.m, id{ns, key})
	sh.mu.Unlock()
	return nil
}

// Len returns the number of entities held, for tests and metrics.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
