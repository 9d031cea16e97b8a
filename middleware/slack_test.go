package middleware_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard/middleware"
)

// Slack's documented example, from "Verifying requests from Slack"
// (api.slack.com/authentication/verifying-requests-from-slack). Checked once
// with: printf 'v0:1531420618:%s' "$body" | openssl dgst -sha256 -hmac 8f742231b10e8888abcd99yyyzzz85a5
const (
	slackSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	slackTime   = 1531420618
	slackBody   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	slackSig    = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

func TestSlackSignature(t *testing.T) {
	slackSign := func(secret string, ts int64, body string) string {
		return "v0=" + sign(secret, "v0:"+strconv.FormatInt(ts, 10)+":"+body)
	}
	require.Equal(t, slackSig, slackSign(slackSecret, slackTime, slackBody))
	slack := func(ts int64, sig, body string) func() *http.Request {
		return signedPost(body, "X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10), "X-Slack-Signature", sig)
	}
	mw := func(opts ...middleware.Option) func(http.Handler) http.Handler {
		return middleware.SlackSignature([]byte(slackSecret), append([]middleware.Option{clockAt(slackTime)}, opts...)...)
	}
	old, ahead := int64(slackTime-301), int64(slackTime+301)
	runSignature(t, mw, []sigCase{
		{name: "the documented example", req: slack(slackTime, slackSig, slackBody), status: http.StatusOK},
		{name: "an extra secret", opts: []middleware.Option{middleware.WithExtraSecrets([]byte("old"), []byte("new"))}, req: slack(slackTime, slackSign("new", slackTime, slackBody), slackBody), status: http.StatusOK},
		{name: "a configured tolerance", opts: []middleware.Option{middleware.WithTolerance(time.Hour)}, req: slack(old, slackSign(slackSecret, old, slackBody), slackBody), status: http.StatusOK},
		{name: "too old", req: slack(old, slackSign(slackSecret, old, slackBody), slackBody), status: http.StatusUnauthorized, detail: `header "X-Slack-Request-Timestamp": timestamp 1531420317 is 301s away`},
		{name: "too far ahead", req: slack(ahead, slackSign(slackSecret, ahead, slackBody), slackBody), status: http.StatusUnauthorized, detail: "beyond the tolerance"},
		{name: "signed at another time", req: slack(slackTime+1, slackSig, slackBody), status: http.StatusUnauthorized, detail: "the signature does not match the signed content"},
		{name: "tampered body", req: slack(slackTime, slackSig, slackBody+"&x=1"), status: http.StatusUnauthorized, detail: "does not match"},
		{name: "wrong secret", req: slack(slackTime, slackSign("guess", slackTime, slackBody), slackBody), status: http.StatusUnauthorized, detail: "does not match"},
		{name: "another version", req: slack(slackTime, "v1="+slackSig[3:], slackBody), status: http.StatusUnauthorized, detail: `want "v0=" and 64 hexadecimal digits`},
		{name: "not hex", req: slack(slackTime, "v0="+slackSig[4:]+"g", slackBody), status: http.StatusUnauthorized, detail: "not hexadecimal"},
		{name: "missing timestamp", req: signedPost(slackBody, "X-Slack-Signature", slackSig), status: http.StatusUnauthorized, detail: `header "X-Slack-Request-Timestamp": missing`},
		{name: "negative timestamp", req: signedPost(slackBody, "X-Slack-Request-Timestamp", "-1", "X-Slack-Signature", slackSig), status: http.StatusUnauthorized, detail: "not a Unix time"},
		{name: "empty signature", req: slack(slackTime, "", slackBody), status: http.StatusUnauthorized, detail: `want "v0="`},
	})
}
