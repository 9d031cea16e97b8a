package revwatermill_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revwatermill"
)

// publishPrice publishes a product's price at a revision; Publish returns
// once the router has acknowledged it.
func publishPrice(pub message.Publisher, product, rev, price string) {
	msg := message.NewMessage(watermill.NewUUID(), []byte(price))
	msg.Metadata.Set(revwatermill.KeyField, product)
	msg.Metadata.Set(revwatermill.RevisionField, rev)
	if err := pub.Publish("prices", msg); err != nil {
		panic(err)
	}
}

// startRouter runs router until the example returns.
func startRouter(router *message.Router) (stop func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	go func() { _ = router.Run(ctx) }()
	<-router.Running()
	return func() { router.Close(); cancel() }
}

// Price updates delivered twice and out of order reach the handler once
// each, newest last. A shared store (redisstore, sqlstore) in place of
// memstore does the same across processes.
func Example() {
	logger := watermill.NopLogger{}
	pubSub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger)
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		panic(err)
	}

	// snippet:watermill-middleware
	g := revguard.New(memstore.New(), revwatermill.Metadata(revwatermill.KeyField, revwatermill.RevisionField))
	router.AddMiddleware(revwatermill.Middleware(g))
	// snippet:end
	router.AddNoPublisherHandler("price-projection", "prices", pubSub, func(msg *message.Message) error {
		fmt.Printf("%s costs %s\n", msg.Metadata.Get(revwatermill.KeyField), msg.Payload)
		return nil
	})
	defer startRouter(router)()

	publishPrice(pubSub, "product:42", "1", "9.90")
	publishPrice(pubSub, "product:42", "2", "8.50")
	publishPrice(pubSub, "product:42", "2", "8.50") // redelivered
	publishPrice(pubSub, "product:42", "1", "9.90") // late
	publishPrice(pubSub, "product:42", "3", "7.00")

	st := g.Stats()
	fmt.Printf("dropped: %d duplicate, %d stale\n", st.Duplicate, st.Stale)
	// Output:
	// product:42 costs 9.90
	// product:42 costs 8.50
	// product:42 costs 7.00
	// dropped: 1 duplicate, 1 stale
}

// Only the guard's dead-letter answers go to the poison queue; other errors
// are retried. The middlewares are the handler's own, so that they do not
// also wrap the poison queue's handler.
func ExampleIsDeadLetter() {
	logger := watermill.NopLogger{}
	pubSub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger)
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		panic(err)
	}

	poison, err := middleware.PoisonQueueWithFilter(pubSub, "prices.poison", revwatermill.IsDeadLetter)
	if err != nil {
		panic(err)
	}
	retry := middleware.Retry{MaxRetries: 3, InitialInterval: time.Millisecond, ShouldRetry: revwatermill.ShouldRetry}
	g := revguard.New(memstore.New(), revwatermill.Metadata(revwatermill.KeyField, revwatermill.RevisionField))
	handler := router.AddNoPublisherHandler("price-projection", "prices", pubSub, func(msg *message.Message) error {
		fmt.Printf("%s costs %s\n", msg.Metadata.Get(revwatermill.KeyField), msg.Payload)
		return nil
	})
	handler.AddMiddleware(poison, retry.Middleware, revwatermill.Middleware(g))
	router.AddNoPublisherHandler("poison-log", "prices.poison", pubSub, func(msg *message.Message) error {
		fmt.Println("poisoned:", msg.Metadata.Get(middleware.ReasonForPoisonedKey))
		return nil
	})
	defer startRouter(router)()

	publishPrice(pubSub, "product:42", "1", "9.90")
	publishPrice(pubSub, "product:42", "v2", "8.50")
	// Output:
	// product:42 costs 9.90
	// poisoned: revguard: invalid revision: metadata "revision": "v2" is neither a decimal integer nor an RFC 3339 timestamp
}
