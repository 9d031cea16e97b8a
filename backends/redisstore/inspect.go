package redisstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/internal/text"
)

var _ revguard.Inspector = (*Store)(nil)

// scanCount is the COUNT of each SCAN: how many keys the server looks at
// per call, so that no call holds its one thread for long.
const scanCount = 500

// Inspect implements [revguard.Inspector.Inspect] with inspect.lua, which
// reads the entity and the clock of the server that holds it in one step.
func (s *Store) Inspect(ctx context.Context, ns, key string) (revguard.Entity, error) {
	if err := check(ns, key); err != nil {
		return revguard.Entity{}, err
	}
	if err := ctx.Err(); err != nil {
		return revguard.Entity{}, err
	}
	name, _ := s.name(ns, key)
	v, err := s.run(ctx, inspectScript, []string{name})
	if err != nil {
		return revguard.Entity{}, err
	}
	a, ok := v.([]any)
	if !ok || len(a) != 3 {
		return revguard.Entity{}, replyError(inspectScript, v)
	}
	now, ok := a[2].(int64)
	if !ok {
		return revguard.Entity{}, replyError(inspectScript, v)
	}
	e, _, err := entityOf(inspectScript, name, key, a[:2], now)
	return e, err
}

// scanScript names Scan in the errors of entityOf; Scan runs no script.
var scanScript = script{name: "scan"}

// Scan implements [revguard.Inspector.Scan]. It runs SCAN with MATCH on the
// namespace's part of the key space, COUNT 500, and reads each page's
// entities with HMGET, pipelined with TIME, the clock their leases run on.
// On Redis Cluster it scans every master, and on a Ring every shard the
// Ring reports up, one after another, so that fn is never called
// concurrently. A key in the namespace's part of the key space that the
// store did not name is skipped; one that is not a hash, or whose fields
// do not parse, is an error wrapping [ErrCorrupt].
func (s *Store) Scan(ctx context.Context, ns, match string, fn func(revguard.Entity) error) error {
	if len(ns) > revguard.MaxNamespaceLen {
		return fmt.Errorf("%w: namespace of %d bytes, above the limit of %d", revguard.ErrInvalidKey, len(ns), revguard.MaxNamespaceLen)
	}
	keep, err := text.Matcher("redisstore", match)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	nodes, err := within(s, ctx, func() ([]redis.Cmdable, error) { return s.nodes(ctx) })
	if err != nil {
		return fmt.Errorf("redisstore: scan: listing the servers: %w", err)
	}
	pattern := s.scanPattern(ns, match)
	for _, c := range nodes {
		var cursor uint64
		for {
			page, err := within(s, ctx, func() (scanReply, error) {
				names, next, err := c.Scan(ctx, cursor, pattern, scanCount).Result()
				return scanReply{names, next}, err
			})
			names, next := page.names, page.next
			if err != nil {
				return fmt.Errorf("redisstore: scan: %w", err)
			}
			if err := s.scanPage(ctx, c, ns, names, keep, fn); err != nil {
				return err
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return nil
}

type scanReply struct {
	names []string
	next  uint64
}

// nodes returns the servers whose keys together are the store's: the
// masters of a cluster, the live shards of a Ring, or the one client.
func (s *Store) nodes(ctx context.Context) ([]redis.Cmdable, error) {
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		var (
			mu    sync.Mutex
			nodes []redis.Cmdable
		)
		err := c.ForEachMaster(ctx, func(_ context.Context, m *redis.Client) error {
			mu.Lock()
			nodes = append(nodes, m)
			mu.Unlock()
			return nil
		})
		return nodes, err
	case *redis.Ring:
		var nodes []redis.Cmdable
		for _, sh := range c.GetShardClients() {
			nodes = append(nodes, sh)
		}
		return nodes, nil
	}
	return []redis.Cmdable{s.client}, nil
}

// scanPattern is the SCAN MATCH pattern of the namespace's keys: the
// escaped name up to the key, followed by the part of match before its
// first wildcard, which narrows what the server sends back.
func (s *Store) scanPattern(ns, match string) string {
	b := append([]byte(s.prefix), '{')
	b = appendEscaped(b, ns, true)
	b = append(b, ':')
	if i := strings.IndexAny(match, `*?[\`); i >= 0 {
		match = match[:i]
	}
	b = appendEscaped(b, match, false)
	var p strings.Builder
	p.Grow(len(b) + 8)
	for _, c := range b {
		if strings.IndexByte(`*?[]\`, c) >= 0 {
			p.WriteByte('\\')
		}
		p.WriteByte(c)
	}
	p.WriteByte('*')
	return p.String()
}

// scanPage reads the entities that names, one page of SCAN on c, hold, and
// calls fn for each of them that is in ns and whose key keep keeps.
func (s *Store) scanPage(ctx context.Context, c redis.Cmdable, ns string, names []string, keep func(string) bool, fn func(revguard.Entity) error) error {
	type found struct{ name, key string }
	var page []found
	for _, name := range names {
		n, key, ok := s.parseName(name)
		if ok && n == ns && revguard.CheckKey(key) == nil && keep(key) {
			page = append(page, found{name, key})
		}
	}
	if len(page) == 0 {
		return nil
	}
	cmds := make([]*redis.SliceCmd, len(page))
	var now *redis.TimeCmd
	_, err := within(s, ctx, func() (struct{}, error) {
		_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, f := range page {
				cmds[i] = p.HMGet(ctx, f.name, "rev", "claim")
			}
			now = p.Time(ctx)
			return nil
		})
		return struct{}{}, nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: scan: %w", err)
	}
	t, err := now.Result()
	if err != nil {
		return fmt.Errorf("redisstore: scan: reading the server's TIME: %w", err)
	}
	ents := make([]revguard.Entity, 0, len(page))
	for i, f := range page {
		v, err := cmds[i].Result()
		if redis.HasErrorPrefix(err, "WRONGTYPE") {
			return fmt.Errorf("%w: scan: key %s is not a hash (not written by revguard; inspect it with redis-cli, then Set or Forget the entity, or delete the key)",
				ErrCorrupt, text.Quote(f.name))
		}
		if err != nil {
			return fmt.Errorf("redisstore: scan: %w", err)
		}
		if len(v) != 2 {
			return replyError(scanScript, v)
		}
		e, ok, err := entityOf(scanScript, f.name, f.key, v, t.UnixMilli())
		if err != nil {
			return err
		}
		if ok {
			ents = append(ents, e)
		}
	}
	for _, e := range ents {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// entityOf reads the fields rev and claim of the key name as HMGET replies
// them (nil when absent), now being the server's clock in Unix
// milliseconds. ok is false when the entity holds neither an applied
// revision nor a claim in force: for Scan, it is not there.
func entityOf(sc script, name, key string, fields []any, now int64) (e revguard.Entity, ok bool, err error) {
	e.Key = key
	rev, hasRev := fields[0].(string)
	claim, hasClaim := fields[1].(string)
	if (fields[0] != nil && !hasRev) || (fields[1] != nil && !hasClaim) {
		return e, false, replyError(sc, fields)
	}
	if hasRev {
		if rev == "" {
			return e, false, corruptField(sc, name, "rev", rev)
		}
		if e.State, err = state(sc, name, rev); err != nil {
			return e, false, err
		}
	}
	// A claim whose revision is rev has been committed (see prelude.lua).
	committed := hasRev && strings.HasPrefix(claim, rev+" ")
	if hasClaim && !committed {
		c, until, ok := parseClaim(claim)
		if !ok {
			return e, false, corruptField(sc, name, "claim", claim)
		}
		if left := until - now; left > 0 {
			c.Left = time.Duration(left) * time.Millisecond
			e.Claim = &c
		}
	}
	return e, e.Exists || e.Claim != nil, nil
}

func corruptField(sc script, name, field, v string) error {
	return fmt.Errorf("%w: %s: key %s field %s holds %s, which revguard did not write",
		ErrCorrupt, sc.name, text.Quote(name), field, text.Quote(v))
}

// parseClaim reads a claim field, "<revision> <token> <until>", as
// prelude.lua's parse does, and also requires the token revguard writes.
func parseClaim(s string) (c revguard.ClaimState, until int64, ok bool) {
	parts := strings.Split(s, " ")
	if len(parts) != 3 {
		return c, 0, false
	}
	r, tok, u := parts[0], parts[1], parts[2]
	rev, err := strconv.ParseUint(r, 10, 64)
	if err != nil || (r[0] == '0' && len(r) > 1) { // ParseUint takes no sign
		return c, 0, false
	}
	if len(tok) != hex.EncodedLen(len(c.Token)) {
		return c, 0, false
	}
	if _, err := hex.Decode(c.Token[:], []byte(tok)); err != nil {
		return c, 0, false
	}
	if u == "" || len(u) > 15 || !text.AllDigits(u) {
		return c, 0, false
	}
	until, _ = strconv.ParseInt(u, 10, 64) // at most 15 digits
	c.Rev = revguard.Revision(rev)
	return c, until, true
}
