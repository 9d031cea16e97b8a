package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/internal/text"
)

var _ revguard.Inspector = (*Store)(nil)

// scanPage bounds the rows of one Scan statement.
const scanPage = 500

// Inspect implements [revguard.Inspector.Inspect] in one statement, which
// reads the lease left on the database's clock.
func (s *Store) Inspect(ctx context.Context, ns, key string) (revguard.Entity, error) {
	e, err := newEntity(ns, key)
	if err != nil {
		return revguard.Entity{}, err
	}
	var out revguard.Entity
	err = s.retry(ctx, "inspect", func() error {
		var c claimCols
		err := s.db.QueryRowContext(ctx, s.q.inspect, s.entityArgs(e)...).Scan(c.dest()...)
		if errors.Is(err, sql.ErrNoRows) {
			out = revguard.Entity{Key: key}
			return nil
		}
		if err != nil {
			return err
		}
		out, err = c.entity(key)
		return err
	})
	return out, err
}

// Scan implements [revguard.Inspector.Scan]. Each page is one statement of at
// most 500 rows, in primary-key order from where the last one ended (keyset
// pagination), so no transaction or result set stays open across pages or
// while fn runs. Rows are keyed by hash on PostgreSQL and MySQL, where the
// namespace has no index of its own: a page reads on along the primary key
// until it has found 500 of the namespace's rows, so a namespace that holds
// little of a large table takes few pages but long ones. The pattern is
// applied here, not in SQL.
func (s *Store) Scan(ctx context.Context, ns, match string, fn func(revguard.Entity) error) error {
	if len(ns) > revguard.MaxNamespaceLen {
		return fmt.Errorf("sqlstore: namespace of %d bytes, above the limit of %d", len(ns), revguard.MaxNamespaceLen)
	}
	matches, err := text.Matcher("sqlstore", match)
	if err != nil {
		return err
	}
	nsArg := append(make([]byte, 0, len(ns)), ns...) // never nil, which a driver sends as NULL
	after := []byte{}
	for {
		var (
			page []revguard.Entity
			rows int
			last []byte
		)
		err := s.retry(ctx, "scan", func() error {
			page, rows, last = page[:0], 0, nil
			res, err := s.db.QueryContext(ctx, s.q.scan, nsArg, after)
			if err != nil {
				return err
			}
			defer res.Close()
			for res.Next() {
				var (
					cursor, key []byte
					c           claimCols
				)
				if err := res.Scan(append([]any{&cursor, &key}, c.dest()...)...); err != nil {
					return fmt.Errorf("reading a row of %s: %w", s.table, err)
				}
				rows, last = rows+1, cursor
				k := string(key)
				if revguard.CheckKey(k) != nil {
					continue // not a key the store wrote
				}
				if !matches(k) {
					continue
				}
				e, err := c.entity(k)
				if err != nil {
					return err
				}
				page = append(page, e)
			}
			return res.Err()
		})
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if rows < scanPage {
			return nil
		}
		after = last
	}
}

// claimCols are the columns Inspect and Scan read of a row, in the order
// of inspectSQL.
type claimCols struct {
	applied, claimRev sql.NullString
	claimTok          []byte
	left              sql.NullInt64 // microseconds; NULL when no claim is live
}

func (c *claimCols) dest() []any {
	return []any{&c.applied, &c.claimRev, &c.claimTok, &c.left}
}

func (c *claimCols) entity(key string) (revguard.Entity, error) {
	var r row
	if err := readRow(&r, c.applied, nil, c.claimRev, c.claimTok); err != nil {
		return revguard.Entity{}, err
	}
	out := revguard.Entity{Key: key, State: r.state()}
	if c.left.Valid && c.left.Int64 > 0 && c.claimRev.Valid && c.claimTok != nil {
		out.Claim = &revguard.ClaimState{Rev: r.claimRev, Token: r.claimTok, Left: time.Duration(c.left.Int64) * time.Microsecond}
	}
	return out, nil
}
