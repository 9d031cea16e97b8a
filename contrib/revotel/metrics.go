package revotel

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/revguard/revguard"
)

// Attribute keys of the metrics, which spans carry too.
const (
	outcomeKey   = attribute.Key("revguard.outcome")
	namespaceKey = attribute.Key("revguard.namespace")
	modeKey      = attribute.Key("revguard.mode")
	cachedKey    = attribute.Key("revguard.cached")
	errorTypeKey = semconv.ErrorTypeKey
)

// buckets are the histograms' bucket boundaries, in seconds: from 50µs, a
// decision on memstore or a local Redis round trip, to 10s, a slow
// handler. A View set on the SDK's MeterProvider can replace them.
var buckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// meters holds the instruments, made once per Instrument call, and the
// attribute sets they record with, made once per namespace and mode: a
// decision looks its set up rather than building it.
type meters struct {
	decisions    metric.Int64Counter
	decisionTime metric.Float64Histogram
	handlerTime  metric.Float64Histogram

	last   atomic.Pointer[attrTable] // the table used last: nearly always the one wanted
	tables sync.Map                  // guardKey → *attrTable
}

func newMeters(m metric.Meter) *meters {
	ms := &meters{}
	var err error
	ms.decisions, err = m.Int64Counter("revguard.decisions", metric.WithUnit("{decision}"),
		metric.WithDescription("Decisions a guard made, one per event: its outcome, or the type of error that keeps the event from being acknowledged."))
	handle(err)
	ms.decisionTime, err = m.Float64Histogram("revguard.decision.duration", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(buckets...),
		metric.WithDescription("Time from reading an event to its decision, store calls and handler included (in a batch, from the start of the batch)."))
	handle(err)
	ms.handlerTime, err = m.Float64Histogram("revguard.handler.duration", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(buckets...),
		metric.WithDescription("Time the handler ran, for the events whose handler ran."))
	handle(err)
	return ms
}

// record counts one decision.
func (ms *meters) record(ctx context.Context, d *revguard.Decision, m *measure) {
	ms.decisions.Add(ctx, 1, m.add...)
	ms.decisionTime.Record(ctx, d.Duration.Seconds(), m.rec...)
	if d.HandlerTime > 0 {
		ms.handlerTime.Record(ctx, d.HandlerTime.Seconds(), m.rec...)
	}
}

// handle reports an error making an instrument to OpenTelemetry's error
// handler, as its own instrumentation does: the instrument returned with it
// is still safe to use.
func handle(err error) {
	if err != nil {
		otel.Handle(err)
	}
}

type guardKey struct {
	namespace string
	mode      revguard.Mode
}

// attrTable holds the attribute sets of one namespace and mode.
type attrTable struct {
	guardKey
	namespace, mode attribute.KeyValue
	handleStart     []trace.SpanStartOption               // a Handle span's, built once
	outcomes        [revguard.DeadLettered + 1][2]measure // by Outcome, then cached
	errors          [numErrTypes]measure
}

// measure is one attribute set, ready to pass to the instruments.
type measure struct {
	attr attribute.KeyValue // revguard.outcome or error.type
	add  []metric.AddOption
	rec  []metric.RecordOption
}

func (ms *meters) table(ns string, mode revguard.Mode) *attrTable {
	k := guardKey{ns, mode}
	if t := ms.last.Load(); t != nil && t.guardKey == k {
		return t
	}
	t, ok := ms.tables.Load(k)
	if !ok {
		t, _ = ms.tables.LoadOrStore(k, newTable(k))
	}
	ms.last.Store(t.(*attrTable))
	return t.(*attrTable)
}

func newTable(k guardKey) *attrTable {
	t := &attrTable{
		guardKey:  k,
		namespace: namespaceKey.String(k.namespace),
		mode:      modeKey.String(strings.ToLower(k.mode.String())),
	}
	t.handleStart = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(t.namespace, t.mode)}
	for o := revguard.Applied; o <= revguard.DeadLettered; o++ {
		t.outcomes[o][0] = t.measure(outcomeKey.String(outcomeName(o)), false)
		t.outcomes[o][1] = t.outcomes[o][0]
		if o == revguard.Duplicate || o == revguard.Stale {
			t.outcomes[o][1] = t.measure(t.outcomes[o][0].attr, true)
		}
	}
	for e := range t.errors {
		t.errors[e] = t.measure(errorTypeKey.String(errTypeNames[e]), false)
	}
	return t
}

func (t *attrTable) measure(attr attribute.KeyValue, cached bool) measure {
	attrs := []attribute.KeyValue{t.namespace, t.mode, attr}
	if cached {
		attrs = append(attrs, cachedKey.Bool(true))
	}
	opt := metric.WithAttributeSet(attribute.NewSet(attrs...))
	return measure{attr: attr, add: []metric.AddOption{opt}, rec: []metric.RecordOption{opt}}
}

// lookup returns the measure of decision d, whose error, if any, is of
// type errType.
func (t *attrTable) lookup(d *revguard.Decision, errType int) measure {
	if d.Err != nil {
		return t.errors[errType]
	}
	if d.Outcome < revguard.Applied || int(d.Outcome) >= len(t.outcomes) {
		return t.measure(outcomeKey.String(outcomeName(d.Outcome)), d.Cached) // an outcome newer than this package
	}
	if d.Cached {
		return t.outcomes[d.Outcome][1]
	}
	return t.outcomes[d.Outcome][0]
}

// outcomeName is the outcome as an attribute value: dead_lettered, where
// Outcome.String says dead-lettered, to match the other values' style.
func outcomeName(o revguard.Outcome) string {
	return strings.ReplaceAll(o.String(), "-", "_")
}
