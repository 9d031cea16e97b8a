package revguard

import (
	"context"
)

// handleShadow is Handle under WithShadow: the guard decides as usual, but
// the handler runs whatever it decides and only its error is returned.
func (g *Guard[T]) handleShadow(ctx context.Context, event T, h Handler[T]) (Outcome, error) {
	if h == nil {
		return 0, errNilHandler
	}
	ctx, start, end := g.watchStart(ctx, false, 1)
	if end != nil {
		defer end()
	}
	ran := false
	var herr error
	var one [1]job[T]
	j := &one[0]
	if g.prepare(j, event) {
		g.decide(ctx, one[:], func(ctx context.Context, e T) error {
			ran = true
			herr = h(ctx, e)
			return herr
		})
	}
	g.record(ctx, j.decision(), start)
	if !ran {
		herr = h(ctx, event)
	}
	return j.out, herr
}
