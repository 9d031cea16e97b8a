package revotel_test

import (
	"context"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revotel"
)

// BenchmarkHandle is the cost of instrumenting a decision on memstore, the
// cheapest store, beside the same guard without it:
//
//	go test -run '^$' -bench Handle -benchtime 1s -count 3 .
//
// observer is an empty WithObserver, for the clock reads any watcher of a
// guard costs it; sampled records every span (the SDK with AlwaysSample, no
// exporter); unsampled records metrics but no span (NeverSample); noop is
// the API's no-op providers.
func BenchmarkHandle(b *testing.B) {
	sdkMeters := func() revotel.Option {
		return revotel.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())))
	}
	for _, bc := range []struct {
		name string
		opts []revguard.Option
	}{
		{"none", nil},
		{"observer", []revguard.Option{revguard.WithObserver(func(revguard.Decision) {})}},
		{"sampled", []revguard.Option{revotel.Instrument(sdkMeters(),
			revotel.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))))}},
		{"unsampled", []revguard.Option{revotel.Instrument(sdkMeters(),
			revotel.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))))}},
		{"noop", []revguard.Option{revotel.Instrument(revotel.WithMeterProvider(metricnoop.NewMeterProvider()),
			revotel.WithTracerProvider(tracenoop.NewTracerProvider()))}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := revguard.New(memstore.New(), extract, bc.opts...)
			keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := g.Handle(ctx, event{keys[i%len(keys)], uint64(i + 1)}, apply); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
