package revguard_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/backends/redisstore"
	"github.com/revguard/revguard/backends/sqlstore"
	"github.com/revguard/revguard/internal/testenv"
)

// BenchmarkBackends runs the guard on every store beside what a consumer
// would write without revguard, in the same process and the same pass: on a
// shared machine the load drifts from one minute to the next, and the ratio
// of two figures measured seconds apart survives that better than either
// figure alone.
//
//	go test -run '^$' -bench Backends -benchtime 1s .
//	scripts/bench.sh   (its own servers, benchstat, one table)
//
// Names are Backends/<backend>/<op>/<mode>/g=<goroutines>, and the baseline
// of each is the Backends/<backend>/<op>/raw-<what>/g=<goroutines> beside it:
// scripts/bench.sh pairs them by that rule alone. The servers come from the
// variables scripts/servers.sh prints; a backend whose variable is unset is
// skipped.
func BenchmarkBackends(b *testing.B) {
	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) { be.open(b).run(b) })
	}
}

var benchBackends = []struct {
	name string
	open func(b *testing.B) target
}{
	{"memstore", openMemstore},
	{"redis", func(b *testing.B) target {
		addr := testenv.Server(b, testenv.RedisAddr, "redis-server")
		t := redisTarget(b, redis.NewClient(&redis.Options{Addr: addr, PoolSize: maxGoroutines, MinIdleConns: maxGoroutines}))
		t.dropCache = true
		return t
	}},
	{"cluster", func(b *testing.B) target { return clusterTarget(b, testenv.RedisCluster, "Redis Cluster") }},
	// Against "cluster", what more shards bring. Only the cases that show it,
	// so that scripts/bench.sh can afford it on every run.
	{"cluster-1node", func(b *testing.B) target {
		t := clusterTarget(b, testenv.RedisCluster1, "one-node Redis Cluster")
		t.scaling = true
		return t
	}},
	{"sqlite", openSQLite},
	{"postgres", func(b *testing.B) target {
		t := openPostgres(b)
		t.dropCache, t.batchGoroutines = true, []int{8}
		return t
	}},
}

const (
	// perWorker is how many keys each goroutine owns. Enough that most
	// events update a row or hash that exists, as in a steady stream, and
	// that a SQL row is not rewritten back to back.
	perWorker = 100
	batchSize = perWorker // a batch is every key one goroutine owns
	// maxGoroutines sizes the connection pools, and fills them before the
	// first benchmark, so that no goroutine queues for a connection or
	// dials one while timed: that would measure the pool, not the store.
	maxGoroutines = 64
)

// target is one store, and the raw operations revguard is measured against
// on its server.
type target struct {
	store revguard.Store
	modes []revguard.Mode
	// one sets key's revision to rev if rev is higher, in one round trip, and
	// reports whether it did.
	oneName string
	one     func(ctx context.Context, key string, rev revguard.Revision) (bool, error)
	// many does what one does for every key, in one round trip, and reports
	// how many it set.
	manyName  string
	many      func(ctx context.Context, keys []string, rev revguard.Revision) (int, error)
	scaling   bool // only AtMostOnce at 64 goroutines, and the batch
	dropCache bool // the drop path with WithDropCache too
	// batchGoroutines are the goroutines HandleBatch100 runs with besides
	// one, each with batches of its own keys, as a consumer of several
	// partitions does.
	batchGoroutines []int
}

func nop(context.Context, event) error { return nil }

func (t target) run(b *testing.B) {
	ctx := context.Background()
	raw := func(key string, rev revguard.Revision) error {
		ok, err := t.one(ctx, key, rev)
		if err == nil && !ok {
			err = fmt.Errorf("%s did not apply revision %d", t.oneName, rev)
		}
		return err
	}
	goroutines, modes := []int{1, maxGoroutines}, t.modes
	if t.scaling {
		goroutines, modes = []int{maxGoroutines}, []revguard.Mode{revguard.AtMostOnce}
	}
	for _, g := range goroutines {
		b.Run(fmt.Sprintf("Handle/%s/g=%d", t.oneName, g), func(b *testing.B) {
			spread(b, freshKeys(g), raw)
		})
		for _, mode := range modes {
			guard := revguard.New(t.store, extract, revguard.WithMode(mode))
			b.Run(fmt.Sprintf("Handle/%s/g=%d", mode, g), func(b *testing.B) {
				spread(b, freshKeys(g), func(key string, rev revguard.Revision) error {
					return handle(guard, event{Key: key, Rev: rev}, revguard.Applied)
				})
			})
		}
	}

	claim := revguard.New(t.store, extract)
	for _, g := range append([]int{1}, t.batchGoroutines...) {
		b.Run(fmt.Sprintf("HandleBatch100/%s/g=%d", t.manyName, g), func(b *testing.B) {
			batches(b, g, func(keys []string, rev revguard.Revision) error {
				n, err := t.many(ctx, keys, rev)
				if err == nil && n != len(keys) {
					err = fmt.Errorf("%s applied %d of %d", t.manyName, n, len(keys))
				}
				return err
			})
		})
		b.Run(fmt.Sprintf("HandleBatch100/Claim/g=%d", g), func(b *testing.B) {
			batches(b, g, func(keys []string, rev revguard.Revision) error {
				events := make([]event, len(keys))
				for i, k := range keys {
					events[i] = event{Key: k, Rev: rev}
				}
				for i, r := range claim.HandleBatch(ctx, events, nop) {
					if err := check(r.Outcome, r.Err, revguard.Applied); err != nil {
						return fmt.Errorf("event %d: %w", i, err)
					}
				}
				return nil
			})
		})
	}
	if t.scaling {
		return
	}

	b.Run("drop/"+t.oneName+"/g=1", func(b *testing.B) {
		keys := freshKeys(1)
		prefill(b, keys[0], raw)
		spread(b, keys, func(key string, _ revguard.Revision) error {
			ok, err := t.one(ctx, key, prefilled-1)
			if err == nil && ok {
				err = fmt.Errorf("%s applied a stale revision", t.oneName)
			}
			return err
		})
	})
	drops := func(prefix string, guard *revguard.Guard[event]) {
		for _, c := range []struct {
			name string
			rev  revguard.Revision
			out  revguard.Outcome
		}{{"dup", prefilled, revguard.Duplicate}, {"stale", prefilled - 1, revguard.Stale}} {
			b.Run(prefix+c.name+"/g=1", func(b *testing.B) {
				keys := freshKeys(1)
				prefill(b, keys[0], func(key string, rev revguard.Revision) error {
					return handle(guard, event{Key: key, Rev: rev}, revguard.Applied)
				})
				spread(b, keys, func(key string, _ revguard.Revision) error {
					return handle(guard, event{Key: key, Rev: c.rev}, c.out)
				})
			})
		}
	}
	drops("drop/", claim)
	if t.dropCache {
		// Large enough for every key, so that every drop is answered from it.
		drops("drop/cached/", revguard.New(t.store, extract, revguard.WithDropCache(10*perWorker)))
	}
}

// handle runs e through g, and fails unless its outcome is want.
func handle(g *revguard.Guard[event], e event, want revguard.Outcome) error {
	out, err := g.Handle(context.Background(), e, nop)
	return check(out, err, want)
}

func check(out revguard.Outcome, err error, want revguard.Outcome) error {
	if err == nil && out != want {
		err = fmt.Errorf("outcome %s, want %s", out, want)
	}
	return err
}

// freshKeys returns perWorker keys for each of g goroutines, new on every
// call: -count and the growing b.N call a benchmark function again and
// again, and each call's revisions start at 1.
func freshKeys(g int) [][]string {
	tag := testenv.Unique("", 6)
	keys := make([][]string, g)
	for w := range keys {
		keys[w] = make([]string, perWorker)
		for k := range keys[w] {
			keys[w][k] = "bench:" + tag + ":" + strconv.Itoa(w) + ":" + strconv.Itoa(k)
		}
	}
	return keys
}

// prefilled is the revision of every entity on the drop path, where each
// event redelivers it (a duplicate) or the one before (stale).
const prefilled revguard.Revision = 100

// prefill takes every key to revision prefilled, outside the timer.
func prefill(b *testing.B, keys []string, apply func(key string, rev revguard.Revision) error) {
	b.Helper()
	for _, k := range keys {
		if err := apply(k, prefilled); err != nil {
			b.Fatal(err)
		}
	}
}

// spread applies b.N events from len(keys) goroutines, each on keys of its
// own, as partitioned consumers do: event j of a goroutine goes to its key
// j%perWorker at revision j/perWorker+1, so that each event is newer.
func spread(b *testing.B, keys [][]string, apply func(key string, rev revguard.Revision) error) {
	testenv.Spread(b, len(keys), func(w, j int) error {
		key, rev := keys[w][j%perWorker], revguard.Revision(j/perWorker+1)
		if err := apply(key, rev); err != nil {
			return fmt.Errorf("%s revision %d: %w", key, rev, err)
		}
		return nil
	})
	eventsPerSec(b, 1)
}

// batches applies b.N batches of batchSize keys from g goroutines, each
// with keys of its own; a goroutine's i-th batch is at revision i+1.
func batches(b *testing.B, g int, apply func(keys []string, rev revguard.Revision) error) {
	keys := freshKeys(g)
	testenv.Spread(b, g, func(w, i int) error {
		if err := apply(keys[w][:batchSize], revguard.Revision(i+1)); err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		return nil
	})
	eventsPerSec(b, batchSize)
}

func eventsPerSec(b *testing.B, perOp int) {
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "events/s")
}

// rawMap is the in-process baseline: a map behind one mutex.
type rawMap struct {
	mu   sync.Mutex
	revs map[string]revguard.Revision
}

func (m *rawMap) set(key string, rev revguard.Revision) bool {
	if cur, ok := m.revs[key]; ok && cur >= rev {
		return false
	}
	m.revs[key] = rev
	return true
}

func openMemstore(*testing.B) target {
	m := &rawMap{revs: make(map[string]revguard.Revision)}
	return target{
		store:   memstore.New(),
		modes:   []revguard.Mode{revguard.Claim, revguard.AtMostOnce},
		oneName: "raw-map",
		one: func(_ context.Context, key string, rev revguard.Revision) (bool, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			return m.set(key, rev), nil
		},
		manyName: "raw-map",
		many: func(_ context.Context, keys []string, rev revguard.Revision) (int, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			n := 0
			for _, k := range keys {
				if m.set(k, rev) {
					n++
				}
			}
			return n, nil
		},
	}
}

// rawCAS is the Redis baseline: a one-key set-if-greater. Its tonumber is
// exactly what revguard cannot afford (doubles above 2^53), which only
// flatters it.
var rawCAS = redis.NewScript(`local c = redis.call('GET', KEYS[1])
if c and tonumber(c) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1]) return 1`)

func clusterTarget(b *testing.B, env, what string) target {
	addrs := strings.Split(testenv.Server(b, env, what), ",")
	return redisTarget(b, redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: maxGoroutines, MinIdleConns: maxGoroutines}))
}

// redisTarget closes c when b ends, and deletes every key it wrote: the
// shared servers are never flushed.
func redisTarget(b *testing.B, c redis.UniversalClient) target {
	ctx := context.Background()
	prefix := testenv.Unique("revguard-bench:", 6) + ":"
	b.Cleanup(func() {
		testenv.DeleteKeys(ctx, c, prefix)
		_ = c.Close()
	})
	// Pipelined calls cannot fall back to EVAL; this also loads it on every
	// cluster node.
	if err := rawCAS.Load(ctx, c).Err(); err != nil {
		b.Fatalf("loading the baseline script: %v", err)
	}
	return target{
		store:   redisstore.New(c, redisstore.WithPrefix(prefix)),
		modes:   []revguard.Mode{revguard.Claim, revguard.AtMostOnce},
		oneName: "raw-evalsha",
		one: func(ctx context.Context, key string, rev revguard.Revision) (bool, error) {
			n, err := rawCAS.Run(ctx, c, []string{prefix + key}, uint64(rev)).Int()
			return n == 1, err
		},
		manyName: "raw-pipelined-evalsha",
		many: func(ctx context.Context, keys []string, rev revguard.Revision) (int, error) {
			cmds := make([]*redis.Cmd, len(keys))
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, k := range keys {
					cmds[i] = rawCAS.EvalSha(ctx, p, []string{prefix + k}, uint64(rev))
				}
				return nil
			})
			n := 0
			for _, cmd := range cmds {
				if v, _ := cmd.Int(); v == 1 {
					n++
				}
			}
			return n, err
		},
	}
}

func openSQLite(b *testing.B) target {
	path := filepath.Join(b.TempDir(), "bench.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	// SQLite has one writer at a time: writers queueing for the one
	// connection beat writers sleeping in the busy handler.
	db.SetMaxOpenConns(1)
	values := strings.Repeat("(?, ?), ", batchSize)
	return sqlTarget(b, db, sqlstore.SQLite, "raw-multi-values",
		`INSERT INTO %[1]s (k, rev) VALUES (?, ?)`,
		`INSERT INTO %[1]s (k, rev) VALUES `+values[:len(values)-2],
		func(keys []string, rev int64) []any {
			args := make([]any, 0, 2*len(keys))
			for _, k := range keys {
				args = append(args, k, rev)
			}
			return args
		})
}

func openPostgres(b *testing.B) target {
	db, err := sql.Open("pgx", testenv.Server(b, testenv.Postgres, "PostgreSQL server"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(maxGoroutines)
	db.SetMaxIdleConns(maxGoroutines)
	conns := make([]*sql.Conn, maxGoroutines)
	for i := range conns {
		if conns[i], err = db.Conn(context.Background()); err != nil {
			b.Fatalf("PostgreSQL at %s: %v", testenv.Postgres, err)
		}
	}
	for _, c := range conns {
		_ = c.Close()
	}
	return sqlTarget(b, db, sqlstore.Postgres, "raw-unnest",
		`INSERT INTO %[1]s (k, rev) VALUES ($1, $2)`,
		`INSERT INTO %[1]s (k, rev) SELECT * FROM unnest($1::text[], $2::bigint[])`,
		func(keys []string, rev int64) []any {
			revs := make([]int64, len(keys))
			for i := range revs {
				revs[i] = rev
			}
			return []any{keys, revs}
		})
}

// sqlTarget makes a store and a raw table of their own on db, both dropped
// when b ends, since the servers are shared. one and many are the raw
// INSERTs, which the upsert clause completes; args makes many's arguments.
func sqlTarget(b *testing.B, db *sql.DB, d sqlstore.Dialect, manyName, one, many string, args func(keys []string, rev int64) []any) target {
	ctx := context.Background()
	store, err := sqlstore.New(db, d, sqlstore.WithTable(testenv.Unique("rgbench_", 6)))
	if err != nil {
		b.Fatal(err)
	}
	raw := testenv.Unique("rgbench_raw_", 6)
	b.Cleanup(func() {
		for _, t := range []string{store.Table(), raw} {
			if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+t); err != nil {
				b.Errorf("dropping %s: %v", t, err)
			}
		}
	})
	if err := store.CreateTable(ctx); err != nil {
		b.Fatalf("%s: %v", d, err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+raw+" (k text PRIMARY KEY, rev bigint NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	// The revision check and the write in one statement: what a consumer
	// writes by hand.
	const upsert = ` ON CONFLICT (k) DO UPDATE SET rev = excluded.rev WHERE %[1]s.rev < excluded.rev`
	one, many = fmt.Sprintf(one+upsert, raw), fmt.Sprintf(many+upsert, raw)
	return target{
		store:   store,
		modes:   []revguard.Mode{revguard.Claim, revguard.AtMostOnce, revguard.Transactional},
		oneName: "raw-upsert",
		one: func(ctx context.Context, key string, rev revguard.Revision) (bool, error) {
			res, err := db.ExecContext(ctx, one, key, int64(rev))
			if err != nil {
				return false, err
			}
			n, err := res.RowsAffected()
			return n == 1, err
		},
		manyName: manyName,
		many: func(ctx context.Context, keys []string, rev revguard.Revision) (int, error) {
			res, err := db.ExecContext(ctx, many, args(keys, int64(rev))...)
			if err != nil {
				return 0, err
			}
			n, err := res.RowsAffected()
			return int(n), err
		},
	}
}
