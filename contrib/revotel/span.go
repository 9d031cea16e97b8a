package revotel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/revguard/revguard"
)

// Span names and the keys of the attributes only spans carry.
const (
	handleSpan = "revguard handle"
	batchSpan  = "revguard batch"

	keyKey       = attribute.Key("revguard.key")
	keyHashKey   = attribute.Key("revguard.key.hash")
	revisionKey  = attribute.Key("revguard.revision")
	appliedKey   = attribute.Key("revguard.applied")
	batchSizeKey = attribute.Key("revguard.batch.size")
	opKey        = attribute.Key("revguard.store.op")
	requestsKey  = attribute.Key("revguard.store.requests")
	tookKey      = attribute.Key("revguard.store.duration")
	messageKey   = attribute.Key("exception.message")

	storeEvent    = "revguard.store"
	decisionEvent = "revguard.decision"
)

// The span is internal, not a consumer span: the transport's own
// instrumentation makes the consumer ("process") span of a message, and
// revguard's is a step inside it, as a database call or a middleware is.

// startSpan starts the call's span with the guard's namespace and mode, so
// that a sampler sees them.
func (in *instrumentation) startSpan(ctx context.Context, rc revguard.Call) (context.Context, trace.Span, *attrTable) {
	t := in.table(rc.Namespace, rc.Mode)
	if !rc.Batch {
		ctx, span := in.tracer.Start(ctx, handleSpan, t.handleStart...)
		return ctx, span, t
	}
	ctx, span := in.tracer.Start(ctx, batchSpan, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(t.namespace, t.mode, batchSizeKey.Int(rc.Events)))
	return ctx, span, t
}

func (c *call) storeEvent(op string, n int, took time.Duration, err error) {
	attrs := make([]attribute.KeyValue, 3, 5)
	attrs[0], attrs[1], attrs[2] = opKey.String(op), requestsKey.Int(n), tookKey.Float64(took.Seconds())
	if err != nil {
		attrs = append(attrs, errorTypeKey.String(storeErrorType(op, err)))
		if c.in.raw {
			attrs = append(attrs, messageKey.String(err.Error()))
		}
	}
	c.span.AddEvent(storeEvent, trace.WithAttributes(attrs...))
}

// decision puts d on the span: as its attributes and status for Handle, as
// an event for HandleBatch. A drop is not an error.
func (c *call) decision(d *revguard.Decision, t *attrTable, m *measure, errType int) {
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs, c.in.key(d.Key), revisionKey.String(d.Revision.String()), m.attr)
	if d.Applied.Exists {
		attrs = append(attrs, appliedKey.String(d.Applied.Applied.String()))
	}
	if d.Cached {
		attrs = append(attrs, cachedKey.Bool(true))
	}
	if c.batch {
		if d.Err != nil && c.in.raw {
			attrs = append(attrs, messageKey.String(d.Err.Error()))
		}
		c.span.AddEvent(decisionEvent, trace.WithAttributes(attrs...))
		return
	}
	c.span.SetAttributes(attrs...)
	if d.Err != nil {
		desc := errTypeNames[errType]
		if c.in.raw {
			desc = d.Err.Error()
		}
		c.span.SetStatus(codes.Error, desc)
	}
}

// endBatch gives a batch's span what it learnt from the decisions.
func (c *call) endBatch() {
	c.mu.Lock()
	errs := c.errs
	c.mu.Unlock()
	if errs > 0 {
		c.span.SetStatus(codes.Error, strconv.Itoa(errs)+" of "+strconv.Itoa(c.events)+" events not acknowledged")
	}
}

// key is the key's attribute: its hash, or itself under WithRawKeys.
func (in *instrumentation) key(key string) attribute.KeyValue {
	if in.raw {
		return keyKey.String(key)
	}
	return keyHashKey.String(KeyHash(key))
}

// KeyHash returns what spans carry in revguard.key.hash for key: the hex
// of the first 8 bytes of its SHA-256. Compute it to find a key's spans.
func KeyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}
