package revguard_test

import (
	"context"
	"fmt"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

// snippet:event-type

// PriceChanged is an event that carries the whole new state of a product,
// so the newest revision wins.
type PriceChanged struct {
	Product  string
	Revision uint64
	Cents    int
}

// snippet:end

func ExampleNew() {
	g := revguard.New(memstore.New(), func(e PriceChanged) (string, revguard.Revision, error) {
		return revguard.Key("product", e.Product), revguard.Revision(e.Revision), nil
	}, revguard.WithNamespace("price-alerts"))

	out, err := g.Handle(context.Background(), PriceChanged{"42", 1, 999}, func(ctx context.Context, e PriceChanged) error {
		fmt.Println("price of", e.Product, "is now", e.Cents)
		return nil
	})
	fmt.Println(out, err)
	// Output:
	// price of 42 is now 999
	// applied <nil>
}

func ExampleGuard_Handle() {
	g := revguard.New(memstore.New(), func(e PriceChanged) (string, revguard.Revision, error) {
		return e.Product, revguard.Revision(e.Revision), nil
	})
	apply := func(ctx context.Context, e PriceChanged) error {
		fmt.Printf("apply %s@%d\n", e.Product, e.Revision)
		return nil
	}
	// Delivered twice and out of order, as at-least-once transports do.
	for _, e := range []PriceChanged{{"42", 2, 950}, {"42", 2, 950}, {"42", 1, 999}, {"42", 3, 900}} {
		out, err := g.Handle(context.Background(), e, apply)
		if err != nil {
			fmt.Println("do not ack:", err)
			continue
		}
		fmt.Printf("ack %s@%d: %s\n", e.Product, e.Revision, out)
	}
	// Output:
	// apply 42@2
	// ack 42@2: applied
	// ack 42@2: duplicate
	// ack 42@1: stale
	// apply 42@3
	// ack 42@3: applied
}

func ExampleGuard_Wrap() {
	g := revguard.New(memstore.New(), func(e PriceChanged) (string, revguard.Revision, error) {
		return e.Product, revguard.Revision(e.Revision), nil
	})
	// A wrapped handler fits any consumer loop: nil means acknowledge.
	handle := g.Wrap(func(ctx context.Context, e PriceChanged) error {
		fmt.Println("store price", e.Cents)
		return nil
	})
	for _, e := range []PriceChanged{{"7", 5, 100}, {"7", 5, 100}, {"7", 4, 120}} {
		fmt.Println("ack:", handle(context.Background(), e) == nil)
	}
	// Output:
	// store price 100
	// ack: true
	// ack: true
	// ack: true
}

func ExampleGuard_HandleBatch() {
	g := revguard.New(memstore.New(), func(e PriceChanged) (string, revguard.Revision, error) {
		return e.Product, revguard.Revision(e.Revision), nil
	})
	batch := []PriceChanged{{"a", 1, 10}, {"b", 1, 20}, {"a", 3, 30}, {"a", 2, 25}, {"b", 1, 20}}
	results := g.HandleBatch(context.Background(), batch, func(ctx context.Context, e PriceChanged) error {
		fmt.Printf("apply %s@%d\n", e.Product, e.Revision)
		return nil
	})
	for i, r := range results {
		fmt.Printf("%s@%d: %s %v\n", batch[i].Product, batch[i].Revision, r.Outcome, r.Err)
	}
	// Output:
	// apply a@3
	// apply b@1
	// a@1: stale <nil>
	// b@1: applied <nil>
	// a@3: applied <nil>
	// a@2: stale <nil>
	// b@1: duplicate <nil>
}
