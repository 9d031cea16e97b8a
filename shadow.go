package revguard

import (
	"context"
	"time"
)

// handleShadow is Handle under WithShadow: the guard decides as usual, but
// the handler runs whatever it decides and only its error is returned.
func (g *Guard[T]) handleShadow(ctx context.Context, event T, h Handler[T]) (Outcome, error) {
	if h == nil {
		return 0, errNilHandler
	}
	var start time.Time
	if g.watch {
		start = time.Now()
	}
	ran := false
	var herr error
	key, rev, err := g.read(event)
	var out Outcome
	var st State
	if err == nil {
		out, st, err = g.handle(ctx, key, rev, event, func(ctx context.Context, e T) error {
			ran = true
			herr = h(ctx, e)
			return herr
		})
	}
	g.record(key, rev, st, out, err, start)
	if !ran {
		herr = h(ctx, event)
	}
	return out, herr
}
