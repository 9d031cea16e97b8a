package backendtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/revguard/revguard"
)

// The differential test runs differentialRuns streams of differentialOps
// operations each, in parallel, the first seeded with differentialSeed and
// the next ones with the following numbers.
const (
	differentialSeed = 20260521
	differentialRuns = 4
	differentialOps  = 500
)

// testDifferential runs random operations, one after another, on the store
// and on the model, and requires the same answer to each. Revisions come
// from a small range and tokens from small sets, so that operations collide
// on purpose: retries, wrong tokens, duplicates, gaps.
func testDifferential(t *testing.T, newStore func(*testing.T) revguard.Store) {
	for i := range uint64(differentialRuns) {
		seed := differentialSeed + i
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			t.Parallel()
			d := &differential{
				h:     start(t, newStore),
				m:     newModel(),
				seed:  seed,
				rng:   rand.New(rand.NewPCG(seed, 0)),
				keys:  []string{"k0", "k1", "k2"},
				claim: []revguard.Token{newToken(), newToken(), newToken()},
				// Advances use tokens of their own: the contract leaves
				// open what a claim token's advance does to that token's
				// own claim.
				advance: []revguard.Token{newToken(), newToken()},
			}
			for d.op = 1; d.op <= differentialOps; d.op++ {
				d.step()
				if d.op%100 == 0 {
					d.peekAll()
				}
			}
			d.peekAll()
		})
	}
}

type differential struct {
	h       *harness
	m       *model
	seed    uint64
	rng     *rand.Rand
	keys    []string
	claim   []revguard.Token
	advance []revguard.Token

	op      int
	history []string // the latest operations, for the failure message
}

func (d *differential) logf(format string, args ...any) {
	const keep = 30
	if len(d.history) == keep {
		d.history = d.history[1:]
	}
	d.history = append(d.history, fmt.Sprintf("%4d: ", d.op)+fmt.Sprintf(format, args...))
}

func (d *differential) fail(format string, args ...any) {
	d.h.t.Helper()
	d.h.t.Fatalf("differential test, seed %d, operation %d: %s\nlatest operations:\n%s",
		d.seed, d.op, fmt.Sprintf(format, args...), strings.Join(d.history, "\n"))
}

func (d *differential) key() string { return d.keys[d.rng.IntN(len(d.keys))] }

func (d *differential) claimToken() revguard.Token { return d.claim[d.rng.IntN(len(d.claim))] }

func (d *differential) tokenName(tok revguard.Token) string {
	if i := slices.Index(d.claim, tok); i >= 0 {
		return fmt.Sprintf("c%d", i)
	}
	return fmt.Sprintf("a%d", slices.Index(d.advance, tok))
}

// someKeys returns between 1 and all of the keys, distinct, in random order.
func (d *differential) someKeys() []string {
	ks := slices.Clone(d.keys)
	d.rng.Shuffle(len(ks), func(i, j int) { ks[i], ks[j] = ks[j], ks[i] })
	return ks[:1+d.rng.IntN(len(ks))]
}

func (d *differential) request(key string) revguard.Request {
	r := d.h.req(key, revguard.Revision(d.rng.IntN(7)), d.claimToken())
	if d.rng.IntN(4) == 0 {
		r.Advance, r.Token = true, d.advance[d.rng.IntN(len(d.advance))]
	}
	if d.rng.IntN(5) == 0 {
		r.Sequential, r.First = true, revguard.Revision(d.rng.IntN(3))
	}
	if d.rng.IntN(6) == 0 {
		r.MaxStep = uint64(1 + d.rng.IntN(2))
	}
	return r
}

func (d *differential) describe(r revguard.Request) string {
	s := fmt.Sprintf("%s rev %d token %s", r.Key, r.Rev, d.tokenName(r.Token))
	if r.Advance {
		s += " advance"
	}
	if r.Sequential {
		s += fmt.Sprintf(" sequential first %d", r.First)
	}
	if r.MaxStep != 0 {
		s += fmt.Sprintf(" maxstep %d", r.MaxStep)
	}
	return s
}

func (d *differential) step() {
	h, ctx := d.h, d.h.ctx()
	switch n := d.rng.IntN(100); {
	case n < 38:
		r := d.request(d.key())
		before, allowed := d.m.claim(r)
		res, err := h.s.Claim(ctx, r)
		d.logf("Claim(%s) = %s, saw %s, %v", d.describe(r), res.Verdict, stateString(res.State), err)
		d.checkClaim(r, res, err, before, allowed)

	case n < 53:
		k, tok := d.key(), d.claimToken()
		ok := d.m.commit(k, tok)
		err := h.s.Commit(ctx, h.ns, k, tok)
		d.logf("Commit(%s, %s) = %v", k, d.tokenName(tok), err)
		d.checkLost("Commit", err, ok)

	case n < 60:
		k, tok := d.key(), d.claimToken()
		d.m.release(k, tok)
		err := h.s.Release(ctx, h.ns, k, tok)
		d.logf("Release(%s, %s) = %v", k, d.tokenName(tok), err)
		if err != nil {
			d.fail("Release: %v; want nil", err)
		}

	case n < 66:
		k, tok := d.key(), d.claimToken()
		ok := d.m.renew(k, tok)
		err := h.s.Renew(ctx, h.ns, k, tok, longLease)
		d.logf("Renew(%s, %s) = %v", k, d.tokenName(tok), err)
		d.checkLost("Renew", err, ok)

	case n < 71:
		k, rev := d.key(), revguard.Revision(d.rng.IntN(7))
		d.m.set(k, rev)
		err := h.s.Set(ctx, h.ns, k, rev)
		d.logf("Set(%s, %d) = %v", k, rev, err)
		if err != nil {
			d.fail("Set: %v", err)
		}

	case n < 74:
		k := d.key()
		d.m.forget(k)
		err := h.s.Forget(ctx, h.ns, k)
		d.logf("Forget(%s) = %v", k, err)
		if err != nil {
			d.fail("Forget: %v", err)
		}

	case n < 84:
		d.peek(d.key())

	case n < 93:
		var reqs []revguard.Request
		var befores []revguard.State
		var alloweds [][]revguard.Verdict
		for _, k := range d.someKeys() {
			r := d.request(k)
			before, allowed := d.m.claim(r)
			reqs, befores, alloweds = append(reqs, r), append(befores, before), append(alloweds, allowed)
		}
		res, err := h.s.ClaimBatch(ctx, reqs)
		d.logf("ClaimBatch of %d = %v", len(reqs), err)
		if err != nil || len(res) != len(reqs) {
			d.fail("ClaimBatch of %d requests = %d results, %v", len(reqs), len(res), err)
		}
		for i, r := range reqs {
			d.logf("  %s = %s, saw %s", d.describe(r), res[i].Verdict, stateString(res[i].State))
			d.checkClaim(r, res[i], nil, befores[i], alloweds[i])
		}

	default:
		var commits []revguard.Commit
		var oks []bool
		for _, k := range d.someKeys() {
			tok := d.claimToken()
			commits = append(commits, revguard.Commit{Namespace: h.ns, Key: k, Token: tok})
			oks = append(oks, d.m.commit(k, tok))
		}
		errs, err := h.s.CommitBatch(ctx, commits)
		d.logf("CommitBatch of %d = %v", len(commits), err)
		if err != nil || len(errs) != len(commits) {
			d.fail("CommitBatch of %d commits = %d results, %v", len(commits), len(errs), err)
		}
		for i, c := range commits {
			d.logf("  %s by %s = %v", c.Key, d.tokenName(c.Token), errs[i])
			d.checkLost("CommitBatch", errs[i], oks[i])
		}
	}
}

func (d *differential) checkClaim(r revguard.Request, res revguard.Reply, err error, before revguard.State, allowed []revguard.Verdict) {
	d.h.t.Helper()
	if err != nil {
		d.fail("Claim(%s): %v", d.describe(r), err)
	}
	if !slices.Contains(allowed, res.Verdict) || !sameState(res.State, before) {
		d.fail("Claim(%s) = %s, saw %s; the model says %v, saw %s",
			d.describe(r), res.Verdict, stateString(res.State), allowed, stateString(before))
	}
}

func (d *differential) checkLost(op string, err error, ok bool) {
	d.h.t.Helper()
	switch {
	case ok && err != nil:
		d.fail("%s: %v; the model says nil", op, err)
	case !ok && !errors.Is(err, revguard.ErrLeaseLost):
		d.fail("%s: %v; the model says ErrLeaseLost", op, err)
	}
}

func (d *differential) peek(k string) {
	d.h.t.Helper()
	want := d.m.peek(k)
	got, err := d.h.s.Peek(d.h.ctx(), d.h.ns, k)
	d.logf("Peek(%s) = %s, %v", k, stateString(got), err)
	if err != nil || !sameState(got, want) {
		d.fail("Peek(%s) = %s, %v; the model says %s", k, stateString(got), err, stateString(want))
	}
}

func (d *differential) peekAll() {
	d.h.t.Helper()
	for _, k := range d.keys {
		d.peek(k)
	}
}
