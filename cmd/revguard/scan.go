package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path"

	"github.com/revguard/revguard"
)

var scanCmd = &command{
	name:     "scan",
	synopsis: "-store URL [-namespace NS] [-match GLOB] [-limit N] [-json]",
	summary:  "list a namespace's entities, their revisions and claims",
	about: `Scan lists the entities of the namespace whose keys match -match (a
path.Match pattern: * ? [a-z], \ escapes), in no particular order, as a table
or, with -json, one object a line as get prints them. It reads the store a
page at a time (SCAN in Redis, keyset pages in SQL), printing as it goes,
and stops after -limit entities (0: no limit), saying so on stderr.`,
	example: `revguard scan -store redis+cluster://10.0.0.1:7001,10.0.0.2:7001 -namespace orders -match 'order:4*' -limit 50`,
	flags: func(fs *flag.FlagSet, o *options) {
		o.store.register(fs, true)
		scanFlags(fs, o, 1000)
		fs.BoolVar(&o.json, "json", false, "print one JSON object a line")
	},
	run: runScan,
}

func scanFlags(fs *flag.FlagSet, o *options, limit int) {
	fs.StringVar(&o.match, "match", "", "only keys matching this path.Match `pattern` (* does not cross /); the default is every key")
	fs.IntVar(&o.limit, "limit", limit, "stop after `N` entities; 0 is no limit")
}

// checkScanFlags refuses a bad -match or -limit before any I/O.
func checkScanFlags(o *options) error {
	if _, err := path.Match(o.match, ""); err != nil {
		return usagef("-match %q: %v", o.match, err)
	}
	if o.limit < 0 {
		return usagef("-limit %d: want 0 (no limit) or more", o.limit)
	}
	return nil
}

// errLimit stops a scan that reached -limit.
var errLimit = errors.New("limit reached")

// scanUpTo calls fn for at most limit entities (0: all) and reports
// whether more matched.
func scanUpTo(ctx context.Context, in revguard.Inspector, ns, match string, limit int, fn func(revguard.Entity) error) (more bool, err error) {
	n := 0
	err = in.Scan(ctx, ns, match, func(e revguard.Entity) error {
		if limit > 0 && n == limit {
			more = true
			return errLimit
		}
		n++
		return fn(e)
	})
	if errors.Is(err, errLimit) {
		err = nil
	}
	return more, err
}

func runScan(ctx context.Context, o *options, args []string, std stdio) error {
	if err := noArgs("scan", args); err != nil {
		return err
	}
	if err := checkScanFlags(o); err != nil {
		return err
	}
	t, in, err := o.store.openInspector(ctx, o.given)
	if err != nil {
		return err
	}
	defer t.close()
	w := newEntityWriter(std.out, o.store.namespace, o.json, false)
	n := 0
	more, err := scanUpTo(ctx, in, o.store.namespace, o.match, o.limit, func(e revguard.Entity) error {
		n++
		return w.write(e)
	})
	if ferr := w.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("scan of namespace %q: %w", o.store.namespace, explain(err))
	}
	switch {
	case more:
		fmt.Fprintf(std.err, "scan: stopped after -limit %d entities; more match (-limit 0 lists all)\n", o.limit)
	case n == 0:
		fmt.Fprintf(std.err, "scan: no entity of namespace %q matches %q\n", o.store.namespace, o.match)
	}
	return nil
}
