package revguard_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

// Events that carry an ID but no revision (a webhook's delivery ID, an
// Idempotency-Key header) are deduplicated by making the ID the entity key
// and the revision a constant: the first delivery that succeeds applies, and
// every repeat is a Duplicate. Key builds the ID from several fields without
// collisions, so IDs from two senders or two accounts never meet. A failed
// handler records nothing (Claim mode), so the sender's retry runs it again.
//
// Nothing orders such events, so a late delivery of an older change still
// applies; and each ID stays in the store. With Redis, bound that with a TTL
// longer than the sender retries:
//
//	store := redisstore.New(rdb, redisstore.WithTTL(72*time.Hour))
func ExampleKey_idempotencyKey() {
	type Delivery struct {
		Sender string // "github", or a Stripe account ID
		ID     string // X-GitHub-Delivery, an Idempotency-Key, an event ID
		Body   string
	}
	// snippet:idempotency-key
	g := revguard.New(memstore.New(), func(d Delivery) (string, revguard.Revision, error) {
		return revguard.Key("delivery", d.Sender, d.ID), 1, nil
	}, revguard.WithNamespace("webhooks"))
	// snippet:end

	attempts := 0
	charge := func(ctx context.Context, d Delivery) error {
		attempts++
		if attempts == 1 {
			return errors.New("payment provider timed out")
		}
		fmt.Println("charged:", d.Body)
		return nil
	}
	ctx := context.Background()
	for _, d := range []Delivery{
		{"acct_1", "idem-7f3a", "order 42, 10 EUR"}, // fails: not acknowledged
		{"acct_1", "idem-7f3a", "order 42, 10 EUR"}, // the retry applies
		{"acct_1", "idem-7f3a", "order 42, 10 EUR"}, // a repeat is dropped
		{"acct_2", "idem-7f3a", "order 9, 3 EUR"},   // same ID, other sender
	} {
		out, err := g.Handle(ctx, d, charge)
		if err != nil {
			fmt.Printf("%s %s: not acknowledged: %v\n", d.Sender, d.ID, err)
			continue
		}
		fmt.Printf("%s %s: %s\n", d.Sender, d.ID, out)
	}
	fmt.Println(revguard.Key("delivery", "acct_1", "idem-7f3a"))
	// Output:
	// acct_1 idem-7f3a: not acknowledged: payment provider timed out
	// charged: order 42, 10 EUR
	// acct_1 idem-7f3a: applied
	// acct_1 idem-7f3a: duplicate
	// charged: order 9, 3 EUR
	// acct_2 idem-7f3a: applied
	// delivery:acct_1:idem-7f3a
}
