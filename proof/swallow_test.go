package proof

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2/toxics"
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

// swallowNextCommit makes the proxy drop the reply to the next MySQL
// COMMIT (see commitToxic) and returns a function that reports whether it
// did.
func swallowNextCommit(t *testing.T) func() {
	t.Helper()
	before := swallowed.Load()
	commitArmed.Store(true)
	return func() {
		t.Helper()
		commitArmed.Store(false)
		swallowArmed.Store(0)
		if swallowed.Load() == before {
			t.Fatalf("no COMMIT reply was swallowed: the test tested nothing")
		}
	}
}

// commitToxic watches the requests to a MySQL server and, while
// commitArmed is set, arms swallowToxic as a COMMIT goes by, so that the
// next reply, the COMMIT's (the protocol answers one command at a time on
// a connection), is lost after the server executed it.
type commitToxic struct{}

var commitArmed atomic.Bool

// sendsCommit reports whether a chunk of requests holds the packet
// go-sql-driver sends for Tx.Commit: a COM_QUERY (0x03) of "COMMIT". Other
// packets may come before it in the chunk (a COM_STMT_CLOSE, which has no
// reply); each starts with its length (3 bytes, little-endian) and a
// sequence number.
func sendsCommit(b []byte) bool {
	for len(b) >= 4 {
		n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		if len(b) < 4+n {
			return false
		}
		if bytes.Equal(b[4:4+n], []byte("\x03COMMIT")) {
			return true
		}
		b = b[4+n:]
	}
	return false
}

func (*commitToxic) Pipe(stub *toxics.ToxicStub) {
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if commitArmed.Load() && sendsCommit(c.Data) && commitArmed.CompareAndSwap(true, false) {
				swallowArmed.Store(1)
			}
			select {
			case stub.Output <- c:
			case <-stub.Interrupt:
				stub.Output <- c
				return
			}
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
	defer func() { _ = c.Close() }()
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
	swallowSQL(t, "postgres", o, swallowNext, []swallowCase{
		{revguard.Claim, true, revguard.Duplicate, 1},
		{revguard.Transactional, true, revguard.Duplicate, 1},
		{revguard.Claim, false, revguard.Applied, 1},
		{revguard.AtMostOnce, false, revguard.Duplicate, 0},
	})
}

// TestProofSwallowedReplyMariaDB loses the reply to a COMMIT after MariaDB
// executed it: every change the MySQL dialect makes is a transaction, so
// that is the reply whose loss leaves the caller not knowing what took
// effect (a lost reply to an earlier statement of the transaction rolls it
// back with the connection). The checks are PostgreSQL's; the DSN sets
// readTimeout, without which the lost reply is waited for past any deadline
// (the subtest "no readTimeout" measures that).
func TestProofSwallowedReplyMariaDB(t *testing.T) {
	shared := server(t, envMySQL, "MariaDB")
	// Shorter than the calls' one-second deadline, so that the driver gives
	// up on the lost reply while the guard may still act on it.
	dsn, _ := viaProxy(t, shared, 400*time.Millisecond)
	db := openDB(t, "mysql", dsn, "MariaDB via toxiproxy")
	// One connection: the reply the toxic drops after a COMMIT is that
	// COMMIT's, not another connection's.
	db.SetMaxOpenConns(1)
	o := openSQL(t, db, sqlstore.MySQL)
	swallowSQL(t, "mariadb", o, swallowNextCommit, []swallowCase{
		{revguard.Claim, true, revguard.Duplicate, 1},
		{revguard.Transactional, true, revguard.Duplicate, 1},
		{revguard.Claim, false, revguard.Applied, 1},
		{revguard.AtMostOnce, false, revguard.Duplicate, 0},
	})
	t.Run("no readTimeout", func(t *testing.T) {
		// The same lost COMMIT reply with the driver's default, no read
		// timeout: the call outlives its context until the connection is
		// closed, here by stopping the proxy 3s past the deadline.
		dsn, px := viaProxy(t, shared, 0)
		db := openDB(t, "mysql", dsn, "MariaDB via toxiproxy")
		db.SetMaxOpenConns(1)
		o := openSQL(t, db, sqlstore.MySQL)
		s := o.store
		ctx := context.Background()
		ns := unique("swallow-")
		if _, err := s.Claim(ctx, revguard.Request{Namespace: ns, Key: "warm", Rev: 1, Advance: true}); err != nil {
			t.Fatal(err)
		}
		const deadline = time.Second
		done := swallowNextCommit(t)
		watchdog := time.AfterFunc(deadline+3*time.Second, px.p.Stop)
		defer watchdog.Stop()
		cctx, cancel := context.WithTimeout(ctx, deadline)
		start := time.Now()
		_, err := s.Claim(cctx, revguard.Request{Namespace: ns, Key: "k", Rev: 1, Advance: true})
		took := time.Since(start)
		cancel()
		done()
		t.Logf("an advance whose COMMIT reply was lost, with a %s deadline and no readTimeout: returned after %s: %v", deadline, took.Round(time.Millisecond), err)
		if err == nil {
			t.Errorf("the advance whose COMMIT reply was lost answered with no error")
		}
		if took > deadline+time.Second {
			issueTable.add(t, "MySQL dialect: a lost COMMIT reply is waited for past the call's deadline unless the DSN sets readTimeout (COMMIT is sent without the context)",
				"mariadb", fmt.Sprintf("blocked %s past a %s deadline, until the connection closed", (took-deadline).Round(100*time.Millisecond), deadline), "returns at the deadline")
			if *strictFlag {
				t.Errorf("a lost COMMIT reply blocked the call %s past its deadline", took-deadline)
			}
		}
	})
}

// A swallowCase is one reply lost during one Handle of a SQL store.
type swallowCase struct {
	mode revguard.Mode
	// armInHandler says when the reply to lose is next: before the claim
	// (or advance), or from inside the handler, so that it is the reply to
	// the commit.
	armInHandler bool
	want         revguard.Outcome // on redelivery
	wantRuns     int64
}

// swallowSQL runs the cases against a SQL store behind a proxy, losing a
// reply with arm: the call fails (or, for a commit, the guard tries it again
// and finds it done), the transport redelivers the message until it is
// acknowledged, and the redelivery must answer as the case says, with the
// handler's effects there once.
func swallowSQL(t *testing.T, store string, o opened, arm func(*testing.T) func(), cases []swallowCase) {
	fx := o.effects(t).(*sqlEffects)
	ns := unique("swallow-")
	ctx := context.Background()
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
			var armed atomic.Bool
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
				if tc.armInHandler && armed.CompareAndSwap(true, false) {
					done = arm(t)
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
			armed.Store(true)
			if !tc.armInHandler {
				armed.Store(false)
				done = arm(t)
			}
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			out, err := g.Handle(cctx, event{key, 5}, h)
			cancel()
			if done != nil {
				done()
			}
			t.Logf("first delivery: %v, %v, %d handler runs", out, err, runs.Load())
			first := "error"
			switch {
			case err == nil && tc.mode == revguard.Claim && tc.armInHandler && out == revguard.Applied:
				// The guard tries a failed commit again while its lease
				// holds; the retry found the commit done.
				first = "applied (commit retried)"
			case err == nil:
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
			swallowTable.add(t, store, what+" ("+tc.mode.String()+")", "no", first, again, runs.Load())
		})
	}
}
