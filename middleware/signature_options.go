package middleware

// The signature schemes added after GitHubSignature and StripeSignature,
// numbered apart from options.go's kinds.
const (
	kindHMAC kind = iota + 16
	kindSlack
	kindShopify
	kindStandardWebhooks
	kindStandardWebhooksPublicKey
)
