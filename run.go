package revguard

import (
	"context"
	"slices"
	"sync"
)

// run runs the handler of every job still undecided (those the store
// granted), up to WithBatchConcurrency of them at once, and sets each one's
// outcome or error. An AtMostOnce job is then decided; a Claim job waits for
// its commit. Jobs name distinct entities, so handlers running at once never
// share an entity. A panicking handler's panic goes on in the caller once
// the others have returned.
func (g *Guard[T]) run(ctx context.Context, jobs []job[T], h Handler[T]) {
	if g.cfg.concurrency <= 1 || len(jobs) == 1 {
		for i := range jobs {
			g.runJob(ctx, &jobs[i], h)
		}
		return
	}
	g.runConcurrent(ctx, jobs, h)
}

// runConcurrent is run with up to WithBatchConcurrency goroutines. They work
// on a copy of jobs, so that Handle's one job, which never comes here, can
// stay on its caller's stack.
func (g *Guard[T]) runConcurrent(ctx context.Context, jobs []job[T], h Handler[T]) {
	work := slices.Clone(jobs)
	defer copy(jobs, work)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		panicked any
		sem      = make(chan struct{}, g.cfg.concurrency)
	)
	for i := range work {
		j := &work[i]
		if j.done {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					mu.Lock()
					if panicked == nil {
						panicked = p
					}
					mu.Unlock()
				}
				<-sem
				wg.Done()
			}()
			g.runJob(ctx, j, h)
		}()
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
}

func (g *Guard[T]) runJob(ctx context.Context, j *job[T], h Handler[T]) {
	if j.done {
		return
	}
	dead, took, err := g.timedCall(ctx, h, j.event)
	j.took = took
	j.out, j.err = appliedOr(dead), err
	if err != nil {
		j.out = 0
	}
	j.done = g.cfg.mode == AtMostOnce
}

func appliedOr(deadLettered bool) Outcome {
	if deadLettered {
		return DeadLettered
	}
	return Applied
}
