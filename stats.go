package revguard

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"
)

// Stats counts a guard's decisions since it was made.
type Stats struct {
	Applied   uint64 // handler ran and its revision was recorded
	Duplicate uint64 // dropped: equal to the applied revision
	Stale     uint64 // dropped: below the applied revision
	// DeadLettered counts events whose handler returned a Permanent error
	// and that WithDeadLetter took.
	DeadLettered uint64
	InFlight     uint64 // refused with ErrInFlight
	Gap          uint64 // refused with ErrGap
	Invalid      uint64 // refused as bad input: ErrInvalidKey, ErrInvalidRevision, ErrInvalidEvent
	Failed       uint64 // every other error: handler failed, lease lost, store unreachable
	// Cached counts the drops (already in Duplicate and Stale) that the drop
	// cache answered without a store call.
	Cached uint64
}

// counters are padded apart: under many goroutines the applied and drop
// counters are hot and would otherwise share a cache line.
type counters struct {
	applied, duplicate, stale, deadLettered, inFlight, gap, invalid, failed, cached paddedCounter
}

type paddedCounter struct {
	atomic.Uint64
	_ [56]byte
}

// Stats returns a snapshot of the guard's counters.
func (g *Guard[T]) Stats() Stats {
	c := &g.stats
	return Stats{
		Applied: c.applied.Load(), Duplicate: c.duplicate.Load(), Stale: c.stale.Load(), DeadLettered: c.deadLettered.Load(),
		InFlight: c.inFlight.Load(), Gap: c.gap.Load(), Invalid: c.invalid.Load(), Failed: c.failed.Load(),
		Cached: c.cached.Load(),
	}
}

func isBadInput(err error) bool {
	return errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrInvalidRevision) || errors.Is(err, ErrInvalidEvent)
}

// record counts one decision and reports it to the observer and logger.
func (g *Guard[T]) record(ctx context.Context, d Decision, start time.Time) {
	c := &g.stats
	out, err := d.Outcome, d.Err
	level := slog.LevelWarn
	switch {
	case err == nil && out == Applied:
		c.applied.Add(1)
		level = slog.LevelDebug
	case err == nil && out == Duplicate:
		c.duplicate.Add(1)
		level = slog.LevelInfo
	case err == nil && out == DeadLettered:
		c.deadLettered.Add(1)
	case err == nil:
		c.stale.Add(1)
		level = slog.LevelInfo
	case errors.Is(err, ErrInFlight):
		c.inFlight.Add(1)
		level = slog.LevelInfo
	case errors.Is(err, ErrGap):
		c.gap.Add(1)
		level = slog.LevelInfo
	case isBadInput(err):
		c.invalid.Add(1)
	default:
		c.failed.Add(1)
	}
	if !g.watch {
		return
	}
	d.Namespace, d.Duration, d.Mode = g.cfg.namespace, time.Since(start), g.cfg.mode
	key, st := d.Key, d.Applied
	if g.cfg.observer != nil {
		g.cfg.observer(d)
	}
	if g.cfg.hooks.Decided != nil {
		g.cfg.hooks.Decided(ctx, d)
	}
	if l := g.cfg.logger; l != nil && l.Enabled(context.Background(), level) {
		msg := "revguard: " + out.String()
		attrs := []slog.Attr{slog.String("key", key), slog.Uint64("revision", uint64(d.Revision)), slog.Duration("took", d.Duration)}
		if st.Exists {
			attrs = append(attrs, slog.Uint64("applied", uint64(st.Applied)))
		}
		if d.Cached {
			attrs = append(attrs, slog.Bool("cached", true))
		}
		if err != nil {
			msg = "revguard: not acknowledged"
			attrs = append(attrs, slog.Any("error", err))
		}
		if d.Namespace != "" {
			attrs = append(attrs, slog.String("namespace", d.Namespace))
		}
		l.LogAttrs(context.Background(), level, msg, attrs...)
	}
}
