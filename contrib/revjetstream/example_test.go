package revjetstream_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revjetstream"
)

func ExampleHandler() {
	// An embedded nats-server with JetStream, as a test would start it.
	dir, err := os.MkdirTemp("", "revjetstream-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	srv, err := startServer(dir)
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PRICES", Subjects: []string{"prices.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		panic(err)
	}
	ackWait := 10 * time.Second
	consumer, err := js.CreateOrUpdateConsumer(ctx, "PRICES", jetstream.ConsumerConfig{Durable: "projection", AckWait: ackWait})
	if err != nil {
		panic(err)
	}

	// The publisher sends revision 2 twice (a retry), then revision 1 late.
	for _, rev := range []string{"2", "2", "1", "3"} {
		msg := nats.NewMsg("prices.p1")
		msg.Header.Set(revjetstream.KeyHeader, "product:p1")
		msg.Header.Set(revjetstream.RevisionHeader, rev)
		msg.Data = []byte("price at revision " + rev)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			panic(err)
		}
	}

	decided := make(chan revguard.Decision, 4)
	g := revguard.New(memstore.New(), revjetstream.Headers(revjetstream.KeyHeader, revjetstream.RevisionHeader),
		revguard.WithObserver(func(d revguard.Decision) { decided <- d }))
	var price string
	apply := func(ctx context.Context, msg jetstream.Msg) error {
		price = string(msg.Data())
		return nil
	}
	cc, err := consumer.Consume(revjetstream.Handler(g, apply, revjetstream.WithAckWait(ackWait)))
	if err != nil {
		panic(err)
	}
	defer cc.Stop()

	for range 4 {
		d := <-decided
		fmt.Printf("revision %d: %s\n", d.Revision, d.Outcome)
	}
	fmt.Println(price)
	// Output:
	// revision 2: applied
	// revision 2: duplicate
	// revision 1: stale
	// revision 3: applied
	// price at revision 3
}

// startServer starts a nats-server with JetStream on a free port of
// 127.0.0.1, keeping its files in storeDir.
func startServer(storeDir string) (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  storeDir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		return nil, err
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("nats-server did not accept connections within 10s")
	}
	return srv, nil
}
