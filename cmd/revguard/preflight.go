package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

var preflightCmd = &command{ //nolint:gosec // G101: the example DSNs in its help hold placeholders
	name:     "preflight",
	synopsis: "-store URL [-prefix P | -table T]",
	summary:  "run the store's safety checks; exit 1 on FAIL",
	about: `Preflight runs the store's own safety checks and prints a verdict line,
"ok: ..." with exit status 0 or one "FAIL: ..." line per problem with exit
status 1. Redis (redisstore Preflight, on every master of a cluster): a
maxmemory-policy that may evict revisions; a master without an append-only
file gets a "note:" line, which does not fail. SQL (sqlstore Preflight): the
table exists with the columns and types the store writes. A store that
cannot be reached fails too.`,
	example: `revguard preflight -store "mysql://app:$DB_PASSWORD@db:3306/app" -table revguard_revisions`,
	flags: func(fs *flag.FlagSet, o *options) {
		o.store.register(fs, false)
	},
	run: runPreflight,
}

// preflighter is a store with safety checks of its own.
type preflighter interface {
	Preflight(ctx context.Context) error
}

func runPreflight(ctx context.Context, o *options, args []string, std stdio) error {
	if err := noArgs("preflight", args); err != nil {
		return err
	}
	t, err := o.store.open(ctx, o.given)
	var ue *usageError
	if errors.As(err, &ue) {
		return err
	}
	if err != nil {
		return fail(std, err)
	}
	defer t.close()
	p, ok := t.store.(preflighter)
	if !ok {
		return fail(std, fmt.Errorf("%T has no preflight checks", t.store))
	}
	ctx, cancel := context.WithTimeout(ctx, o.store.timeout)
	defer cancel()
	if t.rdb != nil {
		for _, n := range persistenceNotes(ctx, t.rdb) {
			fmt.Fprintf(std.out, "note: %s\n", n)
		}
	}
	if err := p.Preflight(ctx); err != nil {
		return fail(std, err)
	}
	what := "its maxmemory-policy does not evict revisions"
	if t.db != nil {
		what = "table " + t.table + " has the columns and types the store writes"
	}
	fmt.Fprintf(std.out, "ok: %s store at %s: %s\n", t.kind(), t.desc, what)
	return nil
}

// fail prints one FAIL line per problem in err (errors.Join puts each on a
// line of its own).
func fail(std stdio, err error) error {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(std.out, "FAIL: %s\n", line)
	}
	return errReported
}

// persistenceNotes says which masters keep no append-only file. It is a
// note, not a failure: redisstore's Preflight leaves persistence to the
// operator (RDB snapshots alone may be a choice), but a restart of such a
// server loses the revisions written since its last snapshot, and their
// events apply again.
func persistenceNotes(ctx context.Context, rdb redis.UniversalClient) []string {
	var (
		mu    sync.Mutex
		notes []string
	)
	check := func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			return nil // Preflight reports a server it cannot read
		}
		for line := range strings.SplitSeq(info, "\n") {
			if strings.TrimSpace(line) == "aof_enabled:0" {
				mu.Lock()
				notes = append(notes, fmt.Sprintf("appendonly is off on %s: a restart loses the revisions written since the last RDB snapshot, and their events apply again", c.Options().Addr))
				mu.Unlock()
			}
		}
		return nil
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		_ = c.ForEachMaster(ctx, check)
	case *redis.Client:
		_ = check(ctx, c)
	}
	slices.Sort(notes)
	return notes
}
