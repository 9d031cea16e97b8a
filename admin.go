package revguard

import "context"

// Applied returns the entity's applied revision; ok is false when nothing
// has been applied to it.
func (g *Guard[T]) Applied(ctx context.Context, key string) (rev Revision, ok bool, err error) {
	if err := CheckKey(key); err != nil {
		return 0, false, err
	}
	st, err := g.store.Peek(ctx, g.cfg.namespace, key)
	return st.Applied, st.Exists, err
}

// SetApplied makes rev the entity's applied revision, lower or higher than
// before, and cancels any claim on it. It repairs an entity poisoned by a
// bogus revision, or starts one at a known point.
func (g *Guard[T]) SetApplied(ctx context.Context, key string, rev Revision) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	g.cache.invalidate()
	defer g.cache.invalidate()
	return g.store.Set(ctx, g.cfg.namespace, key, rev)
}

// Forget removes the entity, so that any revision applies to it again.
func (g *Guard[T]) Forget(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	g.cache.invalidate()
	defer g.cache.invalidate()
	return g.store.Forget(ctx, g.cfg.namespace, key)
}
