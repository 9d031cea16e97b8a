package proof

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

// TestProofCheckerHasTeeth shows that the linearizability check fails
// stores that break the contract in the ways a real one could: a check that
// passes everything proves nothing.
func TestProofCheckerHasTeeth(t *testing.T) {
	bugs := []struct {
		name string
		bug  func(*buggyStore)
	}{
		{"stale peek (a lagging replica)", func(b *buggyStore) { b.stalePeek = true }},
		{"two holders (busy answered granted)", func(b *buggyStore) { b.doubleGrant = true }},
		{"unfenced commit (any token commits)", func(b *buggyStore) { b.unfenced = true }},
		{"retried advance dropped as duplicate", func(b *buggyStore) { b.forgetRetry = true }},
	}
	for _, bug := range bugs {
		t.Run(bug.name, func(t *testing.T) {
			b := &buggyStore{Store: memstore.New(), seen: map[revguard.Token]bool{}, peeks: map[string]revguard.State{}}
			bug.bug(b)
			cfg := linConfig{name: "1h", clients: 6, keys: 6, ops: 2000, lease: time.Hour, hold: time.Millisecond}
			if res := checkLinearizable(t, "buggy", opened{store: b, slack: time.Millisecond}, cfg, false); res != porcupine.Illegal {
				t.Errorf("a store with the bug %q passed the check (%s)", bug.name, res)
			}
		})
	}
}

// buggyStore is memstore with one deliberate bug.
type buggyStore struct {
	revguard.Store
	stalePeek, doubleGrant, unfenced, forgetRetry bool

	mu    sync.Mutex
	seen  map[revguard.Token]bool
	peeks map[string]revguard.State
}

func (b *buggyStore) Claim(ctx context.Context, req revguard.Request) (revguard.Reply, error) {
	r, err := b.Store.Claim(ctx, req)
	if err != nil {
		return r, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.doubleGrant && r.Verdict == revguard.Busy && rand.IntN(3) == 0:
		r.Verdict = revguard.Granted
	case b.forgetRetry && req.Advance && r.Verdict == revguard.Granted && b.seen[req.Token]:
		r.Verdict = revguard.Dup
	}
	if r.Verdict == revguard.Granted {
		b.seen[req.Token] = true
	}
	return r, nil
}

func (b *buggyStore) Commit(ctx context.Context, ns, key string, token revguard.Token) error {
	err := b.Store.Commit(ctx, ns, key, token)
	if b.unfenced {
		return nil
	}
	return err
}

func (b *buggyStore) Peek(ctx context.Context, ns, key string) (revguard.State, error) {
	st, err := b.Store.Peek(ctx, ns, key)
	if err != nil || !b.stalePeek {
		return st, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old, ok := b.peeks[key]
	b.peeks[key] = st
	if ok && rand.IntN(2) == 0 {
		return old, nil
	}
	return st, nil
}
