package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/internal/text"
)

// ErrCorrupt is returned, wrapped with the key's name, when a key in the
// store's key space holds something revguard did not write: another type
// than a hash (someone SET a string there) or a field that does not parse.
// Nothing is written then; an operator repairs the key with [Store.Set] or
// [Store.Forget], or deletes it.
var ErrCorrupt = errors.New("redisstore: key holds data revguard did not write")

// Store is a [revguard.Store] that keeps each entity in one Redis hash. It is
// safe for concurrent use, and any number of stores in any number of
// processes may share one Redis deployment.
type Store struct {
	client redis.UniversalClient
	prefix string
	ttl    time.Duration
	ttlArg any // ttl in milliseconds as the scripts take it, "0" for none; boxed once, not per call
	group  grouping

	wait        durability // WithWait, WithWaitAOF
	waitOptions int        // how many of them turned waiting on

	clientDeadlines bool // the client has ContextTimeoutEnabled (deadline.go)
}

var (
	_ revguard.Store    = (*Store)(nil)
	_ revguard.Expiring = (*Store)(nil)
)

// grouping says which requests of a batch may share one script call.
type grouping uint8

const (
	groupAll  grouping = iota // one server: any keys
	groupSlot                 // Redis Cluster: keys of one hash slot
	groupNone                 // a client whose sharding is unknown: one key per call
)

// Option configures a [Store].
type Option func(*Store)

// DefaultPrefix is the prefix of every key the store writes unless
// [WithPrefix] says otherwise.
const DefaultPrefix = "revguard:"

// WithPrefix makes every key the store writes start with p, so that
// several applications can share a database. The default is "revguard:". It
// panics if p contains '{' or '}': Redis Cluster would read a hash tag in
// the prefix and put every entity in one slot.
func WithPrefix(p string) Option {
	if strings.ContainsAny(p, "{}") {
		panic(fmt.Sprintf("redisstore: WithPrefix(%q): a prefix may not contain '{' or '}'", p))
	}
	return func(s *Store) { s.prefix = p }
}

// WithTTL makes an entity's key expire d after its revision was last
// recorded (by a commit, an advance or [Store.Set]), so that entities that stop
// receiving events do not stay in memory for ever.
//
// The trade-off: an expired entity has nothing applied, so it accepts any
// revision again, stale and duplicate ones included. Choose d longer than
// any redelivery or replay can lag behind. Also do not combine it with a
// volatile-* maxmemory-policy, which may evict those keys early
// ([Store.Preflight] reports it). It panics if d is less than a millisecond.
// The default is no expiry.
func WithTTL(d time.Duration) Option {
	if d < time.Millisecond {
		panic(fmt.Sprintf("redisstore: WithTTL(%s): want at least 1ms (leave the option out for no expiry)", d))
	}
	return func(s *Store) { s.ttl = d }
}

// Expires reports whether entities expire ([WithTTL]): a guard keeps no drop
// cache over such a store.
func (s *Store) Expires() bool { return s.ttl > 0 }

// New returns a store that keeps its entities in client: a *redis.Client
// (also a Sentinel failover client), a *redis.ClusterClient or a
// *redis.Ring. It does no I/O; call [Store.Preflight] to check the server's
// settings. It panics if client is nil, or if [WithWait] or [WithWaitAOF] is
// given with another client type or with the other.
//
// Every call returns when its context ends, with an error wrapping the
// context's (context.DeadlineExceeded or context.Canceled), whatever the
// client's options. go-redis on its own ignores a context's deadline
// unless the client has ContextTimeoutEnabled, and a cancellation always
// once the command is sent, so a call to a server that stopped answering
// would wait for ReadTimeout (5s by default), then retry. The store runs
// such a call on a goroutine of its own and returns when the context ends,
// leaving the call to go-redis, which ends it after ReadTimeout and drops
// its result; the connection it holds meanwhile is out of the pool. Like
// every error of the store, this one means that the call may or may not
// take effect, and a retry is safe. That costs a goroutine and a wake-up
// per call, which a lone consumer with its server on the same machine
// feels (about a third of a Handle) and many consumers, or a network, do
// not. A context that cannot end (context.Background) costs nothing; nor
// does one with a deadline on a client with ContextTimeoutEnabled, which
// ends the call at the deadline itself: there a cancellation before the
// deadline ends the call at the deadline or after ReadTimeout, whichever
// is sooner, as it does go-redis's own commands.
func New(client redis.UniversalClient, opts ...Option) *Store {
	switch c := client.(type) {
	case nil:
		panic("redisstore: New: nil client")
	case *redis.Client:
		if c == nil {
			panic("redisstore: New: nil *redis.Client")
		}
	case *redis.ClusterClient:
		if c == nil {
			panic("redisstore: New: nil *redis.ClusterClient")
		}
	case *redis.Ring:
		if c == nil {
			panic("redisstore: New: nil *redis.Ring")
		}
	}
	s := &Store{client: client, prefix: DefaultPrefix}
	for _, o := range opts {
		if o == nil {
			panic("redisstore: New: nil Option")
		}
		o(s)
	}
	if s.waitOptions > 1 {
		panic("redisstore: New: WithWait and WithWaitAOF together (WithWaitAOF's replicas already wait for the replicas)")
	}
	if s.wait.on() {
		switch client.(type) {
		case *redis.Client, *redis.ClusterClient, *redis.Ring:
		default:
			panic(fmt.Sprintf("redisstore: New: %s needs a *redis.Client, *redis.ClusterClient or *redis.Ring, to send WAIT to the master that took each write; not a %T", s.wait, client))
		}
	}
	s.ttlArg = "0"
	if s.ttl > 0 {
		s.ttlArg = strconv.FormatInt(millis(s.ttl), 10)
	}
	switch c := client.(type) {
	case *redis.Client:
		s.group = groupAll
		s.clientDeadlines = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		s.group = groupSlot
		s.clientDeadlines = c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		// A Ring shards by its own hash of the key, which a batch cannot
		// follow; neither can a client this package does not know.
		s.group = groupNone
		s.clientDeadlines = c.Options().ContextTimeoutEnabled
	default:
		s.group = groupNone
	}
	return s
}

// millis rounds d up to whole milliseconds, the scripts' unit: a lease is
// never cut short.
func millis(d time.Duration) int64 {
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	return max(ms, 1)
}

// check refuses what the key layout cannot hold, before anything is sent.
func check(ns, key string) error {
	if len(ns) > revguard.MaxNamespaceLen {
		return fmt.Errorf("%w: namespace of %d bytes, above the limit of %d", revguard.ErrInvalidKey, len(ns), revguard.MaxNamespaceLen)
	}
	return revguard.CheckKey(key)
}

// Claim implements [revguard.Store.Claim] with claim.lua.
func (s *Store) Claim(ctx context.Context, req revguard.Request) (revguard.Reply, error) {
	if err := check(req.Namespace, req.Key); err != nil {
		return revguard.Reply{}, err
	}
	if err := ctx.Err(); err != nil {
		return revguard.Reply{}, err
	}
	t := newText(3, s.nameSize(req.Namespace, req.Key)+revSize+tokenSize)
	t.name(s, req.Namespace, req.Key)
	t.uint(uint64(req.Rev))
	t.token(req.Token)
	v := t.values()
	keys := v[:1]
	args := append(paramsOf(&req).appendArgs(make([]any, 0, 7), s.ttlArg), &v[1], &v[2])
	var (
		reply any
		err   error
	)
	if s.wait.on() && req.Advance {
		reply, err = s.write(ctx, claimScript, keys, args...)
	} else {
		reply, err = s.run(ctx, claimScript, keys, args...)
	}
	if err != nil {
		return revguard.Reply{}, err
	}
	var r revguard.Reply
	if err := claimReplies(reply, keys, func(_ int, x revguard.Reply) { r = x }); err != nil {
		return revguard.Reply{}, err
	}
	if s.wait.on() && !req.Advance && dropped(r.Verdict) {
		if err := s.confirm(ctx, claimScript, keys); err != nil {
			return revguard.Reply{}, err
		}
	}
	return r, nil
}

// dropped reports whether v lets the guard acknowledge an event without
// running it: an answer that WithWait confirms.
func dropped(v revguard.Verdict) bool { return v == revguard.Dup || v == revguard.Old }

// claimParams are the values of a request that claim.lua takes once per
// call, since the requests of a batch nearly always share them: sending
// them once per entity would triple the arguments the server reads.
type claimParams struct {
	lease   int64 // milliseconds
	flags   uint8 // 1 = advance, + 2 = sequential
	first   revguard.Revision
	maxStep uint64
}

func paramsOf(r *revguard.Request) claimParams {
	p := claimParams{lease: millis(r.Lease), first: r.First, maxStep: r.MaxStep}
	if r.Advance {
		p.flags |= 1
	}
	if r.Sequential {
		p.flags |= 2
	}
	return p
}

var flagArgs = [...]any{"0", "1", "2", "3"}

// appendArgs appends ARGV[1] to ARGV[5] of claim.lua; the revision and
// token of each request follow.
func (p claimParams) appendArgs(args []any, ttl any) []any {
	return append(args, ttl, p.lease, flagArgs[p.flags], uint64(p.first), p.maxStep)
}

// claimReplies reads claim.lua's reply for keys and puts the reply for
// keys[j] with put.
func claimReplies(v any, keys []string, put func(j int, r revguard.Reply)) error {
	a, ok := v.([]any)
	if !ok || len(a) != 2*len(keys) {
		return replyError(claimScript, v)
	}
	for i := range keys {
		code, ok := a[2*i].(int64)
		if !ok {
			return replyError(claimScript, v)
		}
		var verdict revguard.Verdict
		switch code {
		case 1:
			verdict = revguard.Granted
		case 2:
			verdict = revguard.Dup
		case 3:
			verdict = revguard.Old
		case 4:
			verdict = revguard.Busy
		case 5:
			verdict = revguard.Gap
		case 6:
			verdict = revguard.TooFar
		default:
			return replyError(claimScript, v)
		}
		st, err := state(claimScript, keys[i], a[2*i+1])
		if err != nil {
			return err
		}
		put(i, revguard.Reply{Verdict: verdict, State: st})
	}
	return nil
}

// leaseError turns the answer of commit.lua or renew.lua into an error: nil
// for 1, ErrLeaseLost saying why for 2 to 4.
func leaseError(sc script, key string, code int64) error {
	switch code {
	case 1:
		return nil
	case 2:
		return fmt.Errorf("%w: %s holds no claim", revguard.ErrLeaseLost, text.Quote(key))
	case 3:
		return fmt.Errorf("%w: %s is claimed by another token", revguard.ErrLeaseLost, text.Quote(key))
	case 4:
		return fmt.Errorf("%w: the claim on %s expired", revguard.ErrLeaseLost, text.Quote(key))
	}
	return replyError(sc, code)
}

// Renew implements [revguard.Store.Renew] with renew.lua.
func (s *Store) Renew(ctx context.Context, ns, key string, token revguard.Token, lease time.Duration) error {
	if err := check(ns, key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	name, _ := s.name(ns, key)
	v, err := s.run(ctx, renewScript, []string{name}, token.String(), millis(lease), s.ttlArg)
	if err != nil {
		return err
	}
	code, err := integer(renewScript, v)
	if err != nil {
		return err
	}
	return leaseError(renewScript, key, code)
}

// Commit implements [revguard.Store.Commit] with commit.lua.
func (s *Store) Commit(ctx context.Context, ns, key string, token revguard.Token) error {
	if err := check(ns, key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t := newText(2, s.nameSize(ns, key)+tokenSize)
	t.name(s, ns, key)
	t.token(token)
	tv := t.values()
	v, err := s.write(ctx, commitScript, tv[:1], s.ttlArg, &tv[1])
	return commitAnswer(key, v, err)
}

// write is run for a script that records a revision: with WithWait it
// also waits for the replicas. When the script ran and the wait failed, it
// returns the script's reply with the error, so that an answer that
// nothing was written can stand.
func (s *Store) write(ctx context.Context, sc script, keys []string, args ...any) (any, error) {
	if !s.wait.on() {
		return s.run(ctx, sc, keys, args...)
	}
	c := &call{keys: keys, args: args}
	err := s.durably(ctx, sc, []*call{c})
	if err != nil && !errors.Is(err, ErrNotReplicated) && !errors.Is(err, ErrNoWaitAOF) {
		return nil, err // c may still be written by a call ctx abandoned
	}
	return c.reply, err
}

// commitAnswer reads commit.lua's reply for key, with or without a payload.
// A refusal stands over a failed wait (WithWait): it wrote nothing to wait
// for.
func commitAnswer(key string, v any, err error) error {
	if err != nil && v == nil {
		return err
	}
	codes, rerr := ints(commitScript, v, 1)
	if rerr != nil {
		return cmp.Or(err, rerr)
	}
	if lost := leaseError(commitScript, key, codes[0]); lost != nil {
		return lost
	}
	return err
}

// Release implements [revguard.Store.Release] with release.lua.
func (s *Store) Release(ctx context.Context, ns, key string, token revguard.Token) error {
	if err := check(ns, key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	name, _ := s.name(ns, key)
	v, err := s.run(ctx, releaseScript, []string{name}, token.String())
	if err != nil {
		return err
	}
	if n, err := integer(releaseScript, v); err != nil {
		return err
	} else if n != 0 && n != 1 {
		return replyError(releaseScript, v)
	}
	return nil
}

// Peek implements [revguard.Store.Peek] with peek.lua.
func (s *Store) Peek(ctx context.Context, ns, key string) (revguard.State, error) {
	if err := check(ns, key); err != nil {
		return revguard.State{}, err
	}
	if err := ctx.Err(); err != nil {
		return revguard.State{}, err
	}
	name, _ := s.name(ns, key)
	v, err := s.run(ctx, peekScript, []string{name})
	if err != nil {
		return revguard.State{}, err
	}
	return state(peekScript, name, v)
}

// Set implements [revguard.Store.Set] with set.lua.
func (s *Store) Set(ctx context.Context, ns, key string, rev revguard.Revision) error {
	if err := check(ns, key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	name, _ := s.name(ns, key)
	v, err := s.write(ctx, setScript, []string{name}, uint64(rev), s.ttlArg)
	if err != nil {
		return err
	}
	if n, err := integer(setScript, v); err != nil {
		return err
	} else if n != 1 {
		return replyError(setScript, v)
	}
	return nil
}

// Forget implements [revguard.Store.Forget] with forget.lua.
func (s *Store) Forget(ctx context.Context, ns, key string) error {
	if err := check(ns, key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	name, _ := s.name(ns, key)
	v, err := s.write(ctx, forgetScript, []string{name})
	if err != nil {
		return err
	}
	if n, err := integer(forgetScript, v); err != nil {
		return err
	} else if n != 1 {
		return replyError(forgetScript, v)
	}
	return nil
}
