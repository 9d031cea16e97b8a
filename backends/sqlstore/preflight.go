package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// ErrSchema is returned, wrapped with what is wrong, by [Store.Preflight]
// when the store's table is missing or differs from the one
// [Store.CreateTable] makes.
var ErrSchema = errors.New("sqlstore: table does not match the store")

// column is a column the store's table has, with its type as the
// database's catalog spells it.
type column struct{ name, typ string }

// tableSpec is the table CreateTable makes (queries.go) in each dialect:
// its columns, the optional ones (which only CommitPayload and PeekPayload
// need, and which a table of an earlier version lacks) and primary key.
var tableSpec = map[Dialect]struct {
	cols     []column
	optional []column
	key      []string
}{
	Postgres: {
		cols: []column{
			{"id", "bytea"}, {"namespace", "bytea"}, {"entity_key", "bytea"},
			{"applied", "numeric(20,0)"}, {"applied_token", "bytea"}, {"prev_applied", "numeric(20,0)"},
			{"claim_rev", "numeric(20,0)"}, {"claim_token", "bytea"}, {"claim_until", "timestamp with time zone"},
		},
		optional: []column{{"payload", "bytea"}, {"payload_rev", "numeric(20,0)"}, {"payload_token", "bytea"}},
		key:      []string{"id"},
	},
	SQLite: {
		cols: []column{
			{"namespace", "BLOB"}, {"entity_key", "BLOB"}, {"applied", "TEXT"}, {"applied_token", "BLOB"},
			{"claim_rev", "TEXT"}, {"claim_token", "BLOB"}, {"claim_until", "TEXT"},
		},
		optional: []column{{"payload", "BLOB"}, {"payload_rev", "TEXT"}, {"payload_token", "BLOB"}},
		key:      []string{"namespace", "entity_key"},
	},
	MySQL: {
		cols: []column{
			{"id", "binary(32)"}, {"namespace", "varbinary(255)"}, {"entity_key", "varbinary(4096)"},
			{"applied", "bigint unsigned"}, {"applied_token", "binary(16)"},
			{"claim_rev", "bigint unsigned"}, {"claim_token", "binary(16)"}, {"claim_until", "datetime(6)"},
		},
		optional: []column{{"payload", "mediumblob"}, {"payload_rev", "bigint unsigned"}, {"payload_token", "binary(16)"}},
		key:      []string{"id"},
	},
}

// Preflight reads the database's catalog (pg_catalog on PostgreSQL,
// information_schema on MySQL, PRAGMA table_info on SQLite) and returns an
// error wrapping [ErrSchema] for each way the store's table differs from the
// one [Store.CreateTable] makes, all of them joined: the table is missing, a
// column is missing or of another type, or the primary key is another. A
// table made by hand or by an older version may differ so, and the store
// would then fail on its first call, or worse, compare revisions as text or
// signed numbers. The payload columns may be missing, since only
// [Store.CommitPayload] and [Store.PeekPayload] need them (they return an
// error showing how to add them), but not of another type. Columns the store
// does not use are left alone. It returns another error when the catalog
// cannot be read. Call it at startup; it is not needed for the store to work.
func (s *Store) Preflight(ctx context.Context) error {
	found, key, err := s.catalog(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: preflight: reading the catalog for table %s: %w", s.table, err)
	}
	if found == nil {
		return fmt.Errorf("%w: table %s does not exist: create it with CreateTable, or as the package documentation shows", ErrSchema, s.table)
	}
	spec := tableSpec[s.d]
	var errs []error
	for i, c := range slices.Concat(spec.cols, spec.optional) {
		typ, ok := found[c.name]
		switch {
		case !ok && i >= len(spec.cols):
			// An optional column: CommitPayload says how to add it.
		case !ok:
			errs = append(errs, fmt.Errorf("%w: table %s has no column %s (want %s)", ErrSchema, s.table, c.name, c.typ))
		case !s.sameType(typ, c.typ):
			errs = append(errs, fmt.Errorf("%w: table %s: column %s is %s, want %s", ErrSchema, s.table, c.name, typ, c.typ))
		}
	}
	if !slices.Equal(key, spec.key) {
		have := "has no primary key"
		if len(key) > 0 {
			have = "has primary key (" + strings.Join(key, ", ") + ")"
		}
		errs = append(errs, fmt.Errorf("%w: table %s %s, want (%s)", ErrSchema, s.table, have, strings.Join(spec.key, ", ")))
	}
	return errors.Join(errs...)
}

// intWidth is the display width MySQL 5 and MariaDB write after an integer
// type ("bigint(20) unsigned"), which MySQL 8 leaves out and which changes
// nothing stored.
var intWidth = regexp.MustCompile(`^((?:tiny|small|medium|big)?int)\(\d+\)`)

// sameType compares a type the catalog reports with the one the store
// wants: SQLite keeps the declared type as written, in any case; MySQL may
// add a display width.
func (s *Store) sameType(found, want string) bool {
	found = strings.TrimSpace(found)
	switch s.d {
	case SQLite:
		return strings.EqualFold(found, want)
	case MySQL:
		return intWidth.ReplaceAllString(strings.ToLower(found), "$1") == want
	}
	return found == want
}

// catalog returns the table's columns with their types, nil when the table
// does not exist, and its primary key's columns in order.
func (s *Store) catalog(ctx context.Context) (cols map[string]string, key []string, err error) {
	var q string
	var args []any
	switch s.d {
	case Postgres:
		// to_regclass resolves the quoted name as the store's statements
		// do, through the search path when it names no schema.
		q = `SELECT a.attname, format_type(a.atttypid, a.atttypmod),
	(SELECT array_position(i.indkey::int2[], a.attnum) FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary)
FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`
		args = []any{s.table}
	case SQLite:
		q = `SELECT name, type, NULLIF(pk, 0) FROM pragma_table_info(?, ?)`
		schema := s.schema
		if schema == "" {
			schema = "main"
		}
		args = []any{s.name, schema}
	case MySQL:
		q = `SELECT c.COLUMN_NAME, c.COLUMN_TYPE, k.ORDINAL_POSITION
FROM information_schema.COLUMNS c LEFT JOIN information_schema.KEY_COLUMN_USAGE k
	ON k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME AND k.COLUMN_NAME = c.COLUMN_NAME AND k.CONSTRAINT_NAME = 'PRIMARY'
WHERE c.TABLE_SCHEMA = COALESCE(?, DATABASE()) AND c.TABLE_NAME = ?`
		var schema any
		if s.schema != "" {
			schema = s.schema
		}
		args = []any{schema, s.name}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	type keyCol struct {
		name string
		pos  int64
	}
	var keys []keyCol
	for rows.Next() {
		var (
			name, typ string
			pos       sql.NullInt64
		)
		if err := rows.Scan(&name, &typ, &pos); err != nil {
			return nil, nil, err
		}
		if cols == nil {
			cols = make(map[string]string)
		}
		cols[name] = typ
		if pos.Valid {
			keys = append(keys, keyCol{name, pos.Int64})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	slices.SortFunc(keys, func(a, b keyCol) int { return int(a.pos - b.pos) })
	for _, k := range keys {
		key = append(key, k.name)
	}
	return cols, key, nil
}
