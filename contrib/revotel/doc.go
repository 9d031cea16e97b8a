// Package revotel reports a revguard guard's decisions to OpenTelemetry:
// metrics of every decision and a span per Handle or HandleBatch call.
//
//	g := revguard.New(store, extract, revotel.Instrument())
//
// [Instrument] uses the global providers unless [WithMeterProvider] and
// [WithTracerProvider] say otherwise, so a program that sets up
// OpenTelemetry once needs nothing more.
//
// # Metrics
//
// revguard.decisions ({decision}) counts decisions, one per event.
// revguard.decision.duration (s) is the time from reading an event to its
// decision, store calls and handler included; revguard.handler.duration
// (s) the time its handler ran, for events whose handler ran. The
// histograms' buckets run from 50µs to 10s. Every one carries:
//
//   - revguard.namespace and revguard.mode (claim, atmostonce, transactional);
//   - revguard.outcome (applied, duplicate, stale, dead_lettered) when the
//     event may be acknowledged, or else error.type: in_flight, gap,
//     lease_lost, invalid (ErrInvalidKey, ErrInvalidRevision,
//     ErrInvalidEvent), handler (the handler or the dead-letter callback
//     failed) or store (a store call failed);
//   - revguard.cached, true, on drops the drop cache answered.
//
// A store's failure is a *[revguard.StoreError], which the guard makes of a
// failed store call (a Transactional transaction included, when it failed
// on its own); any other error is the handler's.
//
// # Spans
//
// Handle makes a span "revguard handle", HandleBatch "revguard batch"
// (with revguard.batch.size), both of kind internal and children of the
// span in the caller's context: the transport's instrumentation owns the
// consumer span of a message, and the guard is a step within it. Store
// calls and the handler run in the span's context. Each store call is an
// event "revguard.store" (revguard.store.op, revguard.store.requests,
// revguard.store.duration in seconds, error.type when it failed). A Handle
// span carries the decision: revguard.key.hash (see [KeyHash]; revguard.key
// with [WithRawKeys]), revguard.revision, revguard.applied (the revision
// applied before, if any; revisions are decimal strings, since a uint64
// does not fit OpenTelemetry's int64), revguard.outcome or error.type,
// revguard.cached, revguard.namespace and revguard.mode. Its status is
// Error when the event may not be acknowledged, never for a drop. A batch
// span carries an event "revguard.decision" per event with the same
// attributes, not links: links join spans of other traces, and the events
// of a batch are results of this one.
//
// Attribute names follow the OpenTelemetry semantic conventions v1.43.0
// (go.opentelemetry.io/otel/semconv/v1.43.0) where one exists (error.type,
// exception.message, units in seconds), and are revguard's own otherwise.
// The messaging conventions' messaging.process.duration and
// messaging.client.consumed.messages are left to the transport's
// instrumentation, which knows the messaging system and destination they
// require: revguard sees neither.
//
// # Prometheus
//
// The OpenTelemetry Prometheus exporter serves these metrics as
// revguard_decisions_total, revguard_decision_duration_seconds and
// revguard_handler_duration_seconds, with the attributes' dots made
// underscores (revguard_outcome, error_type, …):
//
//	reg := prometheus.NewRegistry()
//	exporter, err := otelprom.New(otelprom.WithRegisterer(reg)) // go.opentelemetry.io/otel/exporters/prometheus
//	...
//	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
//	g := revguard.New(store, extract, revotel.Instrument(revotel.WithMeterProvider(meters)))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The program in example/prometheus does this.
package revotel
