// Queue runs several consumers of an SQS-shaped work queue through one
// revguard guard, with a dead-letter path for an event that never succeeds.
// It needs no server:
//
//	go run ./examples/queue
//
// The queue behaves like an SQS standard queue, in memory: Receive hides a
// message for a visibility timeout and counts its receives
// (ApproximateReceiveCount); Delete is the acknowledgement; a message not
// deleted in time is delivered again, in no particular order. The producer
// sends some events twice and some revisions late. Handlers fail now and then,
// one is slower than the visibility timeout, and one event fails every time.
//
// Each consumer follows the ack rule: Delete when the guard returns nil. For
// the event that always fails, the consumer turns the failure into
// revguard.Permanent once the message has been received maxReceives times;
// WithDeadLetter then sends it to a dead-letter queue and records its revision,
// so the copies still in the queue are dropped as duplicates and redelivery
// ends. (A redrive policy on the queue alone would move the message but
// record nothing, and a copy of the event would be tried maxReceives times
// again.)
//
// The program exits with status 1 if a product's price is not its newest
// revision, a revision was applied twice, the failing event is not in the
// dead-letter queue exactly once, or the queue does not drain within its
// deadline.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

// PriceUpdated carries a product's whole new price, so the newest wins.
type PriceUpdated struct {
	Product  string
	Revision uint64
	Cents    int
}

const (
	visibility  = 100 * time.Millisecond
	maxReceives = 5 // after this many receives a failure is permanent
	consumers   = 4
)

// broken is the event whose handler always fails.
var broken = PriceUpdated{Product: "p-broken", Revision: 1, Cents: 500}

func main() {
	seed := flag.Uint64("seed", 1, "seed of the producer's retries and the handlers' failures")
	products := flag.Int("products", 12, "number of products")
	revisions := flag.Int("revisions", 8, "revisions per product")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if err := run(ctx, *seed, *products, *revisions); err != nil {
		fmt.Fprintln(os.Stderr, "queue example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, seed uint64, products, revisions int) error {
	start := time.Now()
	queue, dlq := NewQueue(visibility, seed), NewQueue(visibility, seed+1)
	p := newPricing(seed)

	// snippet:queue-guard
	guard := revguard.New(memstore.New(),
		func(m Message) (string, revguard.Revision, error) {
			return revguard.Key("product", m.Event.Product), revguard.Revision(m.Event.Revision), nil
		},
		revguard.WithNamespace("pricing"),
		revguard.WithMode(revguard.Claim),
		// A consumer that dies mid-handler blocks its entity until the
		// lease ends; twice the visibility timeout lets the redelivery
		// through soon after the message becomes visible again.
		revguard.WithLease(2*visibility),
		revguard.WithDeadLetter(func(ctx context.Context, m Message, err error) error {
			dlq.Send(m.Event)
			fmt.Printf("dead-lettered %s revision %d after %d receives: %v\n", m.Event.Product, m.Event.Revision, m.ReceiveCount, err)
			return nil
		}),
	)

	// The handler the guard runs. Failing maxReceives times is taken as
	// permanent: the guard hands the event to the dead-letter callback.
	handle := func(ctx context.Context, m Message) error {
		err := p.apply(ctx, m)
		if err != nil && m.ReceiveCount >= maxReceives {
			return revguard.Permanent(err)
		}
		return err
	}
	// snippet:end

	var (
		delivered, redelivered, notAcked atomic.Int64
		wg                               sync.WaitGroup
	)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	for range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				for _, m := range queue.Receive(runCtx, 5, 20*time.Millisecond) {
					delivered.Add(1)
					if m.ReceiveCount > 1 {
						redelivered.Add(1)
					}
					// snippet:queue-ack
					if _, err := guard.Handle(runCtx, m, handle); err != nil {
						notAcked.Add(1) // it comes back after the visibility timeout
						continue
					}
					queue.Delete(m.ReceiptHandle)
					// snippet:end
				}
			}
		}()
	}

	newest, sent := produce(ctx, queue, rand.New(rand.NewPCG(seed, 3)), products, revisions)
	drained := queue.WaitEmpty(ctx)
	stop()
	wg.Wait()

	st := guard.Stats()
	fmt.Printf("sent %d messages (%d price changes); %d deliveries, %d of them redeliveries\n",
		sent, products*revisions+1, delivered.Load(), redelivered.Load())
	fmt.Printf("guard: %d applied, %d duplicate, %d stale, %d dead-lettered; %d not acknowledged (%d failed, %d in flight elsewhere)\n",
		st.Applied, st.Duplicate, st.Stale, st.DeadLettered, notAcked.Load(), st.Failed, st.InFlight)
	fmt.Printf("queue: %d deletes came with an outdated receipt handle (received again meanwhile); as in SQS the message stays and its next delivery is dropped\n",
		queue.StaleDeletes())

	var errs []error
	if drained != nil {
		errs = append(errs, drained)
	}
	// The checks run even if the deadline passed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	errs = append(errs, p.check(ctx, guard, newest)...)
	errs = append(errs, checkDeadLetters(ctx, guard, dlq)...)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Printf("ok: %d products at their newest revision, none applied twice, %s in the dead-letter queue once, queue drained, in %s\n",
		len(newest), broken.Product, time.Since(start).Round(time.Millisecond))
	return nil
}

// produce sends revisions 1..revisions of each product, and the broken event
// twice, as a producer with retries does: a send whose response was lost is
// sent again, and a send that failed is retried after the product's next
// revision. Products' events interleave at random. It returns each product's
// newest event and the number of messages sent.
func produce(ctx context.Context, q *Queue, rng *rand.Rand, products, revisions int) (map[string]PriceUpdated, int) {
	newest := map[string]PriceUpdated{}
	streams := [][]PriceUpdated{{broken, broken}}
	for i := range products {
		var s []PriceUpdated
		for r := 1; r <= revisions; r++ {
			e := PriceUpdated{Product: fmt.Sprintf("p%02d", i), Revision: uint64(r), Cents: 1000 + 7*i + 13*r}
			newest[e.Product] = e
			if n := len(s); n > 0 && rng.Float64() < 0.2 {
				s = append(s[:n-1], e, s[n-1]) // the previous send is retried after this one
			} else {
				s = append(s, e)
			}
			if rng.Float64() < 0.25 {
				s = append(s, e) // the response was lost: sent again
			}
		}
		streams = append(streams, s)
	}
	sent := 0
	for ctx.Err() == nil {
		var live []int
		for i, s := range streams {
			if len(s) > 0 {
				live = append(live, i)
			}
		}
		if len(live) == 0 {
			break
		}
		i := live[rng.IntN(len(live))]
		q.Send(streams[i][0])
		streams[i] = streams[i][1:]
		sent++
		time.Sleep(500 * time.Microsecond)
	}
	return newest, sent
}

// pricing is the state the handlers build: each product's current price.
type pricing struct {
	mu       sync.Mutex
	rng      *rand.Rand
	prices   map[string]PriceUpdated
	applied  map[string]int // "product@revision" → successful handler runs
	failures map[string]int // message ID → transient failures so far
	slowDone bool
}

func newPricing(seed uint64) *pricing {
	return &pricing{rng: rand.New(rand.NewPCG(seed, 4)), prices: map[string]PriceUpdated{}, applied: map[string]int{}, failures: map[string]int{}}
}

var (
	errUnavailable = errors.New("price service unavailable")
	errRejected    = errors.New("price service answered 500 for this product")
)

// apply stores the price. It fails at random (at most twice per message, as
// a flaky dependency does), takes longer than the visibility timeout once,
// and always fails for the broken event.
func (p *pricing) apply(ctx context.Context, m Message) error {
	e := m.Event
	p.mu.Lock()
	fail := p.failures[m.ID] < 2 && p.rng.Float64() < 0.2
	if fail {
		p.failures[m.ID]++
	}
	slow := !p.slowDone && e.Revision == 3
	p.slowDone = p.slowDone || slow
	p.mu.Unlock()
	if e == broken {
		return errRejected
	}
	if fail {
		return fmt.Errorf("%s revision %d: %w", e.Product, e.Revision, errUnavailable)
	}
	if slow {
		// The message becomes visible again and another consumer receives
		// it: the guard answers ErrInFlight there, since this claim is live.
		select {
		case <-time.After(visibility * 3 / 2):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prices[e.Product] = e
	p.applied[e.Product+"@"+strconv.FormatUint(e.Revision, 10)]++
	return nil
}

func (p *pricing) check(ctx context.Context, g *revguard.Guard[Message], newest map[string]PriceUpdated) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for id, n := range p.applied {
		if n > 1 {
			errs = append(errs, fmt.Errorf("%s applied %d times", id, n))
		}
	}
	for product, want := range newest {
		rev, _, err := g.Applied(ctx, revguard.Key("product", product))
		if got := p.prices[product]; err != nil || got != want || uint64(rev) != want.Revision {
			errs = append(errs, fmt.Errorf("%s: price %d at revision %d (guard %d, %v), want %d at revision %d",
				product, got.Cents, got.Revision, rev, err, want.Cents, want.Revision))
		}
	}
	if got, ok := p.prices[broken.Product]; ok {
		errs = append(errs, fmt.Errorf("%s: the broken event was applied: %+v", broken.Product, got))
	}
	return errs
}

// checkDeadLetters checks that the broken event is in the dead-letter queue
// exactly once, alone, and that its revision is recorded.
func checkDeadLetters(ctx context.Context, g *revguard.Guard[Message], dlq *Queue) []error {
	var errs []error
	got := dlq.Drain()
	if len(got) != 1 || got[0] != broken {
		errs = append(errs, fmt.Errorf("dead-letter queue holds %v, want only %v", got, broken))
	}
	rev, ok, err := g.Applied(ctx, revguard.Key("product", broken.Product))
	if err != nil || !ok || uint64(rev) != broken.Revision {
		errs = append(errs, fmt.Errorf("%s: recorded revision %d (%t, %v), want %d", broken.Product, rev, ok, err, broken.Revision))
	}
	return errs
}

// Message is one delivery of a queued event.
type Message struct {
	ID            string // the same for every delivery of one Send
	ReceiptHandle string // new for every delivery; Delete takes the latest
	ReceiveCount  int    // deliveries so far, this one included
	Event         PriceUpdated
}

// Queue is an in-memory work queue with the semantics of an SQS standard
// queue that matter here: visibility timeouts, receive counts, redelivery
// of what is not deleted, and no ordering.
type Queue struct {
	visibility time.Duration

	mu           sync.Mutex
	rng          *rand.Rand
	msgs         map[string]*queued // by message ID
	seq          int
	staleDeletes int
}

type queued struct {
	msg       Message
	invisible time.Time // hidden until then
}

// NewQueue returns an empty queue whose Receive hides messages for visibility.
func NewQueue(visibility time.Duration, seed uint64) *Queue {
	return &Queue{visibility: visibility, rng: rand.New(rand.NewPCG(seed, 5)), msgs: map[string]*queued{}}
}

// Send enqueues e and returns the new message's ID.
func (q *Queue) Send(e PriceUpdated) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	id := "m" + strconv.Itoa(q.seq)
	q.msgs[id] = &queued{msg: Message{ID: id, Event: e}}
	return id
}

// Receive returns up to max visible messages, in no particular order, and
// hides them for the visibility timeout. It waits up to wait for one to be
// visible (long polling), and returns nil if none was or ctx ended.
func (q *Queue) Receive(ctx context.Context, max int, wait time.Duration) []Message {
	deadline := time.Now().Add(wait)
	for {
		if ms := q.take(max); len(ms) > 0 {
			return ms
		}
		if time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (q *Queue) take(max int) []Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	var visible []*queued
	for _, m := range q.msgs {
		if !now.Before(m.invisible) {
			visible = append(visible, m)
		}
	}
	q.rng.Shuffle(len(visible), func(i, j int) { visible[i], visible[j] = visible[j], visible[i] })
	var out []Message
	for _, m := range visible[:min(max, len(visible))] {
		q.seq++
		m.msg.ReceiveCount++
		m.msg.ReceiptHandle = m.msg.ID + "/" + strconv.Itoa(q.seq)
		m.invisible = now.Add(q.visibility)
		out = append(out, m.msg)
	}
	return out
}

// Delete removes the message that receiptHandle was given for. Like SQS, it
// succeeds with an outdated handle (the message was received again since) but
// the message may stay: here it always does, and is delivered again.
func (q *Queue) Delete(receiptHandle string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for id, m := range q.msgs {
		if m.msg.ReceiptHandle == receiptHandle {
			delete(q.msgs, id)
			return
		}
	}
	q.staleDeletes++
}

// StaleDeletes returns how many deletes came with an outdated receipt handle.
func (q *Queue) StaleDeletes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.staleDeletes
}

// WaitEmpty waits until the queue holds no message, visible or not.
func (q *Queue) WaitEmpty(ctx context.Context) error {
	for {
		q.mu.Lock()
		n := len(q.msgs)
		q.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d messages still queued: %w", n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Drain removes and returns every message's event.
func (q *Queue) Drain() []PriceUpdated {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []PriceUpdated
	for id, m := range q.msgs {
		out = append(out, m.msg.Event)
		delete(q.msgs, id)
	}
	return out
}
