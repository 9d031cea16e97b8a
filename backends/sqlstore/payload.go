package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/revguard/revguard"
)

var _ revguard.Payloads = (*Store)(nil)

// A payload lives in three nullable columns of the entity's row: payload,
// and payload_rev and payload_token, the revision and token of the commit
// that stored it. It is read only while applied and applied_token are
// that revision and token, so the statements that record a revision
// otherwise (a commit without a payload, an advance, Set) need not clear
// it, and need not know the columns: a table made before they existed
// keeps working for everything but CommitPayload and PeekPayload, which
// say how to add them. A payload no longer read stays in the row until
// the next CommitPayload or Forget.

// payloadSQL returns the statement that reads an entity's applied revision
// and payload, the one that stores a payload with the revision a commit
// just recorded in the same transaction ($1 the payload, then the entity
// condition's parameters; MySQL and SQLite), and those that add the
// payload columns to a table made without them.
func payloadSQL(d Dialect, t, entity string) (peek, store string, add []string) {
	peek = `SELECT applied, CASE WHEN payload_rev = applied AND payload_token = applied_token THEN payload END FROM ` + t + ` WHERE ` + entity
	if d != Postgres {
		store = `UPDATE ` + t + ` SET payload = ?, payload_rev = applied, payload_token = applied_token WHERE ` + entity
	}
	switch d {
	case Postgres:
		add = []string{`ALTER TABLE ` + t + ` ADD COLUMN IF NOT EXISTS payload bytea, ADD COLUMN IF NOT EXISTS payload_rev numeric(20,0), ADD COLUMN IF NOT EXISTS payload_token bytea`}
	case SQLite:
		add = []string{
			`ALTER TABLE ` + t + ` ADD COLUMN payload BLOB`,
			`ALTER TABLE ` + t + ` ADD COLUMN payload_rev TEXT`,
			`ALTER TABLE ` + t + ` ADD COLUMN payload_token BLOB`,
		}
	case MySQL:
		add = []string{`ALTER TABLE ` + t + ` ADD COLUMN payload MEDIUMBLOB NULL, ADD COLUMN payload_rev BIGINT UNSIGNED NULL, ADD COLUMN payload_token BINARY(16) NULL`}
	}
	return peek, store, add
}

// CommitPayload implements [revguard.Payloads.CommitPayload]: on PostgreSQL
// the commit's one statement also writes the payload; elsewhere the commit's
// transaction writes it after the row. On a table made without the payload
// columns it returns an error wrapping [ErrSchema] that shows the ALTER TABLE
// statements adding them, and commits nothing.
func (s *Store) CommitPayload(ctx context.Context, ns, key string, token revguard.Token, payload []byte) error {
	if len(payload) == 0 {
		return s.Commit(ctx, ns, key, token)
	}
	if err := revguard.CheckPayload(payload); err != nil {
		return err
	}
	ents, order, err := entities(1, func(int) (string, string) { return ns, key })
	if err != nil {
		return err
	}
	commits := []revguard.Commit{{Namespace: ns, Key: key, Token: token}}
	out := make([]error, 1)
	if s.d == Postgres {
		left := order
		err = s.retry(ctx, "commit", func() (err error) {
			left, err = s.pgCommit(ctx, commits, ents, left, out, payload)
			return err
		})
	} else {
		err = s.inTx(ctx, "commit", func(tx *sql.Tx) error {
			var recorded bool
			err := s.mutate(ctx, tx, ents, order, func(_ int, r *row) bool {
				recorded, out[0] = commitRow(r, &commits[0])
				return recorded
			})
			if err != nil || !recorded {
				return err
			}
			_, err = tx.ExecContext(ctx, s.q.storePayload, append([]any{payload}, s.entityArgs(ents[0])...)...)
			return err
		})
	}
	if err != nil {
		return s.payloadError(err)
	}
	return out[0]
}

// PeekPayload implements [revguard.Payloads.PeekPayload] in one statement. On
// a table made without the payload columns it returns an error wrapping
// [ErrSchema], as [Store.CommitPayload] does.
func (s *Store) PeekPayload(ctx context.Context, ns, key string) (revguard.State, []byte, error) {
	e, err := newEntity(ns, key)
	if err != nil {
		return revguard.State{}, nil, err
	}
	var applied sql.NullString
	var payload []byte
	err = s.retry(ctx, "peek payload", func() error {
		err := s.db.QueryRowContext(ctx, s.q.peekPayload, s.entityArgs(e)...).Scan(&applied, &payload)
		if errors.Is(err, sql.ErrNoRows) {
			applied, payload = sql.NullString{}, nil
			return nil
		}
		return err
	})
	if err != nil {
		return revguard.State{}, nil, s.payloadError(err)
	}
	st, err := stateOf(applied, "peek payload")
	if err != nil || len(payload) == 0 {
		return st, nil, err
	}
	return st, payload, nil
}

// payloadError names the fix for a table made without the payload
// columns, and returns other errors as they are.
func (s *Store) payloadError(err error) error {
	var missing bool
	switch s.d {
	case Postgres:
		var e interface{ SQLState() string }
		missing = errors.As(err, &e) && e.SQLState() == "42703" // undefined_column
	case MySQL:
		num, _, ok := mysqlError(err)
		missing = ok && num == 1054 // ER_BAD_FIELD_ERROR
	case SQLite:
		missing = strings.Contains(err.Error(), "no such column: payload")
	}
	if !missing {
		return err
	}
	return fmt.Errorf("%w: table %s has no payload columns, which CommitPayload and PeekPayload need (it was made before they existed); add them with: %s (%w)",
		ErrSchema, s.table, strings.Join(s.q.addPayload, "; "), err)
}
