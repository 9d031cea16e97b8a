package backendtest

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revguard/revguard"
)

// The Inspect group runs on stores that implement revguard.Inspector and
// skips on the others.

// inspection is a harness on a store that implements revguard.Inspector.
type inspection struct {
	*harness
	in revguard.Inspector
}

func startInspect(t *testing.T, newStore func(*testing.T) revguard.Store) *inspection {
	h := start(t, newStore)
	in, ok := h.s.(revguard.Inspector)
	if !ok {
		t.Skipf("%T does not implement revguard.Inspector", h.s)
	}
	return &inspection{h, in}
}

// held describes the claim an entity should show: c.Rev by c.Token,
// taken with lease (0: held until committed, with no lease).
type held struct {
	c     revguard.ClaimState
	lease time.Duration
}

func claimed(rev revguard.Revision, tok revguard.Token, lease time.Duration) *held {
	return &held{revguard.ClaimState{Rev: rev, Token: tok}, lease}
}

// clockGrain is how far past its lease a fresh claim's time left may read:
// a store that stamps the claim and reads its clock at different
// precisions (SQLite stamped with microseconds, read back at milliseconds)
// has read 5m0.000022s for a 5m lease.
const clockGrain = 10 * time.Millisecond

// want is what an inspection should report of one entity.
type want struct {
	state revguard.State
	claim *held // nil: no claim in force
}

// check returns what is wrong with got as a report of key, or "".
func (w want) check(got revguard.Entity, key string) string {
	switch {
	case got.Key != key:
		return fmt.Sprintf("key %s; want %s", short(got.Key), short(key))
	case !sameState(got.State, w.state):
		return fmt.Sprintf("%s; want %s", stateString(got.State), stateString(w.state))
	case w.claim == nil && got.Claim != nil:
		return fmt.Sprintf("claim of %d by %s with %v left; want none", got.Claim.Rev, tokenString(got.Claim.Token), got.Claim.Left)
	case w.claim == nil:
		return ""
	case got.Claim == nil:
		return fmt.Sprintf("no claim; want one of %d by %s", w.claim.c.Rev, tokenString(w.claim.c.Token))
	case got.Claim.Rev != w.claim.c.Rev || got.Claim.Token != w.claim.c.Token:
		return fmt.Sprintf("claim of %d by %s; want %d by %s",
			got.Claim.Rev, tokenString(got.Claim.Token), w.claim.c.Rev, tokenString(w.claim.c.Token))
	}
	left, lease := got.Claim.Left, w.claim.lease
	switch {
	case lease == 0 && left != 0:
		return fmt.Sprintf("claim with %v left; want 0, as it is held with no lease", left)
	case lease > 0 && (left <= 0 || left > lease+clockGrain):
		return fmt.Sprintf("claim with %v left; want more than 0 and at most its lease of %v", left, lease)
	case lease >= time.Minute && left < lease-30*time.Second:
		// The tests check long leases at once: this catches a unit error.
		return fmt.Sprintf("claim with %v left of a lease of %v taken a moment ago", left, lease)
	}
	return ""
}

// is requires Inspect of key to report state and claim.
func (x *inspection) is(key string, state revguard.State, claim *held) {
	x.t.Helper()
	got, err := x.in.Inspect(x.ctx(), x.ns, key)
	if err != nil {
		x.t.Fatalf("Inspect(%s): %v", short(key), err)
	}
	if msg := (want{state, claim}).check(got, key); msg != "" {
		x.t.Fatalf("Inspect(%s): %s", short(key), msg)
	}
}

// scan returns what Scan of the harness's namespace reports for match, by
// key. Scan may report an entity twice, only alike when nothing changes.
func (x *inspection) scan(match string) map[string]revguard.Entity {
	x.t.Helper()
	got := map[string]revguard.Entity{}
	var twice string
	err := x.in.Scan(x.ctx(), x.ns, match, func(e revguard.Entity) error {
		if prev, ok := got[e.Key]; ok && (prev.State != e.State || (prev.Claim == nil) != (e.Claim == nil)) {
			twice = e.Key
		}
		got[e.Key] = e
		return nil
	})
	if err != nil {
		x.t.Fatalf("Scan(%q): %v", match, err)
	}
	if twice != "" {
		x.t.Fatalf("Scan(%q) reported %s twice, differently, though nothing changed", match, short(twice))
	}
	return got
}

// scanIs requires Scan of the harness's namespace for match to report
// exactly the entities of wants whose keys match.
func (x *inspection) scanIs(match string, wants map[string]want) {
	x.t.Helper()
	got := x.scan(match)
	n := 0
	for k, w := range wants {
		if match != "" {
			if ok, _ := path.Match(match, k); !ok {
				continue
			}
		}
		n++
		e, ok := got[k]
		if !ok {
			x.t.Fatalf("Scan(%q) did not report %s (of %d entities, it reported %d)", match, short(k), n, len(got))
		}
		if msg := w.check(e, k); msg != "" {
			x.t.Fatalf("Scan(%q) reported %s: %s", match, short(k), msg)
		}
	}
	if len(got) != n {
		for k := range got {
			if _, ok := wants[k]; !ok {
				x.t.Fatalf("Scan(%q) reported %s, which is not one of the namespace's entities, or does not match", match, short(k))
			}
		}
		x.t.Fatalf("Scan(%q) reported %d entities; want %d", match, len(got), n)
	}
}

func testInspectUnknown(t *testing.T, newStore func(*testing.T) revguard.Store) {
	x := startInspect(t, newStore)
	x.is("never-seen", none, nil)
	if e, err := x.in.Inspect(x.ctx(), x.ns+"/other", "k"); err != nil || (want{}).check(e, "k") != "" {
		t.Fatalf("Inspect in an unknown namespace = %+v, %v; want nothing", e, err)
	}
	// A claim released before anything was applied leaves nothing.
	a := newToken()
	x.claim(x.req("released", 1, a), granted, none)
	x.release("released", a)
	x.is("released", none, nil)
	// Neither do refusals on entities that hold nothing (some stores write
	// a row for them that holds nothing).
	x.commitLost("never-claimed", newToken())
	x.renewLost("never-claimed", newToken())
	x.claim(x.sequential("gap", 5, 1, newToken()), gap, none)
	if _, err := x.s.CommitBatch(x.ctx(), []revguard.Commit{{Namespace: x.ns, Key: "batch", Token: newToken()}}); err != nil {
		t.Fatalf("CommitBatch: %v", err)
	}
	x.is("gap", none, nil)
	x.scanIs("", nil)
}

func testInspectClaim(t *testing.T, newStore func(*testing.T) revguard.Store) {
	x := startInspect(t, newStore)
	const k = "entity"
	a := newToken()
	x.claim(x.req(k, 5, a), granted, none)
	x.is(k, none, claimed(5, a, longLease))
	x.renew(k, a, 2*time.Minute)
	x.is(k, none, claimed(5, a, 2*time.Minute))
	x.commit(k, a)
	x.is(k, at(5), nil)

	b := newToken()
	x.claim(x.req(k, 7, b), granted, at(5))
	x.is(k, at(5), claimed(7, b, longLease))
	// Drops change nothing, whoever holds the claim.
	x.claim(x.req(k, 5, newToken()), dup, at(5))
	x.claim(x.req(k, 9, newToken()), busy, at(5))
	x.is(k, at(5), claimed(7, b, longLease))
	x.release(k, b)
	x.is(k, at(5), nil)

	x.claim(x.req(k, 8, newToken()), granted, at(5))
	x.set(k, 3)
	x.is(k, at(3), nil)
	x.claim(x.req(k, 9, newToken()), granted, at(3))
	x.forget(k)
	x.is(k, none, nil)
	x.claim(x.advance(k, 4, newToken()), granted, none)
	x.is(k, at(4), nil)
	x.scanIs("", map[string]want{k: {state: at(4)}})

	// A store in the guard's process holds a claim of Lease 0 until it is
	// committed or released, with no lease left to report.
	if ip, ok := x.s.(revguard.InProcess); ok && ip.InProcess() {
		c := newToken()
		r := x.req("held", 1, c)
		r.Lease = 0
		x.claim(r, granted, none)
		x.is("held", none, claimed(1, c, 0))
		x.commit("held", c)
		x.is("held", at(1), nil)
	}
}

func testInspectExpired(t *testing.T, newStore func(*testing.T) revguard.Store) {
	x := startInspect(t, newStore)
	const empty, applied = "empty", "applied"
	// Longer than shortLease: the claims must still be live when they are
	// first read, after three writes, and SQLite under -race on two busy
	// cores has taken 650ms for those.
	const lease = 2 * time.Second
	a, b := newToken(), newToken()
	x.claimFor(empty, 5, a, lease, none)
	x.set(applied, 1)
	x.claimFor(applied, 5, b, lease, at(1))
	x.is(empty, none, claimed(5, a, lease))
	x.scanIs("", map[string]want{empty: {none, claimed(5, a, lease)}, applied: {at(1), claimed(5, b, lease)}})
	time.Sleep(lease + 200*time.Millisecond)

	x.is(empty, none, nil)
	x.is(applied, at(1), nil)
	// An entity that held only an expired claim is not there.
	x.scanIs("", map[string]want{applied: {state: at(1)}})
}

func testScan(t *testing.T, newStore func(*testing.T) revguard.Store) {
	x := startInspect(t, newStore)
	keys := append(slices.Clone(trickyKeys), "a/b", "orders/42", "orders/43/x", "*x", "[a]/b")
	wants := map[string]want{}
	for i, k := range keys {
		x.set(k, revguard.Revision(i+1))
		wants[k] = want{state: at(revguard.Revision(i + 1))}
	}
	a, b := newToken(), newToken()
	x.claim(x.req(keys[0], 1000, a), granted, at(1))
	wants[keys[0]] = want{at(1), claimed(1000, a, longLease)}
	x.claim(x.req("claimed only", 3, b), granted, none)
	wants["claimed only"] = want{none, claimed(3, b, longLease)}

	// Entities of neighbouring namespaces, which a careless prefix match
	// would take for this one's: ("ns:a", "b") is not ("ns", "a:b").
	for _, ns := range []string{x.ns + "x", x.ns[:len(x.ns)-1], x.ns + ":", x.ns + ":a", x.ns + "/", x.ns + "{"} {
		for _, k := range []string{"b", "a:b", "neighbour"} {
			if err := x.s.Set(x.ctx(), ns, k, 99); err != nil {
				t.Fatalf("Set(ns %s, %s): %v", short(ns), k, err)
			}
		}
	}

	x.scanIs("", wants)
	for _, match := range []string{
		"*", "orders/*", "orders/4?", "*/*", "{*", "[ab]", "[a]", "a*", "*:*", `\*`, `\**`, "\\[a]*", "x*", "*y",
		"emoji ?", "nul*", "Stra[sß]e", "[^a-z]*", "é*", "claimed only", "no such key",
	} {
		x.scanIs(match, wants)
	}

	// fn may call the store: Scan holds no lock, transaction or result
	// set while fn runs.
	calls := 0
	err := x.in.Scan(x.ctx(), x.ns, "orders/*", func(e revguard.Entity) error {
		calls++
		got, err := x.in.Inspect(x.ctx(), x.ns, e.Key)
		if err != nil || got.State != e.State {
			return fmt.Errorf("Inspect(%s) inside Scan = %+v, %v; Scan reported %+v", short(e.Key), got, err, e)
		}
		return x.s.Set(x.ctx(), x.ns, e.Key, e.Applied+1000)
	})
	if err != nil || calls != 1 {
		t.Fatalf("Scan whose fn uses the store = %v after %d calls; want nil after 1", err, calls)
	}
	w := wants["orders/42"]
	w.state.Applied += 1000
	wants["orders/42"] = w
	x.scanIs("orders/*", wants)

	// fn's error stops the scan and comes back as it is.
	stop := errors.New("stop here")
	calls = 0
	err = x.in.Scan(x.ctx(), x.ns, "", func(revguard.Entity) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Scan whose fn fails = %v after %d calls; want %q after 1", err, calls, stop)
	}

	for _, bad := range []string{"[", "a[", "[a-", `\`, "[]a]", "a[b-"} {
		if _, err := path.Match(bad, ""); err == nil {
			t.Fatalf("bad test pattern %q", bad)
		}
		calls := 0
		err := x.in.Scan(x.ctx(), x.ns, bad, func(revguard.Entity) error { calls++; return nil })
		if !errors.Is(err, path.ErrBadPattern) || calls != 0 {
			t.Fatalf("Scan(%q) = %v after %d calls; want path.ErrBadPattern before any", bad, err, calls)
		}
	}

	cancelled, cancel := context.WithCancel(x.ctx())
	cancel()
	calls = 0
	if err := x.in.Scan(cancelled, x.ns, "", func(revguard.Entity) error { calls++; return nil }); !errors.Is(err, context.Canceled) || calls != 0 {
		t.Fatalf("Scan with a cancelled context = %v after %d calls; want context.Canceled before any", err, calls)
	}
	if _, err := x.in.Inspect(cancelled, x.ns, keys[0]); !errors.Is(err, context.Canceled) {
		t.Fatalf("Inspect with a cancelled context = %v; want context.Canceled", err)
	}
}

// scanEntities is more than two pages of every store's Scan.
const scanEntities = 1200

func testScanPages(t *testing.T, newStore func(*testing.T) revguard.Store) {
	x := startInspect(t, newStore)
	wants := map[string]want{}
	var reqs []revguard.Request
	flush := func() {
		t.Helper()
		res, err := x.s.ClaimBatch(x.ctx(), reqs)
		if err != nil {
			t.Fatalf("ClaimBatch of %d: %v", len(reqs), err)
		}
		for i, r := range res {
			if r.Verdict != granted {
				t.Fatalf("ClaimBatch: %s = %s; want granted", describe(reqs[i]), r.Verdict)
			}
		}
		reqs = reqs[:0]
	}
	for i := range scanEntities {
		k := fmt.Sprintf("p-%04d", i)
		reqs = append(reqs, x.advance(k, revguard.Revision(i), newToken()))
		wants[k] = want{state: at(revguard.Revision(i))}
		if len(reqs) == 200 {
			flush()
		}
	}
	// Live claims on some, in one batch.
	for i := 0; i < scanEntities; i += 97 {
		k := fmt.Sprintf("p-%04d", i)
		tok := newToken()
		reqs = append(reqs, x.req(k, revguard.Revision(i+1), tok))
		wants[k] = want{at(revguard.Revision(i)), claimed(revguard.Revision(i+1), tok, longLease)}
	}
	flush()

	// fn runs one call at a time, and may be slow.
	var running atomic.Int32
	seen := 0
	err := x.in.Scan(x.ctx(), x.ns, "", func(revguard.Entity) error {
		if running.Add(1) != 1 {
			return errors.New("fn called concurrently")
		}
		seen++
		running.Add(-1)
		return nil
	})
	if err != nil || seen < scanEntities {
		t.Fatalf("Scan = %v after %d calls; want nil after %d or more", err, seen, scanEntities)
	}
	x.scanIs("", wants)
	x.scanIs("p-1*", wants)
	x.scanIs("p-??[05]0", wants)

	// A stop well past the first page.
	stop := errors.New("enough")
	calls := 0
	err = x.in.Scan(x.ctx(), x.ns, "", func(revguard.Entity) error {
		if calls++; calls == 700 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 700 {
		t.Fatalf("Scan stopped at call 700 = %v after %d calls; want %q after 700", err, calls, stop)
	}
}
