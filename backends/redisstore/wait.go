package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated is returned, wrapped with what was confirmed, by a write
// of a store made [WithWait] (or [WithWaitAOF]) when fewer replicas (or fsyncs)
// than it asks confirmed the write in time. The write was made on the
// master, and stays there: the caller does not acknowledge the event, and
// its redelivery answers Duplicate once the replicas have the write (or, if
// a failover lost it, applies again), so no event is lost.
var ErrNotReplicated = errors.New("redisstore: write not confirmed by enough replicas in time")

// ErrNoWaitAOF is returned, wrapped with the server's version or reply, by
// a write of a store made [WithWaitAOF], and by its [Store.Preflight], when the
// server has no WAITAOF (Redis before 7.2). The write was made; it was not
// confirmed.
var ErrNoWaitAOF = errors.New("redisstore: WithWaitAOF needs WAITAOF, which Redis has from 7.2 on")

// durability is what WithWait or WithWaitAOF asks of each write.
type durability struct {
	aof      bool // WAITAOF local replicas timeout, instead of WAIT replicas timeout
	local    int  // WAITAOF: 1 to wait for the master's own fsync
	replicas int
	timeout  time.Duration // whole milliseconds, at least one
}

func (d durability) on() bool { return d.local+d.replicas > 0 }

func (d durability) String() string {
	if d.aof {
		return fmt.Sprintf("WithWaitAOF(%d, %d, %s)", d.local, d.replicas, d.timeout)
	}
	return fmt.Sprintf("WithWait(%d, %s)", d.replicas, d.timeout)
}

// WithWait makes every write that records a revision wait until replicas
// replicas have it, for at most timeout: [Store.Commit], [Store.CommitBatch]
// and [Store.CommitPayload]; [Store.Claim] and [Store.ClaimBatch] with
// Advance (AtMostOnce); [Store.Set] and [Store.Forget]. It sends Redis's WAIT
// on the connection that made the write, in the same round trip. A write that
// fewer replicas confirm in time returns an error wrapping
// [ErrNotReplicated], so that the consumer does not acknowledge an event a
// failover could undo (replication is asynchronous: a master that dies before
// its replicas have a write takes it along, and the event whose commit it was
// applies again when redelivered).
//
// An answer that drops an event (Duplicate or Stale, from any Claim) rests
// on a revision an earlier write recorded, perhaps one that failed so: the
// store confirms it the same way before answering, in a second round trip
// that only drops pay. A claim that is not an advance is not waited for,
// nor is [Store.Renew]: a failover that loses a claim lets a redelivery claim
// the revision and run the handler while the first holder still runs it; the
// first one's renewal or commit then fails with ErrLeaseLost, so that only
// one of them records the revision, but both handlers ran. Waiting for every
// claim would add a second wait to every decision to close that window.
//
// In AtMostOnce mode an advance that is not confirmed does not run its
// handler, and its redelivery answers Duplicate once the replicas have it:
// the event is dropped, as that mode allows.
//
// WAIT confirms that the replicas received the write, not that anything
// reached a disk ([WithWaitAOF] does), and a guard retries a commit that
// failed so while its lease holds. The store needs a master that has the
// replicas: [Store.Preflight] checks each master's connected replicas. Against
// miniredis, whose WAIT answers 0 at once, every such write fails.
// replicas 0 turns waiting off, the default. It panics if replicas is
// negative, or timeout is under a millisecond when replicas is not 0 (WAIT
// with no timeout would wait for ever). [New] panics if the client is not a
// *redis.Client, *redis.ClusterClient or *redis.Ring: the store must find
// the master that took each write.
func WithWait(replicas int, timeout time.Duration) Option {
	if replicas < 0 {
		panic(fmt.Sprintf("redisstore: WithWait(%d, %s): replicas must not be negative (0 turns waiting off)", replicas, timeout))
	}
	if replicas > 0 && timeout < time.Millisecond {
		panic(fmt.Sprintf("redisstore: WithWait(%d, %s): want a timeout of at least 1ms", replicas, timeout))
	}
	d := durability{replicas: replicas, timeout: time.Duration(millis(timeout)) * time.Millisecond}
	return func(s *Store) { s.setWait(d) }
}

// WithWaitAOF is [WithWait] with Redis 7.2's WAITAOF: every write that
// records a revision waits until it is fsynced to the master's append-only
// file (local 1) and to those of replicas replicas, for at most timeout,
// and returns an error wrapping [ErrNotReplicated] when fewer confirm in
// time. It needs appendonly yes on every server it counts. On a server
// without WAITAOF (before 7.2) each such write returns an error wrapping
// [ErrNoWaitAOF], and so does [Store.Preflight]. local 0 and replicas 0 turn
// waiting off, the default. It panics if local is not 0 or 1, replicas is
// negative, or timeout is under a millisecond when waiting is on; [New]
// panics if WithWait is given too.
func WithWaitAOF(local, replicas int, timeout time.Duration) Option {
	if local != 0 && local != 1 {
		panic(fmt.Sprintf("redisstore: WithWaitAOF(%d, %d, %s): local must be 0 or 1 (the master's own fsync)", local, replicas, timeout))
	}
	if replicas < 0 {
		panic(fmt.Sprintf("redisstore: WithWaitAOF(%d, %d, %s): replicas must not be negative", local, replicas, timeout))
	}
	if local+replicas > 0 && timeout < time.Millisecond {
		panic(fmt.Sprintf("redisstore: WithWaitAOF(%d, %d, %s): want a timeout of at least 1ms", local, replicas, timeout))
	}
	d := durability{aof: true, local: local, replicas: replicas, timeout: time.Duration(millis(timeout)) * time.Millisecond}
	return func(s *Store) { s.setWait(d) }
}

// setWait applies WithWait or WithWaitAOF; New refuses both turned on.
func (s *Store) setWait(d durability) {
	if !d.on() {
		return
	}
	s.wait = d
	s.waitOptions++
}

// WAIT counts what the replicas acknowledged up to the offset of the last
// command on its connection (Redis 7.0) or of the last one there that was
// replicated (7.2 on). A write that found its work done (a retried commit,
// an advance sent again, an answer Duplicate) replicates nothing, and its
// connection, taken from the pool, may have last written long ago: WAIT
// would confirm at once what no replica has. touch.lua replicates a write
// that changes nothing in the same slot, so that WAIT, right after it,
// counts everything the master held when the call ran.

// durably runs sc for every call, then touch.lua and WAIT (or WAITAOF),
// in one pipeline per master: the calls of a single server in one round
// trip, those of a cluster's masters in parallel. It fails with
// ErrNotReplicated if a master's WAIT comes short, after every call's reply
// is in place.
func (s *Store) durably(ctx context.Context, sc script, calls []*call) error {
	_, err := within(s, ctx, func() (struct{}, error) { return struct{}{}, s.waitAll(ctx, sc, calls) })
	if err != nil && err == ctx.Err() { // abandoned: waitAll's own errors say what failed
		return endedError(ctx, sc.name, err)
	}
	return err
}

// confirm makes sure that the entities named, whose answers rest on what
// earlier writes recorded, are on as many replicas as WithWait asks: touch
// and WAIT on each master that holds some of them.
func (s *Store) confirm(ctx context.Context, sc script, names []string) error {
	calls := make([]*call, len(names))
	for i, name := range names {
		calls[i] = &call{keys: []string{name}}
	}
	_, err := within(s, ctx, func() (struct{}, error) { return struct{}{}, s.waitAll(ctx, script{name: sc.name}, calls) })
	if err != nil && err == ctx.Err() {
		return endedError(ctx, sc.name, err)
	}
	return err
}

// waitAll is durably's work; a script without source (confirm's) runs
// nothing before touch.lua.
func (s *Store) waitAll(ctx context.Context, sc script, calls []*call) error {
	type group struct {
		node  *redis.Client
		calls []*call
	}
	var groups []group
	for _, c := range calls {
		node, err := s.master(ctx, c.keys[0])
		if err != nil {
			return fmt.Errorf("redisstore: %s: finding the master of %s: %w", sc.name, c.keys[0], err)
		}
		i := 0
		for i < len(groups) && groups[i].node != node {
			i++
		}
		if i == len(groups) {
			groups = append(groups, group{node: node})
		}
		groups[i].calls = append(groups[i].calls, c)
	}
	if len(groups) == 1 {
		return s.waitOn(ctx, groups[0].node, sc, groups[0].calls)
	}
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.waitOn(ctx, g.node, sc, g.calls)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// master returns the client of the master that holds the Redis key name.
func (s *Store) master(ctx context.Context, name string) (*redis.Client, error) {
	switch c := s.client.(type) {
	case *redis.Client:
		return c, nil
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, name)
	case *redis.Ring:
		return c.GetShardClientForKey(name)
	}
	return nil, fmt.Errorf("redisstore: cannot tell which server of a %T holds a key", s.client)
}

// waitOn runs sc for each of calls, touch.lua on the first call's keys and
// WAIT on node, in one pipeline and so on one connection.
func (s *Store) waitOn(ctx context.Context, node *redis.Client, sc script, calls []*call) error {
	// A pipeline reads every reply within the client's ReadTimeout, WAIT's
	// included: a longer wait needs a client that waits longer for it.
	if rt := node.Options().ReadTimeout; rt > 0 && rt < s.wait.timeout+time.Second {
		node = node.WithTimeout(s.wait.timeout + time.Second)
	}
	cmds := make([]*redis.Cmd, len(calls))
	var touch, ack *redis.Cmd
	send := func(again bool) {
		_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			if sc.Script != nil {
				for i, c := range calls {
					switch {
					case !again:
						cmds[i] = sc.EvalSha(ctx, p, c.keys, c.args...)
					case noScript(cmds[i].Err()):
						cmds[i] = sc.Eval(ctx, p, c.keys, c.args...)
					}
				}
			}
			if !again {
				touch = touchScript.EvalSha(ctx, p, calls[0].keys[:1])
			} else {
				touch = touchScript.Eval(ctx, p, calls[0].keys[:1])
			}
			ms := s.wait.timeout.Milliseconds()
			if s.wait.aof {
				ack = p.Do(ctx, "WAITAOF", s.wait.local, s.wait.replicas, ms)
			} else {
				ack = p.Do(ctx, "WAIT", s.wait.replicas, ms)
			}
			return nil
		})
	}
	send(false)
	// EVALSHA fails in a pipeline, after the fact, on a server that has not
	// loaded the script yet: send those calls again with their source, and
	// touch.lua and WAIT after them.
	again := noScript(touch.Err())
	for _, cmd := range cmds {
		again = again || (cmd != nil && noScript(cmd.Err()))
	}
	if again {
		send(true)
	}
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		v, err := cmd.Result()
		if err != nil {
			return s.waitError(ctx, node, sc, calls[i].keys, err)
		}
		calls[i].reply = v
	}
	if err := touch.Err(); err != nil {
		return s.waitError(ctx, node, touchScript, calls[0].keys[:1], err)
	}
	return s.acknowledged(ctx, node, sc, ack)
}

func noScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")
}

// waitError is callError for a call sent to one master. A cluster's master
// that answers MOVED no longer holds the slot (a failover, a resharding):
// the client is told to reload the cluster's layout, which the caller's
// retry then finds.
func (s *Store) waitError(ctx context.Context, node *redis.Client, sc script, keys []string, err error) error {
	if cc, ok := s.client.(*redis.ClusterClient); ok && redis.HasErrorPrefix(err, "MOVED") {
		cc.ReloadState(ctx)
	}
	if e := endedError(ctx, sc.name, err); e != nil {
		return e
	}
	return fmt.Errorf("%w (on %s)", s.scriptError(sc, keys, err), node.Options().Addr)
}

// acknowledged reads the reply of WAIT or WAITAOF.
func (s *Store) acknowledged(ctx context.Context, node *redis.Client, sc script, ack *redis.Cmd) error {
	addr := node.Options().Addr
	if err := ack.Err(); err != nil {
		if e := endedError(ctx, sc.name, err); e != nil {
			return e
		}
		if s.wait.aof && redis.HasErrorPrefix(err, "unknown command") {
			return fmt.Errorf("%w: %s on %s: the write was made, and the server answered WAITAOF with %q", ErrNoWaitAOF, sc.name, addr, err.Error())
		}
		return fmt.Errorf("redisstore: %s on %s: the write was made, and %s failed: %w", sc.name, addr, s.wait, err)
	}
	if !s.wait.aof {
		n, ok := ack.Val().(int64)
		if !ok {
			return fmt.Errorf("redisstore: %s on %s: unexpected WAIT reply %s", sc.name, addr, describe(ack.Val()))
		}
		if n < int64(s.wait.replicas) {
			return fmt.Errorf("%w: %s on %s: %d of %d replicas acknowledged the write within %s (it was made on the master, which a failover to a replica that lacks it would undo)",
				ErrNotReplicated, sc.name, addr, n, s.wait.replicas, s.wait.timeout)
		}
		return nil
	}
	v, ok := ack.Val().([]any)
	var local, replicas int64
	if ok && len(v) == 2 {
		local, ok = v[0].(int64)
		if ok {
			replicas, ok = v[1].(int64)
		}
	}
	if !ok || len(v) != 2 {
		return fmt.Errorf("redisstore: %s on %s: unexpected WAITAOF reply %s", sc.name, addr, describe(ack.Val()))
	}
	if local < int64(s.wait.local) || replicas < int64(s.wait.replicas) {
		return fmt.Errorf("%w: %s on %s: %d of %d local and %d of %d replica fsyncs confirmed the write within %s (it was made on the master)",
			ErrNotReplicated, sc.name, addr, local, s.wait.local, replicas, s.wait.replicas, s.wait.timeout)
	}
	return nil
}
