package revcloudevents_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/client"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revcloudevents"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const source = "https://shop.example/prices"

// serve starts an SDK HTTP client on 127.0.0.1 receiving with
// revcloudevents.Receiver, and returns its URL. The receiver stops when the
// test ends.
func serve(t *testing.T, g *revguard.Guard[event.Event], h revguard.Handler[event.Event]) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c, err := cloudevents.NewClientHTTP(cehttp.WithListener(ln))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.StartReceiver(ctx, revcloudevents.Receiver(g, h)) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return "http://" + ln.Addr().String()
}

// newSender returns an SDK client that sends to url. It has none of
// NewClientHTTP's defaulters, which would give every event an id and a
// time, so that tests choose every attribute.
func newSender(t *testing.T, url string) client.Client {
	t.Helper()
	p, err := cloudevents.NewHTTP(cehttp.WithTarget(url))
	require.NoError(t, err)
	c, err := cloudevents.NewClient(p)
	require.NoError(t, err)
	return c
}

// priceChanged is an event of the subject product; seq and at are its
// sequence extension and time, each left out when zero.
func priceChanged(product string, seq any, at time.Time) event.Event {
	e := cloudevents.NewEvent()
	e.SetID("evt-" + product)
	e.SetType("com.example.price.changed")
	e.SetSource(source)
	e.SetSubject(product)
	if seq != nil {
		e.SetExtension("sequence", seq)
	}
	if !at.IsZero() {
		e.SetTime(at)
	}
	if err := e.SetData(cloudevents.ApplicationJSON, map[string]int{"cents": 999}); err != nil {
		panic(err)
	}
	return e
}

// recorder is a handler that notes the subjects and revisions it ran.
type recorder struct {
	mu  sync.Mutex
	ran []string
}

func (r *recorder) handle(_ context.Context, e event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, e.Subject())
	return nil
}

func (r *recorder) subjects() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ran...)
}

// status returns the HTTP status of a sender's result.
func status(t *testing.T, res protocol.Result) int {
	t.Helper()
	var rr *cehttp.RetriesResult
	if errors.As(res, &rr) {
		res = rr.Result
	}
	var r *cehttp.Result
	require.True(t, errors.As(res, &r), "not an HTTP result: %v", res)
	return r.StatusCode
}

// assertOutcome checks that the sender's result is an ACK that reads as want.
func assertOutcome(t *testing.T, want revguard.Outcome, res protocol.Result) {
	t.Helper()
	assert.True(t, protocol.IsACK(res), "want an ACK, got %v", res)
	out, ok := revcloudevents.Outcome(res)
	assert.True(t, ok, "no outcome in %v", res)
	assert.Equal(t, want, out)
}

// assertApplied checks the entity's stored revision; rev 0 means none.
func assertApplied(t *testing.T, g *revguard.Guard[event.Event], key string, rev revguard.Revision) {
	t.Helper()
	got, ok, err := g.Applied(context.Background(), key)
	require.NoError(t, err)
	if rev == 0 {
		assert.False(t, ok, "%s has applied revision %s, want none", key, got)
		return
	}
	assert.True(t, ok, "%s has nothing applied", key)
	assert.Equal(t, rev, got, key)
}

func newGuard(opts ...revguard.Option) *revguard.Guard[event.Event] {
	return revguard.New(memstore.New(), revcloudevents.Extractor(), opts...)
}
