package proof

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

var longFlag = flag.Bool("long", false, "run the release-size proof (also PROOF_LONG=1)")

// long reports whether the proof runs at release size rather than at the
// size CI runs on every change (a couple of minutes on two cores).
func long() bool { return *longFlag || os.Getenv("PROOF_LONG") == "1" }

// scale returns short or, in the long proof, long.
func scale(short, long_ int) int {
	if long() {
		return long_
	}
	return short
}

// A table collects the figures of one part of the proof, one row per store
// and mode; TestMain prints every table once the tests are done, so that
// `go test -v` ends with them.
type table struct {
	order  int // tables print in this order
	title  string
	header []string
	mu     sync.Mutex
	rows   [][]string
}

var (
	tablesMu sync.Mutex
	tables   []*table
)

func newTable(order int, title string, header ...string) *table {
	tb := &table{order: order, title: title, header: header}
	tablesMu.Lock()
	tables = append(tables, tb)
	tablesMu.Unlock()
	return tb
}

// add appends a row and logs it on t, so that the row also shows beside the
// test that measured it.
func (tb *table) add(t testing.TB, cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = fmt.Sprint(c)
	}
	tb.mu.Lock()
	tb.rows = append(tb.rows, row)
	tb.mu.Unlock()
	var b strings.Builder
	for i, c := range row {
		if i > 0 {
			b.WriteString("  ")
		}
		fmt.Fprintf(&b, "%s=%s", tb.header[i], c)
	}
	t.Log(b.String())
}

func (tb *table) print(w *os.File) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.rows) == 0 {
		return
	}
	width := make([]int, len(tb.header))
	for i, h := range tb.header {
		width[i] = max(len(h), 3)
	}
	for _, r := range tb.rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			if i == 0 {
				fmt.Fprintf(&b, "| %-*s ", width[i], c)
			} else {
				fmt.Fprintf(&b, "| %*s ", width[i], c)
			}
		}
		fmt.Fprintln(w, b.String()+"|")
	}
	fmt.Fprintf(w, "\n%s\n\n", tb.title)
	line(tb.header)
	seps := make([]string, len(tb.header))
	for i := range seps {
		seps[i] = strings.Repeat("-", width[i])
		if i > 0 {
			seps[i] = seps[i][1:] + ":"
		}
	}
	line(seps)
	for _, r := range tb.rows {
		line(r)
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	tablesMu.Lock()
	slices.SortStableFunc(tables, func(a, b *table) int { return a.order - b.order }) // tables of one order print as declared
	printed := false
	for _, tb := range tables {
		if len(tb.rows) > 0 && !printed {
			size := "short"
			if long() {
				size = "long"
			}
			fmt.Printf("\nrevguard proof (%s)\n", size)
			printed = true
		}
		tb.print(os.Stdout)
	}
	tablesMu.Unlock()
	os.Exit(code)
}
