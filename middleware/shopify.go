package middleware

import "net/http"

// ShopifySignature returns middleware that passes a request on only if its
// header X-Shopify-Hmac-Sha256 is the base64 HMAC-SHA256 of the raw body
// under secret, the app's client secret (or under one of [WithExtraSecrets]).
// Shopify signs no timestamp, so a captured delivery can be replayed at any
// time: the guard behind it is what turns a replay into a duplicate.
// Failures, body limit and stacking are as for [HMACSignature]:
//
//	h := middleware.ShopifySignature(clientSecret)(middleware.HTTP(g)(app))
//
// It panics if secret is empty.
func ShopifySignature(secret []byte, opts ...Option) func(http.Handler) http.Handler {
	return hmacSignature(kindShopify, secret, shopifyScheme, opts)
}

var shopifyScheme = compile(kindShopify, HMACScheme{Header: "X-Shopify-Hmac-Sha256", Encoding: Base64})
