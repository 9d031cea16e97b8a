package backendtest

import (
	"strings"
	"testing"

	"github.com/revguard/revguard"
)

// trickyKeys are valid keys that a store could confuse with one another:
// by quoting, escaping, Redis hash tags, SQL collations (case, accents,
// trailing spaces, ß), NUL terminators, or index prefixes of long keys.
var trickyKeys = []string{
	"plain", "with space", " leading", "trailing ", "k", "k ", "k  ", " ",
	`single'quote`, `''`, `double"quote`, `back\slash`, `\`, `\\`, `\'`, "`tick`", "%", "_", "*", "?", "[a]",
	"{a}b", "{a}c", "a{b}c", "{a}", "{}", "{", "}", "{{a}}", "{a}{b}",
	"line\nbreak", "line\r\nbreak", "\n", "tab\tkey", "\x7f", "\u2028", "\ufeff",
	"nul\x00", "nul\x00byte", "nul", "\x00", "\x00\x00",
	"emoji 🎉", "emoji 🎊", "🎉",
	"Straße", "STRASSE", "strasse", "Strasse", "a", "A", "e", "é", "e\u0301", "E", "É",
	":", "::", "a:b", "a:b:c", "ns:key", "0", "00", "-1", "1e3", "null", "NULL", "nil",
	strings.Repeat("x", revguard.MaxKeyLen),
	strings.Repeat("x", revguard.MaxKeyLen-1) + "y",
	strings.Repeat("x", revguard.MaxKeyLen-1),
	strings.Repeat("x", 3072) + "a",
	strings.Repeat("x", 3072) + "b",
	strings.Repeat("é", revguard.MaxKeyLen/2),
	strings.Repeat("é", revguard.MaxKeyLen/2-2) + "e\u0301x",
	strings.Repeat("🎉", revguard.MaxKeyLen/4),
}

func testKeys(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	seen := map[string]bool{}
	for _, k := range trickyKeys {
		if err := revguard.CheckKey(k); err != nil || seen[k] {
			t.Fatalf("bad test key %s: %v, repeated %v", short(k), err, seen[k])
		}
		seen[k] = true
	}

	for i, k := range trickyKeys {
		h.set(k, revguard.Revision(i+1))
	}
	for i, k := range trickyKeys {
		h.peek(k, at(revguard.Revision(i+1)))
	}

	// Claims too are kept apart: none is refused as busy because of another.
	tokens := make([]revguard.Token, len(trickyKeys))
	for i, k := range trickyKeys {
		tokens[i] = newToken()
		h.claim(h.req(k, revguard.Revision(i+1000), tokens[i]), granted, at(revguard.Revision(i+1)))
	}
	for i, k := range trickyKeys {
		h.commit(k, tokens[i])
	}
	for i, k := range trickyKeys {
		h.peek(k, at(revguard.Revision(i+1000)))
	}

	// Forgetting one forgets that one only.
	for i, k := range trickyKeys {
		if i%2 == 0 {
			h.forget(k)
		}
	}
	for i, k := range trickyKeys {
		if i%2 == 0 {
			h.peek(k, none)
		} else {
			h.peek(k, at(revguard.Revision(i+1000)))
		}
	}
}

// testNamespaces keeps fixed namespaces, shared by every run on a server,
// apart by using keys of this run only.
func testNamespaces(t *testing.T, newStore func(*testing.T) revguard.Store) {
	h := start(t, newStore)
	run := randomHex(8)
	key := "key-" + run
	type place struct{ ns, key string }
	places := []place{}
	for _, ns := range []string{
		"", " ", "  ", "a", "A", "a ", "{a}", "{" + run + "}", "ns\x00", "ns", "Straße", "STRASSE", "é", "e\u0301",
		strings.Repeat("n", revguard.MaxNamespaceLen),
		strings.Repeat("n", revguard.MaxNamespaceLen-1) + "m",
		strings.Repeat("é", revguard.MaxNamespaceLen/2) + "n",
		run + strings.Repeat("n", revguard.MaxNamespaceLen-len(run)),
	} {
		places = append(places, place{ns, key})
	}
	// A store that joins namespace and key with a separator must escape it:
	// ("p:q", "r") and ("p", "q:r") are different entities.
	for _, sep := range []string{":", "\x00", "/", "|", "#", ".", "\x1f", "{", "}", " ", `\`, "\n"} {
		places = append(places,
			place{"p" + run + sep + "q", "r"},
			place{"p" + run, "q" + sep + "r"},
			place{"p" + run + sep, "q" + "r"},
			place{"", "p" + run + sep + "q" + sep + "r"},
		)
	}

	seen := map[place]bool{}
	for _, p := range places {
		if len(p.ns) > revguard.MaxNamespaceLen || revguard.CheckKey(p.key) != nil || seen[p] {
			t.Fatalf("bad test place: ns %s key %s", short(p.ns), short(p.key))
		}
		seen[p] = true
	}

	s := h.s
	for i, p := range places {
		if err := s.Set(h.ctx(), p.ns, p.key, revguard.Revision(i+1)); err != nil {
			t.Fatalf("Set(ns %s, %s): %v", short(p.ns), short(p.key), err)
		}
	}
	for i, p := range places {
		h.peekIn(p.ns, p.key, at(revguard.Revision(i+1)))
	}
	for i, p := range places {
		tok := newToken()
		r := revguard.Request{Namespace: p.ns, Key: p.key, Rev: revguard.Revision(i + 1000), Token: tok, Lease: longLease}
		h.claim(r, granted, at(revguard.Revision(i+1)))
		if err := s.Commit(h.ctx(), p.ns, p.key, tok); err != nil {
			t.Fatalf("Commit(ns %s, %s): %v", short(p.ns), short(p.key), err)
		}
	}
	for i, p := range places {
		h.peekIn(p.ns, p.key, at(revguard.Revision(i+1000)))
	}
	for _, p := range places {
		if err := s.Forget(h.ctx(), p.ns, p.key); err != nil {
			t.Fatalf("Forget(ns %s, %s): %v", short(p.ns), short(p.key), err)
		}
	}
}
