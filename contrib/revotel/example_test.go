package revotel_test

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revotel"
)

type PriceChanged struct {
	Product  string
	Revision uint64
}

func ExampleInstrument() {
	reader := sdkmetric.NewManualReader()
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))

	// snippet:otel-instrument
	g := revguard.New(memstore.New(), func(e PriceChanged) (string, revguard.Revision, error) {
		return revguard.Key("product", e.Product), revguard.Revision(e.Revision), nil
	}, revguard.WithNamespace("alerts"), revotel.Instrument(revotel.WithMeterProvider(meters)))
	// snippet:end

	apply := func(_ context.Context, e PriceChanged) error {
		if e.Revision == 3 {
			return errors.New("alert service down")
		}
		return nil
	}
	for _, e := range []PriceChanged{{"42", 2}, {"42", 2}, {"42", 1}, {"42", 3}} {
		_, _ = g.Handle(context.Background(), e, apply)
	}

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	var lines []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "revguard.decisions" {
			for _, dp := range sum.DataPoints {
				lines = append(lines, fmt.Sprintf("%s{%s} %d", m.Name, dp.Attributes.Encoded(attribute.DefaultEncoder()), dp.Value))
			}
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// revguard.decisions{error.type=handler,revguard.mode=claim,revguard.namespace=alerts} 1
	// revguard.decisions{revguard.mode=claim,revguard.namespace=alerts,revguard.outcome=applied} 1
	// revguard.decisions{revguard.mode=claim,revguard.namespace=alerts,revguard.outcome=duplicate} 1
	// revguard.decisions{revguard.mode=claim,revguard.namespace=alerts,revguard.outcome=stale} 1
}
