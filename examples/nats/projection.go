package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revguard/revguard"
)

// projection is the consumers' shared state, as a database would be: each
// product's current price, built from the events the guards let through.
type projection struct {
	failRate float64

	mu      sync.Mutex
	rng     *rand.Rand
	prices  map[string]PriceUpdated
	applied map[string]int // "product@revision" → handler completions
	slowSeq uint64         // the stream sequence of the message a slow handler holds, 0 when none
	errs    []error        // what went wrong that revguard should have prevented

	deliveries, redeliveries, failures, settleFailed atomic.Int64
}

func newProjection(failRate float64, rng *rand.Rand) *projection {
	return &projection{failRate: failRate, rng: rng, prices: map[string]PriceUpdated{}, applied: map[string]int{}}
}

var errTransient = errors.New("price store timed out")

func decode(msg jetstream.Msg) (PriceUpdated, error) {
	var e PriceUpdated
	err := json.Unmarshal(msg.Data(), &e)
	return e, err
}

// apply records the price; it fails now and then, as a call to a database
// does.
func (p *projection) apply(msg jetstream.Msg) error {
	e, err := decode(msg)
	if err != nil {
		return revguard.Permanent(err)
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

// applySlowly is apply after d, longer than AckWait: revjetstream's
// InProgress signals keep JetStream from delivering the message elsewhere
// meanwhile, which delivered checks.
func (p *projection) applySlowly(ctx context.Context, msg jetstream.Msg, d time.Duration) error {
	md, err := msg.Metadata()
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.slowSeq = md.Sequence.Stream
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.slowSeq = 0
		p.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
	}
	return p.apply(msg)
}

// delivered counts a delivery, before the guard sees it.
func (p *projection) delivered(msg jetstream.Msg) {
	p.deliveries.Add(1)
	md, err := msg.Metadata()
	if err != nil {
		return
	}
	if md.NumDelivered > 1 {
		p.redeliveries.Add(1)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if md.Sequence.Stream == p.slowSeq {
		p.errs = append(p.errs, fmt.Errorf("stream sequence %d delivered again while a slow handler held it", md.Sequence.Stream))
	}
}

// settleError receives revjetstream's errors: the guard's, for messages it
// nakked (counted by the guards' Stats), and those of acknowledgements
// that could not be sent.
func (p *projection) settleError(_ jetstream.Msg, err error) {
	if errors.Is(err, nats.ErrConnectionClosed) {
		p.settleFailed.Add(1)
	}
}

// check compares every product with its newest revision.
func (p *projection) check(ctx context.Context, g *revguard.Guard[jetstream.Msg], newest map[string]PriceUpdated) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := append([]error(nil), p.errs...)
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

// waitSettled waits until the consumer has delivered every message of the
// stream and has no acknowledgement pending.
func waitSettled(ctx context.Context, cons jetstream.Consumer, stored uint64) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := cons.Info(ctx)
		if err == nil && info.Delivered.Stream == stored && info.NumPending == 0 && info.NumAckPending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("delivered up to %d of %d, %d pending, %d awaiting acknowledgement",
					info.Delivered.Stream, stored, info.NumPending, info.NumAckPending)
			}
			return fmt.Errorf("the consumer did not catch up in time: %w", err)
		case <-tick.C:
		}
	}
}
