package redisstore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
	"github.com/revguard/revguard"
)

// maxPerCall bounds the keys of one script call: Redis runs a script on its
// one thread, and a call of a few hundred keys takes well under a
// millisecond.
const maxPerCall = 256

// call is one script call of a batch: the requests it carries, by index,
// and their keys in the same order.
type call struct {
	idx   []int
	keys  []string
	p     claimParams
	args  []any
	reply any
}

// plan groups n requests into script calls: requests of one hash slot share
// a call, since a script may only touch keys of one slot on Redis Cluster,
// if they also share the call's parameters (claim.lua's claimParams; zero
// for commits). A single server is one slot group.
func (s *Store) plan(n int, name func(i int) (string, uint16, claimParams)) []*call {
	type group struct {
		slot uint16
		p    claimParams
	}
	var calls []*call
	open := make(map[group]*call) // the call still taking keys
	for i := range n {
		key, slot, p := name(i)
		if s.group == groupAll {
			slot = 0
		}
		g := group{slot, p}
		c := open[g]
		if c == nil || len(c.idx) == maxPerCall || s.group == groupNone {
			c = &call{p: p}
			if s.group == groupAll {
				// Most batches are one call: size it at once.
				m := min(n-i, maxPerCall)
				c.idx, c.keys = make([]int, 0, m), make([]string, 0, m)
			}
			calls = append(calls, c)
			open[g] = c
		}
		c.idx = append(c.idx, i)
		c.keys = append(c.keys, key)
	}
	return calls
}

// exec runs sc for every call: one call on its own, several in one pipeline,
// which a cluster client splits by node and sends to the nodes in parallel.
// It returns when ctx ends if that comes first (deadline.go).
func (s *Store) exec(ctx context.Context, sc script, calls []*call) error {
	if len(calls) == 1 {
		c := calls[0]
		var err error
		c.reply, err = s.run(ctx, sc, c.keys, c.args...)
		return err
	}
	_, err := within(s, ctx, func() (struct{}, error) { return struct{}{}, s.pipelined(ctx, sc, calls) })
	if err != nil && err == ctx.Err() { // abandoned: pipelined's own errors say what failed
		return endedError(ctx, sc.name, err)
	}
	return err
}

// pipelined runs sc for every call in one pipeline.
func (s *Store) pipelined(ctx context.Context, sc script, calls []*call) error {
	cmds := make([]*redis.Cmd, len(calls))
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = sc.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	// Script.Run cannot fall back to EVAL inside a pipeline, whose errors
	// come after the fact: send the calls the server did not know again,
	// with the source, which also loads it.
	var missing []int
	for i, cmd := range cmds {
		if err := cmd.Err(); errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT") {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range missing {
				cmds[i] = sc.Eval(ctx, p, calls[i].keys, calls[i].args...)
			}
			return nil
		})
	}
	for i, cmd := range cmds {
		v, err := cmd.Result()
		if err != nil {
			return s.callError(ctx, sc, calls[i].keys, err)
		}
		calls[i].reply = v
	}
	return nil
}

// ClaimBatch implements [revguard.Store.ClaimBatch] with claim.lua, one call
// per hash slot (one in all on a single server) and set of request parameters
// (lease, mode, ordering: one in all for a guard's batch), the calls
// pipelined.
//
// An error fails the whole batch, also when some of its calls took effect
// (on a cluster, or when requests differ in those parameters): their claims
// then expire with their leases, and their advances are recorded.
func (s *Store) ClaimBatch(ctx context.Context, reqs []revguard.Request) ([]revguard.Reply, error) {
	for i := range reqs {
		if err := check(reqs[i].Namespace, reqs[i].Key); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]revguard.Reply, len(reqs))
	if len(reqs) == 0 {
		return out, nil
	}
	// The text holds every request's key, then its revision and token.
	n, size := len(reqs), 0
	for i := range reqs {
		size += s.nameSize(reqs[i].Namespace, reqs[i].Key) + revSize + tokenSize
	}
	t := newText(3*n, size)
	slots := make([]uint16, n)
	for i := range reqs {
		slots[i] = t.name(s, reqs[i].Namespace, reqs[i].Key)
	}
	for i := range reqs {
		t.uint(uint64(reqs[i].Rev))
		t.token(reqs[i].Token)
	}
	v := t.values()
	calls := s.plan(n, func(i int) (string, uint16, claimParams) { return v[i], slots[i], paramsOf(&reqs[i]) })
	advance := false
	for _, c := range calls {
		c.args = c.p.appendArgs(make([]any, 0, 5+2*len(c.idx)), s.ttlArg)
		for _, i := range c.idx {
			c.args = append(c.args, &v[n+2*i], &v[n+2*i+1])
		}
		advance = advance || c.p.flags&1 != 0
	}
	// With WithWait, a batch that advances waits for its writes, and that
	// covers its drops too; one that only claims confirms its drops after.
	var err error
	if s.wait.on() && advance {
		err = s.durably(ctx, claimScript, calls)
	} else {
		err = s.exec(ctx, claimScript, calls)
	}
	if err != nil {
		return nil, err
	}
	var drops []string
	for _, c := range calls {
		err := claimReplies(c.reply, c.keys, func(j int, r revguard.Reply) {
			out[c.idx[j]] = r
			if s.wait.on() && !advance && dropped(r.Verdict) {
				drops = append(drops, c.keys[j])
			}
		})
		if err != nil {
			return nil, err
		}
	}
	if len(drops) > 0 {
		if err := s.confirm(ctx, claimScript, drops); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CommitBatch implements [revguard.Store.CommitBatch] with commit.lua, one
// call per hash slot (one in all on a single server), the calls pipelined.
func (s *Store) CommitBatch(ctx context.Context, commits []revguard.Commit) ([]error, error) {
	for i := range commits {
		if err := check(commits[i].Namespace, commits[i].Key); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]error, len(commits))
	if len(commits) == 0 {
		return out, nil
	}
	// The text holds every commit's key, then its token.
	n, size := len(commits), 0
	for i := range commits {
		size += s.nameSize(commits[i].Namespace, commits[i].Key) + tokenSize
	}
	t := newText(2*n, size)
	slots := make([]uint16, n)
	for i := range commits {
		slots[i] = t.name(s, commits[i].Namespace, commits[i].Key)
	}
	for i := range commits {
		t.token(commits[i].Token)
	}
	v := t.values()
	calls := s.plan(n, func(i int) (string, uint16, claimParams) { return v[i], slots[i], claimParams{} })
	for _, c := range calls {
		c.args = append(make([]any, 0, 1+len(c.idx)), s.ttlArg)
		for _, i := range c.idx {
			c.args = append(c.args, &v[n+i])
		}
	}
	var err error
	if s.wait.on() {
		err = s.durably(ctx, commitScript, calls)
	} else {
		err = s.exec(ctx, commitScript, calls)
	}
	if err != nil {
		return nil, err
	}
	for _, c := range calls {
		codes, err := ints(commitScript, c.reply, len(c.idx))
		if err != nil {
			return nil, err
		}
		for j, i := range c.idx {
			if codes[j] < 1 || codes[j] > 4 {
				return nil, replyError(commitScript, c.reply)
			}
			out[i] = leaseError(commitScript, commits[i].Key, codes[j])
		}
	}
	return out, nil
}
