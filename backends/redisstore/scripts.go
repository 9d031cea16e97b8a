package redisstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/internal/text"
)

// Each script is one file under lua/ whose header names its KEYS, ARGV and
// reply. Claim and ClaimBatch share claim.lua, Commit, CommitBatch and
// CommitPayload share commit.lua, so the single and batch paths cannot decide differently; the
// advance of AtMostOnce is claim.lua with its advance flag. The scripts that
// meet claims start with prelude.lua, so that they read an entity alike.
var (
	//go:embed lua/prelude.lua
	preludeSrc string
	//go:embed lua/claim.lua
	claimSrc string
	//go:embed lua/commit.lua
	commitSrc string
	//go:embed lua/renew.lua
	renewSrc string
	//go:embed lua/release.lua
	releaseSrc string
	//go:embed lua/peek.lua
	peekSrc string
	//go:embed lua/set.lua
	setSrc string
	//go:embed lua/forget.lua
	forgetSrc string
	//go:embed lua/inspect.lua
	inspectSrc string
	//go:embed lua/peekpayload.lua
	peekPayloadSrc string
	//go:embed lua/touch.lua
	touchSrc string
)

// script is a Lua script and the name its errors carry.
type script struct {
	name string
	*redis.Script
}

var (
	claimScript   = script{"claim", redis.NewScript(preludeSrc + claimSrc)}
	commitScript  = script{"commit", redis.NewScript(preludeSrc + commitSrc)}
	renewScript   = script{"renew", redis.NewScript(preludeSrc + renewSrc)}
	releaseScript = script{"release", redis.NewScript(preludeSrc + releaseSrc)}
	peekScript    = script{"peek", redis.NewScript(peekSrc)}
	setScript     = script{"set", redis.NewScript(setSrc)}
	forgetScript  = script{"forget", redis.NewScript(forgetSrc)}
	inspectScript = script{"inspect", redis.NewScript(inspectSrc)}

	peekPayloadScript = script{"peek payload", redis.NewScript(peekPayloadSrc)}
	touchScript       = script{"touch", redis.NewScript(touchSrc)}
)

// run runs sc on keys, loading it when the server does not have it, and
// returns when ctx ends if that comes first (deadline.go).
func (s *Store) run(ctx context.Context, sc script, keys []string, args ...any) (any, error) {
	var (
		v   any
		err error
	)
	if s.direct(ctx) {
		v, err = sc.Run(ctx, s.client, keys, args...).Result()
	} else {
		v, err = bounded(ctx, func() (any, error) { return sc.Run(ctx, s.client, keys, args...).Result() })
	}
	if err != nil {
		return nil, s.callError(ctx, sc, keys, err)
	}
	return v, nil
}

// callError is scriptError, or, once ctx has ended, the context's error.
func (s *Store) callError(ctx context.Context, sc script, keys []string, err error) error {
	if e := endedError(ctx, sc.name, err); e != nil {
		return e
	}
	return s.scriptError(sc, keys, err)
}

// scriptError gives err the context of the call that failed: the script and,
// for a key the script refused, the key's name.
func (s *Store) scriptError(sc script, keys []string, err error) error {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		if msg, ok := strings.CutPrefix(rerr.Error(), "CORRUPT "); ok {
			idx, what, _ := strings.Cut(msg, " ")
			if i, e := strconv.Atoi(idx); e == nil && i >= 1 && i <= len(keys) {
				return fmt.Errorf("%w: %s: key %s %s (not written by revguard; inspect it with redis-cli, then Set or Forget the entity, or delete the key)",
					ErrCorrupt, sc.name, text.Quote(keys[i-1]), what)
			}
			return fmt.Errorf("%w: %s: %s", ErrCorrupt, sc.name, msg)
		}
	}
	return fmt.Errorf("redisstore: %s: %w", sc.name, err)
}

func replyError(sc script, v any) error {
	return fmt.Errorf("redisstore: %s script: unexpected reply %s", sc.name, describe(v))
}

// describe shows an unexpected reply without flooding an error message.
func describe(v any) string {
	s := fmt.Sprintf("%T %v", v, v)
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}

// ints reads a reply that must be an array of n integers.
func ints(sc script, v any, n int) ([]int64, error) {
	a, ok := v.([]any)
	if !ok || len(a) != n {
		return nil, replyError(sc, v)
	}
	out := make([]int64, n)
	for i, x := range a {
		if out[i], ok = x.(int64); !ok {
			return nil, replyError(sc, v)
		}
	}
	return out, nil
}

// integer reads a reply that must be one integer.
func integer(sc script, v any) (int64, error) {
	n, ok := v.(int64)
	if !ok {
		return 0, replyError(sc, v)
	}
	return n, nil
}

// state reads an applied revision as the scripts reply it: canonical decimal,
// or "" for none.
func state(sc script, key string, v any) (revguard.State, error) {
	s, ok := v.(string)
	if !ok {
		return revguard.State{}, replyError(sc, v)
	}
	if s == "" {
		return revguard.State{}, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	// ParseUint takes no sign: with no leading zero the decimal is canonical.
	if err != nil || (s[0] == '0' && len(s) > 1) {
		return revguard.State{}, fmt.Errorf("%w: %s: key %s field rev holds %s, not a revision in decimal",
			ErrCorrupt, sc.name, text.Quote(key), text.Quote(s))
	}
	return revguard.State{Applied: revguard.Revision(n), Exists: true}, nil
}
