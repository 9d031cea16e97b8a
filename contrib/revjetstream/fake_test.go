package revjetstream_test

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/revguard/revguard/contrib/revjetstream"
)

// fakeMsg is a jetstream.Msg that records how it was settled. Methods it
// does not override panic (the embedded interface is nil).
type fakeMsg struct {
	jetstream.Msg
	subject string
	header  nats.Header
	ackErr  error // what every settling call returns

	mu         sync.Mutex
	settled    []string
	inProgress atomic.Int64
}

func newFakeMsg(key, rev string) *fakeMsg {
	m := &fakeMsg{subject: "events.price", header: nats.Header{}}
	if key != "" {
		m.header.Set(revjetstream.KeyHeader, key)
	}
	if rev != "" {
		m.header.Set(revjetstream.RevisionHeader, rev)
	}
	return m
}

func (m *fakeMsg) Subject() string      { return m.subject }
func (m *fakeMsg) Headers() nats.Header { return m.header }
func (m *fakeMsg) Ack() error           { return m.settle("Ack") }
func (m *fakeMsg) Nak() error           { return m.settle("Nak") }
func (m *fakeMsg) NakWithDelay(d time.Duration) error {
	return m.settle("NakWithDelay " + d.String())
}
func (m *fakeMsg) TermWithReason(reason string) error { return m.settle("Term: " + reason) }
func (m *fakeMsg) InProgress() error {
	m.inProgress.Add(1)
	return nil
}

func (m *fakeMsg) settle(call string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settled = append(m.settled, call)
	return m.ackErr
}

func (m *fakeMsg) calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.settled...)
}
