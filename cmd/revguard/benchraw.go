package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/sqlstore"
)

// newRaw prepares the raw baseline of t's store: on Redis, HSET on keys
// under the store's prefix and the bench's id; on SQL, an upsert into a
// scratch table named after id (with '-' as '_'), created here and dropped
// by cleanup.
func newRaw(ctx context.Context, t *target, prefix, id string, keys [][]string) (*raw, error) {
	if t.rdb != nil {
		return redisRaw(t, prefix+id+":", keys), nil
	}
	return sqlRaw(ctx, t, strings.ReplaceAll(id, "-", "_"))
}

func redisRaw(t *target, prefix string, keys [][]string) *raw {
	return &raw{
		name: "raw (HSET)",
		call: func(ctx context.Context, key string, rev revguard.Revision) error {
			return t.rdb.HSet(ctx, prefix+key, "rev", uint64(rev)).Err()
		},
		cleanup: func(ctx context.Context) error {
			pipe := t.rdb.Pipeline()
			for _, ks := range keys {
				for _, k := range ks {
					pipe.Unlink(ctx, prefix+k)
				}
			}
			_, err := pipe.Exec(ctx)
			return err
		},
	}
}

func sqlRaw(ctx context.Context, t *target, table string) (*raw, error) {
	var create, upsert string
	switch t.dialect {
	case sqlstore.Postgres:
		create = "CREATE TABLE " + table + " (k VARCHAR(64) PRIMARY KEY, rev BIGINT NOT NULL)"
		upsert = "INSERT INTO " + table + " (k, rev) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET rev = excluded.rev"
	case sqlstore.SQLite:
		create = "CREATE TABLE " + table + " (k TEXT PRIMARY KEY, rev INTEGER NOT NULL)"
		upsert = "INSERT INTO " + table + " (k, rev) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET rev = excluded.rev"
	case sqlstore.MySQL:
		create = "CREATE TABLE " + table + " (k VARCHAR(64) PRIMARY KEY, rev BIGINT NOT NULL) ENGINE=InnoDB"
		upsert = "INSERT INTO " + table + " (k, rev) VALUES (?, ?) ON DUPLICATE KEY UPDATE rev = VALUES(rev)"
	}
	if _, err := t.db.ExecContext(ctx, create); err != nil {
		return nil, fmt.Errorf("bench: creating the scratch table %s for the raw run: %w", table, err)
	}
	return &raw{
		name: "raw (upsert)",
		call: func(ctx context.Context, key string, rev revguard.Revision) error {
			_, err := t.db.ExecContext(ctx, upsert, key, int64(rev)) //nolint:gosec // G115: bench revisions count up from 1
			return err
		},
		cleanup: func(ctx context.Context) error {
			_, err := t.db.ExecContext(ctx, "DROP TABLE "+table)
			return err
		},
	}, nil
}
