package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/redisstore"
	"github.com/revguard/revguard/contrib/revjetstream"
)

// worker is one consumer process: its own NATS connection, Redis client and
// guard, on the stream's one durable consumer, which JetStream shares
// between them.
type worker struct {
	name   string
	p      *projection
	killAt int // if not 0, the handler call in which the process is killed
	slowAt int // if not 0, the handler call that takes twice AckWait

	nc         *nats.Conn
	rdb        *redis.Client
	guard      *revguard.Guard[jetstream.Msg]
	cc         jetstream.ConsumeContext
	calls      atomic.Int64 // handler calls
	deliveries atomic.Int64
	killed     atomic.Bool
}

func (w *worker) start(ctx context.Context, natsURL, redisAddr string) error {
	var err error
	if w.nc, err = nats.Connect(natsURL, nats.Name(w.name)); err != nil {
		return fmt.Errorf("%s: %w", w.name, err)
	}
	js, err := jetstream.New(w.nc)
	if err != nil {
		return err
	}
	cons, err := js.Consumer(ctx, streamName, durable)
	if err != nil {
		return fmt.Errorf("%s: %w", w.name, err)
	}
	w.rdb = redis.NewClient(&redis.Options{Addr: redisAddr})
	// snippet:nats-handler
	w.guard = revguard.New(redisstore.New(w.rdb),
		revjetstream.Headers(revjetstream.KeyHeader, revjetstream.RevisionHeader),
		revguard.WithNamespace(durable), revguard.WithLease(lease))
	h := revjetstream.Handler(w.guard, w.apply,
		revjetstream.WithAckWait(ackWait),
		revjetstream.WithRetryDelay(100*time.Millisecond),
		revjetstream.WithContext(ctx),
		revjetstream.WithErrorHandler(w.p.settleError))
	w.cc, err = cons.Consume(func(msg jetstream.Msg) {
		w.deliveries.Add(1)
		w.p.delivered(msg)
		h(msg)
	}, jetstream.PullMaxMessages(20))
	// snippet:end
	if err != nil {
		return fmt.Errorf("%s: consuming: %w", w.name, err)
	}
	return nil
}

func (w *worker) stop() {
	if !w.killed.Load() {
		w.cc.Stop()
	}
	w.nc.Close()
	_ = w.rdb.Close()
}

// apply is the handler revjetstream runs for the messages the guard lets
// through.
func (w *worker) apply(ctx context.Context, msg jetstream.Msg) error {
	switch int(w.calls.Add(1)) {
	case w.killAt:
		return w.die(ctx, msg)
	case w.slowAt:
		return w.p.applySlowly(ctx, msg, 2*ackWait)
	}
	return w.p.apply(msg)
}

// die is the process being killed in the middle of a handler: its
// connections close, so the message is neither acknowledged nor released,
// and its claim stays in the store until the lease runs out (the guard then
// cancels ctx). Nothing it does afterwards reaches the server.
func (w *worker) die(ctx context.Context, msg jetstream.Msg) error {
	w.killed.Store(true)
	e, _ := decode(msg)
	fmt.Printf("%s killed in the middle of its handler for %s revision %d\n", w.name, e.Product, e.Revision)
	w.nc.Close()
	_ = w.rdb.Close()
	<-ctx.Done()
	return errors.New("killed")
}
