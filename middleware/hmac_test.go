package middleware_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/revguard/revguard/middleware"
)

// A scheme of no real sender, to cover what the named ones do not: several
// hex signatures without a prefix, and a signed header that is not the
// timestamp.
func TestHMACSignature(t *testing.T) {
	scheme := middleware.HMACScheme{
		Header:    "X-Signatures",
		Separator: ",",
		Signed:    "{X-Delivery}|{X-Time}|{body}",
		Timestamp: "x-time",
	}
	const body, now = `{"n":1}`, int64(1_700_000_000)
	mac := func(secret, delivery, ts string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(delivery + "|" + ts + "|" + body))
		return hex.EncodeToString(m.Sum(nil))
	}
	good := mac("k1", "d1", "1700000000")
	req := func(sigs, delivery, ts string) func() *http.Request {
		return signedPost(body, "X-Signatures", sigs, "X-Delivery", delivery, "X-Time", ts)
	}
	mw := func(opts ...middleware.Option) func(http.Handler) http.Handler {
		return middleware.HMACSignature([]byte("k1"), scheme, append([]middleware.Option{clockAt(now)}, opts...)...)
	}
	runSignature(t, mw, []sigCase{
		{name: "valid", req: req(good, "d1", "1700000000"), status: http.StatusOK},
		{name: "valid last of several", req: req("zz, "+mac("k9", "d1", "1700000000")+" ,"+good, "d1", "1700000000"), status: http.StatusOK},
		{name: "rotation: the new secret signs", opts: []middleware.Option{middleware.WithExtraSecrets([]byte("k2"))}, req: req(mac("k2", "d1", "1700000000"), "d1", "1700000000"), status: http.StatusOK},
		{name: "without the extra secret", req: req(mac("k2", "d1", "1700000000"), "d1", "1700000000"), status: http.StatusUnauthorized, detail: "no signature matches the signed content"},
		{name: "another delivery", req: req(good, "d2", "1700000000"), status: http.StatusUnauthorized, detail: "no signature matches"},
		{name: "missing signed header", req: signedPost(body, "X-Signatures", good, "X-Time", "1700000000"), status: http.StatusUnauthorized, detail: `header "X-Delivery": missing`},
		{name: "too old", req: req(mac("k1", "d1", "1699999000"), "d1", "1699999000"), status: http.StatusUnauthorized, detail: `header "X-Time": timestamp 1699999000 is 1000s away`},
		{name: "none well-formed", req: req("zz,"+strings.Repeat("a", 63), "d1", "1700000000"), status: http.StatusUnauthorized, detail: `no signature "" followed by 64 hexadecimal digits`},
	})
}

func TestHMACSchemeInvalid(t *testing.T) {
	for name, s := range map[string]middleware.HMACScheme{
		"empty header name":      {},
		"bad header name":        {Header: "X Sig"},
		"unbalanced open":        {Header: "X-Sig", Signed: "{body"},
		"unbalanced close":       {Header: "X-Sig", Signed: "body}"},
		"bad signed header name": {Header: "X-Sig", Signed: "{a b}.{body}"},
		"unsigned timestamp":     {Header: "X-Sig", Timestamp: "X-Time"},
		"unknown encoding":       {Header: "X-Sig", Encoding: 7},
	} {
		assert.Panics(t, func() { middleware.HMACSignature([]byte("k"), s) }, name)
	}
	assert.Panics(t, func() { middleware.HMACSignature(nil, middleware.HMACScheme{Header: "X-Sig"}) }, "empty secret")
	assert.Panics(t, func() { middleware.HMACSignature([]byte("k"), middleware.HMACScheme{Header: "X-Sig"})(nil) }, "nil handler")
	assert.NotPanics(t, func() {
		middleware.HMACSignature([]byte("k"), middleware.HMACScheme{Header: "X-Sig"}, middleware.WithTolerance(time.Minute), middleware.WithMaxBody(10))
	})
}
