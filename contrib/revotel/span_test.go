package revotel_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revotel"
)

// attrs returns a span's or an event's attributes by key.
func attrs(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// ended returns the spans named name that ended.
func (tel *telemetry) ended(name string) []sdktrace.ReadOnlySpan {
	var spans []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Name() == name {
			spans = append(spans, s)
		}
	}
	return spans
}

func TestSpanIsTheCallersChild(t *testing.T) {
	tel := newTelemetry(t)
	g := revguard.New(memstore.New(), extract, revguard.WithNamespace("ns"), tel.instrument())
	ctx, parent := tel.tp.Tracer("test").Start(context.Background(), "consume")
	var inHandler trace.SpanContext
	_, err := g.Handle(ctx, event{"customer:ada@example.com", 7}, func(ctx context.Context, e event) error {
		inHandler = trace.SpanContextFromContext(ctx)
		return nil
	})
	require.NoError(t, err)
	parent.End()

	spans := tel.ended("revguard handle")
	require.Len(t, spans, 1)
	s := spans[0]
	assert.Equal(t, parent.SpanContext().TraceID(), s.SpanContext().TraceID())
	assert.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID(), "the caller's span is the parent")
	assert.Equal(t, s.SpanContext().SpanID(), inHandler.SpanID(), "the handler runs in revguard's span")
	assert.Equal(t, trace.SpanKindInternal, s.SpanKind())
	assert.Equal(t, codes.Unset, s.Status().Code)
	assert.Equal(t, map[string]string{
		"revguard.key.hash":  revotel.KeyHash("customer:ada@example.com"),
		"revguard.revision":  "7",
		"revguard.outcome":   "applied",
		"revguard.namespace": "ns",
		"revguard.mode":      "claim",
	}, attrs(s.Attributes()), "the key is hashed")
	assert.Len(t, revotel.KeyHash("k"), 16)

	require.Len(t, s.Events(), 2, "one event per store call")
	for i, op := range []string{"claim", "commit"} {
		ev := s.Events()[i]
		assert.Equal(t, "revguard.store", ev.Name)
		a := attrs(ev.Attributes)
		assert.Equal(t, op, a["revguard.store.op"])
		assert.Equal(t, "1", a["revguard.store.requests"])
		assert.Contains(t, a, "revguard.store.duration")
		assert.NotContains(t, a, "error.type")
	}
}

func TestSpanStatus(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	g := revguard.New(memstore.New(), extract, tel.instrument())
	_, err := g.Handle(ctx, event{"k", 2}, apply)
	require.NoError(t, err)
	_, err = g.Handle(ctx, event{"k", 1}, apply)
	require.NoError(t, err)
	_, err = g.Handle(ctx, event{"k", 3}, func(context.Context, event) error { return errors.New(`no such account "k"`) })
	require.Error(t, err)

	spans := tel.ended("revguard handle")
	require.Len(t, spans, 3)
	assert.Equal(t, codes.Unset, spans[1].Status().Code, "a drop is no error")
	assert.Equal(t, "stale", attrs(spans[1].Attributes())["revguard.outcome"])
	assert.Equal(t, "2", attrs(spans[1].Attributes())["revguard.applied"])
	failed := spans[2]
	assert.Equal(t, sdktrace.Status{Code: codes.Error, Description: "handler"}, failed.Status(), "the error's type, not its message, which may quote the key")
	a := attrs(failed.Attributes())
	assert.Equal(t, "handler", a["error.type"])
	assert.NotContains(t, a, "revguard.outcome")
	assert.Equal(t, "release", attrs(failed.Events()[1].Attributes)["revguard.store.op"])
}

func TestSpanRawKeys(t *testing.T) {
	tel := newTelemetry(t)
	g := revguard.New(&faultyStore{Store: memstore.New(), claim: errors.New(`refused "k"`)}, extract, tel.instrument(revotel.WithRawKeys()))
	_, err := g.Handle(context.Background(), event{"k", 1}, apply)
	require.Error(t, err)

	spans := tel.ended("revguard handle")
	require.Len(t, spans, 1)
	s := spans[0]
	a := attrs(s.Attributes())
	assert.Equal(t, "k", a["revguard.key"])
	assert.NotContains(t, a, "revguard.key.hash")
	assert.Equal(t, "store", a["error.type"])
	assert.Equal(t, codes.Error, s.Status().Code)
	assert.Equal(t, err.Error(), s.Status().Description, "the message, under WithRawKeys")
	require.Len(t, s.Events(), 1)
	assert.Equal(t, map[string]string{
		"revguard.store.op":       "claim",
		"revguard.store.requests": "1",
		"revguard.store.duration": attrs(s.Events()[0].Attributes)["revguard.store.duration"],
		"error.type":              "store",
		"exception.message":       `refused "k"`,
	}, attrs(s.Events()[0].Attributes))
}

func TestBatchSpan(t *testing.T) {
	tel := newTelemetry(t)
	g := revguard.New(memstore.New(), extract, revguard.WithNamespace("ns"), tel.instrument())
	ctx, parent := tel.tp.Tracer("test").Start(context.Background(), "poll")
	res := g.HandleBatch(ctx, []event{{"a", 1}, {"b", 1}, {"a", 1}, {"", 1}}, apply)
	parent.End()
	require.Len(t, res, 4)

	require.Empty(t, tel.ended("revguard handle"))
	spans := tel.ended("revguard batch")
	require.Len(t, spans, 1)
	s := spans[0]
	assert.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID())
	assert.Equal(t, map[string]string{"revguard.batch.size": "4", "revguard.namespace": "ns", "revguard.mode": "claim"}, attrs(s.Attributes()))
	assert.Equal(t, sdktrace.Status{Code: codes.Error, Description: "1 of 4 events not acknowledged"}, s.Status())

	var decisions []map[string]string
	var ops []string
	for _, ev := range s.Events() {
		a := attrs(ev.Attributes)
		switch ev.Name {
		case "revguard.decision":
			decisions = append(decisions, a)
		case "revguard.store":
			ops = append(ops, a["revguard.store.op"]+":"+a["revguard.store.requests"])
		}
	}
	assert.Equal(t, []string{"claim:2", "commit:2"}, ops)
	hash := revotel.KeyHash
	assert.ElementsMatch(t, []map[string]string{
		{"revguard.key.hash": hash(""), "revguard.revision": "1", "error.type": "invalid"},
		{"revguard.key.hash": hash("a"), "revguard.revision": "1", "revguard.outcome": "applied"},
		{"revguard.key.hash": hash("a"), "revguard.revision": "1", "revguard.outcome": "duplicate"},
		{"revguard.key.hash": hash("b"), "revguard.revision": "1", "revguard.outcome": "applied"},
	}, decisions, "one event per result")
}

func TestNeverSampled(t *testing.T) {
	tel := newTelemetry(t)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(tel.spans))
	g := revguard.New(memstore.New(), extract, revguard.WithNamespace("ns"), tel.instrument(revotel.WithTracerProvider(tp)))
	_, err := g.Handle(context.Background(), event{"k", 1}, apply)
	require.NoError(t, err)
	assert.Empty(t, tel.spans.Ended())
	assert.Equal(t, map[string]int64{set("claim", "applied", false): 1}, tel.decisions(t), "metrics do not depend on sampling")
}

func TestTransactionSpan(t *testing.T) {
	tel := newTelemetry(t)
	g := revguard.New(&txStore{Store: memstore.New(), fail: errors.New("no connection")}, extract,
		revguard.WithMode(revguard.Transactional), tel.instrument())
	_, err := g.Handle(context.Background(), event{"k", 1}, apply)
	require.Error(t, err)

	spans := tel.ended("revguard handle")
	require.Len(t, spans, 1)
	a := attrs(spans[0].Attributes())
	assert.Equal(t, "transactional", a["revguard.mode"])
	assert.Equal(t, "store", a["error.type"], "the handler never ran")
	require.Len(t, spans[0].Events(), 1)
	ev := attrs(spans[0].Events()[0].Attributes)
	assert.Equal(t, "transact", ev["revguard.store.op"])
	assert.Equal(t, "store", ev["error.type"], "the guard marks a transaction's own failure as revguard.StoreError")
}
