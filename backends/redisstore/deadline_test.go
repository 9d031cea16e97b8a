package redisstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
)

// A consumer bounds a stuck store with its context. The server is frozen
// (SIGSTOP): connections stay open and nothing answers, so go-redis would
// wait for its ReadTimeout (5s) and retry. Every call must instead return
// soon after its context ends, with the context's error, whether or not
// the client has ContextTimeoutEnabled, and for a cancellation as well as
// a deadline; and the store must work again once the server does.
func TestDeadlineFrozenServer(t *testing.T) {
	const (
		end    = 200 * time.Millisecond // when each call's context ends
		within = time.Second            // well under ReadTimeout, and generous for a loaded machine
	)
	srv := startRedis(t)
	for _, enabled := range []bool{false, true} {
		t.Run(fmt.Sprintf("ContextTimeoutEnabled=%t", enabled), func(t *testing.T) {
			c := srv.client(func(o *redis.Options) { o.ContextTimeoutEnabled = enabled })
			require.Equal(t, 5*time.Second, c.Options().ReadTimeout, "the go-redis default this test is about")
			s := testStore(t, c)
			sw := New(c, WithPrefix(s.prefix), WithWait(1, time.Second))
			ctx := t.Context()

			// State the calls below meet: a claim to commit, renew and release.
			for i := range 3 {
				_, err := s.Claim(ctx, req(fmt.Sprintf("claimed%d", i), 1, tok(1)))
				require.NoError(t, err)
			}
			require.NoError(t, s.Set(ctx, "", "applied", 5))
			goroutines := runtime.NumGoroutine()

			calls := []struct {
				name string
				call func(ctx context.Context) error
			}{
				{"Claim", func(ctx context.Context) error { _, err := s.Claim(ctx, req("new", 1, tok(2))); return err }},
				{"Claim advance", func(ctx context.Context) error { _, err := s.Claim(ctx, adv("new", 1, tok(2))); return err }},
				{"ClaimBatch", func(ctx context.Context) error {
					_, err := s.ClaimBatch(ctx, []revguard.Request{req("new", 1, tok(2)), req("applied", 6, tok(2))})
					return err
				}},
				{"Commit", func(ctx context.Context) error { return s.Commit(ctx, "", "claimed0", tok(1)) }},
				{"CommitBatch", func(ctx context.Context) error {
					_, err := s.CommitBatch(ctx, []revguard.Commit{{Key: "claimed1", Token: tok(1)}, {Key: "claimed2", Token: tok(1)}})
					return err
				}},
				{"CommitPayload", func(ctx context.Context) error { return s.CommitPayload(ctx, "", "claimed0", tok(1), []byte("reply")) }},
				{"Renew", func(ctx context.Context) error { return s.Renew(ctx, "", "claimed0", tok(1), time.Minute) }},
				{"Release", func(ctx context.Context) error { return s.Release(ctx, "", "claimed0", tok(9)) }},
				{"Peek", func(ctx context.Context) error { _, err := s.Peek(ctx, "", "applied"); return err }},
				{"PeekPayload", func(ctx context.Context) error { _, _, err := s.PeekPayload(ctx, "", "applied"); return err }},
				{"Inspect", func(ctx context.Context) error { _, err := s.Inspect(ctx, "", "applied"); return err }},
				{"Scan", func(ctx context.Context) error {
					return s.Scan(ctx, "", "*", func(revguard.Entity) error { return nil })
				}},
				{"Set", func(ctx context.Context) error { return s.Set(ctx, "", "applied", 5) }},
				{"Forget", func(ctx context.Context) error { return s.Forget(ctx, "", "gone") }},
				{"Preflight", func(ctx context.Context) error { return s.Preflight(ctx) }},
				{"Commit WithWait", func(ctx context.Context) error { return sw.Commit(ctx, "", "claimed0", tok(1)) }},
				{"Preflight WithWait", func(ctx context.Context) error { return sw.Preflight(ctx) }},
			}

			srv.freeze()
			frozen := true
			defer func() {
				if frozen {
					srv.thaw()
				}
			}()
			for _, ending := range []struct {
				name string
				ctx  func() (context.Context, context.CancelFunc)
				want error
			}{
				{"deadline", func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, end) }, context.DeadlineExceeded},
				{"cancel", func() (context.Context, context.CancelFunc) {
					ctx, cancel := context.WithCancel(ctx)
					time.AfterFunc(end, cancel)
					return ctx, cancel
				}, context.Canceled},
			} {
				// All at once, each with a context of its own: together
				// they also hold more connections than the pool keeps idle.
				type result struct {
					err  error
					took time.Duration
				}
				results := make(chan result, len(calls))
				for _, tc := range calls {
					go func() {
						ctx, cancel := ending.ctx()
						defer cancel()
						start := time.Now()
						err := tc.call(ctx)
						results <- result{fmt.Errorf("%s: %w", tc.name, err), time.Since(start)}
					}()
				}
				for range calls {
					r := <-results
					assert.ErrorIs(t, r.err, ending.want, ending.name)
					assert.Less(t, r.took, within, "%v, after its context's %s (ReadTimeout is 5s)", r.err, ending.name)
				}

				// Through a guard: the handler does not run, Handle fails.
				g := revguard.New(s, func(rev revguard.Revision) (string, revguard.Revision, error) { return "guarded", rev, nil })
				ran := false
				ctx, cancel := ending.ctx()
				start := time.Now()
				out, err := g.Handle(ctx, 1, func(context.Context, revguard.Revision) error { ran = true; return nil })
				took := time.Since(start)
				cancel()
				assert.ErrorIs(t, err, ending.want, "Handle, %s", ending.name)
				assert.Zero(t, out)
				assert.False(t, ran, "the handler ran on a frozen store")
				assert.Less(t, took, within, "Handle returned %s after its context's %s", took, ending.name)
			}

			srv.thaw()
			frozen = false
			// The calls abandoned meanwhile end once the server answers:
			// none is left behind, and the pool serves new calls.
			// (A loop, not assert.Eventually, which runs its condition on
			// goroutines of its own.)
			for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > goroutines; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<20)
					t.Fatalf("%d goroutines, %d before the server froze:\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
				}
			}
			for i := range 20 {
				ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				key := fmt.Sprintf("after%d", i)
				res, err := s.Claim(ctx, req(key, 1, tok(3)))
				require.NoError(t, err)
				require.Equal(t, revguard.Granted, res.Verdict)
				require.NoError(t, s.Commit(ctx, "", key, tok(3)))
				cancel()
			}
			// An abandoned commit may have taken effect after all: sending
			// it again answers as the first did.
			require.NoError(t, s.Commit(ctx, "", "claimed0", tok(1)))
			st, err := s.Peek(ctx, "", "claimed0")
			require.NoError(t, err)
			require.Equal(t, revguard.State{Applied: 1, Exists: true}, st)
			_, err = s.Claim(ctx, req("claimed0", 1, tok(4)))
			require.NoError(t, err)
		})
	}
}

// With ContextTimeoutEnabled and a deadline, the store leaves the call to
// go-redis, which ends it at the deadline: a cancellation before it ends
// the call at the deadline (or after ReadTimeout, were that sooner), as it
// does go-redis's own commands.
func TestDeadlineCancelBeforeDeadline(t *testing.T) {
	srv := startRedis(t)
	s := testStore(t, srv.client(func(o *redis.Options) { o.ContextTimeoutEnabled = true }))
	srv.freeze()
	defer srv.thaw()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := s.Peek(ctx, "", "k")
	took := time.Since(start)
	require.ErrorIs(t, err, context.Canceled)
	assert.GreaterOrEqual(t, took, 900*time.Millisecond, "go-redis reads until the deadline")
	assert.Less(t, took, 3*time.Second)
}

// A context that ends while the call waits for a pooled connection, and one
// that has ended before the call, give the context's error too.
func TestDeadlinePoolAndEnded(t *testing.T) {
	srv := startRedis(t)
	c := srv.client(func(o *redis.Options) { o.PoolSize = 1; o.PoolTimeout = time.Minute })
	s := testStore(t, c)
	srv.freeze()
	defer srv.thaw()

	// The one connection, taken by a call the store abandons.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	_, err := s.Peek(ctx, "", "k")
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)

	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	start := time.Now()
	_, err = s.Peek(ctx, "", "k")
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), time.Second)

	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	_, err = s.Claim(ctx, req("k", 1, tok(1)))
	require.ErrorIs(t, err, context.Canceled)
}

// The error names the call and the context's cause, and says that the call
// may still take effect.
func TestDeadlineError(t *testing.T) {
	srv := startRedis(t)
	s := testStore(t, srv.client())
	srv.freeze()
	defer srv.thaw()

	lost := errors.New("shutting down")
	ctx, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(50*time.Millisecond, func() { cancel(lost) })
	err := s.Commit(ctx, "", "k", tok(1))
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, lost)
	assert.Contains(t, err.Error(), "redisstore: commit: context canceled")
	assert.Contains(t, err.Error(), "may still take effect")
}
