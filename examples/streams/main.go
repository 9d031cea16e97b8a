// Streams consumes a Redis stream with a consumer group and applies each
// product's price events once and in revision order, through revguard guards
// that share a Redis store (backends/redisstore):
//
//	go run ./examples/streams                          # in-process miniredis
//	go run ./examples/streams -addr 127.0.0.1:6379     # a real redis-server
//
// The address comes from -addr, or else from REVGUARD_REDIS_ADDR; with
// neither, the program starts an in-process miniredis, which implements the
// commands used here (XADD, XREADGROUP, XACK, XAUTOCLAIM, XPENDING) and the
// Lua scripts the store runs.
//
// Three consumers stand for three processes: each is a goroutine with its own
// Redis client, store and guard, sharing nothing but Redis. consumer-1 reads a
// batch with XREADGROUP and dies: it handles a few entries without
// acknowledging them and is killed in the middle of a handler, holding a claim.
// consumer-2 and consumer-3 read new entries with XREADGROUP and take over
// entries left pending too long with XAUTOCLAIM: the dead consumer's, and
// their own whose handler failed. They XACK an entry only when the guard
// returns nil (err == nil means acknowledge). The dead consumer's claim blocks
// its entity, with ErrInFlight, until its lease runs out.
//
// The producer XADDs with duplicates (a retried XADD appends a new entry, with
// a new ID, for the same business event) and out-of-order revisions. The
// stream entry ID is therefore not the revision: the revision is a field of
// the event, set by whoever owns the product.
//
// Every key the program writes starts with a prefix unique to the run, and is
// deleted at the end, so it can share a server with anything else. It exits
// with status 1 if any product's final price is not its newest revision, a
// revision was applied twice, or an entry is left unacknowledged.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/redisstore"
)

const (
	// minIdle is how long an entry stays pending with one consumer before
	// another may take it over with XAUTOCLAIM.
	minIdle = 150 * time.Millisecond
	// lease is how long a dead consumer's claim blocks its entity.
	lease = 500 * time.Millisecond
)

// PriceUpdated carries a product's whole new price, so the newest wins.
type PriceUpdated struct {
	Product  string
	Revision revguard.Revision
	Cents    int
}

func main() {
	addr := flag.String("addr", os.Getenv("REVGUARD_REDIS_ADDR"), "Redis address (default $REVGUARD_REDIS_ADDR; none: an in-process miniredis)")
	seed := flag.Uint64("seed", 1, "seed of the producer's retries and the handlers' failures")
	products := flag.Int("products", 10, "number of products")
	revisions := flag.Int("revisions", 8, "revisions per product")
	flag.Parse()

	// Interrupted, it still deletes its keys.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := run(ctx, *addr, *seed, *products, *revisions); err != nil {
		fmt.Fprintln(os.Stderr, "streams example:", err)
		os.Exit(1)
	}
}

// names are the keys of one run, all under one prefix.
type names struct {
	prefix  string // of every key, the store's included
	stream  string
	group   string
	prices  string // hash: product → "revision cents", the handlers' output
	applied string // hash: "product@revision" → handler completions
}

func newNames() names {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	p := "revguard-example:" + hex.EncodeToString(b[:]) + ":"
	return names{prefix: p, stream: p + "prices", group: "pricing", prices: p + "state", applied: p + "applied"}
}

func run(ctx context.Context, addr string, seed uint64, products, revisions int) error {
	start := time.Now()
	mini := addr == ""
	if mini {
		m, err := miniredis.Run()
		if err != nil {
			return err
		}
		defer m.Close()
		addr = m.Addr()
		fmt.Println("redis: no -addr and no REVGUARD_REDIS_ADDR: using an in-process miniredis, which supports XREADGROUP, XACK, XAUTOCLAIM and Lua")
	} else {
		fmt.Println("redis:", addr)
	}
	n := newNames()
	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { _ = admin.Close() }()
	if !mini {
		// An eviction policy that can drop revision keys would let stale
		// and duplicate events through again.
		if err := redisstore.New(admin).Preflight(ctx); err != nil {
			fmt.Println("redis: warning:", err)
		} else {
			fmt.Println("redis: preflight ok: the eviction policy keeps revision keys")
		}
	}
	if err := admin.XGroupCreateMkStream(ctx, n.stream, n.group, "0").Err(); err != nil {
		return fmt.Errorf("creating stream %s and group: %w", n.stream, err)
	}
	defer cleanup(admin, n.prefix)

	newest, events := plan(mrand.New(mrand.NewPCG(seed, 1)), products, revisions)
	prodCtx, prodStop := context.WithCancel(ctx)
	produced := make(chan struct{})
	var (
		added   int
		prodErr error
	)
	go func() {
		defer close(produced)
		added, prodErr = produce(prodCtx, admin, n.stream, events)
	}()
	defer func() { prodStop(); <-produced }() // before cleanup

	var acked atomic.Int64
	procs := make([]*process, 3)
	for i := range procs {
		procs[i] = newProcess(fmt.Sprintf("consumer-%d", i+1), addr, n, mrand.New(mrand.NewPCG(seed, uint64(2+i))), &acked)
		defer func() { _ = procs[i].rdb.Close() }()
	}

	fmt.Printf("consumers: %d goroutines standing for processes, each with its own Redis client, store and guard\n", len(procs))
	report, err := procs[0].readAndDie(ctx)
	if err != nil {
		return err
	}
	fmt.Println(report)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range procs[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.consume(runCtx); err != nil && runCtx.Err() == nil {
				errs[i] = fmt.Errorf("%s: %w", p.name, err)
				stop()
			}
		}()
	}
	caughtUp := waitAcked(runCtx, produced, &acked, len(events))
	stop()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	<-produced
	if prodErr != nil {
		return fmt.Errorf("producer: %w", prodErr)
	}

	var st revguard.Stats
	for _, p := range procs {
		s := p.guard.Stats()
		st.Applied += s.Applied
		st.Duplicate += s.Duplicate
		st.Stale += s.Stale
		st.InFlight += s.InFlight
		st.Failed += s.Failed
	}
	fmt.Printf("XADDed %d entries (%d price changes); XACKed %d\n", added, products*revisions, acked.Load())
	fmt.Printf("guards: %d applied, %d duplicate, %d stale; not acknowledged: %d failed, %d in flight elsewhere\n",
		st.Applied, st.Duplicate, st.Stale, st.Failed, st.InFlight)
	for _, p := range procs[1:] {
		fmt.Printf("%s: %d read with XREADGROUP, %d taken over with XAUTOCLAIM\n", p.name, p.read.Load(), p.claimed.Load())
	}

	var fails []error
	if caughtUp != nil {
		fails = append(fails, caughtUp)
	}
	// The checks run even if the deadline passed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	fails = append(fails, check(ctx, admin, n, procs[1].guard, newest)...)
	if err := errors.Join(fails...); err != nil {
		return err
	}
	fmt.Printf("ok: %d products at their newest revision, none applied twice, no entry pending, in %s\n",
		len(newest), time.Since(start).Round(time.Millisecond))
	return nil
}

// plan returns each product's newest event and the events a producer with
// retries sends: a send whose reply was lost is sent again, and a send that
// failed is retried after the product's next revision. Products interleave.
func plan(rng *mrand.Rand, products, revisions int) (map[string]PriceUpdated, []PriceUpdated) {
	newest := map[string]PriceUpdated{}
	var streams [][]PriceUpdated
	for i := range products {
		var s []PriceUpdated
		for r := 1; r <= revisions; r++ {
			e := PriceUpdated{Product: fmt.Sprintf("p%02d", i), Revision: revguard.Revision(r), Cents: 1000 + 7*i + 13*r}
			newest[e.Product] = e
			if k := len(s); k > 0 && rng.Float64() < 0.2 {
				s = append(s[:k-1], e, s[k-1])
			} else {
				s = append(s, e)
			}
			if rng.Float64() < 0.25 {
				s = append(s, e)
			}
		}
		streams = append(streams, s)
	}
	var out []PriceUpdated
	for {
		var live []int
		for i, s := range streams {
			if len(s) > 0 {
				live = append(live, i)
			}
		}
		if len(live) == 0 {
			return newest, out
		}
		i := live[rng.IntN(len(live))]
		out = append(out, streams[i][0])
		streams[i] = streams[i][1:]
	}
}

// event reads a stream entry. The revision is the event's own field, not the
// entry ID.
func event(m redis.XMessage) (PriceUpdated, error) {
	product, _ := m.Values["product"].(string)
	revision, _ := m.Values["revision"].(string)
	cents, _ := m.Values["cents"].(string)
	rev, err := revguard.ParseRevision(revision)
	if err != nil {
		return PriceUpdated{}, fmt.Errorf("entry %s: %w", m.ID, err)
	}
	c, err := strconv.Atoi(cents)
	if err != nil {
		return PriceUpdated{}, fmt.Errorf("entry %s: cents: %w", m.ID, err)
	}
	return PriceUpdated{Product: product, Revision: rev, Cents: c}, nil
}

// process is one consumer process: its own client, store and guard.
type process struct {
	name  string
	n     names
	rdb   *redis.Client
	guard *revguard.Guard[redis.XMessage]
	acked *atomic.Int64

	mu  sync.Mutex
	rng *mrand.Rand

	read, claimed atomic.Int64
}

func newProcess(name, addr string, n names, rng *mrand.Rand, acked *atomic.Int64) *process {
	// snippet:streams-guard
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	store := redisstore.New(rdb, redisstore.WithPrefix(n.prefix))
	guard := revguard.New(store, func(m redis.XMessage) (string, revguard.Revision, error) {
		e, err := event(m)
		if err != nil {
			return "", 0, err
		}
		return revguard.Key("product", e.Product), e.Revision, nil
	}, revguard.WithNamespace(n.group), revguard.WithLease(lease))
	// snippet:end
	return &process{name: name, n: n, rdb: rdb, guard: guard, acked: acked, rng: rng}
}

var errUnavailable = errors.New("price service unavailable")

// apply is the handler: it records the price and counts the application, in
// one MULTI. It fails now and then, as a call to another service does.
func (p *process) apply(ctx context.Context, m redis.XMessage) error {
	e, err := event(m)
	if err != nil {
		return err
	}
	p.mu.Lock()
	fail := p.rng.Float64() < 0.15
	p.mu.Unlock()
	if fail {
		return fmt.Errorf("%s revision %d: %w", e.Product, e.Revision, errUnavailable)
	}
	_, err = p.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.HSet(ctx, p.n.prices, e.Product, fmt.Sprintf("%d %d", e.Revision, e.Cents))
		tx.HIncrBy(ctx, p.n.applied, fmt.Sprintf("%s@%d", e.Product, e.Revision), 1)
		return nil
	})
	return err
}

// snippet:streams-handle

// handle runs one entry through the guard and acknowledges it when the guard
// says so.
func (p *process) handle(ctx context.Context, m redis.XMessage) error {
	if _, err := p.guard.Handle(ctx, m, p.apply); err != nil {
		return nil // not acknowledged: it stays pending, and XAUTOCLAIM brings it back
	}
	n, err := p.rdb.XAck(ctx, p.n.stream, p.n.group, m.ID).Result()
	p.acked.Add(n)
	return err
}

// snippet:end

// readAndDie reads one batch and handles it without acknowledging anything,
// as a consumer that acknowledges a batch at its end would, and is killed in
// the middle of the first handler that runs after three applied entries: its
// connection closes, so it neither renews nor releases its claim.
func (p *process) readAndDie(ctx context.Context) (string, error) {
	for { // let the producer get ahead, so that the batch is full
		n, err := p.rdb.XLen(ctx, p.n.stream).Result()
		if err != nil {
			return "", fmt.Errorf("%s: XLEN: %w", p.name, err)
		}
		if n >= 10 {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	res, err := p.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: p.n.group, Consumer: p.name, Streams: []string{p.n.stream, ">"}, Count: 10, Block: 5 * time.Second,
	}).Result()
	if err != nil {
		return "", fmt.Errorf("%s: XREADGROUP: %w", p.name, err)
	}
	batch := res[0].Messages
	applied, killed := 0, false
	for _, m := range batch {
		h := p.apply
		if applied == 3 {
			h = func(ctx context.Context, m redis.XMessage) error {
				killed = true
				_ = p.rdb.Close()
				return errors.New("killed")
			}
		}
		out, err := p.guard.Handle(ctx, m, h)
		if killed {
			break
		}
		if err == nil && out == revguard.Applied {
			applied++
		}
	}
	how := "and stopped"
	if killed {
		how = "and was killed inside the next handler, holding its claim"
	}
	return fmt.Sprintf("%s read %d entries with XREADGROUP, applied %d without acknowledging them %s",
		p.name, len(batch), applied, how), nil
}

// snippet:streams-consume

// consume takes over entries left pending for minIdle, reads new ones, and
// handles both, until ctx ends.
func (p *process) consume(ctx context.Context) error {
	for ctx.Err() == nil {
		for cursor := "0-0"; ; {
			msgs, next, err := p.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: p.n.stream, Group: p.n.group, Consumer: p.name, MinIdle: minIdle, Start: cursor, Count: 20,
			}).Result()
			if err != nil {
				return fmt.Errorf("XAUTOCLAIM: %w", err)
			}
			p.claimed.Add(int64(len(msgs)))
			for _, m := range msgs {
				if err := p.handle(ctx, m); err != nil {
					return err
				}
			}
			if next == "0-0" || len(msgs) == 0 {
				break
			}
			cursor = next
		}
		res, err := p.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: p.n.group, Consumer: p.name, Streams: []string{p.n.stream, ">"}, Count: 10, Block: 50 * time.Millisecond,
		}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue
		case err != nil:
			return fmt.Errorf("XREADGROUP: %w", err)
		}
		for _, s := range res {
			p.read.Add(int64(len(s.Messages)))
			for _, m := range s.Messages {
				if err := p.handle(ctx, m); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// snippet:end

// produce XADDs the events, one a millisecond, and returns how many it added.
func produce(ctx context.Context, rdb *redis.Client, stream string, events []PriceUpdated) (int, error) {
	for i, e := range events {
		err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{
			"product", e.Product, "revision", e.Revision.String(), "cents", e.Cents,
		}}).Err()
		if err != nil {
			return i, err
		}
		time.Sleep(time.Millisecond)
	}
	return len(events), nil
}

// waitAcked waits until the producer is done and every entry is acknowledged.
func waitAcked(ctx context.Context, produced <-chan struct{}, acked *atomic.Int64, entries int) error {
	for {
		select {
		case <-produced:
			if acked.Load() >= int64(entries) {
				return nil
			}
		default:
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d entries acknowledged when the consumers stopped", acked.Load(), entries)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// check compares what the handlers wrote with each product's newest event,
// and asks Redis for pending entries.
func check(ctx context.Context, rdb *redis.Client, n names, g *revguard.Guard[redis.XMessage], newest map[string]PriceUpdated) []error {
	var errs []error
	pending, err := rdb.XPending(ctx, n.stream, n.group).Result()
	if err != nil {
		errs = append(errs, fmt.Errorf("XPENDING: %w", err))
	} else if pending.Count != 0 {
		errs = append(errs, fmt.Errorf("%d entries still pending: %v", pending.Count, pending.Consumers))
	}
	prices, err := rdb.HGetAll(ctx, n.prices).Result()
	if err != nil {
		return append(errs, err)
	}
	applied, err := rdb.HGetAll(ctx, n.applied).Result()
	if err != nil {
		return append(errs, err)
	}
	for id, count := range applied {
		if count != "1" {
			errs = append(errs, fmt.Errorf("%s applied %s times", id, count))
		}
	}
	for product, want := range newest {
		rev, _, err := g.Applied(ctx, revguard.Key("product", product))
		if got := prices[product]; err != nil || got != fmt.Sprintf("%d %d", want.Revision, want.Cents) || rev != want.Revision {
			errs = append(errs, fmt.Errorf("%s: price %q (guard at revision %d, %v), want revision %d at %d cents",
				product, got, rev, err, want.Revision, want.Cents))
		}
	}
	return errs
}

// cleanup deletes every key under prefix.
func cleanup(rdb *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, escapeGlob(prefix)+"*", 100).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) > 0 {
		rdb.Del(ctx, keys...)
	}
}

func escapeGlob(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`).Replace(s)
}
