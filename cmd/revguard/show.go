package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/revguard/revguard"
)

// entityJSON is an entity as get -json and scan -json print it, one object
// a line. Revisions are decimal strings: revisions that are Unix
// nanoseconds exceed 2^53, which JSON readers such as jq and JavaScript
// would round as numbers.
type entityJSON struct {
	Namespace string     `json:"namespace"`
	Key       string     `json:"key"`
	Exists    bool       `json:"exists"`  // something has been applied
	Applied   *string    `json:"applied"` // null when nothing has been applied
	Claim     *claimJSON `json:"claim"`   // null when no claim is in force
}

type claimJSON struct {
	Revision    string `json:"revision"`
	Token       string `json:"token"`
	LeaseLeftMS int64  `json:"lease_left_ms"` // 0: held until committed or released
}

func toJSON(ns string, e revguard.Entity) entityJSON {
	j := entityJSON{Namespace: ns, Key: e.Key, Exists: e.Exists}
	if e.Exists {
		s := e.Applied.String()
		j.Applied = &s
	}
	if c := e.Claim; c != nil {
		j.Claim = &claimJSON{Revision: c.Rev.String(), Token: c.Token.String(), LeaseLeftMS: c.Left.Milliseconds()}
	}
	return j
}

// entityWriter prints entities as a table or as JSON lines.
type entityWriter interface {
	write(e revguard.Entity) error
	flush() error
}

func newEntityWriter(w io.Writer, ns string, asJSON, token bool) entityWriter {
	if asJSON {
		return jsonWriter{enc: json.NewEncoder(w), ns: ns}
	}
	return newTable(w, token)
}

type jsonWriter struct {
	enc *json.Encoder
	ns  string
}

func (j jsonWriter) write(e revguard.Entity) error { return j.enc.Encode(toJSON(j.ns, e)) }
func (j jsonWriter) flush() error                  { return nil }

// table prints entities in aligned columns with the key last: a long key
// then widens no column, and rows can stream out a block at a time.
type table struct {
	tw    *tabwriter.Writer
	token bool
	rows  int // the header comes with the first row
}

// tableBlock is how many rows a table aligns at once before printing them.
const tableBlock = 100

func newTable(w io.Writer, token bool) *table {
	return &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0), token: token}
}

func (t *table) row(applied, claimed, left, token, key string) {
	if t.token {
		fmt.Fprintf(t.tw, "%s\t%s\t%s\t%s\t%s\n", applied, claimed, left, token, key)
	} else {
		fmt.Fprintf(t.tw, "%s\t%s\t%s\t%s\n", applied, claimed, left, key)
	}
}

func (t *table) write(e revguard.Entity) error {
	if t.rows == 0 {
		t.row("APPLIED", "CLAIMED", "LEASE LEFT", "TOKEN", "KEY")
	}
	applied, claimed, left, token := "-", "-", "-", "-"
	if e.Exists {
		applied = e.Applied.String()
	}
	if c := e.Claim; c != nil {
		claimed, left, token = c.Rev.String(), leaseLeft(c.Left), c.Token.String()
	}
	t.row(applied, claimed, left, token, displayKey(e.Key))
	if t.rows++; t.rows%tableBlock == 0 {
		return t.tw.Flush()
	}
	return nil
}

func (t *table) flush() error { return t.tw.Flush() }

// leaseLeft shows how long a claim has left, to the millisecond.
func leaseLeft(d time.Duration) string {
	if d == 0 {
		return "held" // an in-process claim: until committed or released
	}
	return d.Round(time.Millisecond).String()
}

// displayKey shows a key as it is when that reads as one unambiguous
// field, and quoted (Go syntax) when it holds spaces, characters a
// terminal would not show, or starts with a quote.
func displayKey(k string) string {
	odd := func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }
	if k == "" || k[0] == '"' || strings.IndexFunc(k, odd) >= 0 {
		return strconv.Quote(k)
	}
	return k
}

// describe says what an entity holds, in words: "applied 41, claim on 42
// (12.3s left)".
func describe(e revguard.Entity) string {
	s := "nothing applied"
	if e.Exists {
		s = "applied " + e.Applied.String()
	}
	if c := e.Claim; c != nil {
		s += fmt.Sprintf(", claim on %s by %s (%s left)", c.Rev, c.Token, leaseLeft(c.Left))
	}
	return s
}
