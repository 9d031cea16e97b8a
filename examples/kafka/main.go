// Kafka consumes a topic with a franz-go consumer group and applies each
// product's price events once and in revision order through a revguard guard.
// The broker is kfake, an in-process cluster that speaks the Kafka protocol,
// so nothing needs to be installed:
//
//	cd examples/kafka && go run .
//
// The producer retries like a real one: a send whose acknowledgement was lost
// is sent again, and a retried send can land after the product's next
// revision. The consumers run revkgo.Consume (contrib/revkgo), which commits
// offsets only after the guard returned nil for every record up to that
// offset (err == nil means acknowledge) and rewinds a partition to a record
// whose handler failed, so that it is fetched again. One consumer handles a
// batch and stops before committing, as a process killed between handling and
// committing would, so the group delivers that batch again to the others.
//
// # Why the offset is not the revision
//
// A common recipe deduplicates Kafka records by topic-partition-offset. That
// identity names a copy of a message in the log, not the business event: when
// the producer sends the same event again (its acknowledgement was lost, or an
// outbox relay ran twice), the broker appends it at a new offset, and an
// offset-keyed consumer applies it twice. Offsets also say nothing about the
// order of one product's changes once a retry lands late. The revision is
// written by whoever owns the product (a version column, an event-store
// sequence) and travels in the event, so every copy of one change carries the
// same revision and an older change carries a lower one, at any offset.
//
// Offsets still matter: they are what the group commits, so that a restarted
// consumer resumes near where it stopped. revguard makes whatever the group
// delivers again, after a crash or a rebalance, harmless.
//
// The program exits with status 1 if any product's final state is not its
// newest revision, a revision was applied twice, or the group's committed
// offsets do not cover the whole topic.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revkgo"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PriceUpdated carries a product's whole new price, so the newest wins.
// Revision is the product's version in the producer's database.
type PriceUpdated struct {
	Product  string `json:"product"`
	Revision uint64 `json:"revision"`
	Cents    int    `json:"cents"`
}

const (
	topic      = "price-updates"
	group      = "price-projection"
	partitions = 4
)

func main() {
	seed := flag.Uint64("seed", 1, "seed of the random producer retries and handler failures")
	products := flag.Int("products", 12, "number of products")
	revisions := flag.Int("revisions", 8, "revisions per product")
	failRate := flag.Float64("fail", 0.15, "probability that a handler call fails (transiently)")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx, *seed, *products, *revisions, *failRate); err != nil {
		fmt.Fprintln(os.Stderr, "kafka example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, seed uint64, products, revisions int, failRate float64) error {
	start := time.Now()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		return fmt.Errorf("starting kfake: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	rng := rand.New(rand.NewPCG(seed, 1))
	sent, err := produce(ctx, brokers, rng, products, revisions)
	if err != nil {
		return err
	}

	p := newProjection(failRate, rand.New(rand.NewPCG(seed, 2)))
	// snippet:kafka-guard
	guard := revguard.New(memstore.New(), func(r *kgo.Record) (string, revguard.Revision, error) {
		var e PriceUpdated
		if err := json.Unmarshal(r.Value, &e); err != nil {
			return "", 0, err
		}
		return revguard.Key("product", e.Product), revguard.Revision(e.Revision), nil
	}, revguard.WithNamespace(group))
	// snippet:end

	// The first consumer takes every partition, handles one batch and stops
	// without committing.
	c := &consumer{name: "consumer-1", brokers: brokers, guard: guard, p: p}
	died, err := c.handleOneBatchAndDie(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("consumer-1 handled %d records and stopped without committing their offsets\n", died)

	// Two consumers share the partitions until the group's commits reach the
	// end of every partition.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	consumers := []*consumer{
		{name: "consumer-2", brokers: brokers, guard: guard, p: p},
		{name: "consumer-3", brokers: brokers, guard: guard, p: p},
	}
	for _, c := range consumers {
		if c.cl, err = c.client(); err != nil {
			return err
		}
		defer c.cl.CloseAllowingRebalance()
	}
	// Both join before either polls, so that they split the partitions.
	if _, err := cluster.WaitGroupStable(ctx, group, len(consumers)); err != nil {
		return fmt.Errorf("waiting for %d group members: %w", len(consumers), err)
	}
	errs := make([]error, len(consumers))
	for i, c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.run(runCtx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", c.name, err)
			}
		}()
	}
	caughtUp := waitCommitted(ctx, cluster, sent.end)
	stop()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, c := range consumers {
		fmt.Printf("%s handled %d deliveries\n", c.name, c.handled.Load())
	}

	st := guard.Stats()
	fmt.Printf("produced %d records: %d price changes, %d re-sent copies (each at a new offset), %d retries that landed after a newer revision\n",
		sent.records, products*revisions, sent.resent, sent.late)
	fmt.Printf("handled %d deliveries: %d applied, %d duplicate, %d stale; %d not acknowledged (%d handler failures), each fetched again from its offset\n",
		p.deliveries.Load(), st.Applied, st.Duplicate, st.Stale, p.notAcked.Load(), p.failures.Load())
	fmt.Printf("%d duplicates were re-sent copies at offsets never seen before: deduplicating by topic-partition-offset would have applied them again\n",
		p.newOffsetDups.Load())
	fmt.Printf("%d deliveries repeated an offset already handled (the uncommitted batch, failed records)\n", p.repeatedOffsets.Load())

	// The checks run even if the deadline passed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	failed := p.check(ctx, guard, sent.newest)
	if caughtUp != nil {
		failed = append(failed, caughtUp)
	}
	if len(failed) > 0 {
		return errors.Join(failed...)
	}
	fmt.Printf("ok: %d products at their newest revision, no revision applied twice, offsets committed to the end of %d partitions, in %s\n",
		len(sent.newest), partitions, time.Since(start).Round(time.Millisecond))
	return nil
}

// sent is what the producer wrote.
type sent struct {
	records int
	resent  int                     // copies of an event already sent
	late    int                     // sends that landed after the product's next revision
	newest  map[string]PriceUpdated // by product
	end     map[int32]int64         // the offset after the last record, by partition
}

// produce sends revisions 1..revisions of each product, as a producer whose
// sends are sometimes retried: a retried event is the same business event (same
// product, revision and price) and gets a new offset; a send that failed and was
// retried after the next revision went out lands behind it.
func produce(ctx context.Context, brokers []string, rng *rand.Rand, products, revisions int) (sent, error) {
	s := sent{newest: map[string]PriceUpdated{}, end: map[int32]int64{}}
	var queues [][]PriceUpdated
	for i := range products {
		var q []PriceUpdated
		for r := 1; r <= revisions; r++ {
			e := PriceUpdated{Product: fmt.Sprintf("p%02d", i), Revision: uint64(r), Cents: 1000 + 7*i + 13*r}
			s.newest[e.Product] = e
			switch n := len(q); {
			case n > 0 && rng.Float64() < 0.2: // the previous send is retried after this one
				q = append(q[:n-1], e, q[n-1])
				s.late++
			default:
				q = append(q, e)
			}
			if rng.Float64() < 0.25 { // the acknowledgement was lost: sent again
				q = append(q, e)
				s.resent++
			}
		}
		queues = append(queues, q)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return s, err
	}
	defer cl.Close()
	// Products' streams interleave in the topic; each product's records stay in
	// one partition (the record key is the product), in the order sent.
	for {
		var live []int
		for i, q := range queues {
			if len(q) > 0 {
				live = append(live, i)
			}
		}
		if len(live) == 0 {
			break
		}
		i := live[rng.IntN(len(live))]
		e := queues[i][0]
		queues[i] = queues[i][1:]
		v, err := json.Marshal(e)
		if err != nil {
			return s, err
		}
		rec, err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(e.Product), Value: v}).First()
		if err != nil {
			return s, fmt.Errorf("producing %s revision %d: %w", e.Product, e.Revision, err)
		}
		s.records++
		s.end[rec.Partition] = max(s.end[rec.Partition], rec.Offset+1)
	}
	return s, nil
}

// projection is the consumer's state: each product's current price, built
// from the events the guard lets through.
type projection struct {
	failRate float64

	mu      sync.Mutex
	rng     *rand.Rand
	prices  map[string]PriceUpdated
	applied map[string]int // "product@revision" → handler completions
	seen    map[string]bool

	deliveries, notAcked, failures atomic.Int64
	newOffsetDups, repeatedOffsets atomic.Int64
}

func newProjection(failRate float64, rng *rand.Rand) *projection {
	return &projection{failRate: failRate, rng: rng, prices: map[string]PriceUpdated{}, applied: map[string]int{}, seen: map[string]bool{}}
}

var errTransient = errors.New("price store timed out")

// apply is the handler: it fails now and then, as a call to a database does.
func (p *projection) apply(ctx context.Context, r *kgo.Record) error {
	var e PriceUpdated
	if err := json.Unmarshal(r.Value, &e); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rng.Float64() < p.failRate {
		p.failures.Add(1)
		return fmt.Errorf("%s revision %d: %w", e.Product, e.Revision, errTransient)
	}
	p.prices[e.Product] = e
	p.applied[fmt.Sprintf("%s@%d", e.Product, e.Revision)]++
	return nil
}

// delivered notes which offsets were handled before, to tell a redelivered
// record from a re-sent event.
func (p *projection) delivered(r *kgo.Record, out revguard.Outcome, err error) {
	p.deliveries.Add(1)
	if err != nil {
		p.notAcked.Add(1)
	}
	id := fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
	p.mu.Lock()
	again := p.seen[id]
	p.seen[id] = true
	p.mu.Unlock()
	switch {
	case again:
		p.repeatedOffsets.Add(1)
	case err == nil && out == revguard.Duplicate:
		p.newOffsetDups.Add(1)
	}
}

// check compares every product with its newest revision.
func (p *projection) check(ctx context.Context, g *revguard.Guard[*kgo.Record], newest map[string]PriceUpdated) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for id, n := range p.applied {
		if n > 1 {
			errs = append(errs, fmt.Errorf("%s applied %d times", id, n))
		}
	}
	for product, want := range newest {
		got := p.prices[product]
		rev, _, err := g.Applied(ctx, revguard.Key("product", product))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if got != want || uint64(rev) != want.Revision {
			errs = append(errs, fmt.Errorf("%s: have price %d at revision %d (guard: %d), want %d at revision %d",
				product, got.Cents, got.Revision, rev, want.Cents, want.Revision))
		}
	}
	return errs
}

type consumer struct {
	name    string
	brokers []string
	guard   *revguard.Guard[*kgo.Record]
	p       *projection
	cl      *kgo.Client
	handled atomic.Int64
}

// snippet:kafka-client

func (c *consumer) client() (*kgo.Client, error) {
	return kgo.NewClient(
		kgo.SeedBrokers(c.brokers...),
		kgo.ClientID(c.name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Both required by revkgo.Consume: it commits only what the guard
		// acknowledged, between a poll and AllowRebalance, so a member never
		// commits for a partition it no longer owns.
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(50*time.Millisecond),
		kgo.HeartbeatInterval(100*time.Millisecond),
	)
}

// snippet:end

// handleOneBatchAndDie polls one batch, runs it through the guard and leaves
// without committing.
func (c *consumer) handleOneBatchAndDie(ctx context.Context) (int, error) {
	cl, err := c.client()
	if err != nil {
		return 0, err
	}
	defer cl.Close() // leaves the group: its partitions go to the others
	for {
		fetches := cl.PollRecords(ctx, 20)
		if err := fetchError(fetches); err != nil {
			return 0, err
		}
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			out, err := c.guard.Handle(ctx, r, c.p.apply)
			c.p.delivered(r, out, err)
			n++
		})
		cl.AllowRebalance()
		if n > 0 {
			return n, nil
		}
	}
}

// run consumes until ctx ends: revkgo.Consume handles each partition's
// records in order, commits the offset after the last record the guard
// acknowledged, and rewinds to the first one it did not.
func (c *consumer) run(ctx context.Context) error {
	observe := func(r *kgo.Record, out revguard.Outcome, err error) {
		c.handled.Add(1)
		c.p.delivered(r, out, err)
	}
	// snippet:kafka-consume
	err := revkgo.Consume(ctx, c.cl, c.guard, c.p.apply,
		revkgo.WithObserver(observe), revkgo.WithPollRecords(50))
	// snippet:end
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func fetchError(f kgo.Fetches) error {
	var errs []error
	f.EachError(func(t string, p int32, err error) {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) {
			errs = append(errs, fmt.Errorf("fetching %s/%d: %w", t, p, err))
		}
	})
	return errors.Join(errs...)
}

// waitCommitted waits until the group's committed offsets, as the broker
// reports them, reach end.
func waitCommitted(ctx context.Context, cluster *kfake.Cluster, end map[int32]int64) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := commitsReach(cluster, end)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the group did not commit the whole topic in time: %w", err)
		case <-tick.C:
		}
	}
}

// commitsReach returns nil if the group has committed every partition up to
// end, as the broker reports it.
func commitsReach(cluster *kfake.Cluster, end map[int32]int64) error {
	info := cluster.GroupInfo(group)
	if info == nil {
		return fmt.Errorf("group %s not found", group)
	}
	var errs []error
	for part, want := range end {
		got, ok := info.Commits[topic][part]
		if !ok || got.Offset != want {
			errs = append(errs, fmt.Errorf("partition %d: committed %d, want %d", part, got.Offset, want))
		}
	}
	return errors.Join(errs...)
}
