package revguard_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

// TestDisposition drives a guard into each of its answers and checks the
// action every adapter takes from it, so that the mapping is checked against
// the errors the guard really returns, not against sentinels alone.
func TestDisposition(t *testing.T) {
	ctx := context.Background()
	ok := func(context.Context, event) error { return nil }
	seq := revguard.New(memstore.New(), extract, revguard.WithOrdering(revguard.Sequential))
	g := revguard.New(memstore.New(), extract, revguard.WithMaxStep(10))
	_, err := g.Handle(ctx, event{Key: "k", Rev: 2}, ok)
	require.NoError(t, err)

	holding, release := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = g.Handle(ctx, event{Key: "held", Rev: 1}, func(context.Context, event) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	defer close(release)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	for _, c := range []struct {
		name  string
		g     *revguard.Guard[event]
		ctx   context.Context
		e     event
		h     revguard.Handler[event]
		want  revguard.Action
		delay bool
	}{
		{"applied", g, ctx, event{Key: "k", Rev: 3}, ok, revguard.Ack, false},
		{"duplicate", g, ctx, event{Key: "k", Rev: 3}, ok, revguard.Ack, false},
		{"stale", g, ctx, event{Key: "k", Rev: 1}, ok, revguard.Ack, false},
		{"in flight", g, ctx, event{Key: "held", Rev: 2}, ok, revguard.RetryLater, true},
		{"gap", seq, ctx, event{Key: "k", Rev: 5}, ok, revguard.RetryLater, true},
		{"invalid key", g, ctx, event{Key: "", Rev: 4}, ok, revguard.DeadLetter, false},
		{"revision past WithMaxStep", g, ctx, event{Key: "k", Rev: 100}, ok, revguard.DeadLetter, false},
		{"extractor error", g, ctx, event{Key: "k", Rev: 4, Err: errors.New("no revision header")}, ok, revguard.DeadLetter, false},
		{"permanent handler error", g, ctx, event{Key: "k", Rev: 4}, func(context.Context, event) error {
			return fmt.Errorf("decoding: %w", revguard.Permanent(errors.New("bad payload")))
		}, revguard.DeadLetter, false},
		{"handler error", g, ctx, event{Key: "k", Rev: 4}, func(context.Context, event) error { return errors.New("db down") }, revguard.Redeliver, false},
		{"cancelled", g, cancelled, event{Key: "k", Rev: 4}, ok, revguard.Redeliver, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.g.Handle(c.ctx, c.e, c.h)
			act, delay := revguard.Disposition(err)
			assert.Equal(t, c.want, act, "error: %v", err)
			if c.delay {
				assert.Equal(t, revguard.RetryDelay, delay)
			} else {
				assert.Zero(t, delay)
			}
		})
	}
	assert.Equal(t, revguard.Ack, func() revguard.Action { a, _ := revguard.Disposition(nil); return a }())
	assert.Equal(t, "retry-later", revguard.RetryLater.String())
	assert.Equal(t, "Action(9)", revguard.Action(9).String())
}

func ExampleDisposition() {
	g := revguard.New(memstore.New(), func(e PriceChanged) (string, revguard.Revision, error) {
		return e.Product, revguard.Revision(e.Revision), nil
	})
	apply := func(ctx context.Context, e PriceChanged) error { return nil }
	for _, e := range []PriceChanged{{"42", 1, 999}, {"42", 1, 999}, {"", 2, 950}} {
		_, err := g.Handle(context.Background(), e, apply)
		switch act, delay := revguard.Disposition(err); act {
		case revguard.Ack:
			fmt.Println("ack")
		case revguard.RetryLater:
			fmt.Println("nack, redeliver after", delay)
		case revguard.DeadLetter:
			fmt.Println("terminate:", err)
		case revguard.Redeliver:
			fmt.Println("nack")
		}
	}
	// Output:
	// ack
	// ack
	// terminate: revguard: invalid key: empty
}
