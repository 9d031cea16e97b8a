package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Tests find the shared servers through these variables and skip without
// them, unless REVGUARD_REQUIRE_SERVERS=1 makes that a failure.
const (
	envAddr    = "REVGUARD_REDIS_ADDR"
	envCluster = "REVGUARD_REDIS_CLUSTER"
	envRequire = "REVGUARD_REQUIRE_SERVERS"
)

func missing(t testing.TB, env, what string) {
	t.Helper()
	if os.Getenv(envRequire) == "1" {
		t.Fatalf("%s is not set, and %s=1 requires a %s", env, envRequire, what)
	}
	t.Skipf("%s is not set: skipping the test against a %s", env, what)
}

// backend is a Redis deployment a test runs against, and how to make
// clients for it.
type backend struct {
	name   string
	client func(t testing.TB) redis.UniversalClient
}

// backends are miniredis, always, and the shared servers when they are set.
// A missing server turns into a skipped (or failed) subtest, not a missing
// one.
var backends = []backend{
	{"miniredis", func(t testing.TB) redis.UniversalClient { return miniClient(t, miniredis.RunT(t)) }},
	{"server", func(t testing.TB) redis.UniversalClient { return serverClient(t) }},
	{"cluster", func(t testing.TB) redis.UniversalClient { return clusterClient(t) }},
}

func forBackends(t *testing.T, fn func(t *testing.T, c redis.UniversalClient)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.client(t)) })
	}
}

func miniClient(t testing.TB, m *miniredis.Miniredis) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func serverClient(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv(envAddr)
	if addr == "" {
		missing(t, envAddr, "redis-server")
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func clusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	addrs := os.Getenv(envCluster)
	if addrs == "" {
		missing(t, envCluster, "Redis Cluster")
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testStore returns a store on c whose keys no other test uses, and deletes
// them when t ends: the shared servers are never flushed.
func testStore(t testing.TB, c redis.UniversalClient, opts ...Option) *Store {
	prefix := uniquePrefix()
	t.Cleanup(func() { deleteKeys(c, prefix) })
	return New(c, append([]Option{WithPrefix(prefix)}, opts...)...)
}

func uniquePrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "revguard-test:" + hex.EncodeToString(b) + ":"
}

func deleteKeys(c redis.UniversalClient, prefix string) {
	ctx := context.Background()
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	switch c := c.(type) {
	case *redis.ClusterClient:
		_ = c.ForEachMaster(ctx, del)
	case *redis.Client:
		_ = del(ctx, c)
	}
}
