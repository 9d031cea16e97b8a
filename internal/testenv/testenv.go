// Package testenv finds the real servers that revguard's tests, benchmarks
// and proof run against (scripts/servers.sh starts them and prints these
// variables), and decides what a test does when one is absent: skip, or
// fail when REVGUARD_REQUIRE_SERVERS=1, as CI sets it, so that a missing
// server can never pass as a skipped test.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The variables scripts/servers.sh prints.
const (
	RedisAddr = "REVGUARD_REDIS_ADDR"
	// RedisSentinel lists Sentinels, host:port separated by commas; they
	// monitor a master with a replica.
	RedisSentinel = "REVGUARD_REDIS_SENTINEL"
	// RedisMaster is the name RedisSentinel's Sentinels know the master by.
	RedisMaster = "REVGUARD_REDIS_MASTER"
	// RedisCluster lists seed nodes of a cluster of 3 masters with a replica
	// each; after a failover a seed may be a replica.
	RedisCluster  = "REVGUARD_REDIS_CLUSTER"
	RedisCluster1 = "REVGUARD_REDIS_CLUSTER1" // a one-node cluster: scripts/servers.sh start -cluster1
	Postgres      = "REVGUARD_POSTGRES_DSN"
	MySQL         = "REVGUARD_MYSQL_DSN"
	Require       = "REVGUARD_REQUIRE_SERVERS"
)

// Required reports whether a missing server fails the run.
func Required() bool { return os.Getenv(Require) == "1" }

// Missing ends tb because why (what is absent): a failure when servers are
// required, a skip otherwise.
func Missing(tb testing.TB, why string) {
	tb.Helper()
	if Required() {
		tb.Fatalf("%s, and %s=1 requires it", why, Require)
	}
	tb.Skipf("%s: skipping (scripts/servers.sh start provides it)", why)
}

// Server returns the value of env, naming what it points at, or ends tb
// with Missing.
func Server(tb testing.TB, env, what string) string {
	tb.Helper()
	v := os.Getenv(env)
	if v == "" {
		Missing(tb, env+" is not set (the address of "+what+")")
	}
	return v
}

// Sentinel returns the addresses of the Sentinels and the name of the
// master they monitor, or ends tb with Missing.
func Sentinel(tb testing.TB) (sentinels []string, master string) {
	tb.Helper()
	addrs := Server(tb, RedisSentinel, "the Redis Sentinels")
	master = os.Getenv(RedisMaster)
	if master == "" {
		Missing(tb, RedisMaster+" is not set (the name of the master the Sentinels monitor)")
	}
	return strings.Split(addrs, ","), master
}

// Unique returns prefix followed by n random bytes in hex, for namespaces,
// key prefixes and table names no other run uses: the shared servers are
// never flushed.
func Unique(prefix string, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b)
}

// DeleteKeys unlinks every key that starts with prefix, on every master of
// a cluster.
func DeleteKeys(ctx context.Context, c redis.UniversalClient, prefix string) {
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Unlink(ctx, iter.Val())
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

// Spread runs b.N operations split over g goroutines, timed: op(w, i) is
// goroutine w's i-th, so that each can work on keys of its own, as
// partitioned consumers do. A goroutine stops at its first error, which
// fails b once every goroutine has returned (only b's own goroutine may
// call Fatal).
func Spread(b *testing.B, g int, op func(w, i int) error) {
	errs := make(chan error, g)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for w := range g {
		n := b.N / g
		if w < b.N%g {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if err := op(w, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
