package memstore

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"github.com/revguard/revguard"
)

const shards = 64

// Store is an in-process [revguard.Store]. The zero value is not usable; call
// [New].
type Store struct {
	seed   maphash.Seed
	now    func() time.Time
	epoch  time.Time
	shards [shards]shard
}

type shard struct {
	mu sync.Mutex
	m  map[id]*entry // pointers: a claim and its commit change an entry in place, without a map write
	_  [40]byte      // keeps neighbouring shards' locks off one cache line
}

type id struct{ ns, key string }

type entry struct {
	applied revguard.Revision
	exists  bool
	last    revguard.Token // the token that recorded applied
	payload []byte         // stored with applied by CommitPayload; nil when none

	claimed bool
	rev     revguard.Revision
	token   revguard.Token
	until   time.Duration // since epoch
}

var (
	_ revguard.Store     = (*Store)(nil)
	_ revguard.InProcess = (*Store)(nil)
)

// held is the end of a claim made with Lease 0: it never runs out.
const held = time.Duration(math.MaxInt64)

// InProcess reports true: a claim here cannot outlive the guard that holds
// it, so the guard claims with Lease 0 and keeps no lease.
func (s *Store) InProcess() bool { return true }

// Option configures a [Store].
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

// New returns an empty [Store].
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
		s.shards[i].m = make(map[id]*entry)
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

// live reports whether a claim lasting until until still holds. The clock
// is read only for claims that can run out: on this machine a clock read
// costs as much as the rest of a drop.
func (s *Store) live(until time.Duration) bool {
	return until == held || until > s.clock()
}

func (s *Store) shard(key string) *shard {
	return &s.shards[maphash.String(s.seed, key)%shards]
}

// Claim implements [revguard.Store.Claim].
func (s *Store) Claim(ctx context.Context, req revguard.Request) (revguard.Reply, error) {
	if err := ctx.Err(); err != nil {
		return revguard.Reply{}, err
	}
	sh := s.shard(req.Key)
	k := id{req.Namespace, req.Key}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[k]; e != nil {
		return s.claim(&req, e), nil
	}
	// An entity met for the first time is stored only if the claim is
	// granted: a refusal (a gap, a revision below the first) adds nothing.
	var fresh entry
	res := s.claim(&req, &fresh)
	if res.Verdict == revguard.Granted {
		e := new(entry)
		*e = fresh
		sh.m[k] = e
	}
	return res, nil
}

// claim decides req on e and, when it is granted, changes e.
func (s *Store) claim(req *revguard.Request, e *entry) revguard.Reply {
	st := revguard.State{Applied: e.applied, Exists: e.exists}
	var by *revguard.Token
	if e.exists {
		by = &e.last
	}
	var inForce *revguard.ClaimState
	if e.claimed && s.live(e.until) {
		inForce = &revguard.ClaimState{Rev: e.rev, Token: e.token}
	}
	v, change := req.DecideClaim(st, by, inForce)
	if change {
		switch {
		case req.Advance:
			e.applied, e.exists, e.last, e.claimed, e.payload = req.Rev, true, req.Token, false, nil
		case req.Lease == 0:
			e.claimed, e.rev, e.token, e.until = true, req.Rev, req.Token, held
		default:
			e.claimed, e.rev, e.token, e.until = true, req.Rev, req.Token, s.clock()+req.Lease
		}
	}
	return revguard.Reply{Verdict: v, State: st}
}

// ClaimBatch implements [revguard.Store.ClaimBatch].
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

// Renew implements [revguard.Store.Renew].
func (s *Store) Renew(ctx context.Context, ns, key string, token revguard.Token, lease time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shard(key)
	k := id{ns, key}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[k]
	if e == nil || !e.claimed || e.token != token || !s.live(e.until) {
		return fmt.Errorf("%w: %q holds no claim by this token", revguard.ErrLeaseLost, key)
	}
	if e.until != held {
		e.until = s.clock() + lease
	}
	return nil
}

// Commit implements [revguard.Store.Commit].
func (s *Store) Commit(ctx context.Context, ns, key string, token revguard.Token) error {
	return s.commit(ctx, ns, key, token, nil)
}

// commit records the claim of token on (ns, key) with payload (nil: none).
func (s *Store) commit(ctx context.Context, ns, key string, token revguard.Token, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shard(key)
	k := id{ns, key}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[k]
	if e == nil {
		return fmt.Errorf("%w: %q holds no claim by this token", revguard.ErrLeaseLost, key)
	}
	// The live claim comes first: a token that recorded the applied
	// revision and claims again must get its new claim committed.
	if e.claimed && e.token == token && s.live(e.until) {
		e.applied, e.exists, e.last, e.claimed, e.payload = e.rev, true, token, false, payload
		return nil
	}
	if e.exists && e.last == token {
		return nil
	}
	return fmt.Errorf("%w: %q holds no claim by this token", revguard.ErrLeaseLost, key)
}

// CommitBatch implements [revguard.Store.CommitBatch].
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

// Release implements [revguard.Store.Release].
func (s *Store) Release(ctx context.Context, ns, key string, token revguard.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shard(key)
	k := id{ns, key}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[k]
	if e == nil || !e.claimed || e.token != token {
		return nil
	}
	if !e.exists {
		delete(sh.m, k)
		return nil
	}
	e.claimed = false
	return nil
}

// Peek implements [revguard.Store.Peek].
func (s *Store) Peek(ctx context.Context, ns, key string) (revguard.State, error) {
	if err := ctx.Err(); err != nil {
		return revguard.State{}, err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[id{ns, key}]
	if e == nil {
		return revguard.State{}, nil
	}
	return revguard.State{Applied: e.applied, Exists: e.exists}, nil
}

// Set implements [revguard.Store.Set].
func (s *Store) Set(ctx context.Context, ns, key string, rev revguard.Revision) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	sh.m[id{ns, key}] = &entry{applied: rev, exists: true}
	sh.mu.Unlock()
	return nil
}

// Forget implements [revguard.Store.Forget].
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
