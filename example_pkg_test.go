package revguard_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

// Example runs one entity's deliveries as an at-least-once transport makes
// them: the first attempt fails and comes back, a delivery repeats, and an
// older one arrives late. The handler runs once per revision, in order, and
// err == nil says when to acknowledge.
func Example() {
	type OrderShipped struct {
		Order string
		Seq   uint64 // the order's event counter
	}
	g := revguard.New(memstore.New(), func(e OrderShipped) (string, revguard.Revision, error) {
		return revguard.Key("order", e.Order), revguard.Revision(e.Seq), nil
	})

	mailDown := true
	notify := func(ctx context.Context, e OrderShipped) error {
		if mailDown {
			mailDown = false
			return errors.New("mail server down")
		}
		fmt.Printf("  mail for order %s, event %d\n", e.Order, e.Seq)
		return nil
	}

	ctx := context.Background()
	for _, e := range []OrderShipped{{"7", 1}, {"7", 1}, {"7", 1}, {"7", 2}, {"7", 1}} {
		out, err := g.Handle(ctx, e, notify)
		if err != nil {
			fmt.Printf("event %d: do not ack (%v)\n", e.Seq, err)
			continue
		}
		fmt.Printf("event %d: ack, %s\n", e.Seq, out)
	}
	// Output:
	// event 1: do not ack (mail server down)
	//   mail for order 7, event 1
	// event 1: ack, applied
	// event 1: ack, duplicate
	//   mail for order 7, event 2
	// event 2: ack, applied
	// event 1: ack, stale
}
