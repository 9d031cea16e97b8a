package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ErrUnsafeConfig is returned, wrapped with the reason, by [Store.Preflight]
// when the server may lose revisions behind the store's back.
var ErrUnsafeConfig = errors.New("redisstore: unsafe Redis configuration")

// Preflight reads the server's settings with INFO (not CONFIG GET, which
// managed services disable) and returns an error wrapping [ErrUnsafeConfig]
// for each one that lets Redis drop revisions silently:
//
//   - a maxmemory-policy of allkeys-*: when memory runs out Redis evicts any
//     key, and an evicted entity accepts stale and duplicate events again;
//   - a maxmemory-policy of volatile-* together with [WithTTL]: Redis evicts
//     the store's keys, which all have a TTL, before it runs out.
//
// With [WithWait] or [WithWaitAOF] it also returns an error for each master on
// which every write would fail: one wrapping [ErrNotReplicated] when fewer
// replicas are online (INFO replication) than the option waits for, one
// wrapping [ErrNoWaitAOF] when WithWaitAOF meets a server before 7.2, and
// one when WithWaitAOF waits for the master's own fsync and appendonly is
// off.
//
// On Redis Cluster it checks every master. It returns another error when
// the settings cannot be read. Call it at startup; it is not needed for the
// store to work.
//
// It does not check the client's ContextTimeoutEnabled: the store ends
// every call when its context ends whatever the client's options (see [New]),
// so a consumer bounds a stuck server with its context alone. The option
// only spares the store a goroutine for a call whose context has a
// deadline.
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
		_, err = within(s, ctx, func() (struct{}, error) { return struct{}{}, c.ForEachMaster(ctx, each) })
	case *redis.Ring:
		_, err = within(s, ctx, func() (struct{}, error) { return struct{}{}, c.ForEachShard(ctx, each) })
	default:
		return s.preflight(ctx, c, "")
	}
	if err != nil && err == ctx.Err() {
		return endedError(ctx, "preflight", err) // the abandoned calls may still add to errs
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
	err := s.evictions(ctx, c, at)
	if s.wait.on() {
		err = errors.Join(err, s.durable(ctx, c, at))
	}
	return err
}

// info reads one section of INFO, or returns when ctx ends.
func (s *Store) info(ctx context.Context, c redis.Cmdable, section string) (string, error) {
	return within(s, ctx, func() (string, error) { return c.Info(ctx, section).Result() })
}

// evictions checks the maxmemory-policy.
func (s *Store) evictions(ctx context.Context, c redis.Cmdable, at string) error {
	info, err := s.info(ctx, c, "memory")
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

// durable checks what WithWait or WithWaitAOF needs of a master.
func (s *Store) durable(ctx context.Context, c redis.Cmdable, at string) error {
	var errs []error
	if s.wait.aof {
		srv, err := s.info(ctx, c, "server")
		if err != nil {
			return fmt.Errorf("redisstore: preflight%s: reading INFO server: %w", at, err)
		}
		version, _ := infoField(srv, "redis_version")
		if !atLeast(version, 7, 2) {
			return fmt.Errorf("%w%s: the server is Redis %s, and %s would fail every write", ErrNoWaitAOF, at, version, s.wait)
		}
		if s.wait.local > 0 {
			p, err := s.info(ctx, c, "persistence")
			if err != nil {
				return fmt.Errorf("redisstore: preflight%s: reading INFO persistence: %w", at, err)
			}
			if aof, _ := infoField(p, "aof_enabled"); aof != "1" {
				errs = append(errs, fmt.Errorf("redisstore: preflight%s: appendonly is off, and %s waits for the master's own fsync: every write would fail", at, s.wait))
			}
		}
	}
	if s.wait.replicas > 0 {
		repl, err := s.info(ctx, c, "replication")
		if err != nil {
			return fmt.Errorf("redisstore: preflight%s: reading INFO replication: %w", at, err)
		}
		if role, _ := infoField(repl, "role"); role != "master" {
			errs = append(errs, fmt.Errorf("redisstore: preflight%s: the server is a %s, and %s needs the master", at, role, s.wait))
		} else if n := onlineReplicas(repl); n < s.wait.replicas {
			errs = append(errs, fmt.Errorf("%w%s: %d replicas are online, and %s waits for %d: every write would fail",
				ErrNotReplicated, at, n, s.wait, s.wait.replicas))
		}
	}
	return errors.Join(errs...)
}

// onlineReplicas counts the lines "slaveN:...,state=online,..." of INFO
// replication: a replica still loading its first copy does not answer WAIT.
func onlineReplicas(info string) int {
	n := 0
	for line := range strings.SplitSeq(info, "\n") {
		if strings.HasPrefix(line, "slave") && strings.Contains(line, ",state=online,") {
			n++
		}
	}
	return n
}

// atLeast reports whether version, "major.minor.patch", is at least
// major.minor.
func atLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	return err1 == nil && err2 == nil && (ma > major || ma == major && mi >= minor)
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
