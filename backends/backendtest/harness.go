package backendtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/revguard/revguard"
)

// longLease outlives any subtest, so that only the tests about expiry meet it.
const longLease = 5 * time.Minute

// harness is one subtest's view of a store: its own namespace, and checks
// that stop the subtest at the first reply that breaks the contract.
type harness struct {
	t  *testing.T
	s  revguard.Store
	ns string
}

func start(t *testing.T, newStore func(*testing.T) revguard.Store) *harness {
	s := newStore(t)
	if s == nil {
		t.Fatal("newStore returned nil")
	}
	return &harness{t: t, s: s, ns: namespace(t)}
}

// namespace is unique to t and to this run. It leaves room below the
// 255-byte limit for tests that derive more namespaces from it.
func namespace(t *testing.T) string {
	suffix := "#" + randomHex(8)
	name := t.Name()
	limit := 200 - len(suffix)
	for len(name) > limit || !utf8.ValidString(name) {
		name = name[:len(name)-1]
	}
	return name + suffix
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// newToken returns a fresh random token, never the zero one.
func newToken() revguard.Token {
	var tok revguard.Token
	if _, err := rand.Read(tok[:]); err != nil {
		panic(err)
	}
	tok[0] |= 1
	return tok
}

func at(r revguard.Revision) revguard.State { return revguard.State{Applied: r, Exists: true} }

var none = revguard.State{}

// sameState ignores Applied when nothing exists: the contract gives it no
// meaning there.
func sameState(a, b revguard.State) bool {
	return a.Exists == b.Exists && (!a.Exists || a.Applied == b.Applied)
}

func stateString(s revguard.State) string {
	if !s.Exists {
		return "nothing applied"
	}
	return "applied " + s.Applied.String()
}

// short keeps failure messages readable when keys are kilobytes long.
func short(s string) string {
	if len(s) > 40 {
		return strconv.Quote(s[:40]) + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return strconv.Quote(s)
}

func tokenString(tok revguard.Token) string { return tok.String()[:8] }

func describe(r revguard.Request) string {
	s := fmt.Sprintf("ns %s key %s rev %d token %s", short(r.Namespace), short(r.Key), r.Rev, tokenString(r.Token))
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

func (h *harness) ctx() context.Context { return h.t.Context() }

func (h *harness) req(key string, rev revguard.Revision, tok revguard.Token) revguard.Request {
	return revguard.Request{Namespace: h.ns, Key: key, Rev: rev, Token: tok, Lease: longLease}
}

func (h *harness) advance(key string, rev revguard.Revision, tok revguard.Token) revguard.Request {
	r := h.req(key, rev, tok)
	r.Advance = true
	return r
}

func (h *harness) sequential(key string, rev, first revguard.Revision, tok revguard.Token) revguard.Request {
	r := h.req(key, rev, tok)
	r.Sequential, r.First = true, first
	return r
}

// claim sends req and requires verdict want with the state before the call.
func (h *harness) claim(req revguard.Request, want revguard.Verdict, before revguard.State) {
	h.t.Helper()
	res, err := h.s.Claim(h.ctx(), req)
	if err != nil {
		h.t.Fatalf("Claim(%s): %v", describe(req), err)
	}
	if res.Verdict != want || !sameState(res.State, before) {
		h.t.Fatalf("Claim(%s) = %s, saw %s; want %s, saw %s",
			describe(req), res.Verdict, stateString(res.State), want, stateString(before))
	}
}

// claimBatch sends reqs in one ClaimBatch and requires, for each, verdict
// want[i] with the state before[i] before the call.
func (h *harness) claimBatch(reqs []revguard.Request, want []revguard.Verdict, before []revguard.State) {
	h.t.Helper()
	res, err := h.s.ClaimBatch(h.ctx(), reqs)
	if err != nil {
		h.t.Fatalf("ClaimBatch of %d requests: %v", len(reqs), err)
	}
	if len(res) != len(reqs) {
		h.t.Fatalf("ClaimBatch: %d results for %d requests", len(res), len(reqs))
	}
	for i, r := range res {
		if r.Verdict != want[i] || !sameState(r.State, before[i]) {
			h.t.Fatalf("ClaimBatch, request %d (%s) = %s, saw %s; want %s, saw %s",
				i, describe(reqs[i]), r.Verdict, stateString(r.State), want[i], stateString(before[i]))
		}
	}
}

// claimAny is claim where the contract allows more than one verdict.
func (h *harness) claimAny(req revguard.Request, want []revguard.Verdict, before revguard.State) revguard.Verdict {
	h.t.Helper()
	res, err := h.s.Claim(h.ctx(), req)
	if err != nil {
		h.t.Fatalf("Claim(%s): %v", describe(req), err)
	}
	if !slices.Contains(want, res.Verdict) || !sameState(res.State, before) {
		h.t.Fatalf("Claim(%s) = %s, saw %s; want one of %v, saw %s",
			describe(req), res.Verdict, stateString(res.State), want, stateString(before))
	}
	return res.Verdict
}

// claimFor claims key at rev for tok with a lease of its own, and requires
// it granted.
func (h *harness) claimFor(key string, rev revguard.Revision, tok revguard.Token, lease time.Duration, before revguard.State) {
	h.t.Helper()
	r := h.req(key, rev, tok)
	r.Lease = lease
	h.claim(r, granted, before)
}

func (h *harness) commit(key string, tok revguard.Token) {
	h.t.Helper()
	if err := h.s.Commit(h.ctx(), h.ns, key, tok); err != nil {
		h.t.Fatalf("Commit(%s, token %s) = %v; want nil", short(key), tokenString(tok), err)
	}
}

func (h *harness) commitLost(key string, tok revguard.Token) {
	h.t.Helper()
	err := h.s.Commit(h.ctx(), h.ns, key, tok)
	if !errors.Is(err, revguard.ErrLeaseLost) {
		h.t.Fatalf("Commit(%s, token %s) = %v; want ErrLeaseLost", short(key), tokenString(tok), err)
	}
}

func (h *harness) renew(key string, tok revguard.Token, lease time.Duration) {
	h.t.Helper()
	if err := h.s.Renew(h.ctx(), h.ns, key, tok, lease); err != nil {
		h.t.Fatalf("Renew(%s, token %s) = %v; want nil", short(key), tokenString(tok), err)
	}
}

func (h *harness) renewLost(key string, tok revguard.Token) {
	h.t.Helper()
	err := h.s.Renew(h.ctx(), h.ns, key, tok, longLease)
	if !errors.Is(err, revguard.ErrLeaseLost) {
		h.t.Fatalf("Renew(%s, token %s) = %v; want ErrLeaseLost", short(key), tokenString(tok), err)
	}
}

func (h *harness) release(key string, tok revguard.Token) {
	h.t.Helper()
	if err := h.s.Release(h.ctx(), h.ns, key, tok); err != nil {
		h.t.Fatalf("Release(%s, token %s) = %v; want nil", short(key), tokenString(tok), err)
	}
}

func (h *harness) set(key string, rev revguard.Revision) {
	h.t.Helper()
	if err := h.s.Set(h.ctx(), h.ns, key, rev); err != nil {
		h.t.Fatalf("Set(%s, %d): %v", short(key), rev, err)
	}
}

func (h *harness) forget(key string) {
	h.t.Helper()
	if err := h.s.Forget(h.ctx(), h.ns, key); err != nil {
		h.t.Fatalf("Forget(%s): %v", short(key), err)
	}
}

func (h *harness) peek(key string, want revguard.State) {
	h.t.Helper()
	h.peekIn(h.ns, key, want)
}

func (h *harness) peekIn(ns, key string, want revguard.State) {
	h.t.Helper()
	got, err := h.s.Peek(h.ctx(), ns, key)
	if err != nil {
		h.t.Fatalf("Peek(ns %s, %s): %v", short(ns), short(key), err)
	}
	if !sameState(got, want) {
		h.t.Fatalf("Peek(ns %s, %s) = %s; want %s", short(ns), short(key), stateString(got), stateString(want))
	}
}

// apply makes rev the applied revision the way a consumer does, by claiming
// and committing it under a token used for nothing else.
func (h *harness) apply(key string, rev revguard.Revision, before revguard.State) {
	h.t.Helper()
	tok := newToken()
	h.claim(h.req(key, rev, tok), revguard.Granted, before)
	h.commit(key, tok)
	h.peek(key, at(rev))
}
