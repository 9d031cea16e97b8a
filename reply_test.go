package revguard_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/backends/redisstore"
)

func TestHandleReply(t *testing.T) {
	stores := map[string]func(t *testing.T) revguard.Store{
		"memstore": func(*testing.T) revguard.Store { return memstore.New() },
		"redisstore": func(t *testing.T) revguard.Store {
			c := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
			t.Cleanup(func() { _ = c.Close() })
			return redisstore.New(c)
		},
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			g := revguard.New(newStore(t), extract)
			runs := 0
			reply := func(body string) revguard.ReplyHandler[event] {
				return func(context.Context, event) ([]byte, error) { runs++; return []byte(body), nil }
			}
			out, got, err := g.HandleReply(ctx, event{Key: "k", Rev: 1}, reply("first"))
			require.NoError(t, err)
			assert.Equal(t, revguard.Applied, out)
			assert.Equal(t, "first", string(got))

			out, got, err = g.HandleReply(ctx, event{Key: "k", Rev: 1}, reply("second"))
			require.NoError(t, err)
			assert.Equal(t, revguard.Duplicate, out)
			assert.Equal(t, "first", string(got), "a duplicate gets the first run's reply")
			assert.Equal(t, 1, runs)

			// A failed run keeps nothing; its retry's reply is the one kept.
			boom := errors.New("boom")
			_, got, err = g.HandleReply(ctx, event{Key: "k", Rev: 2}, func(context.Context, event) ([]byte, error) { return []byte("lost"), boom })
			require.ErrorIs(t, err, boom)
			assert.Nil(t, got)
			_, _, err = g.HandleReply(ctx, event{Key: "k", Rev: 2}, reply("retried"))
			require.NoError(t, err)
			_, got, _ = g.HandleReply(ctx, event{Key: "k", Rev: 2}, reply("x"))
			assert.Equal(t, "retried", string(got))

			out, got, err = g.HandleReply(ctx, event{Key: "k", Rev: 1}, reply("x"))
			require.NoError(t, err)
			assert.Equal(t, revguard.Stale, out)
			assert.Nil(t, got, "a stale delivery has nothing to replay")

			// A revision applied without a reply never serves an older one's.
			_, err = g.Handle(ctx, event{Key: "k", Rev: 3}, func(context.Context, event) error { return nil })
			require.NoError(t, err)
			out, got, err = g.HandleReply(ctx, event{Key: "k", Rev: 3}, reply("x"))
			require.NoError(t, err)
			assert.Equal(t, revguard.Duplicate, out)
			assert.Nil(t, got)

			// Too large to keep: applied all the same, and a duplicate gets nil.
			big := strings.Repeat("x", revguard.MaxPayload+1)
			out, got, err = g.HandleReply(ctx, event{Key: "big", Rev: 1}, reply(big))
			require.NoError(t, err)
			assert.Equal(t, revguard.Applied, out)
			assert.Len(t, got, len(big))
			_, got, err = g.HandleReply(ctx, event{Key: "big", Rev: 1}, reply("x"))
			require.NoError(t, err)
			assert.Nil(t, got)
		})
	}
}

func TestHandleReplyOutsideClaim(t *testing.T) {
	ctx := context.Background()
	g := revguard.New(memstore.New(), extract, revguard.WithMode(revguard.AtMostOnce))
	h := func(context.Context, event) ([]byte, error) { return []byte("r"), nil }
	out, got, err := g.HandleReply(ctx, event{Key: "k", Rev: 1}, h)
	require.NoError(t, err)
	assert.Equal(t, revguard.Applied, out)
	assert.Equal(t, "r", string(got))
	out, got, err = g.HandleReply(ctx, event{Key: "k", Rev: 1}, h)
	require.NoError(t, err)
	assert.Equal(t, revguard.Duplicate, out)
	assert.Nil(t, got, "AtMostOnce records the revision before the handler: nothing kept")

	_, _, err = g.HandleReply(ctx, event{Key: "k", Rev: 2}, nil)
	assert.Error(t, err)
}

// A duplicate whose reply cannot be read is not acknowledged: the caller
// asked for the reply, and the redelivery will have it.
func TestHandleReplyPeekFails(t *testing.T) {
	ctx := context.Background()
	s := &peekFails{Store: memstore.New()}
	g := revguard.New(s, extract)
	h := func(context.Context, event) ([]byte, error) { return []byte("r"), nil }
	_, _, err := g.HandleReply(ctx, event{Key: "k", Rev: 1}, h)
	require.NoError(t, err)
	s.fail = true
	out, got, err := g.HandleReply(ctx, event{Key: "k", Rev: 1}, h)
	var se *revguard.StoreError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "peek", se.Op)
	assert.Zero(t, out)
	assert.Nil(t, got)
}

type peekFails struct {
	revguard.Store
	fail bool
}

func (p *peekFails) CommitPayload(ctx context.Context, ns, key string, tok revguard.Token, b []byte) error {
	return p.Store.(revguard.Payloads).CommitPayload(ctx, ns, key, tok, b)
}

func (p *peekFails) PeekPayload(ctx context.Context, ns, key string) (revguard.State, []byte, error) {
	if p.fail {
		return revguard.State{}, nil, errDown
	}
	return p.Store.(revguard.Payloads).PeekPayload(ctx, ns, key)
}
