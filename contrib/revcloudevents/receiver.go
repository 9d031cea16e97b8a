package revcloudevents

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	"github.com/revguard/revguard"
)

// Receiver returns a receiver for client.StartReceiver that runs each event
// through g and h and answers with the protocol result [revguard.Disposition]
// calls for: an ACK for an event applied, dropped as a duplicate or stale,
// or taken by [revguard.WithDeadLetter], a NACK otherwise. Over HTTP the
// result carries a status that says which (see the package comment), and
// [Outcome] reads it back on the sending side. It panics if g or h is nil.
func Receiver(g *revguard.Guard[event.Event], h revguard.Handler[event.Event]) func(context.Context, event.Event) protocol.Result {
	if g == nil {
		panic("revcloudevents.Receiver: nil Guard")
	}
	if h == nil {
		panic("revcloudevents.Receiver: nil handler")
	}
	return func(ctx context.Context, e event.Event) protocol.Result {
		return result(g.Handle(ctx, e, h))
	}
}
