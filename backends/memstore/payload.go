package memstore

import (
	"bytes"
	"context"

	"github.com/revguard/revguard"
)

var _ revguard.Payloads = (*Store)(nil)

// CommitPayload implements [revguard.Payloads.CommitPayload]. The store keeps
// a copy of payload, so the caller may reuse it.
func (s *Store) CommitPayload(ctx context.Context, ns, key string, token revguard.Token, payload []byte) error {
	if err := revguard.CheckPayload(payload); err != nil {
		return err
	}
	var kept []byte
	if len(payload) > 0 {
		kept = bytes.Clone(payload)
	}
	return s.commit(ctx, ns, key, token, kept)
}

// PeekPayload implements [revguard.Payloads.PeekPayload].
func (s *Store) PeekPayload(ctx context.Context, ns, key string) (revguard.State, []byte, error) {
	if err := ctx.Err(); err != nil {
		return revguard.State{}, nil, err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[id{ns, key}]
	if e == nil {
		return revguard.State{}, nil, nil
	}
	return revguard.State{Applied: e.applied, Exists: e.exists}, bytes.Clone(e.payload), nil
}
