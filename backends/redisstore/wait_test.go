package redisstore

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/backendtest"
)

func TestWithWaitPanics(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	assert.PanicsWithValue(t, "redisstore: WithWait(-1, 1s): replicas must not be negative (0 turns waiting off)", func() { WithWait(-1, time.Second) })
	assert.PanicsWithValue(t, "redisstore: WithWait(1, 0s): want a timeout of at least 1ms", func() { WithWait(1, 0) })
	assert.PanicsWithValue(t, "redisstore: WithWait(1, -1s): want a timeout of at least 1ms", func() { WithWait(1, -time.Second) })
	assert.PanicsWithValue(t, "redisstore: WithWait(2, 1µs): want a timeout of at least 1ms", func() { WithWait(2, time.Microsecond) })
	assert.PanicsWithValue(t, "redisstore: WithWaitAOF(2, 0, 1s): local must be 0 or 1 (the master's own fsync)", func() { WithWaitAOF(2, 0, time.Second) })
	assert.PanicsWithValue(t, "redisstore: WithWaitAOF(0, -1, 1s): replicas must not be negative", func() { WithWaitAOF(0, -1, time.Second) })
	assert.PanicsWithValue(t, "redisstore: WithWaitAOF(1, 0, 0s): want a timeout of at least 1ms", func() { WithWaitAOF(1, 0, 0) })
	assert.PanicsWithValue(t, "redisstore: New: WithWait and WithWaitAOF together (WithWaitAOF's replicas already wait for the replicas)",
		func() { New(c, WithWait(1, time.Second), WithWaitAOF(1, 0, time.Second)) })
	// A client type whose master for a key the store cannot find.
	type wrapped struct{ *redis.Client }
	assert.PanicsWithValue(t, "redisstore: New: WithWait(1, 1s) needs a *redis.Client, *redis.ClusterClient or *redis.Ring, to send WAIT to the master that took each write; not a redisstore.wrapped",
		func() { New(wrapped{c}, WithWait(1, time.Second)) })

	assert.False(t, New(c, WithWait(0, 0)).wait.on(), "replicas 0 turns waiting off")
	assert.False(t, New(wrapped{c}, WithWait(0, 0), WithWaitAOF(0, 0, 0)).wait.on())
	assert.Equal(t, 2*time.Millisecond, New(c, WithWait(1, 1500*time.Microsecond)).wait.timeout, "WAIT takes whole milliseconds: rounded up")
}

// replicated reads, on the replica itself, the applied revision of the
// entity (ns, key) of s; "" when the replica has none.
func replicated(t *testing.T, replica *redis.Client, s *Store, ns, key string) string {
	t.Helper()
	name, _ := s.name(ns, key)
	v, err := replica.HGet(context.Background(), name, "rev").Result()
	if err == redis.Nil {
		return ""
	}
	require.NoError(t, err)
	return v
}

// With WithWait(1, ...), every write that records a revision returns only
// once the replica has it. Each write below runs while the replica is
// frozen: it must not return until the replica is let go, and then the
// revision is on the replica, read there at once.
func TestWithWaitReplicated(t *testing.T) {
	master, replica := startReplicated(t)
	rc := replica.client()
	s := testStore(t, master.client(), WithWait(1, 5*time.Second))
	ctx := t.Context()
	require.NoError(t, s.Preflight(ctx))
	waited := func(what string, write func() error) {
		t.Helper()
		replica.freeze()
		done := make(chan error, 1)
		go func() { done <- write() }()
		select {
		case err := <-done:
			replica.thaw()
			t.Fatalf("%s returned before the replica had it: %v", what, err)
		case <-time.After(150 * time.Millisecond):
		}
		replica.thaw()
		require.NoError(t, <-done, what)
	}

	res, err := s.Claim(ctx, req("committed", 5, tok(1)))
	require.NoError(t, err)
	require.Equal(t, revguard.Granted, res.Verdict)
	waited("Commit", func() error { return s.Commit(ctx, "", "committed", tok(1)) })
	assert.Equal(t, "5", replicated(t, rc, s, "", "committed"))

	waited("advance", func() error {
		res, err := s.Claim(ctx, adv("advanced", 7, tok(2)))
		if err == nil && res.Verdict != revguard.Granted {
			err = fmt.Errorf("verdict %s", res.Verdict)
		}
		return err
	})
	assert.Equal(t, "7", replicated(t, rc, s, "", "advanced"))

	reqs := []revguard.Request{req("b1", 1, tok(3)), req("b2", 2, tok(3)), req("b3", 3, tok(3))}
	replies, err := s.ClaimBatch(ctx, reqs)
	require.NoError(t, err)
	var commits []revguard.Commit
	for i, r := range replies {
		require.Equal(t, revguard.Granted, r.Verdict)
		commits = append(commits, revguard.Commit{Key: reqs[i].Key, Token: tok(3)})
	}
	waited("CommitBatch", func() error {
		errs, err := s.CommitBatch(ctx, commits)
		for _, e := range errs {
			err = cmp.Or(err, e)
		}
		return err
	})
	for _, r := range reqs {
		assert.Equal(t, r.Rev.String(), replicated(t, rc, s, "", r.Key))
	}

	waited("ClaimBatch advancing", func() error {
		_, err := s.ClaimBatch(ctx, []revguard.Request{adv("a1", 10, tok(4)), adv("a2", 20, tok(4))})
		return err
	})
	assert.Equal(t, "10", replicated(t, rc, s, "", "a1"))
	assert.Equal(t, "20", replicated(t, rc, s, "", "a2"))

	_, err = s.Claim(ctx, req("paid", 1, tok(5)))
	require.NoError(t, err)
	waited("CommitPayload", func() error { return s.CommitPayload(ctx, "", "paid", tok(5), []byte("reply")) })
	assert.Equal(t, "1", replicated(t, rc, s, "", "paid"))

	waited("Set", func() error { return s.Set(ctx, "", "committed", 3) })
	assert.Equal(t, "3", replicated(t, rc, s, "", "committed"))
	waited("Forget", func() error { return s.Forget(ctx, "", "committed") })
	assert.Equal(t, "", replicated(t, rc, s, "", "committed"))

	// Drops are confirmed too, and answer as without the option.
	waited("Claim of a duplicate", func() error {
		res, err := s.Claim(ctx, req("advanced", 7, tok(6)))
		if err == nil && res.Verdict != revguard.Dup {
			err = fmt.Errorf("verdict %s", res.Verdict)
		}
		return err
	})
	waited("Claim of a stale revision", func() error {
		res, err := s.Claim(ctx, req("advanced", 6, tok(6)))
		if err == nil && res.Verdict != revguard.Old {
			err = fmt.Errorf("verdict %s", res.Verdict)
		}
		return err
	})
	// A claim is not waited for.
	replica.freeze()
	res, err = s.Claim(ctx, req("claimed", 1, tok(7)))
	replica.thaw()
	require.NoError(t, err)
	assert.Equal(t, revguard.Granted, res.Verdict)

	// The touch that makes WAIT count leaves the entity as it was, and
	// leaves no key behind.
	name, _ := s.name("", "advanced")
	fields, err := master.client().HGetAll(ctx, name).Result()
	require.NoError(t, err)
	assert.NotContains(t, fields, "touch")
	ttl, err := master.client().PTTL(ctx, name).Result()
	require.NoError(t, err)
	assert.Equal(t, time.Duration(-1), ttl, "no expiry added")
	gone, _ := s.name("", "committed") // forgotten above, and touched after
	n, err := master.client().Exists(ctx, gone).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}

// With the replica frozen (SIGSTOP) or gone, a write is made on the master
// but not confirmed: it fails with ErrNotReplicated after the timeout, and
// so does an answer that would drop a redelivery on the strength of it,
// until the replica has it. Through a guard, no delivery is acknowledged
// until then, and the handler runs once.
func TestWithWaitNotReplicated(t *testing.T) {
	const timeout = 300 * time.Millisecond
	master, replica := startReplicated(t)
	mc := master.client()
	s := testStore(t, mc, WithWait(1, timeout))
	ctx := t.Context()
	_, err := s.Claim(ctx, req("k", 1, tok(1)))
	require.NoError(t, err)
	_, err = s.ClaimBatch(ctx, []revguard.Request{req("b1", 1, tok(1)), req("b2", 1, tok(1))})
	require.NoError(t, err)

	replica.freeze()
	frozen := true
	defer func() {
		if frozen {
			replica.thaw()
		}
	}()
	notReplicated := func(what string, err error, start time.Time) {
		t.Helper()
		took := time.Since(start)
		require.ErrorIs(t, err, ErrNotReplicated, what)
		assert.Contains(t, err.Error(), "0 of 1 replicas acknowledged the write within 300ms", what)
		assert.GreaterOrEqual(t, took, timeout, "%s: WAIT waits for its timeout", what)
		assert.Less(t, took, 3*time.Second, what)
	}

	start := time.Now()
	notReplicated("Commit", s.Commit(ctx, "", "k", tok(1)), start)
	st, err := s.Peek(ctx, "", "k")
	require.NoError(t, err)
	assert.Equal(t, revguard.State{Applied: 1, Exists: true}, st, "the commit was made on the master")
	// A retried commit finds its work done and confirms it again.
	start = time.Now()
	notReplicated("Commit again", s.Commit(ctx, "", "k", tok(1)), start)

	start = time.Now()
	_, err = s.Claim(ctx, adv("a", 1, tok(2)))
	notReplicated("advance", err, start)
	start = time.Now()
	_, err = s.CommitBatch(ctx, []revguard.Commit{{Key: "b1", Token: tok(1)}, {Key: "b2", Token: tok(1)}})
	notReplicated("CommitBatch", err, start)
	start = time.Now()
	notReplicated("Set", s.Set(ctx, "", "set", 4), start)

	// A redelivery of what the master has but the replica lacks.
	start = time.Now()
	_, err = s.Claim(ctx, req("k", 1, tok(3)))
	notReplicated("Claim of a duplicate", err, start)
	start = time.Now()
	_, err = s.ClaimBatch(ctx, []revguard.Request{req("k", 0, tok(3)), req("fresh", 1, tok(3))})
	notReplicated("ClaimBatch with a stale request", err, start)

	// A claim is not waited for.
	start = time.Now()
	res, err := s.Claim(ctx, req("claim only", 1, tok(4)))
	require.NoError(t, err)
	assert.Equal(t, revguard.Granted, res.Verdict)
	assert.Less(t, time.Since(start), timeout)

	// Through a guard.
	var runs atomic.Int32
	g := revguard.New(s, func(rev revguard.Revision) (string, revguard.Revision, error) { return "guarded", rev, nil },
		revguard.WithLease(200*time.Millisecond))
	h := func(context.Context, revguard.Revision) error { runs.Add(1); return nil }
	out, err := g.Handle(ctx, 1, h)
	require.ErrorIs(t, err, ErrNotReplicated, "the delivery is not acknowledged")
	assert.Zero(t, out)
	assert.Equal(t, int32(1), runs.Load())
	out, err = g.Handle(ctx, 1, h)
	require.ErrorIs(t, err, ErrNotReplicated, "nor is its redelivery")
	assert.Zero(t, out)
	assert.Equal(t, int32(1), runs.Load(), "the handler does not run again")

	replica.thaw()
	frozen = false
	caughtUp(t, master)
	// Once the replica has caught up, the redelivery is dropped and
	// acknowledged.
	out, err = g.Handle(ctx, 1, h)
	require.NoError(t, err)
	assert.Equal(t, revguard.Duplicate, out)
	assert.Equal(t, int32(1), runs.Load())
	rc := replica.client()
	assert.Equal(t, "1", replicated(t, rc, s, "", "guarded"))
	require.NoError(t, s.Commit(ctx, "", "k", tok(1)))

	// A replica gone: WAIT counts no replica.
	replica.stop()
	_, err = s.Claim(ctx, req("k2", 1, tok(5)))
	require.NoError(t, err)
	start = time.Now()
	notReplicated("Commit, replica gone", s.Commit(ctx, "", "k2", tok(5)), start)
	err = s.Preflight(ctx)
	require.ErrorIs(t, err, ErrNotReplicated)
	assert.Contains(t, err.Error(), "0 replicas are online, and WithWait(1, 300ms) waits for 1")
}

// Preflight reports a master with fewer replicas than WithWait waits for:
// every write would fail.
func TestWithWaitPreflight(t *testing.T) {
	master, _ := startReplicated(t)
	c := master.client()
	ctx := t.Context()
	require.NoError(t, New(c, WithWait(1, time.Second)).Preflight(ctx))
	err := New(c, WithWait(2, time.Second)).Preflight(ctx)
	require.ErrorIs(t, err, ErrNotReplicated)
	assert.NotErrorIs(t, err, ErrUnsafeConfig)
	assert.Contains(t, err.Error(), "1 replicas are online, and WithWait(2, 1s) waits for 2: every write would fail")
}

// miniredis answers WAIT with 0 at once, having no replicas: a store made
// WithWait fails every write there, promptly.
func TestWithWaitMiniredis(t *testing.T) {
	s := New(miniClient(t, miniredis.RunT(t)), WithWait(1, time.Second))
	ctx := t.Context()
	_, err := s.Claim(ctx, req("k", 1, tok(1)))
	require.NoError(t, err)
	start := time.Now()
	err = s.Commit(ctx, "", "k", tok(1))
	require.ErrorIs(t, err, ErrNotReplicated)
	assert.Less(t, time.Since(start), time.Second)
}

// Redis 7.0, the server here, has no WAITAOF: a write made WithWaitAOF is
// made and then fails with ErrNoWaitAOF (not "unknown command"), and
// Preflight says so with the server's version.
func TestWithWaitAOFUnsupported(t *testing.T) {
	srv := startRedis(t, "--appendonly", "yes")
	c := srv.client()
	ctx := t.Context()
	info, err := c.Info(ctx, "server").Result()
	require.NoError(t, err)
	version, _ := infoField(info, "redis_version")
	if atLeast(version, 7, 2) {
		t.Skipf("redis-server %s has WAITAOF; this test is about servers without it", version)
	}
	s := testStore(t, c, WithWaitAOF(1, 0, time.Second))

	err = s.Preflight(ctx)
	require.ErrorIs(t, err, ErrNoWaitAOF)
	assert.Contains(t, err.Error(), fmt.Sprintf("the server is Redis %s, and WithWaitAOF(1, 0, 1s) would fail every write", version))

	_, err = s.Claim(ctx, req("k", 1, tok(1)))
	require.NoError(t, err)
	err = s.Commit(ctx, "", "k", tok(1))
	require.ErrorIs(t, err, ErrNoWaitAOF)
	assert.NotErrorIs(t, err, ErrNotReplicated)
	assert.Contains(t, err.Error(), "the write was made")
	st, err := s.Peek(ctx, "", "k")
	require.NoError(t, err)
	assert.Equal(t, revguard.State{Applied: 1, Exists: true}, st)
	_, err = s.Claim(ctx, adv("a", 1, tok(2)))
	require.ErrorIs(t, err, ErrNoWaitAOF)
	assert.False(t, strings.HasPrefix(err.Error(), "ERR"))
}

// The store keeps its contract with WithWait: the conformance suite, on a
// master whose replica confirms every write.
func TestWithWaitConformance(t *testing.T) {
	master, _ := startReplicated(t)
	s := testStore(t, master.client(), WithWait(1, 5*time.Second))
	backendtest.Run(t, func(t *testing.T) revguard.Store { return s }, backendtest.Features{})
}

// Through a Ring, WAIT goes to the shard that holds the key.
func TestWithWaitRing(t *testing.T) {
	master, replica := startReplicated(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": master.addr}})
	t.Cleanup(func() { _ = ring.Close() })
	// A timeout that a replica on a loaded machine still meets, since the
	// first write must be confirmed; the frozen one misses it all the same.
	s := testStore(t, ring, WithWait(1, 2*time.Second))
	ctx := t.Context()
	_, err := s.Claim(ctx, adv("k", 1, tok(1)))
	require.NoError(t, err)
	assert.Equal(t, "1", replicated(t, replica.client(), s, "", "k"))
	replica.freeze()
	defer replica.thaw()
	_, err = s.Claim(ctx, adv("k", 2, tok(2)))
	require.ErrorIs(t, err, ErrNotReplicated)
}
