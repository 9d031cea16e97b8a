package proof

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revguard/revguard"
)

// The delivery storm plays an at-least-once transport: every event is
// delivered one to five times, shuffled, to several consumers (one guard
// each, as separate processes would have) sharing one store. A delivery
// whose Handle returns an error is not acknowledged and comes back later.
// Handlers fail at random; some consumers die in the middle of a handler and
// never come back (their store calls fail from then on, so their lease runs
// out, and the transport redelivers their message once its visibility
// timeout passes); one handler runs longer than its lease.
//
// Per entity it then checks that handler completions came in strictly
// increasing revision order, none twice, that the final applied revision is
// the highest delivered, and that every event was applied or correctly
// dropped (a newer revision was applied). It also checks every drop the
// store answered against the decisions made before it: a Duplicate or Stale
// needs a revision at least as high granted earlier by someone.

// stormConfig sizes one storm.
type stormConfig struct {
	entities  int
	events    int // per entity
	consumers int
	deaths    int // consumers that die mid-handler
	lease     time.Duration
	failRate  float64
	timeout   time.Duration // per store call
	budget    time.Duration // the whole storm; past it the storm fails
	cache     int           // WithDropCache's size for every consumer; 0 for none

	// How each consumer calls its one guard: from goroutines goroutines at
	// once (0 is 1), each calling Handle, or, when batch is set,
	// HandleBatch on up to batch deliveries taken at once, with
	// WithBatchConcurrency(batchConcurrency) when that is above 1.
	goroutines       int
	batch            int
	batchConcurrency int
	latency          time.Duration // added to every store call

	// calm leaves out the handler that outlives its lease, for storms about
	// something else whose lease is long (the failovers).
	calm bool
}

func defaultStorm() stormConfig {
	return stormConfig{
		entities:  scale(60, 300),
		events:    scale(10, 25),
		consumers: 4,
		deaths:    scale(1, 2),
		lease:     250 * time.Millisecond,
		failRate:  0.1,
		timeout:   2 * time.Second,
		budget:    time.Duration(scale(90, 900)) * time.Second,
	}
}

// event is one event of the stream; msg is one delivery of it.
type event struct {
	key string
	rev revguard.Revision
}

type msg struct {
	ev event
	n  int // deliveries so far
}

// transport is the at-least-once queue: messages are taken in random order
// and stay pending until acknowledged.
type transport struct {
	mu      sync.Mutex
	queue   []*msg
	pending int
	rng     *rand.Rand
	wake    chan struct{}
	redeliv atomic.Int64
}

func (tr *transport) push(m *msg) {
	tr.mu.Lock()
	tr.queue = append(tr.queue, m)
	tr.mu.Unlock()
	select {
	case tr.wake <- struct{}{}:
	default:
	}
}

// take returns a message, or false once every message is acknowledged or
// stop is closed.
func (tr *transport) take(stop <-chan struct{}) (*msg, bool) {
	for {
		tr.mu.Lock()
		if m, ok := tr.pick(); ok {
			tr.mu.Unlock()
			return m, true
		}
		done := tr.pending == 0
		tr.mu.Unlock()
		if done {
			return nil, false
		}
		select {
		case <-tr.wake:
		case <-time.After(2 * time.Millisecond):
		case <-stop:
			return nil, false
		}
	}
}

// poll returns a message if one is waiting, without waiting for one: how a
// consumer fills a batch.
func (tr *transport) poll() (*msg, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.pick()
}

// pick takes a random message from the queue; tr.mu is held.
func (tr *transport) pick() (*msg, bool) {
	n := len(tr.queue)
	if n == 0 {
		return nil, false
	}
	i := tr.rng.IntN(n)
	m := tr.queue[i]
	tr.queue[i] = tr.queue[n-1]
	tr.queue = tr.queue[:n-1]
	m.n++
	return m, true
}

func (tr *transport) ack() {
	tr.mu.Lock()
	tr.pending--
	tr.mu.Unlock()
}

// redeliver puts m back after delay, as a transport does with a message that
// was not acknowledged (or whose visibility timeout passed).
func (tr *transport) redeliver(m *msg, delay time.Duration) {
	tr.redeliv.Add(1)
	time.AfterFunc(delay, func() { tr.push(m) })
}

// effects are handler completions, per entity, in the order they happened.
type effects struct {
	mu    sync.Mutex
	byKey map[string][]revguard.Revision
}

// add records a completion and returns its place among the entity's.
func (e *effects) add(key string, rev revguard.Revision) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byKey[key] = append(e.byKey[key], rev)
	return len(e.byKey[key]) - 1
}

// effectLog keeps handler completions where the handler's own writes go: a
// SQL table written in the handler's transaction, for the Transactional
// mode, so that a completion whose transaction rolled back is not one.
type effectLog interface {
	record(ctx context.Context, key string, rev revguard.Revision) error
	read(ctx context.Context) (map[string][]revguard.Revision, error)
}

// stormResult is one table row.
type stormResult struct {
	events, delivered, redelivered              int
	handled, applied, dup, stale                int
	lost, twice, outOfOrder, finalWrong, misrep int
	failed, died, inFlight, errs                int
	slowApplied                                 bool
	slowErr                                     string   // why the handler that outlived its lease was not applied
	notes                                       []string // what went wrong, a few examples
	uncommitted                                 int      // handlers whose work was done but whose Handle failed
	twiceKnown, orderKnown                      int      // of twice and outOfOrder, those after such a handler
	amoByDesign                                 int      // AtMostOnce: lost after an advance (granted, or whose reply was lost)
	cached                                      int      // drops the consumers' drop caches answered

	calling                       string // how consumers called their guard, when not one Handle call at a time
	multiClaims, multiClaimReqs   int    // ClaimBatch calls carrying more than one request, and their requests
	multiCommits, multiCommitReqs int    // the same for CommitBatch
	mostRunning                   int    // the most handlers one consumer ran at once
}

var stormHeader = []string{"store", "mode", "faults", "events", "delivered", "redelivered", "handler runs", "failed", "died", "applied", "dropped duplicate", "dropped stale", "lost", "applied twice", "out of order", "misreported drops", "errors"}

var (
	stormTable = newTable(2, "Delivery storm: each event delivered 1-5 times, shuffled, to 4 consumers sharing one store; 10% of handlers fail, a consumer dies mid-handler, one handler outlives its lease", stormHeader...)
	// Order 2 as well: printed right after the plain storm's table.
	concurrentTable = newTable(2, "Delivery storm with concurrent calls: the same storm, each consumer calling its one guard from 8 goroutines (their store calls coalesce) or with HandleBatch on up to 16 deliveries taken at once, 4 handlers at a time",
		append([]string{"store", "mode", "calls", "multi-request store calls", "most handlers at once"}, stormHeader[3:]...)...)
	faultTable = newTable(3, "Delivery storm under network faults (toxiproxy in process: latency 2±2ms, swallowed replies, connections closed mid-call, a server restart)", stormHeader...)
)

// runStorm runs one storm against store and checks it. faults, if not nil,
// runs beside the consumers until its context ends.
func runStorm(t *testing.T, store revguard.Store, mode revguard.Mode, cfg stormConfig, fx effectLog, faults func(ctx context.Context)) (stormResult, *callLog) {
	t.Helper()
	ns := unique("storm-")
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))

	// The stream: per entity, increasing revisions with gaps, each event
	// delivered 1-5 times.
	var stream []event
	highest := map[string]revguard.Revision{}
	tr := &transport{rng: rand.New(rand.NewPCG(seed, 2)), wake: make(chan struct{}, 1)}
	for e := range cfg.entities {
		key := fmt.Sprintf("entity-%03d", e)
		var rev revguard.Revision
		for range cfg.events {
			rev += revguard.Revision(1 + rng.IntN(3))
			ev := event{key, rev}
			stream = append(stream, ev)
			highest[key] = rev
			for range 1 + rng.IntN(5) {
				tr.queue = append(tr.queue, &msg{ev: ev})
			}
		}
	}
	rng.Shuffle(len(tr.queue), func(i, j int) { tr.queue[i], tr.queue[j] = tr.queue[j], tr.queue[i] })
	res := stormResult{events: len(stream), delivered: len(tr.queue)}
	tr.pending = len(tr.queue)
	// One handler, early on, runs longer than its lease.
	var slowArmed atomic.Bool
	// Consumers die on handler runs spread over the first part of the
	// storm, whichever consumer makes them; never all of them.
	dieAt := map[int64]bool{}
	for i := range min(cfg.deaths, cfg.consumers-1) {
		dieAt[int64(5+20*i+rng.IntN(10))] = true
	}
	// A death falls due at those runs and happens at the first handler run
	// from then on whose consumer can die there (see die).
	var owed atomic.Int64
	slowArmed.Store(!cfg.calm)

	log := &callLog{}
	fx0 := &effects{byKey: map[string][]revguard.Revision{}}
	var handled, failed, died, inFlight, errs, applied, dup, stale atomic.Int64
	var slowApplied atomic.Bool
	var uncommitted atomic.Int64 // handlers that completed but whose Handle failed
	var cachedDrops atomic.Int64
	var mostRunning atomic.Int64 // the most handlers one consumer ran at once
	var noteMu sync.Mutex
	var uncommittedNotes []string
	var slowErr string
	uncommittedAt := map[string][]int{} // per entity, the completions whose commit failed
	release := make(chan struct{})      // unblocks dead consumers' handlers at the end
	stop := make(chan struct{})
	errInjected := errors.New("proof: injected handler failure")

	// A delivery is one message as a consumer took it, with what its
	// handler did: each call, and each event of a batch, has its own, so
	// that goroutines sharing a guard keep theirs apart.
	type delivery struct {
		m           *msg
		start       time.Time // when its Handle (or HandleBatch) call began
		ranSlow     bool      // its handler outlived its lease
		completed   time.Time // when its handler completed its work
		completedAt int       // and that completion's place among the entity's
	}
	extract := func(d *delivery) (string, revguard.Revision, error) { return d.m.ev.key, d.m.ev.rev, nil }
	goroutines, batch := max(cfg.goroutines, 1), max(cfg.batch, 1)
	t.Logf("storm seed %d: %d consumers, %d goroutines each, batches of %d, batch concurrency %d", seed, cfg.consumers, goroutines, batch, max(cfg.batchConcurrency, 1))
	// live counts the consumers still taking messages; all, every consumer
	// goroutine, dead ones included, which end once release is closed.
	var live, all sync.WaitGroup
	for c := range cfg.consumers {
		var gone sync.Once
		rs := &recStore{inner: store, log: log, consumer: c, timeout: cfg.timeout, latency: cfg.latency}
		var s revguard.Store = rs
		if mode == revguard.Transactional {
			s = &recTxStore{recStore: rs, tx: store.(revguard.Transactor), handler: 4 * cfg.lease}
		}
		opts := []revguard.Option{revguard.WithNamespace(ns), revguard.WithMode(mode), revguard.WithLease(cfg.lease)}
		if cfg.batchConcurrency > 1 {
			opts = append(opts, revguard.WithBatchConcurrency(cfg.batchConcurrency))
		}
		if cfg.cache > 0 {
			// A drop the cache answers makes no store call, so the
			// recording store never sees it: log it as a decision, so that
			// the misreported-drop check holds it to the same standard.
			consumer := c
			opts = append(opts, revguard.WithDropCache(cfg.cache), revguard.WithObserver(func(d revguard.Decision) {
				if !d.Cached {
					return
				}
				cachedDrops.Add(1)
				end := time.Now()
				v := revguard.Dup
				if d.Outcome == revguard.Stale {
					v = revguard.Old
				}
				log.decided(decision{consumer: consumer, key: d.Key, rev: d.Revision, start: end.Add(-d.Duration), end: end, verdict: v})
			}))
		}
		g := revguard.New(s, extract, opts...)
		crng := rand.New(rand.NewPCG(seed, uint64(10+c)))
		var mu sync.Mutex // guards crng: handlers and the consumer's goroutines share it
		cctx, ccancel := context.WithCancel(context.Background())

		// The consumer's process. held is what it took and has not
		// answered; window counts deliveries whose handler completed and
		// whose call has not returned; slow is set while its handler that
		// outlives its lease runs; running counts its handlers under way.
		var (
			cmu     sync.Mutex
			dead    bool
			held    = map[*delivery]bool{}
			window  int
			slow    bool
			running int64
		)
		// die kills the consumer if a death is due and no work of its is
		// done but not committed: a process killed there runs that work
		// again on redelivery, the limit of any lease, which this storm is
		// not about (with one goroutine calling Handle there never is any,
		// so the plain storm dies on the very runs dieAt names). Nor does it
		// die under its slow handler, which must get to commit.
		die := func() bool {
			cmu.Lock()
			defer cmu.Unlock()
			if dead || window > 0 || slow {
				return false
			}
			for {
				o := owed.Load()
				if o == 0 {
					return false
				}
				if owed.CompareAndSwap(o, o-1) {
					break
				}
			}
			dead = true
			rs.dead.Store(true)
			// Everything the process held comes back to someone else once
			// the transport's visibility timeout passes.
			for d := range held {
				tr.redeliver(d.m, cfg.lease/2)
			}
			clear(held)
			return true
		}
		h := func(ctx context.Context, d *delivery) error {
			n := handled.Add(1)
			if dieAt[n] {
				owed.Add(1)
			}
			cmu.Lock()
			running++
			if running > mostRunning.Load() {
				mostRunning.Store(running) // a lost race only understates the figure
			}
			cmu.Unlock()
			defer func() {
				cmu.Lock()
				running--
				if d.ranSlow {
					slow = false
				}
				cmu.Unlock()
			}()
			if owed.Load() > 0 && die() {
				// The process dies here: nothing it sends arrives any
				// more.
				gone.Do(live.Done)
				died.Add(1)
				time.AfterFunc(2*cfg.lease, ccancel)
				<-release
				return errDead
			}
			mu.Lock()
			fail := crng.Float64() < cfg.failRate
			work := time.Duration(crng.IntN(300)) * time.Microsecond
			mu.Unlock()
			cmu.Lock()
			if !dead && handled.Load() > 30 && slowArmed.CompareAndSwap(true, false) {
				d.ranSlow, slow = true, true
			}
			cmu.Unlock()
			if d.ranSlow {
				time.Sleep(5 * cfg.lease / 2)
			} else if fail {
				failed.Add(1)
				return errInjected
			}
			time.Sleep(work)
			if err := ctx.Err(); err != nil {
				return err // the lease was lost: the handler's effects are not made
			}
			cmu.Lock()
			if dead {
				// Another goroutine's handler killed the process before
				// this one's work was done.
				cmu.Unlock()
				return errDead
			}
			if fx != nil {
				cmu.Unlock()
				return fx.record(ctx, d.m.ev.key, d.m.ev.rev)
			}
			d.completedAt = fx0.add(d.m.ev.key, d.m.ev.rev)
			d.completed = time.Now()
			window++
			cmu.Unlock()
			return nil
		}
		// answer does with a delivery what the consumer does once its call
		// returned: acknowledge it, or leave it to come back.
		answer := func(d *delivery, out revguard.Outcome, err error) {
			cmu.Lock()
			if !d.completed.IsZero() {
				window--
			}
			mine := held[d]
			delete(held, d)
			cmu.Unlock()
			if !d.completed.IsZero() && err != nil {
				// The handler's work is done, yet the event is not
				// acknowledged: it will run again.
				uncommitted.Add(1)
				noteMu.Lock()
				uncommittedAt[d.m.ev.key] = append(uncommittedAt[d.m.ev.key], d.completedAt)
				if len(uncommittedNotes) < 5 {
					uncommittedNotes = append(uncommittedNotes, fmt.Sprintf("consumer %d: %s revision %d: the handler completed %s into Handle, which then took %s more and failed: %v",
						c, d.m.ev.key, d.m.ev.rev, d.completed.Sub(d.start).Round(time.Millisecond), time.Since(d.completed).Round(time.Millisecond), err))
				}
				noteMu.Unlock()
			}
			if d.ranSlow {
				if err == nil && out == revguard.Applied {
					slowApplied.Store(true)
				} else {
					noteMu.Lock()
					slowErr = fmt.Sprintf("%s revision %d: %v %v", d.m.ev.key, d.m.ev.rev, out, err)
					noteMu.Unlock()
				}
			}
			if !mine {
				return // the consumer died: it neither acknowledges nor takes anything, and what it held is on its way back
			}
			switch {
			case err == nil:
				switch out {
				case revguard.Applied:
					applied.Add(1)
				case revguard.Duplicate:
					dup.Add(1)
				case revguard.Stale:
					stale.Add(1)
				}
				tr.ack()
			case errors.Is(err, revguard.ErrInFlight):
				inFlight.Add(1)
				mu.Lock()
				delay := cfg.lease/8 + time.Duration(crng.Int64N(int64(cfg.lease/4)))
				mu.Unlock()
				tr.redeliver(d.m, delay)
			default:
				if !errors.Is(err, errInjected) {
					errs.Add(1)
				}
				mu.Lock()
				delay := time.Millisecond + time.Duration(crng.IntN(10))*time.Millisecond
				if !errors.Is(err, errInjected) {
					delay = 50*time.Millisecond + time.Duration(crng.IntN(100))*time.Millisecond // the store is in trouble: back off
				}
				mu.Unlock()
				tr.redeliver(d.m, delay)
			}
		}
		worker := func() {
			for {
				m, ok := tr.take(stop)
				if !ok {
					return
				}
				ds := []*delivery{{m: m}}
				for len(ds) < batch {
					m, ok := tr.poll()
					if !ok {
						break
					}
					ds = append(ds, &delivery{m: m})
				}
				cmu.Lock()
				if dead {
					cmu.Unlock()
					for _, d := range ds {
						tr.push(d.m) // taken by a process already gone: never delivered
					}
					return
				}
				start := time.Now()
				for _, d := range ds {
					d.start = start
					held[d] = true
				}
				cmu.Unlock()
				if cfg.batch == 0 {
					out, err := g.Handle(cctx, ds[0], h)
					answer(ds[0], out, err)
					continue
				}
				for i, r := range g.HandleBatch(cctx, ds, h) {
					answer(ds[i], r.Outcome, r.Err)
				}
			}
		}
		live.Add(1)
		var workers sync.WaitGroup
		for range goroutines {
			workers.Add(1)
			all.Add(1)
			go func() {
				defer all.Done()
				defer workers.Done()
				worker()
			}()
		}
		all.Add(1)
		go func() {
			defer all.Done()
			workers.Wait()
			gone.Do(live.Done)
			ccancel()
		}()
	}

	fctx, fcancel := context.WithCancel(context.Background())
	fdone := make(chan struct{})
	go func() {
		defer close(fdone)
		if faults != nil {
			faults(fctx)
		}
	}()
	finished := make(chan struct{})
	go func() { live.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(cfg.budget):
		tr.mu.Lock()
		pending := tr.pending
		tr.mu.Unlock()
		t.Errorf("the storm did not settle in %s: %d deliveries still pending", cfg.budget, pending)
		close(stop)
		<-finished
	}
	fcancel()
	<-fdone
	close(release)
	all.Wait()

	ctx := context.Background()
	completions := fx0.byKey
	if fx != nil {
		var err error
		if completions, err = fx.read(ctx); err != nil {
			t.Fatalf("reading the handlers' effects: %v", err)
		}
	}
	res.redelivered = int(tr.redeliv.Load())
	res.handled, res.failed, res.died = int(handled.Load()), int(failed.Load()), int(died.Load())
	res.inFlight, res.errs = int(inFlight.Load()), int(errs.Load())
	res.dup, res.stale = int(dup.Load()), int(stale.Load())
	res.slowApplied = slowApplied.Load()
	res.slowErr = slowErr
	res.uncommitted = int(uncommitted.Load())
	if res.uncommitted > 0 {
		for _, n := range uncommittedNotes {
			t.Log(n)
		}
	}

	// Which revisions each entity was answered Duplicate, and (AtMostOnce)
	// advanced, for the loss count.
	dupOf := map[event]bool{}
	advanced := map[event]bool{}
	ambiguous := map[event]bool{} // a call whose reply never came: it may have advanced
	for _, d := range log.decisions {
		if d.err != nil && d.verdict == 0 {
			ambiguous[event{d.key, d.rev}] = true
		}
		if d.err == nil && d.verdict == revguard.Dup {
			dupOf[event{d.key, d.rev}] = true
		}
		if d.err == nil && d.verdict == revguard.Granted && mode == revguard.AtMostOnce {
			advanced[event{d.key, d.rev}] = true
		}
	}
	// The highest revision each entity had applied: by a completed handler,
	// or in AtMostOnce by an advance, whose handler may then have failed.
	sup := map[string]revguard.Revision{}
	for ev := range advanced {
		sup[ev.key] = max(sup[ev.key], ev.rev)
	}
	for key, top := range highest {
		done := completions[key]
		res.applied += len(done)
		failedCommit := map[int]bool{}
		for _, i := range uncommittedAt[key] {
			failedCommit[i] = true
		}
		seen := map[revguard.Revision]int{}
		committed := map[revguard.Revision]int{} // completions not known to have failed their commit
		var hi revguard.Revision
		for i, r := range done {
			seen[r]++
			if !failedCommit[i] {
				committed[r]++
			}
			if seen[r] == 2 {
				res.twice++
			}
			if i > 0 && r < hi {
				res.outOfOrder++
				// Explained when this completion's own commit failed (a
				// holder whose lease ran out), or when every higher one
				// before it failed its commit, so never raised the applied
				// revision.
				explained := failedCommit[i]
				if !explained {
					explained = true
					for j := range i {
						if done[j] > r && !failedCommit[j] {
							explained = false
							break
						}
					}
				}
				if explained {
					res.orderKnown++
				}
			}
			hi = max(hi, r)
		}
		for r, n := range seen {
			// A repeat is explained when all but one of the completions
			// failed their commit.
			if n >= 2 && committed[r] <= 1 {
				res.twiceKnown++
			}
		}
		hi = max(hi, sup[key])
		st, err := store.Peek(ctx, ns, key)
		if err != nil {
			t.Fatalf("peek %s: %v", key, err)
		}
		if !st.Exists || st.Applied != top {
			res.finalWrong++
			if res.finalWrong <= 5 {
				res.notes = append(res.notes, fmt.Sprintf("%s: applied revision %s at the end, want the highest delivered %d", key, stateString(st.Applied, st.Exists), top))
			}
		}
		if mode == revguard.AtMostOnce && st.Exists {
			// Some advance recorded the final revision, also one whose
			// reply was lost: what lies below it was dropped correctly.
			hi = max(hi, st.Applied)
		}
		for _, ev := range stream {
			if ev.key != key || seen[ev.rev] > 0 {
				continue
			}
			if ev.rev > hi || dupOf[ev] || advanced[ev] {
				res.lost++
				if mode == revguard.AtMostOnce && (advanced[ev] || ambiguous[ev]) {
					res.amoByDesign++
				}
			}
		}
	}
	res.misrep, res.notes = misreported(log, mode, res.notes)
	res.cached = int(cachedDrops.Load())
	res.multiClaims, res.multiClaimReqs = int(log.multiClaims.Load()), int(log.multiClaimReqs.Load())
	res.multiCommits, res.multiCommitReqs = int(log.multiCommits.Load()), int(log.multiCommitReqs.Load())
	res.mostRunning = int(mostRunning.Load())
	switch {
	case cfg.batch > 0:
		res.calling = fmt.Sprintf("HandleBatch(%d), %d at once", cfg.batch, max(cfg.batchConcurrency, 1))
		if goroutines > 1 {
			res.calling += fmt.Sprintf(", %d goroutines", goroutines)
		}
	case goroutines > 1:
		res.calling = fmt.Sprintf("Handle, %d goroutines", goroutines)
	}
	return res, log
}

// misreported counts drops (Duplicate or Stale answers) that no decision
// made before them explains: a drop of revision r needs another call that
// may have made a revision of at least r applied, on the same entity, and
// began before the drop returned. In Claim mode only a granted claim can
// lead to an applied revision. In the modes that advance in one step, so can
// an advance whose reply was lost (an error), and one the client sent again
// after losing its reply: its first run advanced, and a higher advance by
// someone else in between makes the second run answer Stale.
func misreported(log *callLog, mode revguard.Mode, notes []string) (int, []string) {
	type grant struct {
		i     int
		rev   revguard.Revision
		start time.Time
	}
	grants := map[string][]grant{}
	for i, d := range log.decisions {
		if d.verdict == revguard.Granted || (mode != revguard.Claim && (d.err != nil || d.verdict == revguard.Dup || d.verdict == revguard.Old)) {
			grants[d.key] = append(grants[d.key], grant{i, d.rev, d.start})
		}
	}
	n := 0
	for i, d := range log.decisions {
		if d.err != nil || (d.verdict != revguard.Dup && d.verdict != revguard.Old) {
			continue
		}
		if !slices.ContainsFunc(grants[d.key], func(g grant) bool { return g.i != i && g.rev >= d.rev && g.start.Before(d.end) }) {
			n++
			if n <= 5 {
				var all []string
				for _, e := range log.decisions {
					if e.key == d.key {
						all = append(all, fmt.Sprintf("c%d %d %v err=%v [%s, %s]", e.consumer, e.rev, e.verdict, e.err, e.start.Format("05.000000"), e.end.Format("05.000000")))
					}
				}
				notes = append(notes, fmt.Sprintf("%s revision %d was answered %s [%s, %s] with no revision that high granted before; its decisions:\n\t%s",
					d.key, d.rev, d.verdict, d.start.Format("05.000000"), d.end.Format("05.000000"), strings.Join(all, "\n\t")))
			}
		}
	}
	return n, notes
}

// checkStorm fails t when the result breaks a guarantee of mode, and adds
// the row to the table.
func checkStorm(t *testing.T, store, faults string, mode revguard.Mode, r stormResult) {
	t.Helper()
	stormRow(t, store, faults, mode, r)
	for _, n := range r.notes {
		t.Error(n)
	}
	if mode != revguard.AtMostOnce && r.lost != 0 {
		t.Errorf("%s %s: %d events lost", store, mode, r.lost)
	}
	if mode == revguard.AtMostOnce && r.lost != r.amoByDesign {
		t.Errorf("%s %s: %d events lost that were never advanced", store, mode, r.lost-r.amoByDesign)
	}
	// A handler whose work was done but whose commit did not land before
	// its lease ran out (the store unreachable, or slower than the lease,
	// for that long) runs again on redelivery: the limit of any lease.
	// Those repeats are reported (and fail with -strict); any other repeat
	// fails the proof.
	if r.twice != r.twiceKnown {
		t.Errorf("%s %s: %d revisions applied twice", store, mode, r.twice-r.twiceKnown)
	}
	if mode != revguard.AtMostOnce && r.outOfOrder != r.orderKnown {
		t.Errorf("%s %s: %d completions out of order", store, mode, r.outOfOrder-r.orderKnown)
	}
	if known := r.twiceKnown + r.orderKnown; known > 0 {
		issueTable.add(t, "handler done, commit not landed within the lease (store unreachable or slow): run again", store+" "+mode.String()+", faults: "+faults,
			fmt.Sprintf("%d twice, %d out of order", r.twiceKnown, r.orderKnown), 0)
		if *strictFlag {
			t.Errorf("%s %s: %d repeats after a commit that did not land", store, mode, known)
		}
	}
	// AtMostOnce advances before the handler runs and holds no claim, so two
	// handlers of one entity may overlap and finish in either order: its
	// out-of-order count is reported, not held to zero.
	if r.finalWrong != 0 {
		t.Errorf("%s %s: %d entities end below their highest revision", store, mode, r.finalWrong)
	}
	if r.misrep != 0 {
		t.Errorf("%s %s: %d drops misreported", store, mode, r.misrep)
	}
	if r.died == 0 && faults == "none" {
		t.Errorf("%s %s: no consumer died: the storm did not test expiry", store, mode)
	}
	if mode == revguard.Claim && faults == "none" && !r.slowApplied {
		t.Errorf("%s %s: the handler that outlived its lease was not applied: renewal did not keep its claim (%s)", store, mode, r.slowErr)
	}
}

func stormRow(t *testing.T, store, faults string, mode revguard.Mode, r stormResult) {
	t.Helper()
	if r.calling != "" && faults == "none" {
		perCall := func(calls, reqs int) string {
			if calls == 0 {
				return "0"
			}
			return fmt.Sprintf("%d (%.1f each)", calls, float64(reqs)/float64(calls))
		}
		multi := fmt.Sprintf("claim %s, commit %s", perCall(r.multiClaims, r.multiClaimReqs), perCall(r.multiCommits, r.multiCommitReqs))
		concurrentTable.add(t, store, mode, r.calling, multi, r.mostRunning, r.events, r.delivered, r.redelivered, r.handled, r.failed, r.died, r.applied, r.dup, r.stale, r.lost, r.twice, r.outOfOrder, r.misrep, r.errs)
		return
	}
	tb := stormTable
	if faults != "none" {
		tb = faultTable
	}
	tb.add(t, store, mode, faults, r.events, r.delivered, r.redelivered, r.handled, r.failed, r.died, r.applied, r.dup, r.stale, r.lost, r.twice, r.outOfOrder, r.misrep, r.errs)
}

// TestProofStormDropCache storms consumers whose guards each keep a drop
// cache, small enough to evict: a cache that dropped an event its store
// would apply shows as a lost event, and a cached drop no applied revision
// explains as a misreported one.
func TestProofStormDropCache(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if b.variant {
				t.Skip("a setting of a store the cache storm already covers")
			}
			for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
				t.Run(mode.String(), func(t *testing.T) {
					o := b.open(t, storeOpts{})
					cfg := defaultStorm()
					cfg.cache = 16
					if b.name == "sqlite" {
						cfg.lease = time.Second
					}
					if raceEnabled {
						cfg.lease *= 3
					}
					r, _ := runStorm(t, o.store, mode, cfg, nil, nil)
					if r.cached == 0 {
						t.Error("the drop caches answered nothing: this storm proves nothing about them")
					}
					checkStorm(t, fmt.Sprintf("%s +cache (%d of %d drops cached)", b.name, r.cached, r.dup+r.stale), "none", mode, r)
				})
			}
		})
	}
}

// stormModes returns the modes b is stormed in, or skips t when b is a
// variant that only the long proof storms.
func stormModes(t *testing.T, b backend) []revguard.Mode {
	if b.variant && !long() {
		t.Skip("a setting of a store the short proof already storms: in the long proof only")
	}
	if b.sql {
		return []revguard.Mode{revguard.Claim, revguard.AtMostOnce, revguard.Transactional}
	}
	return []revguard.Mode{revguard.Claim, revguard.AtMostOnce}
}

func TestProofStorm(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			modes := stormModes(t, b)
			for _, mode := range modes {
				t.Run(mode.String(), func(t *testing.T) {
					o := b.open(t, storeOpts{})
					cfg := defaultStorm()
					if b.name == "sqlite" {
						cfg.lease = time.Second // one writer at a time: calls queue for the lock
					}
					if raceEnabled {
						cfg.lease *= 3
					}
					var fx effectLog
					if mode == revguard.Transactional {
						fx = o.effects(t)
					}
					r, _ := runStorm(t, o.store, mode, cfg, fx, nil)
					checkStorm(t, b.name, "none", mode, r)
				})
			}
		})
	}
}

// TestProofStormConcurrent storms consumers that each call their one guard
// from many places at once, as partitioned consumers do: 8 goroutines
// calling Handle, whose claims, commits and advances the guard coalesces
// into shared batch calls, or HandleBatch on up to 16 deliveries taken
// together, running 4 handlers of distinct entities at a time. The checks
// are the plain storm's. Each storm also checks that it exercised what it
// is about: a Handle storm whose store calls never carried more than one
// request, or a batch storm that never ran two handlers at once, proves
// nothing about coalescing or batch concurrency.
func TestProofStormConcurrent(t *testing.T) {
	callings := []struct {
		name                           string
		goroutines, batch, concurrency int
	}{
		{"Handle", 8, 0, 0},
		{"HandleBatch", 1, 16, 4},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			modes := stormModes(t, b)
			for _, calling := range callings {
				for _, mode := range modes {
					t.Run(calling.name+"/"+mode.String(), func(t *testing.T) {
						o := b.open(t, storeOpts{})
						cfg := defaultStorm()
						cfg.goroutines, cfg.batch, cfg.batchConcurrency = calling.goroutines, calling.batch, calling.concurrency
						if b.name == "sqlite" {
							cfg.lease = time.Second // one writer at a time: calls queue for the lock
						}
						if raceEnabled {
							cfg.lease *= 3
						}
						name := b.name
						if b.name == "memstore" && calling.goroutines > 1 {
							// memstore answers in about a microsecond, so calls
							// would hardly ever meet in flight; a round trip's
							// worth of latency, as any other store has, lets
							// them.
							cfg.latency = 100 * time.Microsecond
							name += " +100µs per call"
						}
						var fx effectLog
						if mode == revguard.Transactional {
							fx = o.effects(t)
						}
						r, _ := runStorm(t, o.store, mode, cfg, fx, nil)
						// Transactional runs each event in a transaction of
						// its own, one after another in a batch: there is
						// nothing to share and no batch concurrency.
						if mode != revguard.Transactional {
							if calling.goroutines > 1 && r.multiClaims+r.multiCommits == 0 {
								t.Errorf("%s %s: no ClaimBatch or CommitBatch call carried more than one request: the concurrent Handle calls never coalesced, and this storm proves nothing about coalescing", name, mode)
							}
							if calling.concurrency > 1 && r.mostRunning < 2 {
								t.Errorf("%s %s: no consumer ever ran two handlers at once: this storm proves nothing about WithBatchConcurrency", name, mode)
							}
						}
						checkStorm(t, name, "none", mode, r)
					})
				}
			}
		})
	}
}
