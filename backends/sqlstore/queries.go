package sqlstore

import (
	"fmt"
	"strconv"
	"strings"
)

// queries are the statements a Store runs as they are, built once in New
// from the validated, quoted table name; no input is ever spliced in.
type queries struct {
	create  string
	entity  string // the condition that picks one entity's row
	peek    string
	release string
	forget  string
	lock    string // SQLite: a write that changes nothing, to take the write lock
	inspect string // one entity's applied revision and live claim
	scan    string // a page of a namespace's entities, after a cursor (see inspect.go)

	// Payloads (payload.go).
	peekPayload  string   // the applied revision and the payload recorded with it
	storePayload string   // MySQL and SQLite: the payload of a commit just made
	addPayload   []string // adds the payload columns to a table made without them

	// PostgreSQL only.
	claim         [2][2]string // single rows: [advance][can insert]
	claimBatch    [2]string    // [advance]
	read          string       // one entity's row, for a refused claim or commit
	readBatch     string
	commit        string
	commitBatch   string
	commitPayload string
	renew         string
	set           string
}

func buildQueries(d Dialect, t string) queries {
	q := queries{}
	switch d {
	case Postgres:
		// Every event rewrites its row twice (claim, then commit), and a
		// row is about three times as wide as a bare (key, revision) one.
		// With full pages the new version often has no room beside the old,
		// so the update leaves the page: a new index entry, and concurrent
		// batches all writing into the one page the free space map hands
		// out, then waiting to extend the table. Measured with 8 connections
		// on their own keys, the room fillfactor 60 leaves took HOT updates
		// from 91% to 96%, halved the LWLock:BufferContent waits and gave
		// 35% more batches a second.
		q.create = `CREATE TABLE IF NOT EXISTS ` + t + ` (
	id            bytea PRIMARY KEY,
	namespace     bytea NOT NULL,
	entity_key    bytea NOT NULL,
	applied       numeric(20,0),
	applied_token bytea,
	prev_applied  numeric(20,0),
	claim_rev     numeric(20,0),
	claim_token   bytea,
	claim_until   timestamptz,
	payload       bytea,
	payload_rev   numeric(20,0),
	payload_token bytea
) WITH (fillfactor = 60)`
		q.entity = `id = $1 AND namespace = $2 AND entity_key = $3`
		q.release = `UPDATE ` + t + ` SET claim_rev = NULL, claim_token = NULL, claim_until = NULL WHERE ` + q.entity + ` AND claim_token = $4`
		for _, advance := range []bool{false, true} {
			for _, insert := range []bool{false, true} {
				q.claim[b2i(advance)][b2i(insert)] = pgClaimSQL(t, advance, insert)
			}
			q.claimBatch[b2i(advance)] = pgClaimBatchSQL(t, advance)
		}
		q.read = `SELECT id, applied, applied_token, claim_rev, claim_token, COALESCE(claim_until > statement_timestamp(), false),
	namespace = $2 AND entity_key = $3 FROM ` + t + ` WHERE id = $1`
		q.readBatch = `SELECT t.id, t.applied, t.applied_token, t.claim_rev, t.claim_token,
	COALESCE(t.claim_until > statement_timestamp(), false), t.namespace = i.ns AND t.entity_key = i.k
FROM (SELECT substring($1::bytea FROM u.n::int * 32 - 31 FOR 32) AS id, u.ns, u.k
	FROM unnest($2::bytea[], $3::bytea[]) WITH ORDINALITY AS u(ns, k, n)) AS i JOIN ` + t + ` t ON t.id = i.id`
		q.commit = pgCommitSQL(t)
		q.commitPayload = pgCommitPayloadSQL(t)
		q.commitBatch = pgCommitBatchSQL(t)
		q.renew = `UPDATE ` + t + ` SET claim_until = statement_timestamp() + $5::bigint * interval '1 microsecond' WHERE ` +
			q.entity + ` AND claim_token = $4 AND claim_until > statement_timestamp()`
		q.set = `INSERT INTO ` + t + ` AS t (id, namespace, entity_key, applied) VALUES ($1, $2, $3, $4::numeric)
ON CONFLICT (id) DO UPDATE SET prev_applied = t.applied, applied = excluded.applied, applied_token = NULL,
	claim_rev = NULL, claim_token = NULL, claim_until = NULL
WHERE t.namespace = excluded.namespace AND t.entity_key = excluded.entity_key`
	case SQLite:
		q.create = `CREATE TABLE IF NOT EXISTS ` + t + ` (
	namespace     BLOB NOT NULL,
	entity_key    BLOB NOT NULL,
	applied       TEXT,
	applied_token BLOB,
	claim_rev     TEXT,
	claim_token   BLOB,
	claim_until   TEXT,
	payload       BLOB,
	payload_rev   TEXT,
	payload_token BLOB,
	PRIMARY KEY (namespace, entity_key)
)`
		q.entity = `namespace = ? AND entity_key = ?`
		q.release = `UPDATE ` + t + ` SET claim_rev = NULL, claim_token = NULL, claim_until = NULL WHERE ` + q.entity + ` AND claim_token = ?`
		q.lock = `UPDATE ` + t + ` SET applied = applied WHERE 0`
	case MySQL:
		q.create = `CREATE TABLE IF NOT EXISTS ` + t + ` (
	id            BINARY(32) NOT NULL PRIMARY KEY,
	namespace     VARBINARY(255) NOT NULL,
	entity_key    VARBINARY(4096) NOT NULL,
	applied       BIGINT UNSIGNED NULL,
	applied_token BINARY(16) NULL,
	claim_rev     BIGINT UNSIGNED NULL,
	claim_token   BINARY(16) NULL,
	claim_until   DATETIME(6) NULL,
	payload       MEDIUMBLOB NULL,
	payload_rev   BIGINT UNSIGNED NULL,
	payload_token BINARY(16) NULL
) ENGINE=InnoDB`
		q.entity = `id = ? AND namespace = ? AND entity_key = ?`
		q.release = `UPDATE ` + t + ` SET claim_rev = NULL, claim_token = NULL, claim_until = NULL WHERE ` + q.entity + ` AND claim_token = ?`
	}
	q.peek = `SELECT applied FROM ` + t + ` WHERE ` + q.entity
	q.inspect, q.scan = inspectSQL(d, t, q.entity)
	q.peekPayload, q.storePayload, q.addPayload = payloadSQL(d, t, q.entity)
	q.forget = `DELETE FROM ` + t + ` WHERE ` + q.entity
	return q
}

// inspectSQL returns the statement that reads one entity (its parameters
// those of the entity condition) and the one that reads a page of a
// namespace's entities ($1 the namespace, $2 the cursor: the last primary
// key read, or an empty byte string), in primary-key order: id where rows
// are keyed by hash, entity_key after the namespace on SQLite. Both read
// the applied revision, the claim, and the microseconds left of its lease
// on the database's clock, NULL when there is no live claim; the page
// leaves out rows that hold nothing (see the package documentation).
func inspectSQL(d Dialect, t, entity string) (inspect, scan string) {
	var now, left, cursor, params string
	switch d {
	case Postgres:
		now, cursor, params = `statement_timestamp()`, `id`, `namespace = $1 AND id > $2`
		left = `(extract(epoch FROM claim_until - ` + now + `) * 1000000)::bigint`
	case SQLite:
		// 'now' is one instant throughout a statement.
		now, cursor, params = `strftime('%Y-%m-%d %H:%M:%f', 'now')`, `entity_key`, `namespace = ? AND entity_key > ?`
		left = `CAST(round((julianday(claim_until) - julianday('now')) * 86400000000) AS INTEGER)`
	case MySQL:
		now, cursor, params = `UTC_TIMESTAMP(6)`, `id`, `namespace = ? AND id > ?`
		left = `TIMESTAMPDIFF(MICROSECOND, ` + now + `, claim_until)`
	}
	cols := `applied, claim_rev, claim_token, CASE WHEN claim_until > ` + now + ` THEN ` + left + ` END`
	inspect = `SELECT ` + cols + ` FROM ` + t + ` WHERE ` + entity
	scan = `SELECT ` + cursor + `, entity_key, ` + cols + ` FROM ` + t + ` WHERE ` + params +
		` AND (applied IS NOT NULL OR claim_until > ` + now + `) ORDER BY ` + cursor + ` LIMIT ` + strconv.Itoa(scanPage)
	return inspect, scan
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pgClaimSQL decides one claim in one statement. Its parameters: $1 row
// hash, $2 namespace, $3 key, $4 revision (decimal text), $5 token, $6
// the lowest applied revision that grants (applied+1 under Sequential and
// the step bound, computed exactly in Go), and for a claim $7 the lease in
// microseconds.
//
// With insert set (an empty entity grants the request), INSERT ... ON
// CONFLICT DO UPDATE ... WHERE writes the claim or advance, its WHERE
// evaluated on the latest row version with the row locked; otherwise an
// UPDATE does, and a missing row stays missing. RETURNING reports the
// applied revision as it was before: a claim leaves applied alone, an
// advance copies it into prev_applied first. No row means refused (see
// postgres.go for what follows).
func pgClaimSQL(t string, advance, insert bool) string {
	const free = `(t.claim_until IS NULL OR t.claim_until <= statement_timestamp() OR (t.claim_token = $5 AND t.claim_rev = $4::numeric))`
	var q string
	switch {
	case advance && insert:
		q = `INSERT INTO {T} AS t (id, namespace, entity_key, applied, applied_token)
VALUES ($1, $2, $3, $4::numeric, $5)
ON CONFLICT (id) DO UPDATE SET prev_applied = t.applied, applied = excluded.applied, applied_token = excluded.applied_token,
	claim_rev = NULL, claim_token = NULL, claim_until = NULL
WHERE t.namespace = excluded.namespace AND t.entity_key = excluded.entity_key
AND (t.applied IS NULL OR (t.applied < $4::numeric AND t.applied >= $6::numeric))
AND {free}
RETURNING t.prev_applied`
	case advance:
		q = `UPDATE {T} AS t SET prev_applied = t.applied, applied = $4::numeric, applied_token = $5,
	claim_rev = NULL, claim_token = NULL, claim_until = NULL
WHERE t.id = $1 AND t.namespace = $2 AND t.entity_key = $3
AND t.applied < $4::numeric AND t.applied >= $6::numeric
AND {free}
RETURNING t.prev_applied`
	case insert:
		q = `INSERT INTO {T} AS t (id, namespace, entity_key, claim_rev, claim_token, claim_until)
VALUES ($1, $2, $3, $4::numeric, $5, statement_timestamp() + $7::bigint * interval '1 microsecond')
ON CONFLICT (id) DO UPDATE SET claim_rev = excluded.claim_rev, claim_token = excluded.claim_token, claim_until = excluded.claim_until
WHERE t.namespace = excluded.namespace AND t.entity_key = excluded.entity_key
AND (t.applied IS NULL OR (t.applied < $4::numeric AND t.applied >= $6::numeric))
AND {free}
RETURNING t.applied`
	default:
		q = `UPDATE {T} AS t SET claim_rev = $4::numeric, claim_token = $5,
	claim_until = statement_timestamp() + $7::bigint * interval '1 microsecond'
WHERE t.id = $1 AND t.namespace = $2 AND t.entity_key = $3
AND t.applied < $4::numeric AND t.applied >= $6::numeric
AND {free}
RETURNING t.applied`
	}
	return strings.NewReplacer("{free}", free, "{T}", t).Replace(q)
}

// pgClaimBatchSQL decides a batch of claims in one statement. Its
// parameters, one entry a request, in row-hash order: $1 the row hashes,
// one after another in one byte string (32 bytes each), $2 namespaces and
// $3 keys (arrays), $4 revisions (decimal text), $5 the tokens in one byte
// string (16 bytes each); then, shared by the batch, Sequential, First, and
// MaxStep or NULL, and for a claim the lease in microseconds. (A driver
// converts an array of byte strings element by element; hashes and tokens
// have a fixed length, so substring cuts them cheaply.)
//
// It works as pgClaimSQL does, with these differences. The rows are
// proposed in the arrays' order, so that concurrent batches lock rows in
// one order; WITH ORDINALITY tells the planner they come in that order, so
// it sorts nothing. The DO UPDATE can read no parameter per row, only the
// proposed row, so the revision and token ride in it and the bounds are
// computed in SQL: NUMERIC arithmetic is exact. And a request that an
// empty entity refuses (Sequential, not First) must still propose a row, or
// an existing row would not reach the DO UPDATE: when its entity has no
// row, that row is written holding nothing (no applied revision, no claim
// time, so it reads as absent), and RETURNING reports it as not granted.
func pgClaimBatchSQL(t string, advance bool) string {
	const (
		until   = `statement_timestamp() + $9::bigint * interval '1 microsecond'`
		emptyOK = `(NOT $6::boolean OR i.rev = $7::numeric)`
	)
	var cols, vals, set, rev, tok, empty, granted, before string
	if advance {
		cols = `applied, applied_token, claim_rev, claim_token`
		vals = fmt.Sprintf(`CASE WHEN %[1]s THEN i.rev END, CASE WHEN %[1]s THEN i.tok END, `+
			`CASE WHEN NOT %[1]s THEN i.rev END, CASE WHEN NOT %[1]s THEN i.tok END`, emptyOK)
		rev, tok = `COALESCE(excluded.applied, excluded.claim_rev)`, `COALESCE(excluded.applied_token, excluded.claim_token)`
		set = `prev_applied = t.applied, applied = ` + rev + `, applied_token = ` + tok + `,
	claim_rev = NULL, claim_token = NULL, claim_until = NULL`
		empty = `excluded.applied IS NOT NULL`
		granted, before = `t.applied IS NOT NULL`, `t.prev_applied`
	} else {
		cols = `claim_rev, claim_token, claim_until`
		vals = `i.rev, i.tok, CASE WHEN ` + emptyOK + ` THEN ` + until + ` END`
		rev, tok = `excluded.claim_rev`, `excluded.claim_token`
		set = `claim_rev = excluded.claim_rev, claim_token = excluded.claim_token, claim_until = ` + until
		empty = `excluded.claim_until IS NOT NULL`
		granted, before = `t.claim_until IS NOT NULL`, `t.applied`
	}
	r := strings.NewReplacer("{T}", t, "{cols}", cols, "{vals}", vals, "{set}", set,
		"{rev}", rev, "{tok}", tok, "{empty}", empty, "{granted}", granted, "{before}", before)
	return r.Replace(`INSERT INTO {T} AS t (id, namespace, entity_key, {cols})
SELECT i.id, i.ns, i.k, {vals}
FROM (SELECT u.n, substring($1::bytea FROM u.n::int * 32 - 31 FOR 32) AS id, u.ns, u.k, u.rev,
	substring($5::bytea FROM u.n::int * 16 - 15 FOR 16) AS tok
	FROM unnest($2::bytea[], $3::bytea[], $4::text[]::numeric[]) WITH ORDINALITY AS u(ns, k, rev, n)) AS i
ORDER BY i.n
ON CONFLICT (id) DO UPDATE SET {set}
WHERE t.namespace = excluded.namespace AND t.entity_key = excluded.entity_key
AND CASE WHEN t.applied IS NULL THEN {empty}
	ELSE t.applied < {rev}
		AND (NOT $6::boolean OR t.applied + 1 = {rev})
		AND ($8::numeric IS NULL OR {rev} - t.applied <= $8::numeric)
	END
AND (t.claim_until IS NULL OR t.claim_until <= statement_timestamp()
	OR (t.claim_token = {tok} AND t.claim_rev = {rev}))
RETURNING t.id, {granted}, {before}`)
}

// pgCommitSQL commits one claim: $1 row hash, $2 namespace, $3 key, $4
// token. It writes only if the token holds a live claim.
func pgCommitSQL(t string) string {
	return `UPDATE ` + t + ` AS t SET prev_applied = t.applied, applied = t.claim_rev, applied_token = t.claim_token,
	claim_rev = NULL, claim_token = NULL, claim_until = NULL
WHERE t.id = $1 AND t.namespace = $2 AND t.entity_key = $3
AND t.claim_token = $4 AND t.claim_until > statement_timestamp()`
}

// pgCommitPayloadSQL is pgCommitSQL that also stores $5, the payload, with
// the revision it records and the recording's token (see payloadSQL).
func pgCommitPayloadSQL(t string) string {
	return `UPDATE ` + t + ` AS t SET prev_applied = t.applied, applied = t.claim_rev, applied_token = t.claim_token,
	payload = $5, payload_rev = t.claim_rev, payload_token = t.claim_token,
	claim_rev = NULL, claim_token = NULL, claim_until = NULL
WHERE t.id = $1 AND t.namespace = $2 AND t.entity_key = $3
AND t.claim_token = $4 AND t.claim_until > statement_timestamp()`
}

// pgCommitBatchSQL is pgCommitSQL for a batch, its parameters laid out as
// pgClaimBatchSQL's: $1 row hashes, $2 namespaces, $3 keys, $4 tokens. Like
// a claim batch it proposes rows in hash order through INSERT ... ON
// CONFLICT, so that it locks rows in the order claim batches do; a commit
// for an entity with no row writes a row holding nothing, and RETURNING
// reports it as not committed. Only a claim statement, which compares
// namespace and key, makes a live claim, so the token alone picks it.
func pgCommitBatchSQL(t string) string {
	return strings.ReplaceAll(`INSERT INTO {T} AS t (id, namespace, entity_key, claim_token)
SELECT i.id, i.ns, i.k, i.tok
FROM (SELECT u.n, substring($1::bytea FROM u.n::int * 32 - 31 FOR 32) AS id, u.ns, u.k,
	substring($4::bytea FROM u.n::int * 16 - 15 FOR 16) AS tok
	FROM unnest($2::bytea[], $3::bytea[]) WITH ORDINALITY AS u(ns, k, n)) AS i
ORDER BY i.n
ON CONFLICT (id) DO UPDATE SET prev_applied = t.applied, applied = t.claim_rev, applied_token = t.claim_token,
	claim_rev = NULL, claim_token = NULL, claim_until = NULL
WHERE t.claim_token = excluded.claim_token AND t.claim_until > statement_timestamp()
RETURNING t.id, t.applied IS NOT NULL`, "{T}", t)
}
