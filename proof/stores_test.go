package proof

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/backends/redisstore"
	"github.com/revguard/revguard/internal/testenv"
)

// The shared servers, as .ci/run and scripts/servers.sh start them.
const (
	envRedis    = testenv.RedisAddr
	envCluster  = testenv.RedisCluster
	envPostgres = testenv.Postgres
	envMySQL    = testenv.MySQL
)

// server returns the value of env, or skips (fails, when servers are
// required) the test that needs it.
func server(t testing.TB, env, what string) string { return testenv.Server(t, env, what) }

// unique returns prefix followed by random hex.
func unique(prefix string) string { return testenv.Unique(prefix, 5) }

// storeOpts says how a test wants its store's client set up.
type storeOpts struct {
	// noRetry turns the client's own retries off, so that one call runs at
	// most once on the server and the history records every execution.
	noRetry bool
}

// opened is a store ready for one test, and what it offers.
type opened struct {
	store revguard.Store
	// slack is how far the store's lease clock may stray from the test's
	// monotonic clock (see leaseModel).
	slack time.Duration
	// effects, for stores with transactions, returns where Transactional
	// handlers record their completions, in the store's own database.
	effects func(t testing.TB) effectLog
}

// backend is one store the proof runs against.
type backend struct {
	name string
	sql  bool // offers the Transactional mode
	// variant is another setting of a store already listed (an isolation
	// level): the short proof checks its histories, the long one also
	// runs its storms.
	variant bool
	open    func(t testing.TB, o storeOpts) opened
}

// backends lists every store, in the order the tables print them. SQL
// stores are added by stores_sql_test.go.
var backends = []backend{
	{name: "memstore", open: func(t testing.TB, _ storeOpts) opened {
		return opened{store: memstore.New(), slack: 2 * time.Millisecond}
	}},
	{name: "miniredis", open: func(t testing.TB, o storeOpts) opened {
		m := miniredis.RunT(t)
		return openRedis(t, redis.NewClient(redisOptions(m.Addr(), o)), 5*time.Millisecond)
	}},
	{name: "redis", open: func(t testing.TB, o storeOpts) opened {
		addr := server(t, envRedis, "a redis-server")
		return openRedis(t, redis.NewClient(redisOptions(addr, o)), 10*time.Millisecond)
	}},
	// The Sentinel group's master, reached as its users reach it: a
	// variant, because the store runs the same scripts on one redis-server
	// as the redis row does; what differs, the failover, has storms of its
	// own.
	{name: "redis-sentinel", variant: true, open: func(t testing.TB, o storeOpts) opened {
		sentinels, master := testenv.Sentinel(t)
		fo := &redis.FailoverOptions{MasterName: master, SentinelAddrs: sentinels, PoolSize: 32}
		if o.noRetry {
			fo.MaxRetries = -1
		}
		return openRedis(t, redis.NewFailoverClient(fo), 10*time.Millisecond)
	}},
	{name: "redis-cluster", open: func(t testing.TB, o storeOpts) opened {
		addrs := server(t, envCluster, "a Redis Cluster")
		co := &redis.ClusterOptions{Addrs: strings.Split(addrs, ","), PoolSize: 32}
		if o.noRetry {
			co.MaxRetries = -1
		}
		return openRedis(t, redis.NewClusterClient(co), 10*time.Millisecond)
	}},
}

func redisOptions(addr string, o storeOpts) *redis.Options {
	ro := &redis.Options{Addr: addr, PoolSize: 32}
	if o.noRetry {
		ro.MaxRetries = -1
	}
	return ro
}

// openRedis returns a store on c under a prefix of its own, whose keys are
// deleted when t ends.
func openRedis(t testing.TB, c redis.UniversalClient, slack time.Duration) opened {
	prefix := unique("revguard-proof:") + ":"
	t.Cleanup(func() {
		deleteRedisKeys(c, prefix)
		_ = c.Close()
	})
	return opened{store: redisstore.New(c, redisstore.WithPrefix(prefix)), slack: slack}
}

func deleteRedisKeys(c redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testenv.DeleteKeys(ctx, c, prefix)
}
