package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/revguard/revguard"
)

var getCmd = &command{
	name:     "get",
	synopsis: "-store URL [-namespace NS] [-json] KEY...",
	summary:  "show each KEY's applied revision and the claim in force",
	about: `Get shows, for each KEY, the applied revision ("-": nothing applied) and
the claim in force, if any: the revision claimed, the claim's token and the
lease it has left. -json prints one object a line instead:
{"namespace","key","exists","applied","claim":{"revision","token","lease_left_ms"}},
revisions as decimal strings, applied and claim null when absent.`,
	example: "revguard get -store redis://localhost:6379 -namespace orders order:42 order:43",
	flags: func(fs *flag.FlagSet, o *options) {
		o.store.register(fs, true)
		fs.BoolVar(&o.json, "json", false, "print one JSON object a line")
	},
	run: runGet,
}

func runGet(ctx context.Context, o *options, keys []string, std stdio) error {
	if len(keys) == 0 {
		return usagef("get: name at least one KEY")
	}
	for _, k := range keys {
		if err := revguard.CheckKey(k); err != nil {
			return usagef("get: %v", err)
		}
	}
	t, in, err := o.store.openInspector(ctx, o.given)
	if err != nil {
		return err
	}
	defer t.close()
	ctx, cancel := context.WithTimeout(ctx, o.store.timeout)
	defer cancel()
	w := newEntityWriter(std.out, o.store.namespace, o.json, true)
	for _, k := range keys {
		e, err := in.Inspect(ctx, o.store.namespace, k)
		if err != nil {
			_ = w.flush()
			return fmt.Errorf("get %s: %w", displayKey(k), explain(err))
		}
		e.Key = k
		if err := w.write(e); err != nil {
			return err
		}
	}
	return w.flush()
}
