package revcloudevents_test

import (
	"context"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revcloudevents"
)

func ExampleReceiver() {
	// snippet:cloudevents-receiver
	g := revguard.New(memstore.New(), revcloudevents.Extractor())
	receive := revcloudevents.Receiver(g, func(ctx context.Context, e event.Event) error {
		fmt.Println("apply", e.Subject(), "sequence", e.Extensions()["sequence"])
		return nil
	})
	// A receiving client runs it: c.StartReceiver(ctx, receive)
	// snippet:end

	for _, seq := range []string{"2", "2", "1", "x"} {
		e := cloudevents.NewEvent()
		e.SetID("price-" + seq)
		e.SetType("com.example.price.changed")
		e.SetSource("https://shop.example/prices")
		e.SetSubject("product-42")
		e.SetExtension("sequence", seq)

		// What a sender's client.Send returns for the event over HTTP
		// reads the same way.
		result := receive(context.Background(), e)
		if out, ok := revcloudevents.Outcome(result); ok {
			fmt.Println("ack:", out)
			continue
		}
		fmt.Println("nack:", result)
	}
	// Output:
	// apply product-42 sequence 2
	// ack: applied
	// ack: duplicate
	// ack: stale
	// nack: 400: revguard: invalid revision: extension "sequence": "x" is not a decimal counter (zero-padded digits are); order such events by time with CloudEventsByTime, or map the sequence to a counter in an Extractor of your own
}
