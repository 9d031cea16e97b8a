package middleware

import "net/http"

// SlackSignature returns middleware that passes a request on only if its
// header X-Slack-Signature is "v0=" followed by the hex HMAC-SHA256 of
// "v0:" + X-Slack-Request-Timestamp + ":" + the raw body under secret, the
// app's signing secret (or under one of [WithExtraSecrets]), and
// X-Slack-Request-Timestamp lies within [WithTolerance] (5 minutes by default)
// of the clock in either direction. Failures, body limit and stacking are as
// for [HMACSignature]:
//
//	h := middleware.SlackSignature(signingSecret)(middleware.HTTP(g)(app))
//
// It panics if secret is empty.
func SlackSignature(secret []byte, opts ...Option) func(http.Handler) http.Handler {
	return hmacSignature(kindSlack, secret, slackScheme, opts)
}

var slackScheme = compile(kindSlack, HMACScheme{
	Header:    "X-Slack-Signature",
	Prefix:    "v0=",
	Signed:    "v0:{X-Slack-Request-Timestamp}:{body}",
	Timestamp: "X-Slack-Request-Timestamp",
})
