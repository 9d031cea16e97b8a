package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Exit codes: a failure (the store refused, could not be reached, or a
// preflight check failed) is 1; a command line that cannot be run as
// written is 2, as with package flag's own errors.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a command line that cannot be run as written. Its message
// says what to change.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errReported is a failure the command has already printed (preflight's
// FAIL line, an aborted confirmation): run only sets the exit code.
var errReported = errors.New("reported")

// stdio is where a command reads and writes. They are files, not writers,
// because what is printed depends on whether they are terminals.
type stdio struct {
	in, out, err *os.File
}

func main() {
	// go-redis logs each failed dial on its own; the command reports the
	// error once, with what it was doing.
	redis.SetLogger(quiet{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(code)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// run runs one command line and returns its exit code.
func run(ctx context.Context, args []string, std stdio) int {
	err := dispatch(ctx, args, std)
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(std.err, "revguard: %s\n", ue.msg)
		return exitUsage
	case errors.Is(err, errReported):
		return exitFailure
	}
	fmt.Fprintf(std.err, "revguard: %s\n", err)
	return exitFailure
}
