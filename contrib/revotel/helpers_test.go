package revotel_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/contrib/revotel"
)

type event struct {
	Key string
	Rev uint64
}

func extract(e event) (string, revguard.Revision, error) {
	if e.Rev == 0 {
		return e.Key, 0, fmt.Errorf("%w: no revision", revguard.ErrInvalidRevision)
	}
	return e.Key, revguard.Revision(e.Rev), nil
}

func apply(context.Context, event) error { return nil }

// telemetry is an SDK pipeline that keeps everything in memory.
type telemetry struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
}

func newTelemetry(t testing.TB) *telemetry {
	tel := &telemetry{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	return tel
}

// instrument is revotel.Instrument sending to tel.
func (tel *telemetry) instrument(opts ...revotel.Option) revguard.Option {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	return revotel.Instrument(append([]revotel.Option{revotel.WithMeterProvider(mp), revotel.WithTracerProvider(tel.tp)}, opts...)...)
}

func (tel *telemetry) metric(t testing.TB, name string) metricdata.Aggregation {
	var rm metricdata.ResourceMetrics
	require.NoError(t, tel.reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, revotel.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m.Data
			}
		}
	}
	return nil
}

// decisions returns revguard.decisions by attribute set, each written
// "key=value,…" with its keys in order.
func (tel *telemetry) decisions(t testing.TB) map[string]int64 {
	got := map[string]int64{}
	sum, ok := tel.metric(t, "revguard.decisions").(metricdata.Sum[int64])
	require.True(t, ok, "revguard.decisions is an int64 sum")
	require.True(t, sum.IsMonotonic)
	for _, dp := range sum.DataPoints {
		got[encode(dp.Attributes)] = dp.Value
	}
	return got
}

// histogram returns the counts of a histogram by attribute set.
func (tel *telemetry) histogram(t testing.TB, name string) map[string]uint64 {
	h, ok := tel.metric(t, name).(metricdata.Histogram[float64])
	require.True(t, ok, "%s is a float64 histogram", name)
	got := map[string]uint64{}
	for _, dp := range h.DataPoints {
		got[encode(dp.Attributes)] = dp.Count
	}
	return got
}

func encode(s attribute.Set) string { return s.Encoded(attribute.DefaultEncoder()) }

// faultyStore is a store that fails the calls it is told to.
type faultyStore struct {
	revguard.Store
	claim, commit error
}

func (s *faultyStore) Claim(ctx context.Context, req revguard.Request) (revguard.Reply, error) {
	if s.claim != nil {
		return revguard.Reply{}, s.claim
	}
	return s.Store.Claim(ctx, req)
}

func (s *faultyStore) Commit(ctx context.Context, ns, key string, token revguard.Token) error {
	if s.commit != nil {
		return s.commit
	}
	return s.Store.Commit(ctx, ns, key, token)
}

// txStore gives a store the Transactional mode, without a transaction's
// rollback: enough to see what the hooks are told.
type txStore struct {
	revguard.Store
	fail error // Transact fails with it before running fn
}

func (s *txStore) Transact(ctx context.Context, req revguard.Request, fn func(context.Context) error) (revguard.Reply, error) {
	if s.fail != nil {
		return revguard.Reply{}, s.fail
	}
	rep, err := s.Claim(ctx, req)
	if err != nil || rep.Verdict != revguard.Granted {
		return rep, err
	}
	return rep, fn(ctx)
}

var errDown = errors.New("store down")
