package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"
)

var watchCmd = &command{
	name:     "watch",
	synopsis: "(-store URL [-namespace NS] [-match GLOB] [-limit N] | -metrics URL) [-interval D] [-n COUNT]",
	summary:  "live entity and claim counts, or a consumer's decision rates (-metrics)",
	about: `Watch refreshes every -interval until interrupted (SIGINT, SIGTERM) or after
-n refreshes. On a terminal it clears and redraws a small table; otherwise it
prints one line per refresh, for logs and scripts.

With -store it scans the namespace each time (bounded by -limit: a count at
the limit shows as N+) and shows how many entities it holds, how many claims
are in force, and the claims nearest to expiry: a live consumer renews its
lease every third of it, so a claim with less than two thirds left is
likely held by a consumer that died or hangs.

With -metrics it reads a consumer's Prometheus endpoint instead (the
contrib/revotel metrics through the OpenTelemetry Prometheus exporter) and
shows the revguard_decisions_total counters, by outcome, error type,
namespace, mode and cached, with their rate per second over the last
interval. -namespace, when given, keeps that namespace's series only.`,
	example: "revguard watch -metrics http://consumer:9464/metrics -interval 5s",
	flags: func(fs *flag.FlagSet, o *options) {
		o.store.register(fs, true)
		scanFlags(fs, o, 10000)
		fs.StringVar(&o.metrics, "metrics", "", "read decision counters from this Prometheus `URL` instead of the store")
		fs.StringVar(&o.metric, "metric", "revguard_decisions_total", "with -metrics: the counter's `name`")
		fs.DurationVar(&o.interval, "interval", 2*time.Second, "time between refreshes")
		fs.IntVar(&o.count, "n", 0, "stop after `COUNT` refreshes; 0 runs until interrupted")
	},
	run: runWatch,
}

// A view is what watch shows: each poll returns a frame.
type view interface {
	source() string // what is watched, for the header
	poll(ctx context.Context) (frame, error)
}

type frame struct {
	line   string // one line, when stdout is not a terminal
	screen string // the table a terminal shows
}

func runWatch(ctx context.Context, o *options, args []string, std stdio) error {
	if err := noArgs("watch", args); err != nil {
		return err
	}
	if o.interval <= 0 {
		return usagef("-interval %s: want a positive duration", o.interval)
	}
	if o.count < 0 {
		return usagef("-n %d: want 0 (until interrupted) or more", o.count)
	}
	var v view
	if o.metrics != "" {
		if o.given["store"] {
			return usagef("watch: -metrics reads a consumer's counters and -store a store: give one of them")
		}
		mv, err := newMetricsView(o)
		if err != nil {
			return err
		}
		v = mv
	} else {
		if err := checkScanFlags(o); err != nil {
			return err
		}
		t, in, err := o.store.openInspector(ctx, o.given)
		if err != nil {
			return err
		}
		defer t.close()
		v = &storeView{in: in, desc: t.desc, ns: o.store.namespace, match: o.match, limit: o.limit}
	}
	return watch(ctx, v, o.interval, o.count, std)
}

// watch polls v every interval, count times (0: until ctx ends), and
// draws each frame. A failed poll is shown and polling goes on; if the
// last one failed, watch returns an error.
func watch(ctx context.Context, v view, interval time.Duration, count int, std stdio) error {
	tty := isTerminal(std.out)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last error
	for i := 0; count == 0 || i < count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
		f, err := v.poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		last = err
		now := time.Now()
		if err != nil {
			f = frame{line: "error: " + err.Error(), screen: "error: " + err.Error() + "\n"}
		}
		if tty {
			fmt.Fprintf(std.out, "%srevguard watch %s, every %s, %s (refresh %d)\n\n%s",
				clearScreen, v.source(), interval, now.Format("15:04:05"), i+1, f.screen)
		} else {
			fmt.Fprintf(std.out, "%s %s\n", now.Format(time.RFC3339), f.line)
		}
	}
	if last != nil {
		return errReported
	}
	return nil
}

// rate formats a per-second rate, or "-" when there is none yet.
func rate(r float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.1f/s", r)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// joinFields is a log line's key=value fields.
func joinFields(fields ...string) string { return strings.Join(fields, " ") }
