package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ErrUnsafeConfig is returned, wrapped with the reason, by Preflight when
// the server may lose revisions behind the store's back.
var ErrUnsafeConfig = errors.New("redisstore: unsafe Redis configuration")

// Preflight reads the server's settings with INFO (not CONFIG GET, which
// managed services disable) and returns an error wrapping ErrUnsafeConfig
// for each one that lets Redis drop revisions silently:
//
//   - a maxmemory-policy of allkeys-*: when memory runs out Redis evicts any
//     key, and an evicted entity accepts stale and duplicate events again;
//   - a maxmemory-policy of volatile-* together with WithTTL: Redis evicts
//     the store's keys, which all have a TTL, before it runs out.
//
// On Redis Cluster it checks every master. It returns another error when
// the settings cannot be read. Call it at startup; it is not needed for the
// store to work.
func (s *Store) Preflight(ctx context.Context) error {
	var (
		mu   sync.Mutex
		errs []error
	)
	each := func(ctx context.Context, c *redis.Client) error {
		if err := s.preflight(ctx, c, c.Options().Addr); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		return nil
	}
	var err error
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, each)
	case *redis.Ring:
		err = c.ForEachShard(ctx, each)
	default:
		err = s.preflight(ctx, c, "")
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("redisstore: preflight: %w", err))
	}
	return errors.Join(errs...)
}

func (s *Store) preflight(ctx context.Context, c redis.Cmdable, addr string) error {
	at := ""
	if addr != "" {
		at = " on " + addr
	}
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return fmt.Errorf("redisstore: preflight%s: reading INFO memory: %w", at, err)
	}
	policy, ok := infoField(info, "maxmemory_policy")
	if !ok {
		return fmt.Errorf("redisstore: preflight%s: INFO memory does not report maxmemory_policy, so whether Redis evicts revisions is unknown", at)
	}
	switch {
	case strings.HasPrefix(policy, "allkeys-"):
		return fmt.Errorf("%w%s: maxmemory-policy is %s: once maxmemory is reached Redis evicts any key, and an entity whose revision was evicted accepts stale and duplicate events again; use noeviction",
			ErrUnsafeConfig, at, policy)
	case strings.HasPrefix(policy, "volatile-") && s.ttl > 0:
		return fmt.Errorf("%w%s: maxmemory-policy is %s and the store sets WithTTL(%s): once maxmemory is reached Redis evicts revisions before their TTL, and an evicted entity accepts stale and duplicate events again; use noeviction",
			ErrUnsafeConfig, at, policy, s.ttl)
	}
	return nil
}

// infoField returns the value of field in the text INFO replies.
func infoField(info, field string) (string, bool) {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v, true
		}
	}
	return "", false
}
