package proof

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/redisstore"
	"github.com/revguard/revguard/backends/sqlstore"
	"github.com/revguard/revguard/internal/testenv"
)

// The soak runs the delivery storm's transport for long enough that what
// leaks shows: in the long proof a million deliveries or more over 100,000
// entities, on the shared Redis and PostgreSQL. Each entity has five events,
// each delivered one to three times, taken in random order by several
// consumers (a guard each, on a client of its own, as separate processes
// would have) calling their guard from many goroutines at once; 5% of
// handler runs fail, so that claims are released and the message comes
// back. Nothing else goes wrong: the soak measures growth, not faults.
//
// The test keeps per entity only what its checks need (soakEntity, a few
// bytes, allocated once), never a log of calls, so that its own memory is
// bounded by the entity count and the heap it measures is the library's
// and the clients'. The short proof runs a small soak (20,000 deliveries
// over 2,000 entities) so that CI exercises the code; its figures say
// little.

// soakEvents is the number of events per entity. Revisions grow by 1 to 3,
// so they stay below 16 and fit the bit sets of soakEntity.
const soakEvents = 5

// soakEntity is everything the soak keeps per entity.
type soakEntity struct {
	revs   [soakEvents]uint8 // the events' revisions, increasing
	copies [soakEvents]uint8 // deliveries of each not yet taken (under the transport's lock)
	done   uint16            // revisions whose handler completed, a bit each
	failed uint16            // AtMostOnce: revisions advanced whose handler then failed
	top    uint8             // the highest revision completed
	pos    int32             // place in the transport's live list; -1 when not there
}

// soakTransport is the at-least-once queue of the soak: a message is an
// (entity, event) pair, taken from a random entity among those with
// deliveries left, and put back when not acknowledged.
type soakTransport struct {
	mu      sync.Mutex
	ents    []soakEntity
	live    []int32 // entities with deliveries left to take
	pending int     // deliveries not yet acknowledged, taken or not
}

func (tr *soakTransport) take(rng *rand.Rand) (e int32, i int, ok, done bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.live) == 0 {
		return 0, 0, false, tr.pending == 0
	}
	e = tr.live[rng.IntN(len(tr.live))]
	ent := &tr.ents[e]
	left := 0
	start := rng.IntN(soakEvents)
	i = -1
	for k := range soakEvents {
		j := (start + k) % soakEvents
		if ent.copies[j] > 0 {
			if i < 0 {
				i = j
			}
			left += int(ent.copies[j])
		}
	}
	ent.copies[i]--
	if left == 1 { // that was the entity's last: off the live list
		last := tr.live[len(tr.live)-1]
		tr.live[ent.pos] = last
		tr.ents[last].pos = ent.pos
		tr.live = tr.live[:len(tr.live)-1]
		ent.pos = -1
	}
	return e, i, true, false
}

// put gives a delivery back, not acknowledged: it will be taken again.
func (tr *soakTransport) put(e int32, i int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ent := &tr.ents[e]
	ent.copies[i]++
	if ent.pos < 0 {
		ent.pos = int32(len(tr.live))
		tr.live = append(tr.live, e)
	}
}

func (tr *soakTransport) ack() {
	tr.mu.Lock()
	tr.pending--
	tr.mu.Unlock()
}

// soakConfig sizes one soak.
type soakConfig struct {
	entities   int
	deliveries int // at least this many
	consumers  int
	goroutines int // per consumer, each calling Handle
	failRate   float64
	budget     time.Duration
}

// soakStore is one store as the soak's consumers reach it: one store per
// consumer, each on a client of its own, and what the soak measures.
type soakStore struct {
	name   string
	stores []revguard.Store
	// memory reports the server's memory for the store, and says it for
	// the table.
	memory func(ctx context.Context) (int64, string, error)
	// count counts the store's keys (Redis) or rows (PostgreSQL).
	count func(ctx context.Context) (int64, error)
	// close closes every client the soak opened.
	close func()
}

// soakResult is one row of the soak table.
type soakResult struct {
	deliveries, runs, failed, applied, inFlight, errs int64
	lost, lostByDesign, twice, outOfOrder, misrep     int64
	finalWrong, claimsLeft, entitiesSeen              int64
	took                                              time.Duration
}

var soakTable = newTable(7, "Soak: each entity's 5 events delivered 1-3 times, shuffled, to 4 consumers (a guard and a client each) calling Handle from 16 goroutines each; 5% of handler runs fail (the message comes back). Go heap after GC, goroutines, and the store's memory, before the run and after it",
	"store", "mode", "entities", "deliveries", "handler runs", "failed", "applied", "lost", "twice", "out of order", "errors", "seconds",
	"heap start", "heap end", "store memory start", "store memory end", "store per entity", "goroutines start", "goroutines end")

// TestProofSoak runs the soak on Redis and PostgreSQL, in Claim and
// AtMostOnce mode: 1,000,000 deliveries over 100,000 entities each in the
// long proof, 20,000 over 2,000 in the short one.
func TestProofSoak(t *testing.T) {
	cfg := soakConfig{
		entities:   scale(2_000, 100_000),
		deliveries: scale(20_000, 1_000_000),
		consumers:  4,
		goroutines: 16,
		failRate:   0.05,
		budget:     time.Duration(scale(120, 900)) * time.Second,
	}
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		t.Run("redis/"+mode.String(), func(t *testing.T) {
			addr := server(t, envRedis, "a redis-server")
			soak(t, mode, cfg, func(t *testing.T) soakStore { return openSoakRedis(t, addr, cfg) })
		})
		t.Run("postgres/"+mode.String(), func(t *testing.T) {
			dsn := server(t, envPostgres, "PostgreSQL")
			soak(t, mode, cfg, func(t *testing.T) soakStore { return openSoakPostgres(t, dsn, cfg) })
		})
	}
}

func openSoakRedis(t *testing.T, addr string, cfg soakConfig) soakStore {
	prefix := unique("revguard-soak:") + ":"
	admin := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 2})
	clients := make([]*redis.Client, cfg.consumers)
	s := soakStore{name: "redis"}
	for i := range clients {
		clients[i] = redis.NewClient(&redis.Options{Addr: addr, PoolSize: cfg.goroutines})
		s.stores = append(s.stores, redisstore.New(clients[i], redisstore.WithPrefix(prefix)))
	}
	s.memory = func(ctx context.Context) (int64, string, error) {
		info, err := admin.Info(ctx, "memory").Result()
		if err != nil {
			return 0, "", err
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				return n, "used_memory " + mib(n), err
			}
		}
		return 0, "", errors.New("INFO memory has no used_memory")
	}
	s.count = func(ctx context.Context) (int64, error) {
		var n int64
		iter := admin.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		return n, iter.Err()
	}
	s.close = func() {
		for _, c := range clients {
			_ = c.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		testenv.DeleteKeys(ctx, admin, prefix)
		_ = admin.Close()
	}
	return s
}

func openSoakPostgres(t *testing.T, dsn string, cfg soakConfig) soakStore {
	table := unique("soak_")
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("opening PostgreSQL: %v", err)
	}
	s := soakStore{name: "postgres"}
	var dbs []*sql.DB
	s.close = func() {
		for _, db := range dbs {
			_ = db.Close()
		}
		_, _ = admin.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+table)
		_ = admin.Close()
	}
	for range cfg.consumers {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			s.close()
			t.Fatalf("opening PostgreSQL: %v", err)
		}
		db.SetMaxOpenConns(cfg.goroutines)
		db.SetMaxIdleConns(cfg.goroutines)
		dbs = append(dbs, db)
		st, err := sqlstore.New(db, sqlstore.Postgres, sqlstore.WithTable(table))
		if err != nil {
			s.close()
			t.Fatalf("sqlstore.New: %v", err)
		}
		s.stores = append(s.stores, st)
	}
	if err := s.stores[0].(*sqlstore.Store).CreateTable(context.Background()); err != nil {
		s.close()
		t.Fatalf("CreateTable: %v", err)
	}
	s.memory = func(ctx context.Context) (int64, string, error) {
		var size int64
		err := admin.QueryRowContext(ctx, "SELECT pg_total_relation_size($1::regclass)", table).Scan(&size)
		return size, "table " + mib(size), err
	}
	s.count = func(ctx context.Context) (int64, error) {
		var rows int64
		err := admin.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&rows)
		return rows, err
	}
	return s
}

// mib writes n bytes in MiB.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// heapNow returns the live heap after a full collection.
func heapNow() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC() // a second cycle frees what the first one's finalizers let go
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// Bounds the soak asserts. The test keeps soakEntity and a live-list slot
// (an int32) per entity; the library keeps nothing per entity in Claim or
// AtMostOnce mode without a drop cache, so the heap may grow by those and
// by a fixed allowance for what is not per entity (connection buffers that
// a pool opened late, the runtime's own): any leak of 4 bytes or more per
// delivery exceeds it over a million deliveries. An entity's Redis hash (the
// applied revision, the recording token, the three recordings before it;
// MEMORY USAGE reads about 200 bytes) with its key and dictionary entry
// stays well under storePerEntity, as does a PostgreSQL row with its index
// entry and the dead versions its updates leave until vacuum; a store that
// kept something per claim or per delivery would exceed it.
const (
	// Far above any call's time here, and short enough that the guards'
	// lease keepers, each of which ends at its next tick (a sixth of the
	// lease) once it holds no lease, are gone a second after the run.
	soakLease      = 6 * time.Second
	heapFixed      = 3 << 20
	storePerEntity = 1024
)

func soak(t *testing.T, mode revguard.Mode, cfg soakConfig, open func(t *testing.T) soakStore) {
	ctx := context.Background()
	goroutinesStart := runtime.NumGoroutine()
	s := open(t)
	closed := false
	closeAll := func() {
		if !closed {
			closed = true
			s.close()
		}
	}
	defer closeAll()
	ns := unique("soak-")
	guards := make([]*revguard.Guard[*soakMsg], cfg.consumers)
	for i, st := range s.stores {
		guards[i] = revguard.New(st, func(m *soakMsg) (string, revguard.Revision, error) { return m.key, m.rev, nil },
			revguard.WithNamespace(ns), revguard.WithMode(mode), revguard.WithLease(soakLease))
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("soak seed %d: %d entities, at least %d deliveries, %d consumers of %d goroutines", seed, cfg.entities, cfg.deliveries, cfg.consumers, cfg.goroutines)

	// A small soak first, on keys of their own, so that the pools, scripts
	// and prepared statements are warm when the heap and the store's memory
	// are first measured.
	warm := soakConfig{entities: 200, deliveries: 2_000, consumers: cfg.consumers, goroutines: cfg.goroutines, failRate: cfg.failRate, budget: cfg.budget}
	r, _ := soakRun(t, guards, s.stores[0], ns, "warm-", mode, warm, seed+1)
	if r.errs != 0 || r.finalWrong != 0 {
		t.Fatalf("the warm-up went wrong: %+v", r)
	}
	t.Logf("warm-up: %d deliveries in %s", r.deliveries, r.took.Round(time.Millisecond))

	heapStart := heapNow()
	memStart, memStartText, err := s.memory(ctx)
	if err != nil {
		t.Fatalf("reading the store's memory: %v", err)
	}
	countStart, err := s.count(ctx)
	if err != nil {
		t.Fatalf("counting the store's entries: %v", err)
	}
	r, tr := soakRun(t, guards, s.stores[0], ns, "soak-", mode, cfg, seed)
	heapEnd := heapNow()
	// Measured with the guards alive, so that what they keep counts, and
	// with the test's own state, which the bound counts.
	runtime.KeepAlive(guards)
	runtime.KeepAlive(tr)
	memEnd, memEndText, err := s.memory(ctx)
	if err != nil {
		t.Fatalf("reading the store's memory: %v", err)
	}
	countEnd, err := s.count(ctx)
	if err != nil {
		t.Fatalf("counting the store's entries: %v", err)
	}

	closeAll()
	// Every goroutine the clients and guards started ends once they are
	// closed (a guard has nothing to close: its lease keeper ends on its
	// own at its next tick, a sixth of the lease, once it holds no lease):
	// the count comes back to where it was, or below, if one of an earlier
	// test's ended meanwhile.
	goroutinesEnd := runtime.NumGoroutine()
	for deadline := time.Now().Add(2*soakLease/6 + 5*time.Second); goroutinesEnd > goroutinesStart && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		goroutinesEnd = runtime.NumGoroutine()
	}

	perEntity := float64(memEnd-memStart) / float64(cfg.entities)
	memStartText += fmt.Sprintf(", %d entries", countStart)
	memEndText += fmt.Sprintf(", %d entries", countEnd)
	soakTable.add(t, s.name, mode, cfg.entities, r.deliveries, r.runs, r.failed, r.applied, r.lost, r.twice, r.outOfOrder, r.errs,
		fmt.Sprintf("%.0f", r.took.Seconds()), mib(heapStart), mib(heapEnd), memStartText, memEndText,
		fmt.Sprintf("%.0f B", perEntity), goroutinesStart, goroutinesEnd)
	t.Logf("%d deliveries in %s (%.0f a second), %d answered in flight, %d entities scanned at the end, %d claims left",
		r.deliveries, r.took.Round(time.Millisecond), float64(r.deliveries)/r.took.Seconds(), r.inFlight, r.entitiesSeen, r.claimsLeft)

	if r.deliveries < int64(cfg.deliveries) {
		t.Errorf("%d deliveries, want at least %d", r.deliveries, cfg.deliveries)
	}
	if r.failed == 0 {
		t.Errorf("no handler failed: the soak released no claim")
	}
	if r.lost != r.lostByDesign {
		t.Errorf("%d events lost (of %d lost, %d are AtMostOnce events whose handler failed after the advance)", r.lost-r.lostByDesign, r.lost, r.lostByDesign)
	}
	if r.twice != 0 {
		t.Errorf("%d revisions applied twice", r.twice)
	}
	if mode != revguard.AtMostOnce && r.outOfOrder != 0 {
		t.Errorf("%d completions out of order", r.outOfOrder)
	}
	if r.misrep != 0 {
		t.Errorf("%d drops that no applied revision explains", r.misrep)
	}
	if r.finalWrong != 0 {
		t.Errorf("%d entities end with an applied revision other than the highest delivered", r.finalWrong)
	}
	if r.claimsLeft != 0 {
		t.Errorf("%d claims left in force after every message was acknowledged", r.claimsLeft)
	}
	own := int64(cfg.entities) * int64(unsafe.Sizeof(soakEntity{})+unsafe.Sizeof(int32(0)))
	if growth := heapEnd - heapStart; growth > own+heapFixed {
		t.Errorf("the Go heap grew by %s over %d deliveries; the test's own state is %s, and the bound %s more",
			mib(growth), r.deliveries, mib(own), mib(heapFixed))
	}
	if added := countEnd - countStart; added != int64(cfg.entities) {
		t.Errorf("the store holds %d entries more than before the run, want one per entity, %d", added, cfg.entities)
	}
	if perEntity > storePerEntity {
		t.Errorf("the store's memory grew by %.0f bytes per entity (%s to %s), above %d", perEntity, memStartText, memEndText, storePerEntity)
	}
	if goroutinesEnd > goroutinesStart {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines after the guards and clients were closed, %d before: left behind:\n%s", goroutinesEnd, goroutinesStart, buf)
	}
}

// soakMsg is one delivery as a guard sees it.
type soakMsg struct {
	e   int32
	i   int
	key string
	rev revguard.Revision
}

// soakRun delivers cfg's stream, entities named prefix and a number, to the
// guards and checks it; peek is one of the stores, for the final scan. It
// returns the transport, which holds the per-entity state, so that the
// caller can measure the heap with it.
func soakRun(t *testing.T, guards []*revguard.Guard[*soakMsg], peek revguard.Store, ns, prefix string, mode revguard.Mode, cfg soakConfig, seed uint64) (soakResult, *soakTransport) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	tr := &soakTransport{ents: make([]soakEntity, cfg.entities), live: make([]int32, cfg.entities)}
	for e := range tr.ents {
		ent := &tr.ents[e]
		var rev uint8
		for i := range soakEvents {
			rev += uint8(1 + rng.IntN(3))
			ent.revs[i] = rev
			ent.copies[i] = uint8(1 + rng.IntN(3))
			tr.pending += int(ent.copies[i])
		}
		ent.pos = int32(e)
		tr.live[e] = int32(e)
	}
	// Top up to the size asked for, one more copy of events delivered fewer
	// than three times.
	if cfg.deliveries > cfg.entities*soakEvents*3 {
		t.Fatalf("%d deliveries over %d entities: more than 3 of each event", cfg.deliveries, cfg.entities)
	}
	for tr.pending < cfg.deliveries {
		ent := &tr.ents[rng.IntN(cfg.entities)]
		if i := rng.IntN(soakEvents); ent.copies[i] < 3 {
			ent.copies[i]++
			tr.pending++
		}
	}
	res := soakResult{deliveries: int64(tr.pending)}
	var locks [256]sync.Mutex // over the entities' check fields, by entity number
	var runs, failed, applied, inFlight, errs, twice, outOfOrder, misrep atomic.Int64
	errInjected := errors.New("proof: injected handler failure")
	keyOf := func(e int32) string { return prefix + strconv.Itoa(int(e)) }

	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for c, g := range guards {
		for w := range cfg.goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wrng := rand.New(rand.NewPCG(seed, uint64(2+c*cfg.goroutines+w)))
				h := func(_ context.Context, m *soakMsg) error {
					runs.Add(1)
					mu := &locks[m.e%256]
					ent := &tr.ents[m.e]
					bit := uint16(1) << m.rev
					if wrng.Float64() < cfg.failRate {
						failed.Add(1)
						if mode == revguard.AtMostOnce {
							mu.Lock()
							ent.failed |= bit
							mu.Unlock()
						}
						return errInjected
					}
					mu.Lock()
					if ent.done&bit != 0 {
						twice.Add(1)
					}
					if uint8(m.rev) < ent.top {
						outOfOrder.Add(1)
					}
					ent.done |= bit
					ent.top = max(ent.top, uint8(m.rev))
					mu.Unlock()
					applied.Add(1)
					return nil
				}
				for {
					select {
					case <-stop:
						return
					default:
					}
					e, i, ok, done := tr.take(wrng)
					if done {
						return
					}
					if !ok {
						time.Sleep(time.Millisecond) // the last messages are in flight: some may come back
						continue
					}
					m := &soakMsg{e: e, i: i, key: keyOf(e), rev: revguard.Revision(tr.ents[e].revs[i])}
					cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					out, err := g.Handle(cctx, m, h)
					cancel()
					switch {
					case err == nil:
						// In AtMostOnce the advance comes before the handler,
						// so a drop may be answered before the handler that
						// explains it has run: the loss count at the end
						// covers that mode.
						if mode == revguard.Claim && out != revguard.Applied && !explainedDrop(&locks[e%256], &tr.ents[e], out, uint8(m.rev)) {
							misrep.Add(1)
						}
						tr.ack()
					case errors.Is(err, revguard.ErrInFlight):
						inFlight.Add(1)
						time.Sleep(time.Millisecond)
						tr.put(e, i)
					default:
						if !errors.Is(err, errInjected) {
							if errs.Add(1) <= 5 {
								t.Logf("%s revision %d: %v", m.key, m.rev, err)
							}
						}
						tr.put(e, i)
					}
				}
			}()
		}
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(cfg.budget):
		tr.mu.Lock()
		pending := tr.pending
		tr.mu.Unlock()
		t.Errorf("the soak did not settle in %s: %d deliveries still pending", cfg.budget, pending)
		close(stop)
		<-finished
	}
	res.took = time.Since(start)
	res.runs, res.failed, res.applied = runs.Load(), failed.Load(), applied.Load()
	res.inFlight, res.errs, res.twice, res.outOfOrder, res.misrep = inFlight.Load(), errs.Load(), twice.Load(), outOfOrder.Load(), misrep.Load()

	// Every event is applied, or dropped below a higher one applied: one
	// whose handler completed or, in AtMostOnce, one advanced whose handler
	// then failed. Such an event of AtMostOnce is itself lost by design.
	for e := range tr.ents {
		ent := &tr.ents[e]
		hi := ent.top
		for _, r := range ent.revs {
			if ent.failed&(uint16(1)<<r) != 0 {
				hi = max(hi, r)
			}
		}
		for _, r := range ent.revs {
			bit := uint16(1) << r
			if ent.done&bit != 0 || r < hi {
				continue
			}
			res.lost++
			if ent.failed&bit != 0 {
				res.lostByDesign++
			}
		}
	}
	// The store's final word, read in one scan of the namespace.
	seen := make([]bool, cfg.entities)
	ins, ok := peek.(revguard.Inspector)
	if !ok {
		t.Fatalf("%T is not an Inspector", peek)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := ins.Scan(sctx, ns, prefix+"*", func(en revguard.Entity) error {
		n, err := strconv.Atoi(strings.TrimPrefix(en.Key, prefix))
		if err != nil || n < 0 || n >= cfg.entities {
			return fmt.Errorf("an entity the soak did not deliver: %q", en.Key)
		}
		if seen[n] {
			return nil
		}
		seen[n] = true
		res.entitiesSeen++
		if en.Claim != nil {
			res.claimsLeft++
		}
		if want := tr.ents[n].revs[soakEvents-1]; !en.Exists || en.Applied != revguard.Revision(want) {
			res.finalWrong++
			if res.finalWrong <= 5 {
				t.Logf("%s: applied revision %s at the end, want the highest delivered %d", en.Key, stateString(en.Applied, en.Exists), want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scanning the namespace: %v", err)
	}
	res.finalWrong += int64(cfg.entities) - res.entitiesSeen // never applied at all
	return res, tr
}

// explainedDrop reports whether a Claim-mode drop of rev is explained by
// what the handlers completed before the guard answered: a Duplicate needs
// rev completed (the store's applied revision is rev only once its handler
// completed and committed), a Stale a higher revision completed.
func explainedDrop(mu *sync.Mutex, ent *soakEntity, out revguard.Outcome, rev uint8) bool {
	mu.Lock()
	defer mu.Unlock()
	if out == revguard.Duplicate {
		return ent.done&(uint16(1)<<rev) != 0
	}
	return ent.top > rev
}
