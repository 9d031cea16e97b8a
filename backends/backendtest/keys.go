package backendtest

import (
	"strings"
	"testing"

	"github.com/revguard/revguard"
)

// trickyKeys are valid keys that a store could confuse with one another:
// by quoting, escaping (SQL, placeholders, Redis key names), Redis hash
// tags, SQL collations (case, accents, trailing spaces, ß), NUL
// terminators, or index prefixes of long keys.
var trickyKeys = []string{
	"plain", "with space", " leading", "trailing ", "k", "k ", "k  ", " ",
	`single'quote`, `''`, `double"quote`, `back\slash`, `\`, `\\`, `\'`, "`tick`", "%", "_", "*", "?", "[a]",
	"'; DROP TABLE users; --", `"); DROP TABLE users; --`, "$1", "%s", "%%", "%7B", "a%3Ab",
	"{a}b", "{a}c", "a{b}c", "{a}", "{}", "{", "}", "{{a}}", "{a}{b}",
	"line\nbreak", "line\r\nbreak", "\n", "tab\tkey", "\x7f", "\u2028", "\ufeff",
	"nul\x00", "nul\x00byte", "nul", "\x00", "\x00\x00", "a\x00b",
	"emoji 🎉", "emoji 🎊", "🎉", "日本語",
	"Straße", "STRASSE", "strasse", "Strasse", "a", "A", "e", "é", "e\u0301", "E", "É", "Case", "case",
	":", "::", "a:b", "a:b:c", "ns:key", "0", "00", "-1", "1e3", "null", "NULL", "nil",
	strings.Repeat("x", revguard.MaxKeyLen),
	strings.Repeat("x", revguard.MaxKeyLen-1) + "y",
	strings.Repeat("x", revguard.MaxKeyLen-1),
	strings.Repeat("x", revguard.MaxKeyLen-1) + "\x00",
	strings.Repeat("\x00", revguard.MaxKeyLen),
	strings.Repeat("{", revguard.MaxKeyLen),
	strings.Repeat("}", revguard.MaxKeyLen),
	strings.Repeat("x", 3072) + "a",
	strings.Repeat("x", 3072) + "b",
	strings.Repeat("é", revguard.MaxKeyLen/2),
	strings.Repeat("é", revguard.MaxKeyLen/2-2) + "e\u0301x",
	strings.Repeat("🎉", revguard.MaxKeyLen/4),
	strings.Repeat("€", revguard.MaxKeyLen/3),
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

	// And so are they in one batch, which a store may split by key (a
	// Redis Cluster by hash slot).
	reqs := make([]revguard.Request, len(trickyKeys))
	wants := make([]revguard.Verdict, len(trickyKeys))
	befores := make([]revguard.State, len(trickyKeys))
	commits := make([]revguard.Commit, len(trickyKeys))
	for i, k := range trickyKeys {
		reqs[i] = h.req(k, revguard.Revision(i+2000), newToken())
		wants[i], befores[i] = granted, at(revguard.Revision(i+1000))
		commits[i] = revguard.Commit{Namespace: h.ns, Key: k, Token: reqs[i].Token}
	}
	h.claimBatch(reqs, wants, befores)
	errs, err := h.s.CommitBatch(h.ctx(), commits)
	if err != nil || len(errs) != len(commits) {
		t.Fatalf("CommitBatch of %d = %d results, %v", len(commits), len(errs), err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("CommitBatch: commit of %s: %v", short(trickyKeys[i]), err)
		}
	}
	for i, k := range trickyKeys {
		h.peek(k, at(revguard.Revision(i+2000)))
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
			h.peek(k, at(revguard.Revision(i+2000)))
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
	// A namespace is any bytes, up to the limit: the Store contract asks no
	// more (the guard's WithNamespace asks for UTF-8).
	var allBytes []byte
	for b := range revguard.MaxNamespaceLen {
		allBytes = append(allBytes, byte(b))
	}
	for _, ns := range []string{
		"", " ", "  ", "a", "A", "a ", "{a}", "{" + run + "}", "ns\x00", "ns", "Straße", "STRASSE", "é", "e\u0301",
		"\x00", "'", "\xff\xfe", string(allBytes), strings.Repeat("\xff", revguard.MaxNamespaceLen),
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
