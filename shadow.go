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
	var d Decision
	var err error
	d.Key, d.Revision, err = g.read(event)
	if err == nil {
		d.Outcome, d.Applied, d.Cached, err = g.handle(ctx, d.Key, d.Revision, event, func(ctx context.Context, e T) error {
			ran = true
			herr = h(ctx, e)
			return herr
		})
	}
	d.Err = err
	g.record(d, start)
	if !ran {
		herr = h(ctx, event)
	}
	return d.Outcome, herr
}
