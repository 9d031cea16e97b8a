package middleware_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard/middleware"
)

// Computed here and checked once, independently, with both
//
//	printf '%s' "$shopifyBody" | openssl dgst -sha256 -hmac hush -binary | base64
//	python3: base64.b64encode(hmac.new(b'hush', body, hashlib.sha256).digest())
const (
	shopifySecret = "hush"
	shopifyBody   = `{"id":820982911946154508,"email":"jon@doe.ca"}`
	shopifySig    = "fp5HwmAHEVGQQwJU1KRpk57Ts2YHF6/TLOCczCtB5bs="
)

func TestShopifySignature(t *testing.T) {
	shopifySign := func(secret, body string) string {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(body))
		return base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	require.Equal(t, shopifySig, shopifySign(shopifySecret, shopifyBody))
	shopify := func(sig, body string) func() *http.Request {
		return signedPost(body, "X-Shopify-Hmac-Sha256", sig)
	}
	mw := func(opts ...middleware.Option) func(http.Handler) http.Handler {
		return middleware.ShopifySignature([]byte(shopifySecret), opts...)
	}
	runSignature(t, mw, []sigCase{
		{name: "valid", req: shopify(shopifySig, shopifyBody), status: http.StatusOK},
		{name: "valid on an empty body", req: shopify(shopifySign(shopifySecret, ""), ""), status: http.StatusOK},
		{name: "an extra secret", opts: []middleware.Option{middleware.WithExtraSecrets([]byte("rotated"))}, req: shopify(shopifySign("rotated", shopifyBody), shopifyBody), status: http.StatusOK},
		{name: "tampered body", req: shopify(shopifySig, shopifyBody+" "), status: http.StatusUnauthorized, detail: "the signature does not match the body"},
		{name: "wrong secret", req: shopify(shopifySign("guess", shopifyBody), shopifyBody), status: http.StatusUnauthorized, detail: "does not match"},
		{name: "hex instead of base64", req: shopify(sign(shopifySecret, shopifyBody), shopifyBody), status: http.StatusUnauthorized, detail: "want 44 base64 characters, got 64 characters"},
		{name: "unpadded", req: shopify(shopifySig[:43], shopifyBody), status: http.StatusUnauthorized, detail: "got 43 characters"},
		{name: "not base64", req: shopify("!"+shopifySig[1:], shopifyBody), status: http.StatusUnauthorized, detail: "not base64"},
		{name: "missing", req: signedPost(shopifyBody), status: http.StatusUnauthorized, detail: `header "X-Shopify-Hmac-Sha256": missing`},
	})
	require.Panics(t, func() { middleware.ShopifySignature([]byte(shopifySecret), middleware.WithTolerance(1)) }, "Shopify signs no timestamp")
	require.Panics(t, func() { middleware.ShopifySignature(nil) })
}
