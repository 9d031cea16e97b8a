package revkgo_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revkgo"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	topic   = "events"
	group   = "projection"
	revHdr  = "revision"
	waitFor = 20 * time.Second
)

// extract reads the tests' records: the entity is the record key.
var extract = revkgo.Headers("", revHdr)

// cluster is an in-process Kafka with one topic.
type cluster struct {
	*kfake.Cluster
	brokers []string
}

func newCluster(t *testing.T, partitions int32) *cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return &cluster{Cluster: c, brokers: c.ListenAddrs()}
}

// event is a record of entity key at revision rev, bound for partition p.
func event(p int32, key, rev string) *kgo.Record {
	return &kgo.Record{Partition: p, Key: []byte(key), Headers: []kgo.RecordHeader{{Key: revHdr, Value: []byte(rev)}}}
}

// produce writes recs in order, each to its own Partition, and returns the
// offset after the last record of each partition.
func (c *cluster) produce(t *testing.T, recs ...*kgo.Record) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	end := map[int32]int64{}
	for _, r := range recs {
		got, err := cl.ProduceSync(t.Context(), r).First()
		require.NoError(t, err)
		end[got.Partition] = got.Offset + 1
	}
	return end
}

// consumer returns a group member set up as Consume requires, quick to
// notice rebalances and new data.
func (c *cluster) consumer(t *testing.T, name string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.brokers...),
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(50*time.Millisecond),
		kgo.HeartbeatInterval(100*time.Millisecond),
	)
	require.NoError(t, err)
	t.Cleanup(cl.CloseAllowingRebalance)
	return cl
}

// committed returns the group's committed offset of each partition.
func (c *cluster) committed() map[int32]int64 {
	got := map[int32]int64{}
	if info := c.GroupInfo(group); info != nil {
		for p, commit := range info.Commits[topic] {
			got[p] = commit.Offset
		}
	}
	return got
}

// waitCommitted waits until the group's commits equal want on every
// partition want names.
func (c *cluster) waitCommitted(t *testing.T, want map[int32]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	_, err := c.WaitGroupInfo(ctx, group, func(*kfake.GroupInfo) bool {
		got := c.committed()
		for p, off := range want {
			if got[p] != off {
				return false
			}
		}
		return true
	})
	require.NoError(t, err, "committed %v, want %v", c.committed(), want)
}

// run starts Consume and returns a function that stops it and returns its
// error.
func run(t *testing.T, cl *kgo.Client, g *revguard.Guard[*kgo.Record], h revguard.Handler[*kgo.Record], opts ...revkgo.Option) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- revkgo.Consume(ctx, cl, g, h, opts...) }()
	t.Cleanup(cancel)
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(waitFor):
			return fmt.Errorf("Consume did not return %s after its context ended", waitFor)
		}
	}
}

// projection is the handler's state: the revisions applied to each entity,
// in the order they were applied.
type projection struct {
	mu      sync.Mutex
	applied map[string][]revguard.Revision
	fail    func(key string, rev revguard.Revision) error // nil: never fails
}

func newProjection() *projection {
	return &projection{applied: map[string][]revguard.Revision{}}
}

func (p *projection) apply(_ context.Context, r *kgo.Record) error {
	key, rev, err := extract(r)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		if err := p.fail(key, rev); err != nil {
			return err
		}
	}
	p.applied[key] = append(p.applied[key], rev)
	return nil
}

func (p *projection) revisions(key string) []revguard.Revision {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.applied[key])
}

func (p *projection) snapshot() map[string][]revguard.Revision {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]revguard.Revision{}
	for k, v := range p.applied {
		out[k] = slices.Clone(v)
	}
	return out
}

func newGuard(opts ...revguard.Option) *revguard.Guard[*kgo.Record] {
	return revguard.New(memstore.New(), extract, append([]revguard.Option{revguard.WithNamespace(group)}, opts...)...)
}

// outcomes records what the observer was told, by record position.
type outcomes struct {
	mu  sync.Mutex
	log []observed
}

type observed struct {
	partition int32
	offset    int64
	out       revguard.Outcome
	err       error
}

func (o *outcomes) observe(r *kgo.Record, out revguard.Outcome, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.log = append(o.log, observed{r.Partition, r.Offset, out, err})
}

func (o *outcomes) all() []observed {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.log)
}
