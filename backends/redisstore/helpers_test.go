package redisstore

import (
	"context"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/revguard/revguard/internal/testenv"
)

// backend is a Redis deployment a test runs against, and how to make
// clients for it.
type backend struct {
	name   string
	client func(t testing.TB) redis.UniversalClient
}

// backends are miniredis, always, and the shared servers when they are set:
// the single redis-server, the Sentinel group's master reached both ways
// users configure Sentinel, and the cluster.
// A missing server turns into a skipped (or failed) subtest, not a missing
// one.
var backends = []backend{
	{"miniredis", func(t testing.TB) redis.UniversalClient { return miniClient(t, miniredis.RunT(t)) }},
	{"server", func(t testing.TB) redis.UniversalClient { return serverClient(t) }},
	{"sentinel", func(t testing.TB) redis.UniversalClient { return sentinelClient(t) }},
	{"sentinel-universal", func(t testing.TB) redis.UniversalClient { return sentinelUniversalClient(t) }},
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
	addr := testenv.Server(t, testenv.RedisAddr, "a redis-server")
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// sentinelClient reaches the master through the Sentinels, as
// redis.NewFailoverClient does.
func sentinelClient(t testing.TB) *redis.Client {
	t.Helper()
	sentinels, master := testenv.Sentinel(t)
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: master, SentinelAddrs: sentinels})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// sentinelUniversalClient reaches the master through the Sentinels as
// redis.NewUniversalClient does when given a master name, the other way
// users configure Sentinel.
func sentinelUniversalClient(t testing.TB) redis.UniversalClient {
	t.Helper()
	sentinels, master := testenv.Sentinel(t)
	c := redis.NewUniversalClient(&redis.UniversalOptions{MasterName: master, Addrs: sentinels})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func clusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	addrs := testenv.Server(t, testenv.RedisCluster, "a Redis Cluster")
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

func uniquePrefix() string { return testenv.Unique("revguard-test:", 6) + ":" }

func deleteKeys(c redis.UniversalClient, prefix string) {
	testenv.DeleteKeys(context.Background(), c, prefix)
}
