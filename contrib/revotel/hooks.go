package revotel

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/revguard/revguard"
)

// instrumentation is what one Instrument call made: the guard's hooks.
type instrumentation struct {
	*meters
	tracer trace.Tracer
	raw    bool // WithRawKeys
}

// call is one Handle or HandleBatch call under way. It is the context Begin
// returns, wrapping the one that carries the span, so that the other hooks
// find it in their context without a context.WithValue of its own.
type call struct {
	context.Context
	in        *instrumentation
	span      trace.Span
	recording bool
	batch     bool       // HandleBatch
	events    int        // how many events the call has
	table     *attrTable // the guard's namespace and mode

	mu   sync.Mutex
	errs int // decisions with an error, for a batch's status
}

type callKey struct{}

func (c *call) Value(key any) any {
	if key == (callKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// callFrom returns the call of the hooks' context; nil only if the guard
// did not pass the context Begin returned.
func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

func (in *instrumentation) begin(ctx context.Context, rc revguard.Call) (context.Context, func()) {
	ctx, span, t := in.startSpan(ctx, rc)
	c := &call{Context: ctx, in: in, span: span, recording: span.IsRecording(), batch: rc.Batch, events: rc.Events, table: t}
	return c, c.end
}

// store makes an event of the call on a recording span. Store calls have no metric of their own: a
// decision's duration less its handler's is the guard's time, most of it
// spent in store calls, and recording each call would cost every decision
// twice what counting it does.
func (in *instrumentation) store(ctx context.Context, op string, n int, took time.Duration, err error) {
	if c := callFrom(ctx); c != nil && c.recording {
		c.storeEvent(op, n, took, err)
	}
}

func (in *instrumentation) decided(ctx context.Context, d revguard.Decision) {
	c := callFrom(ctx)
	var t *attrTable
	if c != nil {
		t = c.table
	} else {
		t = in.table(d.Namespace, d.Mode)
	}
	errType := -1
	if d.Err != nil {
		errType = errorType(d.Err)
	}
	m := t.lookup(&d, errType)
	in.record(ctx, &d, &m)
	if c == nil {
		return
	}
	if c.batch && d.Err != nil {
		c.mu.Lock()
		c.errs++
		c.mu.Unlock()
	}
	if c.recording {
		c.decision(&d, t, &m, errType)
	}
}

func (c *call) end() {
	if c.batch && c.recording {
		c.endBatch()
	}
	c.span.End()
}
