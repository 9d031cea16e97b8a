// NATS consumes a JetStream stream with three consumers and applies each
// product's price events once and in revision order, through revguard
// guards and contrib/revjetstream, which settles each message with
// JetStream (Ack, NakWithDelay, Term or Nak) as the guard answers. The
// server is nats-server embedded in the program and the guards' store is an
// in-process miniredis, so nothing needs to be installed:
//
//	cd examples/nats && go run .
//
// Each consumer stands for a process: its own NATS connection, its own Redis
// client and guard, sharing nothing but the server, the store and the
// projection (which stands for the database the handler writes). The
// handlers fail now and then (the message is nakked and delivered again), one
// is slower than AckWait (InProgress keeps its message from going to another
// consumer meanwhile), and consumer-1 is killed in the middle of a handler:
// its connection and its Redis client close, so its message is neither
// acknowledged nor released. JetStream delivers it to another consumer after
// AckWait, and the guard lets it through once the dead consumer's lease has
// run out.
//
// # Why Nats-Msg-Id is not the revision
//
// The producer publishes each event with Nats-Msg-Id set to its product and
// revision, and JetStream drops a send retried within the stream's duplicate
// window. That window is a time, not an identity: an outbox relay that
// restarts and sends its last events again after the window gets them stored
// a second time, and a retried send that lands after the product's next
// revision is stored in the wrong order. The revision, written by whoever
// owns the product, travels in the Event-Revision header, so every copy of
// one change carries the same revision and an older change a lower one.
//
// The program exits with status 1 if any product's final state is not its
// newest revision, a revision was applied twice, the slow handler's message
// was delivered elsewhere while it ran, or the consumer does not catch up with
// the stream in time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revguard/revguard"
)

// PriceUpdated carries a product's whole new price, so the newest wins.
// Revision is the product's version in the producer's database.
type PriceUpdated struct {
	Product  string `json:"product"`
	Revision uint64 `json:"revision"`
	Cents    int    `json:"cents"`
}

const (
	streamName = "PRICES"
	durable    = "price-projection"
	ackWait    = 500 * time.Millisecond // how long JetStream waits for an ack before delivering again
	lease      = 300 * time.Millisecond // how long a dead consumer's claim blocks its product
	dupWindow  = 200 * time.Millisecond // the stream's Nats-Msg-Id duplicate window (100ms at least)
)

func main() {
	seed := flag.Uint64("seed", 1, "seed of the producer's retries and the handlers' failures")
	products := flag.Int("products", 12, "number of products")
	revisions := flag.Int("revisions", 8, "revisions per product")
	failRate := flag.Float64("fail", 0.15, "probability that a handler call fails (transiently)")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx, *seed, *products, *revisions, *failRate); err != nil {
		fmt.Fprintln(os.Stderr, "nats example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, seed uint64, products, revisions int, failRate float64) error {
	start := time.Now()
	dir, err := os.MkdirTemp("", "revguard-nats")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	srv, err := startServer(dir)
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	mr, err := miniredis.Run()
	if err != nil {
		return fmt.Errorf("starting miniredis: %w", err)
	}
	defer mr.Close()

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: streamName, Subjects: []string{"prices.>"}, Storage: jetstream.MemoryStorage, Duplicates: dupWindow,
	}); err != nil {
		return fmt.Errorf("creating the stream: %w", err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, streamName, jetstream.ConsumerConfig{
		Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait,
	})
	if err != nil {
		return fmt.Errorf("creating the consumer: %w", err)
	}

	sent, err := produce(ctx, js, rand.New(rand.NewPCG(seed, 1)), products, revisions)
	if err != nil {
		return err
	}

	p := newProjection(failRate, rand.New(rand.NewPCG(seed, 2)))
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	workers := []*worker{
		{name: "consumer-1", p: p, killAt: 6},
		{name: "consumer-2", p: p, slowAt: 4},
		{name: "consumer-3", p: p},
	}
	for _, w := range workers {
		if err := w.start(runCtx, srv.ClientURL(), mr.Addr()); err != nil {
			return err
		}
		defer w.stop()
	}
	caughtUp := waitSettled(ctx, cons, sent.stored)
	stop()

	var st revguard.Stats
	for _, w := range workers {
		st = add(st, w.guard.Stats())
		fmt.Printf("%s handled %d deliveries\n", w.name, w.deliveries.Load())
	}
	fmt.Printf("published %d price changes: %d sends retried at once (%d dropped by Nats-Msg-Id in the window), %d landed after a newer revision, %d sent again by the relay after the window (%d stored again)\n",
		products*revisions, sent.retried, sent.dropped, sent.late, sent.replayed, sent.replayedStored)
	fmt.Printf("the stream holds %d messages; %d deliveries: %d applied, %d duplicate, %d stale; %d nakked with a delay (in flight), %d nakked (%d handler failures, or a lost lease); %d redeliveries\n",
		sent.stored, p.deliveries.Load(), st.Applied, st.Duplicate, st.Stale, st.InFlight, st.Failed, p.failures.Load(), p.redeliveries.Load())
	fmt.Printf("%d acknowledgements could not be sent (the killed consumer's)\n", p.settleFailed.Load())

	// The checks run even if the deadline passed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	failed := p.check(ctx, workers[1].guard, sent.newest)
	if !workers[0].killed.Load() {
		failed = append(failed, errors.New("consumer-1 was never killed"))
	}
	if caughtUp != nil {
		failed = append(failed, caughtUp)
	}
	if len(failed) > 0 {
		return errors.Join(failed...)
	}
	fmt.Printf("ok: %d products at their newest revision, no revision applied twice, every message acknowledged, in %s\n",
		len(sent.newest), time.Since(start).Round(time.Millisecond))
	return nil
}

// startServer starts a nats-server with JetStream on a free port of
// 127.0.0.1, keeping its files in storeDir.
func startServer(storeDir string) (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: storeDir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("nats-server did not accept connections within 10s")
	}
	return srv, nil
}

// add sums the counters this program reports.
func add(a, b revguard.Stats) revguard.Stats {
	a.Applied += b.Applied
	a.Duplicate += b.Duplicate
	a.Stale += b.Stale
	a.InFlight += b.InFlight
	a.Failed += b.Failed
	return a
}
