package middleware

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Option configures [HTTP] or one of the signature middleware. Each option
// says which of them it applies to; giving one to a middleware it does not
// apply to panics when the middleware is built, so that a misplaced option
// is found at start-up rather than ignored.
type Option func(*config)

// DefaultMaxBody is the body size limit, in bytes, when [WithMaxBody] is not
// given, and the limit [ReadBody] applies outside the middleware.
const DefaultMaxBody = 1 << 20

// DefaultMaxFutureSkew is how far ahead of the clock a timestamp revision may
// lie when [WithMaxFutureSkew] is not given, also outside the middleware.
const DefaultMaxFutureSkew = 5 * time.Minute

type kind uint8

const (
	kindHTTP kind = iota + 1
	kindGitHub
	kindStripe
	kindReadBody
)

func (k kind) String() string {
	switch k {
	case kindHTTP:
		return "HTTP"
	case kindGitHub:
		return "GitHubSignature"
	case kindStripe:
		return "StripeSignature"
	case kindReadBody:
		return "ReadBody"
	case kindHMAC:
		return "HMACSignature"
	case kindSlack:
		return "SlackSignature"
	case kindShopify:
		return "ShopifySignature"
	case kindStandardWebhooks:
		return "StandardWebhooks"
	case kindStandardWebhooksPublicKey:
		return "StandardWebhooksPublicKey"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

type config struct {
	kind         kind
	maxBody      int64
	drop         int
	retryAfter   string // whole seconds
	skew         time.Duration
	now          func() time.Time
	tolerance    time.Duration
	secrets      [][]byte
	revisions    RevisionKind
	replay       *replayConfig // nil unless WithReplay
	waitInFlight time.Duration
}

// defaultConfig also serves extractors used without the middleware.
var defaultConfig = newConfig(kindHTTP, nil)

func newConfig(k kind, opts []Option) *config {
	c := &config{
		kind:       k,
		maxBody:    DefaultMaxBody,
		drop:       http.StatusOK,
		retryAfter: "1",
		skew:       DefaultMaxFutureSkew,
		now:        time.Now,
		tolerance:  5 * time.Minute,
	}
	for _, o := range opts {
		if o == nil {
			panic(fmt.Sprintf("middleware.%s: nil Option", k))
		}
		o(c)
	}
	return c
}

// only panics unless the middleware being configured is one of ks.
func (c *config) only(option string, ks ...kind) {
	for _, k := range ks {
		if c.kind == k {
			return
		}
	}
	panic(fmt.Sprintf("middleware.%s: %s does not apply to it", c.kind, option))
}

// WithMaxBody sets the largest request body, in bytes, that the middleware
// reads or lets the inner handler read; a larger one gets 413. It applies to
// [HTTP] and every signature middleware. The default is [DefaultMaxBody] (1
// MiB).
func WithMaxBody(n int64) Option {
	if n <= 0 {
		panic(fmt.Sprintf("middleware.WithMaxBody(%d): want a positive size", n))
	}
	return func(c *config) { c.maxBody = n }
}

// WithDropStatus sets the status of the response to a duplicate or stale
// delivery, which also carries the header Revision-Outcome. Any 2xx makes
// senders stop retrying, which is what a dropped event needs; a 4xx such as
// 409 suits senders that must be told. It applies to [HTTP]. The default is
// 200.
func WithDropStatus(code int) Option {
	if code < 200 || code > 499 {
		panic(fmt.Sprintf("middleware.WithDropStatus(%d): want a 2xx, 3xx or 4xx status", code))
	}
	return func(c *config) {
		c.only("WithDropStatus", kindHTTP)
		c.drop = code
	}
}

// WithRetryAfter sets the Retry-After of 409 (another delivery in flight, a
// revision gap) and 503 (store unreachable) responses, rounded up to whole
// seconds. It applies to [HTTP]. The default is 1s.
func WithRetryAfter(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("middleware.WithRetryAfter(%s): want a positive duration", d))
	}
	secs := (d + time.Second - 1) / time.Second
	v := strconv.FormatInt(int64(secs), 10)
	return func(c *config) {
		c.only("WithRetryAfter", kindHTTP)
		c.retryAfter = v
	}
}

// WithMaxFutureSkew sets how far ahead of the clock a revision read from a
// timestamp (ce-time, an RFC 3339 header or JSON string) may lie before the
// extractors refuse it with 400: one event stamped far in the future would
// otherwise make every later event of its entity stale. Counters (decimal
// revisions) are not bounded by it. 0 turns the check off. It applies to
// [HTTP]. The default is [DefaultMaxFutureSkew] (5 minutes).
func WithMaxFutureSkew(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("middleware.WithMaxFutureSkew(%s): want 0 (off) or a positive duration", d))
	}
	return func(c *config) {
		c.only("WithMaxFutureSkew", kindHTTP)
		c.skew = d
	}
}

// WithClock sets the clock that [WithMaxFutureSkew] and [WithTolerance] compare
// with, for tests. It applies to [HTTP] and the signature middleware that
// check a timestamp: [StripeSignature], [SlackSignature], [StandardWebhooks],
// [StandardWebhooksPublicKey] and [HMACSignature]. The default is time.Now.
func WithClock(now func() time.Time) Option {
	if now == nil {
		panic("middleware.WithClock(nil)")
	}
	return func(c *config) {
		c.only("WithClock", kindHTTP, kindStripe, kindSlack, kindStandardWebhooks, kindStandardWebhooksPublicKey, kindHMAC)
		c.now = now
	}
}

// WithTolerance sets how far the timestamp a signature was made at may lie
// from the clock, in either direction, so that a captured delivery cannot be
// replayed later. It counts whole seconds, as the signature's timestamp
// does. It applies to [StripeSignature], [SlackSignature], [StandardWebhooks],
// [StandardWebhooksPublicKey], and [HMACSignature] with an
// [HMACScheme.Timestamp]. The default is 5 minutes.
func WithTolerance(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("middleware.WithTolerance(%s): want a positive duration", d))
	}
	return func(c *config) {
		c.only("WithTolerance", kindStripe, kindSlack, kindStandardWebhooks, kindStandardWebhooksPublicKey, kindHMAC)
		c.tolerance = d
	}
}

// WithExtraSecrets makes a signature middleware accept signatures made with
// any of secrets as well as with its own, so that a secret can be rotated
// without refusing deliveries signed with the other one. It applies to
// every HMAC middleware: [GitHubSignature], [StripeSignature],
// [SlackSignature], [ShopifySignature], [StandardWebhooks] (each secret in
// the form of its own, "whsec_" and base64) and [HMACSignature]. The default
// is none.
func WithExtraSecrets(secrets ...[]byte) Option {
	for i, s := range secrets {
		if len(s) == 0 {
			panic(fmt.Sprintf("middleware.WithExtraSecrets: secret %d is empty", i))
		}
	}
	// The caller may reuse its slices; keep copies.
	own := make([][]byte, len(secrets))
	for i, s := range secrets {
		own[i] = append([]byte(nil), s...)
	}
	return func(c *config) {
		c.only("WithExtraSecrets", kindGitHub, kindStripe, kindSlack, kindShopify, kindStandardWebhooks, kindHMAC)
		c.secrets = append(c.secrets, own...)
	}
}

// RevisionKind says which revisions [Headers] and [JSONFields] accept.
type RevisionKind uint8

const (
	// AnyRevision accepts a decimal counter or an RFC 3339 timestamp, as
	// revguard.ParseRevision does.
	AnyRevision RevisionKind = iota
	// Counters accepts decimal counters only (a version column, a
	// sequence): a timestamp, read as some 1.6e18 nanoseconds, would make
	// every later counter of its entity stale.
	Counters
	// Timestamps accepts RFC 3339 timestamps only (an updated_at): a small
	// counter would be read as a time in January 1970, and lose to every
	// timestamp.
	Timestamps
)

// WithRevisions restricts the revisions [Headers] and [JSONFields] accept to
// one kind, refusing the other with 400 before any store call. Use [Counters]
// for senders that send a version or sequence, [Timestamps] for those that
// send the time of the change; mixing the two on one entity poisons it, and
// WithMaxStep does not catch an entity's first event. The default is
// [AnyRevision].
func WithRevisions(k RevisionKind) Option {
	if k > Timestamps {
		panic(fmt.Sprintf("middleware: WithRevisions(%d): unknown kind", k))
	}
	return func(c *config) { c.revisions = k }
}

// WithWaitInFlight makes [HTTP] wait, up to d, when another delivery of the
// entity holds its claim, instead of answering 409 at once: once the first
// finishes, the repeat gets its response again (with [WithReplay]) or the drop
// answer, which is what a client that retried a slow POST wants to see. If
// the first fails, the repeat's own claim runs the handler. A request
// cancelled meanwhile, or d running out, gets the 409 as before. Each
// waiting request holds its connection and asks the store again at growing
// intervals (5ms to 250ms). It applies to HTTP. The default is 0: no wait.
func WithWaitInFlight(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("middleware.WithWaitInFlight(%s): want a positive duration", d))
	}
	return func(c *config) {
		c.only("WithWaitInFlight", kindHTTP)
		c.waitInFlight = d
	}
}
