package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/redisstore"
	"github.com/revguard/revguard/backends/sqlstore"
	"github.com/revguard/revguard/internal/testenv"
)

// bin is the revguard binary TestMain builds: the tests run it as an
// operator does, exit codes and all.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "revguard-cmd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "revguard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building revguard: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the command left.
type result struct {
	stdout, stderr string
	code           int
}

// revguardCmd runs the binary with args and stdin (a pipe, so never a
// terminal) and returns what it printed and its exit code.
func revguardCmd(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), envStore+"=")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err, "running revguard %s", strings.Join(args, " "))
	}
	t.Logf("revguard %s -> %d\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// A fixture is a store the command is pointed at, and the same store
// through the Go API for seeding and checking, in a namespace and key
// space (prefix or table) of the test's own.
type fixture struct {
	name  string
	args  []string // -store URL and -prefix or -table
	store revguard.Store
	ns    string

	rdb    redis.UniversalClient // Redis fixtures
	prefix string
	db     *sql.DB // SQL fixtures
}

// cmd is args for the command: name, the fixture's flags and namespace,
// then rest.
func (f *fixture) cmd(name string, rest ...string) []string {
	return append(append([]string{name}, f.args...), append([]string{"-namespace", f.ns}, rest...)...)
}

type fixtureMaker struct {
	name string
	make func(t *testing.T) *fixture
}

// fixtures are the stores the command is tested on. Those whose server is
// not configured skip (or fail, under REVGUARD_REQUIRE_SERVERS=1).
var fixtures = []fixtureMaker{
	{"redis", redisFixture},
	{"sentinel", sentinelFixture},
	{"cluster", clusterFixture},
	{"postgres", postgresFixture},
	{"mysql", mysqlFixture},
	{"sqlite", sqliteFixture},
}

func forFixtures(t *testing.T, fn func(t *testing.T, f *fixture)) {
	for _, m := range fixtures {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f := m.make(t)
			f.name = m.name
			fn(t, f)
		})
	}
}

func redisFixture(t *testing.T) *fixture {
	addr := testenv.Server(t, testenv.RedisAddr, "a redis-server")
	return redisFixtureOn(t, redis.NewClient(&redis.Options{Addr: addr}), "redis://"+addr)
}

// sentinelFixture points the command at the master through its Sentinels,
// as redis+sentinel://s1,s2,s3/MASTER does.
func sentinelFixture(t *testing.T) *fixture {
	sentinels, master := testenv.Sentinel(t)
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: master, SentinelAddrs: sentinels})
	return redisFixtureOn(t, c, "redis+sentinel://"+strings.Join(sentinels, ",")+"/"+master)
}

func clusterFixture(t *testing.T) *fixture {
	addrs := testenv.Server(t, testenv.RedisCluster, "a Redis Cluster")
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
	return redisFixtureOn(t, c, "redis+cluster://"+addrs)
}

func redisFixtureOn(t *testing.T, c redis.UniversalClient, url string) *fixture {
	prefix := testenv.Unique("revguard-cmd-test:", 6) + ":"
	t.Cleanup(func() {
		testenv.DeleteKeys(context.Background(), c, prefix)
		_ = c.Close()
	})
	return &fixture{
		args:   []string{"-store", url, "-prefix", prefix},
		store:  redisstore.New(c, redisstore.WithPrefix(prefix)),
		ns:     testenv.Unique("ns-", 4),
		rdb:    c,
		prefix: prefix,
	}
}

func postgresFixture(t *testing.T) *fixture {
	dsn := testenv.Server(t, testenv.Postgres, "PostgreSQL")
	return sqlFixture(t, "pgx", dsn, dsn, sqlstore.Postgres)
}

func mysqlFixture(t *testing.T) *fixture {
	dsn := testenv.Server(t, testenv.MySQL, "MariaDB")
	return sqlFixture(t, "mysql", dsn, mysqlURL(t, dsn), sqlstore.MySQL)
}

// mysqlURL turns the go-sql-driver DSN the tests are given into the
// mysql:// URL an operator writes.
func mysqlURL(t testing.TB, dsn string) string {
	cfg, err := mysql.ParseDSN(dsn)
	require.NoError(t, err)
	u := url.URL{Scheme: "mysql", User: url.UserPassword(cfg.User, cfg.Passwd), Host: cfg.Addr, Path: "/" + cfg.DBName}
	return u.String()
}

func sqliteFixture(t *testing.T) *fixture {
	path := filepath.Join(t.TempDir(), "revs.db")
	return sqlFixture(t, "sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)", "sqlite:"+path, sqlstore.SQLite)
}

func sqlFixture(t *testing.T, driver, dsn, url string, d sqlstore.Dialect) *fixture {
	db, err := sql.Open(driver, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	table := testenv.Unique("revguard_cmd_", 6)
	s, err := sqlstore.New(db, d, sqlstore.WithTable(table))
	require.NoError(t, err)
	require.NoError(t, s.CreateTable(context.Background()))
	t.Cleanup(func() {
		_, err := db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+s.Table())
		require.NoError(t, err)
	})
	return &fixture{args: []string{"-store", url, "-table", table}, store: s, ns: testenv.Unique("ns-", 4), db: db}
}

// token returns a fresh claim token.
func token(t testing.TB) revguard.Token {
	var tok revguard.Token
	_, err := rand.Read(tok[:])
	require.NoError(t, err)
	return tok
}

// claim takes a claim on key at rev for lease, as a consumer whose handler
// is running holds it.
func (f *fixture) claim(t testing.TB, key string, rev revguard.Revision, lease time.Duration) revguard.Token {
	tok := token(t)
	rep, err := f.store.Claim(context.Background(), revguard.Request{Namespace: f.ns, Key: key, Rev: rev, Token: tok, Lease: lease})
	require.NoError(t, err)
	require.Equal(t, revguard.Granted, rep.Verdict)
	return tok
}

func (f *fixture) set(t testing.TB, key string, rev revguard.Revision) {
	require.NoError(t, f.store.Set(context.Background(), f.ns, key, rev))
}

// seed records revs[i] as applied for keys[i], a batch at a time.
func (f *fixture) seed(t testing.TB, keys []string, revs []revguard.Revision) {
	const batch = 200
	for i := 0; i < len(keys); i += batch {
		var reqs []revguard.Request
		for j := i; j < min(i+batch, len(keys)); j++ {
			reqs = append(reqs, revguard.Request{Namespace: f.ns, Key: keys[j], Rev: revs[j], Token: token(t), Lease: time.Minute, Advance: true})
		}
		reps, err := f.store.ClaimBatch(context.Background(), reqs)
		require.NoError(t, err)
		for _, r := range reps {
			require.Equal(t, revguard.Granted, r.Verdict)
		}
	}
}

func (f *fixture) peek(t testing.TB, key string) revguard.State {
	st, err := f.store.Peek(context.Background(), f.ns, key)
	require.NoError(t, err)
	return st
}

// redisKeys counts the keys matching pattern, on every master of a cluster.
func (f *fixture) redisKeys(t testing.TB, pattern string) int {
	ctx := context.Background()
	var mu sync.Mutex
	n := 0
	count := func(ctx context.Context, c *redis.Client) error {
		keys, err := c.Keys(ctx, pattern).Result()
		mu.Lock()
		n += len(keys)
		mu.Unlock()
		return err
	}
	switch c := f.rdb.(type) {
	case *redis.ClusterClient:
		require.NoError(t, c.ForEachMaster(ctx, count))
	case *redis.Client:
		require.NoError(t, count(ctx, c))
	}
	return n
}
