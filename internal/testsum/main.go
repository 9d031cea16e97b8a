// Command testsum reads `go test -json` on its standard input and prints
// what plain `go test` prints (a line per package, the output of what
// failed), then one line naming the tests that skipped because a server
// they need was not running, and how to run them. Plain `go test ./...`
// prints "ok" for a package whose server tests all skipped, so a reader
// believes more was tested than was; scripts/test.sh pipes into this.
//
// It exits 1 when a test or a build failed, or the input ended early.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output and build-fail
	Test       string
	Elapsed    float64
	Output     string
}

// missingMark is what internal/testenv.Missing says when it skips.
const missingMark = "skipping (scripts/servers.sh start provides it)"

func main() {
	failed, err := summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		os.Exit(1)
	}
	if failed {
		os.Exit(1)
	}
}

// summarize reports whether anything failed.
func summarize(r io.Reader, w io.Writer) (bool, error) {
	output := map[string][]string{} // package + test: its output so far
	missing := map[string]int{}     // why a server test skipped: how many
	skipped := 0
	failed := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// go test writes some errors (a package that does not
			// compile, before Go 1.24) as plain text.
			fmt.Fprintln(w, string(line))
			continue
		}
		id := e.Package + " " + e.Test
		switch e.Action {
		case "build-output":
			fmt.Fprint(w, e.Output)
		case "build-fail":
			failed = true
		case "output":
			if !strings.HasPrefix(e.Output, "=== ") { // RUN, PAUSE, CONT: noise once it is over
				output[id] = append(output[id], e.Output)
			}
		case "skip":
			if e.Test != "" {
				if why, ok := missingReason(output[id]); ok {
					skipped++
					missing[why]++
				}
			} else {
				fmt.Fprintf(w, "?   \t%s\t[no test files]\n", e.Package)
			}
			delete(output, id)
		case "pass":
			if e.Test == "" {
				fmt.Fprintf(w, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
			}
			delete(output, id)
		case "fail":
			failed = true
			if e.Test == "" {
				// The package's own output holds what no test owned: a
				// panic, a TestMain's failure, the shuffle seed.
				fmt.Fprint(w, strings.Join(output[id], ""))
				fmt.Fprintf(w, "FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
			} else {
				fmt.Fprint(w, strings.Join(output[id], ""))
			}
			delete(output, id)
		}
	}
	if err := sc.Err(); err != nil {
		return true, err
	}
	if skipped > 0 {
		whys := make([]string, 0, len(missing))
		for why := range missing {
			whys = append(whys, why)
		}
		slices.Sort(whys)
		fmt.Fprintf(w, "\n%d tests skipped because a server was not running (%s).\nTo run them too: eval \"$(scripts/servers.sh start)\", then run the tests again (scripts/servers.sh stop after).\n",
			skipped, strings.Join(whys, "; "))
	}
	return failed, nil
}

// missingReason returns the variable testenv.Missing named in a skipped
// test's output, if that is why it skipped.
func missingReason(out []string) (string, bool) {
	for _, l := range out {
		if i := strings.Index(l, missingMark); i >= 0 {
			why := strings.TrimSpace(l[:i])
			why = strings.TrimSuffix(why, ":")
			// "file_test.go:12: REVGUARD_REDIS_ADDR is not set (the address of a redis-server)"
			if j := strings.Index(why, ": "); j >= 0 && strings.Contains(why[:j], "_test.go:") {
				why = why[j+2:]
			}
			if k := strings.Index(why, " is not set"); k >= 0 {
				why = why[:k]
			}
			return why, true
		}
	}
	return "", false
}
