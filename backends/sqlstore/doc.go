// Package sqlstore is a [revguard.Store] that keeps applied revisions and
// claims in a table of a SQL database, through database/sql: PostgreSQL,
// SQLite and MariaDB (the MySQL dialect; MySQL 8 is untested). It is also
// a [revguard.Transactor], so a guard in the Transactional mode records an
// event's revision in the same transaction as the handler's own writes,
// which the handler makes through [TxFrom](ctx): both commit, or neither
// does.
//
// The package Example runs a guard on SQLite in a temporary file, and
// Example (Transactional) credits an account in the handler's transaction.
// The package imports no driver: the program opens the *sql.DB with one and
// names its [Dialect]; the tests use pgx v5 ("pgx"), modernc.org/sqlite
// ("sqlite") and go-sql-driver/mysql ("mysql").
//
// # Table
//
// One row per (namespace, key). Namespaces and keys are kept as bytes, so
// every valid key round-trips exactly, NUL bytes included, and no collation
// folds case, accents or trailing spaces. Revisions cover the whole uint64
// range exactly and read as decimal numbers to an operator's SELECT. Leases
// expire on the database's clock, never a client's.
//
// PostgreSQL. A B-tree entry holds at most about 2700 bytes and keys reach
// 4096, so rows are keyed by id, the SHA-256 of the namespace's length
// byte, the namespace and the key; namespace and key are kept beside it and
// compared on every statement, so a collision would be refused rather than
// merged:
//
//	CREATE TABLE revguard_revisions (
//		id            bytea PRIMARY KEY,   -- sha256(len(ns) || ns || key)
//		namespace     bytea NOT NULL,
//		entity_key    bytea NOT NULL,
//		applied       numeric(20,0),       -- NULL: nothing applied
//		applied_token bytea,               -- the claim token that recorded applied
//		prev_applied  numeric(20,0),       -- applied before the last advance or commit
//		claim_rev     numeric(20,0),
//		claim_token   bytea,
//		claim_until   timestamptz,         -- NULL or past: no claim
//		payload       bytea,               -- CommitPayload's, read only while
//		payload_rev   numeric(20,0),       -- these two are applied and
//		payload_token bytea                -- applied_token
//	) WITH (fillfactor = 60);              -- room for in-page (HOT) updates
//	SELECT convert_from(entity_key, 'UTF8'), applied FROM revguard_revisions;
//
// SQLite. Its integers are signed 64-bit, so revisions are 20-digit
// zero-padded decimal text, which orders as the numbers do; claim_until is
// UTC text with milliseconds, from SQLite's 'now':
//
//	CREATE TABLE revguard_revisions (
//		namespace     BLOB NOT NULL,
//		entity_key    BLOB NOT NULL,
//		applied       TEXT,  -- '00000000000000000042'
//		applied_token BLOB,
//		claim_rev     TEXT,
//		claim_token   BLOB,
//		claim_until   TEXT,  -- '2026-01-02 03:04:05.678'
//		payload       BLOB,
//		payload_rev   TEXT,
//		payload_token BLOB,
//		PRIMARY KEY (namespace, entity_key)
//	);
//
// MariaDB (the MySQL dialect). An index holds at most 3072 bytes, so rows
// are keyed by id as on PostgreSQL; BIGINT UNSIGNED holds the whole range,
// and the store does no arithmetic on it (rev+1 at the top raises error
// 1690):
//
//	CREATE TABLE revguard_revisions (
//		id            BINARY(32) NOT NULL PRIMARY KEY,
//		namespace     VARBINARY(255) NOT NULL,
//		entity_key    VARBINARY(4096) NOT NULL,
//		applied       BIGINT UNSIGNED NULL,
//		applied_token BINARY(16) NULL,
//		claim_rev     BIGINT UNSIGNED NULL,
//		claim_token   BINARY(16) NULL,
//		claim_until   DATETIME(6) NULL,  -- UTC_TIMESTAMP(6)
//		payload       MEDIUMBLOB NULL,   -- a BLOB holds 64 KiB, under MaxPayload
//		payload_rev   BIGINT UNSIGNED NULL,
//		payload_token BINARY(16) NULL
//	) ENGINE=InnoDB;
//
// A row whose applied and claim_until are both NULL holds nothing, as if it
// were absent. ([Store.CreateTable] writes these statements with the table
// name of [WithTable]; [Store.Preflight] checks that an existing table has
// these columns, types and primary key.) On PostgreSQL every event updates
// its row twice; a table created without the fillfactor, by an earlier
// version or by hand, gains it for the pages written from then on with
// ALTER TABLE revguard_revisions SET (fillfactor = 60).
//
// The payload columns keep what [revguard.Payloads] stores; a table made
// before they existed works for everything else, Preflight accepts it, and
// [Store.CommitPayload] and [Store.PeekPayload] return an error wrapping
// [ErrSchema] that shows the ALTER TABLE statements adding them (on
// PostgreSQL: ALTER TABLE revguard_revisions ADD COLUMN IF NOT EXISTS payload
// bytea, ADD COLUMN IF NOT EXISTS payload_rev numeric(20,0), ADD COLUMN IF
// NOT EXISTS payload_token bytea). Adding nullable columns rewrites no row.
//
// # Statements and isolation
//
// On PostgreSQL a claim, an advance or a commit is one statement: INSERT
// ... ON CONFLICT DO UPDATE ... WHERE (or UPDATE ... WHERE) decides with
// the row locked, writes only what the contract grants, and RETURNING
// reports the applied revision as it was. A refused request changed
// nothing, so a second, read-only statement reads the row to say why
// (duplicate, stale, in flight, gap); the call takes effect at that read,
// and runs again in the rare case that the row changed in between. A batch
// is one such statement over unnest of arrays, its rows proposed and
// locked in id order, so concurrent batches cannot deadlock. [Store.Renew],
// [Store.Release], [Store.Set], [Store.Forget] and [Store.Peek] are one
// statement each.
//
// On MariaDB every change is a short transaction that locks the rows with
// SELECT ... FOR UPDATE in id order, decides in Go (with
// [revguard.Request.DecideClaim], as memstore does) and writes them back
// with one multi-row INSERT: MariaDB has no RETURNING that reports a row as
// it was before an update, and its affected-row counts cannot tell an
// unchanged row from a refused one. On SQLite a transaction first takes the
// database's write lock with a write that changes nothing, then does the
// same; in process, a statement costs no round trip.
//
// The store is correct under READ COMMITTED, REPEATABLE READ and
// SERIALIZABLE, whichever is the database's or the session's default; it
// does not set one. The database may abort transactions that collide:
// serialization failures under the stricter levels, deadlocks (MariaDB's gap
// locks) under any (SQLSTATE 40001, 40P01, MySQL error 1213). Such an abort
// changes nothing, and the store runs again what it undid, up to
// [WithRetries] times. On PostgreSQL each statement commits on its own, so
// a batch whose later statement was aborted runs again only the requests
// no statement has decided yet: one that took effect is never decided
// twice. Lock wait timeouts (MySQL 1205) are returned, not retried.
//
// # Inspecting
//
// The store is a [revguard.Inspector]: [Store.Inspect] reads one entity with
// its live claim and the lease left on the database's clock, and [Store.Scan]
// reads a namespace 500 rows a statement, each statement resuming after the
// last primary key the previous one read, with no transaction between them.
//
// # Transactional mode
//
// [Store.Transact] begins a transaction with the database's default isolation,
// advances the revision in it (an upsert that holds the row lock until the
// end, so a concurrent delivery of the same entity waits, then sees the
// outcome) and runs the handler with the transaction in its context. The
// handler's writes must go through TxFrom(ctx): a write through the *sql.DB
// commits on its own. When the database aborts the transaction for a
// conflict, Transact runs again from BEGIN, the handler included; effects
// the handler has outside the database should tolerate that, as they
// tolerate a redelivery. An error from COMMIT itself is returned, never
// reported as a drop: the redelivery finds out whether it went through.
//
// SQLite allows one writer at a time: open the database with a busy timeout
// and WAL, for example
// "file:revs.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" with
// modernc.org/sqlite, or a writer that finds the database locked fails at
// once (the store retries it a few times).
package sqlstore
