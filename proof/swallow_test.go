package proof

import (
	"context"
	"errors"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/redisstore"
	"github.com/revguard/revguard/backends/sqlstore"
)

var swallowTable = newTable(5, "Swallowed replies: the server executed the call, its reply never reached the client",
	"store", "call", "client retries", "first answer", "after redelivery", "handler runs")

// swallowNext makes the proxy drop the next reply and returns a function
// that reports whether it did.
func swallowNext(t *testing.T) func() {
	t.Helper()
	before := swallowed.Load()
	swallowArmed.Store(1)
	return func() {
		t.Helper()
		swallowArmed.Store(0)
		if swallowed.Load() == before {
			t.Fatalf("no reply was swallowed: the test tested nothing")
		}
	}
}

// TestProofSwallowedReplyRedis loses the reply to each store call, one at a
// time, after redis-server executed it. go-redis times out and sends the
// call again on a new connection, so the script runs twice: the second run
// must answer as the first did (invariant 4), never Duplicate or Stale.
func TestProofSwallowedReplyRedis(t *testing.T) {
	srv := startRedis(t, aofAlways)
	px := newFaultProxy(t, srv.addr())
	c := faultyRedis(px.addr())
	defer c.Close()
	s := redisstore.New(c, redisstore.WithPrefix("proof:"))
	ctx := context.Background()
	ns := unique("swallow-")
	tok := func(n byte) revguard.Token { return revguard.Token{15: n} }
	req := func(key string, rev revguard.Revision, n byte, advance bool) revguard.Request {
		return revguard.Request{Namespace: ns, Key: key, Rev: rev, Token: tok(n), Lease: time.Minute, Advance: advance}
	}
	// Load every script first, so that a swallowed reply is a script's,
	// not a NOSCRIPT error's.
	if _, err := s.Claim(ctx, req("warm", 1, 1, false)); err != nil {
		t.Fatal(err)
	}
	_ = s.Renew(ctx, ns, "warm", tok(1), time.Minute)
	_ = s.Commit(ctx, ns, "warm", tok(1))
	_ = s.Release(ctx, ns, "warm", tok(1))
	_, _ = s.Peek(ctx, ns, "warm")

	applied := func(key string) revguard.State {
		st, err := s.Peek(ctx, ns, key)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	t.Run("claim", func(t *testing.T) {
		done := swallowNext(t)
		r, err := s.Claim(ctx, req("a", 7, 2, false))
		done()
		if err != nil || r.Verdict != revguard.Granted {
			t.Fatalf("claim whose reply was lost: %v, %v; want granted", r.Verdict, err)
		}
		if r, _ := s.Claim(ctx, req("a", 7, 3, false)); r.Verdict != revguard.Busy {
			t.Errorf("another token's claim: %v, want busy (the claim is held)", r.Verdict)
		}
		if err := s.Commit(ctx, ns, "a", tok(2)); err != nil {
			t.Errorf("commit: %v", err)
		}
		if st := applied("a"); st.Applied != 7 {
			t.Errorf("applied %v, want 7", st)
		}
		swallowTable.add(t, "redis", "Claim", "yes", r.Verdict, "-", "-")
	})
	t.Run("advance", func(t *testing.T) {
		done := swallowNext(t)
		r, err := s.Claim(ctx, req("b", 9, 4, true))
		done()
		if err != nil || r.Verdict != revguard.Granted {
			t.Fatalf("advance whose reply was lost: %v, %v; want granted", r.Verdict, err)
		}
		if st := applied("b"); st.Applied != 9 {
			t.Errorf("applied %v, want 9", st)
		}
		swallowTable.add(t, "redis", "Claim (advance)", "yes", r.Verdict, "-", "-")
	})
	t.Run("commit", func(t *testing.T) {
		if r, err := s.Claim(ctx, req("c", 11, 5, false)); err != nil || r.Verdict != revguard.Granted {
			t.Fatal(r, err)
		}
		done := swallowNext(t)
		err := s.Commit(ctx, ns, "c", tok(5))
		done()
		if err != nil {
			t.Fatalf("commit whose reply was lost: %v, want nil", err)
		}
		if st := applied("c"); st.Applied != 11 {
			t.Errorf("applied %v, want 11", st)
		}
		swallowTable.add(t, "redis", "Commit", "yes", "nil", "-", "-")
	})
	t.Run("release", func(t *testing.T) {
		if r, err := s.Claim(ctx, req("d", 13, 6, false)); err != nil || r.Verdict != revguard.Granted {
			t.Fatal(r, err)
		}
		done := swallowNext(t)
		err := s.Release(ctx, ns, "d", tok(6))
		done()
		if err != nil {
			t.Fatalf("release whose reply was lost: %v, want nil", err)
		}
		if r, _ := s.Claim(ctx, req("d", 13, 7, false)); r.Verdict != revguard.Granted {
			t.Errorf("claim after the release: %v, want granted", r.Verdict)
		}
		swallowTable.add(t, "redis", "Release", "yes", "nil", "-", "-")
	})
	t.Run("renew", func(t *testing.T) {
		if r, err := s.Claim(ctx, req("e", 15, 8, false)); err != nil || r.Verdict != revguard.Granted {
			t.Fatal(r, err)
		}
		done := swallowNext(t)
		err := s.Renew(ctx, ns, "e", tok(8), time.Minute)
		done()
		if err != nil {
			t.Fatalf("renew whose reply was lost: %v, want nil", err)
		}
		swallowTable.add(t, "redis", "Renew", "yes", "nil", "-", "-")
	})
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		t.Run("guard "+mode.String(), func(t *testing.T) {
			g := revguard.New(s, func(r revguard.Revision) (string, revguard.Revision, error) { return "g" + mode.String(), r, nil },
				revguard.WithNamespace(ns), revguard.WithMode(mode))
			var runs atomic.Int64
			done := swallowNext(t) // the first reply is the claim's (or the advance's)
			out, err := g.Handle(ctx, 21, func(context.Context, revguard.Revision) error { runs.Add(1); return nil })
			done()
			if err != nil || out != revguard.Applied || runs.Load() != 1 {
				t.Fatalf("Handle with the claim's reply lost: %v, %v, %d runs; want applied, one run", out, err, runs.Load())
			}
			again, err := g.Handle(ctx, 21, func(context.Context, revguard.Revision) error { runs.Add(1); return nil })
			if err != nil || again != revguard.Duplicate || runs.Load() != 1 {
				t.Errorf("redelivery: %v, %v, %d runs; want duplicate, one run", again, err, runs.Load())
			}
			swallowTable.add(t, "redis", "Handle, "+mode.String(), "yes", out, again, runs.Load())
		})
	}
}

// TestProofSwallowedReplyPostgres loses a reply from PostgreSQL after it
// executed the statement. database/sql does not send a statement again, so
// the call fails once its context runs out and the message comes back: the
// redelivery must find out what happened, and the handler's effects must be
// there once.
func TestProofSwallowedReplyPostgres(t *testing.T) {
	dsn := server(t, envPostgres, "PostgreSQL")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	px := newFaultProxy(t, u.Host)
	u.Host = px.addr()
	db := openDB(t, "pgx", u.String(), "PostgreSQL via toxiproxy")
	db.SetMaxOpenConns(1) // one connection, whose statements the warm-ups prepare
	o := openSQL(t, db, sqlstore.Postgres)
	fx := o.effects(t).(*sqlEffects)
	ns := unique("swallow-")
	ctx := context.Background()

	cases := []struct {
		mode revguard.Mode
		// armAt says when the reply to lose is next: before the claim
		// (or advance), or from inside the handler, so that it is the
		// reply to the commit.
		armInHandler bool
		want         revguard.Outcome // on redelivery
		wantRuns     int64
	}{
		{revguard.Claim, true, revguard.Duplicate, 1},
		{revguard.Transactional, true, revguard.Duplicate, 1},
		{revguard.Claim, false, revguard.Applied, 1},
		{revguard.AtMostOnce, false, revguard.Duplicate, 0},
	}
	for i, tc := range cases {
		what := "claim"
		if tc.mode != revguard.Claim {
			what = "advance"
		}
		if tc.armInHandler {
			what = "commit"
		}
		t.Run(tc.mode.String()+" "+what, func(t *testing.T) {
			key := "k" + string(rune('a'+i))
			g := revguard.New(o.store, func(e event) (string, revguard.Revision, error) { return e.key, e.rev, nil },
				revguard.WithNamespace(ns), revguard.WithMode(tc.mode), revguard.WithLease(300*time.Millisecond))
			var runs atomic.Int64
			var arm atomic.Bool
			var done func()
			h := func(ctx context.Context, e event) error {
				if tc.mode == revguard.Transactional {
					if err := fx.record(ctx, e.key, e.rev); err != nil {
						return err
					}
				}
				if e.key != key {
					return nil // the warm-up
				}
				if tc.armInHandler && arm.CompareAndSwap(true, false) {
					done = swallowNext(t)
				}
				runs.Add(1)
				return nil
			}
			// The same calls once on another key, so that the one
			// connection has every statement prepared: the reply lost
			// must be an execution's, not a Parse's.
			if _, err := g.Handle(ctx, event{key + "-warm", 1}, h); err != nil {
				t.Fatalf("warm-up: %v", err)
			}
			arm.Store(true)
			if !tc.armInHandler {
				arm.Store(false)
				done = swallowNext(t)
			}
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			out, err := g.Handle(cctx, event{key, 5}, h)
			cancel()
			if done != nil {
				done()
			}
			if err == nil {
				t.Fatalf("Handle whose %s reply was lost answered %v with no error", what, out)
			}
			// The transport redelivers until the message is acknowledged.
			var again revguard.Outcome
			deadline := time.Now().Add(10 * time.Second)
			for {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				again, err = g.Handle(cctx, event{key, 5}, h)
				cancel()
				if err == nil || time.Now().After(deadline) {
					break
				}
				if !errors.Is(err, revguard.ErrInFlight) {
					t.Logf("redelivery: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil || again != tc.want || runs.Load() != tc.wantRuns {
				t.Errorf("redelivery: %v, %v after %d handler runs; want %v after %d", again, err, runs.Load(), tc.want, tc.wantRuns)
			}
			if tc.mode == revguard.Transactional {
				effects, err := fx.read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if n := len(effects[key]); n != 1 {
					t.Errorf("the handler's writes committed %d times, want once", n)
				}
			}
			swallowTable.add(t, "postgres", what+" ("+tc.mode.String()+")", "no", "error", again, runs.Load())
		})
	}
}
