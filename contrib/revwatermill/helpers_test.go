package revwatermill_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/contrib/revwatermill"
	"github.com/stretchr/testify/require"
)

const (
	eventsTopic = "events"
	outTopic    = "out"
	poisonTopic = "poison"
)

// testContext bounds a whole test: a router that never acknowledges fails
// it at the deadline rather than hanging the run.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newPubSub returns a GoChannel whose Publish returns once every subscriber
// has acknowledged the message, nacks and redeliveries included: messages
// reach the handler in the order they were published.
func newPubSub(t *testing.T) *gochannel.GoChannel {
	ps := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	t.Cleanup(func() { _ = ps.Close() })
	return ps
}

// event is a message carrying key and rev in the metadata Metadata reads by
// default; an empty value leaves the field out.
func event(key, rev string) *message.Message {
	msg := message.NewMessage(watermill.NewUUID(), []byte(key+"@"+rev))
	if key != "" {
		msg.Metadata.Set(revwatermill.KeyField, key)
	}
	if rev != "" {
		msg.Metadata.Set(revwatermill.RevisionField, rev)
	}
	return msg
}

// publish publishes msgs one by one and fails t if they are not all
// acknowledged before ctx ends.
func publish(ctx context.Context, t *testing.T, pub message.Publisher, msgs ...*message.Message) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := pub.Publish(eventsTopic, m); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatalf("messages not all acknowledged: %v", ctx.Err())
	}
}

// runRouter starts a router that hands the events topic of sub to h through
// middlewares (the first outermost) and publishes what h produces to out.
func runRouter(ctx context.Context, t *testing.T, sub message.Subscriber, out message.Publisher,
	h message.HandlerFunc, middlewares ...message.HandlerMiddleware) {
	t.Helper()
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	require.NoError(t, err)
	r.AddMiddleware(middlewares...)
	r.AddHandler("guarded", eventsTopic, sub, outTopic, out, h)
	stopped := make(chan error, 1)
	go func() { stopped <- r.Run(ctx) }()
	t.Cleanup(func() {
		_ = r.Close()
		if err := <-stopped; err != nil {
			t.Errorf("router: %v", err)
		}
	})
	select {
	case <-r.Running():
	case <-ctx.Done():
		t.Fatalf("router did not start: %v", ctx.Err())
	}
}

// journal records what handlers did, in order, across goroutines.
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, s)
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.entries...)
}

// label names a message by its key and revision metadata: "a@3".
func label(msg *message.Message) string {
	return msg.Metadata.Get(revwatermill.KeyField) + "@" + msg.Metadata.Get(revwatermill.RevisionField)
}

// sink is a Publisher that keeps what it is given, per topic.
type sink struct {
	mu     sync.Mutex
	topics map[string][]*message.Message
}

func (s *sink) Publish(topic string, msgs ...*message.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.topics == nil {
		s.topics = map[string][]*message.Message{}
	}
	s.topics[topic] = append(s.topics[topic], msgs...)
	return nil
}

func (s *sink) Close() error { return nil }

func (s *sink) messages(topic string) []*message.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*message.Message(nil), s.topics[topic]...)
}

func (s *sink) payloads(topic string) []string {
	var out []string
	for _, m := range s.messages(topic) {
		out = append(out, string(m.Payload))
	}
	return out
}

// outcomes is an outermost middleware that records what the router does
// with each delivery: "ack" or "nack: <error>".
func (j *journal) outcomes(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		produced, err := h(msg)
		if err != nil {
			j.add(fmt.Sprintf("nack %s: %v", label(msg), err))
		} else {
			j.add("ack " + label(msg))
		}
		return produced, err
	}
}

// spyStore passes calls to a store, records which keys were claimed, and
// can refuse commits as if the claim had been lost.
type spyStore struct {
	revguard.Store
	mu         sync.Mutex
	claimed    []string
	loseCommit int // commits still to refuse
}

func (s *spyStore) InProcess() bool { return true } // memstore's, kept

func (s *spyStore) Claim(ctx context.Context, req revguard.Request) (revguard.Reply, error) {
	s.mu.Lock()
	s.claimed = append(s.claimed, req.Key)
	s.mu.Unlock()
	return s.Store.Claim(ctx, req)
}

func (s *spyStore) ClaimBatch(ctx context.Context, reqs []revguard.Request) ([]revguard.Reply, error) {
	s.mu.Lock()
	for _, r := range reqs {
		s.claimed = append(s.claimed, r.Key)
	}
	s.mu.Unlock()
	return s.Store.ClaimBatch(ctx, reqs)
}

func (s *spyStore) Commit(ctx context.Context, ns, key string, token revguard.Token) error {
	s.mu.Lock()
	lose := s.loseCommit > 0
	if lose {
		s.loseCommit--
	}
	s.mu.Unlock()
	if lose {
		return fmt.Errorf("%w: refused by the test", revguard.ErrLeaseLost)
	}
	return s.Store.Commit(ctx, ns, key, token)
}

func (s *spyStore) claims() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.claimed...)
}
