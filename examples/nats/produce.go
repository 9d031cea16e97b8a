package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/contrib/revjetstream"
)

// sent is what the producer published.
type sent struct {
	stored         uint64 // messages the stream holds: its last sequence
	retried        int    // sends retried at once, with the same Nats-Msg-Id
	dropped        int    // of them, dropped by the server within the duplicate window
	late           int    // sends that landed after the product's next revision
	replayed       int    // events the relay sent again after the window
	replayedStored int    // of them, stored again
	newest         map[string]PriceUpdated
}

// produce publishes revisions 1..revisions of each product, as a producer
// whose sends are sometimes retried (an acknowledgement was lost), whose
// failed sends are sometimes retried after the product's next revision went
// out, and whose outbox relay then restarts and sends its last events again,
// after the duplicate window.
func produce(ctx context.Context, js jetstream.JetStream, rng *rand.Rand, products, revisions int) (sent, error) {
	s := sent{newest: map[string]PriceUpdated{}}
	var queues [][]PriceUpdated
	var all []PriceUpdated
	for i := range products {
		var q []PriceUpdated
		for r := 1; r <= revisions; r++ {
			e := PriceUpdated{Product: fmt.Sprintf("p%02d", i), Revision: uint64(r), Cents: 1000 + 7*i + 13*r}
			s.newest[e.Product] = e
			all = append(all, e)
			if n := len(q); n > 0 && rng.Float64() < 0.2 { // the previous send is retried after this one
				q = append(q[:n-1], e, q[n-1])
				s.late++
			} else {
				q = append(q, e)
			}
		}
		queues = append(queues, q)
	}

	// Products' events interleave in the stream, each product's in the order
	// sent.
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
		if _, err := publish(ctx, js, e, &s); err != nil {
			return s, err
		}
		if rng.Float64() < 0.25 { // the acknowledgement was lost: sent again at once
			s.retried++
			dup, err := publish(ctx, js, e, &s)
			if err != nil {
				return s, err
			}
			if dup {
				s.dropped++
			}
		}
	}

	// The relay restarts: it cannot tell which events went out, so it sends
	// some again, by now outside the duplicate window.
	select {
	case <-ctx.Done():
		return s, ctx.Err()
	case <-time.After(dupWindow + 150*time.Millisecond):
	}
	for _, e := range all {
		if rng.Float64() >= 0.2 {
			continue
		}
		s.replayed++
		dup, err := publish(ctx, js, e, &s)
		if err != nil {
			return s, err
		}
		if !dup {
			s.replayedStored++
		}
	}
	return s, nil
}

// publish sends e on its product's subject, with the headers revjetstream
// reads and a Nats-Msg-Id naming the change, and reports whether the server
// dropped it as a duplicate.
func publish(ctx context.Context, js jetstream.JetStream, e PriceUpdated, s *sent) (duplicate bool, err error) {
	msg := nats.NewMsg("prices." + e.Product)
	msg.Header.Set(revjetstream.KeyHeader, revguard.Key("product", e.Product))
	msg.Header.Set(revjetstream.RevisionHeader, strconv.FormatUint(e.Revision, 10))
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s@%d", e.Product, e.Revision))
	if msg.Data, err = json.Marshal(e); err != nil {
		return false, err
	}
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return false, fmt.Errorf("publishing %s revision %d: %w", e.Product, e.Revision, err)
	}
	s.stored = max(s.stored, ack.Sequence)
	return ack.Duplicate, nil
}
