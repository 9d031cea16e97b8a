package revwatermill_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/redisstore"
	"github.com/revguard/revguard/backends/sqlstore"
	"github.com/revguard/revguard/contrib/revwatermill"
	"github.com/revguard/revguard/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"
)

// Two routers stand for two processes of one consumer: each receives a copy
// of every message at the same time, and their guards share one store, so
// that each revision is applied exactly once across both.
func TestTwoRoutersShareOneStore(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "revisions.db")
		stores := make([]revguard.Store, 2)
		for i := range stores {
			// Each router opens the file on its own, as another process would.
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			s, err := sqlstore.New(db, sqlstore.SQLite)
			require.NoError(t, err)
			require.NoError(t, s.CreateTable(testContext(t)))
			stores[i] = s
		}
		applyOnce(t, stores)
	})
	t.Run("Redis", func(t *testing.T) {
		addr := testenv.Server(t, testenv.RedisAddr, "a redis-server")
		prefix := testenv.Unique("revwatermill-test:", 6) + ":"
		stores := make([]revguard.Store, 2)
		for i := range stores {
			c := redis.NewClient(&redis.Options{Addr: addr})
			t.Cleanup(func() {
				testenv.DeleteKeys(context.Background(), c, prefix)
				_ = c.Close()
			})
			stores[i] = redisstore.New(c, redisstore.WithPrefix(prefix))
		}
		applyOnce(t, stores)
	})
}

func applyOnce(t *testing.T, stores []revguard.Store) {
	ctx := testContext(t)
	ps := newPubSub(t)
	var handled journal
	guards := make([]*revguard.Guard[*message.Message], len(stores))
	for i, s := range stores {
		guards[i] = newGuard(s)
		h := func(msg *message.Message) ([]*message.Message, error) {
			handled.add(label(msg))
			return nil, nil
		}
		// The losing router's copy gets ErrInFlight until the winner has
		// committed; Retry spaces its attempts rather than spinning.
		retry := middleware.Retry{MaxRetries: 100, InitialInterval: time.Millisecond, MaxInterval: 20 * time.Millisecond,
			Multiplier: 2, ShouldRetry: revwatermill.ShouldRetry}
		runRouter(ctx, t, ps, &sink{}, h, retry.Middleware, revwatermill.Middleware(guards[i]))
	}

	const keys, revs = 3, 4
	var stream []*message.Message
	var want []string
	for rev := 1; rev <= revs; rev++ {
		for k := range keys {
			key := fmt.Sprintf("k%d", k)
			stream = append(stream, event(key, strconv.Itoa(rev)))
			want = append(want, key+"@"+strconv.Itoa(rev))
		}
	}
	// The stream, then all of it again: a replay both routers receive.
	publish(ctx, t, ps, stream...)
	publish(ctx, t, ps, stream...)

	got := handled.list()
	assert.ElementsMatch(t, want, got, "each revision applied exactly once across both routers")
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		var order []string
		for _, l := range got {
			if l[:len(key)+1] == key+"@" {
				order = append(order, l)
			}
		}
		assert.True(t, slices.IsSorted(order), "%s applied out of order: %v", key, order)
		for _, g := range guards {
			rev, ok, err := g.Applied(ctx, key)
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, revguard.Revision(revs), rev)
		}
	}
	var applied uint64
	for i, g := range guards {
		st := g.Stats()
		applied += st.Applied
		t.Logf("router %d: %d applied, %d duplicate, %d stale, %d in flight", i, st.Applied, st.Duplicate, st.Stale, st.InFlight)
	}
	assert.Equal(t, uint64(keys*revs), applied)
}
