package revjetstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/backends/redisstore"
	"github.com/revguard/revguard/contrib/revjetstream"
)

var headers = revjetstream.Headers(revjetstream.KeyHeader, revjetstream.RevisionHeader)

// Repeated and stale deliveries reach the handler never; each entity's
// revisions reach it once, in order; every message is acknowledged.
func TestDuplicatesAndStaleAcknowledged(t *testing.T) {
	s := newServer(t)
	ackWait := 5 * time.Second
	c := s.consumer("projection", ackWait)
	published := [][2]string{
		{"p1", "1"}, {"p2", "2"}, {"p1", "2"}, {"p2", "1"}, {"p1", "2"},
		{"p3", "1"}, {"p1", "1"}, {"p2", "3"}, {"p1", "3"}, {"p2", "3"},
	}
	for _, e := range published {
		s.publish(e[0], e[1])
	}

	g := revguard.New(memstore.New(), headers)
	var r recorder
	consume(t, c, revjetstream.Handler(g, r.apply, revjetstream.WithAckWait(ackWait), revjetstream.WithErrorHandler(r.onError)))

	info := settled(t, c, uint64(len(published)))
	assert.Zero(t, info.NumRedelivered)
	assert.Equal(t, []string{"p1@1", "p2@2", "p1@2", "p3@1", "p2@3", "p1@3"}, r.appliedList())
	assert.Empty(t, r.errors())
	st := g.Stats()
	assert.Equal(t, revguard.Stats{Applied: 6, Duplicate: 2, Stale: 2}, st)
	for key, want := range map[string]revguard.Revision{"p1": 3, "p2": 3, "p3": 1} {
		rev, ok, err := g.Applied(context.Background(), key)
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, want, rev, key)
	}
}

// A handler slower than AckWait keeps its message while InProgress is
// signalled every third of the consumer's AckWait. Without it (a WithAckWait
// longer than the consumer's), JetStream delivers the message again during
// the handler, and the guard drops the copy as a duplicate.
func TestInProgressPreventsRedelivery(t *testing.T) {
	ackWait := 400 * time.Millisecond
	run := func(t *testing.T, opts ...revjetstream.Option) []delivery {
		s := newServer(t)
		c := s.consumer("slow", ackWait)
		s.publish("p1", "1")
		g := revguard.New(memstore.New(), headers)
		var r recorder
		done := make(chan struct{})
		slow := func(ctx context.Context, msg jetstream.Msg) error {
			if msg.Headers().Get(revjetstream.KeyHeader) == "p1" {
				time.Sleep(3 * ackWait)
				defer close(done)
			}
			return r.apply(ctx, msg)
		}
		opts = append(opts, revjetstream.WithErrorHandler(r.onError))
		consume(t, c, r.watch(revjetstream.Handler(g, slow, opts...)))
		<-done
		// Every copy delivered during the slow handler was delivered before
		// this one, and is handled before it.
		s.publish("sentinel", "1")
		settled(t, c, 2)
		assert.Equal(t, []string{"p1@1", "sentinel@1"}, r.appliedList(), "the handler ran once")
		assert.Empty(t, r.errors())
		return r.deliveriesOf(1)
	}

	t.Run("InProgress", func(t *testing.T) {
		ds := run(t, revjetstream.WithAckWait(ackWait))
		require.Len(t, ds, 1, "delivered once")
		assert.Equal(t, uint64(1), ds[0].n)
	})
	t.Run("AckWait too long", func(t *testing.T) {
		ds := run(t) // assumes the default 30s: no signal in time
		require.Greater(t, len(ds), 1, "redelivered while the handler ran")
		assert.Equal(t, uint64(len(ds)), ds[len(ds)-1].n)
	})
}

// lostAck is a message whose acknowledgement never reaches the server.
type lostAck struct{ jetstream.Msg }

func (lostAck) Ack() error { return nil }

// A message left unacknowledged comes back after AckWait and is handled
// once: one taken by a consumer that died before handling it runs the
// handler on redelivery; one handled but whose Ack was lost is dropped as a
// duplicate. This consumer reads with Messages and Handle.
func TestRedeliveryAfterAckWait(t *testing.T) {
	s := newServer(t)
	ackWait := 300 * time.Millisecond
	c := s.consumer("workers", ackWait)
	s.publish("p1", "1")
	s.publish("p2", "1")

	// A consumer takes the first message and dies before handling it.
	batch, err := c.Fetch(1)
	require.NoError(t, err)
	for range batch.Messages() {
	}
	require.NoError(t, batch.Error())

	g := revguard.New(memstore.New(), headers)
	var r recorder
	it, err := c.Messages()
	require.NoError(t, err)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			msg, err := it.Next()
			if err != nil {
				return
			}
			if md, err := msg.Metadata(); err == nil && md.Sequence.Stream == 2 && md.NumDelivered == 1 {
				msg = lostAck{msg}
			}
			r.watch(func(msg jetstream.Msg) {
				if err := revjetstream.Handle(context.Background(), g, msg, r.apply, revjetstream.WithAckWait(ackWait)); err != nil {
					r.onError(msg, err)
				}
			})(msg)
		}
	}()
	t.Cleanup(func() { it.Stop(); <-stopped })

	settled(t, c, 2)
	assert.ElementsMatch(t, []string{"p1@1", "p2@1"}, r.appliedList(), "each handled once")
	assert.Empty(t, r.errors())
	assert.Equal(t, revguard.Stats{Applied: 2, Duplicate: 1}, g.Stats())

	first := r.deliveriesOf(1)
	require.Len(t, first, 1, "the abandoned message, handled on its redelivery")
	assert.Equal(t, uint64(2), first[0].n)
	second := r.deliveriesOf(2)
	require.Len(t, second, 2, "the message whose Ack was lost, and its redelivery")
	assert.Equal(t, uint64(2), second[1].n)
	assert.GreaterOrEqual(t, second[1].at.Sub(second[0].at), ackWait-50*time.Millisecond, "redelivered after AckWait")
}

// worker is a consumer process: its own NATS connection and Redis client,
// its own guard on a Redis store it shares with the others.
type worker struct {
	nc  *nats.Conn
	rdb *redis.Client
	g   *revguard.Guard[jetstream.Msg]
	c   jetstream.Consumer
	r   recorder
}

func newWorker(t *testing.T, s *testServer, redisAddr string, lease time.Duration) *worker {
	w := &worker{rdb: redis.NewClient(&redis.Options{Addr: redisAddr})}
	t.Cleanup(func() { _ = w.rdb.Close() })
	w.g = revguard.New(redisstore.New(w.rdb), headers, revguard.WithLease(lease))
	var js jetstream.JetStream
	w.nc, js = s.connect()
	c, err := js.Consumer(context.Background(), stream, "workers")
	require.NoError(t, err)
	w.c = c
	return w
}

// A consumer killed in the middle of a handler leaves its message
// unacknowledged and its claim in the store; JetStream delivers the message
// to another consumer after AckWait, and once the dead one's lease has run
// out the message is applied there, exactly once.
func TestConsumerKilledMidHandler(t *testing.T) {
	s := newServer(t)
	mr := miniredis.RunT(t)
	ackWait, lease := 300*time.Millisecond, 150*time.Millisecond
	s.consumer("workers", ackWait)
	opts := func(w *worker) []revjetstream.Option {
		return []revjetstream.Option{
			revjetstream.WithAckWait(ackWait), revjetstream.WithRetryDelay(50 * time.Millisecond),
			revjetstream.WithErrorHandler(w.r.onError),
		}
	}

	dying := newWorker(t, s, mr.Addr(), lease)
	started, returned, unblock := make(chan struct{}), make(chan error, 1), make(chan struct{})
	t.Cleanup(func() { close(unblock) })
	block := func(ctx context.Context, msg jetstream.Msg) error {
		close(started)
		select { // the process is gone: its handler never completes
		case <-ctx.Done():
		case <-unblock:
		}
		returned <- ctx.Err()
		return ctx.Err()
	}
	consume(t, dying.c, dying.r.watch(revjetstream.Handler(dying.g, block, opts(dying)...)))
	s.publish("p1", "1")
	<-started

	survivor := newWorker(t, s, mr.Addr(), lease)
	consume(t, survivor.c, survivor.r.watch(revjetstream.Handler(survivor.g, survivor.r.apply, opts(survivor)...)))

	// The kill: the connection and the Redis client go, so the claim is
	// neither renewed nor released, and no acknowledgement is sent.
	dying.nc.Close()
	require.NoError(t, dying.rdb.Close())

	info := settled(t, survivor.c, 1)
	assert.Zero(t, info.NumRedelivered)
	assert.Equal(t, []string{"p1@1"}, survivor.r.appliedList(), "applied once, by the survivor")
	redelivered := survivor.r.deliveriesOf(1)
	require.NotEmpty(t, redelivered)
	assert.GreaterOrEqual(t, redelivered[0].n, uint64(2))
	rev, ok, err := survivor.g.Applied(context.Background(), "p1")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, revguard.Revision(1), rev)

	// The dead consumer's guard cancelled its handler once the lease was
	// lost; its Nak could not be sent, and the error says so.
	select {
	case err := <-returned:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("the dead consumer's handler was never cancelled")
	}
	assert.Empty(t, dying.r.appliedList())
	require.Eventually(t, func() bool { return len(dying.r.errors()) > 0 }, 5*time.Second, 10*time.Millisecond)
	assert.ErrorIs(t, dying.r.errors()[0], nats.ErrConnectionClosed)
	assert.ErrorIs(t, dying.r.errors()[0], revguard.ErrLeaseLost)
}

// A message whose entity is in flight elsewhere is nakked with a delay, and
// JetStream delivers it again after that delay, not at once and not after
// AckWait.
func TestNakWithDelayWhileInFlight(t *testing.T) {
	s := newServer(t)
	ackWait, delay := 10*time.Second, 300*time.Millisecond
	c := s.consumer("projection", ackWait)
	g := revguard.New(memstore.New(), headers)
	var r recorder
	release := holdClaim(t, g, "p1", 1)
	s.publish("p1", "2")
	consume(t, c, r.watch(revjetstream.Handler(g, r.apply, revjetstream.WithAckWait(ackWait),
		revjetstream.WithRetryDelay(delay), revjetstream.WithErrorHandler(r.onError))))

	require.Eventually(t, func() bool { return len(r.errors()) > 0 }, 5*time.Second, 5*time.Millisecond)
	require.ErrorIs(t, r.errors()[0], revguard.ErrInFlight)
	release() // the other delivery commits revision 1

	settled(t, c, 1)
	assert.Equal(t, []string{"p1@2"}, r.appliedList())
	ds := r.deliveriesOf(1)
	require.Len(t, ds, 2)
	assert.Equal(t, []uint64{1, 2}, []uint64{ds[0].n, ds[1].n})
	gap := ds[1].at.Sub(ds[0].at)
	assert.GreaterOrEqual(t, gap, delay, "delivered again after the delay")
	assert.Less(t, gap, ackWait/2, "by the Nak, not by AckWait")
}

// Bad input, and a handler's Permanent error, terminate the message: the
// handler does not run on bad input, nothing is stored, JetStream does not
// deliver it again, and the MSG_TERMINATED advisory carries the reason.
func TestBadInputTerminated(t *testing.T) {
	s := newServer(t)
	ackWait := 150 * time.Millisecond
	c := s.consumer("projection", ackWait)
	nc, _ := s.connect()
	advisories, err := nc.SubscribeSync(server.JSAdvisoryConsumerMsgTerminatedPre + "." + stream + ".projection")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	s.publish("", "1")       // no key header
	s.publish("p1", "one")   // unparsable revision
	s.publish("p2", "")      // no revision header
	s.publish("broken", "1") // the handler fails for good
	s.publish("p3", "1")     // a good one after them
	g := revguard.New(memstore.New(), headers)
	var r recorder
	errBroken := errors.New("price below zero")
	h := func(ctx context.Context, msg jetstream.Msg) error {
		if msg.Headers().Get(revjetstream.KeyHeader) == "broken" {
			return revguard.Permanent(errBroken)
		}
		return r.apply(ctx, msg)
	}
	consume(t, c, r.watch(revjetstream.Handler(g, h, revjetstream.WithAckWait(ackWait), revjetstream.WithErrorHandler(r.onError))))

	info := settled(t, c, 5)
	assert.Zero(t, info.NumRedelivered)
	assert.Equal(t, []string{"p3@1"}, r.appliedList())
	errs := r.errors()
	require.Len(t, errs, 4)
	assert.ErrorIs(t, errs[0], revguard.ErrInvalidKey)
	assert.ErrorIs(t, errs[1], revguard.ErrInvalidRevision)
	assert.ErrorIs(t, errs[2], revguard.ErrInvalidRevision)
	assert.ErrorIs(t, errs[3], errBroken)
	for _, key := range []string{"p1", "p2", "broken"} {
		_, ok, err := g.Applied(context.Background(), key)
		require.NoError(t, err)
		assert.False(t, ok, "nothing stored for %s", key)
	}

	want := []string{
		`revguard: invalid key: header "Event-Key" missing`,
		`header "Event-Revision": revguard: invalid revision: "one" is neither a decimal integer nor an RFC 3339 timestamp`,
		`revguard: invalid revision: header "Event-Revision" missing`,
		`permanent: price below zero`,
	}
	for i, reason := range want {
		m, err := advisories.NextMsg(5 * time.Second)
		require.NoError(t, err)
		var adv server.JSConsumerDeliveryTerminatedAdvisory
		require.NoError(t, json.Unmarshal(m.Data, &adv))
		assert.Equal(t, uint64(i+1), adv.StreamSeq)
		assert.Equal(t, reason, adv.Reason)
	}

	// Past AckWait twice over, nothing came back.
	time.Sleep(2 * ackWait)
	for seq := uint64(1); seq <= 5; seq++ {
		assert.Len(t, r.deliveriesOf(seq), 1, "stream sequence %d delivered once", seq)
	}
}
