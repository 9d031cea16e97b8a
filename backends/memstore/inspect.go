package memstore

import (
	"context"
	"time"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/internal/text"
)

var _ revguard.Inspector = (*Store)(nil)

// Inspect implements [revguard.Inspector.Inspect]. A claim taken with Lease 0
// is held until committed or released, and reports Left 0.
func (s *Store) Inspect(ctx context.Context, ns, key string) (revguard.Entity, error) {
	if err := ctx.Err(); err != nil {
		return revguard.Entity{}, err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[id{ns, key}]; e != nil {
		out, _ := s.entity(key, e)
		return out, nil
	}
	return revguard.Entity{Key: key}, nil
}

// Scan implements [revguard.Inspector.Scan]. It holds one shard's lock at a
// time, only while it copies that shard's matching entities, and calls fn
// with no lock held, so fn may use the store.
func (s *Store) Scan(ctx context.Context, ns, match string, fn func(revguard.Entity) error) error {
	matches, err := text.Matcher("memstore", match)
	if err != nil {
		return err
	}
	var page []revguard.Entity
	for i := range s.shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		sh := &s.shards[i]
		page = page[:0]
		sh.mu.Lock()
		for k, e := range sh.m {
			if k.ns != ns {
				continue
			}
			if !matches(k.key) {
				continue
			}
			if out, ok := s.entity(k.key, e); ok {
				page = append(page, out)
			}
		}
		sh.mu.Unlock()
		for _, out := range page {
			if err := fn(out); err != nil {
				return err
			}
		}
	}
	return nil
}

// entity reports e, the entry of key, with its shard locked; ok is false
// when it holds neither an applied revision nor a claim in force.
func (s *Store) entity(key string, e *entry) (out revguard.Entity, ok bool) {
	out = revguard.Entity{Key: key, State: revguard.State{Applied: e.applied, Exists: e.exists}}
	if e.claimed {
		var left time.Duration // a held claim has no lease
		if e.until != held {
			left = e.until - s.clock()
		}
		if e.until == held || left > 0 {
			out.Claim = &revguard.ClaimState{Rev: e.rev, Token: e.token, Left: left}
		}
	}
	return out, out.Exists || out.Claim != nil
}
