package redisstore

import (
	"context"

	"github.com/revguard/revguard"
)

var _ revguard.Payloads = (*Store)(nil)

// CommitPayload implements [revguard.Payloads.CommitPayload] with commit.lua,
// which writes the payload into the entity's hash with the revision it
// records: one script, one key, so one atomic write on a cluster too.
func (s *Store) CommitPayload(ctx context.Context, ns, key string, token revguard.Token, payload []byte) error {
	if len(payload) == 0 {
		return s.Commit(ctx, ns, key, token)
	}
	if err := check(ns, key); err != nil {
		return err
	}
	if err := revguard.CheckPayload(payload); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	name, _ := s.name(ns, key)
	// A copy: a call its context abandons may still send it after the
	// caller has reused payload.
	v, err := s.write(ctx, commitScript, []string{name}, s.ttlArg, token.String(), string(payload))
	return commitAnswer(key, v, err)
}

// PeekPayload implements [revguard.Payloads.PeekPayload] with peekpayload.lua.
func (s *Store) PeekPayload(ctx context.Context, ns, key string) (revguard.State, []byte, error) {
	if err := check(ns, key); err != nil {
		return revguard.State{}, nil, err
	}
	if err := ctx.Err(); err != nil {
		return revguard.State{}, nil, err
	}
	name, _ := s.name(ns, key)
	v, err := s.run(ctx, peekPayloadScript, []string{name})
	if err != nil {
		return revguard.State{}, nil, err
	}
	a, ok := v.([]any)
	if !ok || len(a) < 1 || len(a) > 2 {
		return revguard.State{}, nil, replyError(peekPayloadScript, v)
	}
	st, err := state(peekPayloadScript, name, a[0])
	if err != nil || len(a) == 1 {
		return st, nil, err
	}
	p, ok := a[1].(string)
	if !ok {
		return revguard.State{}, nil, replyError(peekPayloadScript, v)
	}
	if p == "" {
		return st, nil, nil
	}
	return st, []byte(p), nil
}
