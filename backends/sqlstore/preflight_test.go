package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard/backends/sqlstore"
)

// TestPreflight checks Preflight on the table CreateTable makes, on none,
// and on one made by hand with the wrong types and primary key, which it
// must describe problem by problem.
func TestPreflight(t *testing.T) {
	schemas := map[sqlstore.Dialect]string{sqlstore.Postgres: "public", sqlstore.SQLite: "main", sqlstore.MySQL: "revguard"}
	// wrong is a table made by hand, and the problems Preflight must name.
	wrong := map[sqlstore.Dialect]struct {
		columns  string
		problems []string
	}{
		sqlstore.Postgres: {
			`id bytea, namespace text NOT NULL, entity_key bytea NOT NULL, applied bigint, applied_token bytea,
			prev_applied numeric(20,0), claim_rev numeric, claim_token bytea, extra int`,
			[]string{
				"column namespace is text, want bytea",
				"column applied is bigint, want numeric(20,0)",
				"column claim_rev is numeric, want numeric(20,0)",
				"has no column claim_until (want timestamp with time zone)",
				"has no primary key, want (id)",
			},
		},
		sqlstore.SQLite: {
			`namespace BLOB NOT NULL, entity_key TEXT NOT NULL, applied INTEGER, applied_token blob,
			claim_rev TEXT, claim_token BLOB, claim_until TEXT, PRIMARY KEY (entity_key, namespace)`,
			[]string{
				"column entity_key is TEXT, want BLOB",
				"column applied is INTEGER, want TEXT",
				"has primary key (entity_key, namespace), want (namespace, entity_key)",
			},
		},
		sqlstore.MySQL: {
			`id BINARY(32) NOT NULL PRIMARY KEY, namespace VARCHAR(255) NOT NULL, entity_key VARBINARY(3072) NOT NULL,
			applied BIGINT NULL, applied_token BINARY(16) NULL, claim_rev BIGINT UNSIGNED NULL, claim_token BINARY(16) NULL,
			claim_until DATETIME NULL`,
			[]string{
				"column namespace is varchar(255), want varbinary(255)",
				"column entity_key is varbinary(3072), want varbinary(4096)",
				"column applied is bigint", // MariaDB adds a display width: bigint(20)
				"want bigint unsigned",
				"column claim_until is datetime, want datetime(6)",
			},
		},
	}
	forEachDatabase(t, func(t *testing.T, d database) {
		t.Parallel()
		db := d.open(t, "")
		ctx := context.Background()
		open := func(name string) *sqlstore.Store {
			s, err := sqlstore.New(db, d.dialect, sqlstore.WithTable(name))
			require.NoError(t, err)
			t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+s.Table()) })
			return s
		}

		for _, name := range []string{"rgtest_" + randomHex(8), schemas[d.dialect] + ".rgtest_" + randomHex(8)} {
			s := open(name)
			require.NoError(t, s.CreateTable(ctx))
			assert.NoError(t, s.Preflight(ctx), "the table CreateTable made, %s", name)
		}

		missing := open("rgtest_" + randomHex(8))
		err := missing.Preflight(ctx)
		require.ErrorIs(t, err, sqlstore.ErrSchema)
		assert.Contains(t, err.Error(), missing.Table()+" does not exist")
		assert.Contains(t, err.Error(), "CreateTable")

		w := wrong[d.dialect]
		bad := open("rgtest_" + randomHex(8))
		_, err = db.ExecContext(ctx, "CREATE TABLE "+bad.Table()+" ("+w.columns+")")
		require.NoError(t, err)
		err = bad.Preflight(ctx)
		require.ErrorIs(t, err, sqlstore.ErrSchema)
		for _, p := range w.problems {
			assert.Contains(t, err.Error(), p)
		}
		var joined interface{ Unwrap() []error }
		require.True(t, errors.As(err, &joined))
		n := len(w.problems)
		if d.dialect == sqlstore.MySQL {
			n-- // the type of applied takes two lines above
		}
		assert.Len(t, joined.Unwrap(), n, "one error per problem: %v", err)
		for _, e := range joined.Unwrap() {
			assert.ErrorIs(t, e, sqlstore.ErrSchema)
			assert.Contains(t, e.Error(), bad.Table())
		}
	})
}

func TestPreflightUnreadable(t *testing.T) {
	db := openSQLite(t, "")
	s, err := sqlstore.New(db, sqlstore.SQLite)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	err = s.Preflight(context.Background())
	require.Error(t, err)
	assert.NotErrorIs(t, err, sqlstore.ErrSchema)
	assert.True(t, strings.HasPrefix(err.Error(), "sqlstore: preflight: "), err.Error())
}
