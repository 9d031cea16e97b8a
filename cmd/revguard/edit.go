package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/revguard/revguard"
)

var setCmd = &command{
	name:     "set",
	synopsis: "-store URL [-namespace NS] [-yes] KEY REV",
	summary:  "make REV the applied revision of KEY (asks first, or -yes)",
	about: `Set makes REV (a decimal integer or an RFC 3339 timestamp, read as
revguard.ParseRevision reads it) the applied revision of KEY, lower or
higher than before, and drops any claim on it: the repair for an entity
poisoned by a bogus revision. It shows what the store holds and asks on the
terminal first; -yes skips the question, and is required when stdin is not
a terminal. It prints the entity before → after.

Consumers that keep a drop cache (revguard.WithDropCache) do not see a
lowered revision until they restart.`,
	example: "revguard set -store postgres://localhost/app -namespace orders order:42 41",
	flags:   editFlags,
	run:     runSet,
}

var forgetCmd = &command{
	name:     "forget",
	synopsis: "-store URL [-namespace NS] [-yes] KEY",
	summary:  "remove KEY, so that any revision applies again (asks first, or -yes)",
	about: `Forget removes KEY from the store, its claim with it: the next event of any
revision applies. It asks on the terminal first, like set, unless -yes.`,
	example: "revguard forget -store sqlite:/var/lib/app/revs.db -yes order:42",
	flags:   editFlags,
	run:     runForget,
}

func editFlags(fs *flag.FlagSet, o *options) {
	o.store.register(fs, true)
	fs.BoolVar(&o.yes, "yes", false, "change the store without asking")
}

func runSet(ctx context.Context, o *options, args []string, std stdio) error {
	if len(args) != 2 {
		return usagef("set: want KEY REV, got %d arguments", len(args))
	}
	key := args[0]
	if err := revguard.CheckKey(key); err != nil {
		return usagef("set: %v", err)
	}
	rev, err := revguard.ParseRevision(args[1])
	if err != nil {
		return usagef("set: REV: %v", err)
	}
	return edit(ctx, o, std, "set", key, "applied "+rev.String(), func(ctx context.Context, t *target) error {
		return t.store.Set(ctx, o.store.namespace, key, rev)
	})
}

func runForget(ctx context.Context, o *options, args []string, std stdio) error {
	if len(args) != 1 {
		return usagef("forget: want one KEY, got %d arguments", len(args))
	}
	key := args[0]
	if err := revguard.CheckKey(key); err != nil {
		return usagef("forget: %v", err)
	}
	return edit(ctx, o, std, "forget", key, "nothing applied", func(ctx context.Context, t *target) error {
		return t.store.Forget(ctx, o.store.namespace, key)
	})
}

// edit reads key, asks whether to change it to want (unless -yes), makes
// the change and prints the entity before → after, both as read from the
// store.
func edit(ctx context.Context, o *options, std stdio, verb, key, want string, change func(context.Context, *target) error) error {
	// Refuse before any I/O: nobody can answer the question.
	if !o.yes && !isTerminal(std.in) {
		return usagef("%s: refusing to change the store: stdin is not a terminal, so there is no one to confirm; pass -yes", verb)
	}
	t, err := o.store.open(ctx, o.given)
	if err != nil {
		return err
	}
	defer t.close()
	ns := o.store.namespace
	name := fmt.Sprintf("%s (namespace %q)", displayKey(key), ns)

	rctx, cancel := context.WithTimeout(ctx, o.store.timeout)
	before, err := t.read(rctx, ns, key)
	cancel()
	if err != nil {
		return fmt.Errorf("%s: reading %s: %w", verb, name, explain(err))
	}
	if !o.yes {
		q := fmt.Sprintf("%s %s on %s: %s → %s", verb, name, t.desc, describe(before), want)
		if before.Claim != nil {
			q += ", dropping the claim (its holder's commit will fail with ErrLeaseLost)"
		}
		if err := confirm(std, q); err != nil {
			return err
		}
	}

	wctx, cancel := context.WithTimeout(ctx, o.store.timeout)
	defer cancel()
	if err := change(wctx, t); err != nil {
		return fmt.Errorf("%s %s: %w", verb, name, explain(err))
	}
	after, err := t.read(wctx, ns, key)
	if err != nil {
		return fmt.Errorf("%s %s: done, but reading it back: %w", verb, name, explain(err))
	}
	fmt.Fprintf(std.out, "%s: %s → %s\n", name, describe(before), describe(after))
	return nil
}

// errDeclined is the answer to a confirmation that was not yes.
var errDeclined = errors.New("not confirmed: nothing changed")

// confirm asks question on the terminal and returns nil if the answer is
// y or yes.
func confirm(std stdio, question string) error {
	fmt.Fprintf(std.err, "%s\nProceed? [y/N] ", question)
	line, err := bufio.NewReader(std.in).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(std.err)
		return errDeclined
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errDeclined
}
