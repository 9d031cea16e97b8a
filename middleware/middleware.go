package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/revguard/revguard"
)

// OutcomeHeader is the response header that tells the sender why its
// delivery was dropped: "duplicate" or "stale" ([revguard.Outcome.String]).
const OutcomeHeader = "Revision-Outcome"

// HTTP returns middleware that runs the handler it wraps through g.Handle:
// the handler sees each entity's events once and in revision order, and the
// sender gets the answer that makes it stop or retry. The package
// documentation lists every response. The inner handler's status decides the
// claim: a 2xx, 3xx or a 4xx that no retry can cure (or no status, which
// net/http sends as 200) commits the revision; a 5xx, a 408, 425 or 429, a
// panic, or a body that went past [WithMaxBody]'s limit while the handler
// read it (whatever the handler answered) releases it, so that the
// sender's retry runs the handler again.
//
// Request bodies are limited to WithMaxBody's size, for the extractor and
// for the inner handler alike. Extractors read the options (the body limit,
// [WithMaxFutureSkew], [WithClock]) from the request, so the same guard may
// serve several differently configured middlewares.
//
// HTTP panics if g is nil, and the returned function panics if the handler
// is nil.
func HTTP(g *revguard.Guard[*http.Request], opts ...Option) func(http.Handler) http.Handler {
	if g == nil {
		panic("middleware.HTTP: nil Guard")
	}
	cfg := newConfig(kindHTTP, opts)
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("middleware.HTTP: nil http.Handler")
		}
		return &guarded{g: g, next: next, cfg: cfg}
	}
}

type guarded struct {
	g    *revguard.Guard[*http.Request]
	next http.Handler
	cfg  *config
}

// exchange is what one request needs, in one allocation.
type exchange struct {
	next   http.Handler
	rw     responseWriter
	body   body
	noBody bool // the request came without a body, and the inner handler must see it so
	ran    bool // the inner handler was called
}

func (h *guarded) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Refused before any store call: an oversized request changes nothing.
	if r.ContentLength > h.cfg.maxBody {
		h.tooLarge(w, fmt.Sprintf("Content-Length %d is above the limit of %d bytes", r.ContentLength, h.cfg.maxBody))
		return
	}
	orig := r.Body
	x := &exchange{next: h.next, rw: responseWriter{w: w}, body: body{src: orig, cfg: h.cfg, limit: h.cfg.maxBody}}
	if orig == nil || orig == http.NoBody {
		x.body.src, x.noBody = http.NoBody, true
	}
	r.Body = &x.body
	if h.cfg.replay != nil {
		// The fingerprint covers the whole body, read once under the
		// limit; the inner handler then reads it intact.
		body, err := ReadBody(r)
		if err != nil {
			r.Body = orig
			h.fail(w, err)
			return
		}
		x.rw.rec = &recording{sum: fingerprint(r, body), keep: h.cfg.replay.headers, max: h.cfg.replay.maxBody}
	}
	out, kept, err := h.decide(r, x)
	if errors.Is(err, revguard.ErrInFlight) && h.cfg.waitInFlight > 0 {
		out, kept, err = h.waitInFlight(r, x, err)
	}
	r.Body = orig
	switch {
	case x.rw.sent():
		// The inner response stands whatever happened after it: a failed
		// commit leaves the revision unrecorded, so a redelivery of it runs
		// the handler again, as at-least-once delivery allows.
	case err == nil && x.ran:
		// The handler sent nothing and net/http answers 200 for it.
	case err == nil && out == revguard.Duplicate && kept != nil:
		h.replay(w, x.rw.rec.sum, kept)
	case err == nil:
		h.drop(w, out)
	default:
		h.fail(w, err)
	}
}

// decide runs the request through the guard, keeping the response with
// WithReplay.
func (h *guarded) decide(r *http.Request, x *exchange) (revguard.Outcome, []byte, error) {
	if h.cfg.replay != nil {
		return h.g.HandleReply(r.Context(), r, x.serveReply)
	}
	out, err := h.g.Handle(r.Context(), r, x.serve)
	return out, nil, err
}

// waitInFlight asks the guard again, at growing intervals, while another
// delivery of the entity holds its claim, for up to WithWaitInFlight: once
// the first has finished, the repeat gets its kept response (or the drop
// answer); if the first failed, the repeat's own claim runs the handler.
func (h *guarded) waitInFlight(r *http.Request, x *exchange, err error) (revguard.Outcome, []byte, error) {
	deadline := time.Now().Add(h.cfg.waitInFlight)
	pause := 5 * time.Millisecond
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return 0, nil, err
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-r.Context().Done():
			t.Stop()
			return 0, nil, err
		case <-t.C:
		}
		pause = min(2*pause, 250*time.Millisecond)
		x.body.rewind() // an extractor that read it reads it again
		out, kept, e := h.decide(r, x)
		if !errors.Is(e, revguard.ErrInFlight) {
			return out, kept, e
		}
		err = e
	}
}

// serveReply is serve for WithReplay: the response it returns is kept with
// the revision, unless it was streamed or too large to keep.
func (x *exchange) serveReply(ctx context.Context, r *http.Request) ([]byte, error) {
	if err := x.serve(ctx, r); err != nil {
		return nil, err
	}
	if rec := x.rw.rec; rec.over || rec.streamed || x.rw.hijacked {
		// The fingerprint alone, so that a repeat with another request
		// still gets 422.
		return encodeReplay(rec.sum, noResponse, nil, nil, nil), nil
	}
	rec := x.rw.rec
	return encodeReplay(rec.sum, x.rw.code(), x.rw.Header(), rec.keep, rec.body), nil
}

// serve runs the inner handler as the guard's Handler. A panic is not
// recovered: the guard releases the claim as it passes, and net/http (or the
// application's recovery middleware) gets the original value and stack.
func (x *exchange) serve(ctx context.Context, r *http.Request) error {
	x.ran = true
	// The guard's context ends when the claim is lost; the handler should
	// stop then.
	if ctx != r.Context() {
		r = r.WithContext(ctx)
	}
	if x.noBody {
		r.Body = http.NoBody
	}
	x.next.ServeHTTP(&x.rw, r)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(x.body.err, &tooBig):
		// The handler saw a body cut at the limit, whatever it answered
		// (often a 413 of its own): the event it carried was not handled.
		return fmt.Errorf("middleware: the body went past the limit of %d bytes (the handler answered %d)", tooBig.Limit, x.rw.code())
	case !commits(x.rw.code()):
		return fmt.Errorf("middleware: the handler answered %d", x.rw.code())
	}
	return nil
}

// commits reports whether an inner response with this status records the
// revision: 2xx and 3xx, and the 4xx that no retry of the same request can
// cure (400, 401, 403, 404, 409, 410, 422, ...), so that the sender's retry
// is dropped. 5xx, and the 4xx that ask the sender to come back (408
// Request Timeout, 425 Too Early, 429 Too Many Requests), release the
// claim, so that the retry runs the handler again.
func commits(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return status < 500
}

func (h *guarded) drop(w http.ResponseWriter, out revguard.Outcome) {
	w.Header().Set(OutcomeHeader, out.String())
	w.WriteHeader(h.cfg.drop)
}

// fail answers an error from the guard that the inner handler did not
// answer itself. Anything it does not recognise is a store failure: 503,
// never 500, so that the sender retries.
func (h *guarded) fail(w http.ResponseWriter, err error) {
	var fe *FieldError
	detail := ""
	if errors.As(err, &fe) {
		detail = fe.detail()
	}
	switch {
	case errors.Is(err, ErrBodyTooLarge):
		h.tooLarge(w, "the body is "+detail)
	case errors.Is(err, revguard.ErrInvalidKey):
		writeProblem(w, http.StatusBadRequest, typeInvalidKey, "Invalid entity key", or(detail, err, revguard.ErrInvalidKey))
	case errors.Is(err, revguard.ErrInvalidRevision):
		writeProblem(w, http.StatusBadRequest, typeInvalidRevision, "Invalid revision", or(detail, err, revguard.ErrInvalidRevision))
	case errors.Is(err, revguard.ErrInvalidEvent):
		writeProblem(w, http.StatusBadRequest, typeInvalidEvent, "Unusable event", or(detail, err, revguard.ErrInvalidEvent))
	case errors.Is(err, revguard.ErrInFlight):
		h.retry(w, http.StatusConflict, typeInFlight, "Another delivery of this entity is in flight", reason(err, revguard.ErrInFlight))
	case errors.Is(err, revguard.ErrGap):
		h.retry(w, http.StatusConflict, typeGap, "Earlier revisions must be applied first", reason(err, revguard.ErrGap))
	case errors.Is(err, revguard.ErrLeaseLost):
		h.retry(w, http.StatusConflict, typeLeaseLost, "The claim on this entity was lost", "the revision was not recorded")
	default:
		// The store's error may name hosts and addresses; the sender needs
		// none of it. The guard's logger and observer see it whole.
		h.retry(w, http.StatusServiceUnavailable, typeBlank, "Service Unavailable", "the revision store could not be reached")
	}
}

// or returns detail, or else err's message without the sentinel's.
func or(detail string, err, sentinel error) string {
	if detail != "" {
		return detail
	}
	return reason(err, sentinel)
}

func (h *guarded) retry(w http.ResponseWriter, status int, typ, title, detail string) {
	w.Header().Set("Retry-After", h.cfg.retryAfter)
	writeProblem(w, status, typ, title, detail+"; retry in "+h.cfg.retryAfter+"s")
}

func (h *guarded) tooLarge(w http.ResponseWriter, detail string) {
	// The rest of a large body is not worth reading just to keep the
	// connection.
	w.Header().Set("Connection", "close")
	writeProblem(w, http.StatusRequestEntityTooLarge, typeBodyTooLarge, "Request body too large", detail)
}
