package revkgo_test

import (
	"context"
	"fmt"
	"time"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revkgo"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func ExampleConsume() {
	// kfake is an in-process Kafka. The producer re-sent revision 2 after a
	// lost acknowledgement, and its retry of revision 1 landed last.
	cluster, _ := kfake.NewCluster(kfake.SeedTopics(1, "price-updates"))
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	producer, _ := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("price-updates"))
	for _, e := range []struct{ rev, cents string }{{"1", "1000"}, {"2", "1100"}, {"2", "1100"}, {"1", "1000"}} {
		producer.ProduceSync(context.Background(), &kgo.Record{Key: []byte("product:42"), Value: []byte(e.cents),
			Headers: []kgo.RecordHeader{{Key: "revision", Value: []byte(e.rev)}}})
	}
	producer.Close()

	cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup("prices"),
		kgo.ConsumeTopics("price-updates"), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	defer cl.CloseAllowingRebalance()

	g := revguard.New(memstore.New(), revkgo.Headers("", "revision"))
	apply := func(ctx context.Context, r *kgo.Record) error {
		fmt.Printf("%s costs %s cents\n", r.Key, r.Value)
		return nil
	}
	ctx, stop := context.WithCancel(context.Background())
	observe := func(r *kgo.Record, out revguard.Outcome, err error) {
		fmt.Printf("offset %d: %v\n", r.Offset, out)
		if r.Offset == 3 {
			stop()
		}
	}
	err := revkgo.Consume(ctx, cl, g, apply, revkgo.WithObserver(observe))
	fmt.Println(err)
	// Output:
	// product:42 costs 1000 cents
	// offset 0: applied
	// product:42 costs 1100 cents
	// offset 1: applied
	// offset 2: duplicate
	// offset 3: stale
	// context canceled
}

// A poll loop of your own: HandleFetches does what one turn of Consume does.
func ExampleHandleFetches() {
	var (
		ctx   context.Context
		cl    *kgo.Client // with kgo.ConsumerGroup, kgo.DisableAutoCommit and kgo.BlockRebalanceOnPoll
		g     *revguard.Guard[*kgo.Record]
		apply revguard.Handler[*kgo.Record]
	)
	// snippet:kgo-poll-loop
	for ctx.Err() == nil {
		fetches := cl.PollRecords(ctx, 100)
		if fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			fmt.Printf("fetching %s/%d: %v\n", topic, partition, err)
		})
		if err := revkgo.HandleFetches(ctx, cl, g, apply, fetches); err != nil {
			fmt.Println(err) // the records come again; the loop goes on
		}
		cl.AllowRebalance()
	}
	// snippet:end
}
