package revjetstream_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard/contrib/revjetstream"
)

const stream = "EVENTS"

// testServer is an embedded nats-server with JetStream and one stream,
// EVENTS, of the subjects events.>.
type testServer struct {
	t   *testing.T
	url string
	js  jetstream.JetStream
}

func newServer(t *testing.T) *testServer {
	t.Helper()
	srv, err := startServer(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	s := &testServer{t: t, url: srv.ClientURL()}
	_, s.js = s.connect()
	_, err = s.js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: stream, Subjects: []string{"events.>"}, Storage: jetstream.MemoryStorage,
	})
	require.NoError(t, err)
	return s
}

// connect opens a connection of its own, as another process would.
func (s *testServer) connect() (*nats.Conn, jetstream.JetStream) {
	s.t.Helper()
	nc, err := nats.Connect(s.url)
	require.NoError(s.t, err)
	s.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(s.t, err)
	return nc, js
}

// consumer creates the durable pull consumer name with explicit acks.
func (s *testServer) consumer(name string, ackWait time.Duration) jetstream.Consumer {
	s.t.Helper()
	c, err := s.js.CreateOrUpdateConsumer(context.Background(), stream, jetstream.ConsumerConfig{
		Durable: name, AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait,
	})
	require.NoError(s.t, err)
	return c
}

// publish stores an event of key at rev; an empty key or rev leaves its
// header out.
func (s *testServer) publish(key, rev string) {
	s.t.Helper()
	msg := nats.NewMsg("events.price")
	if key != "" {
		msg.Header.Set(revjetstream.KeyHeader, key)
	}
	if rev != "" {
		msg.Header.Set(revjetstream.RevisionHeader, rev)
	}
	_, err := s.js.PublishMsg(context.Background(), msg)
	require.NoError(s.t, err)
}

// consume runs h on c until the test ends.
func consume(t *testing.T, c jetstream.Consumer, h jetstream.MessageHandler) jetstream.ConsumeContext {
	t.Helper()
	cc, err := c.Consume(h)
	require.NoError(t, err)
	t.Cleanup(cc.Stop)
	return cc
}

// settled waits until c has delivered every message of the stream and has
// no acknowledgement pending, and returns its info.
func settled(t *testing.T, c jetstream.Consumer, total uint64) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	require.Eventually(t, func() bool {
		i, err := c.Info(context.Background())
		if err != nil {
			return false
		}
		info = i
		return i.Delivered.Stream == total && i.NumPending == 0 && i.NumAckPending == 0
	}, 10*time.Second, 10*time.Millisecond, "consumer never settled: %+v", info)
	return info
}

// recorder is a projection that notes what its handler applied, and a
// witness of every delivery and every error.
type recorder struct {
	mu         sync.Mutex
	applied    []string // "key@revision", in the order the handler completed
	deliveries []delivery
	errs       []error
}

type delivery struct {
	seq, n uint64 // stream sequence, NumDelivered
	at     time.Time
}

func (r *recorder) apply(_ context.Context, msg jetstream.Msg) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied = append(r.applied, msg.Headers().Get(revjetstream.KeyHeader)+"@"+msg.Headers().Get(revjetstream.RevisionHeader))
	return nil
}

// watch records each delivery before h handles it.
func (r *recorder) watch(h jetstream.MessageHandler) jetstream.MessageHandler {
	return func(msg jetstream.Msg) {
		d := delivery{at: time.Now()}
		if md, err := msg.Metadata(); err == nil {
			d.seq, d.n = md.Sequence.Stream, md.NumDelivered
		}
		r.mu.Lock()
		r.deliveries = append(r.deliveries, d)
		r.mu.Unlock()
		h(msg)
	}
}

func (r *recorder) onError(_ jetstream.Msg, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *recorder) appliedList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.applied...)
}

func (r *recorder) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// deliveriesOf returns the deliveries of the stream sequence seq.
func (r *recorder) deliveriesOf(seq uint64) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ds []delivery
	for _, d := range r.deliveries {
		if d.seq == seq {
			ds = append(ds, d)
		}
	}
	return ds
}
