package revguard_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
)

// The benchmarks of the Redis and SQL backends, each beside its raw baseline,
// live in those packages, where their servers are set up.

func BenchmarkMemstore(b *testing.B) {
	ctx := context.Background()
	nop := func(context.Context, event) error { return nil }
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "product:" + strconv.Itoa(i)
	}
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		b.Run("Handle/"+mode.String(), func(b *testing.B) {
			g := revguard.New(memstore.New(), extract, revguard.WithMode(mode))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := g.Handle(ctx, event{Key: keys[i%len(keys)], Rev: revguard.Revision(i)}, nop); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run("Handle/"+mode.String()+"/parallel", func(b *testing.B) {
			g := revguard.New(memstore.New(), extract, revguard.WithMode(mode))
			var workers atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				// Each goroutine has keys of its own, as partitioned consumers do.
				own := keys[(workers.Add(1)%16)*64:][:64]
				for r := 1; pb.Next(); r++ {
					if _, err := g.Handle(ctx, event{Key: own[r%len(own)], Rev: revguard.Revision(r)}, nop); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
	b.Run("Handle/drop", func(b *testing.B) {
		g := revguard.New(memstore.New(), extract)
		for _, k := range keys {
			_, _ = g.Handle(ctx, event{Key: k, Rev: 100}, nop)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			out, err := g.Handle(ctx, event{Key: keys[i%len(keys)], Rev: revguard.Revision(99 + i%2)}, nop)
			if err != nil || out == revguard.Applied {
				b.Fatal(out, err)
			}
		}
	})
	b.Run("HandleBatch100", func(b *testing.B) {
		g := revguard.New(memstore.New(), extract)
		batch := make([]event, 100)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			for j := range batch {
				batch[j] = event{Key: keys[j], Rev: revguard.Revision(i)}
			}
			for _, r := range g.HandleBatch(ctx, batch, nop) {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
		b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
	})
}
