package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/revguard/revguard"
)

var benchCmd = &command{
	name:     "bench",
	synopsis: "-store URL [-d DURATION] [-c GOROUTINES] [-mode claim|atmostonce]",
	summary:  "measure a guard against the raw store call it replaces",
	about: `Bench runs a guard on the store for -d at -c goroutines, then the raw call
a consumer without revguard would make for the same events, for -d again,
and prints the events per second of each and their ratio. Each goroutine
owns 100 keys and cycles through them with rising revisions, so every event
applies, as in a steady stream.

The raw call is the write the guard's decision replaces: the consumer
recording the entity's last revision itself, unconditionally, in one round
trip. On Redis that is HSET of one field on a key of its own; on SQL a
single-row upsert into a scratch table. The guard does more (in Claim mode,
a claim before the handler and a commit after; in AtMostOnce one
conditional advance), which is what the ratio shows.

It writes in a namespace (or scratch table) of its own, named
revguard-bench-<random>, and removes what it wrote when it ends, also when
interrupted. While it runs, a progress bar is drawn on stderr if stderr is
a terminal.`,
	example: "revguard bench -store redis://localhost:6379 -d 10s -c 16",
	flags: func(fs *flag.FlagSet, o *options) {
		o.store.register(fs, false)
		fs.DurationVar(&o.duration, "d", 5*time.Second, "how long each of the two runs lasts")
		fs.IntVar(&o.workers, "c", 8, "how many goroutines send events at once")
		fs.StringVar(&o.mode, "mode", "claim", "the guard's mode: claim or atmostonce")
	},
	run: runBench,
}

// keysPerWorker is how many keys each goroutine cycles through.
const keysPerWorker = 100

type benchEvent struct {
	key string
	rev revguard.Revision
}

// A raw is the baseline of one store: the call, and its cleanup.
type raw struct {
	name    string
	call    func(ctx context.Context, key string, rev revguard.Revision) error
	cleanup func(ctx context.Context) error
}

func runBench(ctx context.Context, o *options, args []string, std stdio) error {
	if err := noArgs("bench", args); err != nil {
		return err
	}
	if o.duration <= 0 {
		return usagef("-d %s: want a positive duration", o.duration)
	}
	if o.workers < 1 {
		return usagef("-c %d: want at least 1", o.workers)
	}
	var mode revguard.Mode
	switch strings.ToLower(o.mode) {
	case "claim":
		mode = revguard.Claim
	case "atmostonce", "at-most-once":
		mode = revguard.AtMostOnce
	default:
		return usagef("-mode %q: want claim or atmostonce (transactional runs the handler in the store's own transaction, which a benchmark of the store alone cannot show)", o.mode)
	}
	t, err := o.store.open(ctx, o.given)
	if err != nil {
		return err
	}
	defer t.close()
	if err := ready(ctx, t, o.store.timeout); err != nil {
		return err
	}

	ns := uniqueName("revguard-bench-")
	keys := make([][]string, o.workers)
	for w := range keys {
		keys[w] = make([]string, keysPerWorker)
		for i := range keys[w] {
			keys[w][i] = "w" + strconv.Itoa(w) + ":" + strconv.Itoa(i)
		}
	}
	// Cleanup runs on a context of its own: an interrupted bench still
	// removes what it wrote.
	cleanCtx := context.WithoutCancel(ctx)

	g := revguard.New(t.store, func(e benchEvent) (string, revguard.Revision, error) { return e.key, e.rev, nil },
		revguard.WithNamespace(ns), revguard.WithMode(mode))
	defer forgetAll(cleanCtx, t.store, ns, keys, std)
	noop := func(context.Context, benchEvent) error { return nil }

	r, err := newRaw(ctx, t, o.store.prefix, ns, keys)
	if err != nil {
		return err
	}
	defer func() {
		if err := r.cleanup(cleanCtx); err != nil {
			fmt.Fprintf(std.err, "revguard: bench: cleaning up the raw run: %v\n", err)
		}
	}()

	fmt.Fprintf(std.out, "bench %s: %d goroutines, %s per run, namespace %s\n", t.desc, o.workers, o.duration, ns)
	guardName := "guard (" + mode.String() + ")"
	guardRate, err := measure(ctx, guardName, o, keys, std, func(ctx context.Context, key string, rev revguard.Revision) error {
		_, err := g.Handle(ctx, benchEvent{key, rev}, noop)
		return err
	})
	if err != nil {
		return err
	}
	rawRate, err := measure(ctx, r.name, o, keys, std, r.call)
	if err != nil {
		return err
	}
	fmt.Fprintf(std.out, "%-19s %9.0f events/s\n", guardName, guardRate)
	fmt.Fprintf(std.out, "%-19s %9.0f events/s\n", r.name, rawRate)
	if rawRate > 0 {
		fmt.Fprintf(std.out, "%-19s %9.2f\n", "ratio guard/raw", guardRate/rawRate)
	}
	return nil
}

// ready refuses a SQL store whose table is missing or not the store's:
// bench would fail on its first event, after creating its scratch table.
func ready(ctx context.Context, t *target, timeout time.Duration) error {
	p, ok := t.store.(preflighter)
	if t.db == nil || !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := p.Preflight(ctx); err != nil {
		return fmt.Errorf("bench: the store's table is not ready (revguard preflight tells more; -table names another):\n%w", err)
	}
	return nil
}

// measure sends events through call from o.workers goroutines for
// o.duration and returns the events per second. It stops at the first
// error, which it returns.
func measure(ctx context.Context, name string, o *options, keys [][]string, std stdio, call func(context.Context, string, revguard.Revision) error) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var (
		done     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	start := time.Now()
	stopBar := progress(std, name, start, o.duration, &done)
	for w := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				err := call(ctx, keys[w][i%keysPerWorker], revguard.Revision(i/keysPerWorker+1))
				if err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { firstErr = err; cancel() })
					}
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopBar()
	if firstErr != nil {
		return 0, fmt.Errorf("bench: %s: %w", name, firstErr)
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return 0, fmt.Errorf("bench: %s: %w", name, err)
	}
	return float64(done.Load()) / elapsed.Seconds(), nil
}

// forgetAll removes every key the guard wrote, a goroutine per worker's
// keys.
func forgetAll(ctx context.Context, s revguard.Store, ns string, keys [][]string, std stdio) {
	var wg sync.WaitGroup
	var (
		failed   atomic.Int64
		errOnce  sync.Once
		firstErr error
	)
	for _, ks := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, k := range ks {
				if err := s.Forget(ctx, ns, k); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		fmt.Fprintf(std.err, "revguard: bench: %d keys of namespace %s could not be forgotten, the first: %v\n", n, ns, firstErr)
	}
}

// progress draws a bar on stderr, when it is a terminal, until the
// returned function is called.
func progress(std stdio, name string, start time.Time, d time.Duration, done *atomic.Int64) func() {
	if !isTerminal(std.err) {
		return func() {}
	}
	const width = 30
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			el := time.Since(start)
			n := min(int(float64(width)*el.Seconds()/d.Seconds()), width)
			fmt.Fprintf(std.err, "\r[%s%s] %-22s %5.1fs/%s %d events", strings.Repeat("=", n), strings.Repeat(" ", width-n), name, el.Seconds(), d, done.Load())
			select {
			case <-stop:
				fmt.Fprint(std.err, "\r\x1b[K") // clear the line
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(stop); <-finished }
}

// uniqueName is prefix and 8 random hex digits: a namespace or table no
// other run uses.
func uniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return prefix + hex.EncodeToString(b[:])
}
