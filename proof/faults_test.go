package proof

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/redisstore"
	"github.com/revguard/revguard/backends/sqlstore"
	"github.com/sirupsen/logrus"
)

// Network faults come from toxiproxy, run inside the test process: a proxy
// between the client and the server that adds latency with jitter, swallows
// replies after the server executed the call, and closes connections in
// the middle of a call. The server itself is restarted (SIGKILL, then
// started again) for the outage.

func init() {
	logrus.SetLevel(logrus.PanicLevel) // toxiproxy logs every connection, and every refused one
	redis.SetLogger(quiet{})           // go-redis logs every failed dial during outages
	_ = mysql.SetLogger(quiet{})       // go-sql-driver logs every broken connection
	toxics.Register("swallow", new(swallowToxic))
	toxics.Register("armcommit", new(commitToxic))
}

// swallowToxic drops server replies while swallowArmed is above zero, one
// chunk per count, and passes everything else: the server has executed the
// call, the client never hears of it and, for Redis, times out and sends it
// again on a new connection.
type swallowToxic struct{}

var (
	swallowArmed atomic.Int64
	swallowed    atomic.Int64
)

func (*swallowToxic) Pipe(stub *toxics.ToxicStub) {
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if takeSwallow() {
				swallowed.Add(1)
				continue
			}
			select {
			case stub.Output <- c:
			case <-stub.Interrupt:
				stub.Output <- c
				return
			}
		}
	}
}

func takeSwallow() bool {
	for {
		n := swallowArmed.Load()
		if n <= 0 {
			return false
		}
		if swallowArmed.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
func (quiet) Print(...any)                           {}

// faultProxy is one toxiproxy proxy in front of a server.
type faultProxy struct {
	t  testing.TB
	p  *toxiproxy.Proxy
	mu sync.Mutex
}

func newFaultProxy(t testing.TB, upstream string) *faultProxy {
	t.Helper()
	p := toxiproxy.NewProxy()
	p.Name = unique("proof-")
	p.Listen = "127.0.0.1:0"
	p.Upstream = upstream
	if err := p.Start(); err != nil {
		t.Fatalf("starting toxiproxy: %v", err)
	}
	t.Cleanup(p.Stop)
	f := &faultProxy{t: t, p: p}
	// Always present, so that arming them needs no change to the chain.
	f.add(`{"name": "swallow", "type": "swallow", "stream": "downstream"}`)
	f.add(`{"name": "armcommit", "type": "armcommit", "stream": "upstream"}`)
	return f
}

func (f *faultProxy) addr() string { return f.p.Listen }

func (f *faultProxy) add(toxic string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.p.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
		f.t.Errorf("adding toxic %s: %v", toxic, err)
	}
}

func (f *faultProxy) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_ = f.p.Toxics.RemoveToxic(name)
}

// latency adds ms±jitter milliseconds to every reply.
func (f *faultProxy) latency(ms, jitter int) {
	f.add(fmt.Sprintf(`{"name": "latency", "type": "latency", "stream": "downstream", "attributes": {"latency": %d, "jitter": %d}}`, ms, jitter))
}

// reset closes, for a moment, a share of the connections on their next
// chunk: downstream, a reply is lost after the server executed the call;
// upstream, the call never arrives. Connections made meanwhile are reset
// with RST (toxiproxy sets SO_LINGER 0 on them).
func (f *faultProxy) reset(stream string, share float64, d time.Duration) {
	name := "reset-" + stream
	f.add(fmt.Sprintf(`{"name": %q, "type": "reset_peer", "stream": %q, "toxicity": %g, "attributes": {"timeout": 0}}`, name, stream, share))
	time.Sleep(d)
	f.remove(name)
}

// faultsFor is how long a storm runs under faults before it may drain.
const faultsFor = 4 * time.Second

// outages records when the server was down.
type outages struct {
	mu      sync.Mutex
	windows [][2]time.Time
}

func (o *outages) add(down, up time.Time) {
	o.mu.Lock()
	o.windows = append(o.windows, [2]time.Time{down, up})
	o.mu.Unlock()
}

// faultCounts is what a schedule injected, for the table.
type faultCounts struct {
	swallowed, resets, restarts atomic.Int64
}

func (c *faultCounts) String() string {
	s := fmt.Sprintf("latency, %d swallowed, %d resets", c.swallowed.Load(), c.resets.Load())
	if n := c.restarts.Load(); n > 0 {
		s += fmt.Sprintf(", %d restart", n)
	}
	return s
}

// schedule injects faults through px for the first faultsFor of the storm,
// then lets it drain: latency throughout, a swallowed reply every few
// ticks, connections closed mid-call, and, if restart is not nil, one
// restart of the server after restartAt.
//
// restart reports when the server was down: from the moment it was killed
// to the moment it was started again, a window in which no call can
// succeed.
func schedule(px *faultProxy, counts *faultCounts, restartAt time.Duration, restart func() (down, up time.Time), out *outages) func(ctx context.Context) {
	return func(ctx context.Context) {
		px.latency(2, 2)
		defer px.remove("latency")
		start := time.Now()
		tick := time.NewTicker(60 * time.Millisecond)
		defer tick.Stop()
		rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), 3))
		for i := 0; time.Since(start) < faultsFor; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			switch {
			case restart != nil && counts.restarts.Load() == 0 && time.Since(start) > restartAt:
				out.add(restart())
				counts.restarts.Add(1)
			case i%3 == 0:
				before := swallowed.Load()
				swallowArmed.Store(1)
				time.Sleep(20 * time.Millisecond)
				swallowArmed.Store(0)
				counts.swallowed.Add(swallowed.Load() - before)
			case i%5 == 0:
				stream := "downstream"
				if rng.IntN(3) == 0 {
					stream = "upstream"
				}
				px.reset(stream, 0.5, 15*time.Millisecond)
				counts.resets.Add(1)
			}
		}
	}
}

// checkOutages fails t for any store call that ran entirely while the
// server was down and yet succeeded, and returns how many failed then.
func checkOutages(t *testing.T, log *callLog, o *outages) (failed int) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, w := range o.windows {
		for _, c := range log.calls {
			if c.start.Before(w[0]) || c.end.After(w[1]) {
				continue
			}
			if c.err == nil {
				t.Errorf("a %s call succeeded while the server was down", c.op)
			} else {
				failed++
			}
		}
	}
	return failed
}

// restartStorm runs the storm through px with its faults and one restart
// of the server, checks it, and checks and tables the calls made while the
// server was down.
func restartStorm(t *testing.T, name, persistence string, store revguard.Store, mode revguard.Mode, cfg stormConfig, fx effectLog, px *faultProxy, restart func() (down, up time.Time)) {
	t.Helper()
	var counts faultCounts
	var out outages
	r, log := runStorm(t, store, mode, cfg, fx, schedule(px, &counts, 300*time.Millisecond, restart, &out))
	checkStorm(t, name+" via toxiproxy", counts.String(), mode, r)
	failed := checkOutages(t, log, &out)
	outageTable.add(t, name, mode, persistence, failed, 0)
	if counts.restarts.Load() == 0 {
		t.Errorf("the storm ended before the server was restarted")
	}
}

var outageTable = newTable(4, "Outages: store calls made while the server was down",
	"store", "mode", "persistence", "calls failed during outage", "succeeded during outage")

// faultyRedis is a client for addr that fails fast, as a consumer would be
// configured: short timeouts, go-redis's default retries.
func faultyRedis(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: addr, PoolSize: 16,
		DialTimeout: 250 * time.Millisecond, ReadTimeout: 250 * time.Millisecond, WriteTimeout: 250 * time.Millisecond,
	})
}

// mysqlTimeouts sets go-sql-driver's dial, read and write timeouts on a
// MySQL DSN. The read timeout is not optional under faults: the driver
// sends COMMIT without the caller's context, so a COMMIT whose reply is
// lost would be waited for as long as the connection stays open (toxiproxy
// keeps it open; so does a network that drops packets), whatever the
// context's deadline. It also bounds how long a transaction whose reply was
// lost holds its row locks (until the client gives up and the server rolls
// it back): the storms keep it below their lease, so that such a
// transaction does not block the renewals of the claim on those rows until
// the lease runs out.
func mysqlTimeouts(dsn string, read time.Duration) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return dsn // openDB reports it
	}
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 2*time.Second, read, read
	return cfg.FormatDSN()
}

// viaProxy returns the MySQL DSN dsn with its address replaced by a
// toxiproxy in front of it, and the timeouts set.
func viaProxy(t *testing.T, dsn string, read time.Duration) (proxied string, px *faultProxy) {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("%s: %v", envMySQL, err)
	}
	if cfg.Net != "tcp" {
		t.Fatalf("%s: the faults need a TCP address to put a proxy in front of, not %s", envMySQL, cfg.Net)
	}
	px = newFaultProxy(t, cfg.Addr)
	cfg.Addr = px.addr()
	return mysqlTimeouts(cfg.FormatDSN(), read), px
}

// TestProofFaults runs the storm through toxiproxy: against a redis-server,
// a PostgreSQL and a MariaDB of the test's own, each restarted mid-run, and
// against the shared PostgreSQL and MariaDB, not restarted.
func TestProofFaults(t *testing.T) {
	cfg := defaultStorm()
	// The outage outlasts go-redis's retries (about half a second), so that
	// calls fail, and the lease, so that claims held across it expire.
	cfg.lease = 400 * time.Millisecond
	if raceEnabled {
		cfg.lease *= 3
	}
	const outage = 1500 * time.Millisecond
	restartRedis := func(srv *redisServer) func() (down, up time.Time) {
		return func() (down, up time.Time) {
			srv.kill()
			down = time.Now()
			time.Sleep(outage)
			up = time.Now()
			srv.start()
			return down, up
		}
	}
	t.Run("redis", func(t *testing.T) {
		for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
			t.Run(mode.String(), func(t *testing.T) {
				srv := startRedis(t, aofAlways)
				px := newFaultProxy(t, srv.addr())
				c := faultyRedis(px.addr())
				defer func() { _ = c.Close() }()
				store := redisstore.New(c, redisstore.WithPrefix("proof:"))
				restartStorm(t, "redis", aofAlways, store, mode, cfg, nil, px, restartRedis(srv))
			})
		}
	})
	// Without persistence a restart forgets every applied revision: the
	// row shows what that costs, and is not held to the guarantees.
	t.Run("redis-no-persistence", func(t *testing.T) {
		srv := startRedis(t, noPersist)
		px := newFaultProxy(t, srv.addr())
		c := faultyRedis(px.addr())
		defer func() { _ = c.Close() }()
		var counts faultCounts
		var out outages
		r, _ := runStorm(t, redisstore.New(c, redisstore.WithPrefix("proof:")), revguard.Claim, cfg, nil,
			schedule(px, &counts, 800*time.Millisecond, restartRedis(srv), &out))
		stormRow(t, "redis, NO persistence (unsafe)", counts.String(), revguard.Claim, r)
		t.Logf("without persistence: %d revisions applied twice, %d completions out of order, %d entities end below their highest revision", r.twice, r.outOfOrder, r.finalWrong)
	})
	t.Run("postgres-restart", func(t *testing.T) {
		pg := startPostgres(t)
		px := newFaultProxy(t, fmt.Sprintf("127.0.0.1:%d", pg.port))
		dsn := pg.dsn(px.addr())
		restart := func() (down, up time.Time) {
			pg.stop("immediate") // a crash: no checkpoint, recovery from the WAL
			down = time.Now()
			time.Sleep(outage)
			up = time.Now()
			pg.start()
			return down, up
		}
		for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce, revguard.Transactional} {
			t.Run(mode.String(), func(t *testing.T) {
				db := openDB(t, "pgx", dsn, "PostgreSQL of the test's own, via toxiproxy")
				o := openSQL(t, db, sqlstore.Postgres)
				var fx effectLog
				if mode == revguard.Transactional {
					fx = o.effects(t)
				}
				restartStorm(t, "postgres", "fsync on, crash (pg_ctl -m immediate)", o.store, mode, cfg, fx, px, restart)
			})
		}
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := server(t, envPostgres, "PostgreSQL")
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("%s: %v", envPostgres, err)
		}
		upstream := u.Host
		for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce, revguard.Transactional} {
			t.Run(mode.String(), func(t *testing.T) {
				px := newFaultProxy(t, upstream)
				pu := *u
				pu.Host = px.addr()
				q := pu.Query()
				q.Set("connect_timeout", "2")
				pu.RawQuery = q.Encode()
				db := openDB(t, "pgx", pu.String(), "PostgreSQL via toxiproxy")
				o := openSQL(t, db, sqlstore.Postgres)
				var fx effectLog
				if mode == revguard.Transactional {
					fx = o.effects(t)
				}
				var counts faultCounts
				r, _ := runStorm(t, o.store, mode, cfg, fx, schedule(px, &counts, 0, nil, nil))
				checkStorm(t, "postgres via toxiproxy", counts.String(), mode, r)
			})
		}
	})
	t.Run("mariadb-restart", func(t *testing.T) {
		my := startMariaDB(t)
		px := newFaultProxy(t, my.addr())
		dsn := mysqlTimeouts(my.dsn(px.addr()), cfg.lease/2)
		for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce, revguard.Transactional} {
			t.Run(mode.String(), func(t *testing.T) {
				restart := func() (down, up time.Time) {
					my.kill() // SIGKILL: InnoDB recovers from its redo log on start
					down = time.Now()
					time.Sleep(outage)
					up = time.Now()
					if err := my.start(); err != nil {
						t.Errorf("restarting MariaDB: %v", err)
					}
					t.Logf("MariaDB answered %s after it was started again (InnoDB crash recovery included)", time.Since(up).Round(time.Millisecond))
					return down, up
				}
				db := openDB(t, "mysql", dsn, "MariaDB of the test's own, via toxiproxy")
				o := openSQL(t, db, sqlstore.MySQL)
				var fx effectLog
				if mode == revguard.Transactional {
					fx = o.effects(t)
				}
				restartStorm(t, "mariadb", "innodb_flush_log_at_trx_commit=1, crash (SIGKILL)", o.store, mode, cfg, fx, px, restart)
			})
		}
	})
	t.Run("mariadb", func(t *testing.T) {
		shared := server(t, envMySQL, "MariaDB")
		for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce, revguard.Transactional} {
			t.Run(mode.String(), func(t *testing.T) {
				dsn, px := viaProxy(t, shared, cfg.lease/2)
				db := openDB(t, "mysql", dsn, "MariaDB via toxiproxy")
				o := openSQL(t, db, sqlstore.MySQL)
				var fx effectLog
				if mode == revguard.Transactional {
					fx = o.effects(t)
				}
				var counts faultCounts
				r, _ := runStorm(t, o.store, mode, cfg, fx, schedule(px, &counts, 0, nil, nil))
				checkStorm(t, "mariadb via toxiproxy", counts.String(), mode, r)
			})
		}
	})
}
