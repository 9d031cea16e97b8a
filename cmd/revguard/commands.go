package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// A command is one subcommand: its flags, its help and what it runs.
type command struct {
	name     string
	synopsis string // what follows "revguard NAME" in the usage line
	summary  string // one line, for the command list
	about    string // a paragraph, for "revguard help NAME"
	example  string
	flags    func(fs *flag.FlagSet, o *options)
	run      func(ctx context.Context, o *options, args []string, std stdio) error
}

// options holds every command's flags; each command registers the ones it
// takes.
type options struct {
	store    storeFlags
	given    map[string]bool // flags set on the command line
	json     bool
	yes      bool
	match    string
	limit    int
	metrics  string
	metric   string
	interval time.Duration
	count    int
	duration time.Duration
	workers  int
	mode     string
}

var commands = []*command{getCmd, setCmd, forgetCmd, scanCmd, preflightCmd, watchCmd, benchCmd}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

const usageHead = `revguard shows and repairs what a revguard store holds: each entity's
applied revision and the claim in force on it.

Usage:
  revguard COMMAND -store URL [-namespace NS] [flags] ARGS

Commands:
`

//nolint:gosec // G101: user:pass is a placeholder in the usage text
const usageStores = `
Stores (-store URL, or $REVGUARD_STORE):
  redis://[user:pass@]host[:6379][/db]        one server; rediss:// for TLS
  redis+sentinel://host1:26379,host2:26379/MASTER[/db]
  redis+cluster://host1:7001,host2:7002       (or ?addr=host:port, repeated)
  postgres://user:pass@host:5432/db           postgresql:// too
  mysql://user:pass@host:3306/db              MySQL and MariaDB
  sqlite:/path/to/file.db
-prefix (Redis, default "revguard:") and -table (SQL, default
"revguard_revisions") name the store's keys or table as the consumers'
options do. Flags may come before or after the arguments.
Exit status: 0 done, 1 failed (or preflight FAIL), 2 bad command line.
`

// usage is the text of "revguard help": every command, with one example each.
func usage() string {
	var b strings.Builder
	b.WriteString(usageHead)
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(&b, "  %-10s %s\n", "help", "this text; help COMMAND shows a command's flags")
	b.WriteString(usageStores)
	b.WriteString("\nExamples:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %s\n", c.example)
	}
	return b.String()
}

func dispatch(ctx context.Context, args []string, std stdio) error {
	if len(args) == 0 {
		fmt.Fprint(std.err, usage())
		return usagef("no command given")
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		return help(rest, std)
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprint(std.err, usage())
		return usagef("unknown command %q (see the list above)", name)
	}
	o, fs := c.flagSet()
	pos, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		c.printHelp(std.out, fs)
		return err
	}
	if err != nil {
		return usagef("%s: %v (revguard help %s lists its flags)", c.name, err, c.name)
	}
	fs.Visit(func(f *flag.Flag) { o.given[f.Name] = true })
	return c.run(ctx, o, pos, std)
}

func help(args []string, std stdio) error {
	if len(args) == 0 {
		fmt.Fprint(std.out, usage())
		return nil
	}
	c := lookup(args[0])
	if c == nil {
		return usagef("help: unknown command %q (revguard help lists them)", args[0])
	}
	_, fs := c.flagSet()
	c.printHelp(std.out, fs)
	return nil
}

func (c *command) flagSet() (*options, *flag.FlagSet) {
	o := &options{given: map[string]bool{}}
	fs := flag.NewFlagSet("revguard "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by run
	c.flags(fs, o)
	return o, fs
}

func (c *command) printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: revguard %s %s\n\n%s\n\nExample:\n  %s\n\nFlags:\n", c.name, c.synopsis, c.about, c.example)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// noArgs refuses arguments to a command that takes none: a misplaced
// value, such as a -match pattern the shell split.
func noArgs(cmd string, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments (got %q)", cmd, args)
	}
	return nil
}

// parseInterspersed parses flags wherever they stand among the arguments,
// so that "get KEY -json" works as "get -json KEY" does, and returns the
// arguments. After "--" everything is an argument, for keys that start
// with '-'.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}
