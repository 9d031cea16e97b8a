package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/sqlstore"
	"github.com/revguard/revguard/internal/testenv"
)

// The benchmarks run revguard on PostgreSQL beside the raw statement a
// consumer would write without it, on the same kind of rows in the same
// run:
//
//	go test -run '^$' -bench Postgres -benchtime 3s ./backends/sqlstore/
//
// Each pair has three sub-benchmarks: raw, revguard, and ratio, which
// alternates the two operation by operation in the same goroutines and
// reports revguard's throughput as a share of raw's. On a shared machine
// the load drifts between consecutive benchmarks; alternating cancels
// that out, so ratio is the figure to compare with a target.
//
// Every event applies (its revision is above the applied one). Each
// invocation uses fresh keys, 1000 per goroutine, so that most events
// update a row that exists, as in a steady stream.

type benchEvent struct {
	key string
	rev revguard.Revision
}

func benchExtract(e benchEvent) (string, revguard.Revision, error) { return e.key, e.rev, nil }

func noop(context.Context, benchEvent) error { return nil }

const benchKeys = 1000

// rawUpsert is what a consumer writes by hand: the revision check and the
// write in one statement, on a plain table.
const rawUpsert = `INSERT INTO %[1]s (k, rev) VALUES ($1, $2)
ON CONFLICT (k) DO UPDATE SET rev = excluded.rev WHERE %[1]s.rev < excluded.rev`

const rawBatch = `INSERT INTO %[1]s (k, rev) SELECT * FROM unnest($1::text[], $2::bigint[])
ON CONFLICT (k) DO UPDATE SET rev = excluded.rev WHERE %[1]s.rev < excluded.rev`

// op handles events: one, or a batch.
type op func(events []benchEvent) error

// runner runs b.N operations of op and reports events/s.
type runner func(b *testing.B, op op)

func BenchmarkPostgres(b *testing.B) {
	db := openServer("pgx", envPostgres, "PostgreSQL", "?")(b, "")
	ctx := context.Background()
	store := newStore(b, db, sqlstore.Postgres)
	raw := "rgbench_" + randomHex(6)
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+raw+" (k text PRIMARY KEY, rev bigint NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _, _ = db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+raw) })
	upsert, batchUpsert := fmt.Sprintf(rawUpsert, raw), fmt.Sprintf(rawBatch, raw)

	rawOne := func(e []benchEvent) error {
		_, err := db.ExecContext(ctx, upsert, e[0].key, int64(e[0].rev))
		return err
	}
	handle := func(g *revguard.Guard[benchEvent]) op {
		return func(e []benchEvent) error {
			out, err := g.Handle(ctx, e[0], noop)
			return wantApplied(out, err)
		}
	}
	atMostOnce := revguard.New(store, benchExtract, revguard.WithMode(revguard.AtMostOnce))
	for _, conns := range []int{1, 8} {
		db.SetMaxOpenConns(conns)
		pair(b, fmt.Sprintf("Handle/conns=%d", conns), "AtMostOnce", perEvent(conns), rawOne, handle(atMostOnce))
	}
	db.SetMaxOpenConns(1)

	rawTx := func(e []benchEvent) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, upsert, e[0].key, int64(e[0].rev)); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	transactional := revguard.New(store, benchExtract, revguard.WithMode(revguard.Transactional))
	pair(b, "Transactional", "Handle", perEvent(1), rawTx, handle(transactional))

	const size = 100
	claim := revguard.New(store, benchExtract)
	pair(b, "Batch100/conns=1", "ClaimHandleBatch", perBatch(size, 1), rawMany(db, batchUpsert), handleBatch(claim))
	// Eight goroutines, each on keys of its own: no two batches share a row,
	// so whatever they wait for is not each other's rows.
	db.SetMaxOpenConns(8)
	pair(b, "Batch100/conns=8", "ClaimHandleBatch", perBatch(size, 8), rawMany(db, batchUpsert), handleBatch(claim))
}

// rawMany is the raw batch: one unnest upsert of every event. Each call
// has its own arrays, so that goroutines may share it.
func rawMany(db *sql.DB, upsert string) op {
	return func(events []benchEvent) error {
		keys, revs := make([]string, len(events)), make([]int64, len(events))
		for i, e := range events {
			keys[i], revs[i] = e.key, int64(e.rev)
		}
		_, err := db.ExecContext(context.Background(), upsert, keys, revs)
		return err
	}
}

func handleBatch(g *revguard.Guard[benchEvent]) op {
	return func(events []benchEvent) error {
		for i, r := range g.HandleBatch(context.Background(), events, noop) {
			if err := wantApplied(r.Outcome, r.Err); err != nil {
				return fmt.Errorf("event %d: %w", i, err)
			}
		}
		return nil
	}
}

// pair runs raw and revguard as sub-benchmarks of their own, then both
// alternately in one, which reports revguard's throughput as a share of
// raw's.
func pair(b *testing.B, name, guardName string, run runner, raw, guard op) {
	b.Run(name+"/raw", func(b *testing.B) { run(b, raw) })
	b.Run(name+"/"+guardName, func(b *testing.B) { run(b, guard) })
	b.Run(name+"/ratio", func(b *testing.B) {
		var calls atomic.Int64
		var spent [2]atomic.Int64
		var count [2]atomic.Int64
		run(b, func(events []benchEvent) error {
			which, f := 0, raw
			if calls.Add(1)%2 == 0 {
				which, f = 1, guard
			}
			start := time.Now()
			err := f(events)
			spent[which].Add(int64(time.Since(start)))
			count[which].Add(1)
			return err
		})
		if count[0].Load() == 0 || count[1].Load() == 0 {
			return
		}
		rawAvg := float64(spent[0].Load()) / float64(count[0].Load())
		guardAvg := float64(spent[1].Load()) / float64(count[1].Load())
		b.ReportMetric(rawAvg/guardAvg, "ratio")
		b.ReportMetric(rawAvg/1e3, "raw-µs/op")
		b.ReportMetric(guardAvg/1e3, "revguard-µs/op")
	})
}

func wantApplied(out revguard.Outcome, err error) error {
	if err == nil && out != revguard.Applied {
		err = fmt.Errorf("outcome %s, want applied", out)
	}
	return err
}

// perEvent runs b.N events over workers goroutines, each on keys of its own.
func perEvent(workers int) runner {
	return func(b *testing.B, handle op) {
		keys := workerKeys(workers)
		events := make([][]benchEvent, workers)
		for w := range events {
			events[w] = make([]benchEvent, 1)
		}
		testenv.Spread(b, workers, func(w, j int) error {
			e := events[w]
			e[0] = benchEvent{keys[w][j%benchKeys], revguard.Revision(j/benchKeys + 1)}
			if err := handle(e); err != nil {
				return fmt.Errorf("%s revision %d: %w", e[0].key, e[0].rev, err)
			}
			return nil
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	}
}

// perBatch runs b.N batches of size events over workers goroutines, each
// with benchKeys keys of its own, a batch's keys distinct.
func perBatch(size, workers int) runner {
	return func(b *testing.B, handle op) {
		keys := workerKeys(workers)
		events := make([][]benchEvent, workers)
		for w := range events {
			events[w] = make([]benchEvent, size)
		}
		testenv.Spread(b, workers, func(w, j int) error {
			for i := range events[w] {
				n := j*size + i
				events[w][i] = benchEvent{keys[w][n%benchKeys], revguard.Revision(n/benchKeys + 1)}
			}
			if err := handle(events[w]); err != nil {
				return fmt.Errorf("batch %d: %w", j, err)
			}
			return nil
		})
		b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
	}
}

// workerKeys returns benchKeys keys for each of workers goroutines, new on
// every call.
func workerKeys(workers int) [][]string {
	prefix := randomHex(4)
	keys := make([][]string, workers)
	for w := range keys {
		keys[w] = make([]string, benchKeys)
		for k := range keys[w] {
			keys[w][k] = fmt.Sprintf("%s/w%d/account-%d", prefix, w, k)
		}
	}
	return keys
}
