package revotel

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/revguard/revguard"
)

// ScopeName is the instrumentation scope of the meter and tracer [Instrument]
// makes: it names them in exporters and selects them in SDK views.
const ScopeName = "github.com/revguard/revguard/contrib/revotel"

// Option configures [Instrument].
type Option func(*config)

type config struct {
	meters  metric.MeterProvider
	tracers trace.TracerProvider
	rawKeys bool
}

// WithMeterProvider sets the provider of the meter that records the metrics.
// The default is the global one, otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	if mp == nil {
		panic("revotel: WithMeterProvider(nil)")
	}
	return func(c *config) { c.meters = mp }
}

// WithTracerProvider sets the provider of the tracer that makes the spans.
// The default is the global one, otel.GetTracerProvider().
func WithTracerProvider(tp trace.TracerProvider) Option {
	if tp == nil {
		panic("revotel: WithTracerProvider(nil)")
	}
	return func(c *config) { c.tracers = tp }
}

// WithRawKeys puts entity keys on spans as they are, in revguard.key, and
// error messages, which quote keys, in span statuses and events. The
// default is revguard.key.hash, the hex of the first 8 bytes of the key's
// SHA-256, which tells keys apart without showing them: keys can carry
// personal data (a customer id, an email address), and traces are often
// kept longer and shown more widely than the data itself. Metrics never
// carry keys.
func WithRawKeys() Option {
	return func(c *config) { c.rawKeys = true }
}

// Instrument returns the option that makes a guard report its decisions to
// OpenTelemetry: a span per Handle or HandleBatch call, and the metrics
// revguard.decisions, revguard.decision.duration and
// revguard.handler.duration. Its instruments are made once, here, and are
// shared by every guard the option is given to.
func Instrument(opts ...Option) revguard.Option {
	var cfg config
	for _, o := range opts {
		if o == nil {
			panic("revotel: Instrument: nil Option")
		}
		o(&cfg)
	}
	if cfg.meters == nil {
		cfg.meters = otel.GetMeterProvider()
	}
	if cfg.tracers == nil {
		cfg.tracers = otel.GetTracerProvider()
	}
	in := &instrumentation{
		meters: newMeters(cfg.meters.Meter(ScopeName)),
		tracer: cfg.tracers.Tracer(ScopeName),
		raw:    cfg.rawKeys,
	}
	return revguard.WithHooks(revguard.Hooks{Begin: in.begin, Store: in.store, Decided: in.decided})
}
