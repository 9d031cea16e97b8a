package revguard_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

// received is one delivery from a transport, as the README's consumer loop
// sees it: an event and a way to acknowledge it.
type received struct{ Event PriceChanged }

func (m received) Ack() { fmt.Printf("ack revision %d\n", m.Event.Revision) }

// alertService stands for whatever the handler calls.
type alertService struct{}

func (alertService) PriceChanged(_ context.Context, product string, cents int) error {
	fmt.Printf("alert: product %s now costs %d\n", product, cents)
	return nil
}

// A consumer loop over an at-least-once transport: it acknowledges a message
// when Handle returns a nil error, and leaves it otherwise, so that the
// transport delivers it again.
func Example_consumerLoop() {
	messages := make(chan received, 4)
	for _, e := range []PriceChanged{{"42", 2, 950}, {"42", 2, 950}, {"42", 1, 999}, {"42", 3, 900}} {
		messages <- received{e}
	}
	close(messages)
	ctx := context.Background()
	var alerts alertService

	// snippet:usage
	guard := revguard.New(memstore.New(), // or redisstore.New(client), or a sqlstore.Store
		func(e PriceChanged) (string, revguard.Revision, error) {
			return revguard.Key("product", e.Product), revguard.Revision(e.Revision), nil
		},
		revguard.WithNamespace("price-alerts"))

	for msg := range messages {
		_, err := guard.Handle(ctx, msg.Event, func(ctx context.Context, e PriceChanged) error {
			return alerts.PriceChanged(ctx, e.Product, e.Cents)
		})
		if err == nil {
			msg.Ack() // applied, or a duplicate or stale event that is right to drop
		} // otherwise leave it: the transport delivers it again
	}
	// snippet:end
	// Output:
	// alert: product 42 now costs 950
	// ack revision 2
	// ack revision 2
	// ack revision 1
	// alert: product 42 now costs 900
	// ack revision 3
}

// jetStreamLike has the four answers a transport such as NATS JetStream
// gives a message.
type jetStreamLike struct{ name string }

func (m jetStreamLike) Ack()                         { fmt.Println(m.name, "→ ack") }
func (m jetStreamLike) NakWithDelay(d time.Duration) { fmt.Println(m.name, "→ nak, again in", d) }
func (m jetStreamLike) Term()                        { fmt.Println(m.name, "→ terminate (dead-letter)") }
func (m jetStreamLike) Nak()                         { fmt.Println(m.name, "→ nak") }

// Disposition is the one mapping from Handle's error onto a transport's
// acknowledgement; the adapters under contrib/ use it.
func ExampleDisposition_transport() {
	g := revguard.New(memstore.New(), func(e PriceChanged) (string, revguard.Revision, error) {
		return e.Product, revguard.Revision(e.Revision), nil // an empty key is bad input
	}, revguard.WithOrdering(revguard.Sequential))
	apply := func(ctx context.Context, e PriceChanged) error {
		if e.Cents < 0 {
			return errors.New("price service down")
		}
		return nil
	}
	for _, e := range []PriceChanged{{"42", 1, 999}, {"42", 3, 900}, {"", 2, 950}, {"42", 2, -1}} {
		msg := jetStreamLike{fmt.Sprintf("%q@%d", e.Product, e.Revision)}
		_, err := g.Handle(context.Background(), e, apply)
		// snippet:disposition
		switch act, delay := revguard.Disposition(err); act {
		case revguard.Ack:
			msg.Ack()
		case revguard.RetryLater:
			msg.NakWithDelay(delay)
		case revguard.DeadLetter:
			msg.Term()
		case revguard.Redeliver:
			msg.Nak()
		}
		// snippet:end
	}
	// Output:
	// "42"@1 → ack
	// "42"@3 → nak, again in 1s
	// ""@2 → terminate (dead-letter)
	// "42"@2 → nak
}

// Reading is a sensor's measurement, stamped by the sensor.
type Reading struct {
	Sensor string
	At     time.Time
	Value  float64
}

// Timestamps as revisions: the newest reading wins, and a reading stamped
// further ahead of the consumer's clock than WithMaxFutureSkew allows is
// refused rather than allowed to block the sensor's later readings.
func ExampleTimestamp_maxFutureSkew() {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now } // the example's fixed clock; the default is time.Now

	// snippet:timestamps
	g := revguard.New(memstore.New(), func(r Reading) (string, revguard.Revision, error) {
		rev, err := revguard.Timestamp(r.At) // Unix nanoseconds
		return revguard.Key("sensor", r.Sensor), rev, err
	}, revguard.WithMaxFutureSkew(time.Minute), revguard.WithClock(clock))
	// snippet:end

	record := func(_ context.Context, r Reading) error { return nil }
	for _, r := range []Reading{
		{"s1", now.Add(-2 * time.Second), 20.5},
		{"s1", now.Add(-2 * time.Second), 20.5}, // the same stamp again
		{"s1", now.Add(-3 * time.Second), 20.1}, // older
		{"s1", now.Add(time.Hour), 99},          // a clock an hour fast
		{"s1", now.Add(-1 * time.Second), 20.7},
	} {
		out, err := g.Handle(context.Background(), r, record)
		if err != nil {
			fmt.Println(r.At.Format(time.TimeOnly), "refused:", errors.Is(err, revguard.ErrInvalidRevision))
			continue
		}
		fmt.Println(r.At.Format(time.TimeOnly), out)
	}
	// Output:
	// 08:59:58 applied
	// 08:59:58 duplicate
	// 08:59:57 stale
	// 10:00:00 refused: true
	// 08:59:59 applied
}
