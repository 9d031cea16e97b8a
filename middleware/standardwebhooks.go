package middleware

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/revguard/revguard"
)

// StandardWebhooks returns middleware that verifies the symmetric signatures
// of the Standard Webhooks specification (standardwebhooks.com): the header
// webhook-signature holds space-separated signatures "v1,<base64>", and the
// request passes on only if one of them is the HMAC-SHA256 of
// webhook-id + "." + webhook-timestamp + "." + the raw body under secret (or
// under one of [WithExtraSecrets], each in the same form as secret), and
// webhook-timestamp, in Unix seconds, lies within [WithTolerance] (5 minutes
// by default) of the clock in either direction. Signatures of other
// versions, such as the asymmetric v1a, are skipped. Failures, body limit
// and stacking are as for [HMACSignature]:
//
//	h := middleware.StandardWebhooks("whsec_...")(middleware.HTTP(g)(app))
//
// webhook-timestamp is the time of the attempt: it changes on every retry,
// so it is never a revision. To apply each message once, key the guard by
// webhook-id with [WebhookID], or read the entity and its revision from the
// body.
//
// It panics unless secret is base64, with or without the "whsec_" prefix,
// as the specification's own libraries accept it, of at least one byte.
func StandardWebhooks(secret string, opts ...Option) func(http.Handler) http.Handler {
	cfg := newConfig(kindStandardWebhooks, opts)
	keys := [][]byte{webhookKey(cfg.kind, "whsec_", secret, 0)}
	for _, s := range cfg.secrets {
		keys = append(keys, webhookKey(cfg.kind, "whsec_", string(s), 0))
	}
	return verify(cfg, "HMAC-SHA256", webhookSignature, keys, hmacMatches, standardScheme.check)
}

// StandardWebhooksPublicKey returns middleware that verifies the asymmetric
// signatures of the Standard Webhooks specification: as [StandardWebhooks]
// does, but with signatures "v1a,<base64>" that are Ed25519 signatures of
// the same content under the private key of publicKey, "whpk_" and the
// base64 of the 32-byte Ed25519 public key. Signatures of other versions,
// such as the symmetric v1, are skipped.
//
// It panics unless publicKey is a base64 Ed25519 public key, with or
// without the "whpk_" prefix.
func StandardWebhooksPublicKey(publicKey string, opts ...Option) func(http.Handler) http.Handler {
	cfg := newConfig(kindStandardWebhooksPublicKey, opts)
	keys := [][]byte{webhookKey(cfg.kind, "whpk_", publicKey, ed25519.PublicKeySize)}
	return verify(cfg, "Ed25519", webhookSignature, keys, ed25519Matches, publicKeyScheme.check)
}

const webhookSignature = "webhook-signature"

var (
	standardScheme = compile(kindStandardWebhooks, HMACScheme{
		Header:    webhookSignature,
		Prefix:    "v1,",
		Separator: " ",
		Encoding:  Base64,
		Signed:    "{webhook-id}.{webhook-timestamp}.{body}",
		Timestamp: "webhook-timestamp",
	})
	publicKeyScheme = func() *scheme {
		s := *standardScheme
		s.prefix, s.size = "v1a,", ed25519.SignatureSize
		return &s
	}()
)

// webhookKey decodes a key in the specification's form: prefix (optional)
// and base64. size, if not 0, is the only length allowed.
func webhookKey(k kind, prefix, s string, size int) []byte {
	for _, other := range []string{"whsec_", "whpk_", "whsk_"} {
		if other != prefix && strings.HasPrefix(s, other) {
			panic(fmt.Sprintf("middleware.%s: got a %q key, want %q", k, other, prefix))
		}
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, prefix))
	switch {
	case err != nil:
		panic(fmt.Sprintf("middleware.%s: the key is not %q and base64: %v", k, prefix, err))
	case len(key) == 0:
		panic(fmt.Sprintf("middleware.%s: empty key", k))
	case size != 0 && len(key) != size:
		panic(fmt.Sprintf("middleware.%s: the key has %d bytes, want %d", k, len(key), size))
	}
	return key
}

// ed25519Matches reports whether any of sigs is an Ed25519 signature of the
// content under any of the public keys.
func ed25519Matches(keys, sigs [][]byte, parts ...[]byte) bool {
	content := bytes.Join(parts, nil)
	for _, k := range keys {
		for _, sig := range sigs {
			if ed25519.Verify(k, content, sig) {
				return true
			}
		}
	}
	return false
}

// WebhookID returns an extractor for Standard Webhooks messages that are
// each applied once, [IDHeader]("webhook-id"): the key is the header
// webhook-id, unique to the message
// and the same on every retry, and the revision is always 1. The guard then
// applies the first delivery of each message and answers every later copy
// as a Duplicate (200 with Revision-Outcome: duplicate, so the sender stops);
// a copy that arrives while the first is still being handled gets 409 and
// comes back later. It orders nothing: use it where messages are
// independent, or where the entity's own revision is in the body
// ([JSONFields]) and the guard can order them.
//
// The store keeps one record per message. Give the guard a namespace of its
// own ([revguard.WithNamespace]), as its keys are message IDs, not entities;
// under Sequential ordering the first revision must be 1, the default.
//
// Do not take webhook-timestamp as the revision: it is the time of the
// attempt, which changes on every retry, so each retry would look newer and
// be applied again.
func WebhookID() revguard.Extractor[*http.Request] { return webhookID }

func webhookID(r *http.Request) (string, revguard.Revision, error) {
	return idHeader(r, "Webhook-Id", `header "webhook-id"`)
}
