package middleware_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/middleware"
)

func sign(secret, payload string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(payload))
	return hex.EncodeToString(mac.Sum(nil))
}

// echo is a next handler that answers with the body it read.
type echo struct{ called int }

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.called++
	b, _ := io.ReadAll(r.Body)
	_, _ = w.Write(b)
}

type sigCase struct {
	name   string
	opts   []middleware.Option
	req    func() *http.Request
	status int
	detail string
}

func runSignature(t *testing.T, mw func(...middleware.Option) func(http.Handler) http.Handler, cases []sigCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next := &echo{}
			r := c.req()
			want, _ := io.ReadAll(r.Body)
			r = c.req()
			w := serve(mw(c.opts...)(next), r)
			if c.status == http.StatusOK {
				require.Equal(t, http.StatusOK, w.Code, w.Body.String())
				assert.Equal(t, string(want), w.Body.String(), "the next handler reads the raw body intact")
				assert.Equal(t, 1, next.called)
				return
			}
			p := problemOf(t, w, c.status)
			assert.Contains(t, p["detail"], c.detail)
			assert.Equal(t, 0, next.called, "nothing reaches the next handler")
			if c.status == http.StatusUnauthorized {
				assert.NotEmpty(t, w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestGitHubSignature(t *testing.T) {
	const secret, body = "It's a Secret to Everybody", "Hello, World!"
	// GitHub's documented example: this secret and body give this signature.
	const documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	require.Equal(t, documented, "sha256="+sign(secret, body))

	gh := func(header []string, payload string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(payload))
			for _, h := range header {
				r.Header.Add("X-Hub-Signature-256", h)
			}
			return r
		}
	}
	mw := func(opts ...middleware.Option) func(http.Handler) http.Handler {
		return middleware.GitHubSignature([]byte(secret), opts...)
	}
	binary := "\x00\xff\xfe" + strings.Repeat("\x80", 1000)
	runSignature(t, mw, []sigCase{
		{name: "valid", req: gh([]string{documented}, body), status: http.StatusOK},
		{name: "valid on a non-UTF-8 body", req: gh([]string{"sha256=" + sign(secret, binary)}, binary), status: http.StatusOK},
		{name: "valid on an empty body", req: gh([]string{"sha256=" + sign(secret, "")}, ""), status: http.StatusOK},
		{name: "valid, repeated identically", req: gh([]string{documented, documented}, body), status: http.StatusOK},
		{name: "upper-case hex", req: gh([]string{"sha256=" + strings.ToUpper(documented[7:])}, body), status: http.StatusOK},
		{name: "an extra secret", opts: []middleware.Option{middleware.WithExtraSecrets([]byte("new"))}, req: gh([]string{"sha256=" + sign("new", body)}, body), status: http.StatusOK},
		{name: "missing", req: gh(nil, body), status: http.StatusUnauthorized, detail: `header "X-Hub-Signature-256": missing`},
		{name: "tampered body", req: gh([]string{documented}, body+"!"), status: http.StatusUnauthorized, detail: "does not match"},
		{name: "wrong secret", req: gh([]string{"sha256=" + sign("guess", body)}, body), status: http.StatusUnauthorized, detail: "does not match"},
		{name: "sha1 scheme", req: gh([]string{"sha1=" + documented[7:47]}, body), status: http.StatusUnauthorized, detail: `want "sha256="`},
		{name: "short", req: gh([]string{"sha256=abcd"}, body), status: http.StatusUnauthorized, detail: "got 4 characters"},
		{name: "not hex", req: gh([]string{"sha256=" + strings.Repeat("z", 64)}, body), status: http.StatusUnauthorized, detail: "not hexadecimal"},
		{name: "huge header", req: gh([]string{"sha256=" + strings.Repeat("a", 1<<20)}, body), status: http.StatusUnauthorized},
		{name: "conflicting headers", req: gh([]string{documented, "sha256=" + sign(secret, "x")}, body), status: http.StatusUnauthorized, detail: "sent 2 times with different values"},
		{name: "body above the limit", opts: []middleware.Option{middleware.WithMaxBody(4)}, req: gh([]string{documented}, body), status: http.StatusRequestEntityTooLarge, detail: "above the limit of 4 bytes"},
		{name: "chunked body above the limit", opts: []middleware.Option{middleware.WithMaxBody(4)}, req: func() *http.Request {
			r := gh([]string{documented}, body)()
			r.ContentLength = -1
			return r
		}, status: http.StatusRequestEntityTooLarge, detail: "more than the limit of 4 bytes"},
	})
}

func TestStripeSignature(t *testing.T) {
	const secret, body = "whsec_test", `{"id":"evt_1","type":"charge.succeeded"}`
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	v1 := func(secret, t string) string { return "v1=" + sign(secret, t+"."+body) }
	stripe := func(header ...string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			for _, h := range header {
				r.Header.Add("Stripe-Signature", h)
			}
			return r
		}
	}
	mw := func(opts ...middleware.Option) func(http.Handler) http.Handler {
		return middleware.StripeSignature([]byte(secret), append([]middleware.Option{middleware.WithClock(func() time.Time { return now })}, opts...)...)
	}
	old := strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10)
	ahead := strconv.FormatInt(now.Add(6*time.Minute).Unix(), 10)
	runSignature(t, mw, []sigCase{
		{name: "valid", req: stripe("t=" + ts + "," + v1(secret, ts)), status: http.StatusOK},
		{name: "valid among several v1 and a v0", req: stripe("t=" + ts + "," + v1("other", ts) + ",v0=abc," + v1(secret, ts)), status: http.StatusOK},
		{name: "valid with spaces", req: stripe("t=" + ts + ", " + v1(secret, ts)), status: http.StatusOK},
		{name: "valid after a malformed v1", req: stripe("t=" + ts + ",v1=zz," + v1(secret, ts)), status: http.StatusOK},
		{name: "an extra secret", opts: []middleware.Option{middleware.WithExtraSecrets([]byte("a"), []byte("b"))}, req: stripe("t=" + ts + "," + v1("b", ts)), status: http.StatusOK},
		{name: "within the tolerance", req: stripe("t=" + strconv.FormatInt(now.Unix()-299, 10) + "," + v1(secret, strconv.FormatInt(now.Unix()-299, 10))), status: http.StatusOK},
		{name: "too old", req: stripe("t=" + old + "," + v1(secret, old)), status: http.StatusUnauthorized, detail: "beyond the tolerance of 5m0s"},
		{name: "too far ahead", req: stripe("t=" + ahead + "," + v1(secret, ahead)), status: http.StatusUnauthorized, detail: "beyond the tolerance"},
		{name: "a configured tolerance", opts: []middleware.Option{middleware.WithTolerance(10 * time.Minute)}, req: stripe("t=" + old + "," + v1(secret, old)), status: http.StatusOK},
		{name: "signature over another timestamp", req: stripe("t=" + ts + "," + v1(secret, old)), status: http.StatusUnauthorized, detail: "no v1 signature matches"},
		{name: "wrong secret", req: stripe("t=" + ts + "," + v1("guess", ts)), status: http.StatusUnauthorized, detail: "no v1 signature matches"},
		{name: "no timestamp", req: stripe(v1(secret, ts)), status: http.StatusUnauthorized, detail: "no timestamp"},
		{name: "two timestamps", req: stripe("t=" + ts + ",t=" + old + "," + v1(secret, ts)), status: http.StatusUnauthorized, detail: "two different timestamps"},
		{name: "negative timestamp", req: stripe("t=-5," + v1(secret, "-5")), status: http.StatusUnauthorized, detail: "not a Unix time"},
		{name: "huge timestamp", req: stripe("t=99999999999999999999," + v1(secret, "99999999999999999999")), status: http.StatusUnauthorized, detail: "not a Unix time"},
		{name: "largest timestamp", req: stripe("t=9223372036854775807," + v1(secret, "9223372036854775807")), status: http.StatusUnauthorized, detail: "beyond the tolerance"},
		{name: "no v1", req: stripe("t=" + ts + ",v0=" + sign(secret, ts+"."+body)), status: http.StatusUnauthorized, detail: "no v1="},
		{name: "empty", req: stripe(""), status: http.StatusUnauthorized, detail: "no timestamp"},
		{name: "missing", req: stripe(), status: http.StatusUnauthorized, detail: "missing"},
		{name: "conflicting headers", req: stripe("t="+ts+","+v1(secret, ts), "t="+old+","+v1(secret, old)), status: http.StatusUnauthorized, detail: "different values"},
	})
}

// Stacked in front of HTTP: a bad signature never reaches the guard, and a
// good one reaches the extractor and the handler with the body intact.
func TestSignatureInFrontOfGuard(t *testing.T) {
	const secret = "s3cret"
	g := revguard.New(memstore.New(), middleware.JSONFields("id", "rev"))
	inner := &echo{}
	h := middleware.GitHubSignature([]byte(secret))(middleware.HTTP(g)(inner))
	deliver := func(body, sig string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("X-Hub-Signature-256", "sha256="+sig)
		return serve(h, r)
	}

	forged := `{"id":"a","rev":18446744073709551615}`
	assert.Equal(t, http.StatusUnauthorized, deliver(forged, sign("guess", forged)).Code)
	_, ok, err := g.Applied(t.Context(), "a")
	require.NoError(t, err)
	assert.False(t, ok, "the forged revision changed nothing")

	good := `{"id":"a","rev":3}`
	w := deliver(good, sign(secret, good))
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, good, w.Body.String())
	w = deliver(good, sign(secret, good))
	assert.Equal(t, "duplicate", w.Header().Get(middleware.OutcomeHeader))
	assert.Equal(t, 1, inner.called)
}
