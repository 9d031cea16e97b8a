package revwatermill_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/sqlstore"
	"github.com/revguard/revguard/contrib/revwatermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// In the Transactional mode the handler writes through the transaction it
// finds in msg.Context(): its rows and the revision commit together, and a
// failed run leaves neither.
func TestTransactionalHandlerUsesMessageContext(t *testing.T) {
	ctx := testContext(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "tx.db")+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	store, err := sqlstore.New(db, sqlstore.SQLite)
	require.NoError(t, err)
	require.NoError(t, store.CreateTable(ctx))
	_, err = db.ExecContext(ctx, `CREATE TABLE applied (label TEXT NOT NULL)`)
	require.NoError(t, err)

	g := newGuard(store, revguard.WithMode(revguard.Transactional))
	ps := newPubSub(t)
	var once sync.Once
	h := func(msg *message.Message) ([]*message.Message, error) {
		tx := sqlstore.TxFrom(msg.Context())
		if tx == nil {
			return nil, errors.New("no transaction in the message's context")
		}
		if _, err := tx.ExecContext(msg.Context(), `INSERT INTO applied (label) VALUES (?)`, label(msg)); err != nil {
			return nil, err
		}
		failed := false
		once.Do(func() { failed = label(msg) == "a@2" })
		if failed {
			return nil, errors.New("failed after writing")
		}
		return nil, nil
	}
	runRouter(ctx, t, ps, &sink{}, h, revwatermill.Middleware(g))

	publish(ctx, t, ps, event("a", "1"), event("a", "1"), event("a", "2"))

	rows, err := db.QueryContext(ctx, `SELECT label FROM applied ORDER BY rowid`)
	require.NoError(t, err)
	defer rows.Close()
	var got []string
	for rows.Next() {
		var l string
		require.NoError(t, rows.Scan(&l))
		got = append(got, l)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{"a@1", "a@2"}, got)
	rev, ok, err := g.Applied(ctx, "a")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, revguard.Revision(2), rev)
}
