package middleware_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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

// The specification's own vector, from the test suites of its libraries
// (github.com/standard-webhooks/standard-webhooks, libraries/go/webhook_test.go
// TestWebhookSign, and the same in every other language).
const (
	swSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTime   = 1614265330
	swBody   = `{"test": 2432232314}`
	swSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// signedPost returns a request maker for body with the headers in pairs of name
// and value.
func signedPost(body string, headers ...string) func() *http.Request {
	return func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Add(headers[i], headers[i+1])
		}
		return r
	}
}

func clockAt(unix int64) middleware.Option {
	return middleware.WithClock(func() time.Time { return time.Unix(unix, 0) })
}

// swSign signs as a Standard Webhooks sender with the key in its whsec_ form.
func swSign(secret, id string, ts int64, body string) string {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		panic(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + body))
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestStandardWebhooks(t *testing.T) {
	require.Equal(t, swSig, swSign(swSecret, swID, swTime, swBody), "the published vector, computed here")

	const other = "whsec_" + "c2Vjb25kIHNlY3JldCBmb3Igcm90YXRpb24="
	sw := func(id string, ts int64, sig, body string) func() *http.Request {
		return signedPost(body, "webhook-id", id, "webhook-timestamp", strconv.FormatInt(ts, 10), "webhook-signature", sig)
	}
	mw := func(opts ...middleware.Option) func(http.Handler) http.Handler {
		return middleware.StandardWebhooks(swSecret, append([]middleware.Option{clockAt(swTime)}, opts...)...)
	}
	old, ahead := int64(swTime-301), int64(swTime+301)
	// Bad signatures from the libraries' own tests.
	const libBad, libPartial = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", "v1,"
	runSignature(t, mw, []sigCase{
		{name: "the published vector", req: sw(swID, swTime, swSig, swBody), status: http.StatusOK},
		{name: "one valid among several", req: sw(swID, swTime, libBad+" v2,"+swSig[3:]+"  "+swSig+" v1a,"+strings.Repeat("A", 86)+"== "+libBad, swBody), status: http.StatusOK},
		{name: "an extra secret", opts: []middleware.Option{middleware.WithExtraSecrets([]byte(other))}, req: sw(swID, swTime, swSign(other, swID, swTime, swBody), swBody), status: http.StatusOK},
		{name: "within the tolerance", req: sw(swID, swTime-300, swSign(swSecret, swID, swTime-300, swBody), swBody), status: http.StatusOK},
		{name: "a configured tolerance", opts: []middleware.Option{middleware.WithTolerance(time.Hour)}, req: sw(swID, old, swSign(swSecret, swID, old, swBody), swBody), status: http.StatusOK},
		{name: "too old", req: sw(swID, old, swSign(swSecret, swID, old, swBody), swBody), status: http.StatusUnauthorized, detail: `header "Webhook-Timestamp": timestamp 1614265029 is 301s away from the receiver's clock, beyond the tolerance of 5m0s`},
		{name: "too far ahead", req: sw(swID, ahead, swSign(swSecret, swID, ahead, swBody), swBody), status: http.StatusUnauthorized, detail: "beyond the tolerance"},
		{name: "signed at another time", req: sw(swID, swTime+1, swSig, swBody), status: http.StatusUnauthorized, detail: "no signature matches the signed content"},
		{name: "another message id", req: sw("msg_other", swTime, swSig, swBody), status: http.StatusUnauthorized, detail: "no signature matches"},
		{name: "tampered body", req: sw(swID, swTime, swSig, swBody+" "), status: http.StatusUnauthorized, detail: "no signature matches"},
		{name: "wrong secret", req: sw(swID, swTime, swSign(other, swID, swTime, swBody), swBody), status: http.StatusUnauthorized, detail: "no signature matches"},
		{name: "the libraries' invalid signature", req: sw(swID, swTime, libBad, swBody), status: http.StatusUnauthorized, detail: "no signature matches"},
		{name: "the libraries' partial signature", req: sw(swID, swTime, libPartial, swBody), status: http.StatusUnauthorized, detail: `no signature "v1," followed by 44 base64 characters`},
		{name: "asymmetric only", req: sw(swID, swTime, "v1a,"+swSig[3:], swBody), status: http.StatusUnauthorized, detail: `no signature "v1,"`},
		{name: "missing signature", req: signedPost(swBody, "webhook-id", swID, "webhook-timestamp", strconv.Itoa(swTime)), status: http.StatusUnauthorized, detail: `header "Webhook-Signature": missing`},
		{name: "missing id", req: signedPost(swBody, "webhook-timestamp", strconv.Itoa(swTime), "webhook-signature", swSig), status: http.StatusUnauthorized, detail: `header "Webhook-Id": missing`},
		{name: "missing timestamp", req: signedPost(swBody, "webhook-id", swID, "webhook-signature", swSig), status: http.StatusUnauthorized, detail: `header "Webhook-Timestamp": missing`},
		{name: "timestamp in milliseconds", req: sw(swID, swTime*1000, swSign(swSecret, swID, swTime*1000, swBody), swBody), status: http.StatusUnauthorized, detail: "beyond the tolerance"},
		{name: "timestamp not a number", req: signedPost(swBody, "webhook-id", swID, "webhook-timestamp", "1614265330.5", "webhook-signature", swSig), status: http.StatusUnauthorized, detail: `header "Webhook-Timestamp": not a Unix time in seconds`},
		{name: "two ids", req: signedPost(swBody, "webhook-id", swID, "webhook-id", "msg_2", "webhook-timestamp", strconv.Itoa(swTime), "webhook-signature", swSig), status: http.StatusUnauthorized, detail: "different values"},
	})
}

func TestStandardWebhooksSecretForms(t *testing.T) {
	r := signedPost(swBody, "webhook-id", swID, "webhook-timestamp", strconv.Itoa(swTime), "webhook-signature", swSig)
	// The libraries accept the base64 without its prefix too.
	w := serve(middleware.StandardWebhooks(strings.TrimPrefix(swSecret, "whsec_"), clockAt(swTime))(&echo{}), r())
	assert.Equal(t, http.StatusOK, w.Code, w.Body.String())

	for secret, msg := range map[string]string{
		"":                      "empty key",
		"whsec_":                "empty key",
		"whsec_not base64!":     "not \"whsec_\" and base64",
		"whpk_" + swSecret[6:]:  `got a "whpk_" key`,
		"whsk_" + swSecret[6:]:  `got a "whsk_" key`,
		"MfKQ9r8GKYqrTwjUPD8IL": "not \"whsec_\" and base64",
	} {
		assert.Contains(t, panicText(t, func() { middleware.StandardWebhooks(secret) }), msg, "secret %q", secret)
	}
	assert.Contains(t, panicText(t, func() { middleware.StandardWebhooks(swSecret, middleware.WithExtraSecrets([]byte("whpk_AAAA"))) }), `got a "whpk_" key`)
	assert.Contains(t, panicText(t, func() { middleware.StandardWebhooks(swSecret, middleware.WithDropStatus(409)) }), "WithDropStatus does not apply")
}

// panicText returns what f panics with, without the "middleware.X: " part.
func panicText(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		s, _ := recover().(string)
		_, msg, _ = strings.Cut(s, ": ")
	}()
	f()
	t.Fatal("no panic")
	return ""
}

func TestStandardWebhooksPublicKey(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	otherPub, otherPriv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	require.NotEqual(t, pub, otherPub)
	sign := func(priv ed25519.PrivateKey, id string, ts int64, body string) string {
		return "v1a," + base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(id+"."+strconv.FormatInt(ts, 10)+"."+body)))
	}
	sw := func(id string, ts int64, sig, body string) func() *http.Request {
		return signedPost(body, "webhook-id", id, "webhook-timestamp", strconv.FormatInt(ts, 10), "webhook-signature", sig)
	}
	mw := func(opts ...middleware.Option) func(http.Handler) http.Handler {
		return middleware.StandardWebhooksPublicKey("whpk_"+base64.StdEncoding.EncodeToString(pub), append([]middleware.Option{clockAt(swTime)}, opts...)...)
	}
	good := sign(priv, swID, swTime, swBody)
	old := int64(swTime - 301)
	runSignature(t, mw, []sigCase{
		{name: "valid", req: sw(swID, swTime, good, swBody), status: http.StatusOK},
		{name: "one valid after a v1 and another key's", req: sw(swID, swTime, swSig+" "+sign(otherPriv, swID, swTime, swBody)+" "+good, swBody), status: http.StatusOK},
		{name: "a configured tolerance", opts: []middleware.Option{middleware.WithTolerance(time.Hour)}, req: sw(swID, old, sign(priv, swID, old, swBody), swBody), status: http.StatusOK},
		{name: "too old", req: sw(swID, old, sign(priv, swID, old, swBody), swBody), status: http.StatusUnauthorized, detail: "beyond the tolerance"},
		{name: "too far ahead", req: sw(swID, swTime+301, sign(priv, swID, swTime+301, swBody), swBody), status: http.StatusUnauthorized, detail: "beyond the tolerance"},
		{name: "another key", req: sw(swID, swTime, sign(otherPriv, swID, swTime, swBody), swBody), status: http.StatusUnauthorized, detail: "no signature matches"},
		{name: "tampered body", req: sw(swID, swTime, good, swBody+"x"), status: http.StatusUnauthorized, detail: "no signature matches"},
		{name: "another id", req: sw("msg_x", swTime, good, swBody), status: http.StatusUnauthorized, detail: "no signature matches"},
		{name: "symmetric only", req: sw(swID, swTime, swSig, swBody), status: http.StatusUnauthorized, detail: `no signature "v1a," followed by 88 base64 characters`},
		{name: "a flipped bit", req: sw(swID, swTime, good[:10]+string(good[10]^1)+good[11:], swBody), status: http.StatusUnauthorized},
	})

	w := serve(mw()(&echo{}), sw(swID, swTime, swSig, swBody)())
	assert.Equal(t, `Ed25519 header="Webhook-Signature"`, w.Header().Get("WWW-Authenticate"))
	for key, msg := range map[string]string{
		"whpk_AAAA": "the key has 3 bytes, want 32",
		"whsk_" + base64.StdEncoding.EncodeToString(priv): `got a "whsk_" key`,
		swSecret: `got a "whsec_" key`,
		"":       "empty key",
	} {
		assert.Contains(t, panicText(t, func() { middleware.StandardWebhooksPublicKey(key) }), msg, "key %q", key)
	}
	assert.Contains(t, panicText(t, func() {
		middleware.StandardWebhooksPublicKey(base64.StdEncoding.EncodeToString(pub), middleware.WithExtraSecrets([]byte("x")))
	}), "WithExtraSecrets does not apply")
}

// WebhookID in front of a guard: a retry, signed anew with a new attempt
// time, is a duplicate; a request without webhook-id is bad input that
// changes nothing.
func TestWebhookID(t *testing.T) {
	g := revguard.New(memstore.New(), middleware.WebhookID(), revguard.WithNamespace("webhook-ids"))
	app := &echo{}
	now := int64(swTime)
	h := middleware.StandardWebhooks(swSecret, middleware.WithClock(func() time.Time { return time.Unix(now, 0) }))(middleware.HTTP(g)(app))
	deliver := func(id string, ts int64) *httptest.ResponseRecorder {
		sig := swSign(swSecret, id, ts, swBody)
		return serve(h, signedPost(swBody, "webhook-id", id, "webhook-timestamp", strconv.FormatInt(ts, 10), "webhook-signature", sig)())
	}

	assert.Equal(t, http.StatusOK, deliver(swID, now).Code)
	now += 90 // the sender retries later: a new timestamp, a new signature
	w := deliver(swID, now)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "duplicate", w.Header().Get(middleware.OutcomeHeader))
	assert.Equal(t, 1, app.called, "the retry did not reach the handler")
	rev, ok, err := g.Applied(t.Context(), swID)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.EqualValues(t, 1, rev)

	assert.Equal(t, http.StatusOK, deliver("msg_2", now).Code)
	assert.Equal(t, 2, app.called, "another message is applied")

	// Signed, but with an empty webhook-id: bad input for the extractor.
	p := problemOf(t, deliver("", now), http.StatusBadRequest)
	assert.Contains(t, p["detail"], `header "webhook-id"`)
	assert.Equal(t, 2, app.called, "bad input never reaches the handler")
}
