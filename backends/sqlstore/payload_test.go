package sqlstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/sqlstore"
)

// TestPayloadOldTable runs on a table made before the payload columns
// existed: Preflight accepts it, plain commits keep working, and
// CommitPayload and PeekPayload refuse with ErrSchema, committing nothing,
// and name the statements that add the columns, after which they work.
func TestPayloadOldTable(t *testing.T) {
	drop := map[sqlstore.Dialect][]string{
		sqlstore.Postgres: {`ALTER TABLE {T} DROP COLUMN payload, DROP COLUMN payload_rev, DROP COLUMN payload_token`},
		sqlstore.MySQL:    {`ALTER TABLE {T} DROP COLUMN payload, DROP COLUMN payload_rev, DROP COLUMN payload_token`},
		sqlstore.SQLite: {
			`ALTER TABLE {T} DROP COLUMN payload`,
			`ALTER TABLE {T} DROP COLUMN payload_rev`,
			`ALTER TABLE {T} DROP COLUMN payload_token`,
		},
	}
	forEachDatabase(t, func(t *testing.T, d database) {
		ctx := context.Background()
		db := d.open(t, "")
		s := newStore(t, db, d.dialect)
		for _, q := range drop[d.dialect] {
			_, err := db.ExecContext(ctx, strings.ReplaceAll(q, "{T}", s.Table()))
			require.NoError(t, err)
		}
		require.NoError(t, s.Preflight(ctx))

		const ns, key = "ns", "entity"
		tok := newTokenT()
		claim := revguard.Request{Namespace: ns, Key: key, Rev: 1, Token: tok, Lease: time.Minute}
		r, err := s.Claim(ctx, claim)
		require.NoError(t, err)
		require.Equal(t, revguard.Granted, r.Verdict)

		err = s.CommitPayload(ctx, ns, key, tok, []byte("payload"))
		require.ErrorIs(t, err, sqlstore.ErrSchema)
		msg := err.Error()
		assert.Contains(t, msg, "ALTER TABLE")
		_, _, err = s.PeekPayload(ctx, ns, key)
		require.ErrorIs(t, err, sqlstore.ErrSchema)

		// Nothing was committed: the claim is still tok's, and commits.
		st, err := s.Peek(ctx, ns, key)
		require.NoError(t, err)
		assert.False(t, st.Exists)
		require.NoError(t, s.Commit(ctx, ns, key, tok))
		st, err = s.Peek(ctx, ns, key)
		require.NoError(t, err)
		assert.Equal(t, revguard.State{Applied: 1, Exists: true}, st)

		// The statements the error names add the columns.
		_, stmts, ok := strings.Cut(msg, "add them with: ")
		require.True(t, ok, msg)
		stmts, _, _ = strings.Cut(stmts, " (")
		for _, q := range strings.Split(stmts, "; ") {
			_, err := db.ExecContext(ctx, q)
			require.NoError(t, err, q)
		}
		require.NoError(t, s.Preflight(ctx))
		tok = newTokenT()
		claim.Rev, claim.Token = 2, tok
		_, err = s.Claim(ctx, claim)
		require.NoError(t, err)
		require.NoError(t, s.CommitPayload(ctx, ns, key, tok, []byte("two")))
		st, p, err := s.PeekPayload(ctx, ns, key)
		require.NoError(t, err)
		assert.Equal(t, revguard.State{Applied: 2, Exists: true}, st)
		assert.Equal(t, []byte("two"), p)
	})
}
