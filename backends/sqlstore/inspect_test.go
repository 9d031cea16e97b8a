package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/sqlstore"
)

// TestScanInput: a bad pattern or namespace is refused before anything is
// read.
func TestScanInput(t *testing.T) {
	db, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	s, err := sqlstore.New(db, sqlstore.Postgres)
	require.NoError(t, err)
	ctx := t.Context()
	nop := func(revguard.Entity) error { return nil }
	err = s.Scan(ctx, "ns", "a[", nop)
	require.ErrorIs(t, err, path.ErrBadPattern)
	assert.Contains(t, err.Error(), `pattern "a["`)
	assert.ErrorContains(t, s.Scan(ctx, strings.Repeat("n", 256), "", nop), "namespace of 256 bytes")
	_, err = s.Inspect(ctx, "ns", "")
	assert.ErrorIs(t, err, revguard.ErrInvalidKey)
}

// TestScanPageEnds scans namespaces of exactly one page, where the second
// statement finds nothing, and of one row more; a namespace whose rows
// are interleaved, in primary-key order, with another namespace's.
func TestScanPageEnds(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		t.Parallel()
		s := newStore(t, d.open(t, ""), d.dialect)
		ctx := context.Background()
		var reqs []revguard.Request
		for i := range 501 {
			for _, ns := range []string{"full", "other"} {
				if ns == "full" && i == 500 {
					continue
				}
				reqs = append(reqs, revguard.Request{Namespace: ns, Key: fmt.Sprint("k", i), Rev: 1, Token: newTokenT(), Advance: true})
			}
		}
		_, err := s.ClaimBatch(ctx, reqs)
		require.NoError(t, err)
		for ns, want := range map[string]int{"full": 500, "other": 501} {
			seen := map[string]bool{}
			require.NoError(t, s.Scan(ctx, ns, "", func(e revguard.Entity) error {
				assert.False(t, seen[e.Key], "%s reported twice", e.Key)
				seen[e.Key] = true
				return nil
			}))
			assert.Len(t, seen, want, ns)
		}
	})
}
